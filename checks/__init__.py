"""The checks: one module each, a pure function from observations to findings."""
from . import api, consistency, crash, determinism, precision, reference, regression

#: Every check, in the order findings are reported (regression only runs with a baseline).
CHECKS = (crash, api, determinism, reference, consistency, precision, regression)


def run_checks(observations, options=None):
    """Return the findings of every check on `observations`."""
    findings = []
    for check in CHECKS:
        findings.extend(check.check(observations, options or {}))
    return findings
