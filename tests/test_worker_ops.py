"""The worker's twins compute what the reproducers print, in argmax's shapes; compile stays compiled."""
import importlib

import numpy as np
import pytest
from synthetic import suite_case

from auditor import ops
from auditor.worker.backends import bind, load
from auditor.worker.casting import narrow

CASES = ["ties-short", "nan-rows", "dims-0", "dims-2-keep", "dims-none", "dims-none-keep",
         "layout-transposed", "layout-broadcast-dim0", "scalar", "scalar-keep", "empty-batch"]
#: Ops that promise the first index (and the first NaN) on these cases.
PROMISE_FIRST = {("numpy", "argmax"), ("numpy", "argmin"), ("torch", "argmax"),
                 ("torch", "argmin"), ("torch", "max"), ("jax", "argmax"), ("jax", "argmin")}


def _namespace(framework):
    names = {"np": np}
    if framework == "torch":
        names["torch"] = importlib.import_module("torch")
    if framework == "jax":
        names["jax"] = importlib.import_module("jax")
        names["jnp"] = importlib.import_module("jax.numpy")
    return names


@pytest.fixture(scope="module", params=["numpy", "torch", "jax"])
def adapter(request):
    pytest.importorskip(request.param)
    return request.param, load(request.param)


@pytest.mark.parametrize("case_id", CASES)
def test_each_op_matches_its_reproducer_expression_and_argmax_shape(adapter, case_id):
    framework, backend = adapter
    case = suite_case(case_id)
    for op in ops.for_framework(framework):
        x = backend.to_native(narrow(case.values, "float32"), "float32", "cpu", case.layout)
        got, dtype = backend.to_numpy(backend.function(op)(x, dim=case.dim, keepdim=case.keepdim))
        shown = eval(ops.expression(framework, op, case.dim, case.keepdim), {**_namespace(framework), "x": x})
        np.testing.assert_array_equal(got, backend.to_numpy(shown)[0], err_msg=f"{op} on {case_id}")
        assert got.shape == case.output_shape, (op, case_id)
        assert dtype == backend.describe()["index_dtypes"][op]
        if (framework, op) in PROMISE_FIRST:
            np.testing.assert_array_equal(got, case.reference("float32", ops.sense(op)), err_msg=op)


def test_twins_raise_on_an_empty_reduction(adapter):
    framework, backend = adapter
    case = suite_case("empty-dim")
    x = backend.to_native(narrow(case.values, "float32"), "float32", "cpu", case.layout)
    for op in ops.for_framework(framework):
        with pytest.raises(Exception):  # noqa: B017 - each framework raises its own type
            backend.to_numpy(backend.function(op)(x, dim=case.dim, keepdim=case.keepdim))


def test_each_bound_call_has_a_code_object_of_its_own():
    argmax = load("numpy").function("argmax")
    first, second = bind(argmax, 0, False), bind(argmax, 1, False)
    assert first.__code__ is not second.__code__
    assert first(np.array([1, 3, 2])) == 1


@pytest.mark.slow
def test_compile_compiles_every_signature_and_never_falls_back_to_eager():
    torch = pytest.importorskip("torch")
    from auditor.worker.backends.torch_backend import cxx_compiler

    if cxx_compiler() is None:
        pytest.skip("no C++ compiler for torch.compile on the CPU")
    counters = importlib.import_module("torch._dynamo.utils").counters
    backend = load("torch")
    fn = backend.function("argmax")
    before = counters["stats"]["unique_graphs"]
    with backend.configure({"mode": "compile"}) as settings:
        for n in range(3, 14):  # more signatures than dynamo's recompile limit (8)
            call = backend.prepare(fn, "compile", 1, False, True)
            x = torch.arange(2.0 * n).reshape(2, n)
            assert call(x).tolist() == [n - 1, n - 1]
    assert counters["stats"]["unique_graphs"] - before == 11
    assert settings["compile"]["dynamic"] is False and settings["compile"]["cxx"]


def test_torch_settings_are_set_for_a_target_and_restored_after():
    torch = pytest.importorskip("torch")
    backend = load("torch")
    threads = torch.get_num_threads()
    with backend.configure({"threads": 1, "deterministic": True, "flush_denormal": True}) as settings:
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        tiny = torch.tensor([1e-40, 2e-40])
        assert bool((tiny * 1 == 0).all()) is settings["flush_denormal"]
    assert settings["num_threads"] == 1 and settings["deterministic_algorithms"] is True
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
    assert bool((torch.tensor([1e-40]) * 1 != 0).all())  # flushing is off again


def test_a_target_without_deterministic_mode_leaves_it_untouched(monkeypatch):
    """Setting the mode imports torch._inductor (seconds in torch 2.13): an eager target never
    calls it, and a deterministic one sets it and puts it back."""
    torch = pytest.importorskip("torch")
    backend = load("torch")
    calls = []
    real = torch.use_deterministic_algorithms
    monkeypatch.setattr(torch, "use_deterministic_algorithms",
                        lambda mode, **kw: (calls.append(mode), real(mode, **kw)))
    with backend.configure({}):
        pass
    assert calls == []
    with backend.configure({"deterministic": True}):
        assert torch.are_deterministic_algorithms_enabled()
    assert calls == [True, False] and not torch.are_deterministic_algorithms_enabled()
