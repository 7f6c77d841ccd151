"""The pytest plugin: the `argmax_audit` fixture passes a correct kernel, fails a last-tie kernel
with tie_break and a reproducer, keeps failing audits with --argmax-audit-out, runs under xdist,
and goes away with -p no:argmax_audit."""
import os
import shutil
import subprocess
import sys

import pytest

from auditor.pytest_plugin import folder_name

pytest_plugins = ["pytester"]
KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "impls_for_api.py")
TESTS = f"""
import sys
sys.path.insert(0, {os.path.dirname(KERNELS)!r})
import impls_for_api as kernels

SMALL = dict(dtypes=["float32"], repeats=2, processes=1, cases="ties-short,nan-rows,dims-*")


def test_correct(argmax_audit):
    result = argmax_audit(kernels.first_max, framework="numpy", **SMALL)
    assert result.verdict == "pass"


def test_last_tie(argmax_audit):
    argmax_audit(kernels.last_max, framework="numpy", **SMALL)
"""


def test_folder_names_are_safe():
    assert folder_name("tests/test_x.py::test_y[a/b c]") == "tests_test_x.py_test_y_a_b_c"


def test_the_plugin_is_registered_by_its_entry_point():
    from importlib.metadata import entry_points
    found = [e for e in entry_points(group="pytest11") if e.name == "argmax_audit"]
    assert [e.value for e in found] == ["auditor.pytest_plugin"]


@pytest.mark.slow
def test_a_correct_kernel_passes_and_a_last_tie_kernel_fails_with_a_reproducer(pytester):
    pytester.makepyfile(test_kernels=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--argmax-audit-out", "kept")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "argmax-audit:" in text and "error tie_break on ties-short" in text
    assert "reproducer (tie_break on" in text and "import numpy as np" in text
    assert "Traceback" not in text  # the findings, not the fixture's insides
    kept = pytester.path / "kept"
    assert os.listdir(kept) == ["test_kernels.py_test_last_tie"]  # failing audits only
    assert {"results.json", "arrays.npz", "report.html"} <= set(os.listdir(
        kept / "test_kernels.py_test_last_tie"))


@pytest.mark.slow
def test_no_argmax_audit_removes_the_fixture(pytester):
    pytester.makepyfile(test_kernels=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:argmax_audit",
                                           "-k", "correct")
    result.assert_outcomes(errors=1)
    assert "fixture 'argmax_audit' not found" in result.stdout.str()


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("c++"), reason="the example compiles a C++ extension")
def test_the_kernel_authors_example_file(tmp_path):
    pytest.importorskip("torch")
    example = os.path.join(os.path.dirname(KERNELS), "..", "examples", "custom_kernel",
                           "test_argmax_ext.py")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                           "-p", "no:cacheprovider", example, "--argmax-audit-out",
                           str(tmp_path / "kept")], capture_output=True, text=True, timeout=1200,
                          cwd=tmp_path)
    assert "1 passed, 1 xfailed" in done.stdout, done.stdout + done.stderr
    kept = os.listdir(tmp_path / "kept")  # the fast kernel's failing audit, nothing else
    assert len(kept) == 1 and kept[0].endswith("test_argmax_ext.py_test_the_fast_kernel_is_caught")


@pytest.mark.slow
def test_under_xdist_each_worker_audits_on_its_own(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_kernels=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2",
                                           "--argmax-audit-out", "kept")
    result.assert_outcomes(passed=1, failed=1)
    assert os.listdir(pytester.path / "kept") == ["test_kernels.py_test_last_tie"]
