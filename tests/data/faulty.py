"""Planted faults for the checked-in test bundles (see make_bundles.py): one function per kind."""
import os

import numpy as np


def skips_nan(x, dim=None, keepdim=False):
    """nanargmax: ignores NaN instead of returning the first NaN (nan_policy)."""
    x = np.asarray(x)
    if x.size and np.isnan(x).all():
        return np.argmax(x, axis=dim, keepdims=keepdim)
    with np.errstate(invalid="ignore"):
        filled = np.where(np.isnan(x), -np.inf, x)
    return np.argmax(filled, axis=dim, keepdims=keepdim)


def random_tie(x, dim=None, keepdim=False):
    """Picks a random maximizer on every call (nondeterministic, tie_break)."""
    x = np.asarray(x)
    if x.ndim == 0 or x.size == 0 or dim is None:
        return np.argmax(x, axis=dim, keepdims=keepdim)
    rng = np.random.default_rng()
    noise = rng.random(x.shape) * (x == np.max(x, axis=dim, keepdims=True))
    return np.argmax(noise, axis=dim, keepdims=keepdim)


def off_by_one(x, dim=None, keepdim=False):
    """Returns the index after the maximum on long rows (wrong_index)."""
    x = np.asarray(x)
    index = np.argmax(x, axis=dim, keepdims=keepdim)
    if dim is None or x.shape[dim] < 100:
        return index
    return np.minimum(index + 1, x.shape[dim] - 1)


def changes(x, dim=None, keepdim=False):
    """Correct, until ARGMAX_AUDIT_PLANTED_CHANGE is set: then ties go to the last maximum
    (a regression against a baseline made before)."""
    x = np.asarray(x)
    if not os.environ.get("ARGMAX_AUDIT_PLANTED_CHANGE") or dim is None or x.ndim == 0:
        return np.argmax(x, axis=dim, keepdims=keepdim)
    axis = dim % x.ndim
    if x.shape[axis] == 0:
        return np.argmax(x, axis=dim, keepdims=keepdim)
    flipped = np.flip(x, axis=axis)
    return x.shape[axis] - 1 - np.argmax(flipped, axis=axis, keepdims=keepdim)


def returns_int32(x, dim=None, keepdim=False):
    """Right indices, wrong dtype (api_mismatch)."""
    return np.argmax(x, axis=dim, keepdims=keepdim).astype(np.int32)


def raises(x, dim=None, keepdim=False):
    """Raises on every call (crash)."""
    raise RuntimeError("planted failure in the kernel")
