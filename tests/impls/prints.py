"""A correct implementation that chatters on stdout, as debugging code does."""
import os
import sys

import numpy as np

print("importing prints.py: hello on stdout")


def argmax(x, dim=None, keepdim=False):
    print("argmax called", x.shape, dim, keepdim)
    sys.stdout.write("\x00\x00\x00\x10 raw bytes that look like a frame\n")
    sys.stdout.flush()
    os.write(1, b"argmax called: straight to file descriptor 1\n")
    return np.argmax(x, axis=dim, keepdims=keepdim)
