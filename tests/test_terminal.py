"""The terminal summary reads only the results document."""
from auditor.model import Finding, Observations, Target
from auditor.reports import terminal
from auditor.summary import summarize


def _document(findings, fail_on="error"):
    observations = Observations()
    for t in (Target("numpy", "cpu", "float32"), Target("torch", "cpu", "float16")):
        observations.targets[t.id] = t
    summary = summarize(observations, findings, fail_on)
    environment = {"python": "3.11", "frameworks": {"torch": {
        "version": "2.13.0", "build": {"cuda": "12.4"},
        "devices": [{"id": "cpu", "name": "EPYC"}, {"id": "cuda:0", "name": "H100"}]}},
        "unavailable": {"jax": "not installed (pip install 'argmax-audit[jax]')"}}
    return {"summary": summary, "findings": [f.to_json() for f in findings],
            "environment": environment, "metadata": {"skipped": ["jax/cpu/float64: x64 is off"]}}


def _finding(kind, target, case, severity=""):
    return Finding(check="reference", kind=kind, message=f"{kind} on {target} in {case}",
                   targets=[target], case=case, severity=severity)


def test_header_rows_findings_and_verdict():
    text = terminal.render(_document([_finding("tie_break", "torch/cpu/float16", "ties-short")]))
    lines = text.splitlines()
    assert lines[0] == "Python 3.11 · torch 2.13.0 (CUDA 12.4) · devices: cpu (EPYC), cuda:0 (H100)"
    assert any(line.startswith("numpy/cpu/float32") for line in lines)
    assert "error   tie_break: tie_break on torch/cpu/float16 in ties-short" in text
    assert "not audited: jax: not installed" in text and "skipped: jax/cpu/float64" in text
    assert lines[-1] == "FAIL: 1 error, 0 warnings, 0 info (failing at --fail-on error)"


def test_one_problem_on_many_cases_is_one_entry_naming_the_cases():
    findings = [_finding("tie_break", "torch/cpu/float16", f"ties-{n}") for n in range(8)]
    text = terminal.render(_document(findings))
    assert text.count("error   tie_break") == 1
    assert "the same on 7 more cases: ties-1, ties-2, ties-3, ties-4, ties-5 and 2 more" in text


def test_worst_first_and_allowed_findings_left_out():
    drift = _finding("precision_drift", "torch/cpu/float16", "near-tie")
    allowed = _finding("wrong_index", "numpy/cpu/float32", "subnormal")
    allowed.allowed = "known"
    crash = _finding("crash", "numpy/cpu/float32", "empty")
    text = terminal.render(_document([drift, allowed, crash]))
    assert text.index("error   crash") < text.index("warning precision_drift")
    listed = text.split("findings")[1].split("allowed by the policy")[0]
    assert "wrong_index" not in listed  # not among the findings that count
    assert "wrong_index on numpy/cpu/float32 (1 finding): known" in text  # but shown with its reason
    assert "1 allowed by policy" in text


def test_pass_when_only_warnings():
    text = terminal.render(_document([_finding("precision_drift", "torch/cpu/float16", "near-tie")]))
    assert text.splitlines()[-1].startswith("PASS: 0 errors, 1 warning,")
