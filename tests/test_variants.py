"""Execution variants: names, combinations, which framework has which, process-wide settings."""
import glob
import json
import os
import shutil

import pytest

from auditor import bundle, ops, registry, variants
from auditor.model import Observations
from auditor.runner import Group, Plan, Runner

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bundles")


@pytest.mark.parametrize("name, canonical, frameworks", [
    ("eager", "eager", None),  # every registered backend
    ("compile", "compile", {"torch"}),
    ("threads=1+compile", "compile+threads=1", {"torch"}),
    ("deterministic+flush-denormal+threads=8", "threads=8+deterministic+flush-denormal", {"torch"}),
    ("x64+jit", "jit+x64", {"jax"}),
    ("op-by-op", "op-by-op", {"jax"}),
    ("xla-deterministic", "xla-deterministic", {"jax"}),
])
def test_names_are_parsed_into_one_canonical_form(name, canonical, frameworks):
    variant = variants.parse(name)
    assert variant.name == canonical
    assert variant.frameworks == (frameworks or set(registry.backends()))
    assert variants.parse(canonical) == variant


@pytest.mark.parametrize("name, words", [
    ("warp-speed", "unknown variant"), ("threads=0", "unknown variant"), ("threads", "unknown"),
    ("compile+jit", "two mode settings"), ("compile+x64", "mixes modifiers"),
])
def test_bad_names_are_refused(name, words):
    with pytest.raises(ValueError, match=words):
        variants.parse(name)


def test_what_the_worker_applies_and_what_needs_a_process_of_its_own():
    spec = variants.parse("compile+threads=1+deterministic").worker_spec()
    assert spec == {"mode": "compile", "threads": 1, "deterministic": True, "flush_denormal": False}
    assert variants.parse("compile+threads=1").process == ()
    assert variants.parse("jit+x64").process == ("x64",)
    assert variants.process_env(("x64",)) == {"JAX_ENABLE_X64": "1"}
    env = variants.process_env(("xla-deterministic",), {"XLA_FLAGS": "--xla_dump_to=/tmp/d"})
    assert env == {"XLA_FLAGS": f"--xla_dump_to=/tmp/d {variants.XLA_DETERMINISTIC}"}
    assert Group("jax", ("x64",)).label == "jax (x64)" and Group("jax").label == "jax"


def test_all_and_explicit_names_select_per_framework():
    names = lambda names, fw: [v.name for v in variants.select(names, fw)]  # noqa: E731
    assert names(["all"], "numpy") == ["eager"]
    assert names(["all"], "torch")[:3] == ["eager", "compile", "compile-dynamic"]
    assert f"threads={variants.many_threads()}" in names(["all"], "torch")
    for mode in ("compile", "compile-dynamic"):  # compiled kernels under each thread setting
        assert {f"{mode}+threads=1", f"{mode}+threads={variants.many_threads()}"} <= set(
            names(["all"], "torch"))
    assert names(["all"], "jax") == ["eager", "jit", "op-by-op", "x64", "jit+x64", "xla-deterministic"]
    assert names(["compile", "jit"], "torch") == ["compile"]
    assert names(["compile"], "numpy") == []


def test_notes_say_which_named_variant_or_op_a_framework_lacks():
    plan = Plan(frameworks=["numpy", "torch"], explicit_frameworks=True, devices=[],
                dtypes=["float32"], impls=[], cases=[], variants=["eager", "compile"],
                ops=["argmax", "topk"])
    runner = Runner(plan, Observations())
    groups = runner._groups(["numpy", "torch"])
    assert groups == [Group("numpy"), Group("torch")]
    assert "numpy: variant compile does not apply (it is for torch)" in runner.record.skipped
    having = ", ".join(ops.OPS["topk"].frameworks)  # torch, jax (and tensorflow where registered)
    assert having.startswith("torch, jax")
    assert f"numpy: op topk does not apply (it is for {having})" in runner.record.skipped
    assert runner._ops("torch") == ["argmax", "topk"] and runner._ops("numpy") == ["argmax"]


def test_a_process_wide_variant_gets_a_group_of_its_own():
    plan = Plan(frameworks=["jax"], explicit_frameworks=True, devices=[], dtypes=["float32"],
                impls=[], cases=[], variants=["eager", "jit", "x64", "jit+x64"])
    groups = Runner(plan, Observations())._groups(["jax"])
    assert groups == [Group("jax"), Group("jax", ("x64",))]


# -- the command line --------------------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["--variant", "warp-speed"], ["unknown variant 'warp-speed'", "compile", "threads=N", "all"]),
    (["--variant", "compile+jit"], ["two mode settings"]),
    (["--op", "argsortt"], ["unknown op 'argsortt'", "argmin", "topk", "all"]),
    (["--impl", "numpy:./k.py:f@topk"], ["@argmin"]),
])
def test_unknown_names_are_one_line_usage_errors(audit, helpers, args, words):
    line = helpers.one_line_error(audit("run", *args))
    for word in words:
        assert word in line


def test_nothing_left_is_a_usage_error(audit, helpers):
    line = helpers.one_line_error(audit("run", "-q", "--framework", "numpy", "--variant", "compile"))
    assert "nothing to audit" in line and "numpy: variant compile does not apply" in line


# -- old bundles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(DATA, "*"))), ids=os.path.basename)
def test_bundles_without_op_or_settings_read_with_defaults(path, tmp_path):
    old = shutil.copytree(path, tmp_path / "old")  # as written before targets had op and settings
    results = old / "results.json"
    document = json.loads(results.read_text())
    for t in document["targets"]:
        t.pop("op", None)
        t.pop("settings", None)
    results.write_text(json.dumps(document))
    observations, _, document = bundle.read(str(old))
    assert all("op" not in t for t in document["targets"])
    for target in observations.targets.values():
        assert target.op == "argmax" and target.settings == {} and target.sense == "max"
        assert "." not in target.id.split("/")[0].split("[")[0]
