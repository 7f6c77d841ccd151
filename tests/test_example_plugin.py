"""The example third-party backend (examples/backend_plugin): its pure parts, and installed into a
virtual environment of its own, found through its entry point and audited there (slow)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = os.path.join(ROOT, "examples", "backend_plugin")


@pytest.fixture
def pylist(monkeypatch):
    monkeypatch.syspath_prepend(PLUGIN)
    import argmax_audit_pylist

    return argmax_audit_pylist


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (5,), ()])
def test_nested_lists_reduce_like_argmax(pylist, shape):
    values = np.random.default_rng(1).permutation(max(1, int(np.prod(shape))))
    x = values.reshape(shape).astype(np.float32)
    adapter = pylist.BACKEND.adapter()
    for op, reference in (("argmax", np.argmax), ("argmin", np.argmin)):
        for dim in [None, *range(-len(shape), len(shape))]:
            for keepdim in (False, True):
                got = adapter.function(op)(x.tolist(), dim=dim, keepdim=keepdim)
                indices, dtype = adapter.to_numpy(got)
                assert np.array_equal(indices, reference(x, axis=dim, keepdims=keepdim))
                assert indices.shape == reference(x, axis=dim, keepdims=keepdim).shape


def test_its_backend_passes_the_registry_checks(pylist):
    from auditor import registry

    assert registry.problems(pylist.BACKEND, "pylist") == ""
    assert registry.check_probe(pylist.BACKEND.adapter().describe()) == ""


def _python(venv):
    return os.path.join(venv, "Scripts" if os.name == "nt" else "bin", "python")


@pytest.mark.slow
def test_installed_into_a_venv_it_is_listed_and_audited(tmp_path):
    venv = str(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = _python(venv)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # argmax-audit and numpy come from this checkout and this environment (no download); the
    # plugin itself is installed into the new venv by pip, entry point and all
    ours = [p for p in sys.path if p.endswith("site-packages")]
    with open(os.path.join(site, "argmax_audit_checkout.pth"), "w") as handle:
        handle.write("\n".join([ROOT, *ours]) + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", PLUGIN], check=True, cwd=tmp_path)
    listed = subprocess.run([python, "-m", "auditor", "backends", "--json"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=600)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert found["pylist"]["status"] == "ok" and found["pylist"]["distribution"] == "argmax-audit-pylist"
    out = str(tmp_path / "bundle")
    run = subprocess.run([python, "-m", "auditor", "run", "-q", "--framework", "numpy,pylist",
                          "--dtype", "float32,int32", "--repeats", "1", "--processes", "1",
                          "--cases", "ties-short,nan-rows,dims-*,int-ties*", "--out", out],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert run.returncode == 1, run.stderr
    with open(os.path.join(out, "results.json")) as handle:
        document = json.load(handle)
    ids = {t["id"] for t in document["targets"]}
    assert {"pylist/cpu/float32", "pylist/cpu/int32", "numpy/cpu/float32"} <= ids
    errors = {(f["kind"], f["case"]) for f in document["findings"] if f["severity"] == "error"
              and f["targets"][0].startswith("pylist")}
    # ties: max keeps the first, as Python documents; NaN: every comparison with it is false
    assert errors == {("nan_policy", "nan-rows")}
    reproducer = next(f["reproducer"] for f in document["findings"]
                      if f["kind"] == "nan_policy" and f["targets"][0].startswith("pylist"))
    again = subprocess.run([sys.executable, "-c", reproducer], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr  # Python and numpy alone
