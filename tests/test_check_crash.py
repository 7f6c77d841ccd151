"""crash: a target raised where argmax must answer, hung, or its process died."""
import pytest
from synthetic import (
    PLANTED,
    assert_explains,
    correct,
    empty,
    error,
    indices,
    observe,
    quick_suite,
    small_case,
    target,
)

from auditor.checks import crash


def test_correct_implementation_is_clean_and_raising_on_empty_is_right():
    tgt = target("ok")
    observations = observe(list(quick_suite()), {tgt: correct})
    assert any(o.failed for (_, c), outs in observations.outcomes.items() for o in outs)
    assert crash.check(observations, {}) == []


def test_raising_on_normal_input_is_one_crash_over_the_cases_it_hit():
    tgt = target("raises")
    observations = observe(list(quick_suite()), {tgt: PLANTED["raises_on_3d"]}, processes=2, repeats=3)
    findings = crash.check(observations, {})
    assert len(findings) == 1
    finding = findings[0]
    assert_explains(finding, "crash", "crash", tgt.id, positions=False)
    three_d = sorted(c.id for c in quick_suite() if c.values.ndim == 3)
    assert finding.evidence["cases"] == three_d
    assert finding.count == finding.evidence["runs"] == len(three_d) * 2 * 3
    assert finding.evidence["error"]["type"] == "RuntimeError"
    assert "it raised RuntimeError (planted kernel failure on a 3-d input)" in finding.message
    assert f"on {len(three_d)} cases" in finding.message


@pytest.mark.parametrize("kind, words", [("ProcessDied", "its worker process died"),
                                         ("Timeout", "it hung"),
                                         ("WorkerError", "its worker broke down"),
                                         ("SetupError", "the input could not be built")])
def test_process_failures_are_crashes(kind, words):
    case = small_case([1.0, 2.0])
    tgt = target("t")
    observations = empty([case], [tgt])
    observations.add(tgt.id, case.id, [error(kind, "signal 11", runs=[[0, None]])])
    [finding] = crash.check(observations, {})
    assert_explains(finding, "crash", "crash", tgt.id, positions=False)
    assert words in finding.message and "signal 11" in finding.message


def test_a_dead_process_on_an_empty_reduction_is_still_a_crash():
    case = small_case([], dim=0, id="empty")
    tgt = target("t")
    observations = empty([case], [tgt])
    observations.add(tgt.id, case.id, [error("ValueError", runs=[[0, 0]]),
                                       error("ProcessDied", runs=[[1, None]])])
    [finding] = crash.check(observations, {})
    assert finding.evidence["error"]["type"] == "ProcessDied"


def test_garbage_returns_are_not_crashes():
    tgt = target("garbage")
    observations = observe(list(quick_suite())[:5], {tgt: PLANTED["float_garbage"]})
    assert crash.check(observations, {}) == []


def test_different_errors_are_different_findings():
    a, b = small_case([1.0], id="a"), small_case([2.0], id="b")
    tgt = target("t")
    observations = empty([a, b], [tgt])
    observations.add(tgt.id, a.id, [error("RuntimeError", "out of memory")])
    observations.add(tgt.id, b.id, [error("RuntimeError", "illegal instruction"),
                                    indices(0, runs=[[0, 1]])])
    findings = crash.check(observations, {})
    assert sorted(f.case for f in findings) == ["a", "b"]
    assert all(f.kind == "crash" for f in findings)
