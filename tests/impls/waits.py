"""Not a fault: says it was called (touches $ARGMAX_TEST_MARKER), then waits, so that a test can
interrupt or kill the run while a call is in progress."""
import os
import time


def argmax(x, dim=None, keepdim=False):
    with open(os.environ["ARGMAX_TEST_MARKER"], "w"):
        pass
    time.sleep(120)
