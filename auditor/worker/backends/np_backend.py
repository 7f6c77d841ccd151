"""NumPy on the CPU; bfloat16 through ml_dtypes where it is installed."""
import os

import numpy as np

from .. import layouts
from ..casting import INT_DTYPES
from . import (
    as_indices,
    bfloat16,
    bind,
    cpu_name,
    harness,
    ml_dtypes_present,
    no_settings,
    op_function,
    view,
)
from .base import Backend, Documented, Op

_SETTINGS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _argsort_last(x, dim, keepdim):
    """np.argsort(x, kind="stable") read from the right end: the top-1 of a top-k list."""
    order = np.argsort(x, axis=dim, kind="stable")
    if dim is None:
        index = order[-1]
        return np.reshape(index, (1,) * np.ndim(x)) if keepdim else index
    return np.take(order, [-1] if keepdim else -1, axis=dim)


OPS = {
    "argmax": lambda x, dim, keepdim: np.argmax(x, axis=dim, keepdims=keepdim),
    "argmin": lambda x, dim, keepdim: np.argmin(x, axis=dim, keepdims=keepdim),
    "argsort": _argsort_last,
}


_VIEWS = {"permute": np.transpose, "slice": lambda x, at: x[at], "reshape": np.reshape,
          "broadcast": np.broadcast_to}


def _argsort_expression(dim, keepdim):
    return f"np.take(np.argsort(x, axis={dim}, kind='stable'), {[-1] if keepdim else -1}, axis={dim})"


class NumpyBackend(Backend):
    """numpy's argmax, argmin and its stable argsort read from the right end, on the CPU."""

    name = "numpy"
    module = "numpy"
    distributions = ("numpy", "ml_dtypes")
    install = "pip install numpy"
    ops = {
        "argmax": Op("max", "argmax", "argmax(x, dim={dim}{keep})",
                     "np.argmax(x, axis={dim}, keepdims={keepdim})",
                     promise="In case of multiple occurrences of the maximum values, the indices "
                             "corresponding to the first occurrence are returned.",
                     url="https://numpy.org/doc/stable/reference/generated/numpy.argmax.html"),
        "argmin": Op("min", "argmin, against the mirrored rule (first minimum, NaN first)",
                     "argmin(x, dim={dim}{keep})", "np.argmin(x, axis={dim}, keepdims={keepdim})",
                     promise="In case of multiple occurrences of the minimum values, the indices "
                             "corresponding to the first occurrence are returned.",
                     url="https://numpy.org/doc/stable/reference/generated/numpy.argmin.html"),
        "argsort": Op(
            "max", "np.argsort(x, kind='stable') read from the right end",
            "argsort(x, axis={dim}, kind='stable')[-1]{keep_note}", _argsort_expression,
            expression_none="np.argsort(x, axis=None, kind='stable')[-1]{keep_all}",
            documented=Documented(
                url="https://numpy.org/doc/stable/reference/generated/numpy.sort.html",
                quote=("A stable sort keeps items with the same key in the same relative order. "
                       "[...] In numpy versions >= 1.4.0 nan values are sorted to the end."),
                picks="last",
                meaning="read from the right end gives the last of equal values (and the last NaN)")),
    }
    settings_env = _SETTINGS_ENV
    reproducer = {"imports": "import numpy as np", "native": "x = base.astype({dtype})",
                  "permute": "x = x.transpose({0})", "broadcast": "x = np.broadcast_to(x, {0})",
                  "to_numpy": "np.asarray({0}, dtype=np.float64)", "indices": "np.asarray(r)"}
    notes = ("bfloat16 through ml_dtypes",)

    def adapter(self):
        return Adapter()

    def import_lines(self, dtypes):
        return ["import ml_dtypes"] if "bfloat16" in dtypes else []

    def dtype_expression(self, dtype):
        return {"bfloat16": "ml_dtypes.bfloat16", "bool": "np.bool_"}.get(dtype, f"np.{dtype}")


BACKEND = NumpyBackend()


class Adapter:
    name = "numpy"

    def describe(self):
        dtypes = ["float32", "float16", "float64", *INT_DTYPES]
        unsupported = {}
        version = ml_dtypes_present()  # imported at the first bfloat16 array (see `bfloat16`)
        if version is not None:
            dtypes.insert(2, "bfloat16")
        else:
            unsupported["bfloat16"] = "needs ml_dtypes (pip install ml_dtypes)"
        device = {"id": "cpu", "name": cpu_name(),
                  "dtypes": dtypes, "unsupported": unsupported}
        return {
            "version": np.__version__,
            "build": {"ml_dtypes": version},
            "devices": [device],
            "index_dtype": np.dtype(np.intp).name,
            "index_dtypes": {op: np.dtype(np.intp).name for op in OPS},
            "ops": list(OPS),
            "modes": [],
            "layout_limits": {},  # numpy has every view, negative steps included
            "settings": self.settings(),
        }

    def settings(self, variant=None):
        return {k: os.environ[k] for k in _SETTINGS_ENV if k in os.environ}

    def function(self, op):
        return op_function(OPS, op)

    def prepare(self, fn, mode, dim, keepdim, builtin):
        if mode:
            raise ValueError(f"numpy has no execution mode {mode!r}")
        return bind(fn, dim, keepdim)

    def configure(self, variant):
        return no_settings(self.settings(variant))

    def harness(self):
        return harness()

    def to_native(self, host, dtype, device, layout):
        """Return `host` (the worker's private array of `dtype`; bfloat16 as bits) in `layout`."""
        memory = layouts.base(host, layout)
        if dtype == "bfloat16":
            memory = memory.view(bfloat16())
        return view(memory, layout, host.shape, _VIEWS)

    def argmax(self, x, dim, keepdim):
        return np.argmax(x, axis=dim, keepdims=keepdim)

    def synchronize(self, device, result):
        pass

    def to_host(self, x):
        return np.asarray(x).astype(np.float64)

    def to_numpy(self, result):
        if not isinstance(result, (np.ndarray, np.generic)):
            raise TypeError(f"returned {type(result).__name__}, not a numpy array")
        return as_indices(result, type(result).__name__)
