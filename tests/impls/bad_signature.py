"""Planted mistake: a function that cannot be called as fn(x, dim=..., keepdim=...)."""
import numpy as np


def argmax(x):
    return np.argmax(x)


not_a_function = 42
