"""audit bench in-process: shapes, statistics, calibration, timing loops, verdicts, the document's
shape and schema (hostile documents refused), rendering with escaping. No worker is started."""
import copy
import json
import os
import re

import numpy as np
import pytest

from auditor import bench, benchcompare, benchfile, files
from auditor.errors import BundleError, UserError
from auditor.model import Target
from auditor.reports import bench_html, bench_text
from auditor.runner import Group
from auditor.worker import bench as worker_bench

MACHINE = {"machine": "x86_64", "cpu": "Test CPU 9000", "cpu_count": 2,
           "memory_bytes": 24 * 2**30, "host": "box", "python": "3.11.7"}


def result(target="numpy/cpu/float32", shape=(1000, 1000), dim=0, median=1e-3, iqr=1e-5,
           minimum=None):
    nbytes = int(np.prod(shape)) * 4
    return {"target": target, "shape": list(shape), "dim": dim, "median_s": median,
            "iqr_s": iqr, "min_s": median * 0.9 if minimum is None else minimum, "samples": 10,
            "loops": 20, "bytes": nbytes, "gbps": nbytes / median / 1e9, "peak_gbps": 10.0,
            "peak_fraction": nbytes / median / 1e10}


def target_fields(framework="numpy", env="local", dtype="float32"):
    return {"framework": framework, "device": "cpu", "dtype": dtype, "variant": "eager",
            "op": "argmax", "impl": None, "env": env, "settings": {}}


def document(results=None, targets=None, **environment):
    results = [result()] if results is None else results
    targets = targets or {r["target"]: target_fields(r["target"].split("/")[0].split("@")[0],
                                                     r["target"].partition("@")[2] or "local")
                          for r in results}
    return {"format_version": 1,
            "environment": {**MACHINE, "peaks": {"cpu": {"gbps": 10.0, "by": {"numpy": {
                "gbps": 10.0, "bytes": 2**29, "kernel": "numpy sum of 512 MiB of float32"}}}},
                "loop_overhead_s": {"numpy": 1.5e-7},
                "load_average": {"start": [0.5, 0.4, 0.3], "end": [0.6, 0.4, 0.3]},
                **environment},
            "results": results,
            "run": {"command": ["audit", "bench"], "created": "2026-12-02T20:00:00+0000",
                    "complete": True, "seconds": 1.0, "samples": 5, "processes": 2,
                    "shapes": [list(r["shape"]) for r in results], "dims": [0],
                    "targets": targets, "failures": [], "skipped": [], "first_call_s": []}}


# --- shapes and dims -------------------------------------------------------------------------


def test_shapes_parse_and_bad_ones_are_refused_with_the_reason():
    assert bench.parse_shape("1000x1000") == (1000, 1000)
    assert bench.parse_shape(" 64X128256 ") == (64, 128256)
    assert bench.parse_shape("7") == (7,)
    for bad, words in (("10x", "not a shape"), ("axb", "not a shape"), ("", "not a shape"),
                       ("-1x5", "not a shape"), ("10x0", "empty"), ("2.5x3", "not a shape"),
                       ("99999999999999999999", "more elements")):
        with pytest.raises(UserError, match=words):
            bench.parse_shape(bad)


def test_dims_parse_none_and_are_checked_against_every_shape():
    assert [bench.parse_dim(d) for d in ("0", "-1", "None", "none")] == [0, -1, None, None]
    with pytest.raises(UserError, match="not an integer or None"):
        bench.parse_dim("first")
    bench.check_dims([(3, 4), (2, 3, 4)], [0, -1, None])
    with pytest.raises(UserError, match="--dim 2 is out of range for --shape 3x4"):
        bench.check_dims([(2, 3, 4), (3, 4)], [2])


def test_a_shape_too_large_for_memory_is_refused_before_anything_starts():
    limit = files.Limit(100 * 2**20, "a test limit")
    bench.check_memory([(1000, 1000)], ["float32"], limit)  # 4 MB of values: fits
    with pytest.raises(UserError, match=r"4096x4096 in float32 needs .* more than the 100.0 MiB"):
        bench.check_memory([(10, 10), (4096, 4096)], ["float32"], limit)


# --- statistics, calibration, timing loops ---------------------------------------------------


def test_median_iqr_and_min_of_the_samples():
    stats = bench.summarize_times([5.0, 1.0, 3.0, 2.0, 4.0])
    assert stats == {"median_s": 3.0, "iqr_s": 2.0, "min_s": 1.0, "samples": 5}
    assert bench.summarize_times([2.0, 4.0])["median_s"] == 3.0


def test_bandwidth_is_bytes_over_the_median_and_its_share_of_the_peak():
    found = bench.bandwidth(4_000_000, 1e-3, 8.0)
    assert found == {"gbps": pytest.approx(4.0), "peak_gbps": 8.0,
                     "peak_fraction": pytest.approx(0.5)}
    assert bench.bandwidth(4_000_000, 1e-3, None)["peak_fraction"] is None


def test_calibration_grows_the_loops_like_autorange_until_a_sample_is_long_enough():
    tried = []

    def time_loops(loops):  # a call of 1 ms
        tried.append(loops)
        return loops * 1e-3

    assert worker_bench.calibrate(time_loops, 0.05) == (50, pytest.approx(0.05))
    assert tried == [1, 2, 5, 10, 20, 50]
    assert worker_bench.calibrate(lambda loops: 2.0, 0.05) == (1, 2.0)  # one call is a sample
    assert worker_bench.calibrate(lambda loops: 0.0, 0.05, max_loops=1000)[0] == 1000


@pytest.mark.parametrize("mode, waits", [("none", 1), ("after-loop", 1), ("each-call", 7)])
def test_the_timing_loop_waits_for_the_device_as_the_framework_needs(mode, waits):
    calls, syncs = [], []
    loop = worker_bench.timing_loop(lambda x: calls.append(x) or len(calls), "x",
                                    lambda device, result: syncs.append(result), "cpu", mode)
    assert loop(7) >= 0
    assert calls == ["x"] * 7
    assert len(syncs) == waits and syncs[-1] == 7  # the last call's result is waited for


def test_each_call_waits_by_the_results_own_method_where_it_has_one():
    class Result:
        waited = 0

        def block_until_ready(self):
            Result.waited += 1
            return self

    syncs = []
    loop = worker_bench.timing_loop(lambda x: Result(), "x", lambda d, r: syncs.append(r), "cpu",
                                    "each-call", Result())
    assert loop(5) >= 0
    assert Result.waited == 5 and not syncs
    jax = pytest.importorskip("jax")
    waited = []
    jitted = jax.jit(lambda x: x.argmax())
    x = jax.numpy.arange(5.0)
    loop = worker_bench.timing_loop(jitted, x, lambda d, r: waited.append(r), "cpu", "each-call",
                                    jitted(x))
    assert loop(3) >= 0 and not waited  # jax's arrays wait on their own


def test_every_framework_has_its_timing_knowledge_in_one_table():
    from auditor.worker.backends import BUILTIN

    assert set(worker_bench.FRAMEWORK) == set(BUILTIN)  # every built-in backend, none left out
    for bits in [*worker_bench.FRAMEWORK.values(), worker_bench.GENERIC]:
        assert bits["sync"] in ("none", "after-loop", "each-call")
        assert callable(bits["stream"]) and callable(bits["free"])

    class ThirdParty:
        name = "plugin"

    assert worker_bench.known(ThirdParty()) is worker_bench.GENERIC
    assert worker_bench.GENERIC["sync"] == "each-call"  # waits through the plugin's synchronize


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int8", "uint64", "bool"])
def test_inputs_are_reproducible_and_of_the_dtype(dtype):
    first = worker_bench.host_input((30, 40), dtype, 0)
    assert first.shape == (30, 40)
    assert np.array_equal(first, worker_bench.host_input((30, 40), dtype, 0))
    assert first.dtype == (np.uint16 if dtype == "bfloat16" else np.dtype(dtype))
    assert len(np.unique(first)) > 1


def test_overhead_of_the_timing_loop_is_measured_with_the_same_wrappers():
    class Adapter:
        name = "numpy"

        def to_native(self, host, dtype, device, layout):  # the framework's own array
            return host

        def synchronize(self, device, result):
            pass

    class Worker:
        adapter = Adapter()

    seconds = worker_bench.Bench(Worker()).overhead("cpu", "none")
    assert 0 < seconds < 1e-3  # a no-op call per loop: well under a millisecond


# --- verdicts and comparison ------------------------------------------------------------------


@pytest.mark.parametrize("new, iqr, word", [
    (1.25e-3, 1e-5, "slower"),   # 25% slower, spread tiny
    (1.25e-3, 6e-4, "noisy"),    # 25% slower, but the spread covers it
    (1.05e-3, 1e-6, "same"),     # within the threshold
    (0.7e-3, 1e-5, "faster"),
    (0.7e-3, 8e-4, "noisy"),
])
def test_verdicts_need_the_threshold_and_the_spread(new, iqr, word):
    old = result(median=1e-3, iqr=iqr)
    ratio, found = benchcompare.verdict(old, result(median=new, iqr=iqr), 0.10)
    assert ratio == pytest.approx(new / 1e-3)
    assert found == word


def test_threshold_changes_the_verdict():
    old, new = result(median=1e-3), result(median=1.25e-3)
    assert benchcompare.verdict(old, new, 0.10)[1] == "slower"
    assert benchcompare.verdict(old, new, 0.30)[1] == "same"


def test_compare_pairs_targets_across_environments_and_fails_on_slower_and_failed():
    old = document([result(median=1e-3), result(dim=-1, median=2e-4),
                    result(shape=(10, 10), median=1e-5)])
    new_results = [result("numpy/cpu/float32@np2", median=2e-3),
                   result("numpy/cpu/float32@np2", dim=-1, median=2e-4),
                   result("numpy/cpu/float32@np2", shape=(64, 64), median=1e-5)]
    new = document(new_results)
    new["run"]["failures"] = [{"target": "numpy/cpu/float32@np2", "shape": [10, 10], "dim": 0,
                               "errors": [{"type": "ProcessDied", "message": "killed"}]}]
    comparison = benchcompare.compare(old, new, 0.10)
    words = {(tuple(p["shape"]), p["dim"]): p["verdict"] for p in comparison["pairs"]}
    assert words == {((1000, 1000), 0): "slower", ((1000, 1000), -1): "same",
                     ((10, 10), 0): "failed"}
    assert comparison["pairs"][0]["verdict"] == "failed"  # worst first
    assert comparison["verdict"] == "fail"
    assert comparison["only_new"] == [{"target": "numpy/cpu/float32@np2", "shape": [64, 64],
                                       "dim": 0}]
    assert comparison["counts"]["slower"] == 1


def test_compare_passes_when_nothing_is_slower_and_does_not_pair_other_dtypes():
    old = document([result(median=1e-3)])
    same = benchcompare.compare(old, copy.deepcopy(old))
    assert same["verdict"] == "pass" and same["counts"]["same"] == 1
    other = document([result("numpy/cpu/float16", median=9e-3)],
                     targets={"numpy/cpu/float16": target_fields(dtype="float16")})
    found = benchcompare.compare(old, other)
    assert found["pairs"] == [] and found["verdict"] == "pass"
    assert len(found["only_old"]) == 1 and len(found["only_new"]) == 1


def test_different_machines_are_refused_unless_forced_with_the_reason():
    old, new = dict(MACHINE), dict(MACHINE, cpu="Other CPU", cpu_count=8)
    with pytest.raises(UserError, match=r"different machines \(CPU 'Test CPU 9000' vs 'Other "
                                        r"CPU'; CPUs 2 vs 8\).*--force"):
        benchcompare.check_machines(old, new, force=False)
    assert len(benchcompare.check_machines(old, new, force=True)) == 2
    assert benchcompare.check_machines(old, dict(MACHINE, host="other-name"), False) == []


def test_a_device_of_another_name_is_another_machine():
    def env(name):
        return dict(MACHINE, frameworks={"torch": {"version": "2", "devices": [
            {"id": "cpu", "name": "x"}, {"id": "cuda:0", "name": name}]}})
    assert benchcompare.differences(env("NVIDIA H100"), env("NVIDIA H200")) == [
        "device cuda:0 'NVIDIA H100' vs 'NVIDIA H200'"]


# --- the document: shape, schema, hostile files ----------------------------------------------


def fake_bench(tmp_path):
    """Return a Bench with two targets and measurements set by hand (no worker started)."""
    plan = bench.BenchPlan(shapes=[(10, 10), (1000, 1000)], dims=[0, None], samples=3,
                           processes=1)
    runner = bench.Bench(plan, bench.targets_plan([], [], [], [], [], [], [], True, 1, 60, 180))
    for framework in ("numpy", "torch"):
        target = Target(framework, "cpu", "float32")
        runner.runner.targets[target.id] = (target, Group(framework))
        for shape in plan.shapes:
            for dim in plan.dims:
                entry = runner.entry(target, shape, dim)
                entry.times, entry.loops, entry.first_s = [3e-4, 1e-4, 2e-4], 50, [1e-3]
    runner.entry(Target("torch", "cpu", "float32"), (1000, 1000), None).errors.append(
        {"type": "ProcessDied", "message": "killed by signal 11 (SIGSEGV)", "where": "",
         "process": 0})
    runner.peaks["cpu"] = {"numpy": {"gbps": [4.0, 5.0, 6.0], "bytes": 2**26, "kernel": "k"}}
    runner.overhead["numpy"] = 1.5e-7
    return runner


def test_the_json_document_has_exactly_the_shape_ci_scripts_read(tmp_path):
    found = bench.document(fake_bench(tmp_path), [0.1, 0.2, 0.3], {"command": ["audit"],
                                                                    "created": "now"}, True)
    assert list(found)[:3] == ["format_version", "environment", "results"]
    assert found["format_version"] == 1
    assert len(found["results"]) == 7  # 2 targets x 2 shapes x 2 dims, one failed
    for entry in found["results"]:
        assert tuple(entry) == benchfile.RESULT_KEYS
    first = found["results"][0]
    assert first["target"] == "numpy/cpu/float32" and first["shape"] == [10, 10]
    assert first["median_s"] == 2e-4 and first["min_s"] == 1e-4 and first["samples"] == 3
    assert first["bytes"] == 400 and first["peak_gbps"] == 5.0
    assert first["gbps"] == pytest.approx(400 / 2e-4 / 1e9)
    assert found["run"]["failures"][0]["target"] == "torch/cpu/float32"
    assert found["environment"]["peaks"]["cpu"]["gbps"] == 5.0
    json.loads(benchfile.dumps(found))
    benchfile.validate(found)  # what bench writes, bench reads


HOSTILE = [
    (lambda d: d.update(format_version=2), "newer than the 1"),
    (lambda d: d.update(format_version="1"), "format_version is a string"),
    (lambda d: d["results"][0].update(median_s="fast"), r"results\[0\].median_s is a string"),
    (lambda d: d["results"][0].update(median_s=-1.0), "less than 1e-12"),
    (lambda d: d["results"][0].update(median_s=5e-324), "less than 1e-12"),
    (lambda d: d["results"][0].update(median_s=1e308), "more than a day"),
    (lambda d: d["results"][0].update(median_s=float("nan")), "not a finite number"),
    (lambda d: d["results"][0].update(min_s=5.0), "at least min_s"),
    (lambda d: d["results"][0].update(shape=[0, 5]), r"shape\[0\] is 0"),
    (lambda d: d["results"][0].update(shape=[2**40, 2**40]), "2\\^62"),
    (lambda d: d["results"][0].update(dim=5), "out of range"),
    (lambda d: d["results"][0].pop("iqr_s"), "has no 'iqr_s'"),
    (lambda d: d["results"].append(copy.deepcopy(d["results"][0])), "repeats"),
    (lambda d: d["results"][0].update(target="torch/cpu/float32"), "run.targets does not list"),
    (lambda d: d["results"][0].update(target="\ud800"), "not Unicode text"),
    (lambda d: d["run"]["targets"]["numpy/cpu/float32"].update(framework="Evil!"),
     "not a backend name"),
    (lambda d: d["run"].update(comparison={"threshold": 0.1, "verdict": "fail\x1b]0;x\x07",
                                           "counts": {}, "pairs": []}), "comparison.verdict"),
    (lambda d: d["run"].update(comparison={"pairs": [{"target": "x"}]}), "comparison"),
    (lambda d: d["run"].update(first_call_s=[{"target": "t", "seconds": [1.0]}]), "has no 'shape'"),
    (lambda d: d["environment"]["peaks"]["cpu"]["by"]["numpy"].pop("kernel"), "has no 'kernel'"),
    (lambda d: d["environment"].update(cpu_count="many"), "cpu_count is a string"),
    (lambda d: d.update(results={}), "results is an object"),
]


@pytest.mark.parametrize("spoil, words", HOSTILE)
def test_hostile_documents_are_refused_naming_the_field(spoil, words):
    found = document()
    spoil(found)
    with pytest.raises(BundleError, match=words):
        benchfile.validate(found, "bench.json")


def test_hostile_files_are_refused_in_one_line(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100 + "]" * 100)
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"{\xff\xfe")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, words in ((deep, "nests 100 levels"), (garbage, "not UTF-8"),
                        (fifo, "named pipe"), (tmp_path / "absent", "does not exist"),
                        (tmp_path, "has no bench.json")):
        with pytest.raises(UserError, match=words):
            benchfile.load(str(path))


def test_a_bundle_and_a_json_file_are_told_from_results_bundles(tmp_path):
    good = document()
    benchfile.prepare(str(tmp_path / "b"))
    benchfile.write(str(tmp_path / "b"), good)
    (tmp_path / "doc.json").write_text(json.dumps(good))
    assert benchfile.load(str(tmp_path / "b")) == good
    assert benchfile.load(str(tmp_path / "doc.json")) == good
    assert benchfile.is_bench(str(tmp_path / "b")) and benchfile.is_bench(str(tmp_path / "doc.json"))
    results = tmp_path / "results"
    results.mkdir()
    (results / "results.json").write_text("{}")
    assert not benchfile.is_bench(str(results))
    (tmp_path / "base.npz").write_bytes(b"PK\x03\x04")
    assert not benchfile.is_bench(str(tmp_path / "base.npz"))
    with pytest.raises(UserError, match="holds a results bundle"):
        benchfile.prepare(str(results))


# --- rendering ------------------------------------------------------------------------------------

EVIL = "numpy[<script>alert('x')</script>&\"|*_]/cpu/float32"


def evil_document():
    found = document([result(EVIL), result(EVIL, shape=(10, 10), dim=None)],
                     targets={EVIL: target_fields()}, cpu="<b>cpu</b>")
    found["run"]["skipped"] = ["<img src=x onerror=alert(1)>"]
    found["run"]["failures"] = [{"target": EVIL, "shape": [5], "dim": 0, "errors": [
        {"type": "RuntimeError", "message": "</td><script>bad()</script>\x1b[31m"}]}]
    return found


def test_html_escapes_everything_from_the_document_and_draws_each_target():
    found = evil_document()
    old = copy.deepcopy(found)
    found["results"][0]["median_s"] *= 2
    found["run"]["comparison"] = benchcompare.compare(old, found)
    page = bench_html.render(found)
    assert "<script>" not in page and "<img" not in page and "<b>cpu" not in page
    assert "&lt;script&gt;alert(" in page and "&lt;img src=x" in page
    assert page.count("<svg") == 1  # one target, one chart
    assert page.count("<circle") == 2 and 'class="peak"' in page
    assert "Against the baseline: FAIL" in page and "slower" in page
    assert re.search(r"Content-Security-Policy\" content=\"default-src 'none'", page)


def test_markdown_and_terminal_keep_text_inert_and_on_one_line():
    found = evil_document()
    text = bench_text.render(found)
    assert "\x1b" not in text and "\\x1b" in text
    assert "1000x1000" in text and "10x10" in text
    summary = bench_text.markdown(found)
    assert "<script>" not in summary and "&lt;script&gt;" in summary
    found["run"]["skipped"] = ["&lt;b>"]
    assert "&amp;lt;b&gt;" in bench_text.markdown(found)  # shows as typed, not as <b>
    row = next(line for line in summary.splitlines() if line.startswith("| numpy"))
    assert row.count(" | ") == 3  # target | dim | two shapes: the | in the name is escaped


def test_the_terminal_table_has_a_row_per_target_and_dim_and_a_column_per_shape():
    found = document([result(shape=s, dim=d, median=m) for s, d, m in (
        ((10, 10), 0, 2e-6), ((1000, 1000), 0, 1.5e-3), ((10, 10), -1, 3e-6))])
    found["run"]["shapes"] = [[10, 10], [1000, 1000]]
    lines = bench_text.render(found).splitlines()
    header = next(line for line in lines if line.startswith("target"))
    assert header.split()[-2:] == ["10x10", "1000x1000"]
    row = next(line for line in lines if line.startswith("numpy/cpu/float32"))
    assert row.split()[1:] == ["0", "0.002", "1.5"]
    below = lines[lines.index(row) + 1].split()
    assert below[0] == f"{400 / 2e-6 / 1e9:.3g}"
    assert any(line.split()[:1] == ["-1"] and line.split()[-1] == "-" for line in lines)


# --- the worker's side, in-process with numpy's adapter ----------------------------------------


def run_worker(header, impls=None):
    """Run the bench request `header` in an in-process worker; return its messages and reply."""
    import io

    from auditor.worker import backends
    from auditor.worker.main import Worker
    from auditor.worker.protocol import read_message

    worker = Worker(io.BytesIO())
    worker.adapter = backends.load("numpy")
    worker.impls = impls or {}
    reply = worker_bench.OPS[header.pop("op", "bench")](worker, header, b"")
    stream, messages = io.BytesIO(worker.out.getvalue()), []
    while stream.tell() < len(worker.out.getvalue()):
        messages.append(read_message(stream)[0])
    return [m for m in messages if m["op"] != "tick"], reply


def bench_header(**extra):
    return {"target": {"device": "cpu", "dtype": "float32", "op": "argmax", "impl": None,
                       "variant": {}}, "shape": [50, 60], "dims": [0, None], "samples": 3,
            "seed": 0, "min_sample_s": 0.001, **extra}


def test_the_worker_calibrates_in_a_first_process_and_reuses_loops_given():
    measured, reply = run_worker(bench_header())
    assert [m["dim"] for m in measured] == [0, None]
    for m in measured:
        assert len(m["times"]) == 3 and m["loops"] >= 1 and m["first_s"] > 0
        assert all(0 < t < 0.01 for t in m["times"])
    assert reply["done"] and 0 < reply["overhead_s"] < 1e-4
    measured, _ = run_worker(bench_header(loops={"0": 7}))
    assert measured[0]["loops"] == 7 and measured[1]["loops"] >= 1


def test_a_call_that_raises_is_an_error_for_its_dim_and_the_others_go_on():
    def picky(x, dim=None, keepdim=False):
        if dim is None:
            raise ValueError("no whole-array argmax here")
        return np.argmax(x, axis=dim)

    header = bench_header()
    header["target"]["impl"] = "picky"
    measured, _ = run_worker(header, {"picky": picky})
    assert "times" in measured[0]
    assert measured[1]["error"]["type"] == "ValueError"
    assert "no whole-array" in measured[1]["error"]["message"]


def test_the_worker_measures_a_peak_and_reports_no_device_memory_for_the_host():
    _, reply = run_worker({"op": "bench_peak", "device": "cpu", "bytes": 2**20, "samples": 2})
    assert reply["bytes"] == 2**20 and len(reply["gbps"]) == 2 and min(reply["gbps"]) > 0
    assert "numpy sum of 1 MiB" in reply["kernel"]
    _, reply = run_worker({"op": "bench_free", "devices": ["cpu"]})
    assert reply == {"free": {"cpu": None}}


def test_a_comparison_says_when_a_run_started_on_a_busy_machine():
    quiet = document()
    busy = document(load_average={"start": [7.9, 5.3, 3.0], "end": [6.4, 6.0, 3.7]})
    assert benchcompare.compare(quiet, quiet)["notes"] == []
    notes = benchcompare.compare(quiet, busy)["notes"]
    assert notes == ["NEW started at a load average of 7.9 on 2 CPUs: its timings include "
                     "other work on the machine"]
    assert "note: NEW started" in "\n".join(
        bench_text.render_comparison(benchcompare.compare(quiet, busy)))
