"""Planted fault the built-in suite misses: for a 1-d input that is not contiguous (a step-2
slice, a reversed or offset view inside a larger buffer) it returns the memory offset of the
maximum, in elements from the view's first element, instead of its logical index. The suite
crosses layouts with dims on ranks 2 to 4 only; every other call is numpy's argmax."""
import numpy as np


def argmax(x, dim=None, keepdim=False):
    x = np.asarray(x)
    if x.ndim == 1 and x.size and x.strides[0] not in (0, x.itemsize):
        index = np.int64(np.argmax(x) * (x.strides[0] // x.itemsize))
        return index.reshape((1,)) if keepdim else index
    return np.argmax(x, axis=dim, keepdims=keepdim)
