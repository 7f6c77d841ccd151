"""The fuzzer's strategies: what they generate, the oracle against numpy on it, and the strides
every generated layout has on every framework."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.oracle import reference_argmax
from auditor.strategies import (
    FLOAT64_VALUES,
    Space,
    examples,
    layout_names,
    signature_pool,
)
from auditor.worker import layouts
from auditor.worker.backends import np_backend
from auditor.worker.casting import narrow, widen

EVERYTHING = Space(families=("float", "int"), float64=True, mirror=True, max_elements=5000)
FAST = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@FAST
@given(examples(EVERYTHING))
def test_examples_are_valid_cases_within_the_budget(example):
    case = example.case()
    assert example.values.size <= 5000 and example.values.ndim <= 4
    assert example.layout in layout_names(example.values.ndim)
    assert case.id.startswith("fuzz-") and "fuzz" in case.tags
    assert example.values.dtype in (np.float32, np.float64, np.int64)
    if example.layout == "broadcast" and example.values.size:
        assert (example.values.view(np.uint8).reshape(example.values.shape[0], -1)
                == example.values.view(np.uint8).reshape(example.values.shape[0], -1)[:1]).all()


@FAST
@given(examples(EVERYTHING))
def test_the_reference_agrees_with_numpy_in_float64(example):
    values = example.values
    exact = values.astype(np.float64) if values.dtype.kind == "f" else values
    try:
        expected = np.argmax(exact, axis=example.dim, keepdims=example.keepdim)
    except ValueError:  # an empty reduction: the reference refuses it too
        with pytest.raises(ValueError):
            reference_argmax(values, example.dim, example.keepdim)
        return
    np.testing.assert_array_equal(reference_argmax(values, example.dim, example.keepdim),
                                  expected)


def _host(example, dtype):
    if example.values.dtype.kind == "f":
        return narrow(example.values, dtype)
    return example.values.astype(np.int8 if dtype == "int8" else np.int64)


@FAST
@given(examples(EVERYTHING), st.sampled_from(["float32", "bfloat16"]))
def test_numpy_views_of_generated_layouts_have_the_claimed_strides(example, dtype):
    if example.values.dtype.kind != "f":
        dtype = "int8"
    host = _host(example, dtype)
    x = np_backend.Adapter().to_native(host, dtype, "cpu", example.layout)
    shape = example.values.shape
    if x.size and x.ndim:
        strides, offset = layouts.strides(example.layout, shape)
        assert [s // x.itemsize for s, n in zip(x.strides, shape) if n > 1] == [
            s for s, n in zip(strides, shape) if n > 1]  # a size-1 axis's stride is never used
        memory = x
        while isinstance(memory.base, np.ndarray):
            memory = memory.base
        start = x.__array_interface__["data"][0] - memory.__array_interface__["data"][0]
        assert start // x.itemsize == offset
    expected = widen(host, dtype) if dtype != "int8" else host
    np.testing.assert_array_equal(np.asarray(x, dtype=np.float64), np.asarray(expected, np.float64))


@FAST
@given(examples(EVERYTHING), st.sampled_from(["float32", "bfloat16", "int8"]))
def test_torch_views_of_generated_layouts_have_the_claimed_strides(example, dtype):
    torch_backend = pytest.importorskip("auditor.worker.backends.torch_backend")
    dtype = dtype if (example.values.dtype.kind == "f") == (dtype != "int8") else (
        "int8" if example.values.dtype.kind != "f" else "float32")
    host = _host(example, dtype)
    adapter = torch_backend.Adapter()
    if layouts.steps_need(example.layout) and example.values.ndim:  # no negative strides
        with pytest.raises(ValueError, match="negative strides"):
            adapter.to_native(host, dtype, "cpu", example.layout)
        return
    x = adapter.to_native(host, dtype, "cpu", example.layout)
    shape = example.values.shape
    strides, offset = layouts.strides(example.layout, shape)
    if x.numel():
        assert [s for s, n in zip(x.stride(), shape) if n > 1] == [
            s for s, n in zip(strides, shape) if n > 1]
        assert x.storage_offset() == offset
    expected = widen(host, dtype) if dtype != "int8" else host
    np.testing.assert_array_equal(x.double().numpy(), np.asarray(expected, np.float64))


@FAST
@given(examples(Space(families=("float",), max_elements=400)))
def test_jax_arrays_hold_the_generated_values_in_the_contiguous_layout(example):
    jax_backend = pytest.importorskip("auditor.worker.backends.jax_backend")
    x = jax_backend.Adapter().to_native(example.values, "float32", "cpu", "contiguous")
    np.testing.assert_array_equal(np.asarray(x), example.values)


def test_a_signature_pool_bounds_the_calls():
    space = Space(max_elements=1000)
    pool = signature_pool(space, seed=3, count=12)
    assert len(pool) == 12 and pool == signature_pool(space, seed=3, count=12)
    bounded = Space(max_elements=1000, signatures=pool)
    seen = set()

    @FAST
    @given(examples(bounded))
    def collect(example):
        seen.add((example.values.shape, example.layout, example.dim, example.keepdim))

    collect()
    assert seen <= set(pool) and len(seen) > 3


def _find(space, condition):
    from hypothesis import find

    return find(examples(space), condition, settings=settings(
        max_examples=3000, database=None, suppress_health_check=list(HealthCheck)))


def test_float64_only_values_and_integers_past_narrow_types_are_generated():
    wide = _find(Space(float64=True), lambda e: e.values.dtype == np.float64 and np.isin(
        e.values, [v for v in FLOAT64_VALUES if v < 1e-300]).any())
    assert (np.abs(wide.values[wide.values != 0]) < 1e-300).any()  # a float64 subnormal
    ints = _find(Space(families=("int",)), lambda e: (e.values >= 2**15).any())
    assert ints.values.dtype == np.int64
    payload = _find(Space(), lambda e: (np.isnan(e.values) & np.signbit(e.values)).any())
    assert payload.values.size >= 1


def test_a_near_tie_below_float32_resolution_is_generated_in_float64():
    found = _find(Space(float64=True), lambda e: e.values.dtype == np.float64 and any(
        "near-tie (float64)" in p for p in e.plants))
    assert found.values.dtype == np.float64
