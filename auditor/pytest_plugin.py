"""The pytest plugin (entry point `pytest11: argmax_audit`): audit your argmax inside a test.

    def test_my_kernel(argmax_audit):
        argmax_audit(my_ext.argmax, framework="torch", dtypes=["float32", "float16"])

The fixture runs `auditor.audit` with the implementation (and the framework's own argmax beside
it, as `audit run --impl` does) and fails the test with the findings' sentences and a reproducer
when any at or above `fail_on` (default error) is not allowed by the policy; otherwise it returns
the Result. `--argmax-audit-out DIR` keeps each failing audit's bundle and HTML report in
DIR/<test id>; `--argmax-audit-suite full` runs the full suite. Disable with `-p no:argmax_audit`.
"""
import os
import re
import shutil

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("argmax-audit", "argmax-audit: the argmax_audit fixture")
    group.addoption("--argmax-audit-out", metavar="DIR", default=None,
                    help="Keep each failing audit's results bundle and HTML report in "
                         "DIR/<test id> (one folder per test).")
    group.addoption("--argmax-audit-suite", choices=("quick", "full"), default="quick",
                    help="The built-in suite the argmax_audit fixture runs (default: quick).")


def folder_name(nodeid):
    """Return a folder name for test `nodeid`: its characters outside [A-Za-z0-9._-] as '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("_") or "test"


@pytest.fixture
def argmax_audit(request, tmp_path):
    """Return `run(*impls, framework=None, fail_on="error", **audit_arguments)`: audit the
    implementations (callables or FRAMEWORK:MODULE:FUNCTION strings) and fail the test on
    findings at or above `fail_on`; returns the Result otherwise. Other arguments are those of
    `auditor.audit` (dtypes, devices, variants, ops, cases, repeats, processes, inputs, ...)."""
    from auditor.api import audit
    from auditor.errors import AuditFailed, UserError

    keep = request.config.getoption("argmax_audit_out")
    calls = []

    def run(*impls, framework=None, fail_on="error", **arguments):
        if framework is not None:
            arguments.setdefault("frameworks", [framework])
        arguments.setdefault("suite", request.config.getoption("argmax_audit_suite"))
        calls.append(None)
        name = folder_name(request.node.nodeid) + (f"-{len(calls)}" if len(calls) > 1 else "")
        out = tmp_path / f"argmax-audit-{len(calls)}"
        try:
            result = audit(impls=list(impls), out=str(out), **arguments)
        except UserError as exc:
            pytest.fail(f"argmax_audit: {exc}", pytrace=False)
        try:
            result.raise_for_findings(fail_on)
        except AuditFailed as exc:
            where = _keep(result, out, os.path.join(keep, name)) if keep else None
            pytest.fail(str(exc) + (f"\n\nbundle and report: {where}" if where else ""),
                        pytrace=False)
        return result

    return run


def _keep(result, out, target):
    """Write the HTML report into bundle `out`, copy the bundle to `target`; return `target`."""
    from auditor import files
    from auditor.reports import html

    files.write_text(os.path.join(out, "report.html"), html.render(result.document), "HTML report",
                     streams=False)
    if os.path.lexists(target):
        shutil.rmtree(target)
    shutil.copytree(out, target)
    return target
