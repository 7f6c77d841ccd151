"""PyTorch on the CPU, every CUDA device and MPS where present; eager or through torch.compile.

torch is imported by `Adapter()` (in a worker process), never when this module is imported.
"""
import contextlib
import importlib
import importlib.util
import os
import shutil
import sys

from .. import layouts
from ..protocol import TIMING_ENV
from . import as_indices, bind, cpu_name, op_function, view
from .base import Backend, Documented, Modifier, Op

torch = None  # the module, once `_load` imported it


def _load():
    """Import torch into this module's global `torch` (once).

    Outside `audit bench`, and unless the user set it, idle OpenMP threads wait passively
    (OMP_WAIT_POLICY=PASSIVE, read when torch loads libgomp): between the audit's calls, which
    come between the harness's Python work, spinning threads only burned CPU, about a third of a
    torch worker's on 2 cores. It changes no answer, only how idle threads wait (recorded as a
    setting); `audit bench` keeps the default."""
    global torch
    if torch is None:
        if not os.environ.get(TIMING_ENV):
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch as module
        torch = module
    return torch


#: The dtypes torch has an argmax kernel for.
_DTYPES = ("float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "int32", "int64")
#: Dtypes torch has but documents as of limited support in eager mode (no argmax kernel).
_LIMITED = {name: (f"torch documents {name} as a shell dtype of limited support (no argmax "
                   "kernel): https://docs.pytorch.org/docs/stable/tensor_attributes.html")
            for name in ("uint16", "uint32", "uint64")}
_LIMITED["bool"] = ("torch.argmax, argmin and topk refuse bool tensors ('argmax(): does not support "
                    "bool input'); audit x.to(torch.uint8) instead")
#: What torch tensors cannot be: x[::-1] raises (torch.flip copies instead).
_LAYOUT_LIMITS = {"negative-step": "torch tensors cannot have negative strides (torch.flip copies)"}
_VIEWS = {"permute": lambda x, axes: x.permute(*axes), "slice": lambda x, at: x[at],
          "reshape": lambda x, shape: x.reshape(shape), "broadcast": lambda x, shape: x.expand(*shape)}
_SETTINGS_ENV = ("CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "CUDA_VISIBLE_DEVICES", "TORCH_DETERMINISTIC", "CXX",
                 "TORCHINDUCTOR_FORCE_DISABLE_CACHES", "OMP_WAIT_POLICY")
MODES = ("compile", "compile-dynamic")


def _whole(index, x, keepdim):
    return index.reshape((1,) * x.ndim) if keepdim else index


def _max_indices(x, dim, keepdim):
    """torch.max(x, dim).indices (the flattened input for dim=None)."""
    if dim is None:
        return _whole(torch.max(x.reshape(-1), 0).indices, x, keepdim)
    return torch.max(x, dim=dim, keepdim=keepdim).indices


def _topk_indices(x, dim, keepdim):
    """torch.topk(x, 1, dim).indices, squeezed as argmax returns it (keepdim=False)."""
    if dim is None:
        return _whole(torch.topk(x.reshape(-1), 1).indices[0], x, keepdim)
    index = torch.topk(x, 1, dim=dim).indices
    return index if keepdim else index.squeeze(dim)


OPS = {
    "argmax": lambda x, dim, keepdim: torch.argmax(x, dim=dim, keepdim=keepdim),
    "argmin": lambda x, dim, keepdim: torch.argmin(x, dim=dim, keepdim=keepdim),
    "max": _max_indices,
    "topk": _topk_indices,
}


def cxx_compiler():
    """Return the path of the C++ compiler inductor uses on the CPU ($CXX, else g++), or None."""
    name = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
    return shutil.which(name)


def _compile_unavailable(device):
    """Say why torch.compile cannot run on `device`, or return None where it can."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile (it came in torch 2.0)"
    if device == "cpu":
        if cxx_compiler() is None:
            name = os.environ.get("CXX") or "g++"
            return (f"torch.compile on the CPU generates C++ and needs a C++ compiler: {name} was "
                    "not found (install g++, or point CXX at a compiler)")
        return None
    if device.startswith("cuda") and importlib.util.find_spec("triton") is None:
        return "torch.compile on CUDA needs triton (pip install triton)"
    return None


def _topk_expression(dim, keepdim):
    return f"torch.topk(x, 1, dim={dim}).indices" + ("" if keepdim else f".squeeze({dim})")


class TorchBackend(Backend):
    """torch.argmax, argmin, max(dim).indices and topk(1); eager, compiled, threads, modes."""

    name = "torch"
    module = "torch"
    distributions = ("torch",)
    install = "pip install 'argmax-audit[torch]'"
    device_hints = {
        "cpu": "any build",
        "cuda": "an NVIDIA GPU and a CUDA build (torch from pytorch.org)",
        "rocm": "an AMD GPU and a ROCm build of torch",
        "mps": "torch on Apple silicon with macOS 12.3 or later",
    }
    ops = {
        "argmax": Op("max", "argmax", "argmax(x, dim={dim}{keep})",
                     "torch.argmax(x, dim={dim}, keepdim={keepdim})",
                     promise="If there are multiple maximal values then the indices of the first "
                             "maximal value are returned.",
                     url="https://docs.pytorch.org/docs/stable/generated/torch.argmax.html"),
        "argmin": Op("min", "argmin, against the mirrored rule (first minimum, NaN first)",
                     "argmin(x, dim={dim}{keep})", "torch.argmin(x, dim={dim}, keepdim={keepdim})",
                     promise="If there are multiple minimal values then the indices of the first "
                             "minimal value are returned.",
                     url="https://docs.pytorch.org/docs/stable/generated/torch.argmin.html"),
        "max": Op("max", "torch.max(x, dim).indices", "max(x, dim={dim}{keep}).indices",
                  "torch.max(x, dim={dim}, keepdim={keepdim}).indices",
                  expression_none="torch.max(x.reshape(-1), 0).indices{keep_all}",
                  promise="If there are multiple maximal values in a reduced row then the indices "
                          "of the first maximal value are returned.",
                  url="https://docs.pytorch.org/docs/stable/generated/torch.max.html"),
        "topk": Op(
            "max", "torch.topk(x, 1, dim).indices", "topk(x, 1, dim={dim}).indices{keep_note}",
            _topk_expression,
            expression_none="torch.topk(x.reshape(-1), 1).indices[0]{keep_all}",
            documented=Documented(
                url="https://docs.pytorch.org/docs/stable/generated/torch.topk.html",
                quote=("When using torch.topk, the indices of tied elements are not guaranteed "
                       "to be stable and may vary across different invocations."),
                picks="any",
                meaning="does not promise which of equal values (tied maxima, or NaNs) comes first")),
    }
    modifiers = {
        "compile": Modifier("mode", "torch.compile (inductor, dynamic=False): one compilation "
                                    "per input signature"),
        "compile-dynamic": Modifier("mode", "torch.compile(dynamic=True): kernels with symbolic "
                                            "sizes"),
        "threads": Modifier("threads", "torch.set_num_threads(N)", takes_number=True),
        "deterministic": Modifier("deterministic", "torch.use_deterministic_algorithms(True)"),
        "flush-denormal": Modifier("denormal", "torch.set_flush_denormal(True)"),
    }
    all_variants = ("eager", "compile", "compile-dynamic", "threads=1", "threads=MANY",
                    "compile+threads=1", "compile+threads=MANY", "compile-dynamic+threads=1",
                    "compile-dynamic+threads=MANY", "deterministic", "flush-denormal")
    compiling_modes = MODES
    settings_env = _SETTINGS_ENV
    reproducer = {
        "imports": "import torch",
        "native": "x = torch.from_numpy(base).to(device={device}, dtype={dtype})",
        "permute": "x = x.permute(*{0})", "broadcast": "x = x.expand(*{0})",
        "to_numpy": "{0}.detach().cpu().double().numpy()", "indices": "np.asarray(r.cpu())"}
    notes = ("no negative strides (reversed layouts not run)",
             "uint16/32/64 and bool have no argmax kernel",
             "idle OpenMP threads wait without spinning between the audit's calls unless "
             "OMP_WAIT_POLICY is set (PASSIVE; audit bench keeps the spinning default)")

    def adapter(self):
        return Adapter()

    def dtype_expression(self, dtype):
        return f"torch.{dtype}"

    def call_lines(self, mode, variant_name, expression):
        if mode in MODES:
            dynamic = mode == "compile-dynamic"
            return ([f"f = torch.compile(lambda x: {expression}, dynamic={dynamic})  "
                     f"# variant {variant_name}"], ["    r = f(x)"])
        return super().call_lines(mode, variant_name, expression)

    def setting_lines(self, modifiers):
        after = []
        if modifiers.get("threads"):
            after.append(f"torch.set_num_threads({modifiers['threads']})")
        if modifiers.get("deterministic"):
            after.append("torch.use_deterministic_algorithms(True)")
        if modifiers.get("flush-denormal"):
            after.append("torch.set_flush_denormal(True)")
        return [], after


BACKEND = TorchBackend()


class Adapter:
    name = "torch"
    flushing = False  # True while a flush-denormal variant's calls run

    def __init__(self):
        _load()

    def describe(self):
        devices = [{"id": "cpu", "name": cpu_name(), "dtypes": list(_DTYPES),
                    "unsupported": dict(_LIMITED)}]
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                devices.append({"id": f"cuda:{i}", "name": props.name,
                                "capability": f"{props.major}.{props.minor}",
                                "memory_gb": round(props.total_memory / 2**30, 1),
                                "dtypes": list(_DTYPES), "unsupported": dict(_LIMITED)})
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            devices.append({"id": "mps", "name": "Apple MPS",
                            "dtypes": [d for d in _DTYPES if d != "float64"],
                            "unsupported": {"float64": "MPS has no float64", **_LIMITED}})
        for device in devices:
            why = _compile_unavailable(device["id"])
            device["unavailable_modes"] = {mode: why for mode in MODES} if why else {}
        return {
            "version": torch.__version__,
            "build": {"cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None),
                      "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
                      "git": getattr(torch.version, "git_version", None)},
            "devices": devices,
            "index_dtype": "int64",
            "index_dtypes": {op: "int64" for op in OPS},
            "ops": list(OPS),
            "modes": list(MODES),
            "layout_limits": dict(_LAYOUT_LIMITS),
            "settings": self.settings(),
        }

    def settings(self, variant=None, flushed=False):
        """Return what can change torch's answer, as it is now (inside `configure`)."""
        variant = variant or {}
        found = {
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "flush_denormal": bool(flushed),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            **{k: os.environ[k] for k in _SETTINGS_ENV if k in os.environ},
        }
        if variant.get("flush_denormal") and not flushed:
            found["flush_denormal_unsupported"] = "torch.set_flush_denormal(True) returned False"
        if variant.get("mode") in MODES:
            found["compile"] = {"backend": "inductor", "dynamic": variant["mode"] == "compile-dynamic",
                                "fullgraph": "built-in ops only", "cxx": cxx_compiler()}
        return found

    def function(self, op):
        return op_function(OPS, op)

    def prepare(self, fn, mode, dim, keepdim, builtin):
        """Return `x -> fn(x, dim, keepdim)`, through torch.compile for the compile modes: one
        compilation per signature (a fresh code object each), whole-graph for torch's own ops."""
        call = bind(fn, dim, keepdim)
        if mode is None:
            return call
        if mode not in MODES:
            raise ValueError(f"torch has no execution mode {mode!r}")
        return torch.compile(call, dynamic=mode == "compile-dynamic", fullgraph=builtin)

    @contextlib.contextmanager
    def harness(self):
        """Suspend a variant's denormal flushing while the harness builds inputs or reads them
        back (numpy's conversions run on this thread, under its flags)."""
        if not self.flushing:
            yield
            return
        torch.set_flush_denormal(False)
        try:
            yield
        finally:
            torch.set_flush_denormal(True)

    @contextlib.contextmanager
    def configure(self, variant):
        """Set the thread count, deterministic mode and denormal flushing of `variant` around a
        target's calls; yield the settings in effect; restore the previous ones after."""
        threads = torch.get_num_threads()
        deterministic = torch.are_deterministic_algorithms_enabled()
        flushed = False
        try:
            if variant.get("threads"):
                torch.set_num_threads(int(variant["threads"]))
            if variant.get("deterministic"):
                torch.use_deterministic_algorithms(True)
            if variant.get("flush_denormal"):
                flushed = self.flushing = torch.set_flush_denormal(True)
            yield self.settings(variant, flushed)
        finally:
            if flushed:
                torch.set_flush_denormal(False)
                self.flushing = False
            if torch.are_deterministic_algorithms_enabled() != deterministic:
                # Only when changed: the call imports torch._inductor (seconds) in torch 2.13.
                torch.use_deterministic_algorithms(deterministic)
            torch.set_num_threads(threads)
            if variant.get("mode") in MODES:
                importlib.import_module("torch._dynamo").reset()  # free this target's compiled code

    def to_native(self, host, dtype, device, layout):
        """Return `host` (the worker's private array of `dtype`; bfloat16 as bits) in `layout`:
        the memory moved to `device` as it is, then viewed (strides, storage offset) there."""
        if layouts.steps_need(layout) & set(_LAYOUT_LIMITS):
            raise ValueError(f"layout {layout}: {_LAYOUT_LIMITS['negative-step']}")
        memory = layouts.base(host, layout)
        if dtype == "bfloat16":
            memory = torch.from_numpy(memory.view("int16")).view(torch.bfloat16)
        else:
            memory = torch.from_numpy(memory)
        return view(memory.to(device=device), layout, host.shape, _VIEWS)

    def argmax(self, x, dim, keepdim):
        return torch.argmax(x, dim=dim, keepdim=keepdim)

    def synchronize(self, device, result):
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        elif device == "mps":
            torch.mps.synchronize()

    def to_host(self, x):
        return x.detach().cpu().to(torch.float64).numpy()

    def to_numpy(self, result):
        if not isinstance(result, torch.Tensor):
            raise TypeError(f"returned {type(result).__name__}, not a torch.Tensor")
        result = result.detach().cpu()
        name = str(result.dtype).removeprefix("torch.")
        if result.dtype.is_floating_point:
            return as_indices(result.to(torch.float64).numpy(), "Tensor", name)
        if result.dtype in (torch.bool, torch.uint8, torch.int8, torch.int16,
                            torch.int32, torch.int64):
            return result.to(torch.int64).numpy(), name
        raise TypeError(f"returned Tensor of {name}, not integer indices")
