"""CuPy and MLX backends: their data and reproducers (everywhere), their adapters where CuPy with a
CUDA GPU or MLX on Apple silicon is present (not on this project's machine: those tests skip)."""
import ast

import numpy as np
import pytest

from auditor import ops, registry
from auditor.cases import build_suite, select
from auditor.model import Target
from auditor.reproduce import reproducer
from auditor.worker.backends import cupy_backend, mlx_backend

CASES = ["ties-short", "dims-none-keep", "scalar", "nan-rows-min"]


@pytest.mark.parametrize("backend", [cupy_backend.BACKEND, mlx_backend.BACKEND],
                         ids=lambda b: b.name)
def test_registered_and_usable_without_the_framework(backend):
    assert registry.get(backend.name) is backend
    assert registry.problems(backend, backend.name) == ""
    assert set(backend.ops) == {"argmax", "argmin"} and backend.ops["argmin"].sense == "min"
    assert all(spec.url.startswith("https://") for spec in backend.ops.values())


@pytest.mark.parametrize("target, words", [
    (Target("cupy", "cuda:0", "float32"), ["import cupy", "cupy.cuda.Device(0)", "cupy.argmax(x, axis="]),
    (Target("cupy", "cuda:1", "int8", op="argmin"), ["cupy.cuda.Device(1)", "cupy.argmin(x, axis="]),
    (Target("mlx", "metal", "bfloat16", index_dtype="uint32"),
     ["import mlx.core as mx", "import ml_dtypes", "mx.set_default_device(mx.gpu)", "mx.argmax(x, axis="]),
    (Target("mlx", "cpu", "float32", op="argmin", index_dtype="uint32"),
     ["mx.set_default_device(mx.cpu)", "mx.argmin(x, axis="]),
])
def test_reproducers_are_python_that_calls_the_framework(target, words):
    for case in select(build_suite(), CASES):
        if not case.applies(target.dtype, target.sense):
            continue
        script = reproducer(case, target, positions=[(0,)] if case.dim is not None else ())
        ast.parse(script)
        for word in words:
            assert word in script, (word, script)


def test_calls_in_words():
    assert ops.describe("cupy", "argmax", 1, True) == "cupy.argmax(x, axis=1, keepdim=True)"
    assert ops.describe("mlx", "argmin", None, False) == "mx.argmin(x, axis=None)"


def test_cupy_adapter_on_a_cuda_device():
    pytest.importorskip("cupy", reason="CuPy is not installed here (this machine has no CUDA GPU)")
    adapter = cupy_backend.BACKEND.adapter()
    try:
        info = adapter.describe()
    except RuntimeError as exc:
        pytest.skip(f"CuPy sees no GPU: {exc}")
    assert registry.check_probe(info) == ""
    device = info["devices"][0]["id"]
    x = adapter.to_native(np.array([[1.0, 5.0, 5.0]], np.float32), "float32", device, "contiguous")
    result = adapter.prepare(adapter.function("argmax"), None, 1, False, True)(x)
    adapter.synchronize(device, result)
    assert adapter.to_numpy(result)[0].tolist() == [1]


def test_mlx_adapter_on_apple_silicon():
    pytest.importorskip("mlx.core", reason="MLX is not installed here (this machine is not Apple "
                                           "silicon)")
    adapter = mlx_backend.BACKEND.adapter()
    info = adapter.describe()
    assert registry.check_probe(info) == "" and info["index_dtype"] == "uint32"
    for device in (d["id"] for d in info["devices"]):
        x = adapter.to_native(np.array([[1.0, 5.0, 5.0]], np.float32), "float32", device,
                              "contiguous")
        result = adapter.prepare(adapter.function("argmax"), None, 1, False, True)(x)
        adapter.synchronize(device, result)
        assert adapter.to_numpy(result)[0].tolist() == [1]
