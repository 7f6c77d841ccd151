"""Shared fixtures: run the `audit` CLI in-process or as `python -m auditor`, read its bundle."""
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

#: Tests keep no compiled code across runs (in ~/.cache): each audit compiles as a first one would.
os.environ.setdefault("ARGMAX_AUDIT_COMPILE_CACHE", "off")

IMPLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "impls")
#: The smallest useful run: numpy imports fast, one dtype, few calls, one process.
SMALL = ["run", "-q", "--framework", "numpy", "--dtype", "float32", "--repeats", "2",
         "--processes", "1"]


@dataclass
class Result:
    """What one `audit` invocation left: exit code, stdout, stderr and the bundle folder."""

    code: int
    out: str
    err: str
    bundle: str | None = None

    @property
    def results(self):
        with open(os.path.join(self.bundle, "results.json"), encoding="utf-8") as handle:
            return json.load(handle)


def impl_spec(file, function="argmax", framework="numpy"):
    """Return the --impl value for `function` in tests/impls/`file` (an absolute path)."""
    return f"{framework}:{os.path.join(IMPLS, file)}:{function}"


def impl_target(file, function="argmax", framework="numpy", dtype="float32"):
    """Return the target id the audit gives `function` of tests/impls/`file`."""
    return f"{framework}[{os.path.join(IMPLS, file)}:{function}]/cpu/{dtype}"


@pytest.fixture
def audit(capsys, tmp_path, monkeypatch):
    """Return a function that runs `auditor.cli.main(args)` in `tmp_path` and returns a Result.

    `--out` defaults to `tmp_path/bundle` for `run`; the working folder is `tmp_path`, so no
    audit.toml or pyproject.toml of the repository is picked up.
    """
    from auditor.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args, out=True):
        args = list(args)
        bundle = None
        if args and args[0] == "run" and out and "--out" not in args:
            bundle = str(tmp_path / "bundle")
            args += ["--out", bundle]
        elif "--out" in args:
            bundle = args[args.index("--out") + 1]
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        captured = capsys.readouterr()
        code = exit_info.value.code
        return Result(0 if code is None else int(code), captured.out, captured.err, bundle)

    return run


@pytest.fixture(scope="session")
def audit_subprocess():
    """Return a function that runs `python -m auditor ARGS` in folder `cwd` and returns a Result."""

    def run(args, cwd, timeout=300):
        done = subprocess.run([sys.executable, "-m", "auditor", *args], cwd=cwd, text=True,
                              capture_output=True, timeout=timeout)
        bundle = args[args.index("--out") + 1] if "--out" in args else None
        if bundle and not os.path.isabs(bundle):
            bundle = os.path.join(cwd, bundle)
        return Result(done.returncode, done.stdout, done.stderr, bundle)

    return run


def one_line_error(result):
    """Assert `result` is a user error: exit 2 and one 'audit: error:' line, no traceback."""
    assert result.code == 2, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("audit: error:"), result.err
    assert "Traceback" not in result.err + result.out
    return lines[0]


def blamed(finding):
    """Return the targets `finding` (a results.json dict) holds at fault."""
    return finding["evidence"].get("blame") or finding["targets"]


def findings_of(document, target=None, kind=None):
    """Return the findings in results `document` that blame `target` and are of `kind`."""
    return [f for f in document["findings"]
            if (target is None or target in blamed(f)) and (kind is None or f["kind"] == kind)]


def observed_cases(document, target):
    """Return the ids of the cases `target` has observations of in results `document`."""
    return {r["case"] for r in document["observations"] if r["target"] == target}


@pytest.fixture(scope="session")
def helpers():
    """The plain helper functions above, for test modules (no tests/__init__.py to import from)."""

    class Helpers:
        pass

    for fn in (blamed, impl_spec, impl_target, one_line_error, findings_of, observed_cases):
        setattr(Helpers, fn.__name__, staticmethod(fn))
    Helpers.SMALL = SMALL
    Helpers.IMPLS = IMPLS
    return Helpers
