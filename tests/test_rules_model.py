"""Rules of the suite's model: valid dims, the rule each sense orders by, where a position is named,
which outcomes are answers, and the modal answer."""
import numpy as np
import pytest
from synthetic import error, indices, small_case, target

from auditor.model import Case, Observations, Outcome


def test_a_dim_outside_the_input_is_refused():
    with pytest.raises(ValueError, match="dim -2 is out of range for 1 dims"):
        small_case([1.0, 2.0], dim=-2)
    assert small_case([1.0, 2.0], dim=-1).axis == 0


def test_the_default_rule_is_argmaxs_and_argmin_orders_by_the_negated_values():
    case = small_case([[1.0, 3.0, 3.0], [np.nan, 0.0, 2.0]], dim=1)
    assert np.array_equal(case.ordered("float32"), case.seen("float32"), equal_nan=True)
    assert np.array_equal(case.ordered("float32", "min"), -case.seen("float32"), equal_nan=True)
    assert case.reference("float32").tolist() == [1, 0]
    assert case.reference("float32", "min").tolist() == [0, 0]
    assert case.policies("float32", np.array([2, 0])) == ("last", "first")
    tied_minima = small_case([[1.0, 1.0, 3.0]], dim=1)
    assert tied_minima.policies("float32", np.array([1]), "min") == ("last", "none")
    assert tied_minima.policies("float32", np.array([1])) == ("none", "none")


def test_a_whole_input_reduction_reads_its_policy_from_the_flattened_input():
    case = small_case([[1.0, 5.0], [5.0, 0.0]], dim=None)
    assert case.policies("float32", np.array(2)) == ("last", "none")
    assert case.reference("float32").tolist() == 1


@pytest.mark.parametrize("values", [np.zeros((2, 0)), np.float32(3.0)], ids=["empty", "0-d"])
def test_an_input_without_rows_tells_no_policy(values):
    case = Case("c", np.asarray(values, dtype=np.float32), dim=None)
    assert case.policies("float32", np.array(0)) == ("none", "none")


@pytest.mark.parametrize("shape, dim, keepdim, position, words", [
    ((2, 3), None, False, (), "the whole input"),
    ((3,), None, False, (), "the input"),
    ((3,), -1, False, (), "the input"),
    ((2, 3), 1, False, (1,), "row 1"),
    ((2, 3), 0, False, (2,), "column 2"),
    ((2, 3), 1, True, (1, 0), "position (1, 0)"),
    ((3,), 0, True, (0,), "row 0"),
    ((2, 3, 4), 2, False, (1, 2), "position (1, 2)"),
])
def test_a_position_is_named_as_a_sentence_reads_it(shape, dim, keepdim, position, words):
    case = Case("c", np.zeros(shape, dtype=np.float32), dim=dim, keepdim=keepdim)
    assert case.where(position) == words


def test_the_call_is_described_as_the_target_makes_it_argmax_by_default():
    case = small_case([[1.0, 2.0]], dim=1, keepdim=True)
    assert case.describe_call() == "argmax(x, dim=1, keepdim=True)"
    assert case.describe_call(target(op="argmin")) == "argmin(x, dim=1, keepdim=True)"
    assert case.describe_call(target(framework="jax", op="topk")) == (
        "lax.top_k(x, 1) along dim 1 (keepdim)")


def test_garbage_that_came_back_is_an_answer_and_a_note_or_a_crash_is_not():
    def outcome(kind):
        return Outcome([[0, 0]], error={"type": kind, "message": "m", "where": ""})

    assert outcome("BadReturn").is_answer and outcome("ValueError").is_answer
    assert not outcome("MutatedInput").is_answer and not outcome("Timeout").is_answer
    assert outcome("MutatedInput").kind == "mutated"


def test_the_modal_answer_is_the_one_most_runs_gave_and_none_without_answers():
    case = small_case([[1.0, 2.0]], id="c")
    tgt = target()
    observations = Observations(cases={"c": case}, targets={tgt.id: tgt})
    assert observations.modal(tgt.id, "c") is None
    observations.add(tgt.id, "c", [error("Timeout", runs=[(0, 0), (0, 1), (0, 2)])])
    assert observations.modal(tgt.id, "c") is None
    observations.add(tgt.id, "c", [indices([1]), indices([0], runs=[(1, 0), (1, 1)])])
    assert observations.modal(tgt.id, "c").indices.tolist() == [0]


def test_by_case_groups_every_targets_outcomes_under_its_case():
    tgt, other = target("a"), target("b")
    observations = Observations()
    observations.add(tgt.id, "c", [indices([1])])
    observations.add(other.id, "c", [indices([0])])
    observations.add(tgt.id, "d", [indices([2])])
    grouped = observations.by_case()
    assert sorted(grouped) == ["c", "d"] and sorted(grouped["c"]) == [tgt.id, other.id]
    assert grouped["c"][other.id][0].indices.tolist() == [0]


def test_a_keepdim_answer_is_read_along_the_reduced_axis_only():
    values = np.array([[[5.0, 1.0, 5.0, 5.0]], [[1.0, np.nan, 7.0, np.nan]]], dtype=np.float32)
    case = small_case(values, dim=-1, keepdim=True)
    assert case.policies("float32", np.array([[[3]], [[2]]])) == ("last", "ignores-nan")
