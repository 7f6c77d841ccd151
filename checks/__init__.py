"""The checks: one module each, a pure function from observations to findings."""
from . import api, consistency, crash, determinism, precision, reference

#: Every check, in the order findings are reported.
CHECKS = (crash, api, determinism, reference, consistency, precision)


def run_checks(observations, options=None):
    """Return the findings of every check on `observations`."""
    findings = []
    for check in CHECKS:
        findings.extend(check.check(observations, options or {}))
    return findings
