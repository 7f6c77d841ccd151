"""The Python API: `audit()` plans, runs, checks and saves exactly as `audit run` does.

    from auditor import audit
    result = audit(impls=[my_argmax], frameworks=["torch"], dtypes=["float32", "float16"])
    result.raise_for_findings()        # AuditFailed: the worst findings' sentences, a reproducer

`audit run` is a thin layer over `run_audit` (printing, files for CI, exit codes); nothing here
prints or exits. Implementations may be callables: an importable function is resolved to its
module (or file) and name for the worker processes; lambdas, closures, methods and functions of a
script run as `__main__` are refused with the fix in the message.
"""
import contextlib
import dataclasses
import importlib
import inspect
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

from . import baseline as baselines
from . import bundle, envs, lean, options, policy, registry
from .cases import SUITES, build_suite, select
from .checks import run_checks
from .checks.regression import same_case
from .environment import inventory
from .errors import AuditError, AuditFailed, UserError
from .inputs import array_cases, load_inputs, own_dtypes
from .model import DTYPES, SEVERITIES, Observations
from .progress import Progress
from .replay import replayed_cases
from .runner import Impl, Interpreter, Plan, Runner
from .summary import summarize

__all__ = ["audit", "Result", "AuditFailed"]


@dataclasses.dataclass
class Result:
    """What an audit found: findings (model.Finding: kind, severity, message, targets, case,
    evidence, reproducer, allowed), the verdict at `fail_on`, the summary and the whole results
    document, and the bundle's folder (None when the audit was given no `out`)."""

    findings: list
    verdict: str
    fail_on: str
    summary: dict
    document: dict
    bundle: str | None
    complete: bool = True

    def failing(self, fail_on=None):
        """Return the findings not allowed by the policy at or above `fail_on`, worst first."""
        rank = SEVERITIES.index(fail_on or self.fail_on)
        found = [f for f in self.findings if not f.allowed and SEVERITIES.index(f.severity) >= rank]
        return sorted(found, key=lambda f: -SEVERITIES.index(f.severity))

    def raise_for_findings(self, fail_on="error", limit=5):
        """Raise AuditFailed when findings at or above `fail_on` are not allowed by the policy;
        its message holds the worst findings' sentences (up to `limit`) and one reproducer."""
        failing = self.failing(fail_on)
        if not failing:
            return self
        lines = [f"argmax-audit: {len(failing)} finding{'s' if len(failing) > 1 else ''} at or "
                 f"above {fail_on}:"]
        lines += [f"  {f.severity} {f.kind} on {f.case or 'the run'}: {f.message}"
                  for f in failing[:limit]]
        if len(failing) > limit:
            lines.append(f"  ... and {len(failing) - limit} more"
                         + (f" in {self.bundle}" if self.bundle else ""))
        shown = next((f for f in failing if f.reproducer and "np.load(" not in f.reproducer),
                     next((f for f in failing if f.reproducer), None))
        if shown is not None:
            lines += ["", f"reproducer ({shown.kind} on {shown.case}):", shown.reproducer.rstrip()]
        raise AuditFailed("\n".join(lines), self)


def audit(impls=(), *, frameworks=None, devices=None, dtypes=None, variants=None, ops=None,
          suite="quick", cases=None, seed=0, repeats=5, processes=2, timeout=60.0,
          startup_timeout=180.0, jobs=None, inputs=(), input_dim=-1, store_inputs=False,
          baseline=None, save_baseline=None, out=None, fail_on=None, config=None, envs=(),
          pythons=(), local=True, progress=False, cases_from=(), executor=None):
    """Audit argmax as `audit run` does and return a Result; nothing is printed.

    `impls` are callables (their framework from `frameworks` when it names one, else given as
    `(framework, fn)` or `(framework, fn, "argmin")`) or `FRAMEWORK:MODULE:FUNCTION` strings.
    `inputs` are arrays (numpy, torch, jax) or paths of .npy/.npz/.pt/.safetensors files, audited
    as user cases reduced along `input_dim`; one over 64 MiB is kept in the bundle as its path,
    sha256, answers and disputed rows unless `store_inputs`. `out` keeps the results bundle there (a new folder,
    or an earlier bundle); without it the bundle lives in a temporary folder for the run only.
    `executor` is "local" (None) or "ray" (a local Ray, or RAY_ADDRESS), or a
    `auditor.rayexec.RayOptions` (address, resources, each_node) as `--executor ray` takes them.
    Bad arguments raise UserError; Ctrl-C stops the run, saves what was measured into `out`, and
    raises KeyboardInterrupt.
    """
    result, interrupted = run_audit(
        impls=impls, frameworks=frameworks, devices=devices, dtypes=dtypes, variants=variants,
        ops=ops, suite=suite, cases=cases, seed=seed, repeats=repeats, processes=processes,
        timeout=timeout, startup_timeout=startup_timeout, jobs=jobs, inputs=inputs,
        input_dim=input_dim, store_inputs=store_inputs, baseline=baseline,
        save_baseline=save_baseline, out=out, fail_on=fail_on, config=config, envs=envs,
        pythons=pythons, local=local, progress=progress, cases_from=cases_from,
        executor=_executor(executor))
    if interrupted:
        raise KeyboardInterrupt
    return result


def _executor(value):
    """Return None (run here) or the RayOptions that `value` names."""
    if value in (None, "local"):
        return None
    from .rayexec import RayOptions, import_ray

    if value == "ray":
        import_ray()
        return RayOptions()
    if isinstance(value, RayOptions):
        return value
    raise UserError(f"executor must be 'local', 'ray' or a RayOptions, not {value!r}")


def run_audit(impls=(), frameworks=None, devices=None, dtypes=None, variants=None, ops=None,
              suite="quick", cases=None, seed=0, repeats=5, processes=2, timeout=60.0,
              startup_timeout=180.0, jobs=None, inputs=(), input_dim=-1, store_inputs=False,
              baseline=None, save_baseline=None, out=None, fail_on=None, config=None, envs=(),
              pythons=(), local=True, progress=False, command=None, after_save=None,
              cases_from=(), executor=None):
    """Run an audit; return (Result, interrupted). `after_save(document, out)` runs while the
    signals that would tear the final save are still held (the CLI writes its reports there).
    `executor`: None to run here, or a rayexec.RayOptions to run on a Ray cluster."""
    frameworks = _names("framework", frameworks, registry.names())
    dtypes = _names("dtype", dtypes, DTYPES)
    devices, variants, ops = _devices(devices), _variants(variants), _ops(ops)
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    rules = policy.find(config)
    if executor is not None:  # on Ray, each --env is a runtime_env on every node
        executor, interpreters = _ray_envs(executor, list(envs), list(pythons), local), []
    else:
        interpreters = _interpreters(list(envs), list(pythons), not local)
    previous = baselines.load(baseline) if baseline else None
    impls = [_impl(spec, frameworks) for spec in impls]
    patterns = [cases] if isinstance(cases, str) else list(cases or [])
    files = [i for i in inputs if isinstance(i, (str, os.PathLike))]
    arrays = [i for i in inputs if not isinstance(i, (str, os.PathLike))]
    found = lean.mark(_cases(suite, seed, patterns, previous, files, input_dim, arrays,
                             replayed_cases(_list(cases_from))),  # --cases-from: replay.py
                      store_inputs)
    dtypes = own_dtypes(found, dtypes)  # a float16 or bfloat16 input runs in its own dtype too
    fail_on = fail_on or rules.fail_on or "error"
    if fail_on not in ("warning", "error"):
        raise UserError(f"fail_on must be warning or error, got {fail_on!r}")
    plan = Plan(
        frameworks=frameworks or registry.names(), explicit_frameworks=bool(frameworks),
        devices=devices, dtypes=dtypes or list(DTYPES), impls=impls, cases=found,
        repeats=repeats, processes=processes, timeout=timeout, jobs=jobs or os.cpu_count() or 2,
        startup_timeout=startup_timeout, variants=variants or ["eager"], ops=ops or ["argmax"],
        interpreters=interpreters, local=local,
    )
    folder = out if out is not None else tempfile.mkdtemp(prefix="argmax-audit-")
    created = bundle.prepare(folder) or out is None
    metadata = {"command": list(command or ["audit()"]), "suite": suite, "seed": seed,
                "executor": "local" if executor is None else "ray",
                "cases": patterns, "repeats": repeats, "processes": processes,
                "timeout": timeout, "startup_timeout": startup_timeout, "fail_on": fail_on,
                "policy": rules.source, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "complete": False}
    if previous:
        metadata["baseline"] = baseline_facts(baseline, previous[2])
    try:
        try:
            ray = {"executor": executor} if executor is not None else {}
            observations, runner, environment, interrupted = measure(plan, folder, metadata,
                                                                     progress, **ray)
        except AuditError:
            bundle.discard(folder, created)  # refused before anything was measured: no trace
            raise
        findings = rules.apply(run_checks(observations, check_options(
            rules, observations, environment, previous)))
        metadata.update(complete=not interrupted, seconds=round(runner.record.seconds, 3),
                        skipped=runner.record.skipped, policy_unused=rules.unused(findings))
        summary = summarize(observations, findings, fail_on, previous[0] if previous else None)
        summary["complete"] = not interrupted
        with signals_deferred():  # a second Ctrl-C or SIGTERM waits for the save, not tears it
            document = save(folder, observations, findings, metadata, environment, summary)
            if save_baseline:
                baselines.save(save_baseline, observations, findings, metadata, environment,
                               summary)
            if after_save:
                after_save(document, folder)
    finally:
        if out is None:
            shutil.rmtree(folder, ignore_errors=True)
    result = Result(findings, document["summary"]["verdict"], fail_on, document["summary"],
                    document, None if out is None else os.path.abspath(out),
                    complete=not interrupted)
    return result, interrupted


# --- arguments ---------------------------------------------------------------------------------


def _list(value):
    return [value] if isinstance(value, str) else list(value or [])


def _names(kind, values, valid):
    """Return `values` (a list, a name, or comma lists as the CLI takes them), each checked."""
    names = options.split(_list(values))
    for name in names:
        if name not in valid:
            raise UserError(options.unknown(kind, name, valid))
    return list(dict.fromkeys(names))


def _devices(values):
    names = options.split(_list(values))
    for name in names:
        if not options.DEVICE.match(name):
            raise UserError(f"unknown device {name!r}; use cpu, cuda, cuda:N, mps, rocm, rocm:N, "
                            "tpu or tpu:N")
    return list(dict.fromkeys(names))


def _variants(values):
    return _clicked(options._variants, values)


def _ops(values):
    return _clicked(options._ops, values)


def _clicked(callback, values):
    """Run a Click option callback on `values`, its refusal as a UserError."""
    import click

    try:
        return callback(None, None, _list(values))
    except click.BadParameter as exc:
        raise UserError(exc.format_message()) from None


def _impl(spec, frameworks):
    """Return the Impl of `spec`: a FRAMEWORK:MODULE:FUNCTION string, a callable, or
    (framework, callable[, "argmax" | "argmin"])."""
    import click

    if isinstance(spec, str):
        try:
            return options.parse_impl(spec)
        except click.BadParameter as exc:
            raise UserError(exc.format_message()) from None
    op = "argmax"
    if isinstance(spec, tuple):
        if not 2 <= len(spec) <= 3 or not isinstance(spec[0], str):
            raise UserError(f"an implementation is given as fn, (framework, fn) or (framework, "
                            f"fn, 'argmin'), not {spec!r}")
        framework, fn, op = (*spec, "argmax")[:3]
        if op not in ("argmax", "argmin"):
            raise UserError(f"{_describe(fn)} is audited as 'argmax' or 'argmin', not {op!r}")
    else:
        framework, fn = None, spec
    if framework is None:
        if len(frameworks) != 1:
            raise UserError(f"say which framework {_describe(fn)} takes arrays of: pass "
                            "frameworks=['torch'] (one framework) or impls=[('torch', fn)]")
        framework = frameworks[0]
    if framework not in registry.names():
        raise UserError(f"{options.unknown('framework', framework, registry.names())} (for "
                        f"{_describe(fn)})")
    module, function = importable(fn)
    return Impl(framework, module, function, op)


def _describe(fn):
    return getattr(fn, "__qualname__", None) or repr(fn)


def importable(fn):
    """Return (module name or file path, function name) by which a worker process imports `fn`;
    UserError, saying how to fix it, for what no other process can import."""
    if not callable(fn):
        raise UserError(f"an implementation must be a function or a 'FRAMEWORK:MODULE:FUNCTION' "
                        f"string, not {type(fn).__name__}")
    name = getattr(fn, "__qualname__", "")
    module_name = getattr(fn, "__module__", None)
    fix = "define it with def at the top level of a module the workers can import"
    if not inspect.isfunction(fn) and not inspect.isbuiltin(fn):
        raise UserError(f"{fn!r} is not a plain function; {fix} (it may call your object)")
    if name == "<lambda>" or "<lambda>" in name:
        raise UserError(f"a lambda cannot be imported by the worker processes; {fix}")
    if "<locals>" in name:
        raise UserError(f"{name} is defined inside another function (a closure); {fix}")
    if "." in name:
        raise UserError(f"{name} is a method or nested in a class; {fix}")
    if module_name in (None, "__main__"):
        raise UserError(f"{name} is defined in the script being run (__main__), which the worker "
                        "processes cannot import; move it into a module (e.g. my_kernels.py) and "
                        "import it from there")
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    if getattr(module, fn.__name__, None) is not fn:
        raise UserError(f"{module_name}.{fn.__name__} is not {name} (decorated or rebound); "
                        f"{fix}")
    path = getattr(module, "__file__", None)
    if "." not in module_name and path and path.endswith(".py"):
        return os.path.abspath(path), fn.__name__  # a test file or script folder: by its path
    return module_name, fn.__name__


def _interpreters(env_names, python_paths, no_local):
    """Return the Interpreters of --env and --python, each checked and probed, labelled uniquely."""
    if no_local and not (env_names or python_paths):
        raise UserError("--no-local leaves nothing to audit: add --env NAME or --python PATH")
    found, labels = [], set()
    for label, path in [*((n, envs.resolve(n)) for n in env_names),
                        *((python_label(p), p) for p in python_paths)]:
        probe = envs.check_python(path)
        while label in labels or label == "local":
            label += "+"
        labels.add(label)
        found.append(Interpreter(label, probe.get("path", path), probe))
    return found


def _ray_envs(executor, env_names, python_paths, local):
    """Return the Ray executor's options with the pip specs of each --env (auditor/rayexec.py)."""
    if python_paths:
        raise UserError("--python names an interpreter on this machine; with --executor ray use "
                        "--env NAME (its pip specs are installed on every node by Ray)")
    if not local and not env_names:
        raise UserError("--no-local leaves nothing to audit: add --env NAME")
    specs = []
    for name in env_names:
        envs.resolve(name)  # known and whole here
        record = next(r for r in envs.list_envs() if r["name"] == name)
        if not record.get("specs"):
            raise UserError(f"environment {name} keeps no record of its packages; rebuild it with "
                            f"'audit env create --replace {name} SPEC...'")
        specs.append((name, tuple(record["specs"])))
    return dataclasses.replace(executor, envs=tuple(specs))


def python_label(path):
    """Name `--python PATH` in target ids: its environment folder (…/NAME/bin/python), or the
    interpreter's own name."""
    parts = os.path.abspath(path).split(os.sep)
    label = parts[-3] if len(parts) >= 3 and parts[-2] in ("bin", "Scripts") else parts[-1]
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label) or "python"


def _cases(suite, seed, patterns, previous, input_files=(), input_dim=-1, arrays=(),
           replayed=()):
    """Return the cases to run: the baseline's exact cases or the built-in suite's, and the
    user's --input files and arrays (one already in the baseline with the same values is run
    once)."""
    if previous:
        cases, where = list(previous[0].cases.values()), "the baseline"
    else:
        cases, where = build_suite(suite, seed), f"the {suite} suite"
    known = {case.id: case for case in cases}
    given = load_inputs(input_files, dim=input_dim) if input_files else []
    given += array_cases(arrays, dim=input_dim) if len(arrays) else []
    lean.mark(given)  # their sha256, to compare with the baseline's
    given += list(replayed)
    for case in given:
        if case.id not in known:
            cases.append(case)
        elif lean.same_input(case, known[case.id]) is False:
            raise UserError(f"--input gives case {case.id} other values than {where} holds: "
                            f"{lean.changed_input(case, known[case.id])}; save a new baseline, "
                            "or rename the file to audit it as a new case")
        elif isinstance(known[case.id].values, lean.LeanValues):
            known[case.id].values = case.values  # the baseline kept no copy: the file's, same hash
        elif not same_case(case, known[case.id]):
            raise UserError(f"--input gives case {case.id} other values than {where} holds; "
                            "rename the file to audit it as a new case")
    found = select(cases, options.split(patterns))
    if not found:
        raise UserError(f"--cases {','.join(patterns)} matches no case of {where}")
    for case in found:  # the baseline kept no copy: read its file, refused if it changed
        if isinstance(case.values, lean.LeanValues):
            case.values, case.stored = case.values.load(), None
    return found


def baseline_facts(path, document):
    metadata, environment = document.get("metadata", {}), document.get("environment", {})
    return {"path": os.path.abspath(path), "created": metadata.get("created"),
            "host": environment.get("host"),
            "frameworks": {name: info.get("version") for name, info in
                           (environment.get("frameworks") or {}).items()}}


def check_options(rules, observations, environment, previous=None):
    """Return the options the checks take: thresholds, and the baseline to compare with."""
    found = {"max_flip_rate": rules.max_flip_rate}
    if previous:
        found.update(baseline=previous[0],
                     versions=baselines.target_versions(observations.targets, environment),
                     baseline_versions=baselines.target_versions(previous[0].targets,
                                                                 previous[2]["environment"]))
    return found


# --- measuring and saving ----------------------------------------------------------------------


def measure(plan, out, metadata, progress=False, executor=None):
    """Run `plan`, checkpointing into `out`; return (observations, runner, environment, interrupted).
    `executor`: None here, or a rayexec.RayOptions (auditor/rayexec.py).

    Ctrl-C and SIGTERM stop the workers and keep what was measured (saved at once, then checked).
    """
    observations = Observations(cases={c.id: c for c in plan.cases},
                                bundle_path=os.path.abspath(out))
    display = Progress(len(plan.cases) * plan.processes, enabled=progress)
    if executor is None:
        runner = Runner(plan, observations, display.update, prewarm=True)
    else:
        from .rayexec import RayRunner

        runner = RayRunner(plan, observations, display.update, options=executor)
    runner.grow = display.grow
    first = runner.start()
    display.total = runner.planned() * plan.processes
    observations.cases = {c.id: c for c in runner.used_cases()}  # the cases some target runs
    environment = inventory(runner.record.frameworks, runner.record.unavailable, runner.record.envs)
    runner.checkpoint = bundle.Checkpointer(out, observations, metadata, environment)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    interrupted = False
    try:
        runner.run(first)
    except KeyboardInterrupt:
        interrupted = True
        with signals_deferred(), runner.lock:
            runner.checkpoint(force=True)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        display.close()
    return observations, runner, environment, interrupted


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops a run like Ctrl-C: workers killed, measurements saved


def save(out, observations, findings, metadata, environment, summary):
    """Write the final bundle; a place that cannot take it is one line (the checkpoint stays)."""
    try:
        return bundle.write(out, observations, findings, metadata, environment, summary)
    except OSError as exc:
        raise AuditError(f"cannot save the results bundle in {out}: {exc.strerror or exc} (its "
                         "last checkpoint, if any, is still there)") from None


@contextlib.contextmanager
def signals_deferred(signals=(signal.SIGINT, signal.SIGTERM)):
    """Hold SIGINT and SIGTERM while the block saves; deliver them once it is done.

    The first Ctrl-C stops the measuring; the final save must then not be torn by a second one
    (or by a SIGTERM from a CI runner that lost patience): the signal waits for the save, then
    stops the command as it would have.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = {number: signal.signal(number, lambda number, frame: pending.append(number))
                for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if pending:
            os.kill(os.getpid(), pending[0])

