"""Rules of the consistency check: the reference's group is the base (not the largest), the others
are blamed, a twin's documentation is quoted only where it allows the pick, and the findings are
the cross-target view (info)."""
import numpy as np
import pytest
from synthetic import empty, error, indices, small_case, target

from auditor.checks import consistency
from auditor.model import Target

TIES = [[1.0, 5.0, 5.0], [2.0, 2.0, 0.0]]  # the reference: [1, 0]
NUMPY, TORCH, JAX = (target(framework=f) for f in ("numpy", "torch", "jax"))
MINE = target("mine")
TOPK_URL = "https://docs.pytorch.org/docs/stable/generated/torch.topk.html"


def _check(answers, values=TIES, keepdim=False, more_cases=()):
    """Return the consistency findings of (target, answer) pairs on case c of `values` (each
    target answers 0 first on `more_cases`)."""
    case = small_case(values, id="c", keepdim=keepdim)
    observations = empty([*more_cases, case], [t for t, _ in answers])
    for tgt, _ in answers:
        for more in more_cases:
            observations.add(tgt.id, more.id, [indices(np.zeros(more.output_shape))])
    for tgt, answer in answers:
        observations.add(tgt.id, "c", [answer if not isinstance(answer, list) else indices(answer)])
    return consistency.check(observations, {})


def test_the_group_that_follows_the_reference_is_the_base_even_when_it_is_smallest():
    (finding,) = _check([(NUMPY, [1, 0]), (TORCH, [2, 1]), (JAX, [2, 1]), (MINE, [2, 1])])
    wrong = [TORCH.id, JAX.id, MINE.id]
    assert finding.message == (
        "targets disagree on argmax(x, dim=-1) of case c in float32 at row 0: numpy/cpu/float32 "
        "returns 1 (5); torch/cpu/float32, jax/cpu/float32, numpy[planted:mine]/cpu/float32 return "
        "2 (5) (tied maxima at 1, 2); 2 positions differ; the reference check reports "
        + ", ".join(wrong))
    assert finding.evidence == {
        "groups": [{"targets": [NUMPY.id], "index": 1}, {"targets": wrong, "index": 2}],
        "odd_one_out": [], "blame": wrong, "values": [[0, "1"], [1, "5"], [2, "5"]],
        "dtype": "float32", "causes": ["tie_break"]}
    assert (finding.severity, finding.count, finding.positions) == ("info", 2, [[0], [1]])
    assert finding.targets == [NUMPY.id, *wrong]
    assert finding.reproducer.endswith(
        "print([int(np.asarray(r.cpu())[p]) for p in [(0,), (1,)]])  # the audit saw [2, 1]; "
        "the reference (first maximum, first NaN) is [1, 0]")


def test_without_a_group_on_the_reference_the_largest_group_is_the_base():
    (finding,) = _check([(TORCH, [2, 0]), (NUMPY, [2, 1]), (JAX, [2, 1])])
    assert finding.evidence["groups"] == [{"targets": [NUMPY.id, JAX.id], "index": 1},
                                          {"targets": [TORCH.id], "index": 0}]
    assert finding.evidence["blame"] == [TORCH.id]
    assert finding.positions == [[1]] and "positions differ" not in finding.message


@pytest.mark.parametrize("majority, odd", [(3, True), (2, False)])
def test_the_odd_one_out_is_named_only_against_three_or_more_that_agree(majority, odd):
    agree = [(t, [1, 0]) for t in (NUMPY, TORCH, JAX)[:majority]]
    (finding,) = _check([*agree, (MINE, [2, 0])])
    assert finding.evidence["odd_one_out"] == ([MINE.id] if odd else [])
    assert (f"; the odd one out: {MINE.id}; " in finding.message) == odd


def test_every_odd_one_out_is_named():
    (finding,) = _check([*[(t, [1, 0]) for t in (NUMPY, TORCH, JAX)],
                         (MINE, [2, 0]), (target("yours"), [2, 0])])
    assert f"; the odd one out: {MINE.id}, numpy[planted:yours]/cpu/float32; " in finding.message


def test_no_odd_one_out_where_the_sides_are_equal():
    others = [target(f"other{i}") for i in range(3)]
    (finding,) = _check([*[(t, [1, 0]) for t in (NUMPY, TORCH, JAX)],
                         *[(t, [2, 0]) for t in others]])
    assert finding.evidence["odd_one_out"] == []
    assert finding.message.endswith("; the reference check reports " + ", ".join(
        t.id for t in others))


def test_argmin_targets_are_compared_by_the_first_minimum():
    low_numpy, low_torch = target(framework="numpy", op="argmin"), target(framework="torch", op="argmin")
    (finding,) = _check([(low_torch, [2, 1]), (low_numpy, [1, 1])],
                        values=[[1.0, 0.0, 0.0], [2.0, np.nan, 0.0]])
    assert finding.message == (
        "targets disagree on argmin(x, dim=-1) of case c in float32 at row 0: "
        "numpy.argmin/cpu/float32 returns 1 (0.0); torch.argmin/cpu/float32 returns 2 (0.0) "
        "(tied minima at 1, 2); the reference check reports torch.argmin/cpu/float32")


def test_a_disagreement_in_a_nan_row_names_the_nans_and_one_outside_the_row_is_wrong_index():
    values = [[1.0, np.nan, 5.0, np.nan]]
    (nan,) = _check([(NUMPY, [1]), (MINE, [3])], values=values)
    assert "NaN at 1, 3" in nan.message and nan.kind == "nan_policy"
    (wrong,) = _check([(NUMPY, [1]), (MINE, [4])], values=values)
    assert wrong.kind == "wrong_index"
    assert "returns 4 (out of range) (not both answers are a maximum)" in wrong.message


def test_an_answer_at_index_0_shows_its_value():
    (finding,) = _check([(NUMPY, [1, 0]), (MINE, [0, 0])])
    assert "numpy[planted:mine]/cpu/float32 returns 0 (1) (not both answers are a maximum)" in (
        finding.message)


def test_twins_are_named_with_their_ops_and_a_documented_pick_quotes_the_documentation():
    topk = target(framework="torch", op="topk")
    (finding,) = _check([(NUMPY, [[1]]), (topk, [[2]])], values=[[1.0, 5.0, 5.0]], keepdim=True)
    assert finding.message == (
        "targets disagree on argmax / topk (dim=-1, keepdim=True) of case c in float32 at position "
        "(0, 0): "
        "numpy/cpu/float32 returns 1 (5); torch.topk/cpu/float32 returns 2 (5) (tied maxima at "
        "1, 2); the reference check reports torch.topk/cpu/float32 (does not promise which of "
        f"equal values (tied maxima, or NaNs) comes first, as documented: {TOPK_URL})")
    assert finding.evidence["documented"]["url"] == TOPK_URL


@pytest.mark.parametrize("pick, documented", [(3, True), (2, False)])
def test_argsort_read_from_the_right_is_documented_only_for_the_last_of_equal_values(
        pick, documented):
    argsort = target(framework="numpy", op="argsort")
    (finding,) = _check([(NUMPY, [1]), (argsort, [pick])], values=[[1.0, 5.0, 5.0, 5.0]])
    assert finding.message.startswith("targets disagree on argmax / argsort (dim=-1) of case c ")
    assert ("documented" in finding.evidence) == documented
    assert ("as documented: https://numpy.org/" in finding.message) == documented


@pytest.mark.parametrize("blamed", [
    [(Target("torch", "cpu", "float32", impl="kernels:top1", op="topk"), [2])],  # a user's own
    [(target(framework="torch", op="topk"), [0])],                        # not a maximum
    [(target(framework="torch", op="max"), [2])],                         # torch.max promises the rule
    [(target(framework="torch", op="topk"), [2]), (target(framework="numpy", op="argsort"), [2])],
], ids=["impl", "wrong-index", "undocumented", "two-notes"])
def test_documentation_is_quoted_only_where_every_blamed_target_shares_a_note_allowing_the_pick(
        blamed):
    findings = _check([(NUMPY, [1]), *blamed], values=[[1.0, 5.0, 5.0]])
    assert findings and all("documented" not in f.evidence for f in findings)
    assert all("as documented" not in f.message for f in findings)


def test_a_case_that_must_raise_or_a_target_that_failed_does_not_stop_the_comparison():
    must_raise = small_case(np.zeros((2, 0)), id="empty")  # compared first
    (finding,) = _check([(target("raises"), error("RuntimeError")), (NUMPY, [1, 0]),
                         (MINE, [2, 0])], more_cases=[must_raise])
    assert finding.evidence["blame"] == [MINE.id]
