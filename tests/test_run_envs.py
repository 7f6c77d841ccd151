"""`audit run --env/--python`: other numpy versions audited next to this one, in real environments.

One environment with another numpy is made once per session with the tool itself. The faults are
planted into it with a `.pth` file (run at the interpreter's start, as a sitecustomize would):
numpy's argmax breaking ties to the last maximum, killing its process, or printing at startup.
"""
import json
import os
import subprocess

import numpy as np
import pytest

from auditor import envs

pytestmark = pytest.mark.slow
NUMPY = "numpy==1.26.4"
CASES = ["--framework", "numpy", "--dtype", "float32", "--repeats", "2", "--processes", "1",
         "--cases", "ties-short,nan-rows,dims-1,logits-64x10"]
PLANTS = {
    "last_tie": """
import numpy as _np
_argmax = _np.argmax
def argmax(a, axis=None, out=None, keepdims=False):
    a = _np.asarray(a)
    if a.ndim == 0 or axis is None:
        return _argmax(a, axis=axis, keepdims=keepdims)
    flipped = _np.flip(a, axis=axis)
    return a.shape[axis] - 1 - _argmax(flipped, axis=axis, keepdims=keepdims)
_np.argmax = argmax
""",
    "segfault": """
import os, signal
import numpy as _np
def argmax(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGSEGV)
_np.argmax = argmax
""",
    "garbage": """
import sys
sys.stdout.write("Welcome to the cluster! Today's motd\\n" * 3)
sys.stdout.flush()
""",
}


@pytest.fixture(scope="session")
def home(tmp_path_factory):
    """An ARGMAX_AUDIT_HOME with environment np126 (numpy 1.26.4), made with the tool."""
    folder = tmp_path_factory.mktemp("argmax-audit-home")
    old = os.environ.get("ARGMAX_AUDIT_HOME")
    os.environ["ARGMAX_AUDIT_HOME"] = str(folder)
    try:
        envs.create("np126", [NUMPY], progress=lambda *a, **k: None)
        yield folder
    finally:
        if old is None:
            os.environ.pop("ARGMAX_AUDIT_HOME", None)
        else:
            os.environ["ARGMAX_AUDIT_HOME"] = old


@pytest.fixture
def plant(home):
    """Return a function that plants fault `name` into np126; it is removed after the test."""
    python = envs.resolve("np126")
    site = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    planted = []

    def put(name):
        with open(os.path.join(site, "planted_fault.py"), "w") as handle:
            handle.write(PLANTS[name])
        with open(os.path.join(site, "planted_fault.pth"), "w") as handle:
            handle.write("import planted_fault\n")
        planted.extend(["planted_fault.py", "planted_fault.pth"])

    yield put
    for name in planted:
        path = os.path.join(site, name)
        if os.path.exists(path):
            os.remove(path)


def test_an_environment_is_audited_next_to_this_python(audit, home, tmp_path):
    result = audit("run", "-q", *CASES, "--env", "np126")
    assert result.code == 0, result.out + result.err
    document = result.results
    assert {t["id"] for t in document["targets"]} == {"numpy/cpu/float32",
                                                      "numpy/cpu/float32@np126"}
    np126 = document["environment"]["envs"]["np126"]
    assert np126["frameworks"]["numpy"]["version"] == "1.26.4"
    assert "@np126: Python" in result.out and "numpy 1.26.4" in result.out
    only = audit("run", "-q", *CASES, "--env", "np126", "--no-local", "--out", "only")
    assert {t["id"] for t in only.results["targets"]} == {"numpy/cpu/float32@np126"}


def test_a_planted_tie_rule_is_a_regression_and_drift_between_versions(audit, helpers, plant,
                                                                       tmp_path):
    saved = audit("run", "-q", *CASES, "--out", "before", "--save-baseline", "base.npz")
    assert saved.code == 0, saved.err
    plant("last_tie")
    result = audit("run", "-q", *CASES, "--env", "np126", "--no-local", "--baseline", "base.npz")
    assert result.code == 1
    document = result.results
    env_target = "numpy/cpu/float32@np126"
    regressions = helpers.findings_of(document, env_target, "regression")
    assert {f["case"] for f in regressions} == {"ties-short", "nan-rows", "dims-1"}
    ties = next(f for f in regressions if f["case"] == "ties-short")
    assert ties["evidence"]["baseline_target"] == "numpy/cpu/float32"
    assert ties["evidence"]["cause"] == "tie_break"
    assert "numpy 1.26.4" in ties["message"] and "numpy 2." in ties["message"]
    assert helpers.findings_of(document, env_target, "tie_break")  # the reference check too

    both = audit("run", "-q", *CASES, "--env", "np126", "--out", "both")
    drift = [f for f in helpers.findings_of(both.results, env_target, "tie_break")
             if f["check"] == "consistency"]
    assert drift and "numpy/cpu/float32" in drift[0]["targets"]
    assert not helpers.findings_of(both.results, "numpy/cpu/float32")


def test_an_environment_whose_argmax_kills_its_process_is_a_crash(audit, helpers, plant):
    plant("segfault")
    result = audit("run", "-q", *CASES, "--env", "np126", "--timeout", "20")
    assert result.code == 1
    document = result.results
    crashes = helpers.findings_of(document, "numpy/cpu/float32@np126", "crash")
    assert crashes and "SIGSEGV" in crashes[0]["message"]
    assert not helpers.findings_of(document, "numpy/cpu/float32")
    local = [r for r in document["observations"] if r["target"] == "numpy/cpu/float32"]
    assert len(local) == 4  # every case of this Python's numpy was measured


def test_an_environment_that_prints_garbage_is_a_crash(audit, helpers, plant):
    plant("garbage")
    result = audit("run", "-q", *CASES, "--env", "np126")
    assert result.code == 1, result.out + result.err
    document = result.results
    crash = [f for f in document["findings"] if f["kind"] == "crash"]
    assert crash and "numpy@np126" in crash[0]["targets"][0]
    assert {t["id"] for t in document["targets"]} == {"numpy/cpu/float32"}
    assert not helpers.findings_of(document, "numpy/cpu/float32")


def test_python_path_is_checked_and_labelled(audit, helpers, home, tmp_path):
    python = envs.resolve("np126")
    result = audit("run", "-q", *CASES, "--python", python, "--no-local")
    assert result.code == 0, result.err
    assert {t["id"] for t in result.results["targets"]} == {"numpy/cpu/float32@np126"}
    bad = tmp_path / "python-without-numpy"
    bad.write_text("#!/bin/sh\nexec python3 -I -S \"$@\"\n")
    bad.chmod(0o755)
    line = helpers.one_line_error(audit("run", "-q", *CASES, "--python", str(bad), "--out", "x"))
    assert "numpy" in line
    assert "unknown environment" in helpers.one_line_error(audit("run", "--env", "nope"))
    assert "--no-local" in helpers.one_line_error(audit("run", "--no-local"))
    json.dumps(result.results)  # the bundle document stays plain JSON


def test_fuzz_finds_and_shrinks_a_tie_rule_planted_in_another_environment(audit, helpers, plant):
    plant("last_tie")
    result = audit("fuzz", "-q", "--framework", "numpy", "--dtype", "float32", "--env", "np126",
                   "--no-database", "--repeats", "1", "--max-examples", "150", "--out", "fz")
    assert result.code == 1, result.out + result.err
    document = result.results
    env_target = "numpy/cpu/float32@np126"
    ties = helpers.findings_of(document, env_target, "tie_break")
    assert ties and not helpers.findings_of(document, "numpy/cpu/float32")
    case = next(c for c in document["cases"] if c["id"] == ties[0]["case"])
    assert 2 <= int(np.prod(case["shape"])) <= 4, case  # shrunk: two equal maxima, little else
