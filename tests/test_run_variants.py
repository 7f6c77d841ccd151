"""Variants and twins through real workers: planted faults found through each path, settings kept.

Each run is small (a handful of cases, two repeats, one process); they start torch or jax workers,
so they are marked slow.
"""
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
SMALL = ["run", "-q", "--dtype", "float32", "--repeats", "2", "--processes", "1"]
SAW = re.compile(r"# the audit saw (.+?)(;| \(|$)")


def _reproduce(finding, cwd):
    """Run the finding's reproducer; return (what it printed, what the audit saw)."""
    done = subprocess.run([sys.executable, "-c", finding["reproducer"]], cwd=cwd, text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), SAW.search(finding["reproducer"].splitlines()[-1]).group(1)


def _targets(document):
    return {t["id"]: t for t in document["targets"]}


def _compiler_or_skip():
    from auditor.worker.backends.torch_backend import cxx_compiler

    if cxx_compiler() is None:
        pytest.skip("no C++ compiler for torch.compile on the CPU")


@pytest.fixture(scope="module")
def compiled(audit_subprocess, tmp_path_factory, helpers):
    """torch.compile on torch's argmax and on a torch implementation that breaks ties to the last."""
    pytest.importorskip("torch")
    _compiler_or_skip()
    folder = tmp_path_factory.mktemp("compiled")
    result = audit_subprocess([*SMALL, "--framework", "torch", "--variant", "compile",
                               "--cases", "ties-short,dims-1,layout-transposed,scalar",
                               "--impl", helpers.impl_spec("torch_last_tie.py", framework="torch"),
                               "--out", str(folder / "bundle")], cwd=folder)
    result.folder = folder
    return result


def test_compile_runs_torch_compile_and_times_it_apart(compiled):
    assert compiled.code == 1, compiled.err
    document = compiled.results
    targets = _targets(document)
    assert "torch/cpu/float32/compile" in targets and "torch/cpu/float32" not in targets
    assert targets["torch/cpu/float32/compile"]["settings"]["compile"]["dynamic"] is False
    timings = [r["timing"] for r in document["observations"]
               if r["target"] == "torch/cpu/float32/compile"]
    assert timings and all(t["compile_s"] > 0 and t["compiles"] == 1 for t in timings)
    assert document["summary"]["timing"]["compile_s"] > 0
    assert "compiling:" in compiled.out


def test_a_fault_carried_through_compile_is_found_and_reproduced(compiled, helpers):
    document = compiled.results
    impl = helpers.impl_target("torch_last_tie.py", framework="torch") + "/compile"
    ties = helpers.findings_of(document, impl, "tie_break")
    assert {f["case"] for f in ties if f["check"] == "reference"} >= {"ties-short", "dims-1"}
    assert all(f["severity"] == "error" for f in ties if f["check"] == "reference")
    assert helpers.findings_of(document, "torch/cpu/float32/compile") == []
    finding = next(f for f in ties if f["case"] == "ties-short" and f["check"] == "reference")
    assert "torch.compile(lambda x: argmax(x, dim=1" in finding["reproducer"]
    printed, saw = _reproduce(finding, compiled.folder)
    assert printed == saw


def test_process_settings_are_recorded_and_flush_denormal_breaks_subnormals(audit, helpers):
    pytest.importorskip("torch")
    result = audit(*SMALL, "--dtype", "float64", "--framework", "torch", "--cases", "subnormal,ties-short",
                   "--variant", "eager,threads=1,deterministic,flush-denormal")
    document = result.results
    settings = {tid: t["settings"] for tid, t in _targets(document).items()}
    assert settings["torch/cpu/float32/threads=1"]["num_threads"] == 1
    assert settings["torch/cpu/float32/deterministic"]["deterministic_algorithms"] is True
    assert settings["torch/cpu/float32/flush-denormal"]["flush_denormal"] is True
    assert settings["torch/cpu/float32"]["deterministic_algorithms"] is False
    assert settings["torch/cpu/float32"]["flush_denormal"] is False
    # float32 subnormals are normal numbers in float64: flushing must not touch them there (nor
    # the harness's conversion of the exact values to float64); float64's own subnormals
    # (f64-subnormal, tagged subnormal) it flushes too.
    for clean in ("torch/cpu/float32", "torch/cpu/float32/threads=1", "torch/cpu/float32/deterministic"):
        assert helpers.findings_of(document, clean) == [], clean
    wide = helpers.findings_of(document, "torch/cpu/float64/flush-denormal")
    assert {(f["case"], f["kind"]) for f in wide if f["check"] == "reference"} == {
        ("f64-subnormal", "wrong_index")}
    wrong = {f["case"]: f for f in helpers.findings_of(
        document, "torch/cpu/float32/flush-denormal", "wrong_index") if f["check"] == "reference"}
    assert set(wrong) == {"subnormal", "subnormal-low"}  # float32's and bfloat16's subnormals
    wrong = wrong["subnormal"]
    assert "flushed to zero" in wrong["message"]
    assert "torch.set_flush_denormal(True)" in wrong["reproducer"]
    printed, saw = _reproduce(wrong, result.bundle)
    assert printed == saw
    assert result.code == 1


def test_jax_x64_runs_in_its_own_process_with_int64_indices_and_float64(audit, helpers):
    pytest.importorskip("jax")
    result = audit("run", "-q", "--framework", "jax", "--repeats", "2", "--processes", "1",
                   "--dtype", "float32,float64", "--variant", "eager,x64", "--cases", "ties-short,dims-none")
    document = result.results
    targets = _targets(document)
    assert {"jax/cpu/float32", "jax/cpu/float32/x64", "jax/cpu/float64/x64"} <= set(targets)
    assert "jax/cpu/float64" not in targets
    assert targets["jax/cpu/float64/x64"]["index_dtype"] == "int64"
    assert targets["jax/cpu/float64/x64"]["settings"]["x64"] is True
    assert targets["jax/cpu/float32"]["settings"]["x64"] is False
    dtypes = {o["dtype"] for r in document["observations"] if r["target"].endswith("/x64")
              for o in r["outcomes"]}
    assert dtypes == {"int64"}
    assert document["findings"] == [], [f["message"] for f in document["findings"]]
    assert result.code == 0


def test_every_twin_runs_and_the_frameworks_differ_only_where_documented(audit, helpers):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    # numpy, torch and jax (TensorFlow's and ONNX Runtime's twins: their own test modules)
    result = audit("run", "-q", "--repeats", "2", "--processes", "1", "--dtype", "float32",
                   "--op", "all", "--framework", "numpy,torch,jax", "--cases",
                   "ties-short,nan-rows,signed-zero,dims-2,dims-none,layout-transposed,empty-dim")
    document = result.results
    assert set(_targets(document)) == {
        "numpy/cpu/float32", "numpy.argmin/cpu/float32", "numpy.argsort/cpu/float32",
        "torch/cpu/float32", "torch.argmin/cpu/float32", "torch.max/cpu/float32",
        "torch.topk/cpu/float32", "jax/cpu/float32", "jax.argmin/cpu/float32", "jax.topk/cpu/float32"}
    errors = {(helpers.blamed(f)[0], f["kind"], f["case"]) for f in document["findings"]
              if f["severity"] == "error"}
    # lax.top_k sorts by a total order: a NaN with its sign bit set ranks below every number (row
    # 7 of nan-rows) and -0.0 below +0.0 (signed-zero). Its documentation promises the first of
    # equal values and says nothing of NaN: both are errors.
    assert errors == {("jax.topk/cpu/float32", "nan_policy", "nan-rows"),
                      ("jax.topk/cpu/float32", "tie_break", "signed-zero")}
    warned = {(helpers.blamed(f)[0], f["kind"]) for f in document["findings"] if f["severity"] == "warning"}
    assert warned == {("torch.topk/cpu/float32", "tie_break"), ("torch.topk/cpu/float32", "nan_policy"),
                      ("numpy.argsort/cpu/float32", "tie_break"), ("numpy.argsort/cpu/float32", "nan_policy")}
    assert all("documented" in f["evidence"] for f in document["findings"] if f["severity"] == "warning")
    nan = next(f for f in document["findings"] if f["targets"][0] == "jax.topk/cpu/float32"
               and f["check"] == "reference")
    printed, saw = _reproduce(nan, result.bundle)
    assert printed == saw


def test_a_planted_argmin_fault_is_found(audit, helpers):
    spec = helpers.impl_spec("last_min.py", "argmin") + "@argmin"
    good = helpers.impl_spec("last_min.py", "good") + "@argmin"
    result = audit(*helpers.SMALL, "--op", "argmin", "--cases", "ties-short,nan-rows,layout-broadcast-dim0",
                   "--impl", spec, "--impl", good)
    assert result.code == 1, result.err
    document = result.results
    faulty = f"numpy[{os.path.join(helpers.IMPLS, 'last_min.py')}:argmin].argmin/cpu/float32"
    fine = f"numpy[{os.path.join(helpers.IMPLS, 'last_min.py')}:good].argmin/cpu/float32"
    assert {faulty, fine, "numpy.argmin/cpu/float32"} == set(_targets(document))
    ties = [f for f in helpers.findings_of(document, faulty, "tie_break") if f["check"] == "reference"]
    assert {f["case"] for f in ties} == {"ties-short-min", "layout-broadcast-dim0-min"}  # mirrors
    assert "tied minima" in ties[0]["message"] and ties[0]["message"].startswith("argmin(x")
    assert helpers.findings_of(document, fine) == []
    assert helpers.findings_of(document, "numpy.argmin/cpu/float32") == []
    printed, saw = _reproduce(ties[0], result.bundle)
    assert printed == saw


def test_compile_without_a_compiler_is_a_note_not_a_crash(audit, helpers, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    result = audit(*SMALL, "--framework", "torch", "--variant", "eager,compile", "--cases", "scalar")
    assert result.code == 0, result.err
    assert set(_targets(result.results)) == {"torch/cpu/float32"}
    skipped = result.results["metadata"]["skipped"]
    assert any("needs a C++ compiler: /nonexistent/c++ was not found" in s for s in skipped), skipped
    line = helpers.one_line_error(audit(*SMALL, "--framework", "torch", "--variant", "compile",
                                        "--cases", "scalar"))
    assert "nothing to audit" in line and "C++ compiler" in line
