"""The suite's new cases through real workers: a race found with its rate and reproduced in a
loop, a memory-offset fault on torch views, and each target running the cases of its dtype family.

Each run is small (a few cases, float32 or a few dtypes, one or two processes); they start worker
processes, so they are marked slow.
"""
import ast
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_a_race_in_one_call_of_twenty_is_found_rated_and_reproduced_in_a_loop(audit, helpers):
    race, good = helpers.impl_spec("one_in_twenty.py"), helpers.impl_spec("good.py")
    result = audit("run", "-q", "--framework", "numpy", "--dtype", "float32", "--cases",
                   "ties-far-1025,ties-short", "--impl", race, "--impl", good)
    assert result.code == 1, result.err
    document = result.results
    racy = helpers.impl_target("one_in_twenty.py")
    (finding,) = helpers.findings_of(document, racy, "nondeterministic")
    assert finding["case"] == "ties-far-1025"  # a race case: 40 calls in each of 2 processes
    evidence = finding["evidence"]
    assert evidence["calls"] == 2 * 40 + 200  # then 200 more in a fresh process, for the rate
    assert [r["calls"] for r in evidence["rates"]] == [266, 14]
    assert "in 14 of 280 calls (5.0%" in finding["message"]
    assert helpers.findings_of(document, helpers.impl_target("good.py")) == []
    assert not any(f["case"] == "ties-short" for f in helpers.findings_of(document, racy))
    done = subprocess.run([sys.executable, "-c", finding["reproducer"]], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    counts = ast.literal_eval(done.stdout.strip())
    assert sum(counts.values()) == 1000 and sorted(counts.values()) == [50, 950]


def test_a_whole_input_memory_offset_on_torch_views_is_found_on_permuted_layouts(audit, helpers):
    pytest.importorskip("torch")
    spec = helpers.impl_spec("torch_memory_offset.py", framework="torch")
    result = audit("run", "-q", "--framework", "torch", "--dtype", "float32", "--repeats", "1",
                   "--processes", "1", "--impl", spec,
                   "--cases", "grid2-transposed-none,grid3-permuted-*-none,dims-none,grid2-window-none")
    assert result.code == 1, result.err
    document = result.results
    planted = helpers.impl_target("torch_memory_offset.py", framework="torch")
    wrong = helpers.findings_of(document, planted, "wrong_index")
    assert {f["case"] for f in wrong} == {
        "grid2-transposed-none", "grid3-permuted-021-none", "grid3-permuted-102-none",
        "grid3-permuted-120-none", "grid3-permuted-201-none"}
    assert helpers.findings_of(document, "torch/cpu/float32") == []  # torch's own is right


def test_each_target_runs_the_cases_of_its_dtype_family_and_layouts_it_can_make(audit, helpers):
    pytest.importorskip("jax")
    result = audit("run", "-q", "--framework", "numpy,jax", "--dtype", "int8,float32,float64",
                   "--repeats", "1", "--processes", "1",
                   "--cases", "int-rows,f64-near-tie,ties-short,grid2-transposed-0")
    assert result.code == 0, result.out + result.err
    document = result.results
    assert helpers.observed_cases(document, "numpy/cpu/int8") == {"int-rows"}
    assert helpers.observed_cases(document, "numpy/cpu/float32") == {"ties-short",
                                                                     "grid2-transposed-0"}
    assert helpers.observed_cases(document, "numpy/cpu/float64") == {
        "ties-short", "grid2-transposed-0", "f64-near-tie"}
    assert helpers.observed_cases(document, "jax/cpu/float32") == {"ties-short"}
    assert helpers.observed_cases(document, "jax/cpu/int8") == {"int-rows"}
    assert "jax: cases of layout transposed not run: jax arrays have no strides" in result.out
    assert {c["id"] for c in document["cases"]} == {  # the mirrors for argmin were not run
        "int-rows", "f64-near-tie", "ties-short", "grid2-transposed-0"}


def test_reproducers_of_integer_and_layout_findings_print_what_the_audit_saw(audit, helpers):
    int8 = helpers.impl_spec("int8_unsigned.py")
    middle = helpers.impl_spec("middle_dim_3d.py")
    result = audit("run", "-q", "--framework", "numpy", "--dtype", "int8,float32", "--repeats", "1",
                   "--processes", "1", "--impl", int8, "--impl", middle,
                   "--cases", "int-rows,grid3-permuted-201-1,grid3-window-m2,grid3-reversed-1")
    assert result.code == 1, result.err
    checked = 0
    for finding in result.results["findings"]:
        if finding["check"] != "reference":
            continue
        saw = re.search(r"# the audit saw (.+?)(;| \(|$)", finding["reproducer"].splitlines()[-1])
        done = subprocess.run([sys.executable, "-c", finding["reproducer"]], capture_output=True,
                              text=True, timeout=300, cwd=result.bundle)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == saw.group(1), finding["message"]
        checked += 1
    cases = {f["case"] for f in result.results["findings"] if f["check"] == "reference"}
    assert {"int-rows", "grid3-permuted-201-1", "grid3-reversed-1"} <= cases and checked >= 3
