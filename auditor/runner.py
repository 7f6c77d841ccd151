"""Run every case on every target: worker processes per framework, repeats, crashes kept as data.

Workers are started per group: a framework with one set of process-wide settings (jax's x64 mode,
XLA_FLAGS, which must be set before jax starts). Every other variant (compile, jit, threads,
deterministic mode, ...) and every op runs in its group's workers, target after target.
"""
from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from . import ops as op_table
from . import registry
from . import variants as variant_table
from .envs import compiled_folder, process_alive
from .errors import CouldNotRun, UserError
from .model import Outcome, Target
from .worker import layouts
from .worker.kept import KEEP_ENV
from .worker.protocol import SHARED_ENV, TIMING_ENV, read_array
from .workers import WorkerGone, WorkerProcess, cases_message, tick_grace

#: What brings each kind of device, where no backend says.
DEVICE_HINTS = {
    "cpu": "any build",
    "cuda": "an NVIDIA GPU and a CUDA build of the framework",
    "rocm": "an AMD GPU and a ROCm build of the framework",
    "mps": "Apple silicon with macOS 12.3 or later",
    "tpu": "a TPU VM",
}


def __getattr__(name):
    """`INSTALL_HINT` ({framework: install command}) and `DEVICE_FRAMEWORKS` ({device kind:
    frameworks that can drive it}), from the backends."""
    if name == "INSTALL_HINT":
        return {fw: b.install for fw, b in registry.backends().items()}
    if name == "DEVICE_FRAMEWORKS":
        return device_frameworks()
    raise AttributeError(name)


def device_frameworks():
    """Return {device kind: the frameworks whose backends say they can drive it}."""
    found = {}
    for fw, backend in registry.backends().items():
        for kind in backend.device_hints:
            found.setdefault(kind, []).append(fw)
    return {kind: tuple(fws) for kind, fws in found.items()}


#: Times one target may kill or hang its worker before its remaining cases are skipped.
MAX_DEATHS = 3
#: Calls per process on a case tagged `race` (long reductions, ties across thread chunks, dim=None),
#: as a multiple of --repeats: a race that shows in one call of twenty is then found almost surely.
RACE_FACTOR = 8
#: Calls a fresh process makes on a (target, case) that gave two answers, so that the finding can
#: say how often each answer comes.
RERUN_CALLS = 200


@dataclass
class Impl:
    """A user implementation given as `FRAMEWORK:MODULE_OR_FILE:FUNCTION[@argmin]`."""

    framework: str
    module: str
    function: str
    op: str = "argmax"  # or "argmin": the rule it is judged by

    @property
    def name(self):
        return f"{self.module}:{self.function}"


@dataclass(frozen=True)
class Group:
    """The worker processes of one framework with one set of process-wide variant settings."""

    framework: str
    process: tuple = ()  # process-wide modifiers, e.g. ("x64",)
    home: str = "local"  # the environment (--env NAME, --python PATH) its interpreter belongs to
    python: str | None = None  # that interpreter; None: this one

    @property
    def label(self):
        text = self.framework + (f" ({'+'.join(self.process)})" if self.process else "")
        return text if self.home == "local" else f"{text}@{self.home}"

    @property
    def env(self):
        return variant_table.process_env(self.process, framework=self.framework)


@dataclass
class Plan:
    """What to run: frameworks, filters, user implementations, cases and how often.

    `variants` and `ops` are names as `--variant` and `--op` give them (`all` included); a name
    that does not apply to a framework is skipped there with a note.
    """

    frameworks: list
    explicit_frameworks: bool
    devices: list
    dtypes: list
    impls: list
    cases: list
    repeats: int = 5
    processes: int = 2
    timeout: float = 60.0
    jobs: int = 2
    startup_timeout: float = 180.0
    variants: list = field(default_factory=lambda: [variant_table.EAGER])
    ops: list = field(default_factory=lambda: [op_table.DEFAULT])
    #: Other interpreters to audit in: [Interpreter], from --env and --python.
    interpreters: list = field(default_factory=list)
    local: bool = True  # audit the frameworks of this Python too (not with --no-local)


@dataclass(frozen=True)
class Interpreter:
    """Another Python to audit in: its label in target ids, its path, and what it holds."""

    label: str
    python: str
    probe: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def frameworks(self):
        """The frameworks installed there, by the probe of their metadata."""
        packages = self.probe.get("packages") or {}
        return [fw for fw, backend in registry.backends().items()
                if any(packages.get(d) for d in backend.distributions or (backend.module,))]


@dataclass
class RunRecord:
    """What the run learnt besides observations: frameworks, their devices, what was skipped."""

    frameworks: dict = field(default_factory=dict)
    unavailable: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    seconds: float = 0.0
    envs: dict = field(default_factory=dict)  # label -> {python, executable, frameworks}


def _wanted(plan):
    return list(dict.fromkeys([*plan.frameworks, *(impl.framework for impl in plan.impls)]))


def broken_backends(plan):
    """Return {framework: why} of the plan's frameworks whose backend cannot be used: it failed
    to import, is not a backend, or its `installed()` raised."""
    broken = {fw: why for fw, why in registry.broken().items() if fw in _wanted(plan)}
    for fw, backend in registry.backends().items():
        if fw in _wanted(plan):
            try:
                backend.installed()
            except Exception as exc:  # noqa: BLE001 - a third party's backend may raise anything
                broken[fw] = f"its installed() raised {type(exc).__name__}: {exc}"
    return broken


def check_available(plan):
    """Return (the frameworks to audit, {framework: why it is not}); raise UserError where one
    asked for by name is not installed. Broken backends are left out (see `broken_backends`)."""
    wanted = _wanted(plan)
    needed = {impl.framework for impl in plan.impls} | (set(plan.frameworks) if plan.explicit_frameworks else set())
    broken = broken_backends(plan)
    usable = registry.backends()
    missing = {}
    for fw in wanted:
        if fw in broken:
            continue
        if not usable[fw].installed():
            missing[fw] = usable[fw].install
    for fw in sorted(set(missing) & needed):
        raise UserError(f"{fw} is not installed in this Python; install it with: {missing[fw]}")
    ready = [fw for fw in wanted if fw not in missing and fw not in broken]
    order = list(usable)
    return (sorted(ready, key=lambda fw: order.index(fw)),
            {fw: f"not installed ({hint})" for fw, hint in missing.items()})


def _device_matches(device, wanted):
    return device == wanted or device.split(":")[0] == wanted


#: The run's shared folders are named after the driver's machine and process id, and locked
#: while the run holds them, so that a later run can remove those of a driver killed outright
#: (SIGKILL leaves no chance to clean up) and never one still in use (another machine or
#: container may share the temporary folder, and reuse process ids).
SHARED_PREFIX = "argmax-audit-shared-"
_SHARED = re.compile(re.escape(SHARED_PREFIX) + r"(.+)-(\d{1,9})-[a-z0-9_]+")


def _host():
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "host"


def _sweep_shared():
    """Remove the shared folders in the temporary folder that dead drivers of this user on this
    machine left: unlocked, not a link, this user's, its process gone."""
    folder = tempfile.gettempdir()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = _SHARED.fullmatch(entry.name)
        if not match or match.group(1) != _host():
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
            if (stat.S_ISDIR(info.st_mode) and mine and not process_alive(int(match.group(2)))
                    and _unlocked(entry.path)):
                shutil.rmtree(entry.path, ignore_errors=True)
        except (OSError, OverflowError, ValueError):
            continue


def _lock(folder):
    """Return a descriptor of `folder` that holds a lock on it while open (None where the system
    has no such locks)."""
    try:
        import fcntl
    except ImportError:
        return None
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        return None
    return handle


def _unlocked(folder):
    handle = _lock(folder)
    if handle is None:
        return False
    os.close(handle)
    return True


def _remove_scratch(folder, handle):
    shutil.rmtree(folder, True)
    if handle is not None:
        os.close(handle)


class Runner:
    """Drive the workers for `plan`, writing into `observations` and calling `progress`."""

    def __init__(self, plan, observations, progress=None, checkpoint=None, prewarm=False):
        self.plan = plan
        self.prewarm = prewarm  # start second processes while slower frameworks are probed
        self.observations = observations
        self.progress = progress or (lambda *a: None)
        self.checkpoint = checkpoint or (lambda: None)
        self.grow = lambda more: None  # told how many (target, case) runs the re-runs add
        self.lock = threading.Lock()
        self.record = RunRecord()
        self.targets = {}
        self.stopping = threading.Event()
        self.live = set()  # worker processes running now, killed on interrupt
        self.hung = set()  # targets that hung once: not started again in other processes
        self._cases_message = None
        self.described = {}  # Group -> what its first worker said about itself
        self.variants = {}  # framework -> the Variants it runs
        self._cases_for = {}  # target id -> the ids of the cases it runs
        self._shared = {}  # Group -> a folder its processes share for the run (see `spawn`)
        self.startup_s = {}  # Group -> seconds its first worker took to start and describe itself
        self._scratch = None
        self._spares = {}  # Group -> Future of its process 1, started early (see `_warm_early`)
        #: True for `audit bench`: its workers keep the frameworks' own idle-thread settings.
        self.timing = False
        self._warm_pool = None

    def shared_folder(self, group):
        """Return the folder the processes of `group` share during this run, made on first use
        and removed with everything in it when the run ends (or the runner is collected).

        A worker may keep there what its other processes can reuse without changing any answer
        (the jax adapter keeps its compiled executables there on CPU)."""
        if group not in self._shared:
            if self._scratch is None:
                _sweep_shared()
                self._scratch = tempfile.mkdtemp(prefix=f"{SHARED_PREFIX}{_host()}-{os.getpid()}-")
                self._cleanup = weakref.finalize(self, _remove_scratch, self._scratch,
                                                 _lock(self._scratch))
            self._shared[group] = os.path.join(self._scratch, str(len(self._shared)))
            os.mkdir(self._shared[group])
        return self._shared[group]

    def spawn(self, group):
        """Start a worker for `group` and track it, so an interrupt can stop it."""
        with self.lock:
            if self.stopping.is_set():
                raise WorkerGone("WorkerError", "the run was interrupted")
            env = {**group.env, SHARED_ENV: self.shared_folder(group)}
            kept = compiled_folder()
            if kept:
                env[KEEP_ENV] = kept
            if self.timing:
                env[TIMING_ENV] = "1"
            worker = WorkerProcess(group.framework, python=group.python, env=env)
            self.live.add(worker)
            return worker

    def note(self, text):
        """Record once that something asked for is not audited, and why."""
        if text not in self.record.skipped:
            self.record.skipped.append(text)

    def forget(self, worker):
        with self.lock:
            self.live.discard(worker)

    def cases_message(self):
        """Return the (header, payload) that sends every case some target runs to a worker,
        built once."""
        with self.lock:
            if self._cases_message is None:
                self._cases_message = cases_message(self.used_cases())
            return self._cases_message

    def used_cases(self):
        """Return the plan's cases that at least one target runs, in the plan's order."""
        used = {cid for ids in self._cases_for.values() for cid in ids}
        return [c for c in self.plan.cases if c.id in used]

    def cases_for(self, target):
        """Return the ids of the plan's cases that `target` runs: those of its dtype's family and
        op's sense, in a layout its framework can make (the others noted once)."""
        if target.id not in self._cases_for:
            group = self.targets[target.id][1]
            limits = self.described.get(group, {}).get("layout_limits", {})
            chosen, skipped = [], {}
            for case in self.plan.cases:
                if not case.applies(target.dtype, target.sense):
                    continue
                why = layout_limit(case, limits)
                if why:
                    skipped.setdefault(why, set()).add(case.layout)
                    continue
                chosen.append(case.id)
            for why, names in skipped.items():
                where = "" if group.home == "local" else f"@{group.home}"
                self.note(f"{target.framework}{where}: cases of layout {', '.join(sorted(names))} "
                          f"not run: {why}")
            self._cases_for[target.id] = chosen
        return self._cases_for[target.id]

    def planned(self):
        """Return how many (target, case) runs one process of every target makes."""
        return sum(len(self.cases_for(target)) for target, _ in self.targets.values())

    def repeats(self, case_ids):
        """Return {case id: calls per process} for the cases of `case_ids` that get more calls."""
        race = {c.id for c in self.plan.cases if "race" in c.tags}
        return {cid: self.plan.repeats * RACE_FACTOR for cid in case_ids if cid in race}

    # -- phase 1: start one worker per group, learn its devices, load implementations
    def start(self):
        groups = []
        if self.plan.local:
            frameworks, self.record.unavailable = check_available(self.plan)
            for fw, why in broken_backends(self.plan).items():  # a crash finding; the other frameworks run
                self.observations.startup_errors[fw] = f"its backend is broken: {why}"
            groups = self._groups(frameworks)
        for interpreter in self.plan.interpreters:
            groups += self._interpreter_groups(interpreter)
        first, problems = {}, []
        with concurrent.futures.ThreadPoolExecutor(max(1, len(groups))) as pool:
            futures = {group: pool.submit(self._describe, group) for group in groups}
            if self.prewarm and self.plan.processes > 1:
                self._warm_early(futures)
            for group, future in futures.items():
                try:
                    worker, info, error = future.result()
                except UserError as exc:
                    problems.append(exc)
                    continue
                if error:
                    self.observations.startup_errors[group.label] = error
                    continue
                first[group] = worker
                self.described[group] = info
                frameworks = self.record.frameworks if group.home == "local" else (
                    self.record.envs[group.home]["frameworks"])
                if not group.process or group.framework not in frameworks:
                    frameworks[group.framework] = info
        try:
            if problems:
                raise problems[0]
            self._make_targets()
            self.planned()  # each target's cases chosen (and skips noted) before threads start
        except UserError:
            _close_all(first)
            self._drop_spares()
            raise
        if not self.targets:
            _close_all(first)
            self._drop_spares()
            if self.record.skipped:
                raise UserError("nothing to audit: " + "; ".join(self.record.skipped))
            reasons = "; ".join(f"{fw}: {why}" for fw, why in {
                **self.record.unavailable, **self.observations.startup_errors}.items())
            raise CouldNotRun("no target could run" + (f" ({reasons})" if reasons else ""))
        return first

    def _warm_early(self, probes):
        """While some groups' first workers are still starting (`probes`: Group -> Future of
        `_describe`), start the second process of groups already described, so that a core
        left idle by a slow framework's import (TensorFlow's takes seconds) imports what the run
        needs next; at most --jobs processes start at once. Run-phase order decides which: the
        groups that compile every signature, then the slowest to start (`_longest_first`)."""
        waiting = {future: group for group, future in probes.items()}
        warming, ready = set(), []
        while waiting:
            done, _ = concurrent.futures.wait(set(waiting) | warming,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                warming.discard(future)
                group = waiting.pop(future, None)
                if group is not None and not future.exception() and future.result()[0] is not None:
                    ready.append((group, future.result()[1]))
            ready.sort(key=lambda item: (not item[1].get("compiles_per_signature"),
                                         -self.startup_s.get(item[0], 0.0)))
            while waiting and ready and len(waiting) + len(warming) < self.plan.jobs:
                if self._warm_pool is None:
                    self._warm_pool = concurrent.futures.ThreadPoolExecutor(
                        max(1, self.plan.jobs), thread_name_prefix="argmax-audit-warm")
                group = ready.pop(0)[0]
                self._spares[group] = self._warm_pool.submit(self._warm, group)
                warming.add(self._spares[group])

    def _warm(self, group):
        """Start and greet a worker of `group` ahead of its turn; None where that failed (its
        session then starts one itself and meets the failure as it would have)."""
        impls = [i for i in self.plan.impls if i.framework == group.framework]
        try:
            worker = self.spawn(group)
        except (WorkerGone, OSError):
            return None
        try:
            if not start_worker(worker, impls, self.plan.startup_timeout):
                return worker
        except (WorkerGone, RuntimeError):
            pass
        worker.kill()
        self.forget(worker)
        return None

    def _drop_spares(self):
        """Stop the workers started early that no session took (now, or once they are up)."""
        def stop(future):
            worker = None if future.cancelled() or future.exception() else future.result()
            if worker is not None:
                worker.kill()
                self.forget(worker)

        for future in self._spares.values():
            future.add_done_callback(stop)
        self._spares.clear()
        if self._warm_pool is not None:
            self._warm_pool.shutdown(wait=False)

    def _interpreter_groups(self, interpreter):
        """Return the groups of another interpreter: its frameworks the plan audits there."""
        self.record.envs[interpreter.label] = {
            "python": interpreter.probe.get("python"), "executable": interpreter.python,
            "frameworks": {}, "packages": interpreter.probe.get("packages") or {}}
        present = interpreter.frameworks
        wanted = set(self.plan.frameworks) | {impl.framework for impl in self.plan.impls}
        for fw in sorted(wanted - set(present)):
            if self.plan.explicit_frameworks or any(i.framework == fw for i in self.plan.impls):
                self.note(f"{fw} is not installed in {interpreter.label} ({interpreter.python})")
        frameworks = [fw for fw in present if fw in wanted]
        return [Group(g.framework, g.process, interpreter.label, interpreter.python)
                for g in self._groups(frameworks)]

    def _groups(self, frameworks):
        """Return the worker groups the plan needs; note each named variant or op that a
        framework does not have."""
        groups = []
        audited = [fw for fw in frameworks if fw in self.plan.frameworks
                   or any(i.framework == fw for i in self.plan.impls)]
        for fw in audited:
            try:
                self.variants[fw] = variant_table.select(self.plan.variants, fw)
            except ValueError as exc:  # a third-party backend's `all_variants` that do not parse
                self.observations.startup_errors[fw] = f"its backend's variants are unusable: {exc}"
                continue
            for name in self.plan.variants:
                if name != "all" and fw not in variant_table.parse(name).frameworks:
                    where = ", ".join(sorted(variant_table.parse(name).frameworks))
                    self.note(f"{fw}: variant {name} does not apply (it is for {where})")
            if fw in self.plan.frameworks:
                for name in self.plan.ops:
                    if name != "all" and fw not in op_table.OPS[name].frameworks:
                        where = ", ".join(op_table.OPS[name].frameworks)
                        self.note(f"{fw}: op {name} does not apply (it is for {where})")
            for variant in self.variants[fw]:
                group = Group(fw, variant.process_for(fw))
                if group not in groups and (self._ops(fw) or any(
                        i.framework == fw for i in self.plan.impls)):
                    groups.append(group)
        return groups

    def _ops(self, framework):
        """Return the ops the plan audits on `framework`'s own functions."""
        if framework not in self.plan.frameworks:
            return []
        names = op_table.for_framework(framework)
        return [op for op in names if "all" in self.plan.ops or op in self.plan.ops]

    def _describe(self, group):
        started = time.perf_counter()
        worker = self.spawn(group)
        timeout = self.plan.startup_timeout
        try:
            hello = worker.hello(timeout)
            info = worker.request({"op": "describe"}, timeout=timeout)
        except (WorkerGone, RuntimeError) as exc:
            worker.kill()
            return None, None, f"could not start: {exc}"
        self.startup_s[group] = time.perf_counter() - started
        info = {k: v for k, v in info.items() if k not in ("ok", "op")}
        problem = registry.check_probe(info)
        if problem:
            worker.kill()
            return None, None, f"its backend's probe is unusable: {problem}"
        info["worker"] = {k: v for k, v in hello.items() if k not in ("ok", "op")}
        framework = group.framework
        impls = [impl for impl in self.plan.impls if impl.framework == framework]
        try:
            errors = start_worker_impls(worker, impls, timeout)
        except (WorkerGone, RuntimeError) as exc:
            worker.kill()
            names = ", ".join(f"{framework}:{i.name}" for i in impls)
            what = (f"importing it did not finish within --startup-timeout {timeout:g} s"
                    if getattr(exc, "kind", "") == "Timeout" else f"importing it broke the worker ({exc})")
            raise UserError(f"--impl {names}: {what}") from None
        for name, message in errors.items():
            worker.kill()
            raise UserError(f"--impl {framework}:{name}: {message}")
        return worker, info, None

    def _make_targets(self):
        found_devices = set()
        for group, info in self.described.items():
            for device in info["devices"]:
                found_devices.add(device["id"])
                if self.plan.devices and not any(_device_matches(device["id"], d) for d in self.plan.devices):
                    continue
                for dtype in self.plan.dtypes:
                    if dtype not in device["dtypes"]:
                        why = (device.get("unsupported") or {}).get(dtype, "not supported")
                        where = "" if group.home == "local" else f"@{group.home}"
                        self.note(f"{group.framework}/{device['id']}/{dtype}{where}: {why}")
                        continue
                    self._add_targets(group, info, device, dtype)
        for wanted in self.plan.devices if self.described else ():
            if not any(_device_matches(d, wanted) for d in found_devices):
                raise UserError(self._absent_device(wanted, found_devices))
        for target, _ in self.targets.values():
            self.observations.targets[target.id] = target

    def _add_targets(self, group, info, device, dtype):
        """Add the targets of `group` on `device` in `dtype`: each variant x (op or impl)."""
        fw = group.framework
        impls = [i for i in self.plan.impls if i.framework == fw]
        for variant in (v for v in self.variants[fw] if v.process_for(fw) == group.process):
            why = device.get("unavailable_modes", {}).get(variant.mode)
            if why:
                self.note(f"{fw} variant {variant.name} on {device['id']}: {why}")
                continue
            for op in self._ops(fw):
                self._add(Target(fw, device["id"], dtype, variant=variant.name, op=op,
                                 env=group.home,
                                 index_dtype=info.get("index_dtypes", {}).get(op, info["index_dtype"])),
                          group)
            for impl in impls:
                self._add(Target(fw, device["id"], dtype, variant=variant.name, impl=impl.name,
                                 op=impl.op, env=group.home, index_dtype=info["index_dtype"]), group)

    def _add(self, target, group):
        self.targets[target.id] = (target, group)

    def _absent_device(self, wanted, found_devices):
        """Say that device `wanted` is absent, what was found, and what would bring it."""
        builds = ", ".join(f"{fw} {info['version']}" + (
            f" with CUDA {info['build']['cuda']}" if info["build"].get("cuda") else "")
            for fw, info in self.record.frameworks.items())
        kind = wanted.split(":")[0]
        able = device_frameworks().get(kind, ())
        capable = [fw for fw in self.record.frameworks if fw in able]
        if not capable:
            hints = "; ".join(f"{fw}: {registry.get(fw).device_hints[kind]}" for fw in able)
            return (f"device {wanted} is not present: {', '.join(self.record.frameworks)} runs on "
                    f"the CPU only; audit {kind} with {' or '.join(able) or 'a backend that has it'}"
                    + (f", which needs {hints}" if hints else ""))
        hints = "; ".join(dict.fromkeys(registry.get(fw).device_hints[kind] for fw in capable))
        return (f"device {wanted} is not present (found: {', '.join(sorted(found_devices))}; "
                f"{builds}); it needs {hints or DEVICE_HINTS.get(kind, 'a device of that kind')}")

    # -- phase 2: every target in `processes` fresh processes
    def run(self, first):
        started = time.perf_counter()
        used = {group for _, group in self.targets.values()}
        for group in set(first) - used:
            first.pop(group).close()
        jobs = [(group, p) for group in self._longest_first(used) for p in range(self.plan.processes)]
        pool = concurrent.futures.ThreadPoolExecutor(max(1, self.plan.jobs))
        try:
            running = {pool.submit(self._run_process, group, p, first.pop(group) if p == 0 else
                                   self._spares.pop(group, None) if p == 1 else None)
                       for group, p in jobs}
            self._wait(running)
            reruns = self._unsettled()
            self.grow(sum(len(ids) for items in reruns.values() for _, ids in items))
            self._wait({pool.submit(self._rerun, group, items) for group, items in reruns.items()})
        except BaseException:
            self.stopping.set()
            with self.lock:
                doomed = list(self.live)
            for worker in doomed:
                worker.kill()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for worker in first.values():
                worker.kill()
            self._drop_spares()
            if self._scratch is not None:
                self._cleanup()
            self.record.seconds = time.perf_counter() - started

    def _longest_first(self, used):
        """Return the groups of `used`, the longest-running first, so that short ones fill the
        slots at the end: those whose workers compile every signature (and the two processes of
        one, running at once, share their compilations), then by how long a worker took to
        start (a framework slow to import is seldom quick to run)."""
        groups = [g for g in self.described if g in used]
        return sorted(groups, key=lambda g: (not self.described[g].get("compiles_per_signature"),
                                             -self.startup_s.get(g, 0.0)))

    def _wait(self, running):
        while running:
            done, running = concurrent.futures.wait(
                running, timeout=1.0, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                future.result()
            with self.lock:
                self.checkpoint()  # it saves at most every few seconds

    def _unsettled(self):
        """Return {group: [(target, case ids)]} of the targets that gave two or more answers on a
        case (and did not hang): each is run again to estimate how often each answer comes."""
        found = {}
        for (target_id, case_id), outcomes in self.observations.outcomes.items():
            if (target_id in self.targets and target_id not in self.hung
                    and sum(o.is_answer for o in outcomes) > 1):
                found.setdefault(target_id, []).append(case_id)
        reruns = {}
        for target_id, case_ids in found.items():
            target, group = self.targets[target_id]
            reruns.setdefault(group, []).append((target, case_ids))
        return reruns

    def _rerun(self, group, items):
        """Call each target of `items` RERUN_CALLS times on its cases in one fresh process,
        numbered after the run's own processes."""
        impls = [i for i in self.plan.impls if i.framework == group.framework]
        session = _Session(self, group, impls, None)
        try:
            for target, case_ids in items:
                session.run_target(target, self.plan.processes, case_ids, RERUN_CALLS)
        finally:
            session.close()

    def _run_process(self, group, process, worker):
        if isinstance(worker, concurrent.futures.Future):  # started early (see `_warm_early`)
            worker = None if worker.exception() else worker.result()  # None: the session starts one
        targets = [t for t, g in self.targets.values() if g == group]
        if process % 2:  # the other end first: with a shared folder (see `shared_folder`), two
            targets.reverse()  # processes running at once then mostly reuse each other's work
        impls = [i for i in self.plan.impls if i.framework == group.framework]
        session = _Session(self, group, impls, worker)
        try:
            for target in targets:
                session.run_target(target, process)
        finally:
            session.close()

    def record_outcomes(self, target, case_id, outcomes, timing=None):
        with self.lock:
            self.observations.add(target.id, case_id, outcomes)
            if timing:
                total = self.observations.timings.setdefault((target.id, case_id), {
                    "calls": 0, "call_s": 0.0, "min_s": float("inf"), "prepare_s": 0.0,
                    "harness_s": 0.0, "compile_s": 0.0, "compiles": 0})
                total["calls"] += len(timing["seconds"])
                total["call_s"] += sum(timing["seconds"])
                total["min_s"] = min(total["min_s"], min(timing["seconds"], default=float("inf")))
                total["prepare_s"] += timing["prepare_s"]
                total["harness_s"] += timing["harness_s"]
                if timing.get("compile_s") is not None:  # the first, compiling call, apart
                    total["compile_s"] = total.get("compile_s", 0.0) + timing["compile_s"]
                    total["compiles"] = total.get("compiles", 0) + 1
        self.progress(target, case_id)

    def record_settings(self, target, process, settings):
        """Keep the settings the worker reported for `target`; note a process that differed."""
        if not settings:
            return
        with self.lock:
            if not target.settings:
                target.settings.update(settings)
            elif settings != {k: v for k, v in target.settings.items() if k != "by_process"}:
                target.settings.setdefault("by_process", {})[str(process)] = settings


class _Session:
    """One logical worker process of one group; restarted after a crash or a hang."""

    def __init__(self, runner, group, impls, worker):
        self.runner = runner
        self.plan = runner.plan
        self.group = group
        self.impls = impls
        self.worker = worker
        self.cases_sent = False

    def _ensure(self):
        if self.runner.stopping.is_set():
            raise WorkerGone("WorkerError", "the run was interrupted")
        if self.worker is None or self.worker.process.poll() is not None:
            self.worker = self.runner.spawn(self.group)
            errors = start_worker(self.worker, self.impls, self.plan.startup_timeout)
            if errors:
                raise WorkerGone("WorkerError", "; ".join(errors.values()))
            self.cases_sent = False
        if not self.cases_sent:
            self.worker.request(*self.runner.cases_message(), timeout=self.plan.startup_timeout)
            self.cases_sent = True
        return self.worker

    def run_target(self, target, process, cases=None, repeats=None):
        """Run `target` on `cases` (default: every case it applies to) in this session's process
        number `process`, `repeats` calls each (default: --repeats, more on race cases)."""
        pending = list(self.runner.cases_for(target) if cases is None else cases)
        more = self.runner.repeats(pending) if repeats is None else {c: repeats for c in pending}
        deaths = 0
        while pending:
            if target.id in self.runner.hung:
                self._skip(target, process, pending, "after it hung in another process")
                return
            try:
                worker = self._ensure()
                worker.send({"op": "run", "repeats": self.plan.repeats, "cases": pending,
                             "tick_every": tick_grace(self.plan.timeout),
                             "case_repeats": {c: more[c] for c in pending if c in more},
                             "target": {"device": target.device, "dtype": target.dtype,
                                        "impl": target.impl, "op": target.op,
                                        "variant": variant_table.parse(target.variant).worker_spec()}})
                while pending and not self.runner.stopping.is_set():
                    self._receive_result(worker, target, process, pending)
                if pending:
                    return
                reply, _ = worker.receive(self.plan.timeout)  # the closing reply
                self.runner.record_settings(target, process, reply.get("settings"))
            except Exception as exc:  # death, hang, garbage on the pipe: the target's crash
                if self.runner.stopping.is_set():
                    return  # the user interrupted the run: this is not the target's fault
                kind = exc.kind if isinstance(exc, WorkerGone) else "WorkerError"
                message = str(exc) if isinstance(exc, WorkerGone) else f"{type(exc).__name__}: {exc}"
                self._discard()
                deaths += 1
                if pending:
                    error = {"type": kind, "message": message, "where": ""}
                    self.runner.record_outcomes(target, pending.pop(0),
                                                [Outcome([[process, None]], error=error)])
                if kind == "Timeout":
                    self.runner.hung.add(target.id)
                    self._skip(target, process, pending, f"after it hung for {self.plan.timeout:g} s")
                    return
                if deaths >= MAX_DEATHS:
                    self._skip(target, process, pending, f"after {deaths} crashes")
                    return

    def _skip(self, target, process, pending, why):
        if pending:
            self.runner.record.skipped.append(
                f"{target.id} (process {process}): {len(pending)} cases skipped {why}")
        for case_id in pending:
            self.runner.progress(target, case_id)
        pending.clear()

    def _receive_result(self, worker, target, process, pending):
        deadline = self.plan.timeout
        while True:
            header, payload = worker.receive(deadline, tick_grace(self.plan.timeout))
            if header.get("op") != "tick":
                break
            # A compilation (torch.compile, jax.jit) may take as long as starting a worker.
            deadline = (max(self.plan.timeout, self.plan.startup_timeout) if header.get("compile")
                        else self.plan.timeout)
        if header.get("op") == "reply":  # the run itself failed before its cases
            raise RuntimeError(header.get("error", {}).get("message", "run failed"))
        if header.get("case") != pending[0]:
            raise WorkerGone("WorkerError", f"expected case {pending[0]}, got {header.get('case')}")
        outcomes = _outcomes(header, payload, process)
        self.runner.record_outcomes(target, pending.pop(0), outcomes,
                                    None if "setup_error" in header else header)

    def _discard(self):
        if self.worker is not None:
            self.worker.kill()
            self.runner.forget(self.worker)
        self.worker = None

    def close(self):
        if self.worker is not None:
            self.worker.close()
            self.runner.forget(self.worker)


def _outcomes(header, payload, process):
    """Return the Outcomes a result message reports for one case in `process`."""
    if "setup_error" in header:
        cause = header["setup_error"]
        error = dict(cause, type="SetupError", message=f"{cause['type']}: {cause['message']}")
        return [Outcome([[process, None]], error=error)]
    outcomes = []
    for item in header["outcomes"]:
        runs = [[process, r] for r in item["repeats"]]
        if "error" in item:
            outcomes.append(Outcome(runs, error=item["error"]))
        else:
            indices = np.array(read_array(payload, item["indices"]), dtype=np.int64)
            outcomes.append(Outcome(runs, indices=indices, dtype=item["dtype"], type=item["type"]))
    if header.get("mutated"):
        outcomes.append(Outcome([[process, None]], error={
            "type": "MutatedInput", "where": "",
            "message": "changed its input in place (the values after the calls differ from before)"}))
    return outcomes


def layout_limit(case, limits):
    """Say why a framework with `limits` (its describe's layout_limits) cannot make `case`'s
    layout, or return None where it can."""
    if case.layout == "contiguous" or not case.values.ndim:
        return None
    if "views" in limits:
        return limits["views"]
    return next((limits[need] for need in layouts.steps_need(case.layout) if need in limits), None)


def start_worker(worker, impls, timeout):
    """Greet `worker` and load `impls` into it; return {impl name: error} for those that failed."""
    worker.hello(timeout)
    return start_worker_impls(worker, impls, timeout)


def start_worker_impls(worker, impls, timeout):
    """Load `impls` into `worker`; return {impl name: error} for those that failed to load."""
    if not impls:
        return {}
    reply = worker.request({"op": "impls", "impls": [
        {"name": i.name, "module": i.module, "function": i.function} for i in impls]}, timeout=timeout)
    return reply["errors"]


def _close_all(workers):
    for worker in workers.values():
        worker.close()
