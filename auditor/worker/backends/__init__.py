"""One adapter per framework; every version or device workaround lives in its adapter alone.

An adapter turns the audit's exact input values into the framework's native array on a device and
dtype, calls the framework's argmax (or a twin of it: `OPS`, each `fn(x, dim, keepdim)`), and turns
whatever came back into numpy. For an execution variant it wraps the call (`prepare`: torch.compile,
jax.jit, jax.disable_jit) and sets process state around a target's calls (`configure`: threads,
deterministic mode, denormal flushing), reporting the settings in effect.
"""
import contextlib
import importlib
import itertools
import sys

import numpy as np

from .. import layouts

_FRESH = itertools.count()

#: The built-in backends: name -> "module:attribute" (the entry points argmax-audit registers
#: in its pyproject.toml under `argmax_audit.backends`; used as they are where no metadata is).
BUILTIN = {
    "numpy": "auditor.worker.backends.np_backend:BACKEND",
    "torch": "auditor.worker.backends.torch_backend:BACKEND",
    "jax": "auditor.worker.backends.jax_backend:BACKEND",
    "tensorflow": "auditor.worker.backends.tf_backend:BACKEND",
    "onnxruntime": "auditor.worker.backends.ort_backend:BACKEND",
    "cupy": "auditor.worker.backends.cupy_backend:BACKEND",
    "mlx": "auditor.worker.backends.mlx_backend:BACKEND",
}
_HOME = "auditor.worker."


def resolve(reference):
    """Import and return the backend object `reference` ("module:attribute") names.

    A built-in (under `auditor.worker.`) is found in this worker package wherever it lives: a
    staged copy in another environment is a top-level package of another name."""
    module_name, _, attribute = reference.partition(":")
    if module_name.startswith(_HOME):
        package = __name__.rsplit(".", 1)[0]  # auditor.worker, or the staged copy's name
        module_name = f"{package}.{module_name[len(_HOME):]}"
    backend = importlib.import_module(module_name)
    for part in (attribute or "BACKEND").split("."):
        backend = getattr(backend, part)
    return backend() if isinstance(backend, type) else backend


def load(framework, reference=None):
    """Return the worker-side adapter of `framework` (imports the framework itself), from the
    backend `reference` names (default: the built-in of that name)."""
    return resolve(reference or BUILTIN[framework]).adapter()


def optional_ml_dtypes():
    """Return the ml_dtypes module (numpy's bfloat16), or None where it is not installed.

    Imported by adapters in the worker only, and only once a bfloat16 array is made
    (`ml_dtypes_present` says beforehand whether it can be): importing ml_dtypes 0.7 takes
    about a second of CPU (0.5 and 0.6 a tenth of that), which neither the driver nor a worker
    that never meets bfloat16 should pay."""
    try:
        import ml_dtypes
    except (ImportError, SystemError):  # bfloat16 is then unsupported, not an error (SystemError:
        return None  # an ml_dtypes built for another numpy major, as a Ray runtime_env inherits)
    return ml_dtypes


def bfloat16():
    """Return numpy's bfloat16 dtype (ml_dtypes.bfloat16), importing ml_dtypes on first use."""
    module = optional_ml_dtypes()
    if module is None and ml_dtypes_present():
        raise RuntimeError(f"bfloat16 needs ml_dtypes, which is installed but does not load "
                           f"under numpy {np.__version__} (built for another numpy)")
    if module is None:
        raise RuntimeError("bfloat16 needs ml_dtypes (pip install ml_dtypes)")
    return module.bfloat16


def ml_dtypes_present():
    """Return ml_dtypes's version where it is installed (without importing it), else None."""
    import importlib.metadata
    import importlib.util

    if "ml_dtypes" not in sys.modules and importlib.util.find_spec("ml_dtypes") is None:
        return None
    try:
        return importlib.metadata.version("ml_dtypes")
    except importlib.metadata.PackageNotFoundError:  # importable without metadata (a checkout)
        return getattr(optional_ml_dtypes(), "__version__", "unknown")


def cpu_name():
    """Return the processor's model name, for the environment inventory."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def view(memory, layout, shape, ops):
    """Return the `layout` view (auditor/worker/layouts.py) of `memory` with a framework's `ops`:
    {"permute": fn(x, axes), "slice": fn(x, slices), "reshape": fn(x, shape),
    "broadcast": fn(x, shape)}."""
    for op, arg in layouts.steps(layout, tuple(shape)):
        x_arg = layouts.slices(arg) if op == "slice" else arg
        memory = ops[op](memory, x_arg)
    return memory


_NAMES = {}  # numpy dtype -> its name (numpy computes `dtype.name` in Python on every access)


def index_dtype_name(dtype):
    """Return a framework-neutral name for a numpy dtype (`int64`, `bfloat16`, ...)."""
    name = _NAMES.get(dtype)
    if name is None:
        name = np.dtype(dtype).name
        if len(_NAMES) < 256:  # the few dtypes of an audit (whatever a user's function returns)
            _NAMES[dtype] = name
    return name


def as_indices(array, type_name, name=None):
    """Return (`int64 array`, `original dtype name`) or raise TypeError for garbage."""
    array = np.asarray(array)
    name = name or index_dtype_name(array.dtype)
    if array.dtype.kind in "iub":
        return array.astype(np.int64), name
    if array.dtype.kind == "f" or index_dtype_name(array.dtype) == "bfloat16":
        wide = array.astype(np.float64)
        if np.all(np.isfinite(wide)) and np.all(wide == np.round(wide)):
            return wide.astype(np.int64), name
        raise TypeError(f"returned {type_name} of {name} holding non-integer indices")
    raise TypeError(f"returned {type_name} of {name}, not integer indices")


def bind(fn, dim, keepdim):
    """Return `x -> fn(x, dim=dim, keepdim=keepdim)` with a code object of its own.

    A compiler that caches per code object (torch.compile) then keeps one entry per call
    signature, never running into its recompilation limit (where it would fall back to eager).
    """
    def call(x):
        return fn(x, dim=dim, keepdim=keepdim)

    call.__code__ = call.__code__.replace(co_name=f"audited_call_{next(_FRESH)}")
    return call


def op_function(ops, op):
    """Return `ops[op]` as `fn(x, dim=None, keepdim=False)`, the form user implementations take."""
    body = ops[op]

    def fn(x, dim=None, keepdim=False):
        return body(x, dim, keepdim)

    return fn


@contextlib.contextmanager
def no_settings(settings):
    """The `configure` of an adapter without process state to set: report `settings`."""
    yield settings


def harness():
    """The `harness` of an adapter whose variants leave arithmetic alone: nothing to suspend."""
    return contextlib.nullcontext()
