"""The results bundle: what results.json and arrays.npz hold, round trips, refusals, checkpoints."""
import json
import os

import numpy as np
import pytest

from auditor import bundle, checks
from auditor.cases import build_suite, select
from auditor.errors import BundleError, ExitCode, UserError
from auditor.model import Finding, Observations, Outcome, Target
from auditor.oracle import reference_argmax
from auditor.summary import summarize

TOP_LEVEL = {"write_id", "startup_errors", "format_version", "metadata", "environment", "targets", "cases", "observations",
             "findings", "summary"}
CASES = ["ties-short", "nan-rows", "dims-none-keep", "scalar", "empty", "empty-batch"]
GOOD = Target("numpy", "cpu", "float32")
HALF = Target("torch", "cpu", "float16", index_dtype="int64")
LAST = Target("numpy", "cpu", "float32", impl="k.py:last")


def _last_tie(values, dim, keepdim):
    """Break ties towards the last maximum (a planted tie_break for the checks to find)."""
    if values.ndim == 0 or dim is None:
        return reference_argmax(values, dim, keepdim)
    flipped = np.flip(values, axis=dim)
    return values.shape[dim] - 1 - reference_argmax(flipped, dim, keepdim)


def synthetic_observations(path):
    """Return observations of three targets on a few cases: right answers, a tie fault, errors."""
    cases = select(build_suite(), CASES)
    observations = Observations(cases={c.id: c for c in cases}, bundle_path=str(path))
    for target in (GOOD, HALF, LAST):
        observations.targets[target.id] = target
    for case in cases:
        for target in (GOOD, HALF, LAST):
            runs = [[p, r] for p in (0, 1) for r in (0, 1)]
            if case.must_raise:
                error = {"type": "ValueError", "message": "attempt to get argmax of an empty "
                         "sequence", "where": "fromnumeric.py:57"}
                outcomes = [Outcome(runs, error=error)]
            else:
                seen = case.seen(target.dtype)
                fn = _last_tie if target is LAST else reference_argmax
                outcomes = [Outcome(runs, fn(seen, case.dim, case.keepdim), "int64", "ndarray")]
            observations.add(target.id, case.id, outcomes)
            observations.timings[(target.id, case.id)] = {
                "calls": 4, "call_s": 0.004, "min_s": 0.001, "prepare_s": 0.0, "harness_s": 0.0}
    # a worker that died on one run, and a case whose timing never got a call
    observations.add(HALF.id, "scalar", [Outcome([[1, None]], error={
        "type": "ProcessDied", "message": "the worker process killed by signal 11", "where": ""})])
    observations.timings[(HALF.id, "scalar")]["min_s"] = float("inf")
    return observations


@pytest.fixture
def written(tmp_path):
    """Write a bundle of synthetic observations; return (path, observations, findings)."""
    path = str(tmp_path / "bundle")
    bundle.prepare(path)
    observations = synthetic_observations(path)
    findings = checks.run_checks(observations)
    summary = summarize(observations, findings, "error")
    metadata = {"command": ["audit", "run"], "complete": True, "timeout": 60.0}
    bundle.write(path, observations, findings, metadata, {"python": "3.x"}, summary)
    return path, observations, findings


def _document(path):
    with open(os.path.join(path, bundle.RESULTS), encoding="utf-8") as handle:
        return json.load(handle)


# -- what a bundle holds ---------------------------------------------------------------------------


def test_results_json_has_every_section(written):
    path, observations, findings = written
    document = _document(path)
    assert set(document) == TOP_LEVEL
    assert document["format_version"] == bundle.FORMAT_VERSION
    assert document["metadata"]["complete"] is True
    assert document["summary"]["verdict"] == "fail"
    assert {t["id"] for t in document["targets"]} == {GOOD.id, HALF.id, LAST.id}
    assert [c["id"] for c in document["cases"]] == list(observations.cases)
    assert len(document["observations"]) == len(observations.outcomes)
    assert len(document["findings"]) == len(findings) > 0


def test_results_json_is_strict_json(written):
    """No NaN or Infinity tokens, which many JSON readers refuse: they are spelled as strings."""
    path, _, _ = written
    with open(os.path.join(path, bundle.RESULTS), encoding="utf-8") as handle:
        text = handle.read()

    def refuse(token):
        raise AssertionError(f"results.json holds the non-JSON token {token}")

    json.loads(text, parse_constant=refuse)
    timing = next(r["timing"] for r in _document(path)["observations"]
                  if r["target"] == HALF.id and r["case"] == "scalar")
    assert timing["min_s"] is None


def test_arrays_load_without_pickle(written):
    path, observations, _ = written
    with np.load(os.path.join(path, bundle.ARRAYS), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    assert all(a.dtype != object for a in arrays.values())
    for case in observations.cases.values():
        np.testing.assert_array_equal(arrays[f"case/{case.id}"], case.values)
        assert arrays[f"case/{case.id}"].dtype == np.float32
    keys = {e["indices"] for r in _document(path)["observations"] for e in r["outcomes"]
            if "indices" in e}
    assert keys and keys <= set(arrays)
    assert all(arrays[k].dtype == np.int64 for k in keys)


def test_no_temporary_files_are_left(written):
    path, _, _ = written
    assert sorted(os.listdir(path)) == [bundle.ARRAYS, bundle.RESULTS]


# -- reading it back -------------------------------------------------------------------------------


def test_read_round_trips_observations(written):
    path, observations, _ = written
    read, _, document = bundle.read(path)
    assert document == _document(path)
    assert list(read.cases) == list(observations.cases)
    for case_id, case in observations.cases.items():
        back = read.cases[case_id]
        assert (back.dim, back.keepdim, back.layout, back.tags, back.note) == (
            case.dim, case.keepdim, case.layout, case.tags, case.note)
        assert back.values.dtype == case.values.dtype and back.shape == case.shape
        np.testing.assert_array_equal(back.values, case.values)  # NaN equal to NaN
        assert back.must_raise == case.must_raise
    assert read.targets == observations.targets
    assert {t.id: t.index_dtype for t in read.targets.values()} == {
        t.id: t.index_dtype for t in observations.targets.values()}
    assert set(read.outcomes) == set(observations.outcomes)
    for key, outcomes in observations.outcomes.items():
        back = read.outcomes[key]
        assert len(back) == len(outcomes)
        for mine, theirs in zip(outcomes, back):
            assert theirs.runs == mine.runs
            assert theirs.error == mine.error
            assert (theirs.dtype, theirs.type) == (mine.dtype, mine.type)
            if not mine.failed:
                assert theirs.indices.shape == mine.indices.shape
                np.testing.assert_array_equal(theirs.indices, mine.indices)
    assert set(read.timings) == set(observations.timings)


def test_read_round_trips_findings(written):
    path, _, findings = written
    _, back, _ = bundle.read(path)
    assert [f.to_json() for f in back] == json.loads(json.dumps([f.to_json() for f in findings]))


def test_checks_on_a_read_bundle_find_the_same(written):
    """Checks read only what the runner wrote: a saved bundle judges like the live run."""
    path, _, findings = written
    observations, _, _ = bundle.read(path)
    again = checks.run_checks(observations)
    assert [(f.kind, f.targets, f.case, f.positions) for f in again] == [
        (f.kind, f.targets, f.case, f.positions) for f in findings]
    kinds = {(f.kind, tuple(f.targets)) for f in again}
    assert ("tie_break", (LAST.id,)) in kinds
    assert ("crash", (HALF.id,)) in kinds


def test_non_finite_evidence_is_spelled_as_text(tmp_path):
    path = str(tmp_path / "bundle")
    bundle.prepare(path)
    observations = synthetic_observations(path)
    finding = Finding(check="reference", kind="nan_policy", message="m", targets=[GOOD.id],
                      case="nan-rows", evidence={"values": [[0, float("nan")], [1, float("inf")],
                                                            [2, -float("inf")], [3, 1.5]]})
    bundle.write(path, observations, [finding])
    _, (back,), _ = bundle.read(path)
    assert back.evidence["values"] == [[0, "NaN"], [1, "+inf"], [2, "-inf"], [3, 1.5]]


# -- refusals: BundleError, a UserError (exit 2) with a one-line message ----------------------------


def _refused(path, *words):
    with pytest.raises(BundleError) as info:
        bundle.read(str(path))
    error = info.value
    assert isinstance(error, UserError) and error.exit_code == ExitCode.USAGE == 2
    message = str(error)
    assert "\n" not in message and message
    for word in words:
        assert word in message, message
    return message


def test_missing_folder_is_refused(tmp_path):
    _refused(tmp_path / "nowhere", "not a results bundle")


def test_folder_that_is_not_a_bundle_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    _refused(tmp_path, "not a results bundle", "results.json")


def test_truncated_results_json_is_refused(written):
    path, _, _ = written
    results = os.path.join(path, bundle.RESULTS)
    with open(results, "rb") as handle:
        text = handle.read()
    with open(results, "wb") as handle:
        handle.write(text[: len(text) // 2])
    _refused(path, "truncated", "results.json")


@pytest.mark.parametrize("version, words", [
    (999, f"format version 999, newer than this argmax-audit reads ({bundle.FORMAT_VERSION}); "
          "upgrade argmax-audit"),
    (0, "invalid format version 0"), ("1", "invalid format version '1'"),
    (True, "invalid format version True")])
def test_unknown_format_version_is_refused(written, version, words):
    path, _, _ = written
    document = _document(path)
    document["format_version"] = version
    with open(os.path.join(path, bundle.RESULTS), "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    _refused(path, words)


@pytest.mark.parametrize("text", ["[1, 2, 3]", '{"metadata": {}}', '"results"'])
def test_json_that_is_not_a_results_document_is_refused(tmp_path, text):
    (tmp_path / bundle.RESULTS).write_text(text)
    _refused(tmp_path, "not an argmax-audit results document")


def test_document_missing_a_section_is_refused(written):
    path, _, _ = written
    document = _document(path)
    del document["cases"]
    with open(os.path.join(path, bundle.RESULTS), "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    _refused(path, "malformed")


def test_missing_arrays_are_refused(written):
    path, _, _ = written
    os.unlink(os.path.join(path, bundle.ARRAYS))
    _refused(path, "arrays.npz")


def test_truncated_arrays_are_refused(written):
    path, _, _ = written
    arrays = os.path.join(path, bundle.ARRAYS)
    with open(arrays, "rb") as handle:
        data = handle.read()
    with open(arrays, "wb") as handle:
        handle.write(data[: len(data) // 3])
    _refused(path, "arrays.npz")


def test_pickled_arrays_are_refused_not_loaded(written):
    path, _, _ = written
    arrays = os.path.join(path, bundle.ARRAYS)
    with np.load(arrays) as npz:
        content = {key: npz[key] for key in npz.files}
    content["case/scalar"] = np.array([{"not": "an array"}], dtype=object)
    np.savez(arrays, **content)
    _refused(path, "arrays.npz")


def test_results_that_point_at_absent_arrays_are_refused(written):
    path, _, _ = written
    document = _document(path)
    document["cases"][0]["array"] = "case/missing"
    with open(os.path.join(path, bundle.RESULTS), "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    _refused(path, "malformed")


def test_a_write_cut_between_the_two_files_never_reads_back_wrong(written, monkeypatch):
    path, observations, _ = written
    before, _, _ = bundle.read(path)
    # a new distinct outcome for the first key shifts the obs/N numbers of every later outcome
    first = next(iter(observations.outcomes))
    case = observations.cases[first[1]]
    odd = np.full(case.output_shape, 1, dtype=np.int64)
    observations.outcomes[first].insert(0, Outcome([[2, 0]], odd, "int64", "ndarray"))
    real_replace = os.replace

    def cut(src, dst):
        if dst.endswith(bundle.RESULTS):
            raise KeyboardInterrupt  # the run is killed between the two renames
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(KeyboardInterrupt):
        bundle.write(path, observations, [], {"complete": False})
    monkeypatch.setattr(os, "replace", real_replace)
    try:
        after, _, _ = bundle.read(path)
    except BundleError:
        return  # refusing the torn bundle is fine
    for key, outcomes in before.outcomes.items():
        for old, new in zip(outcomes, after.outcomes[key]):
            if not old.failed:
                np.testing.assert_array_equal(new.indices, old.indices)


# -- preparing the folder --------------------------------------------------------------------------


def test_prepare_creates_nested_folders_and_discard_removes_an_unused_one(tmp_path):
    path = tmp_path / "a" / "b" / "bundle"
    assert bundle.prepare(str(path)) is True
    assert path.is_dir()
    bundle.discard(str(path), True)  # a run refused before measuring leaves no empty folder
    assert not path.exists()
    (tmp_path / "empty").mkdir()
    assert bundle.prepare(str(tmp_path / "empty")) is False


def test_prepare_accepts_an_empty_folder_and_an_old_bundle(written, tmp_path):
    path, _, _ = written
    bundle.prepare(path)  # overwriting an earlier bundle is how reruns work
    empty = tmp_path / "empty"
    empty.mkdir()
    bundle.prepare(str(empty))


def test_prepare_refuses_a_file_and_a_foreign_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        bundle.prepare(str(tmp_path / "file"))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.csv").write_text("1,2")
    with pytest.raises(UserError, match="not a results bundle"):
        bundle.prepare(str(tmp_path / "foreign"))
    with pytest.raises(UserError, match="cannot create"):
        bundle.prepare(str(tmp_path / "file" / "below"))


# -- checkpoints -----------------------------------------------------------------------------------


def test_checkpoint_is_a_readable_incomplete_bundle(tmp_path):
    path = str(tmp_path / "bundle")
    bundle.prepare(path)
    observations = synthetic_observations(path)
    metadata = {"complete": False, "command": ["audit", "run"]}
    checkpoint = bundle.Checkpointer(path, observations, metadata, {"python": "3.x"})
    checkpoint(force=True)
    read, findings, document = bundle.read(path)
    assert document["metadata"]["complete"] is False
    assert document["summary"] == {"complete": False}
    assert findings == []
    assert set(read.outcomes) == set(observations.outcomes)


def test_checkpoints_are_throttled_unless_forced(tmp_path, monkeypatch):
    path = str(tmp_path / "bundle")
    bundle.prepare(path)
    writes, clock = [], [1000.0]
    monkeypatch.setattr(bundle, "write", lambda *a, **k: writes.append(a))
    monkeypatch.setattr(bundle.time, "monotonic", lambda: clock[0])
    checkpoint = bundle.Checkpointer(path, Observations(), {}, {}, interval=2.0)
    checkpoint()
    assert len(writes) == 1
    clock[0] += 1.0
    checkpoint()
    assert len(writes) == 1  # within the interval
    checkpoint(force=True)
    assert len(writes) == 2
    clock[0] += 2.5
    checkpoint()
    assert len(writes) == 3


def test_checkpoint_grows_as_observations_arrive(tmp_path):
    path = str(tmp_path / "bundle")
    bundle.prepare(path)
    full = synthetic_observations(path)
    growing = Observations(cases=full.cases, targets=full.targets, bundle_path=path)
    checkpoint = bundle.Checkpointer(path, growing, {"complete": False}, {}, interval=0)
    for count, (key, outcomes) in enumerate(full.outcomes.items(), start=1):
        growing.add(*key, outcomes)
        checkpoint(force=True)
        read, _, _ = bundle.read(path)
        assert len(read.outcomes) == count


@pytest.mark.slow
def test_bundle_of_a_real_run(audit, helpers):
    result = audit(*helpers.SMALL, "--cases", "ties-short,nan-rows,scalar,empty")
    assert result.code == 0, result.out
    document = result.results
    assert set(document) == TOP_LEVEL
    assert document["metadata"]["complete"] is True
    assert document["environment"]["frameworks"]["numpy"]["version"] == np.__version__
    observations, findings, _ = bundle.read(result.bundle)
    assert findings == []
    assert {cid for _, cid in observations.outcomes} == {"ties-short", "nan-rows", "scalar",
                                                         "empty", "empty-dim", "empty-batch"}
    with np.load(os.path.join(result.bundle, bundle.ARRAYS), allow_pickle=False) as npz:
        assert all(npz[key].dtype != object for key in npz.files)


def test_cases_replay_from_a_results_json_named_relative_to_here(written, monkeypatch):
    from auditor.replay import replayed_cases

    path, observations, _ = written
    monkeypatch.chdir(path)
    replayed = replayed_cases(["results.json"])
    assert {c.id for c in replayed} == set(observations.cases)
    assert all("replayed" in c.tags for c in replayed)
