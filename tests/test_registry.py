"""Backends as plugins: found through the entry-point group, broken ones reported, never fatal."""
import json
import os
import sys
import textwrap

import pytest

from auditor import ops, registry, variants
from auditor.registry import check_probe

#: A third-party backend that works: numpy's argmax under another name (its own module).
GOOD = '''
from auditor.worker.backends.np_backend import NumpyBackend, Adapter


class Plain(NumpyBackend):
    name = "plainnp"
    module = "numpy"
    install = "pip install plainnp"


BACKEND = Plain()
'''
#: Its module raises while the driver imports it.
EXPLODES = "raise ZeroDivisionError('the plugin divides by zero at import')\n"
#: Not a backend: no argmax op.
NOT_A_BACKEND = '''
class Thing:
    name = "notabackend"
    ops = {}


BACKEND = Thing()
'''
#: Imports fine in the driver; its framework cannot be imported in the worker.
NO_FRAMEWORK = GOOD.replace('"plainnp"', '"noframework"') + '''

def _adapter():
    import a_framework_that_is_not_there  # noqa: F401


Plain.adapter = lambda self: _adapter()
'''
#: Its probe returns nonsense (a device without dtypes).
NONSENSE = GOOD.replace('"plainnp"', '"nonsense"') + '''

class Liar(Adapter):
    def describe(self):
        return {"version": "1", "devices": [{"id": "cpu"}], "index_dtype": "int64"}


Plain.adapter = lambda self: Liar()
'''


def plant(folder, monkeypatch, plugins):
    """Install `plugins` ({backend name: module source}) as one distribution in `folder`: a
    module each and a .dist-info whose entry points register them, on sys.path and PYTHONPATH
    (for the workers); the registry is read anew."""
    folder.mkdir(exist_ok=True)
    info = folder / "planted_backends-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: planted-backends\nVersion: 0.1\n")
    points = ["[argmax_audit.backends]"]
    for name, source in plugins.items():
        module = f"planted_{name}"
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        points.append(f"{name} = {module}:BACKEND")
    (info / "entry_points.txt").write_text("\n".join(points) + "\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]))
    registry.entries(refresh=True)


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """Return plant(plugins) for this test; the registry is read anew after it."""
    yield lambda plugins: plant(tmp_path / "site", monkeypatch, plugins)
    for name in [m for m in sys.modules if m.startswith("planted_")]:
        del sys.modules[name]
    monkeypatch.undo()
    registry.entries(refresh=True)


def test_the_built_ins_register_through_the_entry_point_group():
    entries = registry.entries()
    assert list(entries)[:3] == ["numpy", "torch", "jax"]
    for name in ("numpy", "torch", "jax"):
        assert entries[name].backend is not None and entries[name].source == "argmax-audit"
        assert entries[name].reference.startswith("auditor.worker.backends.")


def test_the_driver_never_imports_a_framework():
    # importing every backend's module for its data leaves the frameworks unimported
    code = ("import sys; from auditor import registry, ops, variants, reproduce, cli; "
            "registry.entries(); ops.table(); variants.valid_names(); "
            "print(sorted(m for m in ('torch', 'jax', 'tensorflow', 'onnxruntime', 'onnx', "
            "'cupy', 'mlx') if m in sys.modules))")
    import subprocess
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_third_party_backend_joins_ops_and_variants(planted):
    planted({"plainnp": GOOD})
    assert "plainnp" in registry.names() and registry.get("plainnp").name == "plainnp"
    assert "plainnp" in ops.OPS["argmax"].frameworks and "plainnp" in ops.OPS["argsort"].frameworks
    assert "plainnp" in variants.parse("eager").frameworks
    assert ops.documented("plainnp", "argsort") is not None


@pytest.mark.parametrize("source, words", [
    (EXPLODES, "raised ZeroDivisionError: the plugin divides by zero at import"),
    (NOT_A_BACKEND, "is not a usable backend: its name is 'notabackend', registered as 'bad'"),
    (GOOD.replace("BACKEND = Plain()", "BACKEND = Plain()\nBACKEND.name = 'bad'\n"
                  "BACKEND.ops = {'argmax': 'np.argmax'}"),
     "op 'argmax' is not an Op"),
])
def test_a_broken_backend_is_kept_with_its_reason(planted, source, words):
    planted({"bad": source})
    assert "bad" in registry.names() and "bad" not in registry.backends()
    assert words in registry.broken()["bad"]
    assert list(registry.backends())[:3] == ["numpy", "torch", "jax"]  # the others are unharmed


@pytest.mark.parametrize("info, words", [
    ([], "not a dict"),
    ({"devices": []}, "no version"),
    ({"version": "1", "devices": []}, "no devices"),
    ({"version": "1", "devices": [{"id": "cpu"}]}, "no list of dtypes"),
    ({"version": "1", "devices": [{"id": "cpu", "dtypes": ["float32"]}]}, "no index dtype"),
    ({"version": "1", "devices": [{"id": "cpu", "dtypes": ["float32"]}], "index_dtype": "int64",
      "settings": [1]}, "settings is not a dict"),
    ({"version": "1" * 300, "devices": [{"id": "cpu", "dtypes": []}]}, "at most 200"),
    ({"version": "1\x1b[2J", "devices": [{"id": "cpu", "dtypes": []}]}, "not a printable"),
    ({"version": "1", "devices": [{"id": "cpu/evil", "dtypes": []}]}, "not an id of letters"),
    ({"version": "1", "devices": [{"id": "cpu@x", "dtypes": []}]}, "not an id of letters"),
    ({"version": "1", "devices": [{"id": "c" * 65, "dtypes": []}]}, "not an id of letters"),
    ({"version": "1", "devices": [{"id": f"d{i}", "dtypes": []} for i in range(300)]},
     "300 devices, more than 256"),
])
def test_a_nonsense_probe_is_refused_with_what_is_wrong(info, words):
    assert words in check_probe(info)


def test_a_sound_probe_passes():
    info = {"version": "1", "devices": [{"id": "cpu", "dtypes": ["float32"], "unsupported": {}}],
            "index_dtype": "int64", "settings": {}}
    assert check_probe(info) == ""


def test_an_unknown_framework_lists_the_installed_backends(audit, helpers):
    line = helpers.one_line_error(audit("run", "--framework", "numpyy"))
    assert "unknown framework 'numpyy'" in line and "numpy, torch, jax" in line
    assert "audit backends" in line


@pytest.mark.slow
def test_broken_backends_are_crash_findings_and_the_rest_completes(planted, audit):
    planted({"explodes": EXPLODES, "noframework": NO_FRAMEWORK, "nonsense": NONSENSE})
    result = audit("run", "-q", "--framework", "numpy,explodes,noframework,nonsense",
                   "--dtype", "float32", "--repeats", "1", "--processes", "1",
                   "--cases", "ties-short")
    assert result.code == 1, result.err
    document = result.results
    assert [t["id"] for t in document["targets"]] == ["numpy/cpu/float32"]
    assert document["observations"]  # numpy's answers were measured
    crashes = {f["targets"][0]: f["message"] for f in document["findings"] if f["kind"] == "crash"}
    assert "ZeroDivisionError" in crashes["explodes"]
    assert "a_framework_that_is_not_there" in crashes["noframework"]
    assert "probe is unusable" in crashes["nonsense"] and "no list of dtypes" in crashes["nonsense"]


@pytest.mark.slow
def test_audit_backends_lists_broken_ones_with_their_reason(planted, audit):
    planted({"explodes": EXPLODES, "nonsense": NONSENSE, "plainnp": GOOD})
    result = audit("backends", "--json")
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["numpy"]["status"] == "ok" and found["plainnp"]["status"] == "ok"
    assert found["plainnp"]["devices"][0]["id"] == "cpu"
    assert found["explodes"]["status"] == "broken" and "ZeroDivisionError" in found["explodes"]["why"]
    assert found["nonsense"]["status"] == "broken" and "no list of dtypes" in found["nonsense"]["why"]
    text = audit("backends").out
    assert "explodes: broken: importing planted_explodes:BACKEND raised ZeroDivisionError" in text
    assert "numpy " in text and "op argsort" in text


def test_a_backend_whose_variants_do_not_parse_is_a_startup_error_not_a_crash(planted):
    from auditor.model import Observations
    from auditor.runner import Plan, Runner

    planted({"oddvariants": GOOD.replace('"plainnp"', '"oddvariants"').replace(
        "BACKEND = Plain()", "BACKEND = Plain()\nBACKEND.all_variants = ('eager', 'warp-speed')")})
    plan = Plan(frameworks=["numpy", "oddvariants"], explicit_frameworks=True, devices=[],
                dtypes=["float32"], impls=[], cases=[], variants=["all"])
    runner = Runner(plan, Observations())
    groups = runner._groups(["numpy", "oddvariants"])
    assert [g.framework for g in groups] == ["numpy"]
    assert "unknown variant 'warp-speed'" in runner.observations.startup_errors["oddvariants"]
