"""A correct argmax that leaves, in the folder the run's processes of its group share, a file
named after the process that called it."""
import os

import numpy as np


def argmax(x, dim=None, keepdim=False):
    folder = os.environ["ARGMAX_AUDIT_SHARED_CACHE"]
    open(os.path.join(folder, f"pid-{os.getpid()}"), "a").close()
    return np.argmax(x, axis=dim, keepdims=keepdim)
