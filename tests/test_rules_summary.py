"""Rules of the summary's numbers: per-target rows, timing, and the user's cases against the
reference and the baseline; every renderer prints these as they are."""
import dataclasses

import numpy as np
from synthetic import empty, error, indices, small_case, target

from auditor.model import Case, Finding, Observations
from auditor.summary import summarize, target_rows, timing, user_flips

NOTE = "changed its input in place"


def _runs(count, process=0):
    return [(process, r) for r in range(count)]


def _rows_observations():
    ties = small_case([[1.0, 5.0, 5.0], [2.0, 2.0, 0.0]], id="ties")
    nan = small_case([[1.0, np.nan, 5.0]], id="nan")
    empty_dim = small_case(np.zeros((2, 0)), id="empty")
    mins = small_case([[0.0, 0.0, 3.0]], id="mins")
    mixed = small_case([[4.0, 4.0, 1.0]], id="mixed")
    last, low, mixer = target("last"), target("low", op="argmin"), target("mixer")
    observations = empty([ties, nan, empty_dim, mins, mixed], [last, low, mixer])
    observations.add(last.id, "empty", [error("ValueError", runs=_runs(2))])  # read no policy
    observations.add(last.id, "ties", [indices([2, 1], runs=_runs(3)),
                                       error("MutatedInput", NOTE, runs=[(0, None)])])
    observations.add(last.id, "nan", [indices([2], runs=_runs(2)), indices([1], runs=[(1, 0)])])
    observations.add(low.id, "mins", [indices([1])])
    observations.add(low.id, "ties", [indices([0, 2])])
    observations.add(mixer.id, "ties", [indices([1, 0])])
    observations.add(mixer.id, "mixed", [indices([1])])
    observations.add(mixer.id, "nan", [indices([[2]])])  # another shape: no policy read from it
    return observations, (last, low, mixer)


def test_each_target_row_counts_cases_calls_and_reads_its_tie_and_nan_policy():
    observations, (last, low, mixer) = _rows_observations()
    rows = {row["target"]: row for row in target_rows(observations, [])}
    assert rows[last.id] == {"target": last.id, "cases": 3, "calls": 3 + 3 + 2, "findings": {},
                             "tie_policy": "last", "nan_policy": "ignores-nan"}
    assert rows[low.id] == {"target": low.id, "cases": 2, "calls": 2, "findings": {},
                            "tie_policy": "last", "nan_policy": "untested"}
    assert rows[mixer.id] == {"target": mixer.id, "cases": 3, "calls": 3, "findings": {},
                              "tie_policy": "mixed", "nan_policy": "untested"}


def _finding(kind, targets, severity="", blame=None, allowed=None):
    return Finding(check="t", kind=kind, message="m", targets=targets, severity=severity,
                   evidence={"blame": blame} if blame else {}, allowed=allowed)


def test_a_target_row_counts_the_findings_that_blame_it_apart_from_info_and_allowed_ones():
    observations, (last, low, mixer) = _rows_observations()
    findings = [_finding("tie_break", [last.id]), _finding("tie_break", [last.id]),
                _finding("nan_policy", [mixer.id, last.id], blame=[last.id]),
                _finding("tie_break", [mixer.id, last.id], severity="info", blame=[last.id]),
                _finding("crash", [last.id], allowed="known"),
                _finding("wrong_index", [low.id])]
    rows = {row["target"]: row["findings"] for row in target_rows(observations, findings)}
    assert rows == {last.id: {"tie_break": 2, "nan_policy": 1}, low.id: {"wrong_index": 1},
                    mixer.id: {}}


def test_the_summary_counts_findings_by_kind_and_severity_and_the_allowed_apart():
    observations, _ = _rows_observations()
    findings = [_finding("tie_break", ["a"]), _finding("tie_break", ["a"]),
                _finding("precision_drift", ["a"]), _finding("crash", ["a"], allowed="known"),
                _finding("crash", ["a"], allowed="known")]
    summary = summarize(observations, findings, "error")
    assert (summary["complete"], summary["verdict"], summary["failing"], summary["allowed"]) == (
        True, "fail", 2, 2)
    assert summary["by_severity"] == {"info": 0, "warning": 1, "error": 2}
    assert summary["by_kind"] == {"nondeterministic": 0, "wrong_index": 0, "tie_break": 2,
                                  "nan_policy": 0, "precision_drift": 1, "api_mismatch": 0,
                                  "crash": 0, "regression": 0}
    assert summary["targets"] == target_rows(observations, findings)
    assert summary["timing"] == timing(observations) and summary["precision"] == {}


def test_timing_adds_up_calls_and_seconds_and_compiles_where_recorded():
    observations = Observations(timings={
        ("a", "c"): {"calls": 10, "call_s": 0.5, "harness_s": 0.25, "compile_s": 2.0,
                     "compiles": 1},
        ("b", "c"): {"calls": 5, "call_s": 0.25, "harness_s": 0.5}})
    assert timing(observations) == {"calls": 15, "call_s": 0.75, "harness_s": 0.75,
                                    "compile_s": 2.0, "compiles": 1}


def _user_case(values, id):
    return Case(id, np.asarray(values, dtype=np.float32), dim=-1, tags=("user",))


def _user_observations():
    """A run on three user cases and one suite case, and a baseline of the same target kind."""
    logits = _user_case([[1.0, 5.0, 5.0], [3.0, 0.0, 0.0], [2.0, 9.0, 1.0]], "user:logits")
    moved = _user_case([[1.0, 2.0]], "user:moved")
    broken = _user_case([[1.0, 2.0], [4.0, 3.0]], "user:broken")
    none = _user_case(np.zeros((2, 0)), "user:none")
    suite = small_case([[1.0, 2.0]], id="suite")
    new_target, other = target(), target("other", op="argmin")
    same = _user_case([[4.0, 1.0]], "user:same")
    new = empty([logits, moved, broken, none, suite, same], [new_target, other])
    new.add(new_target.id, "suite", [indices([0])])  # not a user case
    new.add(new_target.id, "user:logits", [indices([2, 0, 0])])  # rows 0 and 2 off the reference
    new.add(new_target.id, "user:moved", [indices([1])])
    new.add(new_target.id, "user:broken", [error("RuntimeError")])  # every row differs
    new.add(new_target.id, "user:none", [error("ValueError")])  # must raise: not a row
    new.add(new_target.id, "user:same", [indices([0])])  # the same answer as the baseline's
    new.add(other.id, "suite", [indices([0])])
    old_target = dataclasses.replace(new_target, env="old")
    moved_before = _user_case([[2.0, 1.0]], "user:moved")  # other values: not compared
    old = empty([logits, moved_before, broken, same], [old_target])
    old.add(old_target.id, "user:same", [indices([0])])
    old.add(old_target.id, "user:logits", [indices([1, 0, 1])])  # rows 0 and 2 differ
    old.add(old_target.id, "user:moved", [indices([0])])
    old.add(old_target.id, "user:broken", [error("RuntimeError")])  # failed: not compared
    return new, old, new_target


def test_user_cases_count_rows_off_the_reference_and_off_the_baseline_where_comparable():
    new, old, new_target = _user_observations()
    assert user_flips(new, old) == {new_target.id: {
        "rows": 3 + 1 + 2 + 1, "vs_reference": 2 + 0 + 2 + 0,
        "baseline_target": "numpy/cpu/float32@old", "vs_baseline": 2 + 0, "rows_compared": 3 + 1}}
    assert user_flips(new) == {new_target.id: {"rows": 7, "vs_reference": 4}}
    assert summarize(new, [], "error", old)["user"] == user_flips(new, old)


def test_an_answer_of_another_shape_differs_on_every_row():
    case = _user_case([[1.0, 2.0], [4.0, 3.0]], "user:x")
    tgt = target()
    observations = empty([case], [tgt])
    observations.add(tgt.id, case.id, [indices([[1], [0]])])
    assert user_flips(observations) == {tgt.id: {"rows": 2, "vs_reference": 2}}


def test_argmin_user_rows_are_judged_by_the_first_minimum():
    case = _user_case([[1.0, 0.0, 0.0], [0.0, 2.0, 3.0]], "user:x")
    tgt = target(op="argmin")
    observations = empty([case], [tgt])
    observations.add(tgt.id, case.id, [indices([1, 1])])
    assert user_flips(observations) == {tgt.id: {"rows": 2, "vs_reference": 1}}
