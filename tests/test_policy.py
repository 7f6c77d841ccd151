"""The policy: severities per kind, allowed findings with reasons, thresholds, fail-on, its files."""
import os

import pytest

from auditor import bundle, checks, policy
from auditor.errors import UserError
from auditor.model import KINDS, Finding
from auditor.summary import summarize

CUDA_HALF = "torch/cuda:0/float16"
CPU_HALF = "torch/cpu/float16"
IMPL = "numpy[kernels.py:argmax]/cpu/float32"


def _finding(kind, targets=(CPU_HALF,), case="ties-short", severity=""):
    return Finding(check="test", kind=kind, message=f"{kind} on {case}", targets=list(targets),
                   case=case, severity=severity)


def _parse(data):
    return policy.parse(data, "audit.toml")


# -- parsing ---------------------------------------------------------------------------------------


def test_empty_policy_is_the_defaults():
    rules = _parse({})
    assert (rules.fail_on, rules.severity, rules.allow, rules.max_flip_rate) == (None, {}, [], {})
    assert rules.source == "audit.toml"
    assert policy.Policy().source == "defaults"


def test_full_policy_parses():
    rules = _parse({
        "fail-on": "warning",
        "severity": {"precision_drift": "error", "tie_break": "warning"},
        "thresholds": {"max_flip_rate": {"bfloat16": 0.05, "float16": 0}},
        "allow": [{"kind": "tie_break", "target": "torch/cuda:*", "case": "ties-*",
                   "reason": "we only use argmax on distinct logits"}],
    })
    assert rules.fail_on == "warning"
    assert rules.severity == {"precision_drift": "error", "tie_break": "warning"}
    assert rules.max_flip_rate == {"bfloat16": 0.05, "float16": 0.0}
    assert rules.allow[0]["reason"] == "we only use argmax on distinct logits"


@pytest.mark.parametrize("data, words", [
    ({"fail_on": "error"}, ["unknown key 'fail_on'"]),
    ({"fail-on": "info"}, ["fail-on", "warning or error"]),  # as on the command line
    ({"fail-on": "fatal"}, ["fail-on", "'fatal'"]),
    ({"severity": {"nan": "error"}}, ["unknown kind 'nan'"]),
    ({"severity": {"crash": "critical"}}, ["crash", "'critical'"]),
    ({"allow": [{"kind": "crash"}]}, ["#1", "needs a reason"]),
    ({"allow": [{"kind": "crash", "reason": "ok"}, {"kind": "crash", "reason": ""}]},
     ["#2", "needs a reason"]),
    ({"allow": [{"kind": "segfault", "reason": "ok"}]}, ["kind must be one of"]),
    ({"allow": [{"kind": "crash", "reason": "ok", "device": "cpu"}]}, ["unknown key 'device'"]),
    ({"allow": ["crash"]}, ["must be a table"]),
    ({"thresholds": {"flip_rate": 0.1}}, ["unknown threshold 'flip_rate'"]),
    ({"thresholds": {"max_flip_rate": {"float32": 0.1}}}, ["float32"]),
    ({"thresholds": {"max_flip_rate": {"float16": -0.1}}}, ["float16"]),
    ({"thresholds": {"max_flip_rate": {"float16": "5%"}}}, ["float16"]),
])
def test_mistakes_are_user_errors_naming_the_place(data, words):
    with pytest.raises(UserError) as info:
        _parse(data)
    message = str(info.value)
    assert message.startswith("audit.toml") and "\n" not in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("data", [
    pytest.param({"severity": "error"}, id="severity"),
    pytest.param({"thresholds": 0.5}, id="thresholds"),
    pytest.param({"thresholds": {"max_flip_rate": 0.5}}, id="max_flip_rate"),
    pytest.param({"allow": [{"kind": "crash", "reason": "ok", "target": 3}]}, id="allow-target"),
    pytest.param({"allow": [{"kind": "crash", "reason": "ok", "case": ["a", "b"]}]}, id="allow-case"),
])
def test_wrong_types_are_user_errors(data):
    with pytest.raises(UserError):
        rules = _parse(data)
        rules.apply([_finding("crash")])  # a non-string glob fails here, after the whole run


# -- applying it -----------------------------------------------------------------------------------


def test_severity_override():
    rules = _parse({"severity": {"precision_drift": "error", "tie_break": "info"}})
    drift, tie, crash = rules.apply([_finding("precision_drift"), _finding("tie_break"),
                                     _finding("crash")])
    assert (drift.severity, tie.severity, crash.severity) == ("error", "info", "error")


def test_severity_override_leaves_a_severity_the_check_chose():
    """A drift rounding cannot explain is an error by the check's own judgement."""
    rules = _parse({"severity": {"precision_drift": "info"}})
    (unexplained,) = rules.apply([_finding("precision_drift", severity="error")])
    assert unexplained.severity == "error"


def test_allowed_finding_carries_its_reason_and_does_not_fail():
    rules = _parse({"allow": [{"kind": "tie_break", "reason": "ties never happen in our logits"}]})
    tie, crash = rules.apply([_finding("tie_break"), _finding("crash")])
    assert tie.allowed == "ties never happen in our logits"
    assert crash.allowed is None
    assert policy.failing([tie, crash], "error") == [crash]
    assert policy.failing([tie], "warning") == []


@pytest.mark.parametrize("rule, finding, allowed", [
    ({"target": "torch/cuda:*"}, _finding("tie_break", [CUDA_HALF]), True),
    ({"target": "torch/cuda:*"}, _finding("tie_break", [CPU_HALF]), False),
    ({"target": "torch/*/float16"}, _finding("tie_break", [CPU_HALF]), True),
    ({"target": "torch/cuda:*"}, _finding("tie_break", [CPU_HALF, CUDA_HALF]), True),  # any
    ({"case": "ties-*"}, _finding("tie_break", case="ties-far-129"), True),
    ({"case": "ties-*"}, _finding("tie_break", case="dims-1"), False),
    ({"case": "ties-*"}, _finding("tie_break", case=None), False),
    ({"case": "*"}, _finding("tie_break", case=None), True),
    ({"target": "torch/*", "case": "ties-*"}, _finding("tie_break", case="dims-1"), False),
    ({"target": "torch/*", "case": "ties-*"}, _finding("tie_break", case="ties-short"), True),
    ({"target": "TORCH/*"}, _finding("tie_break"), False),  # globs are case-sensitive
    ({}, _finding("nan_policy"), False),  # another kind
    ({"target": "numpy[[]kernels.py:argmax]/*"}, _finding("tie_break", [IMPL]), True),
])
def test_allow_globs(rule, finding, allowed):
    rules = _parse({"allow": [{"kind": "tie_break", "reason": "known", **rule}]})
    (finding,) = rules.apply([finding])
    assert (finding.allowed == "known") is allowed


def test_allow_by_the_exact_id_of_a_user_implementation():
    rules = _parse({"allow": [{"kind": "tie_break", "reason": "known", "target": IMPL}]})
    (finding,) = rules.apply([_finding("tie_break", [IMPL])])
    assert finding.allowed == "known"


def test_first_matching_rule_gives_the_reason():
    rules = _parse({"allow": [{"kind": "crash", "target": "torch/*", "reason": "first"},
                              {"kind": "crash", "reason": "second"}]})
    torch, numpy = rules.apply([_finding("crash"), _finding("crash", ["numpy/cpu/float32"])])
    assert (torch.allowed, numpy.allowed) == ("first", "second")


@pytest.mark.parametrize("fail_on, failing", [("error", ["crash"]),
                                              ("warning", ["precision_drift", "crash"]),
                                              ("info", ["precision_drift", "tie_break", "crash"])])
def test_failing_by_level(fail_on, failing):
    rules = _parse({"severity": {"tie_break": "info"}})
    findings = rules.apply([_finding("precision_drift"), _finding("tie_break"), _finding("crash")])
    assert [f.kind for f in policy.failing(findings, fail_on)] == failing


def test_every_kind_has_a_default_severity():
    assert set(KINDS) == {"nondeterministic", "wrong_index", "tie_break", "nan_policy",
                          "precision_drift", "api_mismatch", "crash", "regression"}
    assert KINDS["precision_drift"] == "warning"
    assert {k for k, s in KINDS.items() if s == "error"} == set(KINDS) - {"precision_drift"}


# -- finding the file ------------------------------------------------------------------------------


def test_no_file_means_defaults(tmp_path):
    assert policy.find(folder=str(tmp_path)).source == "defaults"


def test_audit_toml_is_found(tmp_path):
    (tmp_path / "audit.toml").write_text('fail-on = "warning"\n')
    rules = policy.find(folder=str(tmp_path))
    assert rules.fail_on == "warning" and rules.source.endswith("audit.toml")


def test_pyproject_section_is_found_when_there_is_no_audit_toml(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.argmax-audit]\nfail-on = "warning"\n'
        '[tool.argmax-audit.severity]\ntie_break = "warning"\n')
    rules = policy.find(folder=str(tmp_path))
    assert rules.source.endswith("pyproject.toml")
    assert rules.fail_on == "warning" and rules.severity == {"tie_break": "warning"}


def test_audit_toml_wins_over_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.argmax-audit]\nfail-on = "warning"\n')
    (tmp_path / "audit.toml").write_text('fail-on = "error"\n')
    assert policy.find(folder=str(tmp_path)).fail_on == "error"


def test_pyproject_without_the_section_means_defaults(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.ruff]\nline-length = 1\n')
    assert policy.find(folder=str(tmp_path)).source == "defaults"


def test_explicit_config_is_read(tmp_path):
    path = tmp_path / "ci-policy.toml"
    path.write_text('[severity]\nprecision_drift = "error"\n')
    (tmp_path / "audit.toml").write_text('fail-on = "warning"\n')
    rules = policy.find(str(path), folder=str(tmp_path))
    assert rules.severity == {"precision_drift": "error"} and rules.fail_on is None


def test_explicit_config_missing(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        policy.find(str(tmp_path / "nope.toml"))


def test_explicit_pyproject_without_the_section(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n')
    try:
        rules = policy.find(str(path))
    except UserError:
        return  # refusing it with a message is fine too
    assert isinstance(rules, policy.Policy)


def test_invalid_toml_is_a_user_error(tmp_path):
    (tmp_path / "audit.toml").write_text("[severity\n")
    with pytest.raises(UserError, match="not valid TOML"):
        policy.find(folder=str(tmp_path))


# -- through the CLI: fail-on, files, allowed findings (numpy float16 drifts on near ties) ----------

DRIFT = ["run", "-q", "--framework", "numpy", "--dtype", "float32,float16", "--repeats", "1",
         "--processes", "1", "--cases", "near-tie"]


@pytest.mark.slow
def test_drift_warnings_pass_by_default_and_fail_at_warning(audit):
    result = audit(*DRIFT)
    assert result.code == 0, result.out
    document = result.results
    drift = [f for f in document["findings"] if f["kind"] == "precision_drift"]
    assert drift and {f["severity"] for f in drift} == {"warning"}
    assert document["summary"]["verdict"] == "pass"
    assert document["summary"]["fail_on"] == "error"
    assert document["metadata"]["policy"] == "defaults"

    result = audit(*DRIFT, "--fail-on", "warning")
    assert result.code == 1
    assert result.results["summary"]["failing"] == len(drift)
    assert "FAIL" in result.out and "--fail-on warning" in result.out


@pytest.mark.slow
def test_fail_on_from_audit_toml_and_the_command_line_wins(audit, tmp_path):
    (tmp_path / "audit.toml").write_text('fail-on = "warning"\n')
    result = audit(*DRIFT)
    assert result.code == 1
    assert result.results["metadata"]["policy"].endswith("audit.toml")
    assert result.results["summary"]["fail_on"] == "warning"
    assert audit(*DRIFT, "--fail-on", "error").code == 0


@pytest.mark.slow
def test_fail_on_from_pyproject(audit, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "mine"\n[tool.argmax-audit]\nfail-on = "warning"\n')
    result = audit(*DRIFT)
    assert result.code == 1
    assert result.results["metadata"]["policy"].endswith("pyproject.toml")


@pytest.mark.slow
def test_allowed_drift_passes_at_warning_and_says_why(audit, tmp_path):
    (tmp_path / "audit.toml").write_text(
        'fail-on = "warning"\n[[allow]]\nkind = "precision_drift"\ntarget = "numpy/*/float16"\n'
        'case = "near-*"\nreason = "we serve float16 and accept flips on near ties"\n')
    result = audit(*DRIFT)
    assert result.code == 0, result.out
    document = result.results
    drift = [f for f in document["findings"] if f["kind"] == "precision_drift"]
    assert drift and all(f["allowed"] == "we serve float16 and accept flips on near ties"
                         for f in drift)
    assert document["summary"]["allowed"] == len(drift)
    assert document["summary"]["by_severity"]["warning"] == 0
    assert "allowed by policy" in result.out


@pytest.mark.slow
def test_severity_and_threshold_from_config(audit, tmp_path):
    config = tmp_path / "strict.toml"
    config.write_text('[severity]\nprecision_drift = "error"\n'
                      '[thresholds]\nmax_flip_rate = { float16 = 0.01 }\n')
    result = audit(*DRIFT, "--config", str(config))
    assert result.code == 1
    drift = [f for f in result.results["findings"] if f["kind"] == "precision_drift"]
    assert {f["severity"] for f in drift} == {"error"}
    assert any("more than the 1.00% the policy tolerates" in f["message"] for f in drift)


@pytest.mark.slow
def test_policy_applies_to_a_saved_bundle(audit):
    """Policies judge bundles: the same observations, read back, under another policy."""
    result = audit(*DRIFT)
    observations, _, _ = bundle.read(result.bundle)
    rules = _parse({"severity": {"precision_drift": "error"}})
    summary = summarize(observations, rules.apply(checks.run_checks(observations)), "error")
    assert summary["verdict"] == "fail"
    assert summary["by_severity"]["error"] == summary["by_kind"]["precision_drift"] > 0
    assert os.path.isfile(os.path.join(result.bundle, "results.json"))
