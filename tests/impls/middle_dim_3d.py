"""Planted fault in one layout and dim combination: a rank-3 view with permuted axes (not
C-contiguous) reduced along its middle dim breaks ties towards the LAST maximum."""
import numpy as np


def argmax(x, dim=None, keepdim=False):
    x = np.asarray(x)
    if x.ndim == 3 and dim in (1, -2) and not x.flags.c_contiguous and 0 not in x.strides:
        flipped = np.flip(x, axis=1)
        index = x.shape[1] - 1 - np.argmax(flipped, axis=1, keepdims=keepdim)
        return index.astype(np.intp)
    return np.argmax(x, axis=dim, keepdims=keepdim)
