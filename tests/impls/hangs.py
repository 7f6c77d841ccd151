"""Planted fault: never returns."""
import time


def argmax(x, dim=None, keepdim=False):
    time.sleep(1000)
