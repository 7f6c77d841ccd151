"""Planted fault for an argmin only (the shape of jax's on the CPU): subnormals are flushed to
zero before the reduction, so among negative subnormals the first of them wins. As an argmax the
same flush is harmless on argmax's own inputs' minima."""
import numpy as np


def argmin(x, dim=None, keepdim=False):
    x = np.asarray(x)
    if x.dtype.kind == "f" or x.dtype.name == "bfloat16":
        tiny = np.finfo(np.float32 if x.dtype.itemsize <= 4 else x.dtype).tiny
        wide = np.asarray(x, dtype=np.float64)
        x = np.where(np.abs(wide) < tiny, 0.0, wide)
    return np.argmin(x, axis=dim, keepdims=keepdim)
