"""The JUnit XML report: one test suite per target, one test case per check, for CI test views.

Why a suite per target: a target (framework x device x dtype x variant x environment) is what a
user fixes or allows, so Jenkins, GitLab and the GitHub reporters (dorny/test-reporter,
mikepenz/action-junit-report) then show at a glance which targets fail and of which checks, and
the test identity `argmax-audit.<target>` / `<check>` stays the same from run to run, which is
what Jenkins keys its history on. The suite name equals the test classname, so dorny lists the
checks straight under the suite. Dots in the target id become `_` in the classname because Jenkins
and mikepenz split a classname at its last dot (`faulty.py:raises` would read as class
`py:raises`); the exact id is the suite's `target` property.

One `<failure>` per failing test case, not per finding: Jenkins, dorny and mikepenz show only the
first `<failure>` of a test case. Its message is the worst finding's sentence (and how many more
fail the same test); its text holds every failing finding with case, positions, evidence and
reproducer. A finding fails when it is not allowed by the policy and its severity is at or above
`summary.fail_on`; other findings go to the test case's `<system-out>`, allowed ones with their
reason. A framework whose worker never started fails a `startup` test in a suite of its own; an
unavailable framework or a skipped target is a skipped `startup` test; `argmax-audit.run` /
`complete` fails when the run was interrupted. Checks run on saved observations, so test cases
take 0 s; a target suite's time is the time measured running that target.
"""
import datetime
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from auditor.checks import CHECKS
from auditor.model import severity_rank

PREFIX = "argmax-audit"
# Characters XML 1.0 cannot hold, not even as character references.
_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
_EVIDENCE_CHARS = 400


@dataclass
class Test:
    """One test case to write: its findings split into failing ones and notes."""

    suite: str
    name: str
    failing: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    skipped: str | None = None
    problem: str | None = None  # a failure without a finding: startup error, interrupted run

    @property
    def failed(self):
        return bool(self.failing or self.problem)


def clean(text):
    """Return `text` as a string XML 1.0 can hold, each forbidden character as a visible escape."""
    def escape(match):
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return _FORBIDDEN.sub(escape, str(text))


def classname(owner):
    """Return the test classname for target or framework `owner` (no dot inside the owner)."""
    return f"{PREFIX}.{owner.replace('.', '_')}"


def _fails(finding, fail_on):
    return not finding["allowed"] and severity_rank(finding["severity"]) >= severity_rank(fail_on)


def _check_names(document):
    """Return the test names: every check (regression only where there was a baseline)."""
    findings = document.get("findings", [])
    names = [check.NAME for check in CHECKS]
    if not (document.get("metadata") or {}).get("baseline"):
        names.remove("regression")
    return names + sorted({f["check"] for f in findings} - set(names))


def _buckets(document):
    """Return {(owner, test name): findings}: each finding under every target it blames."""
    startup = document.get("startup_errors") or {}
    buckets = {}
    for f in document.get("findings", []):
        for owner in dict.fromkeys(f["evidence"].get("blame") or f["targets"]):
            buckets.setdefault((owner, "startup" if owner in startup else f["check"]), []).append(f)
    return buckets


def _fill(test, findings, fail_on):
    failing = [f for f in findings if _fails(f, fail_on)]
    test.failing = sorted(failing, key=lambda f: -severity_rank(f["severity"]))
    test.notes = [f for f in findings if not _fails(f, fail_on)]
    return test


def _owners(document, buckets):
    """Return the target ids in report order: those run, then any other a finding blames."""
    startup = document.get("startup_errors") or {}
    ids = [t["id"] for t in document.get("targets", [])]
    ids += [row["target"] for row in document.get("summary", {}).get("targets", [])]
    ids += [owner for owner, _ in buckets if owner not in startup]
    return list(dict.fromkeys(ids))


def _startup_tests(document, buckets, fail_on):
    """Return a `startup` test per framework that failed to start, was unavailable or skipped."""
    tests = []
    for framework, why in (document.get("startup_errors") or {}).items():
        test = _fill(Test(framework, "startup"), buckets.get((framework, "startup"), []), fail_on)
        if not test.failing and not test.notes:
            test.problem = f"{framework} is installed but its worker could not start: {why}"
        tests.append(test)
    for framework, why in document.get("environment", {}).get("unavailable", {}).items():
        tests.append(Test(framework, "startup", skipped=f"not audited: {why}"))
    for entry in document.get("metadata", {}).get("skipped", []):
        target, _, why = str(entry).partition(": ")
        tests.append(Test(target, "startup", skipped=f"skipped: {why or entry}"))
    return tests


def _complete_test(document):
    """Return the `complete` test, failing when the run was interrupted."""
    parts = (document.get("summary", {}), document.get("metadata", {}))
    if all(part.get("complete", True) for part in parts):
        return Test("run", "complete")
    return Test("run", "complete", problem=(
        "the run did not finish; the bundle holds only what was measured before it stopped"))


def _tests(document, fail_on):
    """Return every Test of the report, target suites first, then startup, then the run."""
    buckets = _buckets(document)
    checks = _check_names(document)
    tests = [_fill(Test(owner, check), buckets.get((owner, check), []), fail_on)
             for owner in _owners(document, buckets) for check in checks]
    return tests + _startup_tests(document, buckets, fail_on) + [_complete_test(document)]


def _case_line(case_id, cases):
    case = cases.get(case_id)
    if case is None:
        return f"case: {case_id}"
    keep = ", keepdim" if case.get("keepdim") else ""
    tags = ", ".join(case.get("tags", [])) or "none"
    return f"case: {case_id} (shape {case.get('shape')}, dim {case.get('dim')}{keep}; tags {tags})"


def _positions(finding):
    shown = ", ".join(str(pos[0]) if len(pos) == 1 else "(" + ", ".join(map(str, pos)) + ")"
                      for pos in finding["positions"])
    return f"positions ({finding.get('count') or len(finding['positions'])}): {shown}"


def _evidence(evidence):
    lines = ["evidence:"]
    for key, value in evidence.items():
        text = json.dumps(value, default=str)
        if len(text) > _EVIDENCE_CHARS:
            text = text[:_EVIDENCE_CHARS] + " ..."
        lines.append(f"  {key}: {text}")
    return lines


def describe(finding, cases):
    """Return the text a report gives one finding: sentence, case, positions, evidence, code."""
    lines = [f"[{finding['severity']}] {finding['kind']} ({finding['check']} check): "
             f"{finding['message']}", f"targets: {', '.join(finding['targets'])}"]
    if finding.get("case"):
        lines.append(_case_line(finding["case"], cases))
    if finding["positions"]:
        lines.append(_positions(finding))
    if finding["evidence"]:
        lines += _evidence(finding["evidence"])
    if finding.get("reproducer"):
        lines.append("reproducer:")
        lines += ["    " + line for line in finding["reproducer"].splitlines()]
    return "\n".join(lines)


def _note(finding):
    where = f" [case {finding['case']}]" if finding.get("case") else ""
    if finding["allowed"]:
        return (f"allowed {finding['kind']}: {finding['message']}{where} "
                f"(allowed by the policy: {finding['allowed']})")
    return f"{finding['severity']} {finding['kind']}: {finding['message']}{where}"


def _add(parent, tag, text=None, **attributes):
    node = ET.SubElement(parent, tag, {key: clean(value) for key, value in attributes.items()})
    if text is not None:
        node.text = clean(text)
    return node


def _failure(node, test, cases):
    if not test.failing:
        _add(node, "failure", test.problem, message=test.problem,
             type="crash" if test.name == "startup" else "incomplete")
        return
    worst, more = test.failing[0], len(test.failing) - 1
    message = _LINE_BREAKS.sub(" ", f"{worst['kind']}: {worst['message']}")
    if more:
        message += f" (and {more} more failing finding{'s' if more > 1 else ''} in this test)"
    body = "\n\n".join(describe(f, cases) for f in test.failing)
    _add(node, "failure", body, message=message, type=worst["kind"])


def _testcase(suite, test, cases):
    node = _add(suite, "testcase", classname=classname(test.suite), name=test.name, time="0.000")
    if test.skipped:
        _add(node, "skipped", test.skipped)
    if test.failed:
        _failure(node, test, cases)
    if test.notes:
        _add(node, "system-out", "\n".join(_note(f) for f in test.notes))


def _seconds(document):
    """Return {target id: seconds measured running it (calls and harness)}."""
    seconds = {}
    for record in document.get("observations", []):
        timing = record.get("timing") or {}
        spent = sum(timing.get(key) or 0.0 for key in ("call_s", "harness_s"))
        seconds[record["target"]] = seconds.get(record["target"], 0.0) + spent
    return seconds


def _properties(document, owner):
    """Return [(name, value)] describing target or framework `owner`."""
    target = next((t for t in document.get("targets", []) if t["id"] == owner), None)
    row = next((r for r in document.get("summary", {}).get("targets", [])
                if r["target"] == owner), {})
    pairs = [("target" if target or row else "name", owner)]
    pairs += [(k, v) for k, v in (target or {}).items() if k != "id" and v is not None]
    pairs += [(k, row[k]) for k in ("cases", "calls", "tie_policy", "nan_policy") if k in row]
    rate = document.get("summary", {}).get("precision", {}).get(owner)
    if rate:
        pairs.append(("flip_rate_vs_float32", rate["rate"]))
    return pairs


def _run_properties(document):
    metadata, environment = document.get("metadata", {}), document.get("environment", {})
    pairs = [("tool", environment.get("tool", {}).get("version")),
             ("python", environment.get("python")), ("platform", environment.get("platform")),
             ("command", " ".join(metadata.get("command", [])) or None),
             ("policy", metadata.get("policy")),
             ("fail_on", document.get("summary", {}).get("fail_on") or metadata.get("fail_on")),
             ("format_version", document.get("format_version"))]
    pairs += [(f"unused_policy_rule_{i + 1}", rule)
              for i, rule in enumerate(metadata.get("policy_unused", []))]
    return [(k, v) for k, v in pairs if v is not None]


def _timestamp(created):
    try:
        return datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z").isoformat()
    except (TypeError, ValueError):
        return None


def _add_properties(suite, pairs):
    if pairs:
        properties = _add(suite, "properties")
        for name, value in pairs:
            _add(properties, "property", name=name, value=value)


def _suite(root, document, owner, tests, seconds):
    stamp = _timestamp(document.get("metadata", {}).get("created"))
    attributes = {"name": classname(owner), "tests": str(len(tests)),
                  "failures": str(sum(t.failed for t in tests)), "errors": "0",
                  "skipped": str(sum(bool(t.skipped) for t in tests)), "time": f"{seconds:.3f}",
                  **({"timestamp": stamp} if stamp else {}),
                  "hostname": document.get("environment", {}).get("host") or "localhost"}
    suite = _add(root, "testsuite", **attributes)
    _add_properties(suite, _run_properties(document) if owner == "run" else
                    _properties(document, owner))
    cases = {c["id"]: c for c in document.get("cases", [])}
    for test in tests:
        _testcase(suite, test, cases)


def render(document):
    """Return the JUnit XML for results `document`, failing what fails at its `--fail-on`."""
    fail_on = document.get("summary", {}).get("fail_on") or "error"
    tests = _tests(document, fail_on)
    suites = {}
    for test in tests:
        suites.setdefault(test.suite, []).append(test)
    seconds = _seconds(document)
    run_seconds = document.get("metadata", {}).get("seconds") or sum(seconds.values())
    root = ET.Element("testsuites", {
        "name": PREFIX, "tests": str(len(tests)), "failures": str(sum(t.failed for t in tests)),
        "errors": "0", "time": f"{run_seconds:.3f}"})
    for owner, members in suites.items():
        total = run_seconds if owner == "run" else seconds.get(owner, 0.0)
        _suite(root, document, owner, members, total)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
