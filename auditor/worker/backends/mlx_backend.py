"""MLX on Apple silicon: mlx.core.argmax and argmin on the GPU (Metal) and the CPU.

Written against MLX's documented API (mlx.core.argmax(a, axis=None, keepdims=False, *,
stream=None), whose indices are uint32; mx.gpu and mx.cpu as streams; mx.eval). MLX documents no
rule for ties or NaN. This project's machine is not Apple silicon, so the adapter has not run here;
its pure parts (the backend's data, the reproducers) are tested. mlx is imported by `Adapter()`
(in a worker process) only.
"""
import os

import numpy as np

from ..casting import INT_DTYPES
from . import as_indices, bind, cpu_name, harness, no_settings, op_function
from .base import Backend, Op

mx = None  # mlx.core, once `_load` imported it
_SETTINGS_ENV = ("MLX_METAL_DEBUG", "MLX_DISABLE_COMPILE")
_DTYPES = ("float32", "float16", "bfloat16", "float64", *INT_DTYPES)
_LAYOUT_LIMITS = {"views": "MLX arrays expose no strides (mx.transpose and slicing are lazy "
                           "operations): only contiguous cases run, every dim of them"}


def _load():
    """Import mlx.core into this module's global `mx` (once)."""
    global mx
    if mx is None:
        import mlx.core as module
        mx = module


def _stream(device):
    return mx.cpu if device == "cpu" else mx.gpu


OPS = {
    "argmax": lambda x, dim, keepdim, stream=None: mx.argmax(x, axis=dim, keepdims=keepdim,
                                                             stream=stream),
    "argmin": lambda x, dim, keepdim, stream=None: mx.argmin(x, axis=dim, keepdims=keepdim,
                                                             stream=stream),
}


class MlxBackend(Backend):
    """mlx.core.argmax and argmin on Apple silicon's GPU and CPU."""

    name = "mlx"
    module = "mlx"
    distributions = ("mlx", "mlx-metal")
    install = "pip install 'argmax-audit[mlx]' (macOS on Apple silicon)"
    device_hints = {"cpu": "macOS on Apple silicon and mlx",
                    "metal": "macOS on Apple silicon and mlx (the GPU through Metal)"}
    ops = {
        "argmax": Op("max", "mlx.core.argmax (uint32 indices)", "mx.argmax(x, axis={dim}{keep})",
                     "mx.argmax(x, axis={dim}, keepdims={keepdim})",
                     promise="Indices of the maximum values along the axis. (No rule for ties "
                             "or NaN is documented.)",
                     url="https://ml-explore.github.io/mlx/build/html/python/_autosummary/"
                         "mlx.core.argmax.html"),
        "argmin": Op("min", "mlx.core.argmin (uint32 indices), against the mirrored rule",
                     "mx.argmin(x, axis={dim}{keep})",
                     "mx.argmin(x, axis={dim}, keepdims={keepdim})",
                     promise="Indices of the minimum values along the axis. (No rule for ties "
                             "or NaN is documented.)",
                     url="https://ml-explore.github.io/mlx/build/html/python/_autosummary/"
                         "mlx.core.argmin.html"),
    }
    settings_env = _SETTINGS_ENV
    reproducer = {
        "imports": "import mlx.core as mx",
        "native": "mx.set_default_device({device}); x = mx.array(base.astype({dtype}))",
        "permute": "x = mx.transpose(x, {0})", "broadcast": "x = mx.broadcast_to(x, {0})",
        "to_numpy": "np.array({0}).astype(np.float64)", "indices": "np.array(r)"}
    notes = ("Apple silicon only; uint32 indices",
             "not run on this project's machine (not Apple silicon)")

    def adapter(self):
        return Adapter()

    def import_lines(self, dtypes):
        return ["import mlx.core as mx"] + (["import ml_dtypes"] if "bfloat16" in dtypes else [])

    def dtype_expression(self, dtype):
        return {"bfloat16": "ml_dtypes.bfloat16", "bool": "np.bool_"}.get(dtype, f"np.{dtype}")

    def device_expression(self, device):
        return "mx.cpu" if device == "cpu" else "mx.gpu"


BACKEND = MlxBackend()


class Adapter:
    name = "mlx"

    def __init__(self):
        _load()
        self.device = "metal"

    def _dtypes(self, device):
        works, refused = [], {}
        for dtype in _DTYPES:
            try:
                host = np.zeros(3, dtype="uint16" if dtype == "bfloat16" else dtype)
                x = self.to_native(host, dtype, device, "contiguous")
                mx.eval(mx.argmax(x, axis=0, stream=_stream(device)))
                works.append(dtype)
            except Exception as exc:  # noqa: BLE001 - MLX's refusal, in its own words
                refused[dtype] = f"mlx refuses it: {str(exc).strip().splitlines()[0][:300]}"
        return works, refused

    def describe(self):
        devices = []
        for device in ("metal", "cpu"):
            if device == "metal" and not mx.metal.is_available():
                continue
            dtypes, refused = self._dtypes(device)
            devices.append({"id": device, "name": cpu_name() if device == "cpu" else "Apple GPU",
                            "dtypes": dtypes, "unsupported": refused})
        return {
            "version": getattr(mx, "__version__", "unknown"),
            "build": {"metal": bool(mx.metal.is_available())},
            "devices": devices,
            "index_dtype": "uint32",
            "index_dtypes": {op: "uint32" for op in OPS},
            "ops": list(OPS),
            "modes": [],
            "layout_limits": dict(_LAYOUT_LIMITS),
            "settings": self.settings(),
        }

    def settings(self, variant=None):
        return {k: os.environ[k] for k in _SETTINGS_ENV if k in os.environ}

    def function(self, op):
        adapter = self
        body = OPS[op]
        return op_function({op: lambda x, dim, keepdim: body(x, dim, keepdim,
                                                               _stream(adapter.device))}, op)

    def prepare(self, fn, mode, dim, keepdim, builtin):
        if mode:
            raise ValueError(f"mlx has no execution mode {mode!r}")
        return bind(fn, dim, keepdim)

    def configure(self, variant):
        return no_settings(self.settings(variant))

    def harness(self):
        return harness()

    def to_native(self, host, dtype, device, layout):
        """Return `host` (the worker's private array of `dtype`; bfloat16 as bits) as an MLX
        array (contiguous cases only reach here)."""
        self.device = device
        if dtype == "bfloat16":
            return mx.array(host.view(np.uint16)).view(mx.bfloat16)
        return mx.array(host)

    def synchronize(self, device, result):
        mx.eval(result)  # MLX is lazy: computing the result is waiting for it

    def to_host(self, x):
        return None  # MLX arrays are immutable from Python: nothing to check

    def to_numpy(self, result):
        if not isinstance(result, mx.array):
            raise TypeError(f"returned {type(result).__name__}, not an mlx.core.array")
        return as_indices(np.array(result), "mlx.core.array")
