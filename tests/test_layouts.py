"""Every layout has the strides and storage offset it claims, on every framework that has views."""
import numpy as np
import pytest

from auditor.cases import GRID_SHAPES, build_suite, grid_layouts
from auditor.runner import layout_limit
from auditor.worker import layouts
from auditor.worker.backends import np_backend
from auditor.worker.casting import narrow, widen

LAYOUTS = [(ndim, layout) for ndim in sorted(GRID_SHAPES) for layout in grid_layouts(ndim)]


def _values(shape, layout):
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    return np.broadcast_to(values[:1], shape).copy() if layout == "broadcast" else values


@pytest.mark.parametrize("ndim, layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
def test_numpy_views_have_the_claimed_strides(ndim, layout, dtype):
    shape = GRID_SHAPES[ndim]
    host = narrow(_values(shape, layout), dtype) if dtype != "int8" else _values(
        shape, layout).astype(np.int8)
    x = np_backend.Adapter().to_native(host, dtype, "cpu", layout)
    memory = x
    while isinstance(memory.base, np.ndarray):  # the buffer the view was made from
        memory = memory.base
    strides, offset = layouts.strides(layout, shape)
    assert [s // x.itemsize for s in x.strides] == strides
    start = x.__array_interface__["data"][0] - memory.__array_interface__["data"][0]
    assert start // x.itemsize == offset
    np.testing.assert_array_equal(np.asarray(x, dtype=np.float64), widen(host, dtype))
    assert x.flags.c_contiguous == (layout in ("contiguous", "offset"))


@pytest.mark.parametrize("ndim, layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
def test_torch_views_have_the_claimed_strides_and_storage_offset(ndim, layout, dtype):
    torch_backend = pytest.importorskip("auditor.worker.backends.torch_backend")
    shape = GRID_SHAPES[ndim]
    values = _values(shape, layout)
    host = narrow(values, dtype) if dtype != "int8" else values.astype(np.int8)
    adapter = torch_backend.Adapter()
    if layout == "reversed":  # torch has no negative strides: the case is not run on torch
        with pytest.raises(ValueError, match="negative strides"):
            adapter.to_native(host, dtype, "cpu", layout)
        limits = adapter.describe()["layout_limits"]
        assert "negative strides" in layout_limit(_case(layout, ndim), limits)
        return
    x = adapter.to_native(host, dtype, "cpu", layout)
    assert list(x.stride()) == layouts.strides(layout, shape)[0]
    assert x.storage_offset() == layouts.strides(layout, shape)[1]
    np.testing.assert_array_equal(x.float().numpy(), values)
    assert x.is_contiguous() == (layout in ("contiguous", "offset"))


def _case(layout, ndim):
    return next(c for c in build_suite("quick") if c.layout == layout and c.values.ndim == ndim)


def test_jax_arrays_have_no_views_so_only_contiguous_cases_run_there():
    jax_backend = pytest.importorskip("auditor.worker.backends.jax_backend")
    limits = jax_backend.Adapter().describe()["layout_limits"]
    assert "no strides" in limits["views"]
    assert layout_limit(_case("contiguous", 3), limits) is None
    for ndim, layout in LAYOUTS:
        if layout != "contiguous":
            assert layout_limit(_case(layout, ndim), limits) == limits["views"]


@pytest.mark.parametrize("ndim, layout", LAYOUTS)
def test_jax_builds_each_layout_from_the_same_memory(ndim, layout):
    jax_backend = pytest.importorskip("auditor.worker.backends.jax_backend")
    values = _values(GRID_SHAPES[ndim], layout)
    x = jax_backend.Adapter().to_native(values, "float32", "cpu", layout)
    np.testing.assert_array_equal(np.asarray(x), values)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)])
def test_memory_offsets_read_each_logical_value_from_the_base(shape):
    for layout in layouts.all_layouts(len(shape)):
        values = _values(shape, layout)
        memory = layouts.base(values, layout)
        offsets = layouts.memory_offsets(layout, shape)
        np.testing.assert_array_equal(memory.reshape(-1)[offsets], values.reshape(-1))


def test_unknown_layouts_are_refused():
    with pytest.raises(ValueError, match="unknown layout"):
        layouts.check("diagonal", 2)
    with pytest.raises(ValueError, match="does not permute"):
        layouts.check("permuted-10", 3)
