"""`audit report` and the CI outputs of `audit run` (--junit, --summary-md, --json)."""
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bundles")


@pytest.fixture
def every_kind(tmp_path):
    """A copy of the checked-in bundle with findings of every kind (report writes into it)."""
    return str(shutil.copytree(os.path.join(DATA, "every-kind"), tmp_path / "every-kind"))


def test_report_renders_a_saved_bundle_and_exits_like_the_run(audit, every_kind, tmp_path):
    result = audit("report", every_kind, "--junit", "j.xml", "--summary-md", "s.md",
                   "--json", "r.json")
    assert result.code == 1, result.err
    assert "FAIL:" in result.out and f"HTML report: {every_kind}/report.html" in result.out
    page = (tmp_path / "every-kind" / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    with open(os.path.join(every_kind, "results.json"), encoding="utf-8") as handle:
        assert json.loads((tmp_path / "r.json").read_text()) == json.load(handle)
    assert ET.parse(tmp_path / "j.xml").getroot().tag == "testsuites"
    assert "FAIL" in (tmp_path / "s.md").read_text()


def test_report_writes_where_output_says(audit, tmp_path):
    clean = os.path.join(DATA, "clean")
    result = audit("report", clean, "-o", "page.html")
    assert result.code == 0, result.err
    assert (tmp_path / "page.html").is_file()
    assert not os.path.exists(os.path.join(clean, "report.html"))


def test_report_fail_on_warning_turns_warnings_into_failures(audit, every_kind, tmp_path):
    document = json.load(open(os.path.join(every_kind, "results.json"), encoding="utf-8"))
    assert document["summary"]["by_severity"]["warning"] > 0
    audit("report", every_kind, "--fail-on", "warning", "--json", "r.json", "-o", "p.html")
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["fail_on"] == "warning"


def test_report_json_to_stdout_moves_the_summary_to_stderr(audit, every_kind):
    result = audit("report", every_kind, "--json", "-", "-o", "p.html")
    assert json.loads(result.out)["format_version"] == 1
    assert "FAIL:" in result.err


@pytest.mark.parametrize("damage, words", [
    ("missing", "is not a results bundle"),
    ("truncated", "unreadable or truncated"),
    ("version", "has format version 99"),
    ("not-a-bundle", "not an argmax-audit results document"),
    ("no-arrays", "arrays.npz: cannot read it"),
])
def test_report_refuses_a_damaged_bundle_in_one_line(audit, every_kind, helpers, damage, words):
    results = os.path.join(every_kind, "results.json")
    text = open(results, encoding="utf-8").read()
    if damage == "missing":
        os.remove(results)
    elif damage == "truncated":
        open(results, "w").write(text[: len(text) // 2])
    elif damage == "version":
        open(results, "w").write(text.replace('"format_version": 1', '"format_version": 99', 1))
    elif damage == "not-a-bundle":
        open(results, "w").write('["format_version"]')
    else:
        os.remove(os.path.join(every_kind, "arrays.npz"))
    line = helpers.one_line_error(audit("report", every_kind))
    assert words in line
    assert not os.path.exists(os.path.join(every_kind, "report.html"))


def test_outputs_in_a_missing_folder_are_refused_before_the_run(audit, helpers, tmp_path):
    for option in ("--junit", "--summary-md", "--json"):
        result = audit(*helpers.SMALL, option, "no/such/folder/out")
        assert "does not exist" in helpers.one_line_error(result)
    assert not (tmp_path / "bundle").exists()


def test_report_needs_no_framework(tmp_path):
    """Render with torch and jax unimportable, as on a machine without them."""
    blocker = tmp_path / "blocker"
    for name in ("torch", "jax", "jaxlib"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} is not here')\n")
    bundle = shutil.copytree(os.path.join(DATA, "every-kind"), tmp_path / "bundle")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "auditor", "report", str(bundle), "--junit",
                           str(tmp_path / "j.xml")], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert (bundle / "report.html").is_file() and (tmp_path / "j.xml").is_file()


@pytest.mark.slow
def test_run_writes_the_report_into_its_bundle_and_the_ci_files(audit, helpers, tmp_path):
    result = audit(*helpers.SMALL, "--cases", "ties-short,nan-rows", "--junit", "j.xml",
                   "--summary-md", "s.md", "--json", "r.json")
    assert result.code == 0, result.err
    assert (tmp_path / "bundle" / "report.html").is_file()
    document = json.loads((tmp_path / "r.json").read_text())
    assert document == result.results
    suites = ET.parse(tmp_path / "j.xml").getroot()
    assert suites.get("failures") == "0" and int(suites.get("tests")) >= 6
    assert "PASS" in (tmp_path / "s.md").read_text()


def test_a_killed_runs_checkpoint_is_checked_rendered_and_exits_3(audit, tmp_path):
    from auditor import bundle

    observations, _, document = bundle.read(os.path.join(DATA, "every-kind"))
    bundle.write(str(tmp_path / "killed"), observations, (), dict(document["metadata"],
                 complete=False), document["environment"], {"complete": False})
    result = audit("report", "killed", "--junit", "j.xml")
    assert result.code == 3
    assert "did not finish" in result.err and "INCOMPLETE" in result.out
    assert "FAIL:" in result.out  # the checks ran on what was measured
    assert (tmp_path / "killed" / "report.html").is_file()
    assert "complete" in (tmp_path / "j.xml").read_text()


@pytest.mark.parametrize("change, words", [
    (lambda d: d["findings"][0].update(kind="weird"), "findings[0].kind is 'weird', not one of"),
    (lambda d: d["findings"][0].update(evidence="x"), "evidence is a str"),
    (lambda d: d["findings"][0].update(targets=None), "findings[0].targets is null, not an array"),
    (lambda d: d.update(environment="x"), "environment is a str"),
    (lambda d: d["environment"].update(frameworks=[]), "environment.frameworks"),
    (lambda d: d["observations"][0].update(case="nope"), "observations[0].case names 'nope'"),
    (lambda d: d.pop("targets"), "the document has no 'targets'"),
])
def test_a_malformed_document_is_one_line_not_a_traceback(audit, every_kind, helpers, change,
                                                          words):
    results = os.path.join(every_kind, "results.json")
    document = json.load(open(results, encoding="utf-8"))
    change(document)
    json.dump(document, open(results, "w", encoding="utf-8"))
    line = helpers.one_line_error(audit("report", every_kind))
    assert "is malformed" in line and words in line


def test_only_json_goes_to_stdout(audit, every_kind, helpers):
    for option in ("--junit", "--summary-md", "-o"):
        line = helpers.one_line_error(audit("report", every_kind, option, "-"))
        assert "for --json only" in line


def _keys(findings):
    return {(f["kind"], tuple(f["targets"]), f["case"], f["severity"], f["allowed"])
            for f in findings}


def test_report_config_judges_the_saved_run_again_under_that_policy(audit, every_kind, tmp_path):
    """`audit report --config FILE` applies FILE's policy to the run's observations: the run's
    own policy gives back the saved findings; one that allows every failing kind passes."""
    with open(os.path.join(every_kind, "results.json"), encoding="utf-8") as handle:
        saved = json.load(handle)
    assert saved["metadata"]["policy"] == "defaults" and saved["summary"]["verdict"] == "fail"
    (tmp_path / "same.toml").write_text("[severity]\n")
    result = audit("report", every_kind, "--config", "same.toml", "--json", "same.json",
                   "-o", "same.html")
    assert result.code == 1, result.err
    again = json.loads((tmp_path / "same.json").read_text())
    assert _keys(again["findings"]) == _keys(saved["findings"])
    assert again["summary"]["by_severity"] == saved["summary"]["by_severity"]

    failing = sorted({f["kind"] for f in saved["findings"] if f["severity"] == "error"})
    (tmp_path / "lenient.toml").write_text(
        '[severity]\nprecision_drift = "error"\n' + "".join(
            f'[[allow]]\nkind = "{kind}"\nreason = "triaged"\n' for kind in failing
            if kind != "precision_drift"))
    result = audit("report", every_kind, "--config", "lenient.toml", "--json", "lenient.json",
                   "-o", "lenient.html")
    judged = json.loads((tmp_path / "lenient.json").read_text())
    drift = [f for f in judged["findings"] if f["kind"] == "precision_drift"]
    assert drift and all(f["severity"] == "error" and not f["allowed"] for f in drift)
    assert result.code == 1 and judged["summary"]["failing"] == len(drift)
    assert all(f["allowed"] == "triaged" for f in judged["findings"]
               if f["kind"] != "precision_drift" and f["severity"] != "info")
    assert judged["metadata"]["policy"].endswith("lenient.toml")
    assert "PASS" not in result.out and "allowed by the policy" in result.out

    (tmp_path / "pass.toml").write_text("".join(
        f'[[allow]]\nkind = "{kind}"\nreason = "triaged"\n' for kind in failing))
    result = audit("report", every_kind, "--config", "pass.toml", "-o", "pass.html")
    assert result.code == 0, result.out
    assert "PASS" in result.out
    with open(os.path.join(every_kind, "results.json"), encoding="utf-8") as handle:
        assert json.load(handle) == saved  # the bundle keeps the run's own verdict
