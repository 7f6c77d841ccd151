"""Rules of the command line's edge: every failure is one line on stderr and a documented exit code
(0 ok, 2 usage, 3 the audit could not run); a bug of ours says so and hides its traceback."""
import click
import pytest

from auditor import cli
from auditor.errors import AuditError, ExitCode, UserError


def _main(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def _raising(monkeypatch, exc):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(cli.cli, "main", fail)


def test_help_is_printed_under_the_programs_name_and_exits_0(capsys):
    code, out, err = _main(capsys, ["run", "--help"])
    assert code == ExitCode.OK and out.startswith("Usage: audit run [OPTIONS]") and err == ""


def test_no_arguments_print_the_help_and_exit_2(capsys):
    code, out, err = _main(capsys, [])
    assert code == ExitCode.USAGE and out.startswith("Usage: audit [OPTIONS] COMMAND") and err == ""


def test_a_usage_mistake_in_a_command_points_to_its_help(capsys):
    code, out, err = _main(capsys, ["run", "--bogus"])
    assert code == ExitCode.USAGE and out == ""
    assert err.startswith("audit: error: No such option '--bogus'.")
    assert err.endswith(" (see 'audit run --help')\n")


def test_a_usage_mistake_at_the_top_names_no_command_help(capsys):
    code, out, err = _main(capsys, ["bogus"])
    assert code == ExitCode.USAGE and out == ""
    assert err == "audit: error: No such command 'bogus'.\n"


@pytest.mark.parametrize("exc, code, line", [
    (click.exceptions.Abort(), ExitCode.INTERNAL, "audit: aborted"),
    (click.ClickException("bad value"), ExitCode.USAGE, "audit: error: bad value"),
    (UserError("no such file"), ExitCode.USAGE, "audit: error: no such file"),
    (AuditError("worker gone\x1b[0m"), ExitCode.INTERNAL, "audit: error: worker gone\\x1b[0m"),
    (RuntimeError("boom\nline two"), ExitCode.INTERNAL,
     "audit: internal error: RuntimeError: boom\\nline two (set ARGMAX_AUDIT_DEBUG=1 for the "
     "traceback)"),
], ids=["abort", "click", "user", "audit", "internal"])
def test_each_failure_is_one_line_on_stderr_and_its_exit_code(
        capsys, monkeypatch, exc, code, line):
    monkeypatch.delenv("ARGMAX_AUDIT_DEBUG", raising=False)
    _raising(monkeypatch, exc)
    assert _main(capsys, ["run"]) == (code, "", line + "\n")


def test_a_bug_of_ours_shows_its_traceback_when_asked(capsys, monkeypatch):
    monkeypatch.setenv("ARGMAX_AUDIT_DEBUG", "1")
    _raising(monkeypatch, RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["run"])
