"""The ONNX Runtime backend: one in-memory model and cached session per signature, its settings,
its reproducers, and what it really does on the suite (slow)."""
import subprocess
import sys

import numpy as np
import pytest

from auditor import registry
from auditor.cases import build_suite, select
from auditor.model import Target
from auditor.reproduce import reproducer

ort_backend = pytest.importorskip("auditor.worker.backends.ort_backend")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def adapter():
    return ort_backend.BACKEND.adapter()


def test_the_backend_is_registered_without_importing_onnxruntime():
    assert registry.get("onnxruntime") is ort_backend.BACKEND
    assert set(ort_backend.BACKEND.ops) == {"argmax", "argmin"}
    assert "first occurrence" in ort_backend.BACKEND.ops["argmax"].promise


@pytest.mark.parametrize("shape, dim, keepdim, expected", [
    ((2, 3), 1, False, (2,)), ((2, 3), 0, True, (1, 3)), ((2, 3), None, False, ()),
    ((2, 3), None, True, (1, 1)), ((), None, True, ()), ((), None, False, ()),
    ((2, 3, 4), -1, True, (2, 3, 1)),
])
def test_shapes_follow_argmax_and_dim_none_flattens_first(adapter, shape, dim, keepdim, expected):
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    result = adapter.function("argmax")(x, dim=dim, keepdim=keepdim)
    assert result.shape == expected and result.dtype == np.int64
    reference = np.argmax(x, axis=dim, keepdims=keepdim)  # arange: no ties, no NaN
    assert np.array_equal(result, reference)


def test_one_session_per_signature_cached(adapter):
    adapter.sessions.clear()
    argmax = adapter.function("argmax")
    x = np.array([[1.0, 5.0, 5.0]], np.float32)
    for _ in range(3):
        assert argmax(x, dim=1).tolist() == [1]
    argmax(np.ones((4, 7), np.float32), dim=1)  # another size: the same signature
    assert len(adapter.sessions) == 1
    argmax(x, dim=0)
    adapter.function("argmin")(x, dim=1)
    assert len(adapter.sessions) == 3


def test_variants_set_session_options_and_record_them(adapter):
    adapter.sessions.clear()
    x = np.array([[1.0, 5.0, 5.0]], np.float32)
    with adapter.configure({"threads": 1, "optimize-off": True}) as settings:
        adapter.function("argmax")(x, dim=1)
    assert settings["intra_op_num_threads"] == 1
    assert settings["graph_optimization_level"] == "ORT_DISABLE_ALL"
    session = next(iter(adapter.sessions.values()))
    options = session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.graph_optimization_level.name == "ORT_DISABLE_ALL"
    assert adapter.options == {}  # restored after the target


def test_idle_threads_spin_only_while_calls_are_timed(adapter):
    x = np.array([[1.0, 5.0, 5.0]], np.float32)

    def spinning():
        adapter.sessions.clear()
        with adapter.configure({}) as settings:
            adapter.function("argmax")(x, dim=1)
        options = next(iter(adapter.sessions.values())).get_session_options()
        try:
            entry = options.get_session_config_entry("session.intra_op.allow_spinning")
        except RuntimeError:  # not set: onnxruntime's default
            entry = None
        return entry, settings["intra_op_allow_spinning"]

    assert spinning() == ("0", 0)  # the audit's calls: no CPU burnt between them
    adapter.timing = True  # audit bench
    try:
        assert spinning() == (None, 1)  # onnxruntime's default (spinning) left alone
    finally:
        adapter.timing = False
        adapter.sessions.clear()


def test_probe_lists_providers_and_says_why_a_dtype_is_refused(adapter):
    info = adapter.describe()
    assert registry.check_probe(info) == ""
    cpu = next(d for d in info["devices"] if d["id"] == "cpu")
    assert "float32" in cpu["dtypes"] and cpu["provider"] == "CPUExecutionProvider"
    assert all("onnxruntime refuses it" in why or "ml_dtypes" in why
               for why in cpu["unsupported"].values())
    assert info["index_dtype"] == "int64" and info["build"]["opset"] >= 12


def test_reproducer_runs_with_onnxruntime_alone(tmp_path):
    case = select(build_suite(), ["ties-short"])[0]
    target = Target("onnxruntime", "cpu", "float32", index_dtype="int64",
                    settings={"intra_op_num_threads": 1})
    script = reproducer(case, target, positions=[(0,)])
    assert "import onnx, onnxruntime as ort" in script and "torch" not in script
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    printed, reference = done.stdout.strip(), script.rsplit("is ", 1)[1].strip()
    assert printed == reference  # ties: onnxruntime returns the first, as ONNX documents


def test_reproducer_of_a_variant_sets_its_session_options():
    case = select(build_suite(), ["ties-short"])[0]
    target = Target("onnxruntime", "cpu", "float32", variant="optimize-off+threads=1")
    script = reproducer(case, target)
    assert "ORT_DISABLE_ALL" in script and "intra_op_num_threads = 1" in script


@pytest.mark.slow
def test_onnxruntime_on_the_suite_ties_first_nan_mixed(audit):
    result = audit("run", "-q", "--framework", "onnxruntime", "--dtype", "float32",
                   "--variant", "all", "--op", "all", "--repeats", "2", "--processes", "1",
                   "--cases", "ties-short,nan-rows,scalar*,dims-none*")
    assert result.code == 1, result.err
    document = result.results
    ids = {t["id"] for t in document["targets"]}
    assert {"onnxruntime/cpu/float32", "onnxruntime/cpu/float32/optimize-off",
            "onnxruntime/cpu/float32/threads=1", "onnxruntime.argmin/cpu/float32"} <= ids
    kinds = {(f["kind"], f["case"]) for f in document["findings"] if f["severity"] == "error"}
    # a NaN first in its row wins; a later one is skipped (comparisons with NaN are false)
    assert ("nan_policy", "nan-rows") in kinds and ("nan_policy", "nan-rows-min") in kinds
    assert not [k for k in kinds if k[0] in ("tie_break", "api_mismatch", "crash", "wrong_index")]
    settings = next(t for t in document["targets"]
                    if t["id"] == "onnxruntime/cpu/float32/threads=1")["settings"]
    assert settings["intra_op_num_threads"] == 1 and settings["opset"] >= 12


#: An older onnxruntime with wheels for numpy 2 and this Python (onnxruntime>=1.19).
OLD_ORT = "onnxruntime==1.19.2"


@pytest.mark.slow
def test_an_older_onnxruntime_in_an_environment_of_its_own(audit, tmp_path, monkeypatch):
    monkeypatch.setenv("ARGMAX_AUDIT_HOME", str(tmp_path / "home"))
    created = audit("env", "create", "ort-old", OLD_ORT, "onnx")
    assert created.code == 0, created.err
    assert "onnxruntime 1.19.2" in created.out
    result = audit("run", "-q", "--framework", "onnxruntime", "--env", "ort-old", "--dtype",
                   "float32", "--repeats", "1", "--processes", "1", "--cases", "ties-short,nan-rows")
    assert result.code == 1, result.err
    targets = {t["id"]: t for t in result.results["targets"]}
    assert {"onnxruntime/cpu/float32", "onnxruntime/cpu/float32@ort-old"} <= set(targets)
    assert targets["onnxruntime/cpu/float32@ort-old"]["settings"]["opset"] >= 12
    flagged = {tuple(f["targets"]) for f in result.results["findings"] if f["kind"] == "nan_policy"}
    assert ("onnxruntime/cpu/float32@ort-old",) in flagged  # the same NaN rule in 1.19.2
