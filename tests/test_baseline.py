"""Baselines: --save-baseline, --baseline replays, `audit compare`, and the file format."""
import json
import os
import shutil

import numpy as np
import pytest

from auditor import baseline, bundle
from auditor.errors import BundleError

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bundles")
IMPLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "impls")
CASES = ["--cases", "ties-short,nan-rows,dims-1"]


def _save_from(bundle_name, path):
    observations, findings, document = bundle.read(os.path.join(DATA, bundle_name))
    baseline.save(str(path), observations, findings, document["metadata"],
                  document["environment"], document["summary"])
    return observations, document


def test_a_baseline_file_holds_the_exact_cases_and_answers(tmp_path):
    observations, document = _save_from("every-kind", tmp_path / "base.npz")
    loaded, findings, again = baseline.load(str(tmp_path / "base.npz"))
    assert again["baseline"] is True and again["format_version"] == bundle.FORMAT_VERSION
    assert set(loaded.cases) == set(observations.cases)
    for case_id, case in observations.cases.items():
        assert np.array_equal(loaded.cases[case_id].values, case.values, equal_nan=True)
    assert set(loaded.outcomes) == set(observations.outcomes)
    for key, outcomes in observations.outcomes.items():
        assert all(a.same_result(b) for a, b in zip(outcomes, loaded.outcomes[key]))
    assert len(findings) == len(document["findings"])


def test_a_bundle_folder_is_a_baseline_too():
    observations, _, _ = baseline.load(os.path.join(DATA, "clean"))
    assert observations.targets


def _rewrite(path, change):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    document = json.loads(str(arrays[baseline.DOCUMENT]))
    change(document, arrays)
    arrays[baseline.DOCUMENT] = np.array(json.dumps(document))
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage, words", [
    ("newer", "newer than this argmax-audit reads"),
    ("truncated", "is unreadable or truncated"),
    ("no-document", "is not an argmax-audit baseline"),
    ("not-npz", "is unreadable or truncated: BadZipFile"),
    ("missing", "does not exist"),
    ("pickled", "holds dtype object"),
])
def test_a_bad_baseline_is_refused_in_one_line(tmp_path, damage, words):
    path = str(tmp_path / "base.npz")
    _save_from("clean", path)
    if damage == "newer":
        _rewrite(path, lambda doc, arrays: doc.update(format_version=bundle.FORMAT_VERSION + 1))
    elif damage == "truncated":
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    elif damage == "no-document":
        _rewrite(path, lambda doc, arrays: None)
        with np.load(path) as npz:
            np.savez(path, **{k: npz[k] for k in npz.files if k != baseline.DOCUMENT})
    elif damage == "not-npz":
        open(path, "w").write("hello")
    elif damage == "missing":
        os.remove(path)
    else:
        np.savez(path, **{baseline.DOCUMENT: np.array([{"a": 1}], dtype=object)})
    with pytest.raises(BundleError if damage != "missing" else Exception) as info:
        baseline.load(path)
    assert words in str(info.value) and "\n" not in str(info.value)


def _kernel(tmp_path, source):
    """Write implementation file `kern.py` from tests/impls/`source`; return its --impl spec."""
    shutil.copy(os.path.join(IMPLS, source), tmp_path / "kern.py")
    return f"numpy:{tmp_path / 'kern.py'}:argmax"


@pytest.mark.slow
def test_replaying_a_baseline_finds_a_changed_kernel_and_compare_agrees(audit, helpers, tmp_path):
    spec = _kernel(tmp_path, "good.py")
    first = audit(*helpers.SMALL, *CASES, "--impl", spec, "--out", "old", "--save-baseline",
                  "base.npz")
    assert first.code == 0, first.err
    same = audit(*helpers.SMALL, "--impl", spec, "--out", "same", "--baseline", "base.npz")
    assert same.code == 0, same.out
    assert not helpers.findings_of(same.results, kind="regression")
    assert {c["id"] for c in same.results["cases"]} == {"ties-short", "nan-rows", "dims-1"}

    _kernel(tmp_path, "last_tie.py")  # the "upgrade": ties now go to the last maximum
    changed = audit(*helpers.SMALL, "--impl", spec, "--out", "new", "--baseline", "base.npz")
    assert changed.code == 1
    regressions = helpers.findings_of(changed.results, kind="regression")
    causes = {f["case"]: f["evidence"]["cause"] for f in regressions}
    assert causes == {"ties-short": "tie_break", "dims-1": "tie_break", "nan-rows": "nan_policy"}
    assert all(f["severity"] == "error" for f in regressions)
    assert "baseline:" in changed.out

    compared = audit("compare", "old", "new", "--json", "cmp.json")
    assert compared.code == 1
    found = json.loads((tmp_path / "cmp.json").read_text())["findings"]
    assert [f["message"] for f in found] == [f["message"] for f in regressions]

    (tmp_path / "audit.toml").write_text(
        '[[allow]]\nkind = "regression"\nreason = "we accept the new tie rule"\n')
    assert audit("compare", "base.npz", "new").code == 0


def test_compare_refuses_what_it_cannot_compare(audit, helpers, tmp_path):
    base = tmp_path / "base.npz"
    _save_from("clean", base)
    line = helpers.one_line_error(audit("compare", str(base), str(tmp_path / "nothing")))
    assert "does not exist" in line
    assert audit("compare", str(base), os.path.join(DATA, "clean")).code == 0
    other = tmp_path / "other"
    shutil.copytree(os.path.join(DATA, "clean"), other)
    document = json.loads((other / "results.json").read_text())
    text = json.dumps(document).replace("numpy/cpu/float32", "numpy/cpu/float16").replace(
        '"dtype": "float32"', '"dtype": "float16"')
    (other / "results.json").write_text(text)
    line = helpers.one_line_error(audit("compare", str(base), str(other)))
    assert "nothing to compare" in line


def test_compare_without_a_comparable_case_is_a_usage_error(audit, helpers, tmp_path):
    base = tmp_path / "base.npz"
    _save_from("clean", base)
    observations, findings, document = bundle.read(os.path.join(DATA, "clean"))
    for case_id in [c for c, case in observations.cases.items() if case.values.size == 0]:
        del observations.cases[case_id]  # empty inputs are equal whatever the seed
        observations.outcomes = {k: v for k, v in observations.outcomes.items() if k[1] != case_id}
        observations.timings = {k: v for k, v in observations.timings.items() if k[1] != case_id}
    for case in observations.cases.values():
        case.values = case.values + 1  # another seed: the same ids, other values
    bundle.write(str(tmp_path / "seed7"), observations, findings, document["metadata"],
                 document["environment"], document["summary"])
    line = helpers.one_line_error(audit("compare", str(base), "seed7"))
    assert "no case of seed7" in line and "same values" in line
