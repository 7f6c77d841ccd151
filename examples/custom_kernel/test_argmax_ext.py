"""A kernel author's test file: the `argmax_audit` fixture (argmax-audit's pytest plugin) audits
the C++ kernels of argmax_ext.py against torch's own argmax on the built-in suite.

    pytest examples/custom_kernel/test_argmax_ext.py
    pytest examples/custom_kernel/test_argmax_ext.py --argmax-audit-out audits   # keep failures

The first run compiles the extension (a C++ compiler and ninja are needed).
"""
import os
import sys

import pytest

pytest.importorskip("torch")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import argmax_ext  # noqa: E402 - compiled on first import


def test_argmax_follows_the_rule(argmax_audit):
    """First maximum, first NaN, every dim and layout of the suite, float32 and float16."""
    argmax_audit(argmax_ext.argmax, framework="torch", dtypes=["float32", "float16"])


@pytest.mark.xfail(strict=True, reason="argmax_fast keeps the last of tied maxima and skips NaN: "
                                       "the audit must catch it")
def test_the_fast_kernel_is_caught(argmax_audit):
    argmax_audit(argmax_ext.argmax_fast, framework="torch", dtypes=["float32"])
