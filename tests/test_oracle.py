"""The reference: first maximum, NaN as maximum (first NaN wins), C-order index for dim=None."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from auditor.oracle import maximizers, reference_argmax, reference_row

FAST = settings(max_examples=150, deadline=None)

#: A small pool, so that draws repeat values (ties) and hit every special value often.
POOL = [0.0, -0.0, 1.0, 1.5, -1.0, 2.0**-149, -(2.0**-149), 1e-40, 3.0e38, np.inf, -np.inf,
        np.nan, -np.nan]


def _elements(dtype):
    pool = [dtype.type(v) for v in POOL] + ([dtype.type(5e-324)] if dtype == np.float64 else [])
    return st.one_of(st.sampled_from(pool), st.floats(width=dtype.itemsize * 8))


@st.composite
def calls(draw, min_side=1, min_dims=0):
    """Draw (values, dim, keepdim): float32/float64 arrays dense in ties, NaN, infinities, zeros."""
    dtype = np.dtype(draw(st.sampled_from(["float32", "float64"])))
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=min_side, max_side=5))
    values = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    if values.ndim == 0:
        dim = None
    else:
        dim = draw(st.sampled_from([None, *range(values.ndim), *range(-values.ndim, 0)]))
    return values, dim, draw(st.booleans())


@FAST
@given(calls())
def test_reference_argmax_matches_numpy(call):
    values, dim, keepdim = call
    expected = np.argmax(values, axis=dim, keepdims=keepdim)
    got = reference_argmax(values, dim, keepdim)
    assert got.dtype == np.int64
    assert got.shape == np.shape(expected)
    np.testing.assert_array_equal(got, expected)


@FAST
@given(hnp.arrays(np.float32, st.integers(1, 12), elements=st.sampled_from(
    [np.float32(v) for v in POOL])))
def test_reference_row_is_the_plain_loop_of_the_rule(row):
    assert reference_row(row) == int(reference_argmax(row, 0)) == int(np.argmax(row))


@FAST
@given(calls(min_dims=1))
def test_answer_is_a_maximizer(call):
    values, dim, _ = call
    mask = maximizers(values, dim)
    index = reference_argmax(values, dim, keepdim=True)
    if dim is None:
        assert mask.reshape(-1)[int(index.reshape(-1)[0])]
    else:
        assert np.take_along_axis(mask, index, axis=dim).all()


def test_first_nan_wins_over_inf_and_later_nan():
    row = np.array([1.0, np.inf, np.nan, 7.0, np.nan], dtype=np.float32)
    assert int(reference_argmax(row, 0)) == 2
    assert reference_row(row) == 2


def test_negative_nan_counts_as_nan():
    row = np.array([5.0, -np.nan, 9.0], dtype=np.float32)
    assert int(reference_argmax(row, None)) == 1
    assert reference_row(row) == 1


def test_signed_zeros_tie_and_first_wins():
    row = np.array([-1.0, -0.0, 0.0, -0.0], dtype=np.float32)
    assert int(reference_argmax(row, -1)) == 1
    assert reference_row(row) == 1


def test_all_negative_infinity_row_gives_zero():
    assert int(reference_argmax(np.full(4, -np.inf), 0)) == 0


@pytest.mark.parametrize("shape, dim", [((0,), None), ((0,), 0), ((0,), -1), ((3, 0), 1),
                                        ((3, 0), -1), ((0, 4), 0), ((2, 0, 3), None),
                                        ((2, 0, 3), 1), ((2, 0, 3), -2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_empty_reduction_raises_value_error(shape, dim, keepdim):
    with pytest.raises(ValueError):
        reference_argmax(np.zeros(shape, dtype=np.float32), dim, keepdim)


@pytest.mark.parametrize("shape, dim, expected_shape", [((0, 4), 1, (0,)), ((2, 0, 3), 2, (2, 0)),
                                                        ((2, 0, 3), -1, (2, 0))])
def test_empty_batch_of_nonempty_rows_gives_empty_result(shape, dim, expected_shape):
    got = reference_argmax(np.zeros(shape, dtype=np.float32), dim)
    assert got.shape == expected_shape and got.dtype == np.int64


@pytest.mark.parametrize("dim", [None, 0, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_zero_d_input_gives_zero(dim, keepdim):
    got = reference_argmax(np.array(3.5, dtype=np.float32), dim, keepdim)
    assert got.shape == () and int(got) == 0


def test_integers_are_compared_in_their_own_type():
    big = np.array([2**53 + 3, 2**53 + 4, 2**53 + 1], dtype=np.int64)  # float64 makes 0 and 1 equal
    assert int(reference_argmax(big, 0)) == 1
    assert int(reference_argmax(big, 0, sense="min")) == 2
    extremes = np.array([np.iinfo(np.int64).min, 0, np.iinfo(np.int64).max], dtype=np.int64)
    assert int(reference_argmax(extremes, 0, sense="min")) == 0  # ~x does not overflow
    unsigned = np.array([2**64 - 1, 0, 2**64 - 1], dtype=np.uint64)
    assert (int(reference_argmax(unsigned, 0)), int(reference_argmax(unsigned, 0, sense="min"))) == (0, 1)
    flags = np.array([[False, True, True], [False, False, False]])
    assert reference_argmax(flags, 1).tolist() == [1, 0]
    assert reference_argmax(flags, 1, sense="min").tolist() == [0, 0]
