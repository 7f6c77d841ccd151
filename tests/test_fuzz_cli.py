"""`audit fuzz` as a user runs it: a numpy worker, a planted implementation, the same outputs as
`audit run`, and `audit run --cases-from` replaying the shrunk examples as cases."""
import json
import os

import pytest
from conftest import findings_of, impl_spec, impl_target, one_line_error

FUZZ = ["fuzz", "-q", "--framework", "numpy", "--dtype", "float32", "--no-database",
        "--repeats", "2"]


def test_fuzz_finds_shrinks_and_reports_like_run_and_run_replays_it(audit, tmp_path):
    spec = impl_spec("rank1_view_offset.py")
    fuzzed = audit(*FUZZ, "--impl", spec, "--max-examples", "150", "--out", "fz",
                   "--junit", "fz.xml", "--summary-md", "fz.md", "--json", "fz.json")
    assert fuzzed.code == 1, fuzzed.err
    document = fuzzed.results
    assert document["metadata"]["suite"] == "fuzz"
    facts = document["metadata"]["fuzz"]
    assert facts["examples"] >= 150 and set(facts["shares"]) == {
        "generation", "ipc", "calls", "compile", "checks"}
    found = [f for f in findings_of(document, impl_target("rank1_view_offset.py"), "wrong_index")
             if f["severity"] == "error"]
    assert len(found) == 1
    case = next(c for c in document["cases"] if c["id"] == found[0]["case"])
    assert case["shape"] in ([2], [3], [4]) and case["layout"] != "contiguous", case
    assert "fuzz" in case["tags"] and "values = np.array([" in found[0]["reproducer"]
    for name in ("fz/report.html", "fz.xml", "fz.md", "fz.json"):
        assert os.path.getsize(tmp_path / name) > 0
    assert "examples judged" in fuzzed.out and "time shares" in fuzzed.out
    assert audit("report", "fz").code == 1
    assert audit("compare", "fz", "fz").code == 0  # no answer changed
    assert audit(*FUZZ, "--max-examples", "20", "--out", "other").code == 0  # same seed
    merged = audit("merge", "fz", "other", "-o", "merged")
    assert merged.code == 1 and os.path.isfile(tmp_path / "merged" / "report.html")
    replayed = audit("run", "-q", "--framework", "numpy", "--dtype", "float32", "--repeats", "1",
                     "--processes", "1", "--impl", spec, "--cases-from", "fz", "--cases", "fuzz",
                     "--out", "replay")
    assert replayed.code == 1
    again = findings_of(replayed.results, impl_target("rank1_view_offset.py"), "wrong_index")
    assert {f["case"] for f in again} == {found[0]["case"]}
    with open(tmp_path / "fz.json", encoding="utf-8") as handle:
        assert json.load(handle)["findings"] == document["findings"]


def test_a_correct_target_fuzzes_clean_and_exits_0(audit):
    result = audit(*FUZZ, "--max-examples", "60", "--out", "clean")
    assert result.code == 0, result.out + result.err
    assert result.results["findings"] == [] and result.results["metadata"]["complete"]
    # the summary counts every example judged, though a clean search keeps no case
    row, = result.results["summary"]["targets"]
    judged = result.results["metadata"]["fuzz"]["examples"]
    assert result.results["cases"] == [] and row["cases"] == judged >= 50
    assert row["calls"] == 2 * judged  # --repeats 2
    assert row["tie_policy"] == row["nan_policy"] == "first"


def test_the_summary_shows_what_a_planted_tie_break_did_on_every_example(audit, tmp_path):
    result = audit(*FUZZ, "--impl", impl_spec("last_tie.py"), "--max-examples", "40", "--out", "t")
    assert result.code == 1
    rows = {row["target"]: row for row in result.results["summary"]["targets"]}
    planted, stock = rows[impl_target("last_tie.py")], rows["numpy/cpu/float32"]
    examples = result.results["metadata"]["fuzz"]["examples"]
    assert planted["cases"] == stock["cases"] == examples > 40  # shrinking judged some too
    assert planted["tie_policy"] == "last" and stock["tie_policy"] == "first"
    assert planted["findings"] == {"tie_break": 1} and stock["findings"] == {}
    (tmp_path / "allow.toml").write_text('[[allow]]\nkind = "tie_break"\nreason = "known"\n')
    again = audit("report", "t", "--config", "allow.toml", "--json", "again.json")
    assert again.code == 0, again.err
    judged = json.loads((tmp_path / "again.json").read_text())
    rows = {row["target"]: row for row in judged["summary"]["targets"]}
    assert rows[impl_target("last_tie.py")] == dict(planted, findings={})  # still every example
    compared = audit("compare", "t", "t", "--json", "compared.json")
    assert compared.code == 0, compared.err
    rows = {row["target"]: row for row in
            json.loads((tmp_path / "compared.json").read_text())["summary"]["targets"]}
    assert rows[impl_target("last_tie.py")]["cases"] == planted["cases"]


def test_fuzz_usage_mistakes_are_one_line_and_exit_2(audit, tmp_path):
    one_line_error(audit("fuzz", "--database", str(tmp_path / "db"), "--no-database"))
    one_line_error(audit("fuzz", "--max-examples", "0"))
    one_line_error(audit("fuzz", "--framework", "nope"))
    one_line_error(audit("run", "--cases-from", str(tmp_path / "missing")))


def test_an_interrupt_keeps_the_findings_so_far_and_exits_3(audit, monkeypatch):
    from auditor import fuzz

    judged = fuzz.Search._judge
    calls = []

    def judge_then_stop(self, example):
        calls.append(1)
        if len(calls) > 120 and self.records:
            raise KeyboardInterrupt
        return judged(self, example)

    monkeypatch.setattr(fuzz.Search, "_judge", judge_then_stop)
    result = audit(*FUZZ, "--impl", impl_spec("nan_payload.py"), "--max-examples", "100000",
                   "--out", "stopped")
    assert result.code == 3, result.err
    assert "interrupted" in result.err
    document = result.results
    assert document["metadata"]["complete"] is False
    assert findings_of(document, impl_target("nan_payload.py"), "nan_policy")


@pytest.mark.slow
def test_the_database_folder_fills_and_a_rerun_finds_the_failure_first(audit, tmp_path):
    spec = impl_spec("nan_payload.py")
    args = ["fuzz", "-q", "--framework", "numpy", "--dtype", "float32", "--repeats", "1",
            "--impl", spec, "--database", str(tmp_path / "db")]
    assert audit(*args, "--max-examples", "200", "--out", "one").code == 1
    assert any(files for _, _, files in os.walk(tmp_path / "db"))
    rerun = audit(*args, "--max-examples", "1", "--seed", "5", "--out", "two")
    assert rerun.code == 1
    assert findings_of(rerun.results, impl_target("nan_payload.py"), "nan_policy")


@pytest.mark.slow
def test_stock_numpy_torch_and_jax_fuzz_clean_in_float32(audit):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    result = audit("fuzz", "-q", "--framework", "numpy,torch,jax", "--dtype", "float32",
                   "--no-database", "--max-examples", "150", "--out", "stock")
    document = result.results
    kinds = {(f["kind"], tuple(f["targets"])) for f in document["findings"]
             if f["severity"] != "info"}
    # jax flushes float32 subnormals to zero on the CPU (README: a documented divergence)
    assert all(kind == "wrong_index" and targets == ("jax/cpu/float32",)
               for kind, targets in kinds), kinds
    assert result.code in (0, 1)


@pytest.mark.slow
def test_torch_compile_fuzzing_compiles_each_signature_of_its_pool_once(audit):
    pytest.importorskip("torch")
    from auditor.worker.backends.torch_backend import cxx_compiler

    if cxx_compiler() is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    result = audit("fuzz", "-q", "--framework", "torch", "--dtype", "float32", "--variant",
                   "compile", "--no-database", "--max-examples", "40", "--repeats", "2",
                   "--out", "compiled")
    assert result.code == 0, result.out + result.err
    facts = result.results["metadata"]["fuzz"]
    assert facts["examples"] >= 40 and 0 < facts["compiles"] <= facts["signatures"] == 12
    assert facts["compile_s"] > 0 and "compiling:" in result.out


def test_a_driver_killed_mid_search_leaves_a_checkpoint_that_report_judges(audit, monkeypatch,
                                                                           tmp_path):
    import shutil

    from auditor import fuzz

    judged = fuzz.Search._judge
    copied, calls = [], []

    def judge_then_die(self, example):
        key = judged(self, example)
        calls.append(1)
        if len(calls) > 400:  # no checkpoint came: fail, do not search forever
            raise KeyboardInterrupt
        if self.records and not copied and (tmp_path / "killed-run" / "results.json").exists():
            # what a kill -9 leaves on disk: the last checkpoint
            shutil.copytree(tmp_path / "killed-run", tmp_path / "left")
            copied.append(1)
            raise KeyboardInterrupt
        return key

    monkeypatch.setattr(fuzz.Search, "_judge", judge_then_die)
    result = audit(*FUZZ, "--impl", impl_spec("nan_payload.py"), "--max-examples", "100000",
                   "--out", "killed-run")
    assert result.code == 3 and copied, result.err
    with open(tmp_path / "left" / "results.json", encoding="utf-8") as handle:
        checkpoint = json.load(handle)
    assert checkpoint["metadata"]["complete"] is False and "verdict" not in checkpoint["summary"]
    assert checkpoint["cases"] and checkpoint["metadata"]["fuzz"]["examples"] >= 1
    reported = audit("report", "left", "--json", "left.json")
    assert reported.code == 3 and "did not finish" in reported.err
    with open(tmp_path / "left.json", encoding="utf-8") as handle:
        judged_again = json.load(handle)
    assert findings_of(judged_again, impl_target("nan_payload.py"), "nan_policy")


def test_a_checkpoint_is_saved_only_when_the_findings_change(tmp_path, monkeypatch):
    from auditor import fuzz

    class Search:
        changed, records, started = True, {}, 0.0
        stats = fuzz.Stats()

    class Judge:
        targets, environment = {}, {"python": {}}
        observations = type("O", (), {"startup_errors": {}})()

    written = []
    checkpoint = fuzz.Checkpoint(str(tmp_path / "out"), Judge(),
                                 lambda complete: {"complete": complete})
    monkeypatch.setattr(fuzz.bundle, "write", lambda *args, **kwargs: written.append(args[3]))
    search = Search()
    checkpoint(search)  # the first change: saved at once
    checkpoint(search)  # nothing changed since
    search.changed = True
    checkpoint(search)  # changed, but within the interval
    assert written == [{"complete": False}] and search.changed
    checkpoint.last -= checkpoint.interval
    checkpoint(search)  # changed, the interval passed
    assert len(written) == 2 and not search.changed


@pytest.mark.slow
def test_a_hang_after_other_targets_in_the_same_worker_is_blamed_on_the_target_that_hung(audit):
    # numpy's argmax and good.py answer first in the one numpy worker, hangs.py then hangs: the
    # results written before it must reach the driver before the hang, or the blame moves
    result = audit(*FUZZ, "--impl", impl_spec("good.py"), "--impl", impl_spec("hangs.py"),
                   "--timeout", "3", "--max-examples", "5", "--out", "hang")
    assert result.code == 1, result.err
    document = result.results
    crashes = findings_of(document, kind="crash")
    assert crashes and all(f["targets"] == [impl_target("hangs.py")] for f in crashes), crashes
    assert crashes[0]["evidence"]["error"]["type"] == "Timeout"
    assert [f for f in document["findings"] if f["severity"] != "info"] == crashes
    assert any("hung" in why for why in document["metadata"]["skipped"])
