"""The tool's own errors and the exit codes they map to (DESIGN.md's contract)."""
import enum


class ExitCode(enum.IntEnum):
    #: Nothing at or above the `--fail-on` level was found.
    OK = 0
    #: Findings at or above the `--fail-on` level.
    FINDINGS = 1
    #: The user's mistake: bad option, unreadable file, unknown framework/device/dtype.
    USAGE = 2
    #: The audit itself could not run.
    INTERNAL = 3


class AuditError(Exception):
    """Base of the tool's own errors; the CLI prints the message on one line."""

    exit_code = ExitCode.INTERNAL


class UserError(AuditError):
    """Something the user asked for or gave us is wrong; the message says how to fix it."""

    exit_code = ExitCode.USAGE


class BundleError(UserError):
    """A results bundle is missing, truncated, or of a format this version cannot read."""


class CouldNotRun(AuditError):
    """The audit could not run (no framework could start, the output could not be written)."""


class AuditFailed(AssertionError):
    """Findings at or above a level that the policy does not allow (`Result.raise_for_findings`):
    the message holds the worst findings' sentences and a reproducer; `.result` the Result."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result
