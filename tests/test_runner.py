"""The runner: planted faults through real worker processes, crashes kept as data, checkpoints.

Each end-to-end run audits numpy in float32 only, on a handful of cases, so a worker starts in a
fraction of a second. The user implementations with the planted faults live in tests/impls/.
"""
import importlib.util
import os
import threading

import numpy as np
import pytest

from auditor import bundle
from auditor.cases import build_suite, select
from auditor.errors import UserError
from auditor.model import Observations, Outcome, Target
from auditor.runner import (
    MAX_DEATHS,
    Impl,
    Plan,
    Runner,
    _device_matches,
    _Session,
    check_available,
)

BUILTIN = "numpy/cpu/float32"
CASES = "ties-short,dims-1,dims-none,nan-rows,empty,scalar"


def _blamed(finding):
    return finding["evidence"].get("blame") or finding["targets"]


def _row(document, target):
    return next(r for r in document["summary"]["targets"] if r["target"] == target)


# -- in-process: no worker processes ---------------------------------------------------------------


def test_impl_name_and_target_id():
    impl = Impl("numpy", "./k.py", "argmax")
    assert impl.name == "./k.py:argmax"
    target = Target("numpy", "cpu", "float32", impl=impl.name)
    assert target.id == "numpy[./k.py:argmax]/cpu/float32"


@pytest.mark.parametrize("device, wanted, matches", [
    ("cpu", "cpu", True), ("cuda:0", "cuda", True), ("cuda:1", "cuda:1", True),
    ("cuda:1", "cuda:0", False), ("cpu", "cuda", False), ("tpu:0", "tpu", True),
])
def test_device_matches(device, wanted, matches):
    assert _device_matches(device, wanted) is matches


def _plan(**kw):
    defaults = dict(frameworks=["numpy", "torch", "jax"], explicit_frameworks=False, devices=[],
                    dtypes=["float32"], impls=[], cases=[])
    return Plan(**{**defaults, **kw})


def _pretend_missing(monkeypatch, *missing):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in missing else real(name, *a))


def test_absent_framework_is_unavailable_not_an_error(monkeypatch):
    _pretend_missing(monkeypatch, "jax")
    present, unavailable = check_available(_plan())
    assert "jax" not in present and present[0] == "numpy"
    assert "not installed" in unavailable["jax"] and "argmax-audit[jax]" in unavailable["jax"]


def test_absent_framework_asked_for_by_name_is_a_user_error(monkeypatch):
    _pretend_missing(monkeypatch, "jax")
    with pytest.raises(UserError, match=r"jax is not installed.*pip install 'argmax-audit\[jax\]'"):
        check_available(_plan(frameworks=["jax"], explicit_frameworks=True))


def test_absent_framework_of_an_impl_is_a_user_error(monkeypatch):
    _pretend_missing(monkeypatch, "torch")
    with pytest.raises(UserError, match="torch is not installed"):
        check_available(_plan(frameworks=["numpy"], impls=[Impl("torch", "k", "f")]))


def test_groups_that_compile_every_signature_then_the_slowest_to_start_go_first():
    from auditor.runner import Group
    runner = Runner(_plan(), Observations(cases={}))
    numpy, torch, jax = Group("numpy"), Group("torch"), Group("jax")
    runner.described = {numpy: {}, torch: {"compiles_per_signature": False},
                        jax: {"compiles_per_signature": True}}
    assert runner._longest_first({numpy, torch, jax}) == [jax, numpy, torch]
    assert runner._longest_first({numpy, torch}) == [numpy, torch]
    runner.startup_s = {numpy: 0.2, torch: 2.5, jax: 0.1}  # then the slowest to start first
    assert runner._longest_first({numpy, torch, jax}) == [jax, torch, numpy]


def test_record_outcomes_merges_processes_and_sums_timings():
    case = select(build_suite(), ["scalar"])[0]
    observations = Observations(cases={case.id: case})
    target = Target("numpy", "cpu", "float32")
    calls = []
    runner = Runner(_plan(cases=[case]), observations, progress=lambda t, c: calls.append(c))
    answer = np.array(0, dtype=np.int64)
    for process in (0, 1):
        runner.record_outcomes(target, case.id, [Outcome([[process, 0], [process, 1]], answer, "int64")],
                               {"seconds": [0.5, 0.25], "prepare_s": 0.1, "harness_s": 0.2})
    (outcome,) = observations.outcomes[(target.id, case.id)]
    assert outcome.runs == [[0, 0], [0, 1], [1, 0], [1, 1]]
    timing = observations.timings[(target.id, case.id)]
    assert timing["calls"] == 4 and timing["call_s"] == 1.5 and timing["min_s"] == 0.25
    assert timing["prepare_s"] == pytest.approx(0.2) and timing["harness_s"] == pytest.approx(0.4)
    assert calls == [case.id, case.id]


# -- planted faults that return: one run, many user implementations ---------------------------------

RETURNING = {
    "last_tie": ("last_tie.py", "argmax"),
    "raises": ("raises.py", "argmax"),
    "string": ("garbage.py", "returns_string"),
    "int32": ("garbage.py", "returns_int32"),
    "shape": ("garbage.py", "returns_wrong_shape"),
    "out_of_range": ("garbage.py", "returns_out_of_range"),
    "prints": ("prints.py", "argmax"),
    "good": ("good.py", "argmax"),
}


@pytest.fixture(scope="module")
def faults(audit_subprocess, tmp_path_factory, helpers):
    """Run every returning planted fault at once through `python -m auditor`; return the Result."""
    folder = tmp_path_factory.mktemp("faults")
    args = [*helpers.SMALL, "--cases", CASES, "--out", str(folder / "bundle")]
    for file, function in RETURNING.values():
        args += ["--impl", helpers.impl_spec(file, function)]
    result = audit_subprocess(args, cwd=folder)
    result.targets = {name: helpers.impl_target(*spec) for name, spec in RETURNING.items()}
    return result


@pytest.mark.slow
def test_faults_fail_the_run_and_keep_every_observation(faults):
    assert faults.code == 1, faults.out + faults.err
    assert "Traceback" not in faults.err
    document = faults.results
    cases = {c["id"] for c in document["cases"]}
    assert len(cases) == 8  # dims-1, dims-none, empty: one case each here; 'empty' adds 3
    for target in [BUILTIN, *faults.targets.values()]:
        assert {r["case"] for r in document["observations"] if r["target"] == target} == cases
        assert _row(document, target)["calls"] == 2 * len(cases)


@pytest.mark.slow
def test_builtin_numpy_is_blamed_for_nothing(faults):
    document = faults.results
    assert [f["message"] for f in document["findings"] if BUILTIN in _blamed(f)] == []
    assert _row(document, BUILTIN)["findings"] == {}


@pytest.mark.slow
def test_last_tied_maximum_is_a_tie_break(faults, helpers):
    document = faults.results
    target = faults.targets["last_tie"]
    ties = helpers.findings_of(document, target, "tie_break")
    assert {f["case"] for f in ties if f["check"] == "reference"} >= {"ties-short", "dims-1",
                                                                       "dims-none"}
    first = next(f for f in ties if f["case"] == "ties-short" and f["check"] == "reference")
    assert first["severity"] == "error"
    assert first["evidence"]["returned"] == 1 and first["evidence"]["expected"] == 0
    assert "first of the tied maxima" in first["message"] and target in first["message"]
    assert _row(document, target)["tie_policy"] == "last"
    # the NaN rows come out as a NaN policy problem, never as a wrong index
    assert {f["kind"] for f in document["findings"]
            if target in _blamed(f) and f["check"] == "reference"} == {"tie_break", "nan_policy"}


@pytest.mark.slow
def test_tie_breaker_is_not_blamed_for_another_targets_wrong_index(faults):
    document = faults.results
    target = faults.targets["last_tie"]
    assert [f["message"] for f in document["findings"]
            if target in _blamed(f) and f["kind"] == "wrong_index"] == []
    assert "wrong_index" not in _row(document, target)["findings"]


@pytest.mark.slow
def test_raising_impl_is_a_crash(faults, helpers):
    document = faults.results
    crashes = helpers.findings_of(document, faults.targets["raises"], "crash")
    assert len(crashes) == 1
    error = crashes[0]["evidence"]["error"]
    assert error["type"] == "RuntimeError"
    assert "planted failure in the user's kernel" in error["message"]
    assert error["where"].startswith("raises.py:")
    # on the empty inputs raising is right, so those are not part of the crash
    assert set(crashes[0]["evidence"]["cases"]) == {"ties-short", "dims-1", "dims-none",
                                                    "nan-rows", "empty-batch", "scalar"}


@pytest.mark.slow
@pytest.mark.parametrize("name, problem", [("string", "bad-return"), ("int32", "dtype"),
                                           ("shape", "shape")])
def test_garbage_returns_are_api_mismatches(faults, helpers, name, problem):
    document = faults.results
    target = faults.targets[name]
    found = helpers.findings_of(document, target)
    assert found and {f["kind"] for f in found} == {"api_mismatch"}, [f["message"] for f in found]
    assert problem in {f["evidence"]["problem"] for f in found}


@pytest.mark.slow
def test_out_of_range_index_is_a_wrong_index(faults, helpers):
    document = faults.results
    wrong = helpers.findings_of(document, faults.targets["out_of_range"], "wrong_index")
    assert wrong and all(f["evidence"]["out_of_range"] for f in wrong if f["check"] == "reference")
    ties_short = next(f for f in wrong if f["case"] == "ties-short" and f["check"] == "reference")
    assert "outside 0..7" in ties_short["message"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["prints", "good"])
def test_correct_impls_stay_clean(faults, name):
    document = faults.results
    target = faults.targets[name]
    assert [f["message"] for f in document["findings"] if target in _blamed(f)] == []
    row = _row(document, target)
    assert row["findings"] == {} and row["tie_policy"] == "first" and row["nan_policy"] == "first"


@pytest.mark.slow
def test_prints_reach_neither_the_protocol_nor_the_report(faults):
    assert "argmax called" not in faults.out + faults.err
    assert "hello on stdout" not in faults.out + faults.err


@pytest.mark.slow
def test_correct_impls_alone_pass(audit, helpers):
    result = audit(*helpers.SMALL, "--cases", CASES,
                   "--impl", helpers.impl_spec("good.py"), "--impl", helpers.impl_spec("prints.py"))
    assert result.code == 0, result.out
    assert result.results["summary"]["verdict"] == "pass"
    assert result.results["findings"] == []


@pytest.mark.slow
def test_impl_given_as_a_module_name(audit, helpers, tmp_path):
    with open(os.path.join(helpers.IMPLS, "last_tie.py")) as source:
        (tmp_path / "my_kernels.py").write_text(source.read())
    result = audit(*helpers.SMALL, "--cases", "ties-short", "--impl", "numpy:my_kernels:argmax")
    assert result.code == 1
    target = "numpy[my_kernels:argmax]/cpu/float32"
    assert helpers.findings_of(result.results, target, "tie_break")


@pytest.mark.slow
def test_torch_impl_with_last_tie(audit, helpers):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    result = audit("run", "-q", "--framework", "torch", "--dtype", "float32", "--repeats", "2",
                   "--processes", "1", "--cases", "ties-short,dims-2",
                   "--impl", helpers.impl_spec("torch_last_tie.py", framework="torch"))
    assert result.code == 1, result.out
    document = result.results
    target = helpers.impl_target("torch_last_tie.py", framework="torch")
    assert {f["case"] for f in helpers.findings_of(document, target, "tie_break")} >= {
        "ties-short", "dims-2"}
    assert [f for f in document["findings"] if "torch/cpu/float32" in _blamed(f)] == []
    assert _row(document, "torch/cpu/float32")["tie_policy"] == "first"


# -- planted faults that take the worker down -------------------------------------------------------


def _complete(document, target, cases):
    return {r["case"] for r in document["observations"] if r["target"] == target} == set(cases)


@pytest.mark.slow
def test_segfault_is_a_crash_and_the_target_is_given_up_after_three_deaths(audit, helpers):
    cases = ["ties-short", "dims-0", "dims-1", "dims-2", "scalar"]
    result = audit(*helpers.SMALL, "--cases", ",".join(cases),
                   "--impl", helpers.impl_spec("segfault.py"), "--impl", helpers.impl_spec("good.py"))
    assert result.code == 1, result.out + result.err
    document = result.results
    target = helpers.impl_target("segfault.py")
    (crash,) = helpers.findings_of(document, target, "crash")
    assert crash["evidence"]["error"]["type"] == "ProcessDied"
    assert "signal 11" in crash["message"] or "SIGSEGV" in crash["message"]
    assert len(crash["evidence"]["cases"]) == MAX_DEATHS == 3
    assert document["metadata"]["skipped"] == [
        f"{target} (process 0): {len(cases) - MAX_DEATHS} cases skipped after 3 crashes"]
    assert f"skipped: {target}" in result.out
    # the targets before and after it ran every case
    for other in (BUILTIN, helpers.impl_target("good.py")):
        assert _complete(document, other, cases), other
        assert _row(document, other)["findings"] == {}


@pytest.mark.slow
def test_exit_is_a_crash_with_its_status(audit, helpers):
    cases = ["ties-short", "scalar"]
    result = audit(*helpers.SMALL, "--cases", ",".join(cases), "--processes", "2",
                   "--impl", helpers.impl_spec("exits.py"), "--impl", helpers.impl_spec("good.py"))
    assert result.code == 1
    document = result.results
    target = helpers.impl_target("exits.py")
    (crash,) = helpers.findings_of(document, target, "crash")
    assert "exited with status 3" in crash["message"]
    assert sorted(crash["evidence"]["cases"]) == sorted(cases)
    assert crash["evidence"]["runs"] == 4  # two cases in each of two processes
    assert document["metadata"]["skipped"] == []
    for other in (BUILTIN, helpers.impl_target("good.py")):
        assert _complete(document, other, cases)
        assert _row(document, other)["calls"] == 2 * 2 * len(cases)


# A per-call deadline of 3 s: long enough that a correct target on a busy machine never misses it.
@pytest.mark.slow
def test_hang_is_a_timeout_crash(audit, helpers):
    result = audit(*helpers.SMALL, "--repeats", "1", "--timeout", "3", "--cases", "ties-short",
                   "--impl", helpers.impl_spec("hangs.py"), "--impl", helpers.impl_spec("good.py"))
    assert result.code == 1
    document = result.results
    (crash,) = helpers.findings_of(document, helpers.impl_target("hangs.py"), "crash")
    assert crash["evidence"]["error"]["type"] == "Timeout"
    assert "hung" in crash["message"] and "killed" in crash["message"]
    for other in (BUILTIN, helpers.impl_target("good.py")):
        assert _complete(document, other, ["ties-short"])
        assert _row(document, other)["findings"] == {}


# -- checkpoints while the run goes on ----------------------------------------------------------------


@pytest.mark.slow
def test_checkpoint_written_mid_run_is_a_readable_partial_bundle(tmp_path, helpers):
    """Every checkpoint is a readable partial bundle of what was measured when it was written;
    checkpoints only grow, one is written between two jobs, and the last holds every run.

    How many checkpoints a run writes depends on timing (the runner offers one every second and
    after each finished job, the Checkpointer throttles them), so the test counts none: it holds
    the second job back until a checkpoint has seen the first one finished.
    """
    cases = [c for c in select(build_suite(), ["ties-short", "scalar"]) if c.sense == "max"]
    out = str(tmp_path / "bundle")
    bundle.prepare(out)
    observations = Observations(cases={c.id: c for c in cases}, bundle_path=out)
    plan = _plan(frameworks=["numpy"], explicit_frameworks=True, cases=cases, repeats=2,
                 processes=2, jobs=1, impls=[Impl("numpy", os.path.join(helpers.IMPLS, "good.py"),
                                                   "argmax")])
    runner = Runner(plan, observations)
    first = runner.start()
    assert sorted(runner.targets) == sorted([BUILTIN, helpers.impl_target("good.py")])
    write = bundle.Checkpointer(out, observations, {"complete": False}, {"frameworks": {}},
                                interval=0)
    first_job_seen = threading.Event()
    snapshots = []

    def runs(observed):
        return {(key, tuple(run)) for key, outs in observed.outcomes.items() for o in outs
                for run in o.runs}

    def checkpoint():  # the runner holds its lock here: nothing is recorded meanwhile
        write(force=True)
        snapshot = bundle.read(out)
        assert runs(snapshot[0]) == runs(observations)  # exactly what was measured so far
        snapshots.append(snapshot)
        if {run[1][0] for run in runs(snapshot[0])} == {0} and \
                len(snapshot[0].outcomes) == 2 * len(cases):
            first_job_seen.set()

    run_process = runner._run_process

    def second_job_waits(group, process, worker):
        if process == 1:
            assert first_job_seen.wait(timeout=300), "no checkpoint after the first job"
        return run_process(group, process, worker)

    runner.checkpoint, runner._run_process = checkpoint, second_job_waits
    runner.run(first)
    for _partial, findings, document in snapshots:
        assert document["metadata"]["complete"] is False
        assert document["summary"] == {"complete": False}
        assert findings == []
    for earlier, later in zip(snapshots, snapshots[1:]):
        assert runs(earlier[0]) <= runs(later[0])  # checkpoints only grow
    between = [s for s in snapshots if {run[1][0] for run in runs(s[0])} == {0}]
    assert between and len(between[-1][0].outcomes) == 2 * len(cases)  # job 0 whole, job 1 not begun
    final, _, _ = snapshots[-1]
    assert {key: sum(len(o.runs) for o in outs) for key, outs in final.outcomes.items()} == {
        key: 4 for key in observations.outcomes}


@pytest.mark.slow
def test_processes_of_a_group_share_a_folder_for_the_run_only(tmp_path, helpers):
    """Both processes of a group see the same folder, with what the other left there; the
    second runs the targets from the other end; the folder is gone when the run ends."""
    cases = [c for c in select(build_suite(), ["ties-short"]) if c.sense == "max"]
    observations = Observations(cases={c.id: c for c in cases}, bundle_path=str(tmp_path))
    impl = Impl("numpy", os.path.join(helpers.IMPLS, "notes_shared_folder.py"), "argmax")
    plan = _plan(frameworks=["numpy"], explicit_frameworks=True, cases=cases, repeats=1,
                 processes=2, jobs=1, impls=[impl], dtypes=["float32", "float64"])
    runner = Runner(plan, observations)
    first = runner.start()
    group = next(iter(runner.described))
    folder = runner.shared_folder(group)
    order = []
    run_target = _Session.run_target

    def noted(session, target, process, *args):
        if process == 1 and all(p == 0 for p, _ in order):  # only the first process's pid is there
            assert len(os.listdir(folder)) == 1
        order.append((process, target.id))
        return run_target(session, target, process, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Session, "run_target", noted)
        runner.run(first)
    assert not os.path.exists(folder)
    assert not os.path.exists(os.path.dirname(folder))
    firsts = [t for p, t in order if p == 0]
    assert [t for p, t in order if p == 1] == firsts[::-1] and len(firsts) == 4
    assert all(o.is_answer for outs in observations.outcomes.values() for o in outs)


@pytest.mark.slow
def test_second_processes_start_while_a_slower_framework_is_probed():
    """With prewarm (audit run's runner), a group already described gets its process 1 started
    while another group's first worker is still starting; process 1 then runs in that worker,
    the answers are those of a run without it, and no worker outlives the run."""
    pytest.importorskip("torch")
    from auditor.runner import Group

    cases = select(build_suite(), ["ties-short", "dims-1"])
    numpy_group = Group("numpy")
    answers = {}
    for prewarm in (False, True):
        observations = Observations(cases={c.id: c for c in cases})
        plan = _plan(frameworks=["numpy", "torch"], explicit_frameworks=True, cases=cases,
                     repeats=2, processes=2, jobs=2)
        runner = Runner(plan, observations, prewarm=prewarm)
        describe, spawned, started_early = runner._describe, [], threading.Event()

        def slow_torch(group, runner=runner, describe=describe, started_early=started_early):
            if group.framework == "torch" and runner.prewarm:  # until numpy's process 1 is up
                assert started_early.wait(60), "numpy's second process was not started early"
            return describe(group)

        def spawn(group, spawn=runner.spawn, spawned=spawned, started_early=started_early):
            worker = spawn(group)
            spawned.append((group, worker))
            if group == numpy_group and len([g for g, _ in spawned if g == group]) == 2:
                started_early.set()
            return worker

        runner._describe, runner.spawn = slow_torch, spawn
        first = runner.start()
        early = runner._spares.get(numpy_group)
        assert (early is not None) is prewarm
        used = {}
        run_process = runner._run_process

        def noted(group, process, worker, used=used, run_process=run_process):
            used[(group.framework, process)] = worker
            return run_process(group, process, worker)

        runner._run_process = noted
        runner.run(first)
        if prewarm:  # process 1 of numpy ran in the worker started early, none was spawned again
            numpy_workers = [w for g, w in spawned if g == numpy_group]
            assert used[("numpy", 1)] is early and early.result() is numpy_workers[1]
            assert len(numpy_workers) == 2
        assert not runner.live and all(w.process.poll() is not None for _, w in spawned)
        answers[prewarm] = {key: [(o.runs, None if o.indices is None else o.indices.tolist())
                                  for o in outs] for key, outs in observations.outcomes.items()}
    assert answers[True] == answers[False] and answers[True]


@pytest.mark.slow
def test_start_refuses_an_impl_that_cannot_load(helpers):
    cases = select(build_suite(), ["scalar"])
    plan = _plan(frameworks=["numpy"], explicit_frameworks=True, cases=cases,
                 impls=[Impl("numpy", os.path.join(helpers.IMPLS, "bad_signature.py"), "argmax")])
    with pytest.raises(UserError, match="cannot be called as fn"):
        Runner(plan, Observations(cases={c.id: c for c in cases})).start()


# -- implementations that misbehave outside the call ---------------------------------------------


@pytest.mark.slow
def test_hang_skips_the_rest_of_that_target_everywhere(audit, helpers):
    cases = ["ties-short", "scalar", "dims-0"]
    result = audit(*helpers.SMALL, "--repeats", "1", "--timeout", "3", "--processes", "2",
                   "--cases", ",".join(cases), "--impl", helpers.impl_spec("hangs.py"))
    document = result.results
    target = helpers.impl_target("hangs.py")
    skipped = [s for s in document["metadata"]["skipped"] if s.startswith(target)]
    assert skipped and all("hung" in s for s in skipped)
    (crash,) = helpers.findings_of(document, target, "crash")
    assert "no answer within 3 s" in crash["message"]  # the deadline is per call
    assert _complete(document, BUILTIN, cases)


@pytest.mark.slow
def test_an_implementation_that_changes_its_input_is_caught_and_others_are_unharmed(audit, helpers):
    pytest.importorskip("torch")
    result = audit("run", "-q", "--framework", "torch", "--dtype", "float32,float16",
                   "--repeats", "2", "--processes", "1", "--cases", "nan-rows",
                   "--impl", helpers.impl_spec("mutates.py", framework="torch"))
    document = result.results
    target = helpers.impl_target("mutates.py", framework="torch")
    kinds = {f["kind"] for f in document["findings"] if target in f["targets"]}
    assert "api_mismatch" in kinds
    assert any("in place" in f["message"] for f in document["findings"] if target in f["targets"])
    for stock in ("torch/cpu/float32", "torch/cpu/float16"):
        assert _row(document, stock)["findings"] == {}, stock


@pytest.mark.slow
def test_an_implementation_that_kills_its_import_is_a_usage_error(audit, helpers):
    result = audit(*helpers.SMALL, "--cases", "scalar", "--impl", helpers.impl_spec("dies_on_import.py"))
    assert result.code == 2
    assert result.err.startswith("audit: error: --impl") and "status 7" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_run_removes_the_shared_folders_of_drivers_killed_outright(tmp_path, monkeypatch):
    """Only this user's folders, of this machine, whose driver is gone and which no one holds
    locked (a driver in another container sharing /tmp may reuse a process id); never through
    a link, and a name no driver could have made is left alone."""
    import subprocess
    import tempfile

    from auditor import runner as runner_module

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    host, mine = runner_module._host(), f"{runner_module.SHARED_PREFIX}{runner_module._host()}"
    (tmp_path / f"{mine}-{dead.pid}-abc123").mkdir()
    (tmp_path / f"{mine}-{dead.pid}-abc123" / "entry-cache").write_bytes(b"x")
    kept = [f"{mine}-{os.getpid()}-live42",  # a running driver's
            f"{runner_module.SHARED_PREFIX}other{host}-{dead.pid}-abc456",  # another machine's
            f"{mine}-{dead.pid}-held77",  # locked: a driver elsewhere that reused the pid
            f"{mine}-{dead.pid}-theirs",  # another user's
            f"{mine}-99999999999-huge88",  # no process id (os.kill would overflow)
            f"{runner_module.SHARED_PREFIX}oldstyle", "elsewhere"]
    for name in kept:
        (tmp_path / name).mkdir()
    os.chown(tmp_path / f"{mine}-{dead.pid}-theirs", 12345, 12345)
    (tmp_path / f"{mine}-{dead.pid}-link99").symlink_to(tmp_path / "elsewhere")
    held = runner_module._lock(str(tmp_path / f"{mine}-{dead.pid}-held77"))
    try:
        runner_module._sweep_shared()
    finally:
        os.close(held)
    assert sorted(os.listdir(tmp_path)) == sorted([*kept, f"{mine}-{dead.pid}-link99"])
    runner_module._sweep_shared()  # unlocked now
    assert f"{mine}-{dead.pid}-held77" not in os.listdir(tmp_path)
