"""Rules of the verdict and the exit code: what fails a run at each --fail-on level."""
import pytest

from auditor import cli
from auditor.model import Finding, Observations
from auditor.policy import failing
from auditor.summary import summarize


def _finding(severity, allowed=None, kind="precision_drift"):
    return Finding(check="test", kind=kind, message="m", targets=["numpy/cpu/float16"],
                   severity=severity, allowed=allowed)


def _document(findings, fail_on="error"):
    return {"summary": {"fail_on": fail_on, "failing": 0, "verdict": "pass", "complete": True},
            "metadata": {"complete": True}, "findings": [f.to_json() for f in findings]}


@pytest.mark.parametrize("fail_on, verdict", [("error", "pass"), ("warning", "fail")])
def test_verdict_follows_fail_on_a_warning_fails_only_at_warning(fail_on, verdict):
    summary = summarize(Observations(), [_finding("warning")], fail_on)
    assert (summary["verdict"], summary["fail_on"]) == (verdict, fail_on)
    assert summary["failing"] == (verdict == "fail")


def test_a_finding_exactly_at_the_fail_on_level_fails_the_run():
    assert failing([_finding("error")], "error") and failing([_finding("warning")], "warning")
    assert not failing([_finding("info")], "warning")


def test_allowed_findings_never_fail_and_are_counted_apart():
    summary = summarize(Observations(), [_finding("error", allowed="known")], "warning")
    assert (summary["verdict"], summary["failing"], summary["allowed"]) == ("pass", 0, 1)
    assert summary["by_severity"]["error"] == 0


@pytest.mark.parametrize("fail_on, verdict, failing_count", [
    ("error", "fail", 1), ("warning", "fail", 2), ("info", "fail", 3)])
def test_report_fail_on_rejudges_at_or_above_the_level(fail_on, verdict, failing_count):
    document = _document([_finding("error"), _finding("warning"), _finding("info"),
                          _finding("error", allowed="known")])
    cli._refail(document, fail_on)
    assert document["summary"]["verdict"] == verdict
    assert (document["summary"]["failing"], document["summary"]["fail_on"]) == (failing_count,
                                                                                fail_on)


def test_report_fail_on_error_passes_a_bundle_of_warnings():
    document = _document([_finding("warning")], fail_on="warning")
    cli._refail(document, "error")
    assert (document["summary"]["verdict"], document["summary"]["failing"]) == ("pass", 0)


@pytest.mark.parametrize("verdict, code", [("fail", 1), ("pass", 0)])
def test_exit_code_is_1_for_a_failing_verdict_else_0(verdict, code):
    document = _document([])
    document["summary"]["verdict"] = verdict
    with pytest.raises(SystemExit) as exit_info:
        cli._exit(document, "x")
    assert exit_info.value.code == code


@pytest.mark.parametrize("summary_complete, run_complete", [(False, True), (True, False)])
def test_exit_code_is_3_for_a_run_that_did_not_finish(summary_complete, run_complete):
    document = _document([])
    document["summary"]["complete"] = summary_complete
    document["metadata"]["complete"] = run_complete
    with pytest.raises(cli.AuditError) as error:
        cli._exit(document, "the bundle holds")
    assert error.value.exit_code == 3 and "did not finish" in str(error.value)
