"""audit bench and audit compare on bench bundles through the CLI: refusals before anything starts
(in-process), comparisons of saved bundles (in-process), and a few small runs with workers."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_bench import MACHINE, document, result

from auditor import benchfile

#: The smallest useful bench: numpy only, one small shape, one dim, few samples, one process, and
#: a peak buffer of 16 MiB (a quarter of the memory limit).
SMALL = ["bench", "-q", "--framework", "numpy", "--shape", "10x10", "--dim", "0", "--samples",
         "2", "--processes", "1"]


@pytest.fixture
def small_memory(monkeypatch):
    monkeypatch.setenv("ARGMAX_AUDIT_MEMORY_LIMIT", "64M")


@pytest.mark.parametrize("args, words", [
    (["--shape", "10xa"], "is not a shape"),
    (["--shape", "0x10"], "is empty"),
    (["--shape", "10x10", "--dim", "2"], "--dim 2 is out of range for --shape 10x10"),
    (["--dim", "last"], "is not an integer or None"),
    (["--shape", "40000x40000"], "needs .* of memory to build, more than"),
    (["--samples", "0"], "--samples"),
])
def test_bad_shapes_and_dims_are_one_line_before_anything_starts(audit, helpers, tmp_path,
                                                                 small_memory, args, words):
    found = audit("bench", "--out", str(tmp_path / "b"), *args)
    line = helpers.one_line_error(found)
    assert __import__("re").search(words, line), line
    assert not (tmp_path / "b").exists()


def test_a_hostile_baseline_is_refused_before_anything_starts(audit, helpers, tmp_path):
    spoiled = document()
    spoiled["results"][0]["median_s"] = "fast"
    (tmp_path / "old.json").write_text(json.dumps(spoiled))
    found = audit("bench", "--out", str(tmp_path / "b"), "--baseline", str(tmp_path / "old.json"))
    assert "median_s is a string" in helpers.one_line_error(found)
    found = audit("bench", "--out", str(tmp_path / "b"), "--baseline", str(tmp_path / "nope"))
    assert "does not exist" in helpers.one_line_error(found)
    assert not (tmp_path / "b").exists()


def save(tmp_path, name, doc):
    benchfile.prepare(str(tmp_path / name))
    benchfile.write(str(tmp_path / name), doc)
    return str(tmp_path / name)


def test_compare_two_bench_bundles_exits_1_on_a_slowdown(audit, tmp_path):
    old = save(tmp_path, "old", document([result(median=1e-3), result(dim=-1, median=1e-4)]))
    slower = save(tmp_path, "new", document([result(median=1.5e-3), result(dim=-1, median=1e-4)]))
    found = audit("compare", old, slower, "-o", str(tmp_path / "c.html"), "--summary-md",
                  str(tmp_path / "c.md"))
    assert found.code == 1, found.err
    assert "1 slower, 1 same" in found.out and "FAIL: slower than allowed" in found.out
    assert "1.50  slower" in found.out
    assert "slower" in (tmp_path / "c.html").read_text()
    assert "FAIL" in (tmp_path / "c.md").read_text()
    assert audit("compare", old, slower, "--threshold", "0.6").code == 0
    assert audit("compare", old, old).code == 0


def test_compare_writes_the_comparison_as_json(audit, tmp_path):
    old = save(tmp_path, "old", document([result(median=1e-3)]))
    (tmp_path / "new.json").write_text(json.dumps(document([result(median=0.5e-3)])))
    found = audit("compare", old, str(tmp_path / "new.json"), "--json", "-")
    assert found.code == 0
    comparison = json.loads(found.out)
    assert comparison["pairs"][0]["verdict"] == "faster"
    assert comparison["pairs"][0]["ratio"] == pytest.approx(0.5)


def test_compare_refuses_other_machines_unless_forced(audit, helpers, tmp_path):
    old = save(tmp_path, "old", document())
    other = save(tmp_path, "new", document(cpu="Another CPU"))
    line = helpers.one_line_error(audit("compare", old, other))
    assert "different machines (CPU 'Test CPU 9000' vs 'Another CPU')" in line
    assert "--force" in line
    found = audit("compare", old, other, "--force")
    assert found.code == 0 and "machines differ (--force)" in found.out


def test_compare_refuses_a_bench_bundle_against_a_results_bundle(audit, helpers, tmp_path):
    old = save(tmp_path, "old", document())
    results = tmp_path / "results"
    results.mkdir()
    (results / "results.json").write_text("{}")
    assert "not a bench bundle" in helpers.one_line_error(audit("compare", old, str(results)))
    line = helpers.one_line_error(audit("compare", old, old, "--junit", str(tmp_path / "j.xml")))
    assert "--junit" in line


# --- runs with workers ------------------------------------------------------------------------


def test_a_small_bench_writes_the_document_the_bundle_and_the_table(audit, tmp_path, small_memory):
    out = str(tmp_path / "b")
    found = audit(*SMALL, "--out", out, "--json", "-", "--summary-md", str(tmp_path / "s.md"))
    assert found.code == 0, found.err
    doc = json.loads(found.out)
    assert [r["target"] for r in doc["results"]] == ["numpy/cpu/float32"]
    row = doc["results"][0]
    assert tuple(row) == benchfile.RESULT_KEYS
    assert row["shape"] == [10, 10] and row["dim"] == 0 and row["samples"] == 2
    assert 0 < row["min_s"] <= row["median_s"] < 0.01 and row["loops"] >= 1
    assert row["bytes"] == 400 and row["peak_gbps"] > 0
    assert 0 < doc["environment"]["loop_overhead_s"]["numpy"] < 1e-4
    assert "numpy/cpu/float32" in found.err and "peak on cpu" in found.err  # table on stderr
    assert benchfile.load(out) == doc
    assert os.path.isfile(os.path.join(out, "report.html"))
    assert "| numpy/cpu/float32 |" in open(os.path.join(out, "summary.md")).read()
    assert (tmp_path / "s.md").read_text() == open(os.path.join(out, "summary.md")).read()


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["tensorflow", "onnxruntime"])
def test_every_builtin_backend_is_timed_with_its_own_peak(audit, tmp_path, small_memory,
                                                           framework):
    """TensorFlow and ONNX Runtime are timed like numpy, torch and jax: a row per dim, the loop
    overhead, and the peak of their own sum kernel (tf.math.reduce_sum; a ReduceSum session)."""
    pytest.importorskip(framework)
    found = audit("bench", "-q", "--framework", framework, "--shape", "10x10", "--samples", "2",
                  "--processes", "1", "--out", str(tmp_path / "b"), "--json", "-")
    assert found.code == 0, found.out + found.err
    doc = json.loads(found.out)
    assert not doc["run"]["failures"]
    assert [(r["target"], r["dim"]) for r in doc["results"]] == [
        (f"{framework}/cpu/float32", 0), (f"{framework}/cpu/float32", -1)]
    assert all(r["median_s"] > 0 and r["peak_gbps"] > 0 for r in doc["results"])
    peak = doc["environment"]["peaks"]["cpu"]["by"][framework]
    assert peak["gbps"] > 0 and peak["kernel"].startswith(f"{framework} sum of")
    assert 0 < doc["environment"]["loop_overhead_s"][framework] < 1e-3


@pytest.mark.slow
def test_targets_that_crash_hang_or_raise_are_reported_and_the_rest_completes(
        audit, helpers, tmp_path, small_memory):
    impls = [f"--impl={helpers.impl_spec(f)}" for f in ("segfault.py", "hangs.py", "raises.py",
                                                        "good.py")]
    found = audit(*SMALL, "--out", str(tmp_path / "b"), "--timeout", "3", *impls, "--json",
                  str(tmp_path / "b.json"))
    assert found.code == 1, found.err
    doc = json.loads((tmp_path / "b.json").read_text())
    measured = {r["target"] for r in doc["results"]}
    assert measured == {"numpy/cpu/float32", helpers.impl_target("good.py")}
    failures = {f["target"]: f["errors"][0]["type"] for f in doc["run"]["failures"]}
    assert failures == {helpers.impl_target("segfault.py"): "ProcessDied",
                        helpers.impl_target("hangs.py"): "Timeout",
                        helpers.impl_target("raises.py"): "RuntimeError"}
    assert "killed by signal 11" in found.out and "planted failure" in found.out


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_measured(tmp_path):
    out = tmp_path / "b"
    env = dict(os.environ, ARGMAX_AUDIT_MEMORY_LIMIT="256M")
    args = [sys.executable, "-m", "auditor", "bench", "--framework", "numpy", "--out", str(out),
            "--processes", "3", *[f"--shape={n}x{n}" for n in range(10, 400, 10)]]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            if json.loads((out / "bench.json").read_text())["results"]:
                break
        except (OSError, ValueError):
            continue
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    doc = benchfile.load(str(out))
    assert doc["run"]["complete"] is False and doc["results"]
    assert "incomplete" in stdout and (out / "report.html").is_file()


@pytest.mark.slow
def test_bench_against_a_baseline_exits_1_when_slower(audit, tmp_path, small_memory):
    first = audit(*SMALL, "--out", str(tmp_path / "old"))
    assert first.code == 0, first.err
    old = benchfile.load(str(tmp_path / "old"))
    for row in old["results"]:  # the old run was a thousand times faster
        row.update(median_s=row["median_s"] / 1000, min_s=row["min_s"] / 1000,
                   iqr_s=row["iqr_s"] / 1000)
    (tmp_path / "old.json").write_text(json.dumps(old))
    found = audit(*SMALL, "--out", str(tmp_path / "new"), "--baseline", str(tmp_path / "old.json"))
    assert found.code == 1, found.err
    assert "1 slower" in found.out and "FAIL" in found.out
    assert benchfile.load(str(tmp_path / "new"))["run"]["comparison"]["verdict"] == "fail"
    other = dict(old, environment=dict(old["environment"], cpu="Not " + MACHINE["cpu"]))
    (tmp_path / "other.json").write_text(json.dumps(other))
    found = audit(*SMALL, "--out", str(tmp_path / "new2"), "--baseline",
                  str(tmp_path / "other.json"))
    assert found.code == 2 and "different machines" in found.err


def test_report_re_renders_a_bench_bundle_and_exits_as_the_run_did(audit, tmp_path):
    path = save(tmp_path, "b", document([result(median=1e-3)]))
    found = audit("report", path, "--summary-md", str(tmp_path / "s.md"))
    assert found.code == 0, found.err
    assert "numpy/cpu/float32" in found.out and "1000x1000" in found.out
    assert "<svg" in (tmp_path / "b" / "report.html").read_text()
    assert "| numpy/cpu/float32 |" in (tmp_path / "s.md").read_text()
    failed = document()
    failed["run"]["failures"] = [{"target": "numpy/cpu/float32", "shape": [5], "dim": 0,
                                  "errors": [{"type": "Timeout", "message": "hung"}]}]
    assert audit("report", save(tmp_path, "f", failed)).code == 1
    cut = document()
    cut["run"]["complete"] = False
    found = audit("report", save(tmp_path, "c", cut))
    assert found.code == 3 and "did not finish" in found.err


def test_report_renders_a_bench_json_document_and_writes_html_only_where_asked(audit, tmp_path,
                                                                              helpers):
    path = tmp_path / "bench.json"
    path.write_text(benchfile.dumps(document([result(median=1e-3)])))
    found = audit("report", str(path))
    assert found.code == 0, found.err
    assert "numpy/cpu/float32" in found.out and "give -o FILE" in found.err
    assert sorted(os.listdir(tmp_path)) == ["bench.json"]  # nothing written beside it
    assert audit("report", str(path), "-o", str(tmp_path / "r.html")).code == 0
    assert "<svg" in (tmp_path / "r.html").read_text()
    results = tmp_path / "results.json"
    results.write_text("{}")
    line = helpers.one_line_error(audit("report", str(results)))
    assert "is a file: give a results bundle's folder" in line
