"""Planted faults of the shapes real argmax bugs take, which the suite of before missed and the
present one finds (in-process: the numpy implementations of tests/impls/ run as targets)."""
import importlib.util
import os

import numpy as np
import pytest
from synthetic import observe, suite_for, target

from auditor.cases import copy_case
from auditor.checks import run_checks
from auditor.worker.casting import INT_DTYPES

IMPLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "impls")


def _impl(file, function="argmax"):
    spec = importlib.util.spec_from_file_location(f"planted_{file[:-3]}", os.path.join(IMPLS, file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)


def _findings(fn, dtype="float32", op="argmax", cases=None, name="planted"):
    sense = "min" if op == "argmin" else "max"
    tgt = target(name, dtype=dtype, op=op)
    observations = observe(list(cases or suite_for(dtype, sense)), {tgt: fn}, processes=1,
                           repeats=1)
    return [f for f in run_checks(observations) if f.severity != "info"]


def _reduced_length(case):
    return case.values.size if case.dim is None else case.values.shape[case.axis]


def test_a_fault_in_one_layout_and_dim_is_found_there_and_only_there():
    findings = _findings(_impl("middle_dim_3d.py"))
    assert findings and {f.kind for f in findings} == {"tie_break"}
    cases = {f.case for f in findings}
    for case_id in cases:
        case = next(c for c in suite_for() if c.id == case_id)
        assert case.values.ndim == 3 and case.dim in (1, -2) and case.layout != "contiguous"
    assert {"grid3-transposed-1", "grid3-permuted-201-m2", "grid3-reversed-1"} <= cases


def test_a_vector_kernels_dropped_tail_element_is_found_on_every_length_8k_plus_1():
    findings = _findings(_impl("tail_off_by_one.py"))
    assert findings and {f.kind for f in findings} == {"wrong_index"}
    by_id = {c.id: c for c in suite_for()}
    lengths = {_reduced_length(by_id[f.case]) for f in findings}
    assert all(n % 8 == 1 and n > 8 for n in lengths)
    assert {9, 17, 33, 65, 129, 257, 1025, 4097} <= lengths


def test_an_argmin_only_fault_is_found_on_the_mirrors_and_not_on_argmaxs_inputs():
    flush = _impl("flush_argmin.py", "argmin")
    findings = _findings(flush, op="argmin")
    assert {f.case for f in findings if f.kind == "wrong_index"} >= {"subnormal-min"}
    assert all(f.case.endswith("-min") for f in findings)
    reused = [copy_case(c, sense="min") for c in suite_for("float32", "max")]  # the old way
    assert _findings(flush, op="argmin", cases=reused) == []


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_an_int8_only_fault_is_found_on_int8_alone(dtype):
    findings = _findings(_impl("int8_unsigned.py"), dtype=dtype)
    if dtype == "int8":
        assert {(f.kind, f.case) for f in findings} == {("wrong_index", "int-rows"),
                                                         ("wrong_index", "int-long"),
                                                         ("wrong_index", "int-flat")}
    else:
        assert findings == []


@pytest.mark.parametrize("dtype", [*INT_DTYPES, "float64"])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_correct_implementations_are_clean_on_every_dtype_and_op(dtype, op):
    numpy_op = getattr(np, op)
    correct = lambda x, dim=None, keepdim=False: numpy_op(x, axis=dim, keepdims=keepdim)  # noqa: E731
    assert _findings(correct, dtype=dtype, op=op) == []
