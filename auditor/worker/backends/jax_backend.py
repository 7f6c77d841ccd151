"""JAX on every device it reports: cpu, gpu (as cuda:N or rocm:N) and tpu (as tpu:N); as called,
through jax.jit, or op by op (jax.disable_jit). x64 and XLA_FLAGS are set for the whole process by
the driver (they must be set before jax is first used). jax is imported by `Adapter()` (in a
worker process), never when this module is imported."""
import os
import sys

import numpy as np

from .. import kept, layouts
from ..casting import INT_DTYPES
from ..kept import KEEP_ENV
from ..protocol import SHARED_ENV
from . import as_indices, bind, cpu_name, harness, no_settings, op_function, view
from .base import Backend, Modifier, Op

jax = jnp = lax = None  # the modules, once `_load` imported them
#: XLA flags users set for deterministic results (no effect on the CPU, which is deterministic).
XLA_DETERMINISTIC = "--xla_gpu_deterministic_ops=true"


def _load():
    """Import jax into this module's globals (once)."""
    global jax, jnp, lax, _VIEWS
    if jax is None:
        import jax as module
        import jax.numpy as numpy_module
        jax, jnp, lax = module, numpy_module, module.lax
        _VIEWS = {"permute": jnp.transpose, "slice": lambda x, at: x[at], "reshape": jnp.reshape,
                  "broadcast": jnp.broadcast_to}


#: jax arrays have no strides: a view is a dense array (jnp.transpose and slicing compute one).
_LAYOUT_LIMITS = {"views": "jax arrays have no strides or views (jnp.transpose and slicing make a "
                           "dense array): only contiguous cases run, every dim of them"}
_VIEWS = {}
#: Integer dtypes that need x64 (without it jax turns them into their 32-bit kind).
_WIDE = ("int64", "uint64")
_SETTINGS_ENV = ("XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64", "TF_CPP_MIN_LOG_LEVEL")
MODES = ("jit", "op-by-op")
#: The persistent cache's options, set together or not at all (jax versions differ in which they
#: have). Its entries go to a kept.FolderCache: each written whole (jax's own cache writes in
#: place, and with a size limit locks the folder and lists it at every write).
_CACHE_OPTIONS = (("jax_persistent_cache_min_compile_time_secs", 0.0),
                  ("jax_persistent_cache_min_entry_size_bytes", 0))


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
    """Keep compiled executables where the run's other processes of this worker group, and
    later runs on this machine, load them rather than compile every signature again; return
    how (a setting of the targets), or None.

    jax compiles every new shape, dim and dtype, and a quick suite holds hundreds: compiling
    them once instead of once per process halves a CPU audit's time, and a later run with the
    same jax on the same machine compiles nothing. Only where jax sees CPUs alone: XLA compiles
    the same executable for the same program, jax and CPU there (jax's cache key holds the
    program, compile options and versions; the kept folder's name holds the CPU's model and
    instruction set), while on a GPU its autotuning may choose differently in each process,
    which the audit must see. A cache the user configured is left alone (and reported as a
    setting, JAX_COMPILATION_CACHE_DIR).
    """
    run_folder = os.environ.get(SHARED_ENV)
    if not (run_folder or os.environ.get(KEEP_ENV)) or any(key != "cpu" for key in devices):
        return None
    try:
        if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
            return None
        before = [(name, getattr(jax.config, name)) for name, _ in _CACHE_OPTIONS]
        from jax._src import compilation_cache as cache_module
        from jax._src.compilation_cache_interface import CacheInterface
        with cache_module._cache_initialized_mutex:
            if cache_module._cache is not None or cache_module._cache_initialized:
                return None
    except (AttributeError, ImportError):  # another jax than the ones known: compile in each process
        return None
    folder, how = run_folder, "shared by the run's processes of this group (CPU: the same executables)"
    if os.environ.get(KEEP_ENV):
        try:
            folder = kept.folder_for(os.path.join(os.environ[KEEP_ENV], "jax"), _compile_facts())
            how = (f"kept across runs in {folder} (CPU: the same executables for the same "
                   "program, jax version and processor); ARGMAX_AUDIT_COMPILE_CACHE=off keeps them "
                   "for one run")
        except Exception as exc:  # Unsafe, or anything else: never the worker's death
            if not run_folder:
                return None
            how += f"; not kept across runs: {exc}"
    try:
        for name, value in _CACHE_OPTIONS:
            jax.config.update(name, value)
        jax.config.update("jax_compilation_cache_dir", folder)
        with cache_module._cache_initialized_mutex:
            cache_module._cache = type("FolderCache", (kept.FolderCache, CacheInterface), {})(
                folder, touch=folder != run_folder)
            cache_module._cache_initialized = True
    except Exception:
        for name, value in [*before, ("jax_compilation_cache_dir", None)]:
            jax.config.update(name, value)
        return None
    return how


def _compile_facts():
    """Return what names a folder of executables kept across runs: jax's and XLA's versions,
    the flags and options that change what XLA makes, and the processor."""
    import jaxlib

    return {"jax": jax.__version__, "jaxlib": getattr(jaxlib, "__version__", None),
            "jaxlib_build": _libraries(os.path.dirname(jaxlib.__file__)),
            "platform_version": jax.devices("cpu")[0].client.platform_version,
            "python": list(sys.version_info[:2]),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""), "x64": _x64(),
            "cpu": kept.machine_facts()}


def _libraries(folder):
    """Return [name, size, mtime] of the compiled libraries in `folder` (jaxlib's XLA): two
    builds under one version string (a nightly, a source build) do not share executables."""
    found = []
    for entry in os.scandir(folder):
        if entry.name.endswith((".so", ".pyd", ".dylib")) and entry.is_file():
            info = entry.stat()
            found.append([entry.name, info.st_size, int(info.st_mtime)])
    return sorted(found)


def _top_k_expression(dim, keepdim):
    picked = f"jax.lax.top_k(jnp.moveaxis(x, {dim}, -1), 1)[1][..., 0]"
    return f"jnp.expand_dims({picked}, {dim})" if keepdim else picked


class JaxBackend(Backend):
    """jnp.argmax, argmin and lax.top_k(1); as called, jit, op by op, x64, XLA flags."""

    name = "jax"
    module = "jax"
    distributions = ("jax", "jaxlib")
    install = "pip install 'argmax-audit[jax]'"
    device_hints = {
        "cpu": "any build",
        "cuda": "an NVIDIA GPU and jax[cuda12]",
        "rocm": "an AMD GPU and a ROCm build of jax",
        "tpu": "a TPU VM and jax[tpu]",
    }
    ops = {
        "argmax": Op("max", "argmax", "argmax(x, dim={dim}{keep})",
                     "jnp.argmax(x, axis={dim}, keepdims={keepdim})",
                     promise="In case of multiple occurrences of the maximum values, the indices "
                             "corresponding to the first occurrence are returned.",
                     url="https://docs.jax.dev/en/latest/_autosummary/jax.numpy.argmax.html"),
        "argmin": Op("min", "argmin, against the mirrored rule (first minimum, NaN first)",
                     "argmin(x, dim={dim}{keep})", "jnp.argmin(x, axis={dim}, keepdims={keepdim})",
                     promise="In case of multiple occurrences of the minimum values, the indices "
                             "corresponding to the first occurrence are returned.",
                     url="https://docs.jax.dev/en/latest/_autosummary/jax.numpy.argmin.html"),
        "topk": Op("max", "jax.lax.top_k(x, 1)", "lax.top_k(x, 1) along dim {dim}{keep_note}",
                   _top_k_expression,
                   expression_none="jax.lax.top_k(x.reshape(-1), 1)[1][0]{keep_all}",
                   promise="If two elements are equal, the lower-index element appears first.",
                   url="https://docs.jax.dev/en/latest/_autosummary/jax.lax.top_k.html"),
    }
    modifiers = {
        "jit": Modifier("mode", "jax.jit, compiled once per input signature"),
        "op-by-op": Modifier("mode", "inside jax.disable_jit()"),
        "x64": Modifier("x64", "jax_enable_x64 on (int64 indices, float64)", process=True,
                        env=(("JAX_ENABLE_X64", "1"),)),
        "xla-deterministic": Modifier("xla", f"XLA_FLAGS += {XLA_DETERMINISTIC}", process=True,
                                      env=(("XLA_FLAGS", ("append", XLA_DETERMINISTIC)),)),
    }
    all_variants = ("eager", "jit", "op-by-op", "x64", "jit+x64", "xla-deterministic")
    compiling_modes = ("jit",)
    settings_env = _SETTINGS_ENV
    reproducer = {
        "imports": "import jax, jax.numpy as jnp",
        "native": "x = jax.device_put(base.astype({dtype}), {device})",
        "permute": "x = jnp.transpose(x, {0})", "broadcast": "x = jnp.broadcast_to(x, {0})",
        "to_numpy": "np.asarray({0}, dtype=np.float64)", "indices": "np.asarray(r)"}
    notes = ("no strides or views: only contiguous cases run",
             "int32 indices unless x64; lax.top_k's indices are int32 always")

    def adapter(self):
        return Adapter()

    def dtype_expression(self, dtype):
        return {"bfloat16": "jnp.bfloat16", "bool": "np.bool_"}.get(dtype, f"np.{dtype}")

    def device_expression(self, device):
        if device == "cpu":
            return "jax.devices('cpu')[0]"
        return f"jax.devices()[{device.split(':')[-1]}]"

    def call_lines(self, mode, variant_name, expression):
        if mode == "jit":
            return [f"f = jax.jit(lambda x: {expression})  # variant {variant_name}"], ["    r = f(x)"]
        if mode == "op-by-op":
            return [], ["    with jax.disable_jit():  # variant op-by-op", f"        r = {expression}"]
        return super().call_lines(mode, variant_name, expression)

    def setting_lines(self, modifiers):
        before, after = [], []
        if modifiers.get("xla-deterministic"):
            before = ["import os",
                      f"os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + "
                      f"' {XLA_DETERMINISTIC}').strip()  # before jax starts"]
        if modifiers.get("x64"):
            after.append("jax.config.update('jax_enable_x64', True)")
        return before, after


BACKEND = JaxBackend()


class Adapter:
    name = "jax"

    def __init__(self):
        _load()
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
