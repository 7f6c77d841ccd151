"""reference: every index against the first maximizer (NaN first) of the values the target saw."""
import numpy as np
import pytest
from synthetic import (
    PLANTED,
    RandomTie,
    assert_explains,
    correct,
    expected_of,
    native,
    observe,
    oracle,
    quick_suite,
    rowwise,
    small_case,
    suite_case,
    target,
    ties_without_nan,
)

from auditor.checks import reference
from auditor.explain import disputed_positions


def _judge(impl_name, fn, cases=None, dtype="float32"):
    tgt = target(impl_name, dtype)
    observations = observe(list(cases or quick_suite()), {tgt: fn})
    return tgt, observations, reference.check(observations, {})


def _answer(fn, case, dtype="float32"):
    return np.asarray(fn(native(case, dtype), dim=case.dim, keepdim=case.keepdim))


def _assert_names_indices(finding, fn, dtype="float32"):
    """Assert the message and evidence name what `fn` returned and the reference at the first spot."""
    case = suite_case(finding.case)
    got, want = _answer(fn, case, dtype), expected_of(case, dtype)
    first = tuple(finding.positions[0])
    assert first in disputed_positions(got != want)
    assert finding.evidence["returned"] == int(got[first])
    assert finding.evidence["expected"] == int(want[first])
    assert f"returned {finding.evidence['returned']} " in finding.message
    assert f"expected {finding.evidence['expected']} " in finding.message
    assert finding.evidence["values"]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("fn", [correct, oracle], ids=["np.argmax", "oracle"])
def test_correct_implementation_is_clean(fn, dtype):
    _, _, findings = _judge("ok", fn, dtype=dtype)
    assert findings == []


def test_last_tie_is_tie_break_on_exactly_the_tied_cases():
    fn = PLANTED["last_tie"]
    tgt, _, findings = _judge("last_tie", fn)
    assert {f.kind for f in findings} == {"tie_break"}
    assert {f.case for f in findings} == {c.id for c in quick_suite() if ties_without_nan(c)}
    for finding in findings:
        assert_explains(finding, "reference", "tie_break", tgt.id)
        _assert_names_indices(finding, fn)
        assert finding.evidence["policy"] == "last"
        assert finding.evidence["returned"] in finding.evidence["tied"]
        assert "first of the tied maxima" in finding.message


def test_tie_break_counts_every_disputed_position():
    fn = PLANTED["last_tie"]
    _, _, findings = _judge("last_tie", fn)
    for finding in findings:
        case = suite_case(finding.case)
        differs = disputed_positions(_answer(fn, case) != expected_of(case, "float32"))
        assert finding.count == len(differs)
        assert [tuple(p) for p in finding.positions] == differs[:10]


def test_nan_skipping_is_nan_policy_on_exactly_the_nan_cases():
    fn = PLANTED["nan_skip"]
    tgt, _, findings = _judge("nan_skip", fn)
    assert {f.kind for f in findings} == {"nan_policy"}
    nan_cases = {c.id for c in quick_suite() if np.isnan(c.values).any()}
    assert {f.case for f in findings} == nan_cases
    for finding in findings:
        assert_explains(finding, "reference", "nan_policy", tgt.id)
        _assert_names_indices(finding, fn)
        assert "the first NaN" in finding.message
        assert finding.evidence["nans"]


def test_random_tie_break_policy_is_not_first():
    tgt, _, findings = _judge("random", RandomTie())
    assert {f.kind for f in findings} == {"tie_break"}
    assert {f.evidence["policy"] for f in findings} <= {"last", "other", "mixed"}


def test_float16_kernel_is_wrong_index_with_its_mechanism():
    fn = PLANTED["half_kernel"]
    tgt, _, findings = _judge("half_kernel", fn)
    assert {f.kind for f in findings} == {"wrong_index"}
    for finding in findings:
        assert_explains(finding, "reference", "wrong_index", tgt.id)
        _assert_names_indices(finding, fn)
        assert "which is not a maximum" in finding.message
    near_tie = next(f for f in findings if f.case == "near-tie")
    assert "as if the kernel computed in float16" in near_tie.message


def test_float16_hint_also_when_both_values_round_to_infinity():
    """65520 and 70000 both round to +inf in float16: the same number, so the same hint."""
    _, _, findings = _judge("half_kernel", PLANTED["half_kernel"], [suite_case("near-tie-overflow")])
    assert [f.kind for f in findings] == ["wrong_index"]
    assert findings[0].evidence["returned"] == 1 and findings[0].evidence["expected"] == 4
    assert "as if the kernel computed in float16" in findings[0].message


def test_the_same_kernel_is_clean_when_audited_as_float16():
    _, _, findings = _judge("half_kernel", PLANTED["half_kernel"], dtype="float16")
    assert findings == []


def test_flushed_subnormals_get_the_ftz_hint():
    def ftz(x, dim=None, keepdim=False):
        x = np.where(np.abs(x) < np.finfo(np.float32).tiny, np.float32(0), x)
        return np.argmax(x, axis=dim, keepdims=keepdim)

    tgt, _, findings = _judge("ftz", ftz, [suite_case("subnormal")])
    assert [f.kind for f in findings] == ["wrong_index"]
    assert "flushed to zero" in findings[0].message


def test_index_squeezed_through_int16_is_wrong_index_with_the_hint():
    fn = PLANTED["int16_squeezed"]
    tgt, _, findings = _judge("int16", fn)
    wrong = [f for f in findings if f.kind == "wrong_index"]
    # Every winner past 2**15 comes back changed (the rows of winners-65540 past 2**15, and the
    # winner of winners-whole at 65537).
    assert [f.case for f in wrong] == ["large-index-70001", "winners-65540", "winners-whole"]
    assert_explains(wrong[0], "reference", "wrong_index", tgt.id)
    _assert_names_indices(wrong[0], fn)
    assert "69999 squeezed through int16 comes back as 4463" in wrong[0].message
    # Elsewhere the squeezed index lands on a number in a row holding NaN: that row's kind.
    assert {f.kind for f in findings} <= {"wrong_index", "nan_policy"}


def test_out_of_range_index_is_wrong_index_even_in_nan_rows():
    fn = PLANTED["out_of_range"]
    tgt, _, findings = _judge("oob", fn)
    assert {f.kind for f in findings} == {"wrong_index"}
    answered = {c.id for c in quick_suite() if not c.must_raise and expected_of(c, "float32").size}
    assert {f.case for f in findings} == answered
    for finding in findings:
        assert_explains(finding, "reference", "wrong_index", tgt.id)
        assert finding.evidence["out_of_range"] is True
        assert "is outside 0.." in finding.message


def test_wrong_shape_and_failures_are_left_to_other_checks():
    for name in ("keepdim_ignored", "raises_on_3d", "float_garbage", "no_raise_on_empty",
                 "int32_indices"):
        _, _, findings = _judge(name, PLANTED[name])
        assert findings == [], name


@pytest.mark.parametrize("dim", [None, 0, 1, 2, -1, -2])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "broadcast"])
def test_tie_break_is_found_for_every_dim_keepdim_and_layout(dim, keepdim, layout):
    # Ties along every axis; both entries along axis 0 equal, so a broadcast view holds them too.
    pattern = [[5.0, -1.0, 5.0, -1.0], [-1.0, 5.0, -1.0, 5.0], [5.0, 5.0, -1.0, -1.0]]
    values = np.stack([pattern, pattern])
    case = small_case(values, dim=dim, keepdim=keepdim, layout=layout)
    fn = PLANTED["last_tie"]
    tgt, _, findings = _judge("last_tie", fn, [case])
    assert [f.kind for f in findings] == ["tie_break"]
    got = _answer(fn, case)
    assert got.shape == case.output_shape
    assert findings[0].count == int((got != expected_of(case, "float32")).sum())
    assert f"returned {findings[0].evidence['returned']} " in findings[0].message


def test_every_distinct_answer_is_judged():
    calls = iter(range(100))

    def flaky(x, dim=None, keepdim=False):  # correct, then last-tie, alternately
        fn = correct if next(calls) % 2 == 0 else PLANTED["last_tie"]
        return fn(x, dim=dim, keepdim=keepdim)

    _, _, findings = _judge("flaky", flaky, [suite_case("ties-short")])
    assert [f.kind for f in findings] == ["tie_break"]  # wrong only sometimes is still wrong


@pytest.mark.parametrize("row, kind", [
    ([1.0, 3.0, 3.0], "tie_break"), ([1.0, 3.0, 2.0], "wrong_index"),
    ([np.nan, 3.0, 3.0], "nan_policy"), ([1.0, np.nan, np.nan], "nan_policy"),
])
def test_classify(row, kind):
    row = np.array(row, dtype=np.float32)
    returned = 2
    assert reference.classify(row, returned, expected=1 if kind != "nan_policy" else 0) == kind


@pytest.mark.parametrize("returned", [-1, 3, 70000])
def test_classify_out_of_range_is_wrong_index(returned):
    assert reference.classify(np.array([np.nan, 1.0, 1.0]), returned, 0) == "wrong_index"


def test_row_wise_planted_impls_agree_with_the_oracle_when_correct():
    fn = rowwise(lambda row: int(np.argmax(row)))
    for case in quick_suite():
        if not case.must_raise:
            np.testing.assert_array_equal(_answer(fn, case), expected_of(case, "float32"))
