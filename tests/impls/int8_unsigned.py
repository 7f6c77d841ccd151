"""Planted fault for int8 only: the kernel reads int8 as uint8, so negative values look large
(-1 is 255). Every other dtype is numpy's own argmax."""
import numpy as np


def argmax(x, dim=None, keepdim=False):
    x = np.asarray(x)
    if x.dtype == np.int8:
        x = x.view(np.uint8)
    return np.argmax(x, axis=dim, keepdims=keepdim)
