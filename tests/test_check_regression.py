"""regression: every change from the baseline's target of the same kind, with its cause."""
import dataclasses

import numpy as np
import pytest
from synthetic import (
    PLANTED,
    assert_explains,
    correct,
    error,
    indices,
    observe,
    quick_suite,
    small_case,
    target,
)

from auditor.checks import regression
from auditor.model import Observations


def _observe(fn, env="local", dtype="float32", cases=None, impl=None):
    tgt = dataclasses.replace(target(impl, dtype=dtype), env=env)
    return tgt, observe(list(cases or quick_suite()), {tgt: fn}, processes=1, repeats=1)


def _check(new_fn, old_fn, dtype="float32", cases=None):
    new_target, new = _observe(new_fn, "local", dtype, cases)
    old_target, old = _observe(old_fn, "np126", dtype, cases)
    findings = regression.check(new, {"baseline": old, "versions": {new_target.id: "numpy 2.4.6"},
                                      "baseline_versions": {old_target.id: "numpy 1.26.4"}})
    return new_target, old_target, findings


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_same_answers_are_no_regression(dtype):
    assert _check(correct, correct, dtype)[2] == []


def test_no_baseline_no_findings():
    _, observations = _observe(correct)
    assert regression.check(observations, {}) == []


def test_a_new_tie_rule_is_a_regression_caused_by_tie_break():
    new_target, old_target, findings = _check(PLANTED["last_tie"], correct)
    assert findings
    for f in findings:
        assert_explains(f, "regression", "regression", new_target.id)
        assert f.severity == "error"
        assert f.evidence["blame"] == [new_target.id]
        assert f.evidence["baseline_target"] == old_target.id
    ties = next(f for f in findings if f.case == "ties-short")
    assert ties.evidence["cause"] == "tie_break"
    assert "the old answer followed the reference" in ties.message
    assert "numpy 2.4.6" in ties.message and "numpy 1.26.4" in ties.message
    assert ties.count == ties.evidence["changed"] >= 1


def test_a_fix_is_reported_as_a_change_too():
    _, _, findings = _check(correct, PLANTED["nan_skip"])
    nan = next(f for f in findings if f.case == "nan-rows")
    assert nan.evidence["cause"] == "nan_policy"
    assert "the new answer follows the reference" in nan.message


def test_a_new_wrong_index_is_classified_so():
    case = small_case([[1.0, 5.0, 2.0], [3.0, 0.0, 9.0]], id="plain")
    _, _, findings = _check(lambda x, dim=None, keepdim=False: np.argmin(x, axis=dim), correct,
                            cases=[case])
    assert [f.evidence["cause"] for f in findings] == ["wrong_index"]
    assert findings[0].count == 2 and findings[0].positions == [[0], [1]]


def test_an_error_where_the_baseline_answered_is_a_regression():
    case = small_case([[1.0, 5.0, 2.0]], id="plain")

    def raises(x, dim=None, keepdim=False):
        raise RuntimeError("new kernel broke")

    _, _, findings = _check(raises, correct, cases=[case])
    assert len(findings) == 1 and findings[0].evidence["cause"] == "crash"
    assert "RuntimeError: new kernel broke" in findings[0].message


def test_another_index_dtype_is_a_regression_of_the_api():
    case = small_case([[1.0, 5.0, 2.0]], id="plain")
    _, _, findings = _check(PLANTED["int32_indices"], correct, cases=[case])
    assert len(findings) == 1 and findings[0].evidence["cause"] == "api_mismatch"


def test_versions_of_the_same_target_id_stay_apart():
    """An upgrade in place: the same target id before and after, on other numpy versions."""
    case = small_case([[1.0, 5.0, 5.0]], id="tie")
    tgt = target()
    new = Observations(cases={"tie": case}, targets={tgt.id: tgt})
    old = Observations(cases={"tie": case}, targets={tgt.id: tgt})
    new.outcomes[(tgt.id, "tie")] = [indices([2])]
    old.outcomes[(tgt.id, "tie")] = [indices([1])]
    (finding,) = regression.check(new, {"baseline": old, "versions": {tgt.id: "numpy 2.4.6"},
                                        "baseline_versions": {tgt.id: "numpy 1.26.4"}})
    assert finding.message.startswith(f"argmax(x, dim=-1) on {tgt.id} (numpy 2.4.6)")
    assert f"the baseline {tgt.id} (numpy 1.26.4)" in finding.message
    assert (finding.evidence["version"], finding.evidence["baseline_version"]) == (
        "numpy 2.4.6", "numpy 1.26.4")


def test_targets_pair_by_kind_whatever_their_environment_and_prefer_the_same_environment():
    case = small_case([[1.0, 5.0, 5.0]], id="tie")
    tgt = target()
    new = Observations(cases={"tie": case}, targets={tgt.id: tgt})
    new.outcomes[(tgt.id, "tie")] = [indices([2])]
    old = Observations(cases={"tie": case})
    for env, answer in (("local", [2]), ("np126", [1])):
        old_target = dataclasses.replace(tgt, env=env)
        old.targets[old_target.id] = old_target
        old.outcomes[(old_target.id, "tie")] = [indices(answer)]
    assert regression.check(new, {"baseline": old}) == []  # the same environment answered the same
    del old.targets[tgt.id]
    (finding,) = regression.check(new, {"baseline": old})
    assert finding.evidence["baseline_target"] == "numpy/cpu/float32@np126"


def test_other_dtypes_and_implementations_are_not_paired():
    case = small_case([[1.0, 5.0, 5.0]], id="tie")
    new_target, new = _observe(PLANTED["last_tie"], cases=[case])
    _, old = _observe(correct, "np126", "float16", cases=[case])
    assert regression.check(new, {"baseline": old}) == []
    _, old = _observe(correct, "np126", cases=[case], impl="other")
    assert regression.check(new, {"baseline": old}) == []


def test_cases_with_other_values_are_not_compared():
    new_target, new = _observe(PLANTED["last_tie"], cases=[small_case([[1.0, 5.0, 5.0]], id="c")])
    _, old = _observe(correct, "np126", cases=[small_case([[5.0, 5.0, 1.0]], id="c")])
    assert regression.check(new, {"baseline": old}) == []


def test_a_failure_on_both_sides_of_the_same_type_is_no_change():
    case = small_case([[1.0, 5.0]], id="c")
    tgt = target()
    new = Observations(cases={"c": case}, targets={tgt.id: tgt})
    old = Observations(cases={"c": case}, targets={tgt.id: tgt})
    new.outcomes[(tgt.id, "c")] = [error("RuntimeError", "at 0x1")]
    old.outcomes[(tgt.id, "c")] = [error("RuntimeError", "at 0x2")]
    assert regression.check(new, {"baseline": old}) == []
