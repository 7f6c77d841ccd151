"""TensorFlow on the CPU and every GPU it reports: tf.math.argmax/argmin (int64) and
tf.math.top_k(k=1); eagerly, through tf.function, or compiled by XLA (jit_compile=True).

tf.math.argmax has no "whole input" form (axis=None means axis 0) and no keepdims: dim=None
reshapes the input to one dimension first, keepdim expands the reduced axis back. Op determinism
and thread counts must be set before TensorFlow runs anything, so those variants get a worker
process of their own (started with TF_DETERMINISTIC_OPS=1, and
tf.config.experimental.enable_op_determinism() called before the first op; threads through
TF_NUM_INTRAOP_THREADS). tensorflow is imported by `Adapter()` (in a
worker process), never when this module is imported.
"""
import contextlib
import os
import sys

import numpy as np

from .. import layouts
from ..casting import INT_DTYPES
from . import as_indices, bind, cpu_name, harness, op_function, view
from .base import Backend, Modifier, Op

tf = None  # the module, once `_load` imported it
_VIEWS = {}
_SETTINGS_ENV = ("TF_DETERMINISTIC_OPS", "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS",
                 "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "TF_XLA_FLAGS", "XLA_FLAGS",
                 "CUDA_VISIBLE_DEVICES", "TF_CUDNN_DETERMINISTIC")
_LAYOUT_LIMITS = {"views": "TensorFlow tensors have no strides or views (tf.transpose and slicing "
                           "make a dense tensor): only contiguous cases run, every dim of them"}
MODES = ("function", "xla")
_FLOATS = ("float32", "float16", "bfloat16", "float64")


def _load():
    """Import tensorflow into this module's global `tf` (once).

    TensorFlow imports jax where it is installed, for TFLite's conversion of jax functions alone
    (`tensorflow/lite/python/util.py`: `try: from jax import jit`); that import, about a second
    of CPU in every TensorFlow worker, is held off while TensorFlow loads (jax is importable
    again after)."""
    global tf, _VIEWS
    if tf is None:
        hold = "jax" not in sys.modules
        if hold:
            sys.modules["jax"] = None  # `import jax` raises ImportError, which TFLite expects
        try:
            import tensorflow as module
        finally:
            if hold and sys.modules.get("jax", 0) is None:
                del sys.modules["jax"]
        tf = module
        _VIEWS = {"permute": tf.transpose, "slice": lambda x, at: x[at], "reshape": tf.reshape,
                  "broadcast": tf.broadcast_to}


def _reduce(function, x, dim, keepdim):
    """`function` (tf.math.argmax or argmin) along `dim` with int64 output, as argmax is called:
    dim=None reduces the input reshaped to one dimension; keepdim keeps the reduced axis."""
    if dim is None:
        index = function(tf.reshape(x, [-1]), axis=0, output_type=tf.int64)
        return tf.reshape(index, [1] * len(x.shape)) if keepdim else index
    index = function(x, axis=dim, output_type=tf.int64)
    return tf.expand_dims(index, dim) if keepdim else index


def _top_k(x, dim, keepdim):
    """tf.math.top_k(x, k=1)'s index along `dim` (top_k works on the last axis)."""
    if dim is None:
        index = tf.math.top_k(tf.reshape(x, [-1]), k=1).indices[0]
        return tf.reshape(index, [1] * len(x.shape)) if keepdim else index
    axis = dim % len(x.shape)
    order = [a for a in range(len(x.shape)) if a != axis] + [axis]
    index = tf.math.top_k(tf.transpose(x, order), k=1).indices[..., 0]
    return tf.expand_dims(index, axis) if keepdim else index


OPS = {
    "argmax": lambda x, dim, keepdim: _reduce(tf.math.argmax, x, dim, keepdim),
    "argmin": lambda x, dim, keepdim: _reduce(tf.math.argmin, x, dim, keepdim),
    "topk": _top_k,
}


def _reduce_expression(name):
    def expression(dim, keepdim):
        if dim is None:
            flat = f"tf.math.{name}(tf.reshape(x, [-1]), axis=0)"
            return f"tf.reshape({flat}, [1] * len(x.shape))" if keepdim else flat
        call = f"tf.math.{name}(x, axis={dim})"
        return f"tf.expand_dims({call}, {dim})" if keepdim else call
    return expression


def _top_k_expression(dim, keepdim):
    if dim is None:
        flat = "tf.math.top_k(tf.reshape(x, [-1]), k=1).indices[0]"
        return f"tf.reshape({flat}, [1] * len(x.shape))" if keepdim else flat
    moved = (f"tf.transpose(x, [a for a in range(len(x.shape)) if a != {dim} % len(x.shape)] "
             f"+ [{dim} % len(x.shape)])")
    picked = f"tf.math.top_k({moved}, k=1).indices[..., 0]"
    return f"tf.expand_dims({picked}, {dim})" if keepdim else picked


class TensorFlowBackend(Backend):
    """tf.math.argmax/argmin and tf.math.top_k(k=1); eager, tf.function, XLA, determinism."""

    name = "tensorflow"
    module = "tensorflow"
    distributions = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly")
    install = "pip install 'argmax-audit[tensorflow]'"
    device_hints = {
        "cpu": "any build",
        "cuda": "an NVIDIA GPU and tensorflow[and-cuda] (Linux)",
        "rocm": "an AMD GPU and tensorflow-rocm",
    }
    ops = {
        "argmax": Op("max", "tf.math.argmax(x, axis, output_type=tf.int64)",
                     "tf.math.argmax(x, axis={dim}){keep_note}", _reduce_expression("argmax"),
                     call_none="tf.math.argmax(tf.reshape(x, [-1]), axis=0){keep_note}",
                     promise="In case of identity returns the smallest index.",
                     url="https://www.tensorflow.org/api_docs/python/tf/math/argmax"),
        "argmin": Op("min", "tf.math.argmin(x, axis, output_type=tf.int64), against the mirrored "
                            "rule", "tf.math.argmin(x, axis={dim}){keep_note}",
                     _reduce_expression("argmin"),
                     call_none="tf.math.argmin(tf.reshape(x, [-1]), axis=0){keep_note}",
                     promise="Returns the smallest index in case of ties.",
                     url="https://www.tensorflow.org/api_docs/python/tf/math/argmin"),
        "topk": Op("max", "tf.math.top_k(x, k=1).indices along dim",
                   "tf.math.top_k(x, k=1) along dim {dim}{keep_note}", _top_k_expression,
                   promise="If two elements are equal, the lower-index element appears first.",
                   url="https://www.tensorflow.org/api_docs/python/tf/math/top_k"),
    }
    modifiers = {
        "function": Modifier("mode", "tf.function, traced once per input signature"),
        "xla": Modifier("mode", "tf.function(jit_compile=True): compiled by XLA per signature"),
        "deterministic": Modifier("deterministic", "tf.config.experimental."
                                                   "enable_op_determinism() (before the first op)",
                                  process=True, env=(("TF_DETERMINISTIC_OPS", "1"),)),
        "threads": Modifier("threads", "TF_NUM_INTRAOP_THREADS=N (intra-op thread pool)",
                            process=True, env=(("TF_NUM_INTRAOP_THREADS", "{N}"),),
                            takes_number=True),
    }
    all_variants = ("eager", "function", "xla", "deterministic", "threads=1")
    compiling_modes = MODES
    settings_env = _SETTINGS_ENV
    reproducer = {
        "imports": "import tensorflow as tf",
        "native": "with tf.device({device}): x = tf.constant(base.astype({dtype}))",
        "permute": "x = tf.transpose(x, {0})", "broadcast": "x = tf.broadcast_to(x, {0})",
        "to_numpy": "np.asarray(tf.cast({0}, tf.float64))", "indices": "np.asarray(r)"}
    notes = ("no strides or views: only contiguous cases run",
             "dim=None reshapes the input to one dimension first (tf.math.argmax's axis=None "
             "means axis 0)",
             "top_k's indices are int32; argmax/argmin are asked for int64",
             "deterministic and threads=N get a worker process of their own")

    def adapter(self):
        return Adapter()

    def dtype_expression(self, dtype):
        return {"bfloat16": "tf.bfloat16.as_numpy_dtype", "bool": "np.bool_"}.get(dtype, f"np.{dtype}")

    def device_expression(self, device):
        return "'/CPU:0'" if device == "cpu" else f"'/GPU:{device.split(':')[-1]}'"

    def call_lines(self, mode, variant_name, expression):
        if mode in MODES:
            jit = ", jit_compile=True" if mode == "xla" else ""
            return ([f"f = tf.function(lambda x: {expression}{jit})  # variant {variant_name}"],
                    ["    r = f(x)"])
        return super().call_lines(mode, variant_name, expression)

    def setting_lines(self, modifiers):
        before, after = [], []
        if modifiers.get("threads"):
            before = ["import os",
                      f"os.environ['TF_NUM_INTRAOP_THREADS'] = '{modifiers['threads']}'  "
                      "# before tensorflow starts"]
        if modifiers.get("deterministic"):
            after.append("tf.config.experimental.enable_op_determinism()")
        return before, after


BACKEND = TensorFlowBackend()


def _tf_device(device):
    return "/CPU:0" if device == "cpu" else f"/GPU:{device.split(':')[-1]}"


class Adapter:
    name = "tensorflow"

    def __init__(self):
        _load()
        # a deterministic variant's worker starts with TF_DETERMINISTIC_OPS=1: turn op
        # determinism on before the first op (the probe's) runs
        self.deterministic = os.environ.get("TF_DETERMINISTIC_OPS") == "1"
        if self.deterministic:
            tf.config.experimental.enable_op_determinism()
        self.devices = ["cpu"]
        kind = "rocm" if tf.test.is_built_with_rocm() else "cuda"
        self.devices += [f"{kind}:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]

    def _dtypes(self, device):
        """Return (dtypes whose argmax, argmin and top_k run on `device`, {dtype: why not})."""
        works, refused = [], {}
        for dtype in (*_FLOATS, *INT_DTYPES):
            host = np.zeros(3, dtype="uint16" if dtype == "bfloat16" else dtype)
            try:
                x = self.to_native(host, dtype, device, "contiguous")
                with tf.device(_tf_device(device)):
                    for name, op in OPS.items():
                        failed = name
                        op(x, 0, False).numpy()
                works.append(dtype)
            except Exception as exc:  # noqa: BLE001 - TensorFlow's refusal, in its own words
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                refused[dtype] = f"tf.math.{'top_k' if failed == 'topk' else failed} refuses it: {first}"
        return works, refused

    def _xla_unavailable(self, device):
        try:
            with tf.device(_tf_device(device)):
                tf.function(lambda x: tf.math.argmax(x, axis=0), jit_compile=True)(
                    tf.constant([1.0, 2.0])).numpy()
        except Exception as exc:  # noqa: BLE001 - no XLA in this build or on this device
            return f"XLA cannot compile on {device}: {str(exc).strip().splitlines()[0][:300]}"
        return None

    def describe(self):
        devices = []
        for device in self.devices:
            dtypes, refused = self._dtypes(device)
            name = cpu_name() if device == "cpu" else tf.config.experimental.get_device_details(
                tf.config.list_physical_devices("GPU")[int(device.split(":")[1])]).get(
                "device_name", device)
            xla = self._xla_unavailable(device)
            devices.append({"id": device, "name": name, "dtypes": dtypes, "unsupported": refused,
                            "unavailable_modes": {"xla": xla} if xla else {}})
        build = tf.sysconfig.get_build_info()
        return {
            "version": tf.__version__,
            "build": {"cuda": build.get("cuda_version"), "cudnn": build.get("cudnn_version"),
                      "rocm": bool(build.get("is_rocm_build")),
                      "git": getattr(tf.version, "GIT_VERSION", None)},
            "devices": devices,
            "index_dtype": "int64",
            "index_dtypes": {"argmax": "int64", "argmin": "int64", "topk": "int32"},
            "ops": list(OPS),
            "modes": list(MODES),
            "layout_limits": dict(_LAYOUT_LIMITS),
            "settings": self.settings(),
        }

    def settings(self, variant=None):
        """Return what can change TensorFlow's answer, as it is now."""
        variant = variant or {}
        mode = variant.get("mode")
        return {
            "execution": {None: "eager", "function": "tf.function",
                          "xla": "tf.function(jit_compile=True)"}.get(mode, mode),
            "op_determinism": self.deterministic,
            "intra_op_parallelism_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_parallelism_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            **{k: os.environ[k] for k in _SETTINGS_ENV if k in os.environ},
        }

    def function(self, op):
        return op_function(OPS, op)

    def prepare(self, fn, mode, dim, keepdim, builtin):
        """Return `x -> fn(x, dim, keepdim)`, through tf.function (one per signature, since
        each gets a function of its own) or compiled by XLA."""
        call = bind(fn, dim, keepdim)
        if mode is None:
            return call
        if mode not in MODES:
            raise ValueError(f"tensorflow has no execution mode {mode!r}")
        return tf.function(call, jit_compile=mode == "xla")

    @contextlib.contextmanager
    def configure(self, variant):
        """Turn op determinism on for a deterministic variant (its worker runs nothing else, as
        it cannot be turned off); yield the settings in effect."""
        if variant.get("deterministic") and not self.deterministic:
            tf.config.experimental.enable_op_determinism()
            self.deterministic = True
        yield self.settings(variant)

    def harness(self):
        return harness()

    def to_native(self, host, dtype, device, layout):
        """Return `host` (the worker's private array of `dtype`; bfloat16 as bits) in `layout`,
        built with TensorFlow's own operations on `device` (a dense tensor: no views)."""
        memory = layouts.base(host, layout)
        if dtype == "bfloat16":
            memory = memory.view(tf.bfloat16.as_numpy_dtype)
        with tf.device(_tf_device(device)):
            return view(tf.constant(memory), layout, host.shape, _VIEWS)

    def synchronize(self, device, result):
        """Wait for `device`: eager CPU ops return when done; a GPU is synchronised."""
        if device != "cpu" and hasattr(tf.test.experimental, "sync_devices"):
            tf.test.experimental.sync_devices()

    def to_host(self, x):
        return np.asarray(tf.cast(x, tf.float64))

    def to_numpy(self, result):
        if not isinstance(result, tf.Tensor):
            raise TypeError(f"returned {type(result).__name__}, not a tf.Tensor")
        name = result.dtype.name
        return as_indices(result.numpy(), "tf.Tensor", name)
