"""Planted fault the built-in suite misses: NaN is recognised by comparing bit patterns with the
quiet NaN of either sign (0x7fc00000, 0xffc00000), so a NaN with another payload is taken for a
number below every other and never wins. The suite's NaNs are all quiet NaNs of either sign;
float32 only (other dtypes: numpy's argmax)."""
import numpy as np

_QUIET = (0x7FC00000, 0xFFC00000)


def argmax(x, dim=None, keepdim=False):
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim == 0:
        return np.argmax(x, axis=dim, keepdims=keepdim)
    bits = x.view(np.uint32) if x.flags.c_contiguous else x.copy().view(np.uint32)
    other_nan = np.isnan(x) & ~np.isin(bits, _QUIET)
    return np.argmax(np.where(other_nan, np.float32(-np.inf), x), axis=dim, keepdims=keepdim)
