"""consistency: targets that saw the same values must agree; the odd one out is named."""
import numpy as np
import pytest
from synthetic import (
    PLANTED,
    assert_explains,
    correct,
    empty,
    indices,
    observe,
    oracle,
    quick_suite,
    small_case,
    target,
    ties_without_nan,
)

from auditor.checks import consistency

#: Three correct targets: the frameworks' own argmax, as numpy computes it here.
CORRECT = {target(framework=fw): fn for fw, fn in (("numpy", correct), ("torch", oracle),
                                                    ("jax", correct))}


def _check(odd_name=None, dtype="float32", cases=None):
    impls = {target(framework=t.framework, dtype=dtype): fn for t, fn in CORRECT.items()}
    odd = None
    if odd_name:
        odd = target(odd_name, dtype)
        impls[odd] = PLANTED[odd_name]
    observations = observe(list(cases or quick_suite()), impls, processes=1, repeats=1)
    return odd, consistency.check(observations, {})


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_agreeing_targets_are_clean(dtype):
    assert _check(dtype=dtype)[1] == []


@pytest.mark.parametrize("odd_name, kind", [("last_tie", "tie_break"), ("nan_skip", "nan_policy"),
                                            ("half_kernel", "wrong_index")])
def test_the_odd_one_out_is_named_with_the_cause(odd_name, kind):
    odd, findings = _check(odd_name)
    assert findings and {f.kind for f in findings} == {kind}
    for finding in findings:
        assert_explains(finding, "consistency", kind, odd.id)
        assert finding.evidence["odd_one_out"] == [odd.id]
        assert finding.evidence["blame"] == [odd.id]
        assert finding.message.endswith(f"the odd one out: {odd.id}") or (
            f"the odd one out: {odd.id};" in finding.message)
        majority, minority = finding.evidence["groups"]
        assert sorted(majority["targets"]) == sorted(t.id for t in CORRECT)
        assert minority["targets"] == [odd.id]
        assert f"{odd.id} returns {minority['index']}" in finding.message
        assert f"return {majority['index']}" in finding.message
        assert f"from planted import {odd_name} as argmax" in finding.reproducer


def test_out_of_range_is_wrong_index_in_nan_rows_too():
    """An index outside the row is wrong_index, as reference.classify rules, NaN in the row or not."""
    odd, findings = _check("out_of_range", cases=[c for c in quick_suite() if c.id.startswith("nan-")])
    assert findings
    assert {f.kind for f in findings} == {"wrong_index"}, [f.message for f in findings]


def test_tie_break_disagreements_are_found_on_exactly_the_tied_cases():
    _, findings = _check("last_tie")
    assert {f.case for f in findings} == {c.id for c in quick_suite() if ties_without_nan(c)}


def test_without_a_majority_there_is_no_odd_one_out_but_blame_is_kept():
    case = small_case([[1.0, 5.0, 5.0]], dim=1)
    a, b = target("a"), target("b")
    observations = empty([case], [a, b])
    observations.add(a.id, case.id, [indices([1])])
    observations.add(b.id, case.id, [indices([2])])
    [finding] = consistency.check(observations, {})
    assert finding.kind == "tie_break" and finding.evidence["odd_one_out"] == []
    assert finding.evidence["blame"] == [b.id]
    assert "odd one out" not in finding.message


def test_each_dissenting_group_gets_its_own_kind():
    case = small_case([[1.0, 5.0, 5.0], [4.0, 4.0, 0.0]], dim=1)
    targets = [target(n) for n in ("a", "b", "c", "tie", "wrong")]
    observations = empty([case], targets)
    for tgt, answer in zip(targets, ([1, 0], [1, 0], [1, 0], [2, 0], [1, 2])):
        observations.add(tgt.id, case.id, [indices(answer)])
    findings = consistency.check(observations, {})
    assert sorted((f.kind, tuple(f.evidence["blame"])) for f in findings) == [
        ("tie_break", (targets[3].id,)), ("wrong_index", (targets[4].id,))]


def test_wrong_index_outranks_tie_break_within_one_answer():
    case = small_case([[1.0, 5.0, 5.0], [4.0, 4.0, 0.0]], dim=1)
    targets = [target(n) for n in ("a", "b", "c", "odd")]
    observations = empty([case], targets)
    for tgt, answer in zip(targets, ([1, 0], [1, 0], [1, 0], [2, 2])):
        observations.add(tgt.id, case.id, [indices(answer)])
    [finding] = consistency.check(observations, {})
    assert finding.kind == "wrong_index" and finding.count == 2
    assert finding.evidence["causes"] == ["tie_break", "wrong_index"]
    assert finding.evidence["odd_one_out"] == [targets[3].id]


def test_different_dtypes_are_not_compared():
    case = small_case([[1.0, 1.0 + 2**-12]], dim=1)  # float16 ties them, float32 does not
    a, b = target(dtype="float32"), target(dtype="float16")
    observations = observe([case], {a: correct, b: correct})
    assert consistency.check(observations, {}) == []


def test_failures_and_wrong_shapes_are_left_to_other_checks():
    impls = dict(CORRECT)
    impls[target("keepdim_ignored")] = PLANTED["keepdim_ignored"]
    impls[target("raises_on_3d")] = PLANTED["raises_on_3d"]
    impls[target("no_raise_on_empty")] = PLANTED["no_raise_on_empty"]
    observations = observe(list(quick_suite()), impls, processes=1, repeats=1)
    assert consistency.check(observations, {}) == []


def test_dim_none_disagreement_names_the_whole_input():
    case = small_case(np.array([[2.0, 7.0], [7.0, 1.0]]), dim=None)
    impls = dict(CORRECT)
    odd = target("last_tie")
    impls[odd] = PLANTED["last_tie"]
    [finding] = consistency.check(observe([case], impls, processes=1, repeats=1), {})
    assert finding.kind == "tie_break" and "the whole input" in finding.message
    assert finding.positions == [[]]
