"""JAX on every device it reports: cpu, gpu (as cuda:N or rocm:N) and tpu (as tpu:N); as called,
through jax.jit, or op by op (jax.disable_jit). x64 and XLA_FLAGS are set for the whole process by
the driver (they must be set before jax is first used)."""
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import layouts
from ..casting import INT_DTYPES
from ..protocol import SHARED_ENV
from . import as_indices, bind, cpu_name, harness, no_settings, op_function, view

#: jax arrays have no strides: a view is a dense array (jnp.transpose and slicing compute one).
_LAYOUT_LIMITS = {"views": "jax arrays have no strides or views (jnp.transpose and slicing make a "
                           "dense array): only contiguous cases run, every dim of them"}
_VIEWS = {"permute": jnp.transpose, "slice": lambda x, at: x[at], "reshape": jnp.reshape,
          "broadcast": jnp.broadcast_to}
#: Integer dtypes that need x64 (without it jax turns them into their 32-bit kind).
_WIDE = ("int64", "uint64")
_SETTINGS_ENV = ("XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64", "TF_CPP_MIN_LOG_LEVEL")
MODES = ("jit", "op-by-op")
#: The persistent cache's options, set together or not at all (jax versions differ in which they
#: have). A size limit makes jax take a file lock for every read and write of the cache, so two
#: processes never see each other's half-written entries.
_CACHE_OPTIONS = (("jax_persistent_cache_min_compile_time_secs", 0.0),
                  ("jax_persistent_cache_min_entry_size_bytes", 0),
                  ("jax_compilation_cache_max_size", 1 << 30))


def _top_k(x, dim, keepdim):
    """jax.lax.top_k(x, 1)'s index along `dim` (top_k works on the last axis)."""
    if dim is None:
        index = lax.top_k(x.reshape(-1), 1)[1][0]
        return index.reshape((1,) * x.ndim) if keepdim else index
    index = lax.top_k(jnp.moveaxis(x, dim, -1), 1)[1][..., 0]
    return jnp.expand_dims(index, dim) if keepdim else index


OPS = {
    "argmax": lambda x, dim, keepdim: jnp.argmax(x, axis=dim, keepdims=keepdim),
    "argmin": lambda x, dim, keepdim: jnp.argmin(x, axis=dim, keepdims=keepdim),
    "topk": _top_k,
}


def _x64():
    return bool(jax.config.read("jax_enable_x64"))


def _devices():
    """Return {audit device id: jax device}, cpu first."""
    found = {}
    for backend in ("cpu", "gpu", "tpu"):
        try:
            devices = jax.devices(backend)
        except RuntimeError:
            continue
        for i, device in enumerate(devices):
            if backend == "cpu":
                if i == 0:
                    found["cpu"] = device
            elif backend == "gpu":
                kind = "rocm" if "rocm" in device.client.platform_version.lower() else "cuda"
                found[f"{kind}:{i}"] = device
            else:
                found[f"tpu:{i}"] = device
    return found


def _share_compilations(devices):
    """Keep compiled executables in the run's shared folder, so the run's other processes of
    this worker group load them rather than compile every signature again; return how, or None.

    jax compiles every new shape, dim and dtype, and a quick suite holds hundreds: compiling
    them once per run instead of once per process halves a CPU audit's time. Only where jax sees
    CPUs alone: XLA compiles the same executable for the same program there, while on a GPU its
    autotuning may choose differently in each process, which the audit must see. A cache the
    user configured is left alone (and reported as a setting, JAX_COMPILATION_CACHE_DIR).
    """
    folder = os.environ.get(SHARED_ENV)
    if not folder or any(key != "cpu" for key in devices):
        return None
    try:
        if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
            return None
        before = [(name, getattr(jax.config, name)) for name, _ in _CACHE_OPTIONS]
    except AttributeError:  # an older jax without one of them: compile in each process
        return None
    try:
        for name, value in _CACHE_OPTIONS:
            jax.config.update(name, value)
        jax.config.update("jax_compilation_cache_dir", folder)
    except Exception:
        for name, value in before:
            jax.config.update(name, value)
        return None
    return "shared by the run's processes of this group (CPU: the same executables)"


class Adapter:
    name = "jax"

    def __init__(self):
        self.devices = _devices()
        self.shared_cache = _share_compilations(self.devices)

    def describe(self):
        narrow = [d for d in INT_DTYPES if d not in _WIDE]
        dtypes = ["float32", "float16", "bfloat16"] + (["float64"] if _x64() else []) + narrow + (
            list(_WIDE) if _x64() else [])
        unsupported = {} if _x64() else {d: "jax_enable_x64 is off (JAX_ENABLE_X64=1)"
                                         for d in ("float64", *_WIDE)}
        devices = []
        for key, device in self.devices.items():
            name = cpu_name() if key == "cpu" else getattr(device, "device_kind", str(device))
            devices.append({"id": key, "name": name,
                            "platform_version": device.client.platform_version,
                            "dtypes": dtypes, "unsupported": unsupported})
        import jaxlib
        index = "int64" if _x64() else "int32"
        return {
            "version": jax.__version__,
            "build": {"jaxlib": getattr(jaxlib, "__version__", None)},
            "devices": devices,
            "index_dtype": index,
            # lax.top_k's indices are int32 whatever x64 says (XLA's TopK returns s32).
            "index_dtypes": {"argmax": index, "argmin": index, "topk": "int32"},
            "ops": list(OPS),
            "modes": list(MODES),
            # Called as it is, jax compiles every new signature: its processes run longest.
            "compiles_per_signature": True,
            "layout_limits": dict(_LAYOUT_LIMITS),
            "settings": self.settings(),
        }

    def settings(self, variant=None):
        mode = (variant or {}).get("mode")
        return {"x64": _x64(), **({"compilation_cache": self.shared_cache} if self.shared_cache else {}),
                "jit": {None: "as called (jnp functions compile per shape)", "jit": "jax.jit",
                        "op-by-op": "jax.disable_jit()"}.get(mode, mode),
                **{k: os.environ[k] for k in _SETTINGS_ENV if k in os.environ}}

    def function(self, op):
        return op_function(OPS, op)

    def prepare(self, fn, mode, dim, keepdim, builtin):
        """Return `x -> fn(x, dim, keepdim)`, through jax.jit (one per signature) or op by op."""
        call = bind(fn, dim, keepdim)
        if mode is None:
            return call
        if mode == "jit":
            return jax.jit(call)
        if mode == "op-by-op":
            def op_by_op(x):
                with jax.disable_jit():
                    return call(x)
            return op_by_op
        raise ValueError(f"jax has no execution mode {mode!r}")

    def configure(self, variant):
        return no_settings(self.settings(variant))

    def harness(self):
        return harness()

    def to_native(self, host, dtype, device, layout):
        """Return `host` (the worker's private array of `dtype`; bfloat16 as bits) in `layout`,
        built with jax's own operations (a dense array: jax has no views)."""
        memory = layouts.base(host, layout)
        if dtype == "bfloat16":
            memory = memory.view(jnp.bfloat16)
        memory = jax.device_put(memory, self.devices[device])  # a numpy dtype: no convert compiled
        return view(memory, layout, host.shape, _VIEWS)

    def argmax(self, x, dim, keepdim):
        return jnp.argmax(x, axis=dim, keepdims=keepdim)

    def synchronize(self, device, result):
        if hasattr(result, "block_until_ready"):
            result.block_until_ready()

    def to_host(self, x):
        return None  # jax arrays are immutable: nothing to check

    def to_numpy(self, result):
        if not isinstance(result, jax.Array):
            raise TypeError(f"returned {type(result).__name__}, not a jax.Array")
        return as_indices(np.asarray(result), "jax.Array")
