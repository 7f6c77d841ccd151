"""Planted mistake: the module raises while it is imported."""
raise ImportError("planted: this module cannot be imported")


def argmax(x, dim=None, keepdim=False):
    return 0
