"""The reference: what argmax must return for the exact values a target saw.

The rule, as NumPy, PyTorch, JAX and the Python array API standard document it: the index of the
first occurrence of the maximum along the reduced axis, where NaN counts as the maximum (so the
first NaN wins); for dim=None the index into the C-order flattened input. It is computed here
without calling any argmax, so an argmax under audit never judges itself.
"""
import numpy as np


def maximizers(values, axis):
    """Return a boolean mask of the positions that are a maximum along `axis` (NaN wins)."""
    values = np.asarray(values, dtype=np.float64)
    nan = np.isnan(values)
    has_nan = nan.any(axis=axis, keepdims=True)
    top = np.where(nan, -np.inf, values).max(axis=axis, keepdims=True)
    return np.where(has_nan, nan, values == top)


def first_true(mask, axis):
    """Return the index of the first True along `axis` (the count of leading Falses)."""
    return (np.cumsum(mask, axis=axis) == 0).sum(axis=axis)


def reference_argmax(values, dim=None, keepdim=False):
    """Return the reference indices (int64) of `values` reduced over `dim`."""
    values = np.asarray(values)
    if values.size == 0 and (dim is None or values.shape[dim] == 0):
        raise ValueError("argmax of an empty sequence is undefined")
    if dim is None:
        flat = values.reshape(-1)
        index = first_true(maximizers(flat, 0), 0).astype(np.int64)
        return index.reshape((1,) * values.ndim) if keepdim else index
    if values.ndim == 0:
        return np.zeros((), dtype=np.int64)
    index = first_true(maximizers(values, dim), dim).astype(np.int64)
    return np.expand_dims(index, dim) if keepdim else index


def reference_row(row):
    """Return the reference index of one 1-d `row`, written as the plain loop the rule states."""
    best = 0
    for i, value in enumerate(row):
        if np.isnan(row[best]):
            break
        if np.isnan(value) or value > row[best]:
            best = i
    return best
