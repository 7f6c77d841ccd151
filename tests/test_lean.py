"""Lean bundles: a large user input kept as its origin, sha256, answers and disputed rows."""
import json
import os
import zipfile

import numpy as np
import pytest
from synthetic import PLANTED, correct, observe, target

from auditor import api, bundle, lean
from auditor import baseline as baselines
from auditor.checks import run_checks
from auditor.errors import BundleError, UserError
from auditor.inputs import load_inputs
from auditor.summary import summarize


@pytest.fixture
def small_threshold(monkeypatch):
    """Make every input over 1 KiB lean, and keep every disputed row."""
    monkeypatch.setattr(lean, "THRESHOLD", 1024)
    monkeypatch.setattr(lean, "ROWS_SHARE", 1.0)


def _logits(path, rows=64, tie_rows=(5, 40)):
    values = np.random.default_rng(0).standard_normal((rows, 32)).astype(np.float32)
    for r in tie_rows:
        values[r, [3, 20]] = 9.0
    np.save(path, values)
    return str(path)


def _bundle(folder, path, store=False, fn=PLANTED["last_tie"]):
    """Audit the --input `path` in process (a numpy target breaking ties by `fn`, another
    correct), write the bundle to `folder`; return (observations, findings, document)."""
    cases = lean.mark(load_inputs([path]), store)
    observations = observe(cases, {target("kernel"): fn, target("ok"): correct})
    observations.bundle_path = str(folder)
    findings = run_checks(observations, {})
    summary = dict(summarize(observations, findings, "error"), complete=True)
    metadata = {"suite": "quick", "seed": 0, "complete": True}
    document = bundle.write(str(folder), observations, findings, metadata, {"host": "h"}, summary)
    return observations, findings, document


def test_a_large_input_is_kept_as_hash_answers_and_disputed_rows(small_threshold, tmp_path):
    path = _logits(tmp_path / "logits.npy")
    observations, findings, document = _bundle(tmp_path / "b", path)
    case = document["cases"][0]
    assert case["array"] is None and case["values_dtype"] == "float32"
    assert case["note"].endswith(lean.LEAN_NOTE)
    assert case["origin"]["path"] == os.path.abspath(path)
    assert case["origin"]["sha256"] == lean.file_sha256(path)
    assert case["origin"]["size"] == os.path.getsize(path)
    with zipfile.ZipFile(tmp_path / "b" / "arrays.npz") as archive:
        names = archive.namelist()
    assert f"case/{case['id']}.npy" not in names
    arrays = np.load(tmp_path / "b" / "arrays.npz")
    assert arrays[f"rowpos/{case['id']}"].tolist() == [[5], [40]]
    np.testing.assert_array_equal(arrays[f"rows/{case['id']}"], np.load(path)[[5, 40]])
    assert os.path.getsize(tmp_path / "b" / "arrays.npz") < os.path.getsize(path) / 2
    tie = next(f for f in findings if f.kind == "tie_break" and f.check == "reference")
    assert "rows/" in tie.reproducer and "sha256" in tie.reproducer


def test_store_inputs_keeps_the_copy(small_threshold, tmp_path):
    path = _logits(tmp_path / "logits.npy")
    _, _, document = _bundle(tmp_path / "b", path, store=True)
    case = document["cases"][0]
    assert case["array"].startswith("inputs/") and "lean" not in case
    assert lean.LEAN_NOTE not in case["note"]
    assert case["origin"]["sha256"] == lean.file_sha256(path)


def test_a_small_input_keeps_its_copy(tmp_path):
    path = _logits(tmp_path / "logits.npy")
    _, _, document = _bundle(tmp_path / "b", path)
    assert document["cases"][0]["array"] is not None


def test_a_lean_bundle_is_checked_again_from_its_rows_alone(small_threshold, tmp_path):
    path = _logits(tmp_path / "logits.npy")
    _, findings, _ = _bundle(tmp_path / "b", path)
    os.unlink(path)  # the kept rows and answers are all the checks need
    observations, _, _ = bundle.read(str(tmp_path / "b"))
    case = next(iter(observations.cases.values()))
    assert case.lean and isinstance(case.values, lean.LeanValues)
    again = run_checks(observations, {})
    assert [(f.kind, f.check, f.message, f.positions, f.evidence) for f in again] == \
        [(f.kind, f.check, f.message, f.positions, f.evidence) for f in findings]


def test_a_row_not_kept_loads_from_the_file_or_says_what_is_missing(small_threshold, tmp_path,
                                                                    monkeypatch):
    path = _logits(tmp_path / "logits.npy")
    _bundle(tmp_path / "b", path)
    observations, _, _ = bundle.read(str(tmp_path / "b"))
    case = next(iter(observations.cases.values()))
    np.testing.assert_array_equal(case.source_row((7,)), np.load(path)[7])  # from the file
    observations, _, _ = bundle.read(str(tmp_path / "b"))
    case = next(iter(observations.cases.values()))
    values = np.load(path)
    values[7, 0] += 1
    np.save(path, values)
    with pytest.raises(UserError, match=r"changed since \(sha256 [0-9a-f]{64} then, "
                                        r"[0-9a-f]{64} now\)"):
        case.source_row((7,))
    os.unlink(path)
    with pytest.raises(UserError, match="is not there.*--store-inputs|--store-inputs.*not there"):
        case.seen_row("float32", (8,))


def test_a_lean_bundle_renders_compares_and_merges(small_threshold, tmp_path, audit):
    path = _logits(tmp_path / "logits.npy")
    _bundle(tmp_path / "old", path, fn=correct)
    _bundle(tmp_path / "new", path)
    os.unlink(path)
    result = audit("report", "new", "--junit", "j.xml", "--summary-md", "s.md")
    assert result.code == 1, result.err
    assert "tie_break" in result.out and (tmp_path / "new" / "report.html").is_file()
    assert "tie_break" in (tmp_path / "j.xml").read_text()
    result = audit("compare", "old", "new")
    assert result.code == 1, result.err
    assert "regression" in result.out
    result = audit("merge", "old", "new", "-o", "merged")
    assert result.code == 1, result.out + result.err
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert merged["cases"][0]["array"] is None
    assert {f["kind"] for f in merged["findings"]} >= {"tie_break"}


def test_compare_says_when_inputs_differ(small_threshold, tmp_path, audit):
    path = _logits(tmp_path / "logits.npy")
    _bundle(tmp_path / "old", path)
    _logits(path, tie_rows=(6,))
    _bundle(tmp_path / "new", path)
    result = audit("compare", "old", "new")
    assert result.code == 2
    assert "the input of case user:logits.npy differs" in result.err
    assert result.err.count("sha256") == 2 and "in old," in result.err


def test_a_baseline_of_a_changed_input_file_is_refused_with_both_hashes(small_threshold, tmp_path):
    path = _logits(tmp_path / "logits.npy")
    observations, findings, document = _bundle(tmp_path / "b", path)
    baselines.save(str(tmp_path / "base.npz"), observations, findings, document["metadata"],
                   document["environment"], document["summary"])
    before = lean.file_sha256(path)
    previous = baselines.load(str(tmp_path / "base.npz"))
    found = api._cases("quick", 0, ["user"], previous)  # the file as it was: read from its path
    assert found[0].values.shape == (64, 32)
    _logits(path, tie_rows=(6,))
    after = lean.file_sha256(path)
    for given in ([], [path]):
        previous = baselines.load(str(tmp_path / "base.npz"))
        with pytest.raises(UserError) as error:
            api._cases("quick", 0, ["user"], previous, given)
        message = str(error.value)
        assert before in message and after in message and "\n" not in message


@pytest.mark.parametrize("change, field", [
    (lambda c, a: c.update(origin={"path": "x"}), "origin"),
    (lambda c, a: c.update(values_dtype="complex64"), "values_dtype"),
    (lambda c, a: c.update(shape=[2**62, 2]), "shape"),
    (lambda c, a: a.update({c["lean"]["rows"]: np.zeros((2, 7), np.float32)}), "rows"),
    (lambda c, a: a.update({c["lean"]["positions"]: np.array([[5], [99]])}), "positions"),
    (lambda c, a: a.update({c["lean"]["references"][0]["array"]: np.full(64, 40)}), "references"),
])
def test_a_hostile_lean_case_is_refused_in_one_line(small_threshold, tmp_path, change, field):
    path = _logits(tmp_path / "logits.npy")
    _bundle(tmp_path / "b", path)
    document = json.loads((tmp_path / "b" / "results.json").read_text())
    arrays = dict(np.load(tmp_path / "b" / "arrays.npz"))
    change(document["cases"][0], arrays)
    with pytest.raises(BundleError, match=field) as error:
        bundle.decode(document, arrays, str(tmp_path / "b"), "results.json")
    assert "\n" not in str(error.value)


def test_sha256_is_streamed_in_blocks(tmp_path):
    data = np.arange(10_000, dtype=np.float32)
    (tmp_path / "x.bin").write_bytes(data.tobytes())
    import hashlib
    expected = hashlib.sha256(data.tobytes()).hexdigest()
    assert lean.file_sha256(tmp_path / "x.bin", block=999) == expected
    assert lean.array_sha256(data, block=1000) == expected


@pytest.mark.slow
def test_a_run_keeps_a_large_input_lean_and_its_baseline_refuses_a_changed_file(
        audit, helpers, tmp_path, monkeypatch):
    monkeypatch.setenv(lean.THRESHOLD_VARIABLE, "1K")
    path = _logits(tmp_path / "logits.npy")
    kernel = os.path.join(os.path.dirname(os.path.abspath(__file__)), "impls", "last_tie.py")
    first = audit(*helpers.SMALL, "--impl", f"numpy:{kernel}:argmax", "--input", path,
                  "--cases", "user", "--out", "old", "--save-baseline", "base.npz")
    assert first.code == 1, first.err
    case = first.results["cases"][0]
    assert case["array"] is None and case["origin"]["sha256"] == lean.file_sha256(path)
    assert sorted(map(tuple, np.load(tmp_path / "old" / "arrays.npz")[
        f"rowpos/{case['id']}"].tolist())) == [(5,), (40,)]
    assert audit("report", "old").code == 1
    again = audit(*helpers.SMALL, "--baseline", "base.npz", "--out", "same")
    assert again.code == 0, again.err  # the file as it was: read from its path, no regression
    before = lean.file_sha256(path)
    _logits(path, tie_rows=(6,))
    line = helpers.one_line_error(audit(*helpers.SMALL, "--baseline", "base.npz"))
    assert before in line and lean.file_sha256(path) in line


def test_a_half_precision_input_is_audited_in_its_own_dtype_too(tmp_path):
    from auditor.cases import build_suite
    from auditor.inputs import own_dtypes

    np.save(tmp_path / "half.npy", np.ones((4, 8), np.float16))
    np.save(tmp_path / "full.npy", np.ones((4, 8), np.float32))
    given = load_inputs([tmp_path / "half.npy", tmp_path / "full.npy"])
    suite = build_suite("quick", 0)[:3]
    assert own_dtypes(suite + given, []) == []  # every dtype runs anyway
    assert own_dtypes(suite + given, ["float16", "float32"]) == ["float16", "float32"]
    assert all(c.dtypes == () for c in suite + given)
    assert own_dtypes(suite + given, ["float32"]) == ["float32", "float16"]
    half, full = given
    assert half.origin["dtype"] == "float16" and half.dtypes == ("float32", "float16")
    assert full.dtypes == ("float32",)
    assert all(c.dtypes == ("float32",) for c in suite if c.family == "float")
    assert half.values.dtype == np.float32  # widened exactly: each target narrows it back


@pytest.mark.slow
def test_a_bfloat16_file_runs_on_bfloat16_targets(audit, helpers, tmp_path):
    import torch
    torch.save({"logits": torch.randn(16, 40).to(torch.bfloat16)}, tmp_path / "out.pt")
    result = audit(*helpers.SMALL, "--input", "out.pt", "--cases", "user")
    assert result.code == 0, result.err
    assert {t["dtype"] for t in result.results["targets"]} == {"float32", "bfloat16"}
    assert result.results["cases"][0]["origin"]["dtype"] == "bfloat16"


def test_a_large_input_kept_whole_is_written_once(small_threshold, tmp_path):
    path = _logits(tmp_path / "logits.npy")
    observations, findings, document = _bundle(tmp_path / "b", path, store=True)
    name = document["cases"][0]["array"]
    assert name.startswith("inputs/") and name.endswith(".npy")
    tie = next(f for f in findings if f.kind == "tie_break" and f.check == "reference")
    assert f"np.load({str(tmp_path / 'b' / name)!r})" in tie.reproducer
    where = tmp_path / "b" / name
    np.testing.assert_array_equal(np.load(where), np.load(path))
    with zipfile.ZipFile(tmp_path / "b" / "arrays.npz") as archive:
        assert not [n for n in archive.namelist() if n.startswith(("inputs/", "case/"))]
    before = os.stat(where)
    for _ in range(2):  # checkpoints and the final save leave the file as it is
        bundle.write(str(tmp_path / "b"), observations, findings, document["metadata"], {},
                     document["summary"])
    after = os.stat(where)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    read, _, _ = bundle.read(str(tmp_path / "b"))
    case = next(iter(read.cases.values()))
    np.testing.assert_array_equal(case.values, np.load(path))
    assert not case.values.flags.writeable
    baselines.save(str(tmp_path / "base.npz"), read, findings, document["metadata"], {},
                   document["summary"])
    again = next(iter(baselines.load(str(tmp_path / "base.npz"))[0].cases.values()))
    np.testing.assert_array_equal(again.values, np.load(path))


@pytest.mark.parametrize("damage", ["link", "truncated", "missing"])
def test_a_damaged_input_file_of_a_bundle_is_refused_in_one_line(small_threshold, tmp_path,
                                                                 damage):
    path = _logits(tmp_path / "logits.npy")
    _, _, document = _bundle(tmp_path / "b", path, store=True)
    where = tmp_path / "b" / document["cases"][0]["array"]
    if damage == "link":
        os.unlink(where)
        os.symlink(path, where)
    elif damage == "truncated":
        where.write_bytes(where.read_bytes()[:-100])
    else:
        os.unlink(where)
    with pytest.raises(BundleError) as error:
        bundle.read(str(tmp_path / "b"))
    assert "\n" not in str(error.value)


def test_a_lean_reproducer_runs_on_the_rows_the_bundle_kept(small_threshold, tmp_path):
    import subprocess
    import sys

    from auditor.model import Target
    from auditor.reproduce import reproducer

    path = _logits(tmp_path / "logits.npy")
    _, findings, _ = _bundle(tmp_path / "b", path)
    os.unlink(path)
    observations, _, _ = bundle.read(str(tmp_path / "b"))
    case = next(iter(observations.cases.values()))
    tie = next(f for f in findings if f.kind == "tie_break" and f.check == "reference")
    script = reproducer(case, Target("numpy", "cpu", "float32"), tie.positions, str(tmp_path / "b"))
    assert "rows 5, 40 of" in script and "sha256" in script
    assert "the reference (first maximum, first NaN) is [3, 3]" in script
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[3, 3]")  # numpy's first of the tied maxima at 3 and 20


def test_a_lean_checkpoint_is_checked_from_the_file_or_refused_without_it(small_threshold,
                                                                         tmp_path, audit):
    path = _logits(tmp_path / "logits.npy")
    cases = lean.mark(load_inputs([path]))
    observations = observe(cases, {target("kernel"): PLANTED["last_tie"]})
    bundle.write(str(tmp_path / "b"), observations, (), {"complete": False}, {"host": "h"},
                 {"complete": False})  # a checkpoint: the run was killed before its checks
    entry = json.loads((tmp_path / "b" / "results.json").read_text())["cases"][0]
    assert entry["array"] is None and entry["lean"] == {}
    result = audit("report", "b")
    assert result.code == 3 and "tie_break" in result.out  # checked on the file, same sha256
    os.unlink(path)
    result = audit("report", "b")
    assert result.code == 2 and "is not there" in result.err and "--store-inputs" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_lean_bundle_keeps_the_rows_rounding_flips(small_threshold, tmp_path):
    path = tmp_path / "near.npy"
    values = np.zeros((50, 16), np.float32)
    flips = list(range(2, 47, 3))  # 15 rows: more than a finding cites (10)
    values[flips, 2], values[flips, 9] = 1.0, 1.0001  # bfloat16 ties them
    np.save(path, values)
    cases = lean.mark(load_inputs([path]))
    observations = observe(cases, {target(None, "float32"): correct,
                                   target(None, "bfloat16"): correct})
    findings = run_checks(observations, {})
    summary = dict(summarize(observations, findings, "error"), complete=True)
    bundle.write(str(tmp_path / "b"), observations, findings, {}, {}, summary)
    os.unlink(path)
    read, _, _ = bundle.read(str(tmp_path / "b"))
    again = run_checks(read, {})  # the precision check's margins read every flip's row
    assert [(f.message, f.positions, f.evidence) for f in again] == \
        [(f.message, f.positions, f.evidence) for f in findings]
    assert {f.kind for f in again} == {"precision_drift"}
