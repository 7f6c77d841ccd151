"""Rules of the reference check: which answers are judged, what each kind of finding says, and
where a framework's documentation turns a difference into a warning."""
import numpy as np
import pytest
from synthetic import empty, error, indices, small_case, target

from auditor.checks import reference
from auditor.explain import fmt
from auditor.model import Target

TINY = float(np.finfo(np.float32).tiny)
TOPK = "torch.topk does not promise which of equal values (tied maxima, or NaNs) comes first"


def _judge(values, answers, tgt=None, dim=-1):
    case = small_case(values, id="c", dim=dim)
    tgt = tgt or target(op="argmin")
    observations = empty([case], [tgt])
    observations.add(tgt.id, "c", answers)
    return reference.check(observations, {})


def test_the_most_frequent_answer_is_the_one_described_and_each_kind_is_reported_once():
    (finding,) = _judge([[5.0, 5.0, 5.0]], [indices([1], runs=[(0, 0)]),
                                            indices([2], runs=[(0, 1), (1, 0), (1, 1)])],
                        tgt=target())
    assert (finding.kind, finding.evidence["returned"]) == ("tie_break", 2)


def test_answers_that_are_not_judged_do_not_hide_the_ones_that_are():
    (finding,) = _judge([[5.0, 5.0, 5.0]], [error("RuntimeError", runs=[(0, 0), (0, 1)]),
                                            indices([[1]], runs=[(0, 2), (0, 3)]),
                                            indices([2], runs=[(1, 0)])], tgt=target())
    assert finding.evidence["returned"] == 2


def test_unsigned_indices_are_judged_too():
    (finding,) = _judge([[1.0, 5.0, 5.0]], [indices([2], dtype="uint64")], tgt=target())
    assert (finding.kind, finding.evidence["returned"]) == ("tie_break", 2)


def test_a_tie_break_names_the_tied_minima_of_argmin_and_counts_its_positions():
    (finding,) = _judge([[2.0, 1.0, 1.0, 1.0], [0.0, 3.0, 0.0, 1.0]], [indices([3, 2])])
    assert finding.message == (
        "argmin(x, dim=-1) on numpy.argmin/cpu/float32 returned 3 at row 0 of case c; expected 1 "
        "(first of the tied minima 1 at 1, 2, 3) (2 positions like this)")
    assert finding.evidence == {
        "tied": [1, 2, 3], "ties": 3, "values": [[0, "2"], [1, "1"], [2, "1"], [3, "1"]],
        "returned": 3, "expected": 1, "position": [0], "row_length": 4, "policy": "last"}
    assert (finding.severity, finding.count, finding.positions) == ("error", 2, [[0], [1]])
    assert finding.reproducer.endswith(
        "print([int(np.asarray(r)[p]) for p in [(0,), (1,)]])  # the audit saw [3, 2]; "
        "the reference (first minimum, first NaN) is [1, 0]")


def test_evidence_lists_at_most_20_tied_indices_and_nans_but_counts_all():
    (tie,) = _judge([[1.0] * 25], [indices([24])], tgt=target())
    assert (len(tie.evidence["tied"]), tie.evidence["ties"]) == (20, 25)
    (nan,) = _judge([[np.nan] * 25], [indices([24])], tgt=target())
    assert len(nan.evidence["nans"]) == 20


@pytest.mark.parametrize("answer, what", [(3, "a later NaN"), (2, "the value 1")])
def test_a_nan_policy_finding_says_what_was_returned_instead_of_the_first_nan(answer, what):
    (finding,) = _judge([[2.0, np.nan, 1.0, np.nan]], [indices([answer])])
    assert finding.message == (
        f"argmin(x, dim=-1) on numpy.argmin/cpu/float32 returned {answer} at row 0 of case c; "
        "expected 1 (the first NaN; NaN counts as the minimum), but it returned "
        f"{what}; NaN at 1, 3")


def test_a_wrong_index_of_argmin_gives_the_gap_to_the_minimum():
    (finding,) = _judge([[2.0, 1.0, 3.0]], [indices([2])])
    assert finding.message == (
        "argmin(x, dim=-1) on numpy.argmin/cpu/float32 returned 2 at row 0 of case c; expected 1 "
        "(value 1), but 2 holds 3, which is not a minimum (gap 2)")
    assert finding.evidence["gap"] == 2.0


def test_an_index_outside_the_row_names_the_range_and_the_narrow_type_that_explains_it():
    values = np.zeros((1, 256), np.float32)
    values[0, 200] = 1.0
    (finding,) = _judge(values, [indices([-56])], tgt=target())
    assert finding.message.endswith(
        "expected 200 (value 1), but -56 is outside 0..255; 200 squeezed through int8 comes back "
        "as -56")
    assert finding.evidence["out_of_range"] is True


@pytest.mark.parametrize("values, answer, dtype, hint", [
    ([[TINY / 2, TINY / 4]], 1, "float32",
     "; both values are subnormal, as if subnormals were flushed to zero (FTZ/DAZ)"),
    ([[TINY, 0.0]], 1, "float32",  # the smallest normal number is not subnormal
     "; float16 rounds both to the same number, as if the kernel computed in float16"),
    ([[-TINY / 2, -TINY]], 1, "float32",
     "; float16 rounds both to the same number, as if the kernel computed in float16"),
    ([[1.0, TINY / 2]], 1, "float32", ""),  # one subnormal value is no sign of flushing
    ([[1e-39, 2e-39]], 0, "float64",  # normal numbers in float64
     "; float16 rounds both to the same number, as if the kernel computed in float16"),
    ([[1.0, 1.0 + 2**-12]], 0, "float32",
     "; float16 rounds both to the same number, as if the kernel computed in float16"),
    ([[1.0, 1.0009765625]], 0, "float16", ""),  # a float16 kernel is not suspected of float16
    ([[1.0, 2.0]], 0, "float32", ""),
])
def test_a_wrong_index_hints_at_the_mechanism_only_where_the_values_show_it(
        values, answer, dtype, hint):
    (finding,) = _judge(values, [indices([answer])], tgt=target(dtype=dtype))
    assert finding.message.endswith(f"(gap {fmt(finding.evidence['gap'])}){hint}")


def test_a_documented_twin_tie_is_a_warning_that_quotes_its_documentation():
    (finding,) = _judge([[1.0, 5.0, 5.0]], [indices([2])],
                        tgt=target(framework="torch", op="topk"))
    assert finding.severity == "warning"
    assert finding.message.startswith(
        "topk(x, 1, dim=-1).indices on torch.topk/cpu/float32 returned 2 at row 0 of case c; "
        f"expected 1 (first of the tied maxima 5 at 1, 2); documented: {TOPK}: \"When using ")
    assert finding.evidence["documented"]["url"].endswith("torch.topk.html")


@pytest.mark.parametrize("values, answer, tgt", [
    ([[1.0, 5.0, 5.0]], 0, target(framework="torch", op="topk")),   # not one of the equal values
    ([[1.0, 5.0, 5.0]], 2, Target("torch", "cpu", "float32", impl="k:top1", op="topk")),  # own
    ([[1.0, 5.0, 5.0]], 2, target(framework="torch", op="max")),    # torch.max promises the rule
])
def test_what_the_documentation_does_not_allow_stays_an_error(values, answer, tgt):
    (finding,) = _judge(values, [indices([answer])], tgt=tgt)
    assert finding.severity == "error"
    assert "documented" not in finding.evidence and "documented:" not in finding.message
