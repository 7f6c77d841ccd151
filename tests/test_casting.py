"""The values a target sees: float32 source rounded to its dtype as numpy/ml_dtypes round, and spacings."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.worker import casting
from auditor.worker.casting import DTYPES, INT_DTYPES, family, narrow, seen_values, spacing

FAST = settings(max_examples=200, deadline=None)
BF16 = ml_dtypes.bfloat16


def _from_bits(bits):
    return np.asarray(bits, dtype=np.uint64).astype(np.uint32).view(np.float32)


def _bits(values):
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


def _assert_same_values(got, expected):
    """Assert `got` equals `expected` bit for bit, NaN compared as NaN (payload aside)."""
    assert got.dtype == np.float32 and got.shape == expected.shape
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(_bits(got)[~nan], _bits(expected)[~nan])


def _bf16_round_trip(source):
    with np.errstate(invalid="ignore", over="ignore"):
        return source.astype(BF16).astype(np.float32)


def _edge_bits():
    """Every bfloat16 rounding boundary: k<<16 plus just below, at and just above the halfway."""
    k = np.arange(0, 1 << 16, dtype=np.uint64) << 16
    return np.concatenate([k, k + 0x7FFF, k + 0x8000, k + 0x8001, k + 0xFFFF])


@FAST
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64))
def test_bfloat16_matches_ml_dtypes_on_any_float32(bits):
    source = _from_bits(bits)
    _assert_same_values(seen_values(source, "bfloat16"), _bf16_round_trip(source))


def test_bfloat16_matches_ml_dtypes_at_every_rounding_boundary():
    source = _from_bits(_edge_bits())  # ties to even, subnormals, overflow to inf, inf, NaN payloads
    _assert_same_values(seen_values(source, "bfloat16"), _bf16_round_trip(source))


@pytest.mark.parametrize("value, expected", [
    (3.4e38, np.inf), (-3.4e38, -np.inf),                      # overflow rounds to infinity
    (np.float32(1.0 + 2**-8), 1.0),                            # halfway: to even (down)
    (np.float32(1.0 + 3 * 2**-8), 1.0 + 2**-6),                # halfway: to even (up)
    (1e-40, np.float32(1e-40).view(np.uint32) >> 16 << 16),    # subnormal
    (-0.0, -0.0), (np.inf, np.inf), (-np.inf, -np.inf),
])
def test_bfloat16_edge_values(value, expected):
    got = seen_values(np.array([value], dtype=np.float32), "bfloat16")
    if isinstance(expected, np.integer):
        expected = np.array([expected], dtype=np.uint32).view(np.float32)[0]
    assert _bits(got)[0] == _bits(np.array([expected], dtype=np.float32))[0]


def test_bfloat16_keeps_the_sign_of_nan():
    """A -NaN cast to bfloat16 is -NaN (ml_dtypes, torch and jax keep the sign bit)."""
    source = np.array([np.nan, -np.nan], dtype=np.float32)
    got = seen_values(source, "bfloat16")
    assert np.isnan(got).all()
    np.testing.assert_array_equal(np.signbit(got), np.signbit(_bf16_round_trip(source)))


@FAST
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64))
def test_float16_matches_numpy_astype(bits):
    source = _from_bits(bits)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = source.astype(np.float16).astype(np.float32)
    _assert_same_values(seen_values(source, "float16"), expected)


def test_float16_overflow_and_subnormals():
    source = np.array([65504, 65519.99, 65520, 1e5, 2.0**-24, 2.0**-25, 3e-8, -0.0], np.float32)
    got = seen_values(source, "float16")
    np.testing.assert_array_equal(got, [65504, 65504, np.inf, np.inf, 2.0**-24, 0, 2.0**-25 * 2, -0.0])
    assert np.signbit(got[-1])


def test_float32_and_float64_are_exact():
    source = np.array([[1.1, np.nan], [-np.inf, 1e-45]], dtype=np.float32)
    assert _bits(seen_values(source, "float32")).tolist() == _bits(source).tolist()
    wide = seen_values(source, "float64")
    assert wide.dtype == np.float64
    np.testing.assert_array_equal(wide.astype(np.float32), source)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 3), (2, 3, 4)])
def test_shape_is_kept(dtype, shape):
    assert seen_values(np.ones(shape, dtype=np.float32), dtype).shape == shape


def test_unknown_dtype_and_the_other_family_are_refused():
    with pytest.raises(ValueError, match="unknown dtype"):
        seen_values(np.ones(3, dtype=np.float32), "int4")
    with pytest.raises(ValueError, match="float32 source values are not for a int8 target"):
        seen_values(np.ones(3, dtype=np.float32), "int8")
    with pytest.raises(ValueError, match="int64 source values are not for a float32 target"):
        seen_values(np.ones(3, dtype=np.int64), "float32")


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integers_saturate_to_each_types_range(dtype):
    source = np.array([-2**63, -300, -129, -1, 0, 1, 127, 128, 300, 70000, 2**40, 2**63 - 1])
    got = seen_values(source, dtype)
    assert got.dtype == np.dtype(dtype)
    if dtype == "bool":
        assert got.tolist() == [False] * 5 + [True] * 7
        return
    info = np.iinfo(dtype)
    assert got.tolist() == [min(max(int(v), info.min), info.max) for v in source]


def test_uint64_sources_past_int64_saturate_and_stay_exact():
    source = np.array([0, 2**63, 2**64 - 1], dtype=np.uint64)
    assert seen_values(source, "uint64").tolist() == [0, 2**63, 2**64 - 1]
    assert seen_values(source, "int64").tolist() == [0, 2**63 - 1, 2**63 - 1]
    assert seen_values(source, "int8").tolist() == [0, 127, 127]


def test_float64_sources_round_once_to_float32_and_float16_and_through_float32_to_bfloat16():
    source = np.array([1 + 2.0**-30, 5e-324, 1e300, -0.0, np.nan])
    np.testing.assert_array_equal(seen_values(source, "float32"), source.astype(np.float32))
    np.testing.assert_array_equal(seen_values(source, "float16"), source.astype(np.float16))
    np.testing.assert_array_equal(seen_values(source, "bfloat16"),
                                  seen_values(source.astype(np.float32), "bfloat16"))
    assert seen_values(source, "float64")[1] == 5e-324  # float64's own subnormal kept


def test_spacing_of_integers_is_one():
    assert spacing(np.array([5, -3]), "int8").tolist() == [1.0, 1.0]


def _all_positive_finite(dtype, to_float):
    """Return every positive finite number of a 16-bit `dtype` but the largest, and the next ones."""
    bits = np.arange(0, 0x7C00 if dtype == "float16" else 0x7F80, dtype=np.uint16)
    values = to_float(bits[:-1])
    return values, to_float(bits[1:])


def test_float16_spacing_is_numpy_spacing_everywhere():
    values, nxt = _all_positive_finite("float16", lambda b: b.view(np.float16))
    expected = np.spacing(values).astype(np.float64)
    np.testing.assert_array_equal(spacing(values, "float16"), expected)
    np.testing.assert_array_equal(spacing(-values, "float16"), expected)
    np.testing.assert_array_equal(expected, nxt.astype(np.float64) - values.astype(np.float64))


def test_float16_subnormal_spacing():
    for value in (0.0, -0.0, 2.0**-24, 3 * 2.0**-24, 2.0**-14 - 2.0**-24):
        assert spacing(np.float64(value), "float16") == 2.0**-24
    assert spacing(np.float64(2.0**-14), "float16") == 2.0**-24  # the smallest normal: same gap


def test_bfloat16_spacing_is_the_gap_to_the_next_bfloat16():
    values, nxt = _all_positive_finite("bfloat16", lambda b: b.view(BF16).astype(np.float64))
    np.testing.assert_array_equal(spacing(values, "bfloat16"), nxt - values)
    assert spacing(np.float64(0.0), "bfloat16") == 2.0**-133


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_spacing_is_numpy_spacing(dtype):
    rng = np.random.default_rng(0)
    finfo = np.finfo(dtype)
    values = np.concatenate([rng.uniform(-1e3, 1e3, 500), [finfo.tiny, finfo.smallest_subnormal,
                                                          1.0, 2.0, 0.75]]).astype(dtype)
    np.testing.assert_array_equal(spacing(values, np.dtype(dtype).name),
                                  np.abs(np.spacing(np.abs(values))).astype(np.float64))


@pytest.mark.parametrize("shape", [(37,), (9, 13), (5, 4, 3), (1, 40)])
def test_large_sources_are_narrowed_block_by_block_to_the_same_values(monkeypatch, shape):
    rng = np.random.default_rng(0)
    floats = (rng.standard_normal(shape) * 1e4).astype(np.float32)
    floats.reshape(-1)[:4] = [np.nan, -np.inf, 3e38, np.float32(1e-40)]
    integers = rng.integers(-2**40, 2**40, size=shape)
    whole = {dtype: narrow(floats if family(dtype) == "float" else integers, dtype)
             for dtype in DTYPES if dtype not in ("uint64",)}
    monkeypatch.setattr(casting, "BLOCK_BYTES", 40)  # a few rows (or elements) per block
    for dtype, expected in whole.items():
        got = narrow(floats if family(dtype) == "float" else integers, dtype)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes(), dtype
