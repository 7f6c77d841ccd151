"""Planted fault: kills its own process with SIGKILL (as the kernel's OOM killer would)."""
import os
import signal


def argmax(x, dim=None, keepdim=False):
    os.kill(os.getpid(), signal.SIGKILL)
