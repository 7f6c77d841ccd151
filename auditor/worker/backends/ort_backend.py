"""ONNX Runtime: an ArgMax/ArgMin model built in memory with onnx.helper for each signature.

Each signature (op, dtype, rank, axis, keepdims, session options, execution provider) gets its own
model, opset chosen as the newest both the installed onnx and onnxruntime load, and one
InferenceSession, cached. ArgMax carries `select_last_index=0` (the first occurrence, as ONNX
documents). ONNX's ArgMax has no "whole input" form: dim=None reshapes the input to one
dimension first (Reshape to [-1], then ArgMax on axis 0), as exporters such as torch.onnx do.
Devices are the execution providers present (CPU; CUDA, TensorRT, ROCm, CoreML, DirectML); the
dtypes each runs are found by building and running a small model, and a dtype it refuses is
unsupported with onnxruntime's own message. onnx and onnxruntime are imported by `Adapter()`
(in a worker process), never when this module is imported.
"""
import contextlib
import os

import numpy as np

from .. import layouts
from ..casting import INT_DTYPES
from . import (
    as_indices,
    bind,
    cpu_name,
    harness,
    index_dtype_name,
    op_function,
    optional_ml_dtypes,
)
from .base import Backend, Modifier, Op

ort = onnx = helper = None  # the modules, once `_load` imported them
ml_dtypes = None  # the module once an adapter exists (see optional_ml_dtypes)

#: Execution providers and the device ids they become (the others, Azure's, compute nothing).
PROVIDERS = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda",
             "TensorrtExecutionProvider": "tensorrt", "ROCMExecutionProvider": "rocm",
             "MIGraphXExecutionProvider": "rocm", "CoreMLExecutionProvider": "coreml",
             "DmlExecutionProvider": "dml"}
_NODE = {"argmax": "ArgMax", "argmin": "ArgMin"}
_SETTINGS_ENV = ("OMP_NUM_THREADS", "ORT_DISABLE_ALL_OPTIMIZATIONS", "CUDA_VISIBLE_DEVICES")
_LAYOUT_LIMITS = {"views": "ONNX Runtime takes dense tensors (a view is copied to contiguous "
                           "memory before the model sees it): only contiguous cases run, every "
                           "dim of them"}
#: Opsets tried, newest first, down to the first with select_last_index (12).
_OLDEST_OPSET = 12


def _load():
    """Import onnx, onnxruntime and ml_dtypes into this module's globals (once)."""
    global ort, onnx, helper, ml_dtypes
    if ort is None:
        import onnx as onnx_module
        import onnxruntime as ort_module
        from onnx import helper as helper_module
        ort, onnx, helper = ort_module, onnx_module, helper_module
        ml_dtypes = optional_ml_dtypes()


def _tensor_type(dtype):
    return getattr(onnx.TensorProto, {"float32": "FLOAT", "float16": "FLOAT16",
                                      "bfloat16": "BFLOAT16", "float64": "DOUBLE",
                                      "bool": "BOOL"}.get(dtype, dtype.upper()))


def build_model(node, dtype, ndim, dim, keepdim, opset):
    """Return the ONNX model (bytes) of `node` ("ArgMax"/"ArgMin") on an input of `dtype` and
    rank `ndim` (sizes symbolic), along `dim` (None: the input reshaped to one dimension)."""
    shape = [f"d{i}" for i in range(ndim)]
    nodes, inits, out_shape = [], [], None
    source = "x"
    if dim is None:
        inits.append(helper.make_tensor("flat", onnx.TensorProto.INT64, [1], [-1]))
        nodes.append(helper.make_node("Reshape", ["x", "flat"], ["x_flat"]))
        source, axis, keep = "x_flat", 0, 0
    else:
        axis, keep = dim, int(keepdim)
    reshape = dim is None and keepdim and ndim > 0  # keepdim on a 0-d input changes nothing
    reduced = "y_flat" if reshape else "y"
    nodes.append(helper.make_node(node, [source], [reduced], axis=axis, keepdims=keep,
                                  select_last_index=0))
    if reshape:
        inits.append(helper.make_tensor("ones", onnx.TensorProto.INT64, [ndim], [1] * ndim))
        nodes.append(helper.make_node("Reshape", ["y_flat", "ones"], ["y"]))
        out_shape = [1] * ndim
    graph = helper.make_graph(
        nodes, "argmax_audit", [helper.make_tensor_value_info("x", _tensor_type(dtype), shape)],
        [helper.make_tensor_value_info("y", onnx.TensorProto.INT64, out_shape)], inits)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets))
    return model.SerializeToString()


def _provider(device):
    """Return the `providers` entry of `device` (`cuda:1` -> ("CUDAExecutionProvider", ...))."""
    kind, _, number = device.partition(":")
    name = next(p for p, k in PROVIDERS.items() if k == kind and p in ort.get_available_providers())
    return (name, {"device_id": int(number)}) if number else name


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime's ArgMax and ArgMin, each a one-node model built in memory."""

    name = "onnxruntime"
    module = "onnxruntime"
    distributions = ("onnxruntime", "onnxruntime-gpu", "onnx")
    install = "pip install 'argmax-audit[onnxruntime]'"
    device_hints = {
        "cpu": "any build",
        "cuda": "an NVIDIA GPU and onnxruntime-gpu",
        "tensorrt": "an NVIDIA GPU, TensorRT and onnxruntime-gpu",
        "rocm": "an AMD GPU and a ROCm build of onnxruntime",
        "coreml": "macOS and onnxruntime's CoreML provider",
        "dml": "Windows and onnxruntime-directml",
    }
    ops = {
        "argmax": Op("max", "ONNX ArgMax (select_last_index=0)", "ArgMax(x, axis={dim}{keep})",
                     "onnx_call(x, 'ArgMax', {dim}, {keepdim})",
                     call_none="ArgMax(Reshape(x, [-1]), axis=0){keep_note}",
                     promise="If select_last_index is True (default False), the index of the last "
                             "occurrence of the max is selected if the max appears more than once "
                             "in the input. Otherwise the index of the first occurrence is "
                             "selected.",
                     url="https://onnx.ai/onnx/operators/onnx__ArgMax.html"),
        "argmin": Op("min", "ONNX ArgMin (select_last_index=0), against the mirrored rule",
                     "ArgMin(x, axis={dim}{keep})", "onnx_call(x, 'ArgMin', {dim}, {keepdim})",
                     call_none="ArgMin(Reshape(x, [-1]), axis=0){keep_note}",
                     promise="If select_last_index is True (default False), the index of the last "
                             "occurrence of the min is selected if the min appears more than once "
                             "in the input. Otherwise the index of the first occurrence is "
                             "selected.",
                     url="https://onnx.ai/onnx/operators/onnx__ArgMin.html"),
    }
    modifiers = {
        "optimize-off": Modifier("optimize", "SessionOptions.graph_optimization_level = "
                                             "ORT_DISABLE_ALL"),
        "optimize-all": Modifier("optimize", "SessionOptions.graph_optimization_level = "
                                             "ORT_ENABLE_ALL"),
        "threads": Modifier("threads", "SessionOptions.intra_op_num_threads = N",
                            takes_number=True),
    }
    all_variants = ("eager", "optimize-off", "optimize-all", "threads=1")
    settings_env = _SETTINGS_ENV
    reproducer = {
        "imports": "",  # see import_lines
        "native": "x = base.astype({dtype})",
        "permute": "x = x.transpose({0})", "broadcast": "x = np.broadcast_to(x, {0})",
        "to_numpy": "np.asarray({0}, dtype=np.float64)", "indices": "np.asarray(r)"}
    notes = ("dim=None reshapes the input to one dimension first (Reshape to [-1], then axis 0), "
             "as exporters do",
             "dense tensors only: only contiguous cases run",
             "one model and session per signature, opset the newest onnx and onnxruntime share",
             "idle intra-op threads wait without spinning between the audit's calls "
             "(session.intra_op.allow_spinning=0; audit bench keeps the spinning default)")

    def adapter(self):
        return Adapter()

    def dtype_expression(self, dtype):
        return {"bfloat16": "ml_dtypes.bfloat16", "bool": "np.bool_"}.get(dtype, f"np.{dtype}")

    def import_lines(self, dtypes):
        return [
            *(["import ml_dtypes"] if "bfloat16" in dtypes else []),
            "import onnx, onnxruntime as ort",
            "from onnx import helper, TensorProto",
            "OPTIONS, PROVIDERS = ort.SessionOptions(), ['CPUExecutionProvider']",
            "",
            "",
            "def onnx_call(x, node, dim, keepdim):",
            "    # a one-node model, as the audit builds it (dim=None: Reshape to [-1] first)",
            "    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): "
            "TensorProto.FLOAT16, np.dtype(np.float64): TensorProto.DOUBLE}",
            "    elem = types.get(x.dtype) or (TensorProto.BFLOAT16 if x.dtype.name == 'bfloat16' "
            "else getattr(TensorProto, 'BOOL' if x.dtype == np.bool_ else x.dtype.name.upper()))",
            "    nodes, inits, src, axis, keep = [], [], 'x', dim, int(keepdim)",
            "    if dim is None:",
            "        inits.append(helper.make_tensor('flat', TensorProto.INT64, [1], [-1]))",
            "        nodes.append(helper.make_node('Reshape', ['x', 'flat'], ['x_flat']))",
            "        src, axis, keep = 'x_flat', 0, 0",
            "    nodes.append(helper.make_node(node, [src], ['y'], axis=axis, keepdims=keep, "
            "select_last_index=0))",
            "    graph = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', elem, "
            "[None] * x.ndim)], [helper.make_tensor_value_info('y', TensorProto.INT64, None)], "
            "inits)",
            "    for opset in range(onnx.defs.onnx_opset_version(), 11, -1):  # the newest that loads",
            "        opsets = [helper.make_opsetid('', opset)]",
            "        model = helper.make_model(graph, opset_imports=opsets, "
            "ir_version=helper.find_min_ir_version_for(opsets))",
            "        try:",
            "            session = ort.InferenceSession(model.SerializeToString(), OPTIONS, "
            "providers=PROVIDERS)",
            "            break",
            "        except Exception:",
            "            continue",
            "    y = session.run(None, {'x': np.asarray(x, order='C')})[0]",
            "    return y.reshape((1,) * x.ndim) if dim is None and keepdim else y  # as the audit's "
            "model does",
        ]

    def setting_lines(self, modifiers):
        after = []
        if modifiers.get("optimize-off"):
            after.append("OPTIONS.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL")
        if modifiers.get("optimize-all"):
            after.append("OPTIONS.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL")
        if modifiers.get("threads"):
            after.append(f"OPTIONS.intra_op_num_threads = {modifiers['threads']}")
        return [], after


BACKEND = OnnxRuntimeBackend()


class Adapter:
    name = "onnxruntime"

    def __init__(self):
        _load()
        self.opset = self._opset()
        self.sessions = {}
        self.options = {}  # the variant's session options, set by `configure`
        self.device = "cpu"
        #: True while `audit bench` times calls: the intra-op threads then spin between runs, as
        #: they do by default. The audit's own calls come between Python work of the harness, so
        #: there spinning threads would only burn CPU (two thirds of ONNX Runtime's in a default
        #: run on 2 cores): the audit turns it off, which changes no answer, only how idle
        #: threads wait (a setting it records).
        self.timing = False

    def _opset(self):
        """Return the newest opset the installed onnx defines and onnxruntime loads."""
        newest = onnx.defs.onnx_opset_version()
        for opset in range(newest, _OLDEST_OPSET - 1, -1):
            try:
                self._session(build_model("ArgMax", "float32", 1, 0, False, opset), {}, "cpu")
                return opset
            except Exception:  # noqa: BLE001 - "opset N is not supported" in whatever words
                continue
        raise RuntimeError(f"onnxruntime {ort.__version__} loads no ArgMax model of opset "
                           f"{_OLDEST_OPSET} to {newest} (onnx {onnx.__version__})")

    def _session(self, model, options, device):
        settings = ort.SessionOptions()
        settings.log_severity_level = 3
        if options.get("optimize"):
            settings.graph_optimization_level = getattr(
                ort.GraphOptimizationLevel,
                {"off": "ORT_DISABLE_ALL", "all": "ORT_ENABLE_ALL"}[options["optimize"]])
        if options.get("threads"):
            settings.intra_op_num_threads = int(options["threads"])
        if options.get("spinning") == "off":
            settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model, settings, providers=[_provider(device)])

    def _devices(self):
        found, seen = [], set()
        for name in ort.get_available_providers():
            kind = PROVIDERS.get(name)
            if kind is None or kind in seen:
                continue
            seen.add(kind)
            found.append(kind if kind in ("cpu", "coreml") else f"{kind}:0")
        return found

    def _dtypes(self, device):
        """Return (dtypes `device` runs ArgMax and ArgMin in, {dtype: onnxruntime's refusal})."""
        works, refused = [], {}
        for dtype in ("float32", "float16", "bfloat16", "float64", *INT_DTYPES):
            if dtype == "bfloat16" and ml_dtypes is None:
                refused[dtype] = "needs ml_dtypes to hand bfloat16 arrays to onnxruntime"
                continue
            try:
                host = np.zeros(3, dtype="uint16" if dtype == "bfloat16" else dtype)
                x = self.to_native(host, dtype, device, "contiguous")
                for node in _NODE.values():
                    session = self._session(build_model(node, dtype, 1, 0, False, self.opset), {}, device)
                    session.run(None, {"x": x})
                works.append(dtype)
            except Exception as exc:  # noqa: BLE001 - onnxruntime's refusal, in its own words
                refused[dtype] = f"onnxruntime refuses it: {str(exc).strip().splitlines()[0][:300]}"
        return works, refused

    def describe(self):
        devices = []
        for device in self._devices():
            dtypes, refused = self._dtypes(device)
            provider = _provider(device)
            provider = provider if isinstance(provider, str) else provider[0]
            devices.append({"id": device, "name": cpu_name() if device == "cpu" else provider,
                            "provider": provider, "dtypes": dtypes, "unsupported": refused})
        skipped = [p for p in ort.get_available_providers() if p not in PROVIDERS]
        return {
            "version": ort.__version__,
            "build": {"onnx": onnx.__version__, "opset": self.opset,
                      "providers": ", ".join(ort.get_available_providers()),
                      "not_audited": ", ".join(skipped) or None,
                      "device": ort.get_device()},
            "devices": devices,
            "index_dtype": "int64",
            "index_dtypes": {op: "int64" for op in _NODE},
            "ops": list(_NODE),
            "modes": [],
            "layout_limits": dict(_LAYOUT_LIMITS),
            "settings": self.settings(),
        }

    def settings(self, variant=None):
        variant = variant or {}
        level = {"off": "ORT_DISABLE_ALL", "all": "ORT_ENABLE_ALL"}.get(
            _optimize(variant), f"default ({ort.SessionOptions().graph_optimization_level.name})")
        return {"graph_optimization_level": level,
                "intra_op_num_threads": int(variant.get("threads") or 0),
                "intra_op_allow_spinning": int(self.timing),
                "opset": self.opset,
                **{k: os.environ[k] for k in _SETTINGS_ENV if k in os.environ}}

    def function(self, op):
        node = _NODE[op]
        adapter = self

        def call(x, dim, keepdim):
            return adapter.run(node, x, dim, keepdim)

        return op_function({op: call}, op)

    def run(self, node, x, dim, keepdim):
        """Run `node` on numpy `x` through the cached session of its signature."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"onnxruntime takes numpy arrays, not {type(x).__name__}")
        dtype = index_dtype_name(x.dtype)
        if dim is not None:
            dim = dim % max(x.ndim, 1) if x.ndim else dim
        key = (node, dtype, x.ndim, dim, keepdim, tuple(sorted(self.options.items())), self.device)
        session = self.sessions.get(key)
        if session is None:
            model = build_model(node, dtype, x.ndim, dim, keepdim, self.opset)
            session = self.sessions[key] = self._session(model, self.options, self.device)
        return session.run(None, {"x": np.asarray(x, order="C")})[0]

    def prepare(self, fn, mode, dim, keepdim, builtin):
        if mode:
            raise ValueError(f"onnxruntime has no execution mode {mode!r}")
        return bind(fn, dim, keepdim)

    @contextlib.contextmanager
    def configure(self, variant):
        """Use `variant`'s session options (graph optimisation, intra-op threads) for the
        sessions its calls create; yield the settings in effect."""
        self.options = {k: v for k, v in (("optimize", _optimize(variant)),
                                          ("threads", variant.get("threads")),
                                          ("spinning", None if self.timing else "off")) if v}
        try:
            yield self.settings(variant)
        finally:
            self.options = {}

    def harness(self):
        return harness()

    def to_native(self, host, dtype, device, layout):
        """Return `host` as the numpy array a session is fed (bfloat16 through ml_dtypes), in
        `layout` (only contiguous cases reach here)."""
        self.device = device
        memory = layouts.base(host, layout)
        if dtype == "bfloat16":
            memory = memory.view(ml_dtypes.bfloat16)
        return np.asarray(memory.reshape(host.shape), order="C")

    def synchronize(self, device, result):
        pass  # session.run returns when the outputs are in host memory

    def to_host(self, x):
        return np.asarray(x).astype(np.float64)

    def to_numpy(self, result):
        if not isinstance(result, (np.ndarray, np.generic)):
            raise TypeError(f"returned {type(result).__name__}, not a numpy array")
        return as_indices(result, type(result).__name__)


def _optimize(variant):
    """Return "off", "all" or None: the graph optimisation a worker variant spec asks for."""
    if variant.get("optimize-off"):
        return "off"
    if variant.get("optimize-all"):
        return "all"
    return None
