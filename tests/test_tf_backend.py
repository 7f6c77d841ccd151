"""The TensorFlow backend: argmax/argmin/top_k shapes and dtypes, its probe, its variants' process
settings, its reproducers, and what it really does on the suite (slow)."""
import subprocess
import sys

import numpy as np
import pytest

from auditor import registry, variants
from auditor.cases import build_suite, select
from auditor.model import Target
from auditor.reproduce import reproducer

tf_backend = pytest.importorskip("auditor.worker.backends.tf_backend")
pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def adapter():
    return tf_backend.BACKEND.adapter()


def test_the_backend_is_registered_with_its_documented_promises():
    backend = registry.get("tensorflow")
    assert backend is tf_backend.BACKEND and set(backend.ops) == {"argmax", "argmin", "topk"}
    assert backend.ops["argmax"].promise == "In case of identity returns the smallest index."
    assert "lower-index element appears first" in backend.ops["topk"].promise


@pytest.mark.parametrize("op, reference", [("argmax", np.argmax), ("argmin", np.argmin),
                                           ("topk", np.argmax)])
@pytest.mark.parametrize("shape, dim, keepdim", [
    ((2, 3), 1, False), ((2, 3), 0, True), ((2, 3), None, False), ((2, 3), None, True),
    ((2, 3, 4), -1, True), ((2, 3, 4), 1, False), ((5,), None, True)])
def test_calls_match_argmax_shapes(adapter, op, reference, shape, dim, keepdim):
    values = np.random.default_rng(0).permutation(int(np.prod(shape))).astype(np.float32)
    host = values.reshape(shape)
    x = adapter.to_native(host, "float32", "cpu", "contiguous")
    result = adapter.function(op)(x, dim=dim, keepdim=keepdim)
    indices, dtype = adapter.to_numpy(result)
    assert np.array_equal(indices, reference(host, axis=dim, keepdims=keepdim))
    assert dtype == ("int32" if op == "topk" else "int64")


def test_probe_says_why_a_dtype_is_refused(adapter):
    info = adapter.describe()
    assert registry.check_probe(info) == ""
    cpu = info["devices"][0]
    assert cpu["id"] == "cpu" and {"float32", "bfloat16", "float64", "uint64"} <= set(cpu["dtypes"])
    assert "tf.math.top_k refuses it" in cpu["unsupported"]["bool"]
    assert info["index_dtypes"] == {"argmax": "int64", "argmin": "int64", "topk": "int32"}


@pytest.mark.parametrize("mode", [None, "function", "xla"])
def test_modes_compute_the_same_ties(adapter, mode):
    x = adapter.to_native(np.array([[1.0, 5.0, 5.0], [2.0, 2.0, 0.0]], np.float32), "float32",
                          "cpu", "contiguous")
    call = adapter.prepare(adapter.function("argmax"), mode, 1, False, True)
    assert adapter.to_numpy(call(x))[0].tolist() == [1, 0]


def test_determinism_and_threads_get_a_process_of_their_own():
    assert variants.parse("threads=1").process_for("tensorflow") == ("threads=1",)
    assert variants.parse("threads=1").process_for("torch") == ()
    assert variants.parse("deterministic").process_for("tensorflow") == ("deterministic",)
    assert variants.process_env(("threads=1",), framework="tensorflow") == {
        "TF_NUM_INTRAOP_THREADS": "1"}
    assert variants.process_env(("deterministic",), framework="tensorflow") == {
        "TF_DETERMINISTIC_OPS": "1"}
    assert variants.parse("function+threads=1").frameworks == {"tensorflow"}


def test_reproducer_of_a_variant_sets_it_up():
    case = select(build_suite(), ["ties-short"])[0]
    script = reproducer(case, Target("tensorflow", "cpu", "float32", variant="xla+threads=1"))
    assert "os.environ['TF_NUM_INTRAOP_THREADS'] = '1'" in script
    assert script.index("TF_NUM_INTRAOP_THREADS") < script.index("import tensorflow as tf")
    assert f"tf.function(lambda x: tf.math.argmax(x, axis={case.dim}), jit_compile=True)" in script


@pytest.mark.slow
def test_the_worker_loads_tensorflow_without_jax_and_jax_still_imports_after():
    pytest.importorskip("jax")
    script = ("import sys\n"
              "from auditor.worker.backends import tf_backend\n"
              "tf_backend._load()\n"
              "print('jax' in sys.modules, int(tf_backend.tf.math.argmax([1.0, 3.0, 2.0])))\n"
              "import jax.numpy as jnp\n"
              "print(int(jnp.argmax(jnp.array([1.0, 3.0, 2.0]))))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "1", "1"]


@pytest.mark.slow
def test_reproducer_runs_with_tensorflow_alone(tmp_path):
    case = select(build_suite(), ["nan-rows"])[0]
    target = Target("tensorflow", "cpu", "float32")
    script = reproducer(case, target, positions=[(0,)])
    assert "torch" not in script and "onnx" not in script
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    reference = script.rsplit("is ", 1)[1].strip()
    assert done.stdout.strip() != reference  # TensorFlow's CPU argmax passes over the NaN


@pytest.mark.slow
def test_tensorflow_variants_on_the_suite(audit):
    result = audit("run", "-q", "--framework", "tensorflow", "--dtype", "float32", "--variant",
                   "eager,deterministic,threads=1", "--repeats", "2", "--processes", "1",
                   "--cases", "ties-short,nan-rows")
    assert result.code == 1, result.err
    targets = {t["id"]: t for t in result.results["targets"]}
    assert targets["tensorflow/cpu/float32/threads=1"]["settings"]["TF_NUM_INTRAOP_THREADS"] == "1"
    assert targets["tensorflow/cpu/float32/deterministic"]["settings"]["op_determinism"] is True
    assert targets["tensorflow/cpu/float32"]["settings"]["op_determinism"] is False
    kinds = {(f["kind"], f["case"]) for f in result.results["findings"] if f["severity"] == "error"}
    assert kinds == {("nan_policy", "nan-rows")}  # ties: first, as documented; NaN: passed over
