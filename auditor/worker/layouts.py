"""Memory layouts: how a case's values are laid out in memory and viewed back in logical order.

A layout is a base array (the memory, built with numpy) and steps that view it back as the case's
values: `permute` (axes), `slice` (one (start, stop, step) per axis), `reshape` and `broadcast`.
Every adapter applies the same steps with its framework's own view operations, so each layout has
the strides `strides` promises wherever the framework has views (`steps_need` names what a layout
asks of a framework: negative steps, which torch tensors cannot have).

Names: `contiguous`; `transposed` (every axis reversed, column-major memory); `permuted-201` (the
memory holds the axes in order 2, 0, 1: the view's axis 2 is the outermost); `strided` (every other
element of a twice-as-long last axis); `reversed` (step -1 along every axis: the first element in
memory is the logical last); `offset` (contiguous, starting 5 elements into a larger buffer);
`window` (a block inside a larger array: starts inside it, rows padded); `broadcast` (axis 0 has
stride 0: the first entry repeated).
"""
import itertools

import numpy as np

OFFSET = 5  # elements before an `offset` view's first element
FIXED = ("contiguous", "transposed", "strided", "reversed", "offset", "window", "broadcast")


def permuted(order):
    """Return the name of the layout whose memory holds the axes in `order` (outermost first)."""
    return "permuted-" + "".join(str(a) for a in order)


def all_layouts(ndim):
    """Return every layout name for `ndim` axes: each fixed one, and every axis permutation
    other than the identity and the full reversal (those are contiguous and transposed)."""
    orders = [o for o in itertools.permutations(range(ndim))
              if list(o) not in (list(range(ndim)), list(range(ndim))[::-1])]
    return list(FIXED) + [permuted(o) for o in orders]


def _order(layout, ndim):
    """Return the memory order of axes of a permuting layout, or None for other layouts."""
    if layout == "transposed":
        return tuple(reversed(range(ndim)))
    if layout.startswith("permuted-"):
        order = tuple(int(c) for c in layout.removeprefix("permuted-"))
        if sorted(order) != list(range(ndim)):
            raise ValueError(f"layout {layout!r} does not permute {ndim} axes")
        return order
    return None


def check(layout, ndim):
    """Raise ValueError when `layout` is no layout of `ndim` axes."""
    if layout not in FIXED and _order(layout, ndim) is None:
        raise ValueError(f"unknown layout {layout!r}")
    _order(layout, ndim)


def _window(shape):
    """Return the start of each axis of a `window` view inside its base (1, 2, 1, 2, ...)."""
    return [1 + i % 2 for i in range(len(shape))]


def base(values, layout):
    """Return the numpy array (the memory) that the `layout` view of `values` is built on.

    `values` itself for a contiguous layout or a 0-d input (the worker hands adapters a private
    array)."""
    shape = values.shape
    if layout == "contiguous" or values.ndim == 0:
        return values
    order = _order(layout, values.ndim)
    if order is not None:
        return np.ascontiguousarray(values.transpose(order))
    if layout == "strided":
        memory = np.zeros(shape[:-1] + (2 * shape[-1],), dtype=values.dtype)
        memory[..., ::2] = values
        return memory
    if layout == "reversed":
        return np.ascontiguousarray(values[(slice(None, None, -1),) * values.ndim])
    if layout == "offset":
        memory = np.zeros(OFFSET + values.size, dtype=values.dtype)
        memory[OFFSET:] = values.reshape(-1)
        return memory
    if layout == "window":
        starts = _window(shape)
        memory = np.zeros(tuple(s + 3 for s in shape), dtype=values.dtype)
        memory[tuple(slice(a, a + s) for a, s in zip(starts, shape))] = values
        return memory
    if layout == "broadcast":
        return np.ascontiguousarray(values[:1])
    raise ValueError(f"unknown layout {layout!r}")


def steps(layout, shape):
    """Return the view steps that turn `base(values, layout)` back into `values` (of `shape`)."""
    ndim = len(shape)
    if layout == "contiguous" or ndim == 0:
        return []
    order = _order(layout, ndim)
    if order is not None:
        return [("permute", tuple(int(a) for a in np.argsort(order)))]
    if layout == "strided":
        return [("slice", tuple((None, None, None) for _ in shape[:-1]) + ((None, None, 2),))]
    if layout == "reversed":
        return [("slice", tuple((None, None, -1) for _ in shape))]
    if layout == "offset":
        return [("slice", ((OFFSET, None, None),)), ("reshape", tuple(shape))]
    if layout == "window":
        return [("slice", tuple((a, a + s, None) for a, s in zip(_window(shape), shape)))]
    if layout == "broadcast":
        return [("broadcast", tuple(shape))]
    raise ValueError(f"unknown layout {layout!r}")


def steps_need(layout):
    """Return what the `layout` view asks of a framework beyond plain views: {"negative-step"}."""
    return {"negative-step"} if layout == "reversed" else set()


def slices(spec):
    """Return the Python slices of a `slice` step's (start, stop, step) triples."""
    return tuple(slice(*triple) for triple in spec)


def numpy_view(memory, layout, shape):
    """Return the `layout` view of `memory` with numpy's views (the reference for the others)."""
    view = memory
    for op, arg in steps(layout, shape):
        if op == "permute":
            view = view.transpose(arg)
        elif op == "slice":
            view = view[slices(arg)]
        elif op == "reshape":
            view = view.reshape(arg)
        else:
            view = np.broadcast_to(view, arg)
    return view


def strides(layout, shape):
    """Return (strides, offset) in elements that the `layout` view of `shape` must have: the step
    in memory along each axis and where its first element lies in its base."""
    ndim = len(shape)
    dense = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(ndim)]
    if layout == "contiguous" or ndim == 0:
        return dense, 0
    order = _order(layout, ndim)
    if order is not None:
        memory = [int(np.prod([shape[a] for a in order[i + 1:]], dtype=np.int64)) for i in range(ndim)]
        return [memory[order.index(axis)] for axis in range(ndim)], 0
    if layout == "strided":
        return [2 * s for s in dense[:-1]] + [2], 0
    if layout == "reversed":
        return [-s for s in dense], int(sum(s * (n - 1) for s, n in zip(dense, shape)))
    if layout == "offset":
        return dense, OFFSET
    if layout == "window":
        padded = [s + 3 for s in shape]
        memory = [int(np.prod(padded[i + 1:], dtype=np.int64)) for i in range(ndim)]
        return memory, int(sum(a * m for a, m in zip(_window(shape), memory)))
    if layout == "broadcast":
        return [0] + dense[1:], 0
    raise ValueError(f"unknown layout {layout!r}")


def memory_offsets(layout, shape):
    """Return, for every logical position (C order), the element offset in memory it reads."""
    stride, offset = strides(layout, shape)
    grid = np.indices(shape).reshape(len(shape), -1) if shape else np.zeros((0, 1), np.int64)
    return offset + (np.asarray(stride, dtype=np.int64)[:, None] * grid).sum(axis=0)
