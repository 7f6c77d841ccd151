"""Rules of what a run checks: its cases (the baseline's, the seeded suite's, the user's arrays), the
options its checks get, and the exit of a run that did not finish."""
import numpy as np
import pytest
from synthetic import small_case, target

from auditor import api, cli
from auditor.cases import build_suite
from auditor.errors import AuditError, UserError
from auditor.model import Observations
from auditor.policy import Policy


def _baseline(*cases, targets=()):
    observations = Observations(cases={c.id: c for c in cases},
                                targets={t.id: t for t in targets})
    document = {"environment": {"frameworks": {"numpy": {"version": "1.26.4"}}}}
    return observations, [], document


def _same(cases, others):
    return [c.id for c in cases] == [c.id for c in others] and all(
        np.array_equal(a.values, b.values, equal_nan=True) for a, b in zip(cases, others))


def test_a_run_against_a_baseline_runs_exactly_the_baselines_cases():
    first, second = small_case([[1.0, 2.0]], id="first"), small_case([3.0], id="second")
    assert api._cases("quick", 0, [], _baseline(first, second)) == [first, second]


def test_the_seed_chooses_the_suites_values():
    assert _same(api._cases("quick", 1, [], None), build_suite("quick", 1))
    assert not _same(api._cases("quick", 1, [], None), build_suite("quick", 0))


def test_input_arrays_join_the_cases_reduced_along_the_dim_given(tmp_path):
    path = tmp_path / "logits.npy"
    np.save(path, np.array([[1.0, 3.0], [2.0, 0.0]], dtype=np.float32))
    cases = api._cases("quick", 0, [], _baseline(small_case([1.0], id="a")), [str(path)], 0)
    assert [c.id for c in cases] == ["a", "user:logits.npy"]
    assert (cases[1].dim, cases[1].tags) == (0, ("user",))


def test_an_input_the_baseline_holds_with_the_same_values_runs_once_and_other_values_refuse(
        tmp_path):
    values = np.array([[1.0, 3.0]], dtype=np.float32)
    np.save(tmp_path / "logits.npy", values)
    held = small_case(values, id="user:logits.npy")
    cases = api._cases("quick", 0, [], _baseline(held), [str(tmp_path / "logits.npy")])
    assert cases == [held]
    other = small_case([[3.0, 1.0]], id="user:logits.npy")
    with pytest.raises(UserError) as info:
        api._cases("quick", 0, [], _baseline(other), [str(tmp_path / "logits.npy")])
    assert str(info.value) == (
        "--input gives case user:logits.npy other values than the baseline holds; rename the "
        "file to audit it as a new case")


def test_case_patterns_that_match_nothing_are_refused_naming_where_they_looked():
    with pytest.raises(UserError) as info:
        api._cases("quick", 0, ["nope", "zip*"], None)
    assert str(info.value) == "--cases nope,zip* matches no case of the quick suite"
    with pytest.raises(UserError) as info:
        api._cases("quick", 0, ["nope"], _baseline(small_case([1.0], id="a")))
    assert str(info.value) == "--cases nope matches no case of the baseline"


def test_the_checks_get_the_policy_thresholds_and_the_baseline_with_both_sides_versions():
    rules = Policy(max_flip_rate={"float16": 0.01})
    tgt = target()
    observations = Observations(targets={tgt.id: tgt})
    assert api.check_options(rules, observations, {}) == {"max_flip_rate": {"float16": 0.01}}
    previous = _baseline(small_case([1.0], id="a"), targets=[tgt])
    environment = {"frameworks": {"numpy": {"version": "2.4.6"}}}
    options = api.check_options(rules, observations, environment, previous)
    assert options == {"max_flip_rate": {"float16": 0.01}, "baseline": previous[0],
                       "versions": {tgt.id: "numpy 2.4.6"},
                       "baseline_versions": {tgt.id: "numpy 1.26.4"}}


def test_a_bundle_without_a_completeness_mark_exits_by_its_verdict():
    document = {"summary": {"complete": True, "verdict": "pass"}, "metadata": {}}
    with pytest.raises(SystemExit) as info:
        cli._exit(document, "x")
    assert info.value.code == 0


def test_a_run_that_did_not_finish_says_its_findings_are_partial():
    document = {"summary": {"complete": False, "verdict": "pass"}, "metadata": {}}
    with pytest.raises(AuditError) as info:
        cli._exit(document, "the bundle holds")
    assert str(info.value) == ("the bundle holds a run that did not finish (interrupted or "
                               "killed): the findings above cover only what was measured")
