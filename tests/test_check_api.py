"""api: index dtype, output shape for every dim/keepdim, raising on empty reductions, garbage returns."""
import numpy as np
import pytest
from synthetic import (
    PLANTED,
    assert_explains,
    correct,
    empty,
    error,
    indices,
    observe,
    oracle,
    quick_suite,
    small_case,
    target,
)

from auditor.checks import api
from auditor.model import Target


def _check(name, fn, cases=None, tgt=None):
    tgt = tgt or target(name)
    observations = observe(list(cases or quick_suite()), {tgt: fn})
    return tgt, api.check(observations, {})


def _answered_cases():
    return {c.id for c in quick_suite() if not c.must_raise}


@pytest.mark.parametrize("fn", [correct, oracle], ids=["np.argmax", "oracle"])
def test_correct_implementation_is_clean(fn):
    assert _check("ok", fn)[1] == []


def test_int32_indices_are_one_dtype_finding_over_every_case():
    tgt, findings = _check("int32", PLANTED["int32_indices"])
    assert len(findings) == 1
    finding = findings[0]
    assert_explains(finding, "api", "api_mismatch", tgt.id, positions=False)
    assert finding.evidence["problem"] == "dtype"
    assert set(finding.evidence["cases"]) == _answered_cases()
    assert finding.count == len(_answered_cases())
    assert "returned int32 indices" in finding.message and "int64" in finding.message


def test_framework_index_dtype_is_what_the_target_declares():
    tgt = Target("numpy", "cpu", "float32", impl="planted:int32", index_dtype="int32")
    assert _check("int32", PLANTED["int32_indices"], tgt=tgt)[1] == []


def test_keepdim_ignored_is_a_shape_finding_on_the_keepdim_cases():
    tgt, findings = _check("nokeep", PLANTED["keepdim_ignored"])
    assert len(findings) == 1
    finding = findings[0]
    assert_explains(finding, "api", "api_mismatch", tgt.id, positions=False)
    assert finding.evidence["problem"] == "shape"
    broken = {c.id for c in quick_suite() if c.keepdim and c.output_shape != np.shape(
        np.argmax(np.ones(c.shape), axis=c.dim))}
    assert set(finding.evidence["cases"]) == broken and broken
    assert "keepdim=True" in finding.message
    assert f"expected {tuple(finding.evidence['expected_shape'])}" in finding.message


def test_negative_dim_misread_is_a_shape_finding():
    def positive_only(x, dim=None, keepdim=False):
        return np.argmax(x, axis=None if dim is None else max(dim, 0), keepdims=keepdim)

    case = small_case(np.arange(24.0).reshape(2, 3, 4), dim=-1)
    tgt, findings = _check("posdim", positive_only, [case])
    assert [f.evidence["problem"] for f in findings] == ["shape"]
    assert "returned shape (3, 4); expected (2, 3)" in findings[0].message


def test_not_raising_on_empty_reductions():
    tgt, findings = _check("noraise", PLANTED["no_raise_on_empty"])
    assert len(findings) == 1
    finding = findings[0]
    assert_explains(finding, "api", "api_mismatch", tgt.id, positions=False)
    assert finding.evidence["problem"] == "no-raise"
    assert set(finding.evidence["cases"]) == {c.id for c in quick_suite() if c.must_raise}
    assert "instead of raising" in finding.message


def test_garbage_return_is_api_not_crash():
    tgt, findings = _check("garbage", PLANTED["float_garbage"])
    problems = {f.evidence["problem"] for f in findings}
    assert "bad-return" in problems
    bad = next(f for f in findings if f.evidence["problem"] == "bad-return")
    assert "non-integer indices" in bad.message
    assert all(f.kind == "api_mismatch" and f.targets == [tgt.id] for f in findings)


def test_integral_floats_are_indices_but_the_wrong_dtype():
    def float_indices(x, dim=None, keepdim=False):
        return np.asarray(np.argmax(x, axis=dim, keepdims=keepdim)).astype(np.float32)

    _, findings = _check("floatidx", float_indices)
    assert [f.evidence["problem"] for f in findings] == ["dtype"]
    assert "returned float32 indices" in findings[0].message


def test_raising_is_right_for_empty_reductions_and_wrong_elsewhere_is_not_api():
    case = small_case(np.zeros((3, 0)), dim=1, id="empty-dim")
    normal = small_case([1.0, 2.0], id="normal")
    tgt = target("t")
    observations = empty([case, normal], [tgt])
    observations.add(tgt.id, case.id, [error("ValueError")])
    observations.add(tgt.id, normal.id, [error("RuntimeError")])
    assert api.check(observations, {}) == []


def test_one_finding_per_target_and_problem():
    case = small_case([[1.0, 2.0], [3.0, 0.0]], dim=1, keepdim=True)
    a, b = target("a"), target("b")
    observations = empty([case], [a, b])
    observations.add(a.id, case.id, [indices([1, 0], dtype="int32")])  # dtype and shape
    observations.add(b.id, case.id, [indices([[1], [0]], dtype="int32")])  # dtype only
    findings = api.check(observations, {})
    assert sorted((f.targets[0], f.evidence["problem"]) for f in findings) == [
        (a.id, "dtype"), (a.id, "shape"), (b.id, "dtype")]
