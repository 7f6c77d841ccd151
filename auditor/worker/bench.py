"""Timing inside the worker (`audit bench`): one input built on the device once, calibrated loops.

The driver never times across the pipe. For each (target, shape) it sends one `bench` request;
the worker builds the input on the device once, and for each dim makes a first call (compilation
included, timed apart), calibrates the loop count like `timeit.autorange` (unless the driver gives
the count a first process found), discards one warm-up sample (calibration's last trial, or the
first call where one call is a sample), then times `samples` samples of `loops` calls each and streams one `measured` message per dim. A `tick` goes before every phase,
so the driver's deadline covers one phase, not the whole request. `peak` times a streaming
reduction (the sum of a large float32 buffer) on a device: the bandwidth the framework reaches
there, against which every argmax is judged.
"""
import itertools
import time

import numpy as np

from .casting import is_integer, narrow
from .protocol import write_message

#: The sample durations calibration aims at (seconds): each sample lasts at least this long.
MIN_SAMPLE_S = 0.05
#: Loops of the no-op call timed to measure what the timing loop itself costs per call.
OVERHEAD_LOOPS = 100_000


# --- what bench knows of each framework (to move into the backends, issue 12) -----------------
# `sync`: how a timing loop waits for the device. "none": the call returns when it is done (numpy;
# torch on the CPU, where synchronize does nothing); "after-loop": kernels queue on one stream, so
# one synchronize after the loop covers every call (torch on CUDA/MPS, as torch.utils.benchmark
# does); "each-call": jax dispatches asynchronously, so each result is blocked on.
# `stream(adapter, device, count)`: (buffer, fn) for the peak: fn(buffer) sums `count` float32s.
# `free(adapter, device)`: the device's free memory in bytes, or None (the host's: the driver's).


def _numpy_stream(adapter, device, count):
    return np.ones(count, dtype=np.float32), np.sum


def _torch_stream(adapter, device, count):
    import torch

    return torch.ones(count, dtype=torch.float32, device=device), torch.sum


def _jax_stream(adapter, device, count):
    import jax
    import jax.numpy as jnp

    return jax.device_put(np.ones(count, dtype=np.float32), adapter.devices[device]), jax.jit(jnp.sum)


def _torch_free(adapter, device):
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(device)[0])
    return None


def _jax_free(adapter, device):
    if device == "cpu":
        return None
    stats = adapter.devices[device].memory_stats() or {}
    if "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))


def _tf_stream(adapter, device, count):
    from .backends import tf_backend

    x = adapter.to_native(np.ones(count, dtype=np.float32), "float32", device, "contiguous")
    return x, tf_backend.tf.math.reduce_sum


def _ort_stream(adapter, device, count):
    """A one-node ReduceSum model in a session on `device`, fed from host memory as the audit's
    ArgMax sessions are (on a GPU provider the copy to the device is part of every call)."""
    from .backends import ort_backend

    helper, tensor = ort_backend.helper, ort_backend.onnx.TensorProto.FLOAT
    graph = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)],
                              "argmax_audit_peak", [helper.make_tensor_value_info("x", tensor, [count])],
                              [helper.make_tensor_value_info("y", tensor, [])])
    opsets = [helper.make_opsetid("", adapter.opset)]
    model = helper.make_model(graph, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets))
    session = adapter._session(model.SerializeToString(), {}, device)
    return np.ones(count, dtype=np.float32), lambda x: session.run(None, {"x": x})


def _cupy_stream(adapter, device, count):
    import cupy

    from .backends.cupy_backend import device_number

    with cupy.cuda.Device(device_number(device)):
        return cupy.ones(count, dtype=cupy.float32), cupy.sum


def _cupy_free(adapter, device):
    import cupy

    from .backends.cupy_backend import device_number

    return int(cupy.cuda.Device(device_number(device)).mem_info[0])


def _mlx_stream(adapter, device, count):
    import mlx.core as mx

    x = adapter.to_native(np.ones(count, dtype=np.float32), "float32", device, "contiguous")
    return x, mx.sum


def _no_free(adapter, device):
    return None


FRAMEWORK = {
    "numpy": {"sync": "none", "stream": _numpy_stream, "free": _no_free},
    "torch": {"sync": "after-loop", "stream": _torch_stream, "free": _torch_free},
    "jax": {"sync": "each-call", "stream": _jax_stream, "free": _jax_free},
    # Eager ops return when done on the CPU; on a GPU the adapter synchronises every call.
    "tensorflow": {"sync": "each-call", "stream": _tf_stream, "free": _no_free},
    # session.run returns when the outputs are in host memory.
    "onnxruntime": {"sync": "none", "stream": _ort_stream, "free": _no_free},
    # Kernels queue on the device's stream, as torch's do: one synchronize after the loop.
    "cupy": {"sync": "after-loop", "stream": _cupy_stream, "free": _cupy_free},
    # MLX is lazy: a result is computed only when evaluated, so every call is waited for.
    "mlx": {"sync": "each-call", "stream": _mlx_stream, "free": _no_free},
}
#: A backend this table does not know (a third party's): every call waited for through its
#: adapter's `synchronize`, and the peak measured with numpy's sum of host memory (said so).
GENERIC = {"sync": "each-call", "stream": _numpy_stream, "free": _no_free, "kernel": "numpy"}


def known(adapter):
    """Return what bench knows of `adapter`'s framework (GENERIC for one it does not know)."""
    return FRAMEWORK.get(adapter.name, GENERIC)
# --- end of the per-framework table -------------------------------------------------------------


def loop_counts():
    """Yield 1, 2, 5, 10, 20, 50, ...: the loop counts `timeit.autorange` tries."""
    for exponent in itertools.count():
        for mantissa in (1, 2, 5):
            yield mantissa * 10**exponent


def calibrate(time_loops, min_s, max_loops=10**8):
    """Return (loops, seconds): the first count of `loop_counts` whose `time_loops(loops)` lasts
    `min_s` or more (or reaches `max_loops`), and how long that took."""
    for loops in loop_counts():
        elapsed = time_loops(loops)
        if elapsed >= min_s or loops >= max_loops:
            return loops, elapsed
    raise AssertionError("unreachable")


def timing_loop(call, x, sync, device, mode, sample=None):
    """Return `time_loops(loops)`: seconds for `loops` calls of `call(x)`, the device waited for
    as `mode` says (see FRAMEWORK). In "each-call" mode, where `sample` (a result the call gave
    before) has a `block_until_ready` method, as jax's arrays do, the loop calls that method
    straight away: half the cost of the generic `sync(device, result)`."""
    timer = time.perf_counter

    if mode == "each-call" and hasattr(sample, "block_until_ready"):
        def time_loops(loops):
            started = timer()
            for _ in range(loops):
                call(x).block_until_ready()
            return timer() - started
    elif mode == "each-call":
        def time_loops(loops):
            started = timer()
            for _ in range(loops):
                sync(device, call(x))
            return timer() - started
    else:
        def time_loops(loops):
            result = None
            started = timer()
            for _ in range(loops):
                result = call(x)
            sync(device, result)
            return timer() - started
    return time_loops


def host_input(shape, dtype, seed):
    """Return the input values of `shape` in `dtype` (bfloat16 as bits), from `seed`: standard
    normal floats, or integers spread over the integer dtype's range."""
    rng = np.random.default_rng(seed)
    if not is_integer(dtype):
        return narrow(rng.standard_normal(shape, dtype=np.float32), dtype)
    if dtype == "bool":
        return narrow(rng.integers(0, 2, size=shape), dtype)
    info = np.iinfo(dtype)
    low, high = max(int(info.min), -2**63), min(int(info.max), 2**63 - 1)
    return narrow(rng.integers(low, high, size=shape, endpoint=True), dtype)


class Bench:
    """The worker's bench requests; `worker` is the auditor.worker.main.Worker they run in."""

    def __init__(self, worker):
        self.worker = worker
        self.host = (None, None)  # the last (shape, dtype, seed) and its values, reused by targets
        self.overheads = {}  # (device, sync mode) -> seconds, measured once per process

    @property
    def adapter(self):
        return self.worker.adapter

    def _tick(self, **extra):
        write_message(self.worker.out, {"op": "tick", **extra})

    def _host(self, shape, dtype, seed):
        key = (tuple(shape), dtype, seed)
        if self.host[0] != key:
            self.host = (None, None)  # free the last input before making the next
            self.host = (key, host_input(tuple(shape), dtype, seed))
        return self.host[1]

    def measure(self, header, payload):
        """Time one target on one shape for each of `dims`; stream a `measured` message per dim.

        Header: target (as `run` takes it), shape, dims, samples, seed, min_sample_s, and
        `loops` ({str(dim): count} a first process calibrated; calibrated here where absent)."""
        target, adapter = header["target"], self.adapter
        builtin = not target.get("impl")
        fn = adapter.function(target.get("op", "argmax")) if builtin else self.worker.impls[target["impl"]]
        variant = target.get("variant") or {}
        mode = known(adapter)["sync"]
        if hasattr(adapter, "timing"):  # an adapter that saves CPU between the audit's calls
            adapter.timing = True  # keeps the framework's own latency settings while timed
        self._tick()
        with adapter.configure(variant) as settings:
            with adapter.harness():
                x = adapter.to_native(self._host(header["shape"], target["dtype"], header["seed"]),
                                      target["dtype"], target["device"], "contiguous")
            for dim in header["dims"]:
                given = (header.get("loops") or {}).get(str(dim))
                found = self._dim(fn, x, variant.get("mode"), dim, builtin, target["device"],
                                  mode, header, given)
                write_message(self.worker.out, {"op": "measured", "dim": dim, **found})
            del x
        key = (target["device"], mode)
        if key not in self.overheads:
            self.overheads[key] = self.overhead(*key)
        return {"done": True, "settings": settings, "overhead_s": self.overheads[key]}

    def _dim(self, fn, x, mode, dim, builtin, device, sync_mode, header, loops):
        """Return {first_s, loops, times} for one dim, or {error} where a call raised."""
        from .main import COMPILING, _error

        try:
            call = self.adapter.prepare(fn, mode, dim, False, builtin)
            self._tick(compile=mode in COMPILING)  # a compile gets the driver's longer deadline
            started = time.perf_counter()
            first = call(x)
            self.adapter.synchronize(device, first)
            first_s = time.perf_counter() - started
            time_loops = timing_loop(call, x, self.adapter.synchronize, device, sync_mode, first)
            del first
            self._tick()
            if loops is None:  # its last trial, a sample of `loops` calls, is the warm-up
                loops, _ = calibrate(time_loops, header.get("min_sample_s", MIN_SAMPLE_S))
                self._tick()
            elif loops > 1:  # one call is a sample: the first call was its warm-up
                time_loops(loops)  # warm-up sample, discarded
            times = []
            for _ in range(header["samples"]):
                self._tick()
                times.append(time_loops(loops) / loops)
        except (Exception, SystemExit) as exc:
            return {"error": _error(exc)}
        return {"first_s": first_s, "loops": loops, "times": times}

    def overhead(self, device, sync_mode):
        """Return the seconds per call the timing loop itself costs: the same loop, the same
        wrappers (op function, bound call, device wait), around a call that does nothing."""
        from . import backends

        noop = backends.op_function({"noop": lambda x, dim, keepdim: x}, "noop")
        call = backends.bind(noop, 0, False)
        x = self.adapter.to_native(np.zeros(1, dtype=np.float32), "float32", device, "contiguous")
        time_loops = timing_loop(call, x, self.adapter.synchronize, device, sync_mode, call(x))
        time_loops(1000)
        return min(time_loops(OVERHEAD_LOOPS) for _ in range(3)) / OVERHEAD_LOOPS

    def peak(self, header, payload):
        """Time the framework's sum of a float32 buffer of `bytes` on `device`; reply with
        {gbps: [per sample], bytes, kernel}."""
        device, nbytes = header["device"], int(header["bytes"])
        table = known(self.adapter)
        count = nbytes // 4
        buffer, fn = table["stream"](self.adapter, device, count)
        self._tick()
        time_loops = timing_loop(fn, buffer, self.adapter.synchronize, device, table["sync"])
        time_loops(2)  # warm-up (jax compiles here)
        rates = []
        for _ in range(header.get("samples", 5)):
            self._tick()
            rates.append(count * 4 / time_loops(1) / 1e9)
        return {"gbps": rates, "bytes": count * 4,
                "kernel": f"{table.get('kernel', self.adapter.name)} sum of {count * 4 // 2**20} MiB "
                          "of float32"}

    def free(self, header, payload):
        """Reply with {device: free bytes or None} for the devices in `devices`."""
        table = known(self.adapter)
        return {"free": {d: table["free"](self.adapter, d) for d in header["devices"]}}


def _bench(worker):
    if getattr(worker, "bench", None) is None:
        worker.bench = Bench(worker)
    return worker.bench


#: The requests this module answers, joined to the worker's own (auditor/worker/main.py).
OPS = {"bench": lambda worker, header, payload: _bench(worker).measure(header, payload),
       "bench_peak": lambda worker, header, payload: _bench(worker).peak(header, payload),
       "bench_free": lambda worker, header, payload: _bench(worker).free(header, payload)}
