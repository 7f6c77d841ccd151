"""Planted fault: kills its process while being imported."""
import os

os._exit(7)


def argmax(x, dim=None, keepdim=False):
    raise AssertionError("never reached")
