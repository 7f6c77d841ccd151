"""Planted race: on a long reduction (1024 or more elements per row) with tied maxima, one call
of twenty per input returns the LAST tied maximum instead of the first. The calls are counted per
input shape, dtype and call in each process, so the test that finds it is deterministic: a case called 5
times per process never shows it, one called 40 times shows it twice (each dtype counted
apart)."""
import collections

import numpy as np

CALLS = collections.Counter()


def _last(x, dim, keepdim):
    if dim is None:
        flat = x.reshape(-1)[::-1]
        index = np.intp(flat.size - 1 - np.argmax(flat))
        return np.reshape(index, (1,) * x.ndim) if keepdim else index
    flipped = np.flip(x, axis=dim)
    return (x.shape[dim] - 1 - np.argmax(flipped, axis=dim, keepdims=keepdim)).astype(np.intp)


def argmax(x, dim=None, keepdim=False):
    x = np.asarray(x)
    length = x.size if dim is None else (x.shape[dim] if x.ndim else 1)
    if x.ndim and length >= 1024:
        key = (x.shape, x.dtype.name, dim, keepdim)
        CALLS[key] += 1
        if CALLS[key] % 20 == 0:
            return _last(x, dim, keepdim)
    return np.argmax(x, axis=dim, keepdims=keepdim)
