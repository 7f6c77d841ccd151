"""Planted faults: returns that are not argmax's contract (one function per kind of garbage)."""
import numpy as np


def returns_string(x, dim=None, keepdim=False):
    return "three"


def returns_int32(x, dim=None, keepdim=False):
    return np.argmax(x, axis=dim, keepdims=keepdim).astype(np.int32)


def returns_wrong_shape(x, dim=None, keepdim=False):
    return np.atleast_1d(np.argmax(x, axis=dim, keepdims=keepdim))[..., None]


def returns_out_of_range(x, dim=None, keepdim=False):
    index = np.argmax(x, axis=dim, keepdims=keepdim)
    return index + (x.size if dim is None else x.shape[dim])
