"""The JUnit report: valid against the Jenkins JUnit schema, counts that add up, failures right."""
import copy
import datetime
import json
import os
import re
import xml.etree.ElementTree as ET

import pytest
import xmlschema

from auditor.model import severity_rank
from auditor.reports import junit

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
HOSTILE = "<script>alert(1)</script> ]]> \x00\x1b | `x` *y* [z](w) &amp; \ufffe"
ENTRY = re.compile(r"^\[(error|warning|info)\] ", re.M)


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(os.path.join(DATA, "junit.xsd"))


def _load(name):
    with open(os.path.join(DATA, "bundles", name, "results.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _render(document, schema):
    """Render `document`, check it is valid against the schema, return the parsed root."""
    text = junit.render(document)
    schema.validate(text)
    return ET.fromstring(text)


def _testcase(root, owner, name):
    found = [case for case in root.iter("testcase")
             if case.get("classname") == junit.classname(owner) and case.get("name") == name]
    assert len(found) == 1, (owner, name)
    return found[0]


def _failing(document, level="error"):
    return [f for f in document["findings"]
            if not f["allowed"] and severity_rank(f["severity"]) >= severity_rank(level)]


def _entries(root):
    """Count the findings (or startup and run problems) the report lists as failures."""
    return sum(len(ENTRY.findall(failure.text)) or 1 for failure in root.iter("failure"))


def _blamed(finding):
    return list(dict.fromkeys(finding["evidence"].get("blame") or finding["targets"]))


def test_counts_in_every_suite_add_up(schema):
    root = _render(_load("every-kind"), schema)
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in cases)
        assert suite.get("errors") == "0"
        assert all(len(c.findall("failure")) <= 1 for c in cases)
    for key in ("tests", "failures", "errors"):
        assert int(root.get(key)) == sum(int(s.get(key)) for s in root.iter("testsuite"))


def test_one_test_per_target_and_check(schema):
    document = _load("every-kind")
    root = _render(document, schema)
    checks = ["crash", "api", "determinism", "reference", "consistency", "precision", "regression"]
    for target in document["targets"]:
        suite = root.find(f"testsuite[@name='{junit.classname(target['id'])}']")
        assert [c.get("name") for c in suite.findall("testcase")] == checks
        properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert properties["target"] == target["id"]
    assert _testcase(root, "run", "complete").find("failure") is None


def test_failures_are_the_error_findings_not_allowed(schema):
    document = _load("every-kind")
    root = _render(document, schema)
    failing = _failing(document)
    assert failing and _entries(root) == sum(len(_blamed(f)) for f in failing) == len(failing)
    assert int(root.get("failures")) == len({(t, f["check"]) for f in failing for t in _blamed(f)})
    for f in failing:
        failure = _testcase(root, _blamed(f)[0], f["check"]).find("failure")
        assert f["message"] in failure.text and f["reproducer"].splitlines()[0] in failure.text
    worst = _testcase(root, _blamed(failing[0])[0], failing[0]["check"]).find("failure")
    assert worst.get("message").split(": ", 1)[0] == worst.get("type")


def test_warnings_and_info_go_to_system_out_at_fail_on_error(schema):
    document = _load("every-kind")
    root = _render(document, schema)
    drift = next(f for f in document["findings"] if f["severity"] == "warning")
    case = _testcase(root, _blamed(drift)[0], drift["check"])
    assert case.find("failure") is None and drift["message"] in case.find("system-out").text
    info = next(f for f in document["findings"] if f["severity"] == "info")
    notes = _testcase(root, _blamed(info)[0], info["check"]).find("system-out").text
    assert info["message"] in notes


def test_clean_bundle_has_no_failures(schema):
    document = _load("clean")
    root = _render(document, schema)
    assert root.get("failures") == "0" and root.find(".//failure") is None
    assert int(root.get("tests")) == 6 * len(document["targets"]) + 1


def test_warnings_fail_at_fail_on_warning(schema):
    document = copy.deepcopy(_load("every-kind"))
    document["summary"]["fail_on"] = "warning"
    root = _render(document, schema)
    warnings = [f for f in _failing(document, "warning") if f["severity"] == "warning"]
    assert warnings and _entries(root) == len(_failing(document)) + len(warnings)
    for f in warnings:
        assert f["message"] in _testcase(root, _blamed(f)[0], "precision").find("failure").text


def test_allowed_findings_are_notes_with_their_reason(schema):
    document = copy.deepcopy(_load("every-kind"))
    target = _blamed(_failing(document)[0])[0]
    for f in document["findings"]:
        if target in _blamed(f):
            f["allowed"] = "known: the kernel is being rewritten"
    root = _render(document, schema)
    suite = root.find(f"testsuite[@name='{junit.classname(target)}']")
    assert suite.get("failures") == "0" and suite.find(".//failure") is None
    notes = "\n".join(out.text for out in suite.iter("system-out"))
    assert "(allowed by the policy: known: the kernel is being rewritten)" in notes


def test_startup_error_fails_a_startup_test_once(schema):
    document = copy.deepcopy(_load("clean"))
    document["startup_errors"] = {"torch": "ImportError: libcudart.so.12\x1b[0m not found"}
    root = _render(document, schema)
    failure = _testcase(root, "torch", "startup").find("failure")
    assert root.get("failures") == "1" and "libcudart.so.12\\x1b[0m" in failure.get("message")
    document["findings"].append({
        "check": "crash", "kind": "crash", "severity": "error", "allowed": None, "case": None,
        "message": "torch is installed but its worker could not start: ImportError",
        "targets": ["torch"], "positions": [], "count": 1, "evidence": {"error": "ImportError"},
        "reproducer": ""})
    root = _render(document, schema)
    assert root.get("failures") == "1" and _entries(root) == 1
    assert "its worker could not start" in _testcase(root, "torch", "startup").find("failure").text


def test_unavailable_frameworks_and_skipped_targets_are_skipped(schema):
    document = copy.deepcopy(_load("clean"))
    document["environment"]["unavailable"] = {"jax": "not installed (pip install jax)"}
    document["metadata"]["skipped"] = ["torch/cpu/float64: not supported"]
    root = _render(document, schema)
    assert _testcase(root, "jax", "startup").find("skipped").text.startswith("not audited")
    assert _testcase(root, "torch/cpu/float64", "startup").find("skipped").text == (
        "skipped: not supported")
    assert sum(int(s.get("skipped")) for s in root.iter("testsuite")) == 2
    assert root.get("failures") == "0"


def test_an_interrupted_run_fails_the_complete_test(schema):
    document = copy.deepcopy(_load("clean"))
    document["summary"]["complete"] = False
    assert _testcase(_render(document, schema), "run", "complete").find("failure") is not None
    checkpoint = dict(document, summary={"complete": False}, findings=[])
    checkpoint["metadata"] = dict(document["metadata"], complete=False)
    root = _render(checkpoint, schema)
    assert root.get("failures") == "1"


def test_time_timestamp_and_hostname(schema):
    document = _load("every-kind")
    root = _render(document, schema)
    for suite in root.iter("testsuite"):
        assert float(suite.get("time")) >= 0
        assert suite.get("hostname") == document["environment"]["host"]
        assert datetime.datetime.fromisoformat(suite.get("timestamp")).tzinfo is not None
    assert float(root.get("time")) == pytest.approx(document["metadata"]["seconds"], abs=1e-3)
    first = root.find("testsuite")
    assert float(first.get("time")) > 0


def _replace(value, old, new):
    """Return `value` with `old` replaced by `new` in every string it holds."""
    if isinstance(value, dict):
        return {_replace(k, old, new): _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value.replace(old, new) if isinstance(value, str) else value


def test_hostile_strings_give_well_formed_valid_xml(schema):
    document = _load("every-kind")
    victim = _blamed(_failing(document)[0])[0]
    hostile_target = f"numpy[{HOSTILE}]/cpu/float32"
    document = _replace(document, victim, hostile_target)
    document = _replace(document, "ties-short", f"ties {HOSTILE}")
    document["findings"][0]["message"] = f"{HOSTILE}\n{document['findings'][0]['message']}"
    text = junit.render(document)
    assert "<script" not in text and "\x00" not in text and "\x1b" not in text
    root = ET.fromstring(text)
    schema.validate(text)
    seen = junit.clean(hostile_target)
    assert "\\x00\\x1b" in seen and "\\ufffe" in seen
    suite = next(s for s in root.iter("testsuite")
                 if any(p.get("value") == seen for p in s.iter("property")))
    assert suite.get("name") == junit.classname(seen) and suite.find(".//failure") is not None
    assert any("<script>alert(1)</script> ]]>" in (f.text or "") for f in root.iter("failure"))
    assert _entries(root) >= len(_failing(document))
