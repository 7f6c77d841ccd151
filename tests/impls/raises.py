"""Planted fault: raises on every call."""


def argmax(x, dim=None, keepdim=False):
    raise RuntimeError("planted failure in the user's kernel")
