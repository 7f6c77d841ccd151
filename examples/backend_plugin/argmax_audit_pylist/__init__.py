"""An argmax-audit backend for argmax over plain Python lists: a complete third-party plugin.

The backend (`BACKEND`) is data the audit's driver reads: the ops with their call in words and as
a reproducer's expression, the documented promise, the reproducer's lines. The adapter is what a
worker process runs: the probe (`describe`), native inputs (nested lists), the calls, and turning
what came back into numpy. Registered in pyproject.toml under `argmax_audit.backends`.
"""
import contextlib
import platform

import numpy as np

from auditor.worker.backends import as_indices, bind
from auditor.worker.backends.base import Backend, Op

PYTHON_MAX = "https://docs.python.org/3/library/functions.html#max"
#: The dtypes whose every value a Python float or int holds exactly.
DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
          "int64")
#: Reproducer source of the two functions the calls use; the worker runs the same code.
HELPERS = '''
def first_best(row, better):
    """The first index of the best value of `row`: max/min keep the first of equal keys."""
    return better(range(len(row)), key=row.__getitem__)


def flatten(x):
    return [v for item in x for v in flatten(item)] if isinstance(x, list) else [x]


def along(x, axis, better):
    """The first best index of each row of nested lists `x` along `axis`."""
    if axis > 0:
        return [along(item, axis - 1, better) for item in x]
    if not x or not isinstance(x[0], list):
        return first_best(x, better)  # an empty row raises ValueError, as argmax must
    return [along([item[j] for item in x], 0, better) for j in range(len(x[0]))]


def keep(result, axis):
    return [result] if axis == 0 else [keep(value, axis - 1) for value in result]


def reduce_lists(x, dim, keepdim, better):
    """argmax (better=max) or argmin (better=min) of nested lists `x` along `dim`."""
    rank, probe = 0, x
    while isinstance(probe, list):
        rank, probe = rank + 1, probe[0] if probe else None
    if dim is None:
        index = first_best(flatten(x), better)
        for _ in range(rank if keepdim else 0):
            index = [index]
        return index
    axis = dim % rank
    result = along(x, axis, better)
    return keep(result, axis) if keepdim else result
'''
exec(HELPERS)  # noqa: S102 - defines first_best and reduce_lists from the one source above


class PyListBackend(Backend):
    """argmax over nested Python lists with Python's own max and min."""

    name = "pylist"
    module = "argmax_audit_pylist"  # the "framework" is Python itself: installed with this
    distributions = ("argmax-audit-pylist",)
    install = "pip install ./examples/backend_plugin"
    ops = {
        "argmax": Op("max", "max(range(len(row)), key=row.__getitem__)",
                     "max(range(len(row)), key=row.__getitem__) along dim {dim}{keep_note}",
                     "reduce_lists(x, {dim}, {keepdim}, max)",
                     promise="If multiple items are maximal, the function returns the first one "
                             "encountered.", url=PYTHON_MAX),
        "argmin": Op("min", "min(range(len(row)), key=row.__getitem__)",
                     "min(range(len(row)), key=row.__getitem__) along dim {dim}{keep_note}",
                     "reduce_lists(x, {dim}, {keepdim}, min)",
                     promise="If multiple items are minimal, the function returns the first one "
                             "encountered.", url=PYTHON_MAX),
    }
    settings_env = ()
    reproducer = {
        "imports": "",
        "native": "x = base.astype({dtype}).tolist()",
        "permute": "x = x  # lists have no views: contiguous cases only ({0})",
        "broadcast": "x = x  # lists have no views: contiguous cases only ({0})",
        "to_numpy": "np.asarray({0}, dtype=np.float64)",
        "indices": "np.asarray(r)",
    }
    notes = ("nested Python lists: only contiguous cases run",)

    def adapter(self):
        return Adapter()

    def import_lines(self, dtypes):
        return HELPERS.strip("\n").splitlines()


BACKEND = PyListBackend()


class Adapter:
    """The worker's side: nested lists in, Python ints out."""

    def describe(self):
        return {
            "version": platform.python_version(),
            "build": {"implementation": platform.python_implementation()},
            "devices": [{"id": "cpu", "name": platform.processor() or platform.machine(),
                         "dtypes": list(DTYPES),
                         "unsupported": {"bfloat16": "Python has no bfloat16",
                                         "uint64": "kept out: its values past 2**63 need care",
                                         "bool": "kept out of this example"}}],
            "index_dtype": "int64",
            "index_dtypes": {"argmax": "int64", "argmin": "int64"},
            "ops": ["argmax", "argmin"],
            "modes": [],
            "layout_limits": {"views": "nested lists have no strides or views: only contiguous "
                                       "cases run"},
            "settings": {},
        }

    def function(self, op):
        better = max if op == "argmax" else min

        def fn(x, dim=None, keepdim=False):
            return reduce_lists(x, dim, keepdim, better)  # noqa: F821 - defined by exec above

        return fn

    def prepare(self, fn, mode, dim, keepdim, builtin):
        return bind(fn, dim, keepdim)

    @contextlib.contextmanager
    def configure(self, variant):
        yield {}

    def harness(self):
        return contextlib.nullcontext()

    def to_native(self, host, dtype, device, layout):
        return host.tolist()

    def synchronize(self, device, result):
        pass

    def to_host(self, x):
        return np.asarray(x, dtype=np.float64)

    def to_numpy(self, result):
        if not isinstance(result, (int, list)):
            raise TypeError(f"returned {type(result).__name__}, not Python ints")
        return as_indices(np.asarray(result, dtype=np.int64), "list", "int64")

