"""Planted fault: kills its own process with SIGSEGV."""
import os
import signal


def argmax(x, dim=None, keepdim=False):
    os.kill(os.getpid(), signal.SIGSEGV)
