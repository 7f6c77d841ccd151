"""Planted fault: leaves its process with status 3, skipping all cleanup."""
import os


def argmax(x, dim=None, keepdim=False):
    os._exit(3)
