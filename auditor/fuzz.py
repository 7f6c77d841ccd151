"""`audit fuzz`: hypothesis searches for inputs that make a target break the rule, and shrinks each.

Examples come from `auditor.strategies`; each one runs on every target through warm worker
processes (`WorkerJudge`: the case and every target's run go down one pipe per worker, no process
per example) and is judged by the checks of `audit run` under the same policy. An example whose
findings hold a (kind, targets) pair not reported yet fails the hypothesis test with an exception
class of that pair's own, so hypothesis shrinks each pair on its own (re-running the targets at
every step) and keeps the failures in its example database. The search runs in rounds: a round
ends when hypothesis has shrunk what it found; the next goes on with the examples left, pairs
already reported passing. The bundle holds one shrunk case per pair, with the outcomes the
targets gave on it, and the checks' findings on those cases, one per (kind, targets).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import signal
import sys
import threading
import time

import numpy as np

from . import bundle, envs, policy
from .checks import run_checks
from .environment import inventory
from .errors import AuditError, UserError
from .fuzzhooks import global_prngs_left_alone
from .model import DTYPES, FRAMEWORKS, KINDS, SEVERITIES, Observations, Outcome
from .options import MAX_EXAMPLES
from .runner import Plan, Runner, layout_limit, start_worker
from .strategies import Space, examples, signature_pool
from .summary import summarize, tally
from .worker.casting import family
from .worker.protocol import write_message
from .workers import WorkerGone, cases_message, tick_grace

#: Times a target may kill its worker before it is left out of later examples.
MAX_DEATHS = 5
#: Variant modes that compile once per call signature (shapes then come from a bounded pool).
COMPILING = ("compile", "compile-dynamic", "jit")
#: Call signatures (shape, layout, dim, keepdim) in the pool where targets compile per signature
#: (torch.compile, jax.jit), and where jax runs eagerly (it compiles per shape, more cheaply).
POOL, EAGER_POOL = 12, 40
#: The case id the workers hold the current example under (the bundle names cases by content).
CURRENT = "fuzz-current"


class _Stop(KeyboardInterrupt):
    """Ends a hypothesis run at once, saving nothing to its database (a KeyboardInterrupt is the
    one exception hypothesis neither records nor retries)."""


class BudgetSpent(_Stop):
    """The --time budget ran out."""


class _Broken(_Stop):
    """A bug of ours inside the test function: end the run and raise `cause` after it."""

    def __init__(self, cause):
        super().__init__(str(cause))
        self.cause = cause


class Failure(Exception):
    """An example showed a finding of a (kind, targets) pair not reported yet (one subclass per
    pair, so hypothesis shrinks each pair on its own)."""


@dataclasses.dataclass
class Record:
    """The last (after shrinking: the smallest) example that showed a pair, and what it gave."""

    example: object
    observations: Observations
    findings: list


@dataclasses.dataclass
class Stats:
    """Counts and seconds of a search (time shares: generation is hypothesis's own time)."""

    examples: int = 0
    generated: int = 0
    rounds: int = 0
    seconds: float = 0.0
    judge_s: float = 0.0
    call_s: float = 0.0
    compile_s: float = 0.0
    compiles: int = 0
    checks_s: float = 0.0
    warm_after: float | None = None  # seconds when the tenth example was done
    stopped: str = ""

    def to_json(self):
        generation = max(0.0, self.seconds - self.judge_s - self.checks_s)
        total = self.seconds or 1.0
        rate_after = None
        if self.warm_after is not None and self.seconds > self.warm_after and self.examples > 10:
            rate_after = round((self.examples - 10) / (self.seconds - self.warm_after), 2)
        return {
            "examples": self.examples, "generated": self.generated, "rounds": self.rounds,
            "seconds": round(self.seconds, 3), "stopped": self.stopped,
            "examples_per_s": round(self.examples / total, 2),
            "examples_per_s_warm": rate_after,
            "compile_s": round(self.compile_s, 3), "compiles": self.compiles,
            "shares": {"generation": round(generation / total, 3),
                       "ipc": round(max(0.0, self.judge_s - self.call_s - self.compile_s) / total, 3),
                       "calls": round(self.call_s / total, 3),
                       "compile": round(self.compile_s / total, 3),
                       "checks": round(self.checks_s / total, 3)},
        }


def finding_key(finding):
    """Return the pair a finding counts under: (kind, the targets it names)."""
    return finding.kind, tuple(finding.targets)


def _priority(key, severity):
    return (-SEVERITIES.index(severity), list(KINDS).index(key[0]), key[1])


# --- the warm workers ----------------------------------------------------------------------------


class _Slot:
    """One warm worker process of one group (restarted after a death or a hang)."""

    def __init__(self, runner, group, process, worker, impls):
        self.runner, self.group, self.process = runner, group, process
        self.worker, self.impls = worker, impls

    def ensure(self):
        if self.worker is None or self.worker.process.poll() is not None:
            self.worker = self.runner.spawn(self.group)
            errors = start_worker(self.worker, self.impls, self.runner.plan.startup_timeout)
            if errors:
                raise WorkerGone("WorkerError", "; ".join(errors.values()))
        return self.worker

    def discard(self):
        if self.worker is not None:
            self.worker.kill()
            self.runner.forget(self.worker)
        self.worker = None

    def close(self):
        if self.worker is not None:
            self.worker.close()
            self.runner.forget(self.worker)
        self.worker = None


class WorkerJudge:
    """Runs one example at a time on every target through warm workers: the example and a run
    per target go down each worker's pipe at once, then the results come back in order."""

    runner_class = Runner  # on a Ray node: rayexec.NodeRunner

    def __init__(self, plan, progress=None):
        self.plan = plan
        self.observations = Observations(cases={c.id: c for c in plan.cases})
        self.runner = self.runner_class(plan, self.observations)
        first = self.runner.start()
        self.targets = dict(self.observations.targets)
        self.environment = inventory(self.runner.record.frameworks, self.runner.record.unavailable,
                                     self.runner.record.envs)
        self.deaths, self.dropped = {}, {}
        self.slots = {}
        for group in {g for _, g in self.runner.targets.values()}:
            impls = [i for i in plan.impls if i.framework == group.framework]
            self.slots[group] = [_Slot(self.runner, group, 0, first.pop(group), impls)] + [
                _Slot(self.runner, group, p, None, impls) for p in range(1, plan.processes)]
        for worker in first.values():
            worker.close()
        self.members = {group: [t for t, g in self.runner.targets.values() if g == group]
                        for group in self.slots}
        self.requests = {}  # target id -> its run request on CURRENT, framed (made once)
        self.stats = None  # a Stats the search shares, for call and compile seconds

    @property
    def skipped(self):
        return self.runner.record.skipped + [f"{t}: {why}" for t, why in self.dropped.items()]

    def applies(self, target, group, case):
        limits = self.runner.described.get(group, {}).get("layout_limits", {})
        return (target.id not in self.dropped and case.applies(target.dtype, target.sense)
                and layout_limit(case, limits) is None)

    def observe(self, case):
        """Return Observations of every target that takes `case` (its id CURRENT) on it."""
        observations = Observations(cases={case.id: case}, targets=self.targets)
        work = []
        for group, slots in self.slots.items():
            targets = [t for t in self.members[group] if self.applies(t, group, case)]
            if targets:
                work += [(slot, targets) for slot in slots]
        sent = [(slot, targets, self._send(slot, case, targets)) for slot, targets in work]
        for slot, targets, ok in sent:
            if ok:
                self._collect(slot, case, targets, observations)
        return observations

    def _send(self, slot, case, targets):
        """Send `case` and a run of each of `targets` to `slot`; False if the worker is gone."""
        try:
            worker = slot.ensure()
            messages = io.BytesIO()  # one write and one flush for them all: one wake-up
            header, payload = cases_message([case])
            header["quiet"] = True  # no reply unless it fails: the results follow at once
            write_message(messages, header, payload, flush=False)
            for target in targets:
                messages.write(self._request(target, case))
            _write(worker, messages.getvalue())
            return True
        except (WorkerGone, RuntimeError) as exc:
            self._died(slot, targets[0], case, exc, None)
            return False

    def _request(self, target, case):
        """Return the framed run request of `target` on `case` (the same for every example)."""
        key = target.id, case.id
        if key not in self.requests:
            framed = io.BytesIO()
            write_message(framed, {"op": "run", "repeats": self.plan.repeats,
                                   "tick_every": tick_grace(self.plan.timeout),
                                   "cases": [case.id], "target": _target_spec(target)},
                          flush=False)
            self.requests[key] = framed.getvalue()
        return self.requests[key]

    def _collect(self, slot, case, targets, observations):
        worker, current = slot.worker, targets[0]
        try:  # the cases were sent quiet: a failure to take them comes as the first reply
            for target in targets:
                current = target
                header, payload = self._result(worker)
                if header.get("op") == "reply":
                    raise RuntimeError(header.get("error", {}).get("message", "run failed"))
                outcomes = _outcomes(header, payload, slot.process)
                observations.add(target.id, case.id, outcomes)
                if "setup_error" not in header:
                    self._time(observations, target, case, header)
                worker.receive(self.plan.timeout)  # the run's closing reply
        except (WorkerGone, RuntimeError) as exc:
            self._died(slot, current, case, exc, observations)

    def _result(self, worker):
        deadline = self.plan.timeout
        while True:
            header, payload = worker.receive(deadline, tick_grace(self.plan.timeout))
            if header.get("op") != "tick":
                return header, payload
            deadline = (max(self.plan.timeout, self.plan.startup_timeout) if header.get("compile")
                        else self.plan.timeout)

    def _time(self, observations, target, case, header):
        seconds = header.get("seconds") or []
        timing = observations.timings.setdefault((target.id, case.id), {
            "calls": 0, "call_s": 0.0, "min_s": float("inf"), "prepare_s": 0.0, "harness_s": 0.0,
            "compile_s": 0.0, "compiles": 0})
        timing["calls"] += len(seconds)
        timing["call_s"] += sum(seconds)
        timing["min_s"] = min(timing["min_s"], min(seconds, default=float("inf")))
        timing["prepare_s"] += header.get("prepare_s", 0.0)
        timing["harness_s"] += header.get("harness_s", 0.0)
        if header.get("compile_s") is not None:
            timing["compile_s"] += header["compile_s"]
            timing["compiles"] += 1
        if self.stats is not None:
            self.stats.call_s += sum(seconds)
            self.stats.compile_s += header.get("compile_s") or 0.0
            self.stats.compiles += header.get("compile_s") is not None

    def _died(self, slot, target, case, exc, observations):
        """Record the death or hang of `slot`'s worker as `target`'s crash on `case`."""
        if self.runner.stopping.is_set():
            raise KeyboardInterrupt
        kind = exc.kind if isinstance(exc, WorkerGone) else "WorkerError"
        slot.discard()
        if observations is not None:
            observations.add(target.id, case.id, [Outcome([[slot.process, None]], error={
                "type": kind, "message": str(exc), "where": ""})])
        self.deaths[target.id] = self.deaths.get(target.id, 0) + 1
        if kind == "Timeout":
            self.dropped[target.id] = f"left out of later examples after it hung for " \
                                      f"{self.plan.timeout:g} s"
        elif self.deaths[target.id] >= MAX_DEATHS:
            self.dropped[target.id] = f"left out of later examples after {MAX_DEATHS} crashes"

    def close(self):
        for slots in self.slots.values():
            for slot in slots:
                slot.close()

    def kill(self):
        self.runner.stopping.set()
        for slots in self.slots.values():
            for slot in slots:
                slot.discard()


def _write(worker, data):
    """Write `data` (framed messages) to `worker`'s pipe; WorkerGone if the process is gone."""
    try:
        worker.process.stdin.write(data)
        worker.process.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        worker.send({"op": "ping"})  # raises WorkerGone with how the process ended
        raise WorkerGone("ProcessDied", "the worker's pipe is closed") from None


def _target_spec(target):
    from . import variants as variant_table

    return {"device": target.device, "dtype": target.dtype, "impl": target.impl, "op": target.op,
            "variant": variant_table.parse(target.variant).worker_spec()}


def _outcomes(header, payload, process):
    from .runner import _outcomes as outcomes

    return outcomes(header, payload, process)


# --- the search ----------------------------------------------------------------------------------


class Search:
    """Hypothesis rounds over `space`, judging each example with `judge` and `rules`."""

    def __init__(self, judge, rules, space, *, max_examples=MAX_EXAMPLES, seconds=None, seed=0,
                 database=None, progress=None, options=None):
        self.judge, self.rules, self.space = judge, rules, space
        self.max_examples, self.budget, self.seed = max_examples, seconds, seed
        self.database = database
        self.progress = progress or (lambda search: None)
        self.options = options if options is not None else {"max_flip_rate": rules.max_flip_rate}
        self.records = {}  # pair -> Record: reported pairs (frozen) and this round's (open)
        self.reported = set()
        self.tallies = {}  # target id -> summary.tally of every example judged
        self.classes = {}
        self.stats = Stats()
        judge.stats = self.stats
        self.started = None
        self.checkpoint = lambda search: None  # saves a partial bundle as records change
        self.changed = False  # records changed since the last checkpoint

    # -- the budget
    def left(self):
        """Seconds of --time left (None: no limit)."""
        if self.budget is None:
            return None
        return self.budget - (time.perf_counter() - self.started)

    def run(self):
        """Search until --max-examples are generated or --time is spent; return the records."""
        self.started = time.perf_counter()
        try:
            while self.stats.generated < self.max_examples:
                before = set(self.records)
                self._round()
                self.stats.rounds += 1
                self.reported |= set(self.records)
                if set(self.records) == before:  # the round found nothing new: it used its budget
                    break
            self.stats.stopped = self.stats.stopped or "max-examples"
        except BudgetSpent:
            self.stats.stopped = "time"
        finally:
            self.stats.seconds = time.perf_counter() - self.started
        return self.records

    def _round(self):
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings
        from hypothesis import seed as seeded

        phases = [Phase.generate, Phase.shrink] + ([Phase.reuse] if not self.stats.rounds else [])
        config = settings(
            max_examples=max(1, self.max_examples - self.stats.generated), deadline=None,
            database=self.database, phases=phases, report_multiple_bugs=True,
            suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, print_blob=False,
            derandomize=False)

        def test(example):
            self._examine(example)

        test._hypothesis_internal_add_digest = _digest(self.space)
        # @seed disables the database; settings applied after it bring the database back.
        runnable = config(seeded(self.seed * 1000 + self.stats.rounds)(
            given(examples(self.space))(test)))
        statistics, judged = [], self.stats.examples
        try:
            with _statistics(statistics.append), global_prngs_left_alone():
                runnable()
        except _Broken as exc:
            raise exc.cause from None
        except _Stop:
            raise
        except Exception:  # noqa: BLE001 - the failures (an exception group), flakiness: all kept
            pass
        finally:  # hypothesis's count of its generate phase; without it (a round cut short by
            counted = _generated(statistics)  # the budget or an interrupt), every example judged
            self.stats.generated += self.stats.examples - judged if counted is None else counted

    def _examine(self, example):
        left = self.left()
        if left is not None and left <= 0:
            raise BudgetSpent()
        try:
            key = self._judge(example)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a bug of ours, not a finding: stop and say so
            raise _Broken(exc) from None
        if key is not None:
            raise self._failure(key)()

    def _judge(self, example):
        """Run `example` on the targets and check it; return the pair to fail with, or None."""
        case = example.case(CURRENT)
        began = time.perf_counter()
        observations = self.judge.observe(case)
        judged = time.perf_counter()
        findings = self.rules.apply(run_checks(observations, self.options))
        for target_id, target in observations.targets.items():  # the summary's rows
            self.tallies[target_id] = tally(observations, target_id, target,
                                            self.tallies.get(target_id))
        done = time.perf_counter()
        self.stats.judge_s += judged - began
        self.stats.checks_s += done - judged
        self.stats.examples += 1
        if self.stats.examples == 10:
            self.stats.warm_after = done - self.started
        pending = {}
        for finding in findings:
            if finding.severity == "info" or finding.allowed:
                continue
            key = finding_key(finding)
            if key not in self.reported:
                pending.setdefault(key, finding.severity)
        key = min(pending, key=lambda k: _priority(k, pending[k])) if pending else None
        if key is not None:
            self.records[key] = Record(example, observations, findings)
            self.changed = True
        self.progress(self)
        self.checkpoint(self)
        return key

    def _failure(self, key):
        if key not in self.classes:
            name = "Finding_" + "".join(c if c.isalnum() else "_" for c in f"{key[0]}_{key[1]}")
            self.classes[key] = type(name[:100], (Failure,), {})
        return self.classes[key]


def _digest(space):
    return hashlib.sha256(repr(dataclasses.astuple(space)).encode()).digest()


def _statistics(callback):
    try:
        from hypothesis.statistics import collector
    except ImportError:  # pragma: no cover - an older or newer hypothesis: count nothing
        import contextlib

        return contextlib.nullcontext()
    return collector.with_value(callback)


def _generated(statistics):
    """Return how many examples hypothesis generated in a round (its generate phase)."""
    for stats in statistics:
        phase = stats.get("generate-phase") or {}
        if "test-cases" in phase:
            return len(phase["test-cases"])
    return None


# --- the bundle ----------------------------------------------------------------------------------


def collect(records, targets, bundle_path, startup_errors=None):
    """Return (observations, home) of the examples in `records`: one case per distinct example
    with the outcomes the targets gave on it; home maps each pair to its case id."""
    observations = Observations(targets=dict(targets), bundle_path=bundle_path,
                                startup_errors=dict(startup_errors or {}))
    home = {}
    for key, record in list(records.items()):
        case = record.example.case()
        home[key] = case.id
        if case.id in observations.cases:
            continue
        observations.cases[case.id] = case
        for (target_id, _), outcomes in record.observations.outcomes.items():
            observations.outcomes[(target_id, case.id)] = outcomes
        for (target_id, _), timing in record.observations.timings.items():
            observations.timings[(target_id, case.id)] = timing
    return observations, home


def assemble(records, targets, rules, options, bundle_path, startup_errors=None):
    """Return (observations, findings) of the shrunk examples: one case per distinct example,
    the checks' findings on them, one per (kind, targets) (its own case's where it has one);
    `startup_errors` ({framework: why}) become crash findings as in `audit run`."""
    observations, home = collect(records, targets, bundle_path, startup_errors)
    found = rules.apply(run_checks(observations, options))
    chosen = {}
    for finding in found:
        key = finding_key(finding)
        if key in chosen and (key not in home or chosen[key].case == home[key]):
            continue
        chosen[key] = finding
    return observations, list(chosen.values())


# --- the command's engine ------------------------------------------------------------------------


def space_for(targets, max_elements, seed):
    """Return the Space the audited `targets` need (a signature pool where they compile)."""
    from . import variants as variant_table

    families = tuple(sorted({family(t.dtype) for t in targets}, key=["float", "int"].index))
    compiling = any(variant_table.parse(t.variant).mode in COMPILING for t in targets)
    # jax compiles every new shape even eagerly (one XLA computation per primitive and shape)
    per_shape = any(t.framework == "jax" for t in targets)
    space = Space(families=families or ("float",),
                  float64=any(t.dtype == "float64" for t in targets),
                  mirror=any(t.sense == "min" for t in targets), max_elements=max_elements)
    if compiling or per_shape:
        count = POOL if compiling else EAGER_POOL
        space = dataclasses.replace(space, signatures=signature_pool(space, seed, count))
    return space


def database_folder():
    """Return the default folder of the example database: the cache's fuzz-db."""
    return os.path.join(envs.cache_folder(), "fuzz-db")


def open_database(path):
    """Return hypothesis's example database in folder `path` (made if missing), or None."""
    if path is None:
        return None
    from hypothesis.database import DirectoryBasedExampleDatabase

    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot make the example database folder {path}: "
                        f"{exc.strerror or exc}; give --database DIR or --no-database") from None
    return DirectoryBasedExampleDatabase(path)


def probe_cases():
    """Return the cases the plan holds while targets are made (never run)."""
    from .model import Case

    return [Case("fuzz-probe", np.zeros(2, np.float32), dim=None),
            Case("fuzz-probe-int", np.zeros(2, np.int64), dim=None)]


def fuzz_audit(*, frameworks, devices, dtypes, variants, ops, impls, repeats, processes, timeout,
               startup_timeout, out, fail_on, config, interpreters, local, max_examples, seconds,
               seed, max_elements, database, progress=None, command=None, after_save=None,
               executor=None):
    """Fuzz the targets; save the bundle in `out`; return (document, Stats, interrupted).

    The arguments are checked as `audit run` checks them (api._names and friends). `executor`:
    None here, or a rayexec.RayOptions (the workers on a Ray cluster: auditor/rayfuzz.py)."""
    from .api import save, signals_deferred

    rules = policy.find(config)
    fail_on = fail_on or rules.fail_on or "error"
    plan = Plan(frameworks=frameworks or list(FRAMEWORKS), explicit_frameworks=bool(frameworks),
                devices=devices or [], dtypes=dtypes or list(DTYPES), impls=impls,
                cases=probe_cases(),
                repeats=repeats, processes=processes, timeout=timeout,
                startup_timeout=startup_timeout, variants=variants or ["eager"],
                ops=ops or ["argmax"], interpreters=interpreters, local=local)
    db = open_database(database)
    created = bundle.prepare(out)
    try:
        if executor is None:
            judge = WorkerJudge(plan)
        else:
            from .rayfuzz import RayJudge

            judge = RayJudge(plan, executor)
    except AuditError:
        bundle.discard(out, created)
        raise
    space = space_for(judge.targets.values(), max_elements, seed)
    options = {"max_flip_rate": rules.max_flip_rate}
    search = Search(judge, rules, space, max_examples=max_examples, seconds=seconds, seed=seed,
                    database=db, progress=progress, options=options)

    def metadata(complete):
        return {"command": list(command or ["audit", "fuzz"]), "suite": "fuzz", "seed": seed,
                "executor": "local" if executor is None else "ray",
                "cases": [], "repeats": repeats, "processes": processes, "timeout": timeout,
                "startup_timeout": startup_timeout, "fail_on": fail_on,
                "policy": rules.source, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "complete": complete, "seconds": round(search.stats.seconds, 3),
                "skipped": judge.skipped,
                "fuzz": {**search.stats.to_json(), "max_examples": max_examples,
                         "time": seconds, "max_elements": max_elements,
                         "database": database, "signatures": len(space.signatures)}}

    search.checkpoint = Checkpoint(out, judge, metadata)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    interrupted = False
    try:
        search.run()
    except KeyboardInterrupt:
        interrupted = True
        search.stats.stopped = "interrupt"
        search.stats.seconds = time.perf_counter() - search.started
        judge.kill()
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    judge.close()
    with signals_deferred():
        observations, findings = assemble(search.records, judge.targets, rules, options,
                                          os.path.abspath(out),
                                          judge.observations.startup_errors)
        facts = dict(metadata(not interrupted), policy_unused=rules.unused(findings))
        summary = summarize(observations, findings, fail_on, tallies=search.tallies)
        summary["complete"] = not interrupted
        document = save(out, observations, findings, facts, judge.environment, summary)
        if after_save:
            after_save(document, out)
    return document, search.stats, interrupted


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Checkpoint:
    """Saves the examples found so far as a partial bundle (no verdict, `complete` false) when
    they change, at most every `interval` seconds (the first at once), so that a driver killed
    outright keeps its findings: `audit report` judges such a checkpoint and exits 3."""

    def __init__(self, out, judge, metadata, interval=5.0):
        self.out, self.judge, self.metadata = out, judge, metadata
        self.interval = interval
        self.last = float("-inf")

    def __call__(self, search):
        now = time.monotonic()
        if not search.changed or now - self.last < self.interval:
            return
        search.stats.seconds = time.perf_counter() - search.started
        observations, _ = collect(search.records, self.judge.targets, os.path.abspath(self.out),
                                  self.judge.observations.startup_errors)
        bundle.write(self.out, observations, (), self.metadata(False), self.judge.environment,
                     {"complete": False})
        search.changed = False
        self.last = time.monotonic()
        # like audit run's checkpoints: never more than a tenth of the search's time
        self.interval = max(self.interval, 10 * (self.last - now))


class FuzzProgress:
    """Examples done, examples/s, findings so far and budget left, on stderr."""

    def __init__(self, stream=None, interval=None):
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.interval = interval if interval is not None else (0.2 if self.tty else 5.0)
        self.last = 0.0

    def __call__(self, search):
        now = time.perf_counter()
        if now - self.last < self.interval:
            return
        self.last = now
        self.stream.write(("\r" if self.tty else "") + self.line(search)
                          + ("" if self.tty else "\n"))
        self.stream.flush()

    @staticmethod
    def line(search):
        elapsed = time.perf_counter() - search.started
        stats = search.stats
        left = search.left()
        budget = f", {max(0.0, left):.0f} s left" if left is not None else ""
        return (f"fuzz: {stats.examples} examples ({stats.examples / max(elapsed, 1e-9):.1f}/s), "
                f"{len(search.records)} findings{budget}").ljust(79)

    def close(self):
        if self.tty:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()
