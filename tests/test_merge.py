"""`audit merge`: bundles from several machines, checked together; mismatched ones refused."""
import json
import os

import numpy as np

from auditor import bundle

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bundles")


def _machine(source, out, host, change=None):
    """Write a copy of bundle `source` as made on `host`; `change(observations)` may alter it."""
    observations, findings, document = bundle.read(os.path.join(DATA, source))
    if change:
        change(observations)
    environment = dict(document["environment"], host=host)
    bundle.write(str(out), observations, findings, document["metadata"], environment,
                 document["summary"])
    return observations


def _last_tie(observations):
    """Make this machine's numpy break the ties of case ties-short towards the last maximum."""
    case = observations.cases["ties-short"]
    outcome = observations.outcomes[("numpy/cpu/float32", "ties-short")][0]
    rows = case.values
    outcome.indices = np.array([len(r) - 1 - int(np.argmax(r[::-1])) for r in rows])


def test_machines_that_agree_merge_clean(audit, tmp_path):
    _machine("clean", tmp_path / "a", "cpu-runner")
    _machine("clean", tmp_path / "b", "gpu-runner")
    result = audit("merge", "a", "b", "-o", "merged")
    assert result.code == 0, result.out + result.err
    document = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert {t["id"] for t in document["targets"]} == {"numpy/cpu/float32@cpu-runner",
                                                      "numpy/cpu/float32@gpu-runner"}
    assert [m["host"] for m in document["metadata"]["merged"]] == ["cpu-runner", "gpu-runner"]
    assert (tmp_path / "merged" / "report.html").is_file()
    assert set(document["environment"]["envs"]) == {"cpu-runner", "gpu-runner"}


def test_a_machine_that_disagrees_is_found_by_the_cross_target_checks(audit, helpers, tmp_path):
    _machine("clean", tmp_path / "a", "cpu-runner")
    _machine("clean", tmp_path / "b", "gpu-runner", _last_tie)
    result = audit("merge", "a", "b", "-o", "merged", "--junit", "j.xml")
    assert result.code == 1
    document = json.loads((tmp_path / "merged" / "results.json").read_text())
    odd = "numpy/cpu/float32@gpu-runner"
    drift = helpers.findings_of(document, odd, "tie_break")
    checks = {f["check"] for f in drift}
    assert checks == {"reference", "consistency"}
    consistency = next(f for f in drift if f["check"] == "consistency")
    assert "numpy/cpu/float32@cpu-runner" in consistency["targets"]
    assert not helpers.findings_of(document, "numpy/cpu/float32@cpu-runner", "tie_break")
    assert "gpu-runner" in (tmp_path / "j.xml").read_text()


def test_same_hosts_are_told_apart_by_folder(audit, tmp_path):
    _machine("clean", tmp_path / "first", "vm")
    _machine("clean", tmp_path / "second", "vm")
    assert audit("merge", "first", "second", "-o", "merged").code == 0
    document = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert {t["env"] for t in document["targets"]} == {"first", "second"}


def test_bundles_of_other_seeds_suites_or_values_are_refused(audit, helpers, tmp_path):
    _machine("clean", tmp_path / "a", "one")
    for name, key, value in (("seed", "seed", 7), ("suite", "suite", "full")):
        observations, findings, document = bundle.read(os.path.join(DATA, "clean"))
        metadata = dict(document["metadata"], **{key: value})
        bundle.write(str(tmp_path / name), observations, findings, metadata,
                     document["environment"], document["summary"])
        line = helpers.one_line_error(audit("merge", "a", name, "-o", f"out-{name}"))
        assert f"{key} {value}" in line and "same suite and seed" in line
        assert not (tmp_path / f"out-{name}").exists()

    def other_values(observations):
        observations.cases["ties-short"].values = observations.cases["ties-short"].values + 1

    _machine("clean", tmp_path / "values", "two", other_values)
    line = helpers.one_line_error(audit("merge", "a", "values", "-o", "out"))
    assert "case ties-short holds other values" in line


def test_merge_needs_two_readable_bundles(audit, helpers, tmp_path):
    _machine("clean", tmp_path / "a", "one")
    assert "two or more" in helpers.one_line_error(audit("merge", "a", "-o", "out"))
    assert "not a results bundle" in helpers.one_line_error(audit("merge", "a", "nope", "-o", "out"))


def test_a_bundle_is_not_merged_with_itself_nor_overwritten(audit, helpers, tmp_path):
    _machine("clean", tmp_path / "a", "one")
    _machine("clean", tmp_path / "b", "two")
    assert "same bundle" in helpers.one_line_error(audit("merge", "a", "a", "-o", "out"))
    assert "one of the bundles" in helpers.one_line_error(audit("merge", "a", "b", "-o", "a"))
