"""A correct user implementation: numpy's own argmax."""
import numpy as np


def argmax(x, dim=None, keepdim=False):
    return np.argmax(x, axis=dim, keepdims=keepdim)
