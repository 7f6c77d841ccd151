"""`audit bench`: time argmax on the audit's targets, inside the workers, against a measured peak.

The driver plans targets exactly as `audit run` does (auditor.runner.Runner's first phase), then
runs every target on every shape in `processes` fresh worker processes, one worker at a time (a
benchmark shares the machine with nothing of its own). Each worker times its calls itself
(auditor/worker/bench.py); the driver only collects per-loop seconds and turns them into the bench
document (auditor/benchfile.py): median, IQR and min per (target, shape, dim), bytes read, GB/s and
the fraction of the peak a streaming reduction reached on the same device in the same run.
"""
from __future__ import annotations

import math
import os
import re
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import files
from . import variants as variant_table
from .environment import inventory
from .errors import UserError
from .model import FRAMEWORKS, Observations
from .runner import MAX_DEATHS, Plan, Runner, start_worker
from .worker.backends import cpu_name
from .worker.bench import MIN_SAMPLE_S
from .workers import WorkerGone

#: The article's sizes, a large square and an LLM vocabulary (64 rows of 128,256 logits).
DEFAULT_SHAPES = ((10, 10), (100, 100), (1000, 1000), (4096, 4096), (64, 128256))
DEFAULT_DIMS = (0, -1)
#: The peak's buffer: far past any CPU's last-level cache (and a GPU's L2), within memory.
PEAK_BYTES = {"cpu": 512 * 2**20, "other": 2**30}
_SHAPE = re.compile(r"[0-9]+(?:x[0-9]+)*")


# --- shapes and dims ----------------------------------------------------------------------------


def parse_shape(text):
    """Return the shape written `text` (`1000x1000`, `4096`, `2x3x4`); UserError if malformed or
    empty."""
    spelled = text.strip().lower().replace("×", "x").replace(" ", "")
    if not _SHAPE.fullmatch(spelled):
        raise UserError(f"--shape {files.printable(text)!r} is not a shape: give sizes joined by "
                        "x, e.g. 1000x1000 or 64x128256")
    shape = tuple(int(size) for size in spelled.split("x"))
    if 0 in shape:
        raise UserError(f"--shape {spelled} is empty (a size of 0): argmax of an empty array has "
                        "no answer to time")
    if any(size >= 2**62 for size in shape) or math.prod(shape) >= 2**62:
        raise UserError(f"--shape {spelled} has more elements than any index type holds")
    return shape


def parse_dim(text):
    """Return the dim written `text`: an integer, or None for `None` (the whole array)."""
    spelled = str(text).strip()
    if spelled.lower() == "none":
        return None
    try:
        return int(spelled)
    except ValueError:
        raise UserError(f"--dim {files.printable(text)!r} is not an integer or None") from None


def check_dims(shapes, dims):
    """Raise UserError where a dim is out of range for one of `shapes`."""
    for shape in shapes:
        for dim in dims:
            if dim is not None and not -len(shape) <= dim < len(shape):
                raise UserError(f"--dim {dim} is out of range for --shape {shape_text(shape)} "
                                f"({len(shape)} dims)")


def itemsize(dtype):
    """Return the bytes one element of `dtype` takes (bfloat16: 2)."""
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def host_bytes(shape, dtype):
    """Return the host memory one input takes while it is built: its source values (int64 or
    float32, 8 bytes at most), the values in `dtype`, and a copy of them on the device."""
    return math.prod(shape) * (8 + 2 * itemsize(dtype))


def check_memory(shapes, dtypes, limit=None):
    """Raise UserError where an input of `shapes` in one of `dtypes` cannot be built within the
    host's memory limit (half the memory available now, or ARGMAX_AUDIT_MEMORY_LIMIT)."""
    limit = limit or files.memory_limit()
    for shape in shapes:
        for dtype in dtypes:
            need = host_bytes(shape, dtype)
            if need > limit.bytes:
                raise UserError(f"--shape {shape_text(shape)} in {dtype} needs "
                                f"{files.amount(need)} of memory to build, more than "
                                f"{limit.words()}")


def shape_text(shape):
    return "x".join(str(size) for size in shape)


# --- statistics ---------------------------------------------------------------------------------


def summarize_times(times):
    """Return {median_s, iqr_s, min_s, samples} of per-call seconds `times` (one per sample)."""
    values = np.asarray(times, dtype=np.float64)
    q1, q3 = np.percentile(values, [25, 75])
    return {"median_s": float(statistics.median(values.tolist())), "iqr_s": float(q3 - q1),
            "min_s": float(values.min()), "samples": int(values.size)}


def bandwidth(nbytes, median_s, peak_gbps):
    """Return {gbps, peak_gbps, peak_fraction}: bytes read per second of the median call, and its
    share of the device's peak (None where no peak was measured)."""
    gbps = nbytes / median_s / 1e9 if median_s > 0 else None
    fraction = gbps / peak_gbps if gbps is not None and peak_gbps else None
    return {"gbps": gbps, "peak_gbps": peak_gbps, "peak_fraction": fraction}


# --- what was measured --------------------------------------------------------------------------


@dataclass
class Entry:
    """What the processes measured for one (target, shape, dim)."""

    times: list = field(default_factory=list)
    loops: int | None = None
    first_s: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # [{type, message, where, process}]


@dataclass
class BenchPlan:
    shapes: list
    dims: list
    samples: int = 5
    processes: int = 2
    seed: int = 0
    min_sample_s: float = MIN_SAMPLE_S
    timeout: float = 60.0
    startup_timeout: float = 180.0


class Bench:
    """Plan targets like `audit run`, then measure them; `checkpoint(bench)` runs after each
    (target, shape), `progress(text)` says what is being measured."""

    runner_class = Runner  # on a Ray node: rayexec.NodeRunner

    def __init__(self, plan, targets_plan, checkpoint=None, progress=None):
        self.plan = plan
        self.runner = self.runner_class(targets_plan, Observations(bundle_path=""))
        self.runner.timing = True  # threads wait between calls as they do by default
        self.entries = {}  # (target id, shape, dim) -> Entry
        self.peaks = {}  # device -> {framework: {gbps: [...], bytes, kernel}}
        self.overhead = {}  # group label -> seconds per call of the timing loop
        self.settings = {}  # target id -> settings the worker reported
        self.skipped = []
        self.hung = set()
        self.deaths = {}
        self.checkpoint = checkpoint or (lambda bench: None)
        self.progress = progress or (lambda text: None)
        self.started = self.seconds = 0.0
        self.done = 0
        self.inventory = None  # audit run's inventory, made once the workers described themselves

    @property
    def targets(self):
        """Return [(target, group)] in the order they are measured."""
        return list(self.runner.targets.values())

    def start(self):
        """Start one worker per group and learn the targets; check shapes against device memory."""
        self.first = self.runner.start()
        self.skipped = self.runner.record.skipped
        self._check_devices()

    def _check_devices(self):
        devices = {}
        for target, group in self.targets:
            if target.device != "cpu":
                devices.setdefault(group, set()).add(target.device)
        for group, names in devices.items():
            free = _request(self.first[group], {"op": "bench_free", "devices": sorted(names)},
                            self.plan.startup_timeout).get("free", {})
            for target, g in self.targets:
                if g == group and free.get(target.device):
                    self._fits(target, free[target.device])

    def _fits(self, target, free):
        for shape in self.plan.shapes:
            need = math.prod(shape) * itemsize(target.dtype) * 2
            if need > free:
                self.close()
                raise UserError(f"--shape {shape_text(shape)} in {target.dtype} needs "
                                f"{files.amount(need)} on {target.device}, more than the "
                                f"{files.amount(free)} free there")

    def close(self):
        for worker in getattr(self, "first", {}).values():
            worker.kill()
        self.first = {}

    def units(self):
        return self.plan.processes * len(self.targets) * len(self.plan.shapes)

    def run(self):
        """Measure every target on every shape in each process; KeyboardInterrupt stops it (the
        caller keeps what was measured)."""
        self.started = time.perf_counter()
        try:
            for process in range(self.plan.processes):
                for group in list(self.runner.described):
                    targets = [t for t, g in self.targets if g == group]
                    if targets:
                        self._process(group, targets, process)
        finally:
            self.close()
            for worker in list(self.runner.live):
                worker.kill()
            self.seconds = time.perf_counter() - self.started

    def _process(self, group, targets, process):
        session = _Session(self, group, self.first.pop(group, None) if process == 0 else None)
        try:
            if process == 0:
                for device in dict.fromkeys(t.device for t in targets):
                    session.peak(device)
            for target in targets:
                for shape in self.plan.shapes:
                    self._announce(target, shape, process)
                    if target.id in self.hung or self.deaths.get(target.id, 0) >= MAX_DEATHS:
                        self._skip(target, shape, process)
                    else:
                        session.measure(target, shape, process)
                    self.done += 1
                    self.checkpoint(self)
        finally:
            session.close()

    def _announce(self, target, shape, process):
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.units() - self.done) if self.done else None
        self.progress(f"[{self.done + 1}/{self.units()}] {target.id} {shape_text(shape)} "
                      f"(process {process + 1} of {self.plan.processes})"
                      + (f", about {_duration(left)} left" if left is not None else ""))

    def _skip(self, target, shape, process):
        why = "it hung" if target.id in self.hung else f"it crashed {MAX_DEATHS} times"
        note = f"{target.id}: not measured after {why} (the rest of its shapes and processes)"
        if note not in self.skipped:
            self.skipped.append(note)

    def entry(self, target, shape, dim):
        return self.entries.setdefault((target.id, tuple(shape), dim), Entry())

    def loops(self, target, shape):
        """Return {str(dim): loops} a first process calibrated for (target, shape)."""
        found = {}
        for dim in self.plan.dims:
            known = self.entries.get((target.id, tuple(shape), dim))
            if known and known.loops:
                found[str(dim)] = known.loops
        return found

    def peak_gbps(self, device, env=None):
        """Return the device's peak: the best median rate of any framework's streaming reduction
        on it in this run, or None (`env`, a target's: one machine here, the same peak)."""
        rates = [statistics.median(p["gbps"]) for p in self.peaks.get(device, {}).values()]
        return max(rates) if rates else None


class _Session:
    """One worker process of one group, restarted after a crash or a hang."""

    def __init__(self, bench, group, worker):
        self.bench, self.group, self.worker = bench, group, worker
        self.impls = [i for i in bench.runner.plan.impls if i.framework == group.framework]

    def _ensure(self):
        if self.worker is None or self.worker.process.poll() is not None:
            self.worker = self.bench.runner.spawn(self.group)
            errors = start_worker(self.worker, self.impls, self.bench.plan.startup_timeout)
            if errors:
                raise WorkerGone("WorkerError", "; ".join(errors.values()))
        return self.worker

    def peak(self, device):
        """Measure the framework's streaming reduction on `device` (once per run and group)."""
        limit = files.memory_limit().bytes // 4
        nbytes = min(PEAK_BYTES["cpu" if device == "cpu" else "other"], limit)
        try:
            reply = _request(self._ensure(), {"op": "bench_peak", "device": device,
                                              "bytes": nbytes}, self.bench.plan.timeout)
        except (WorkerGone, RuntimeError) as exc:
            self._discard()
            self.bench.skipped.append(f"{self.group.label} on {device}: no peak bandwidth "
                                      f"measured ({exc})")
            return
        self.bench.peaks.setdefault(device, {})[self.group.label] = {
            k: reply[k] for k in ("gbps", "bytes", "kernel")}

    def measure(self, target, shape, process):
        """Time `target` on `shape` for every dim; a crash or hang is recorded, not raised."""
        bench, plan = self.bench, self.bench.plan
        pending = list(plan.dims)
        try:
            worker = self._ensure()
            worker.send({"op": "bench", "shape": list(shape), "dims": pending,
                         "samples": plan.samples, "seed": plan.seed,
                         "min_sample_s": plan.min_sample_s, "loops": bench.loops(target, shape),
                         "target": {"device": target.device, "dtype": target.dtype,
                                    "impl": target.impl, "op": target.op,
                                    "variant": variant_table.parse(target.variant).worker_spec()}})
            deadline = plan.timeout
            while True:
                header, _ = worker.receive(deadline)
                deadline = (max(plan.timeout, plan.startup_timeout) if header.get("compile")
                            else plan.timeout)
                if header.get("op") == "measured" and header.get("dim") in pending:
                    pending.remove(header["dim"])
                    self._record(target, shape, header, process)
                elif header.get("op") == "reply":
                    break
            if not header.get("ok"):
                raise RuntimeError(_message(header.get("error") or {}))
            bench.settings.setdefault(target.id, header.get("settings") or {})
            bench.overhead.setdefault(self.group.label, header.get("overhead_s"))
        except (WorkerGone, RuntimeError, ValueError, KeyError, TypeError) as exc:
            kind = exc.kind if isinstance(exc, WorkerGone) else "WorkerError"
            if isinstance(exc, WorkerGone) or not isinstance(exc, RuntimeError):
                self._discard()
                bench.deaths[target.id] = bench.deaths.get(target.id, 0) + 1
            if kind == "Timeout":
                bench.hung.add(target.id)
            error = {"type": kind if isinstance(exc, WorkerGone) else "SetupError",
                     "message": str(exc)[:2000], "where": ""}
            for dim in pending:
                bench.entry(target, shape, dim).errors.append(dict(error, process=process))

    def _record(self, target, shape, header, process):
        entry = self.bench.entry(target, shape, header["dim"])
        if "error" in header:
            entry.errors.append(dict(header["error"], process=process))
            return
        times = [float(t) for t in header["times"]]
        entry.times.extend(times)
        entry.first_s.append(float(header["first_s"]))
        entry.loops = entry.loops or int(header["loops"])

    def _discard(self):
        if self.worker is not None:
            self.worker.kill()
            self.bench.runner.forget(self.worker)
        self.worker = None

    def close(self):
        if self.worker is not None:
            self.worker.close()
            self.bench.runner.forget(self.worker)


def _request(worker, header, timeout):
    """Send `header` and return the reply, skipping the ticks before it; RuntimeError if it
    failed."""
    worker.send(header)
    while True:
        reply, _ = worker.receive(timeout)
        if reply.get("op") != "tick":
            break
    if not reply.get("ok"):
        raise RuntimeError(_message(reply.get("error") or {}))
    return reply


def _message(error):
    return f"{error.get('type', 'Error')}: {error.get('message', '')}"


def _duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


# --- the whole command -----------------------------------------------------------------------------


def targets_plan(frameworks, devices, dtypes, variants, ops, impls, interpreters, local,
                 processes, timeout, startup_timeout):
    """Return the runner Plan that makes `audit run`'s targets (no cases: bench times its own
    inputs); dtypes default to float32, the article's."""
    return Plan(frameworks=list(frameworks) or list(FRAMEWORKS),
                explicit_frameworks=bool(frameworks), devices=list(devices),
                dtypes=list(dtypes) or ["float32"], impls=list(impls), cases=[],
                processes=processes, timeout=timeout, jobs=1, startup_timeout=startup_timeout,
                variants=list(variants) or ["eager"], ops=list(ops) or ["argmax"],
                interpreters=list(interpreters), local=local)


def measure(bench):
    """Run `bench` with Ctrl-C and SIGTERM stopping it; return True when it was interrupted."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        bench.run()
    except KeyboardInterrupt:
        return True
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    return False


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def total_memory():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def environment(bench, load_start):
    """Return the bench document's environment: audit run's inventory, the machine, the load
    average at the start and end, the peaks measured and the timing loop's own cost."""
    if getattr(bench, "inventory", None) is None:  # once: it may ask nvidia-smi
        record = bench.runner.record
        bench.inventory = inventory(record.frameworks, record.unavailable, record.envs)
    found = dict(bench.inventory)
    found.update(
        cpu=cpu_name(), memory_bytes=total_memory(),
        load_average={"start": load_start, "end": load_average()},
        peaks={device: {"gbps": bench.peak_gbps(device),
                        "by": {label: {"gbps": statistics.median(p["gbps"]), "bytes": p["bytes"],
                                       "kernel": p["kernel"]} for label, p in measured.items()}}
               for device, measured in bench.peaks.items()},
        loop_overhead_s={label: s for label, s in bench.overhead.items() if s is not None})
    return found


def document(bench, load_start, metadata, complete):
    """Return the bench document (format 1) of what `bench` measured so far."""
    results, failures, first_calls = [], [], []
    for target, _ in bench.targets:
        for shape in bench.plan.shapes:
            for dim in bench.plan.dims:
                entry = bench.entries.get((target.id, tuple(shape), dim))
                if entry is None:
                    continue
                where = {"target": target.id, "shape": list(shape), "dim": dim}
                if entry.errors:
                    failures.append(dict(where, errors=entry.errors))
                    continue
                if not entry.times:
                    continue
                first_calls.append(dict(where, seconds=entry.first_s))
                nbytes = math.prod(shape) * itemsize(target.dtype)
                stats = summarize_times(entry.times)
                results.append({**where, **stats, "loops": entry.loops, "bytes": nbytes,
                                **bandwidth(nbytes, stats["median_s"],
                                            bench.peak_gbps(target.device, target.env))})
    run = dict(metadata, complete=complete, seconds=round(bench.seconds, 3),
               shapes=[list(s) for s in bench.plan.shapes], dims=list(bench.plan.dims),
               samples=bench.plan.samples, processes=bench.plan.processes, seed=bench.plan.seed,
               min_sample_s=bench.plan.min_sample_s, timeout=bench.plan.timeout,
               targets={t.id: _target_fields(t, bench.settings.get(t.id)) for t, _ in bench.targets},
               failures=failures, first_call_s=first_calls, skipped=list(bench.skipped))
    return {"format_version": 1, "environment": environment(bench, load_start),
            "results": results, "run": run}


def _target_fields(target, settings):
    return {"framework": target.framework, "device": target.device, "dtype": target.dtype,
            "variant": target.variant, "op": target.op, "impl": target.impl, "env": target.env,
            "settings": settings or {}}


def stderr_progress(enabled):
    """Return progress(text): a line overwritten in place on a terminal, a line per step else."""
    tty = sys.stderr.isatty()

    def progress(text):
        if not enabled:
            return
        if tty:
            sys.stderr.write("\r" + text[:110].ljust(110))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    progress.close = lambda: enabled and tty and sys.stderr.write("\r" + " " * 110 + "\r")
    return progress
