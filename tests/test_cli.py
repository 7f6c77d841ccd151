"""The `audit` command line: one-line user errors with exit 2, help texts, exit codes, a real run."""
import os
import re

import pytest
from click.testing import CliRunner

from auditor import bundle
from auditor.cli import cli
from auditor.errors import ExitCode

# -- help -------------------------------------------------------------------------------------------


def _help(*args):
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # undo Click's line wrapping


def test_group_help_lists_commands_options_and_exit_codes():
    text = _help()
    assert "run" in text
    assert "--version" in text and "--help" in text
    for code in ("0 nothing at or above --fail-on", "1 findings", "2 a usage mistake",
                 "3 the audit could not run"):
        assert code in text


#: What `audit run --help` must say each option defaults to.
RUN_DEFAULTS = {
    "--executor": "[default: local]",
    "--ray-address": "Default: RAY_ADDRESS",
    "--framework": "Default: every one installed",
    "--device": "Default: every device each framework reports",
    "--dtype": "Default: all",
    "--variant": "Default: eager",
    "--op": "Default: argmax",
    "--suite": "[default: quick]",
    "--input-dim": "[default: -1",
    "--cases": "Default: the whole suite",
    "--seed": "[default: 0",
    "--repeats": "[default: 5",
    "--processes": "[default: 2",
    "--timeout": "[default: 60.0",
    "--startup-timeout": "[default: 180.0",
    "--jobs": "[default: (number of CPUs)",
    "--out": "[default: audit-results]",
    "--fail-on": "Default: error",
    "--config": "default: ./audit.toml",
}
#: Options without a default to state: repeatable additions and flags.
NO_DEFAULT = {"--impl", "--quiet", "--help", "--baseline", "--save-baseline", "--junit", "--summary-md",
              "--json", "--input", "--env", "--python", "--no-local", "--cases-from",
              "--store-inputs", "--ray-resource", "--each-node"}


def test_run_help_states_every_option_with_its_default():
    text = _help("run").split("Options:", 1)[1]
    run_options = {opt for param in cli.commands["run"].params for opt in param.opts
                   if opt.startswith("--")} | {"--help"}
    assert run_options == set(RUN_DEFAULTS) | NO_DEFAULT
    for option, default in RUN_DEFAULTS.items():
        assert f" {option} " in f" {text}"
        # the default is stated in the option's own help, before the next option starts
        own = f" {text}".split(f" {option} ", 1)[1].split(" --", 1)[0]
        assert default in own, (option, own)
    for option in NO_DEFAULT:
        assert option in text


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert re.search(r"argmax-audit, version \d+\.\d+", result.output)


def test_python_dash_m_is_the_same_cli(audit_subprocess, tmp_path):
    result = audit_subprocess(["run", "--help"], cwd=tmp_path)
    assert result.code == 0
    assert "--fail-on" in result.out


def test_python_dash_m_user_error_is_one_line(audit_subprocess, tmp_path, helpers):
    result = audit_subprocess(["run", "--framework", "caffe"], cwd=tmp_path)
    line = helpers.one_line_error(result)
    assert "caffe" in line


def test_bare_audit_shows_help_not_an_error(audit):
    result = audit()
    assert result.code in (ExitCode.OK, ExitCode.USAGE)
    assert "Usage:" in result.out + result.err
    assert not result.err.startswith("audit: error: Usage:")


# -- user errors: exit 2, one line, no traceback, before any worker starts --------------------------


@pytest.mark.parametrize("args, words", [
    (["--framework", "caffe"], ["caffe", "numpy, torch, jax"]),
    (["--framework", "numpy,mxnet"], ["mxnet", "numpy, torch, jax"]),
    (["--dtype", "float8"], ["float8", "float32, float16, bfloat16, float64"]),
    (["--device", "gpu"], ["gpu", "cpu, cuda, cuda:N, mps"]),
    (["--device", "cuda:x"], ["cuda:x"]),
    (["--impl", "argmax.py"], ["FRAMEWORK:MODULE_OR_FILE:FUNCTION"]),
    (["--impl", "numpy:argmax"], ["FRAMEWORK:MODULE_OR_FILE:FUNCTION"]),
    (["--impl", "numpy::argmax"], ["FRAMEWORK:MODULE_OR_FILE:FUNCTION"]),
    (["--impl", "numpy:mod:"], ["FRAMEWORK:MODULE_OR_FILE:FUNCTION"]),
    (["--impl", "caffe:mod:fn"], ["caffe", "numpy, torch, jax"]),
    (["--impl", "mlx:mod:fn"], ["mlx is not installed", "argmax-audit[mlx]"]),
    (["--impl", "numpy:./no_such_file.py:argmax"], ["no_such_file.py", "does not exist"]),
    (["--impl", "numpy:sub/dir/kernel.py:argmax"], ["kernel.py", "does not exist"]),
    (["--cases", "no-such-case-*"], ["no-such-case-*", "matches no case"]),
    (["--repeats", "0"], ["--repeats"]),
    (["--timeout", "0"], ["--timeout"]),
    (["--suite", "huge"], ["huge"]),
    (["--fail-on", "info"], ["info"]),
    (["--config", "missing.toml"], ["missing.toml"]),
    (["--no-such-option"], ["--no-such-option"]),
])
def test_run_user_errors_are_one_line(audit, helpers, args, words):
    line = helpers.one_line_error(audit(*helpers.SMALL, *args))
    for word in words:
        assert word in line, line


def test_unknown_command_is_one_line(audit, helpers):
    line = helpers.one_line_error(audit("frobnicate"))
    assert "frobnicate" in line


def test_out_is_a_file(audit, helpers, tmp_path):
    (tmp_path / "results").write_text("not a folder")
    line = helpers.one_line_error(audit(*helpers.SMALL, "--out", str(tmp_path / "results")))
    assert "results" in line


def test_out_is_a_non_empty_folder_that_is_not_a_bundle(audit, helpers, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    line = helpers.one_line_error(audit(*helpers.SMALL, "--out", str(folder)))
    assert "not a results bundle" in line
    assert (folder / "thesis.tex").read_text() == "precious"
    assert sorted(os.listdir(folder)) == ["thesis.tex"]


@pytest.mark.parametrize("text, words", [
    ("fail-on = 'error\n", ["not valid TOML"]),
    ("failon = 'error'\n", ["unknown key 'failon'"]),
    ("fail-on = 'fatal'\n", ["fail-on", "fatal"]),
    ("[severity]\ncrash = 'fatal'\n", ["crash", "fatal"]),
    ("[severity]\nsegfault = 'error'\n", ["unknown kind 'segfault'"]),
    ("[[allow]]\nkind = 'tie_break'\n", ["needs a reason"]),
    ("[[allow]]\nkind = 'tie_break'\nreason = '   '\n", ["needs a reason"]),
    ("[[allow]]\nkind = 'ties'\nreason = 'x'\n", ["kind must be one of", "'ties'"]),
    ("[[allow]]\nreason = 'x'\n", ["kind must be one of"]),
    ("[[allow]]\nkind = 'crash'\nreason = 'x'\nplatform = 'linux'\n", ["unknown key 'platform'"]),
    ("[thresholds]\nmax_flips = 3\n", ["unknown threshold 'max_flips'"]),
    ("[thresholds]\nmax_flip_rate = { float32 = 0.1 }\n", ["max_flip_rate", "float32"]),
    ("[thresholds]\nmax_flip_rate = { bfloat16 = 2 }\n", ["max_flip_rate", "bfloat16"]),
])
def test_malformed_audit_toml_is_one_line(audit, helpers, tmp_path, text, words):
    (tmp_path / "audit.toml").write_text(text)
    line = helpers.one_line_error(audit(*helpers.SMALL, "--cases", "ties-short"))
    assert "audit.toml" in line
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("text", [
    pytest.param("severity = 'error'\n", id="severity-not-a-table"),
    pytest.param("[thresholds]\nmax_flip_rate = 0.5\n", id="max_flip_rate-not-a-table"),
    pytest.param("thresholds = 0.5\n", id="thresholds-not-a-table"),
])
def test_policy_with_a_scalar_for_a_table_is_one_line(audit, helpers, tmp_path, text):
    (tmp_path / "audit.toml").write_text(text)
    helpers.one_line_error(audit(*helpers.SMALL, "--cases", "ties-short"))


def test_pyproject_policy_errors_are_one_line(audit, helpers, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[tool.argmax-audit]\n[[tool.argmax-audit.allow]]\nkind = 'crash'\n")
    line = helpers.one_line_error(audit(*helpers.SMALL, "--cases", "ties-short"))
    assert "pyproject.toml" in line and "reason" in line


# -- user errors found by the worker: the implementation cannot be loaded, the device is absent ------


@pytest.mark.slow
@pytest.mark.parametrize("file, function, words", [
    ("bad_signature.py", "argmax", ["cannot be called as fn(x, dim=..., keepdim=...)"]),
    ("bad_signature.py", "no_such_function", ["has no function no_such_function"]),
    ("bad_signature.py", "not_a_function", ["not callable"]),
    ("import_error.py", "argmax", ["ImportError", "planted: this module cannot be imported"]),
])
def test_impl_that_cannot_be_loaded_is_one_line(audit, helpers, file, function, words):
    line = helpers.one_line_error(
        audit(*helpers.SMALL, "--cases", "ties-short", "--impl", helpers.impl_spec(file, function)))
    assert file in line
    for word in words:
        assert word in line, line


@pytest.mark.slow
def test_impl_module_missing_is_one_line(audit, helpers):
    line = helpers.one_line_error(
        audit(*helpers.SMALL, "--cases", "ties-short", "--impl", "numpy:no_such_module_xyz:argmax"))
    assert "module no_such_module_xyz not found" in line


@pytest.mark.slow
def test_impl_module_whose_import_is_missing_names_the_missing_module(audit, helpers, tmp_path):
    (tmp_path / "kernels_v2.py").write_text(
        "import kernels\n\ndef argmax(x, dim=None, keepdim=False):\n    return 0\n")
    line = helpers.one_line_error(
        audit(*helpers.SMALL, "--cases", "ties-short", "--impl", "numpy:kernels_v2:argmax"))
    assert "kernels'" in line and "ModuleNotFoundError" in line


@pytest.mark.slow
def test_device_cuda_without_cuda_is_one_line(audit, helpers):
    # numpy reports only its cpu, so a numpy-only audit has no CUDA device on any machine; this
    # needs no torch import and holds on a machine with CUDA as well.
    line = helpers.one_line_error(audit(*helpers.SMALL, "--cases", "ties-short", "--device", "cuda"))
    assert "device cuda is not present" in line and "numpy runs on the CPU only" in line
    assert "torch or jax" in line


@pytest.mark.slow
def test_device_cuda_without_cuda_in_torch_is_one_line(audit, helpers):
    if not _installed("torch"):
        pytest.skip("torch is not installed")
    result = audit("run", "-q", "--framework", "torch", "--dtype", "float32", "--repeats", "1",
                   "--processes", "1", "--cases", "scalar", "--device", "cuda")
    if result.code != ExitCode.USAGE and "cuda:0" in result.out:
        pytest.skip("this machine has CUDA")  # learnt from the worker, without importing torch here
    line = helpers.one_line_error(result)
    assert "device cuda is not present (found: cpu" in line


# -- runs: exit codes and what they write ------------------------------------------------------------


@pytest.mark.slow
def test_clean_run_exits_0_and_writes_a_bundle(audit, helpers):
    result = audit(*helpers.SMALL, "--cases", "ties-short,dims-*")
    assert result.code == ExitCode.OK, result.out + result.err
    assert "PASS" in result.out
    assert "numpy/cpu/float32" in result.out
    assert os.path.join(result.bundle, "results.json") in result.out
    assert result.err == ""  # no progress display off a terminal
    document = result.results
    assert document["metadata"]["complete"] is True
    assert document["summary"]["verdict"] == "pass"
    assert helpers.observed_cases(document, "numpy/cpu/float32") == {
        "ties-short", *[c["id"] for c in document["cases"] if c["id"].startswith("dims-")]}


@pytest.mark.slow
def test_interrupted_run_keeps_its_observations(audit, helpers, monkeypatch):
    from auditor.runner import Runner

    original = Runner.run

    def run_then_interrupt(self, first):
        original(self, first)
        raise KeyboardInterrupt

    monkeypatch.setattr(Runner, "run", run_then_interrupt)
    result = audit(*helpers.SMALL, "--cases", "ties-short,scalar")
    assert result.code == ExitCode.INTERNAL
    assert result.err.strip().startswith("audit: error: interrupted")
    assert result.bundle in result.err
    observations, findings, document = bundle.read(result.bundle)
    assert document["metadata"]["complete"] is False and document["summary"]["complete"] is False
    assert {cid for _, cid in observations.outcomes} == {"ties-short", "scalar"}
    assert findings == []  # what was measured is checked and summarised, and it is clean
    assert "numpy/cpu/float32" in result.out


@pytest.mark.slow
def test_every_installed_framework_agrees_with_the_reference(audit, helpers):
    """numpy, torch and jax on a reduced suite: no error findings, first-tie and first-NaN policy.
    (TensorFlow and ONNX Runtime do not follow the NaN rule: tests/test_tf_backend.py and
    tests/test_ort_backend.py hold what they do.)"""
    installed = {fw for fw in ("numpy", "torch", "jax") if _installed(fw)}
    result = audit("run", "-q", "--cases", "ties-*,nan-*,dims-*,layout-*,empty*,scalar*",
                   "--repeats", "2", "--processes", "2", "--dtype", "float32",
                   "--framework", ",".join(sorted(installed)))
    document = result.results
    errors = [f["message"] for f in document["findings"] if f["severity"] == "error"]
    assert errors == []
    assert result.code == ExitCode.OK, result.out
    rows = document["summary"]["targets"]
    assert {row["target"].split("/")[0] for row in rows} == installed
    from auditor.runner import RACE_FACTOR

    for row in rows:
        assert row["tie_policy"] == "first", row
        assert row["nan_policy"] == "first", row
        ran = [c for c in document["cases"]
               if c["id"] in helpers.observed_cases(document, row["target"])]
        # jax has no views: it runs the contiguous cases only
        assert len(ran) == len(document["cases"]) or row["target"].startswith("jax/"), row
        assert row["cases"] == len(ran), row
        assert row["calls"] == sum(2 * 2 * (RACE_FACTOR if "race" in c["tags"] else 1)
                                   for c in ran), row


def _installed(framework):
    import importlib.util

    return importlib.util.find_spec(framework) is not None
