"""Rules of the policy file: every mistake is one line naming the place, what is wanted and what
was found; a policy applies severities to default and documented findings, never to the info view."""
import pytest

from auditor import policy
from auditor.errors import UserError
from auditor.model import Finding

KINDS = ("nondeterministic, wrong_index, tie_break, nan_policy, precision_drift, api_mismatch, "
         "crash, regression")
RATES = "max_flip_rate wants {float16 = 0.01, bfloat16 = 0.05} with rates in 0..1, got float16 = "


@pytest.mark.parametrize("data, message", [
    (5, "audit.toml must be a table, got int 5"),
    ({"severity": "error"}, "audit.toml: severity must be a table, got str 'error'"),
    ({"allow": {"kind": "crash"}},
     "audit.toml: allow must be an array of tables, got dict {'kind': 'crash'}"),
    ({"thresholds": 0.5}, "audit.toml: thresholds must be a table, got float 0.5"),
    ({"thresholds": {"max_flip_rate": 0.5}},
     "audit.toml: max_flip_rate must be a table, got float 0.5"),
    ({"allow": [{"kind": "crash", "reason": 5}]},
     "audit.toml: [[allow]] #1: reason must be a string, got int 5"),
    ({"allow": [{"kind": "crash", "reason": "ok", "case": ["a"]}]},
     "audit.toml: [[allow]] #1: case must be a string, got list ['a']"),
    ({"fail_on": 1},
     "audit.toml: unknown key 'fail_on'; known keys: allow, fail-on, severity, thresholds"),
    ({"severity": {"nan": "error"}},
     f"audit.toml: [severity] names unknown kind 'nan'; kinds: {KINDS}"),
    ({"severity": {"crash": "critical"}},
     "audit.toml: [severity] crash must be one of info, warning, error, got 'critical'"),
    ({"allow": [{"kind": "segfault", "reason": "ok"}]},
     f"audit.toml: [[allow]] #1: kind must be one of {KINDS}, got 'segfault'"),
    ({"thresholds": {"max_flip_rate": {"float16": 1.5}}}, f"audit.toml: {RATES}1.5"),
    ({"thresholds": {"max_flip_rate": {"float16": "x" * 58}}},  # a repr of 60 characters
     f"audit.toml: {RATES}'{'x' * 58}'"),
    ({"thresholds": {"max_flip_rate": {"float16": "x" * 59}}},  # cut to 60 with its ellipsis
     f"audit.toml: {RATES}'{'x' * 56}..."),
], ids=lambda value: None if isinstance(value, str) else str(value)[:40])
def test_a_policy_mistake_names_the_place_what_is_wanted_and_what_was_found(data, message):
    with pytest.raises(UserError) as info:
        policy.parse(data, "audit.toml")
    assert str(info.value) == message


def test_flip_rate_limits_run_from_0_to_1_inclusive():
    rules = policy.parse({"thresholds": {"max_flip_rate": {"float16": 1, "bfloat16": 0}}}, "a")
    assert rules.max_flip_rate == {"float16": 1.0, "bfloat16": 0.0}


@pytest.mark.parametrize("name, text, message", [
    ("audit.toml", b'a = "\xff"\n', "audit.toml: not UTF-8 text: invalid start byte at byte 5"),
    ("audit.toml", b"a = \n", "audit.toml: not valid TOML: Invalid value (at line 1, column 5)"),
    ("audit.toml", b"a = " + b"[" * 2000 + b"]" * 2000 + b"\n",
     "audit.toml: not a policy: its tables or arrays nest too deep"),
    ("pyproject.toml", b"tool = 5\n", "pyproject.toml: tool must be a table, got int"),
], ids=["utf8", "toml", "deep", "tool"])
def test_a_policy_file_that_cannot_be_read_is_one_line_naming_the_file(
        tmp_path, monkeypatch, name, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(text)
    with pytest.raises(UserError) as info:
        policy.load(name)
    assert str(info.value) == message


def test_a_policy_path_that_is_a_folder_is_refused_as_a_policy_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit.toml").mkdir()
    with pytest.raises(UserError) as info:
        policy.load("audit.toml")
    assert str(info.value) == "policy file audit.toml is a folder, not a regular file"


def test_a_pyproject_without_a_tool_table_is_no_policy(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert policy.load(str(tmp_path / "pyproject.toml")) is None
    assert policy.find(None, str(tmp_path)).source == "defaults"


def _finding(severity, documented=False, case="ties-short"):
    evidence = {"documented": {"url": "u"}} if documented else {}
    return Finding(check="t", kind="tie_break", message="m", targets=["torch.topk/cpu/float32"],
                   case=case, severity=severity, evidence=evidence)


@pytest.mark.parametrize("severity, documented, rule, after", [
    ("error", False, "info", "info"),         # the kind's default severity: the rule applies
    ("warning", False, "info", "warning"),    # not the default (set elsewhere): left alone
    ("warning", True, "error", "error"),      # a documented twin difference: the rule applies
    ("info", True, "error", "info"),          # the cross-target view stays info, documented or not
])
def test_a_severity_rule_changes_default_and_documented_findings_never_info(
        severity, documented, rule, after):
    rules = policy.parse({"severity": {"tie_break": rule}}, "a")
    (finding,) = rules.apply([_finding(severity, documented)])
    assert finding.severity == after


def test_a_case_pattern_matches_a_finding_without_a_case_as_an_empty_id():
    rules = policy.parse({"allow": [{"kind": "tie_break", "case": "?*", "reason": "r"}]}, "a")
    assert rules.apply([_finding("error", case=None)])[0].allowed is None
    rules = policy.parse({"allow": [{"kind": "tie_break", "case": "*", "reason": "r"}]}, "a")
    assert rules.apply([_finding("error", case=None)])[0].allowed == "r"


def test_unused_allow_rules_are_listed_by_number_with_what_they_name():
    rules = policy.parse({"allow": [
        {"kind": "tie_break", "reason": "used"},
        {"kind": "crash", "target": "jax/*", "case": "big-*", "reason": "never seen"},
        {"kind": "nan_policy", "case": "nan-*", "reason": "never seen"}]}, "a")
    assert rules.unused([_finding("error")]) == [
        "[[allow]] #2 (kind = 'crash', target = 'jax/*', case = 'big-*')",
        "[[allow]] #3 (kind = 'nan_policy', case = 'nan-*')"]


def test_an_explicit_config_without_a_policy_table_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.black]\nline-length = 99\n')
    with pytest.raises(UserError) as info:
        policy.find("pyproject.toml")
    assert str(info.value) == "--config pyproject.toml has no [tool.argmax-audit] table"
