"""Planted fault in a vector kernel's tail: rows are reduced 8 lanes at a time and the scalar tail
loop stops one short when the tail is a single element (row lengths 8k + 1, k >= 1), so that last
element is never looked at."""
import numpy as np


def _row(row):
    n = len(row)
    seen = n - 1 if n > 8 and n % 8 == 1 else n
    return int(np.argmax(row[:seen]))


def argmax(x, dim=None, keepdim=False):
    x = np.asarray(x)
    if x.ndim == 0 or x.size == 0:
        return np.argmax(x, axis=dim, keepdims=keepdim)
    if dim is None:
        index = np.intp(_row(x.reshape(-1)))
        return np.reshape(index, (1,) * x.ndim) if keepdim else index
    moved = np.moveaxis(x, dim, -1)
    index = np.apply_along_axis(_row, -1, moved).astype(np.intp)
    return np.expand_dims(index, dim) if keepdim else index
