"""The worker package stays self-contained and speaks its framing without pickle."""
import ast
import io
import pathlib

import numpy as np
import pytest

from auditor.worker import layouts, protocol
from auditor.worker.backends import as_indices

WORKER = pathlib.Path(__file__).resolve().parents[1] / "auditor" / "worker"


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


@pytest.mark.parametrize("path", sorted(WORKER.rglob("*.py")), ids=lambda p: p.name)
def test_worker_needs_only_numpy_and_its_framework(path):
    # numpy, and the frameworks the built-in backends drive (each imported in its worker only)
    allowed = {"numpy", "ml_dtypes", "torch", "jax", "jaxlib", "onnx", "onnxruntime",
               "tensorflow", "cupy", "mlx"}
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in {"auditor", "click", "jinja2"}, f"{path.name} imports {name}"
        assert top in allowed or top in __import__("sys").stdlib_module_names, name


def test_messages_round_trip_with_arrays():
    stream = io.BytesIO()
    writer = protocol.PayloadWriter()
    refs = [writer.add(np.arange(6, dtype=np.float32).reshape(2, 3)), writer.add(np.int64(7))]
    protocol.write_message(stream, {"op": "x", "refs": refs}, writer.payload())
    stream.seek(0)
    header, payload = protocol.read_message(stream)
    assert protocol.read_array(payload, header["refs"][0]).shape == (2, 3)
    assert protocol.read_array(payload, header["refs"][1]).shape == ()  # 0-d stays 0-d


def test_garbage_is_refused():
    with pytest.raises(protocol.ProtocolError):
        protocol.read_message(io.BytesIO(b"\x05\x00\x00\x00\x00\x00\x00\x00hello"))
    with pytest.raises(EOFError):
        protocol.read_message(io.BytesIO(b"\x05\x00"))
    with pytest.raises(protocol.ProtocolError):
        protocol.read_array(b"\x00" * 8, {"offset": 0, "dtype": "<f8", "shape": [4]})
    with pytest.raises(protocol.ProtocolError):
        protocol.read_array(b"\x00" * 8, {"offset": 0, "dtype": "|O", "shape": [1]})
    # sizes whose product wraps round to 0 in int64, negative sizes, sizes that are not numbers
    for shape in ([2**62, 2**62], [-1, -8], ["8"], [1.0], 8):
        with pytest.raises(protocol.ProtocolError):
            protocol.read_array(b"\x00" * 8, {"offset": 0, "dtype": "<f8", "shape": shape})


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "broadcast"])
def test_layouts_keep_the_values(layout):
    values = np.broadcast_to(np.arange(5, dtype=np.float32), (3, 5)).copy()
    adapter = __import__("auditor.worker.backends.np_backend", fromlist=["Adapter"]).Adapter()
    x = adapter.to_native(values, "float32", "cpu", layout)
    np.testing.assert_array_equal(x, values)
    assert x.flags.c_contiguous == (layout == "contiguous")
    assert layouts.base(values, layout).flags.c_contiguous


def test_indices_must_be_integers():
    assert as_indices(np.array([1.0, 2.0]), "ndarray")[1] == "float64"
    with pytest.raises(TypeError, match="non-integer"):
        as_indices(np.array([1.5]), "ndarray")
    with pytest.raises(TypeError, match="not integer"):
        as_indices(np.array(["a"]), "ndarray")


def _ticks_of_a_run(tick_every, impl=None, repeats=6):
    """Run numpy's argmax (or `impl`) on two cases in a Worker in this process; return the
    messages it wrote, by op."""
    from auditor.model import Case
    from auditor.worker.main import Worker
    from auditor.workers import cases_message

    out = io.BytesIO()
    worker = Worker(out)
    worker.hello({"framework": "numpy"}, b"")
    cases = [Case("a", np.arange(8, dtype=np.float32), None), Case("b", np.ones((2, 3), np.float32), 1)]
    worker.cases_(*cases_message(cases))
    if impl:
        worker.impls["slow"] = impl
    target = {"device": "cpu", "dtype": "float32", "op": "argmax", "impl": "slow" if impl else None}
    worker.run({"target": target, "cases": ["a", "b"], "repeats": repeats,
                "tick_every": tick_every}, b"")
    out.seek(0)
    ops = []
    while out.tell() < len(out.getvalue()):
        ops.append(protocol.read_message(out)[0]["op"])
    return ops


def test_a_worker_ticks_before_every_call_unless_told_how_often():
    assert _ticks_of_a_run(None).count("tick") == 12  # an older driver: one per call
    # quick calls: only the first (nothing had been said before it) starts a deadline
    assert _ticks_of_a_run(30.0) == ["tick", "result", "result"]


def test_a_worker_ticks_before_a_call_after_a_silence_of_tick_every():
    import time

    def slow(x, dim=None, keepdim=False):
        time.sleep(0.03)
        return np.argmax(x, axis=dim, keepdims=keepdim)

    ops = _ticks_of_a_run(0.01, impl=slow, repeats=3)
    assert ops[:4] == ["tick", "tick", "tick", "result"]  # each call came after 30 ms of silence
    # case b's first call comes right after case a's result (no tick needed), the others tick
    assert ops[-3:] == ["tick", "tick", "result"] and ops.count("tick") in (5, 6)


def test_numpy_worker_imports_ml_dtypes_only_for_a_bfloat16_array():
    """Importing ml_dtypes costs about a second of CPU (0.7): a numpy worker that never meets
    bfloat16 must not pay it, yet still says bfloat16 is supported, with ml_dtypes's version."""
    pytest.importorskip("ml_dtypes")
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from auditor.worker.backends import load\n"
        "adapter = load('numpy')\n"
        "info = adapter.describe()\n"
        "assert 'bfloat16' in info['devices'][0]['dtypes'], info\n"
        "assert info['build']['ml_dtypes'], info\n"
        "x = adapter.to_native(np.arange(3, dtype=np.float32), 'float32', 'cpu', 'contiguous')\n"
        "assert 'ml_dtypes' not in sys.modules\n"
        "bits = np.array([0x3F80, 0x4000, 0x3F80], dtype=np.uint16)  # 1.0, 2.0, 1.0\n"
        "x = adapter.to_native(bits, 'bfloat16', 'cpu', 'contiguous')\n"
        "assert 'ml_dtypes' in sys.modules and str(x.dtype) == 'bfloat16'\n"
        "print(int(adapter.argmax(x, 0, False)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def test_a_worker_leaves_at_bye_without_the_interpreters_teardown(tmp_path):
    """Exit handlers and module cleanup (0.8-1.3 s for torch, jax and TensorFlow) are skipped,
    and what the worker's code printed is still flushed to its stderr."""
    import io
    import subprocess
    import sys

    module = tmp_path / "chatty.py"
    module.write_text("import atexit, sys\n"
                      "print('printed, not flushed', end='')\n"
                      "atexit.register(lambda: sys.stderr.write('teardown ran'))\n"
                      "def argmax(x, dim=None, keepdim=False):\n"
                      "    return x.argmax(dim)\n")
    framed = io.BytesIO()
    protocol.write_message(framed, {"op": "hello", "framework": "numpy"})
    protocol.write_message(framed, {"op": "impls", "impls": [
        {"name": "chatty", "module": str(module), "function": "argmax"}]})
    protocol.write_message(framed, {"op": "bye"})
    done = subprocess.run([sys.executable, "-m", "auditor.worker"], input=framed.getvalue(),
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    replies = io.BytesIO(done.stdout)
    assert [protocol.read_message(replies)[0]["ok"] for _ in range(2)] == [True, True]
    assert b"printed, not flushed" in done.stderr and b"teardown ran" not in done.stderr
