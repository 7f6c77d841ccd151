"""CuPy on every CUDA (or ROCm) device it sees: cupy.argmax and cupy.argmin, numpy's API on a GPU.

Written against CuPy's documented API (cupy.argmax(a, axis=None, dtype=None, out=None,
keepdims=False); cupy.cuda.runtime.getDeviceCount; cupy.cuda.Device(n)). This project's machine
has no CUDA GPU, so the adapter has not run here; its pure parts (the backend's data, the
reproducers) are tested. cupy is imported by `Adapter()` (in a worker process) only.
"""
import os

import numpy as np

from .. import layouts
from ..casting import INT_DTYPES
from . import as_indices, bind, harness, no_settings, op_function, view
from .base import Backend, Op

cupy = None  # the module, once `_load` imported it
_VIEWS = {}
_SETTINGS_ENV = ("CUDA_VISIBLE_DEVICES", "CUPY_ACCELERATORS", "CUPY_TF32", "CUB_PATH")
_DTYPES = ("float32", "float16", "float64", *INT_DTYPES)


def _load():
    """Import cupy into this module's global `cupy` (once)."""
    global cupy, _VIEWS
    if cupy is None:
        import cupy as module
        cupy = module
        _VIEWS = {"permute": cupy.transpose, "slice": lambda x, at: x[at],
                  "reshape": cupy.reshape, "broadcast": cupy.broadcast_to}


OPS = {
    "argmax": lambda x, dim, keepdim: cupy.argmax(x, axis=dim, keepdims=keepdim),
    "argmin": lambda x, dim, keepdim: cupy.argmin(x, axis=dim, keepdims=keepdim),
}


class CupyBackend(Backend):
    """cupy.argmax and cupy.argmin on CUDA (or ROCm) devices."""

    name = "cupy"
    module = "cupy"
    distributions = ("cupy", "cupy-cuda12x", "cupy-cuda11x", "cupy-rocm-5-0", "cupy-rocm-6-0")
    install = "pip install 'argmax-audit[cupy]' (CUDA 12; another cupy-cudaNNx for other CUDA)"
    device_hints = {"cuda": "an NVIDIA GPU, its driver and a cupy-cudaNNx wheel",
                    "rocm": "an AMD GPU and a cupy-rocm wheel"}
    ops = {
        "argmax": Op("max", "cupy.argmax", "cupy.argmax(x, axis={dim}{keep})",
                     "cupy.argmax(x, axis={dim}, keepdims={keepdim})",
                     promise="Returns the indices of the maximum along an axis. [...] See also "
                             "numpy.argmax()",
                     url="https://docs.cupy.dev/en/stable/reference/generated/cupy.argmax.html"),
        "argmin": Op("min", "cupy.argmin, against the mirrored rule",
                     "cupy.argmin(x, axis={dim}{keep})",
                     "cupy.argmin(x, axis={dim}, keepdims={keepdim})",
                     promise="Returns the indices of the minimum along an axis. [...] See also "
                             "numpy.argmin()",
                     url="https://docs.cupy.dev/en/stable/reference/generated/cupy.argmin.html"),
    }
    settings_env = _SETTINGS_ENV
    reproducer = {
        "imports": "import cupy",
        "native": "with cupy.cuda.Device({device}): x = cupy.asarray(base.astype({dtype}))",
        "permute": "x = x.transpose({0})", "broadcast": "x = cupy.broadcast_to(x, {0})",
        "to_numpy": "cupy.asnumpy({0}).astype(np.float64)", "indices": "cupy.asnumpy(r)"}
    notes = ("CUDA or ROCm devices only; bfloat16 is not a CuPy dtype",
             "not run on this project's machine (no CUDA GPU)")

    def adapter(self):
        return Adapter()

    def device_expression(self, device):
        return device.split(":")[-1]

    def dtype_expression(self, dtype):
        return "np.bool_" if dtype == "bool" else f"np.{dtype}"


BACKEND = CupyBackend()


def device_number(device):
    """Return the CUDA device number of audit device `device` (`cuda:1` -> 1)."""
    return int(device.split(":")[1])


class Adapter:
    name = "cupy"

    def __init__(self):
        _load()
        self.device = None

    def describe(self):
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - cupy.cuda.runtime.CUDARuntimeError and kin
            raise RuntimeError(f"CuPy {cupy.__version__} is installed but sees no GPU: {exc}") from None
        if not count:
            raise RuntimeError(f"CuPy {cupy.__version__} is installed but sees no GPU")
        kind = "rocm" if getattr(cupy.cuda.runtime, "is_hip", False) else "cuda"
        devices = []
        for number in range(count):
            properties = cupy.cuda.runtime.getDeviceProperties(number)
            name = properties.get("name", b"")
            devices.append({"id": f"{kind}:{number}",
                            "name": name.decode() if isinstance(name, bytes) else str(name),
                            "dtypes": list(_DTYPES),
                            "unsupported": {"bfloat16": "CuPy has no bfloat16 dtype"}})
        return {
            "version": cupy.__version__,
            "build": {"cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
                      "cuda_driver": cupy.cuda.runtime.driverGetVersion()},
            "devices": devices,
            "index_dtype": "int64",
            "index_dtypes": {op: "int64" for op in OPS},
            "ops": list(OPS),
            "modes": [],
            "layout_limits": {},  # CuPy arrays have numpy's views, negative steps included
            "settings": self.settings(),
        }

    def settings(self, variant=None):
        return {k: os.environ[k] for k in _SETTINGS_ENV if k in os.environ}

    def function(self, op):
        return op_function(OPS, op)

    def prepare(self, fn, mode, dim, keepdim, builtin):
        if mode:
            raise ValueError(f"cupy has no execution mode {mode!r}")
        call = bind(fn, dim, keepdim)
        adapter = self

        def on_device(x):
            with cupy.cuda.Device(adapter.device):
                return call(x)

        return on_device

    def configure(self, variant):
        return no_settings(self.settings(variant))

    def harness(self):
        return harness()

    def to_native(self, host, dtype, device, layout):
        """Return `host` (the worker's private array of `dtype`) in `layout` on `device`: the
        memory copied to the GPU as it is, then viewed there with CuPy's own operations."""
        self.device = device_number(device)
        memory = layouts.base(host, layout)
        with cupy.cuda.Device(self.device):
            return view(cupy.asarray(memory), layout, host.shape, _VIEWS)

    def synchronize(self, device, result):
        cupy.cuda.Device(device_number(device)).synchronize()

    def to_host(self, x):
        return cupy.asnumpy(x).astype(np.float64)

    def to_numpy(self, result):
        if not isinstance(result, cupy.ndarray):
            raise TypeError(f"returned {type(result).__name__}, not a cupy.ndarray")
        return as_indices(cupy.asnumpy(result), "cupy.ndarray")

