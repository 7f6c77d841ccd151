"""Rules of the regression check: what a change from the baseline says, and what is compared."""
import dataclasses

import numpy as np
import pytest
from synthetic import error, indices, small_case, target

from auditor.checks import regression
from auditor.model import Observations

NEW_RIGHT = "the new answer follows the reference (first maximum, first NaN) and the old did not"
OLD_RIGHT = "the old answer followed the reference (first maximum, first NaN); the new does not"
NEITHER = "neither follows the reference (first maximum, first NaN)"


def _observations(case, tgt, outcome):
    observations = Observations(cases={case.id: case}, targets={tgt.id: tgt})
    observations.outcomes[(tgt.id, case.id)] = [outcome]
    return observations


def _check(case, new, old, tgt=None, old_target=None, **options):
    """Return the findings of `tgt` answering `new` where the baseline's target answered `old`."""
    tgt = tgt or target()
    old_target = old_target or tgt
    return regression.check(_observations(case, tgt, new),
                            {"baseline": _observations(case, old_target, old), **options})


@pytest.mark.parametrize("new, old, direction", [([1], [2], NEW_RIGHT), ([2], [1], OLD_RIGHT),
                                                 ([0], [2], NEITHER)])
def test_the_direction_says_which_answer_follows_the_reference(new, old, direction):
    case = small_case([[1.0, 5.0, 5.0]], id="tie")
    (finding,) = _check(case, indices(new), indices(old))
    assert finding.evidence["direction"] == direction
    assert finding.message.endswith(f"; {direction}")


@pytest.mark.parametrize("values", [[1.0, 5.0, 2.0], [1.0, np.nan, 2.0]], ids=["plain", "nan"])
def test_an_index_just_past_the_row_is_a_wrong_index_change_nan_or_not(values):
    case = small_case([values], id="c")
    (finding,) = _check(case, indices([3]), indices([1]))
    assert finding.evidence["cause"] == "wrong_index"
    assert "(old, new: 1 (" in finding.message and "3 (out of range)" in finding.message


def test_a_changed_answer_names_both_picks_their_values_the_cause_and_the_count():
    case = small_case([[1.0, 5.0, 5.0], [2.0, 2.0, 0.0]], id="tie")
    (finding,) = _check(case, indices([2, 1]), indices([1, 0]))
    assert finding.message == (
        "argmax(x, dim=-1) on numpy/cpu/float32 returned 2 at row 0 of case tie; the baseline "
        "numpy/cpu/float32 returned 1 (old, new: 1 (5), 2 (5); both are tied maxima (1, 2)); "
        f"{OLD_RIGHT}; 2 positions changed")
    assert (finding.check, finding.kind, finding.severity, finding.case) == (
        "regression", "regression", "error", "tie")
    assert (finding.count, finding.positions, finding.targets) == (
        2, [[0], [1]], ["numpy/cpu/float32", "numpy/cpu/float32"])
    assert finding.evidence == {
        "blame": ["numpy/cpu/float32"], "baseline_target": "numpy/cpu/float32", "version": None,
        "baseline_version": None, "cause": "tie_break", "direction": OLD_RIGHT, "picks": [1, 2],
        "values": [[0, "1"], [1, "5"], [2, "5"]], "changed": 2, "positions_compared": 2}
    assert finding.reproducer.endswith(
        "print([int(np.asarray(r)[p]) for p in [(0,), (1,)]])  # the audit saw [2, 1]; "
        "the reference (first maximum, first NaN) is [1, 0]")


def test_one_changed_position_is_not_counted_in_words_and_an_out_of_range_pick_is_named():
    case = small_case([[5.0, 1.0, 2.0]], id="c")
    (finding,) = _check(case, indices([3]), indices([0]))
    assert finding.message == (
        "argmax(x, dim=-1) on numpy/cpu/float32 returned 3 at row 0 of case c; the baseline "
        "numpy/cpu/float32 returned 0 (old, new: 0 (5), 3 (out of range); not both are a "
        f"maximum); {OLD_RIGHT}")
    assert (finding.evidence["changed"], finding.evidence["positions_compared"]) == (1, 1)


def test_a_changed_answer_in_a_nan_row_names_the_nans():
    case = small_case([[1.0, np.nan, 5.0, np.nan]], id="nan")
    (finding,) = _check(case, indices([3]), indices([1]))
    assert "the row holds NaN at 1, 3" in finding.message
    assert finding.evidence["cause"] == "nan_policy"


def test_argmin_changes_are_judged_by_the_first_minimum():
    case = small_case([[1.0, 0.0, 0.0]], id="tmin")
    (finding,) = _check(case, indices([1]), indices([2]), tgt=target(op="argmin"))
    assert finding.message.startswith("argmin(x, dim=-1) on numpy.argmin/cpu/float32 returned 1 ")
    assert "both are tied minima (1, 2)" in finding.message
    assert (finding.evidence["cause"], finding.evidence["direction"]) == (
        "tie_break", NEW_RIGHT.replace("maximum", "minimum"))


def test_the_settings_that_changed_are_named_beside_the_change():
    old = dataclasses.replace(target(), settings={"threads": 8, "by_process": [2], "x64": True})
    new = dataclasses.replace(target(), settings={"threads": 1, "by_process": [1]})
    case = small_case([[1.0, 5.0, 5.0]], id="tie")
    (finding,) = _check(case, indices([2]), indices([1]), tgt=new, old_target=old)
    assert finding.evidence["settings_changed"] == {"threads": [8, 1], "x64": [True, None]}
    assert finding.message.endswith("; settings differ: threads 8 -> 1, x64 True -> None")
    (same,) = _check(case, indices([2]), indices([1]), tgt=new, old_target=new)
    assert "settings_changed" not in same.evidence and "settings differ" not in same.message


@pytest.mark.parametrize("old, new", [({}, {"threads": 1}), ({"threads": 1}, {})])
def test_settings_are_compared_only_where_both_sides_recorded_them(old, new):
    assert regression.settings_changed(old, new) == {}
    assert regression.settings_changed({"threads": 1, "x64": False}, {"threads": 1}) == {
        "x64": [False, None]}


def test_a_change_of_what_came_back_names_both_results_and_reproduces_the_type():
    case = small_case([[1.0, 5.0, 2.0], [3.0, 0.0, 1.0]], id="c")
    tgt = target(op="argmin")
    (finding,) = _check(case, indices([[1], [1]]), indices([0, 1]), tgt=tgt)
    assert finding.message == (
        "argmin(x, dim=-1) on numpy.argmin/cpu/float32 gives int64 indices of shape (2, 1) on "
        "case c; the baseline numpy.argmin/cpu/float32 gave int64 indices of shape (2,)")
    assert (finding.check, finding.case, finding.count, finding.positions, finding.targets) == (
        "regression", "c", 1, [], [tgt.id, tgt.id])
    assert finding.evidence["cause"] == "api_mismatch"
    assert finding.reproducer.endswith(
        "print(type(r).__name__, getattr(r, 'dtype', None), tuple(getattr(r, 'shape', ())))")


def test_a_new_error_names_its_type_and_the_start_of_its_message_and_reproduces_the_call():
    case = small_case([[1.0, 5.0, 2.0]], id="c")
    (finding,) = _check(case, error("RuntimeError", "x" * 200), indices([1]))
    assert finding.message == (
        f"argmax(x, dim=-1) on numpy/cpu/float32 gives RuntimeError: {'x' * 120} on case c; the "
        "baseline numpy/cpu/float32 gave int64 indices of shape (1,)")
    assert finding.evidence["cause"] == "crash"
    assert finding.reproducer.endswith("\nx, r = run(np.float32)")


def test_compared_pairs_count_paired_targets_comparable_cases_and_the_unmatched():
    same, other = small_case([[1.0, 2.0]], id="same"), small_case([[1.0, 2.0]], id="other")
    tgt = target()
    new = Observations(cases={"same": same, "other": other}, targets={tgt.id: tgt})
    old = Observations(cases={"same": same, "other": small_case([[2.0, 1.0]], id="other")},
                       targets={tgt.id: tgt})
    for case_id in ("same", "other"):
        new.outcomes[(tgt.id, case_id)] = [indices([1])]
    assert regression.compared_pairs(new, old) == (1, 1, ["other"])


def test_a_case_the_baseline_holds_with_other_values_does_not_stop_the_comparison():
    moved, kept = small_case([[1.0, 2.0]], id="moved"), small_case([[5.0, 5.0]], id="kept")
    tgt = target()
    new = Observations(cases={"moved": moved, "kept": kept}, targets={tgt.id: tgt})
    new.outcomes[(tgt.id, "moved")] = [indices([1])]
    new.outcomes[(tgt.id, "kept")] = [indices([1])]
    old = Observations(cases={"moved": small_case([[2.0, 1.0]], id="moved"), "kept": kept},
                       targets={tgt.id: tgt})
    old.outcomes[(tgt.id, "moved")] = [indices([0])]
    old.outcomes[(tgt.id, "kept")] = [indices([0])]
    (finding,) = regression.check(new, {"baseline": old})
    assert finding.case == "kept"


def test_a_target_that_gave_no_answer_is_the_crash_checks_not_a_regression():
    case = small_case([[1.0, 5.0, 2.0]], id="c")
    assert _check(case, error("Timeout"), indices([1])) == []


def test_compared_pairs_count_every_paired_target_and_every_comparable_case():
    cases = {c: small_case([[1.0, 2.0]], id=c) for c in ("a", "b")}
    targets = {t.id: t for t in (target(), target("mine"))}
    new = Observations(cases=cases, targets=targets)
    for tid in targets:
        for cid in cases:
            new.outcomes[(tid, cid)] = [indices([1])]
    assert regression.compared_pairs(new, Observations(cases=cases, targets=targets)) == (2, 4, [])


def test_where_compiled_code_was_kept_is_no_settings_difference():
    """A kept folder's path differs between machines and users; it explains no regression."""
    old = {"x64": False, "compilation_cache": "kept across runs in /home/a/.cache/..."}
    new = {"x64": False, "compilation_cache": "shared by the run's processes of this group"}
    assert regression.settings_changed(old, new) == {}
    assert regression.settings_changed(old, dict(new, x64=True)) == {"x64": [False, True]}
