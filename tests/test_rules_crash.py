"""Rules of the crash check: what each way of failing is called, and the reproducer is the call."""
import pytest
from synthetic import empty, error, indices, small_case, target

from auditor.checks import crash


def _one(kind, message, cases=("c",)):
    tgt = target(op="argmin")
    observations = empty([small_case([[1.0, 2.0]], id=c) for c in cases], [tgt])
    for case_id in cases:
        observations.add(tgt.id, case_id, [error(kind, message)])
    (finding,) = crash.check(observations, {})
    return finding


@pytest.mark.parametrize("kind, how", [
    ("ProcessDied", "its worker process died"), ("Timeout", "it hung"),
    ("WorkerError", "its worker broke down"), ("SetupError", "the input could not be built on it"),
    ("RuntimeError", "it raised RuntimeError")])
def test_a_crash_says_how_the_call_failed_on_how_many_cases(kind, how):
    finding = _one(kind, "why")
    assert finding.message == (
        f"argmin(x, dim=-1) on numpy.argmin/cpu/float32: {how} (why) on 1 case, first c")
    assert (finding.check, finding.kind, finding.targets, finding.case, finding.count) == (
        "crash", "crash", ["numpy.argmin/cpu/float32"], "c", 1)


def test_a_crash_on_several_cases_counts_them_in_the_plural():
    finding = _one("Timeout", "after 30 s", cases=("b", "a"))
    assert finding.message.endswith("it hung (after 30 s) on 2 cases, first b")
    assert finding.evidence["cases"] == ["a", "b"]


def test_a_crash_reproducer_makes_the_call_and_prints_nothing_it_did_not_see():
    reproducer = _one("Timeout", "after 30 s").reproducer
    assert reproducer.endswith("\nx, r = run(np.float32)")
    assert "r = np.argmin(x, axis=-1, keepdims=False)" in reproducer


def test_an_error_after_an_answer_of_the_same_target_is_still_a_crash():
    tgt = target()
    observations = empty([small_case([[1.0, 2.0]], id="c")], [tgt])
    observations.add(tgt.id, "c", [indices([1]), error("RuntimeError", "sometimes")])
    (finding,) = crash.check(observations, {})
    assert finding.evidence["error"]["message"] == "sometimes"


def test_errors_whose_messages_differ_only_past_200_characters_are_one_crash():
    tgt = target()
    observations = empty([small_case([[1.0, 2.0]], id=c) for c in "ab"], [tgt])
    observations.add(tgt.id, "a", [error("RuntimeError", "x" * 200 + "1")])
    observations.add(tgt.id, "b", [error("RuntimeError", "x" * 200 + "2")])
    (finding,) = crash.check(observations, {})
    assert finding.evidence["cases"] == ["a", "b"]


def test_a_framework_whose_worker_never_started_is_a_crash_naming_why():
    observations = empty([], [])
    observations.startup_errors["jax"] = "ImportError: no module named jaxlib"
    (finding,) = crash.check(observations, {})
    assert (finding.check, finding.kind, finding.severity, finding.targets, finding.count) == (
        "crash", "crash", "error", ["jax"], 1)
    assert finding.message == ("jax is installed but its worker could not start: ImportError: "
                               "no module named jaxlib")
    assert finding.evidence == {"error": "ImportError: no module named jaxlib"}
