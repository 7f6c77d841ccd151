"""`audit run --input`: the user's own logits as cases, and the predictions that would change."""
import os
import shutil

import numpy as np
import pytest

IMPLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "impls")


@pytest.fixture
def logits(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.standard_normal((200, 12)).astype(np.float32)
    values[::4, 7] = values[::4].max(axis=1)  # a quarter of the rows: a tie for first place
    path = tmp_path / "logits.npy"
    np.save(path, values)
    return str(path)


def _kernel(tmp_path, source):
    shutil.copy(os.path.join(IMPLS, source), tmp_path / "kern.py")
    return f"numpy:{tmp_path / 'kern.py'}:argmax"


def test_input_arrays_are_user_cases_and_lead_the_summary(audit, helpers, logits):
    result = audit(*helpers.SMALL, "--input", logits, "--cases", "user")
    assert result.code == 0, result.err
    document = result.results
    assert [(c["id"], c["tags"]) for c in document["cases"]] == [("user:logits.npy", ["user"])]
    assert document["summary"]["user"] == {"numpy/cpu/float32": {"rows": 200, "vs_reference": 0}}
    lines = result.out.splitlines()
    assert lines[2].startswith("your data:") and "0 / 200 (0.00%) from the reference" in lines[3]


@pytest.mark.slow
def test_a_changed_kernel_changes_predictions_against_the_baseline(audit, helpers, logits,
                                                                   tmp_path):
    spec = _kernel(tmp_path, "good.py")
    first = audit(*helpers.SMALL, "--impl", spec, "--input", logits, "--cases", "user",
                  "--out", "old", "--save-baseline", "base.npz")
    assert first.code == 0, first.err
    _kernel(tmp_path, "last_tie.py")
    second = audit(*helpers.SMALL, "--impl", spec, "--input", logits, "--out", "new",
                   "--baseline", "base.npz")
    assert second.code == 1
    user = second.results["summary"]["user"]
    changed = user[helpers.impl_target("kern.py").replace(IMPLS, str(tmp_path))]
    values = np.load(logits)
    tied = int(((values == values.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
    assert 40 <= tied <= 50
    assert changed["vs_baseline"] == changed["vs_reference"] == tied  # every tied row flipped
    assert changed["rows"] == changed["rows_compared"] == 200
    assert user["numpy/cpu/float32"]["vs_baseline"] == 0
    assert f"{tied} / 200 ({tied / 200:.2%}) from the baseline" in second.out


def test_a_bad_input_file_is_one_line_before_anything_runs(audit, helpers, tmp_path):
    (tmp_path / "scores.csv").write_text("1,2,3\n")
    line = helpers.one_line_error(audit(*helpers.SMALL, "--input", "scores.csv"))
    assert "scores.csv" in line and ".npy" in line
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    line = helpers.one_line_error(audit(*helpers.SMALL, "--input", "objects.npy"))
    assert "objects.npy" in line
    assert not (tmp_path / "bundle").exists()


def test_an_input_that_clashes_with_the_baseline_is_refused(audit, helpers, logits, tmp_path):
    first = audit(*helpers.SMALL, "--input", logits, "--cases", "user", "--out", "old",
                  "--save-baseline", "base.npz")
    assert first.code == 0
    np.save(logits, np.load(logits) + 1)
    line = helpers.one_line_error(audit(*helpers.SMALL, "--input", logits, "--baseline", "base.npz"))
    assert "user:logits.npy" in line and "other values" in line
