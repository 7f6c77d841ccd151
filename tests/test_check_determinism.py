"""determinism: one target must give identical indices across all repeats and processes."""
import numpy as np
from synthetic import (
    RandomTie,
    assert_explains,
    correct,
    empty,
    error,
    indices,
    observe,
    oracle,
    quick_suite,
    small_case,
    suite_case,
    target,
    ties_without_nan,
)

from auditor.checks import determinism
from auditor.oracle import maximizers


def test_deterministic_implementations_are_clean():
    cases = list(quick_suite())
    observations = observe(cases, {target("np"): correct, target("oracle"): oracle},
                           processes=3, repeats=3)
    assert determinism.check(observations, {}) == []


def test_random_tie_break_is_nondeterministic_within_one_process():
    tgt = target("random")
    observations = observe(list(quick_suite()), {tgt: RandomTie()}, processes=2, repeats=3)
    findings = determinism.check(observations, {})
    tied = {c.id for c in quick_suite() if ties_without_nan(c)}
    assert findings and {f.case for f in findings} <= tied
    assert len({f.case for f in findings}) >= len(tied) - 2  # a few may draw the same answers
    within = 0
    for finding in findings:
        assert_explains(finding, "determinism", "nondeterministic", tgt.id)
        by_process = {}
        for i, answer in enumerate(finding.evidence["answers"]):
            for process, _ in answer["runs"]:
                by_process.setdefault(process, set()).add(i)
        scope = ("within one process" if any(len(a) > 1 for a in by_process.values())
                 else "only between processes")  # a row of two ties may draw one answer 3 times
        assert finding.evidence["scope"] == scope and scope in finding.message
        within += scope == "within one process"
        case = suite_case(finding.case)
        row = case.row(case.seen("float32"), tuple(finding.positions[0]))
        picks = finding.evidence["picks"]
        assert len(set(picks)) > 1 and maximizers(row, 0)[picks].all()
        assert f"it returned {picks[0]} " in finding.message
        assert "for _ in range(1000)" in finding.reproducer and "counts[answer]" in finding.reproducer
    assert within > len(findings) // 2


def _between_processes(first, second):
    case = small_case([[3.0, 3.0, 1.0], [0.0, 2.0, 2.0]], dim=1)
    tgt = target("t")
    observations = empty([case], [tgt])
    observations.add(tgt.id, case.id, [first])
    observations.add(tgt.id, case.id, [second])
    return tgt, observations


def test_answers_that_differ_only_between_processes():
    tgt, observations = _between_processes(indices([0, 1], runs=[[0, 0], [0, 1]]),
                                           indices([1, 1], runs=[[1, 0], [1, 1]]))
    [finding] = determinism.check(observations, {})
    assert_explains(finding, "determinism", "nondeterministic", tgt.id)
    assert finding.evidence["scope"] == "only between processes"
    assert "only between processes" in finding.message
    assert finding.positions == [[0]] and finding.count == 1
    assert finding.evidence["picks"] == [0, 1]
    assert "2 of 4 calls (50.0%; process 0)" in finding.message
    assert "2 of 4 calls (50.0%; process 1)" in finding.message
    assert finding.evidence["calls"] == 4 and [r["share"] for r in finding.evidence["rates"]] == [0.5, 0.5]


def test_answers_that_differ_within_one_process():
    _, observations = _between_processes(indices([0, 1], runs=[[0, 0], [1, 0]]),
                                         indices([1, 1], runs=[[0, 1]]))
    [finding] = determinism.check(observations, {})
    assert finding.evidence["scope"] == "within one process"


def test_same_answer_in_every_process_is_merged_and_clean():
    tgt, observations = _between_processes(indices([0, 1], runs=[[0, 0]]),
                                           indices([0, 1], runs=[[1, 0]]))
    assert len(observations.outcomes[(tgt.id, "small")]) == 1
    assert determinism.check(observations, {}) == []


def test_raising_sometimes_is_nondeterministic():
    _, observations = _between_processes(indices([0, 1], runs=[[0, 0]]),
                                         error("RuntimeError", runs=[[0, 1]]))
    [finding] = determinism.check(observations, {})
    assert "RuntimeError in 1 of 2 calls (50.0%" in finding.message
    assert "indices in 1 of 2 calls (50.0%" in finding.message


def test_a_dead_process_is_a_crash_not_nondeterminism():
    _, observations = _between_processes(indices([0, 1], runs=[[0, 0], [0, 1]]),
                                         error("ProcessDied", runs=[[1, None]]))
    assert determinism.check(observations, {}) == []


def test_answers_of_different_shapes_are_still_reported():
    _, observations = _between_processes(indices([0, 1], runs=[[0, 0]]),
                                         indices([[0], [1]], runs=[[1, 0]]))
    [finding] = determinism.check(observations, {})
    assert finding.positions == [] and finding.kind == "nondeterministic"
    assert np.all([a["error"] is None for a in finding.evidence["answers"]])
