"""precision: float16/bfloat16 against float32 of the same lane; rounding explains drift, nothing else."""
import numpy as np
import pytest
from synthetic import (
    PLANTED,
    assert_explains,
    correct,
    expected_of,
    observe,
    oracle,
    quick_suite,
    small_case,
    target,
    ties_without_nan,
)

from auditor.checks import precision

LOW = ["float16", "bfloat16"]


def _lane(fn_by_dtype, impl=None, cases=None):
    impls = {target(impl, dtype): fn for dtype, fn in fn_by_dtype.items()}
    observations = observe(list(cases or quick_suite()), impls, processes=1, repeats=1)
    return {t.dtype: t for t in impls}, observations


def _rounding_flips(case, low):
    """Return the positions where the reference of the rounded values is another index."""
    if case.must_raise:
        return 0
    return int(np.sum(expected_of(case, low) != expected_of(case, "float32")))


@pytest.mark.parametrize("fn", [correct, oracle], ids=["np.argmax", "oracle"])
def test_correct_low_precision_drifts_only_where_rounding_changes_the_answer(fn):
    targets, observations = _lane({"float32": fn, "float16": fn, "bfloat16": fn})
    findings = precision.check(observations, {})
    for low in LOW:
        mine = [f for f in findings if f.targets[0] == targets[low].id]
        flipped = {c.id: _rounding_flips(c, low) for c in quick_suite()}
        assert {f.case: f.count for f in mine} == {k: v for k, v in flipped.items() if v}
        assert "near-tie" in {f.case for f in mine}
        for finding in mine:
            assert_explains(finding, "precision", "precision_drift", targets[low].id)
            assert finding.targets == [targets[low].id, targets["float32"].id]
            assert finding.severity == "warning"
            assert finding.evidence["blame"] == [targets[low].id]
            assert finding.message.endswith("so the first wins")
            assert "rounds them to" in finding.message


def test_near_tie_margins_are_in_low_precision_spacings():
    targets, observations = _lane({"float32": correct, "bfloat16": correct},
                                  cases=[c for c in quick_suite() if c.id == "near-tie"])
    [finding] = precision.check(observations, {})
    margins = finding.evidence["margins_spacings"]
    assert len(margins) == finding.count and all(0 < m < 1 for m in margins)


def test_flip_rate_over_the_policy_limit_is_an_error():
    targets, observations = _lane({"float32": correct, "float16": correct})
    rates = precision.flip_rates(observations)
    rate = rates[targets["float16"].id]
    assert rate["flips"] == sum(_rounding_flips(c, "float16") for c in quick_suite())
    assert rate["float32_target"] == targets["float32"].id
    strict = precision.check(observations, {"max_flip_rate": {"float16": 0.0}})
    breaches = [f for f in strict if f.severity == "error"]
    assert len(breaches) == 1 and breaches[0].targets == [targets["float16"].id]
    assert "more than the 0.00% the policy tolerates" in breaches[0].message
    lenient = precision.check(observations, {"max_flip_rate": {"float16": 1.0}})
    assert all(f.severity == "warning" for f in lenient)


def test_targets_of_other_lanes_are_not_compared():
    impls = {target("a", "float32"): correct, target("b", "float16"): correct}
    observations = observe(list(quick_suite()), impls, processes=1, repeats=1)
    assert precision.check(observations, {}) == []


def test_a_wrong_low_precision_answer_is_not_drift():
    _, observations = _lane({"float32": correct, "float16": PLANTED["out_of_range"]})
    assert precision.check(observations, {}) == []


@pytest.mark.parametrize("low_fn, wide_fn", [(PLANTED["last_tie"], correct),
                                             (correct, PLANTED["last_tie"])],
                         ids=["low-last-tie", "float32-last-tie"])
def test_exact_float32_ties_are_tie_break_not_drift(low_fn, wide_fn):
    """Values already equal in float32 are not reordered or tied by rounding: no drift there."""
    tied = [c for c in quick_suite() if ties_without_nan(c) and not _rounding_flips(c, "float16")]
    _, observations = _lane({"float32": wide_fn, "float16": low_fn}, cases=tied)
    findings = precision.check(observations, {})
    assert findings == [], [f.message for f in findings[:2]]


def test_a_tie_made_by_rounding_is_explained():
    case = small_case([[1.0, 1.0 + 2**-12, 0.0]], dim=1)  # float16 rounds both to 1.0
    targets, observations = _lane({"float32": correct, "float16": correct}, cases=[case])
    [finding] = precision.check(observations, {})
    assert finding.positions == [[0]]
    assert "float32 picks 1" in finding.message and "over 0" in finding.message
    assert finding.evidence["margin_spacings"] == pytest.approx(0.25)  # 2**-12 over 2**-10
