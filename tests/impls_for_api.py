"""Implementations the API tests hand to `auditor.audit` as callables (a module workers import)."""
import functools

import numpy as np


def first_max(x, dim=None, keepdim=False):
    """The rule: the first maximum (numpy's argmax), NaN first."""
    return np.argmax(x, axis=dim, keepdims=keepdim)


def last_max(x, dim=None, keepdim=False):
    """The planted fault: the last of tied maxima."""
    if dim is None:
        flat = np.asarray(x).reshape(-1)
        found = flat.size - 1 - np.argmax(flat[::-1])
        return found.reshape((1,) * np.ndim(x)) if keepdim else found
    axis = dim % max(np.ndim(x), 1)
    found = x.shape[axis] - 1 - np.argmax(np.flip(x, axis), axis=axis, keepdims=keepdim)
    return found


def make_closure():
    def inner(x, dim=None, keepdim=False):
        return np.argmax(x, axis=dim)
    return inner


class Holder:
    def method(self, x, dim=None, keepdim=False):
        return np.argmax(x, axis=dim)


def _wrap(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


def _decorated(x, dim=None, keepdim=False):
    return np.argmax(x, axis=dim)


decorated = _wrap(_decorated)
decorated.__name__ = "not_here"  # reachable only as `decorated`: not importable by its name


def main_defined(x, dim=None, keepdim=False):
    return np.argmax(x, axis=dim)


main_defined.__module__ = "__main__"  # as if defined in a script run with `python script.py`
