"""Planted fault for an argmin: breaks ties towards the LAST minimum (NaN handling left as numpy's)."""
import numpy as np


def argmin(x, dim=None, keepdim=False):
    x = np.asarray(x)
    if x.ndim == 0:
        return np.argmin(x, axis=dim, keepdims=keepdim)
    if dim is None:
        flipped = x.reshape(-1)[::-1]
        index = flipped.size - 1 - np.argmin(flipped)
        return np.reshape(index, (1,) * x.ndim) if keepdim else np.int64(index)
    axis = dim % x.ndim
    flipped = np.flip(x, axis=axis)
    index = x.shape[axis] - 1 - np.argmin(flipped, axis=axis, keepdims=keepdim)
    return index.astype(np.intp)


def good(x, dim=None, keepdim=False):
    return np.argmin(x, axis=dim, keepdims=keepdim)
