"""The Python API: `auditor.audit()` builds the plan `audit run` builds from every argument,
refuses what worker processes cannot import with the fix, returns findings as the CLI finds them,
and `raise_for_findings` fails with the worst sentences and a reproducer."""
import json
import os

import impls_for_api as kernels
import numpy as np
import pytest

import auditor
from auditor import api, registry
from auditor.errors import AuditFailed, UserError


@pytest.fixture
def planned(monkeypatch, tmp_path):
    """Run `audit()` with measuring replaced: return the Plan it would run (no process starts)."""
    monkeypatch.chdir(tmp_path)
    seen = {}

    def measure(plan, out, metadata, progress=False):
        seen.update(plan=plan, out=out, metadata=metadata, progress=progress)
        raise UserError("stop here")

    monkeypatch.setattr(api, "measure", measure)

    def plan(**arguments):
        try:
            auditor.audit(**arguments)
        except UserError as exc:
            if str(exc) != "stop here":
                raise
        return seen["plan"]
    return plan


def test_audit_is_exported():
    assert {"audit", "Result", "AuditFailed"} <= set(auditor.__all__)
    assert auditor.audit is api.audit and auditor.AuditFailed is AuditFailed


def test_every_argument_reaches_the_plan(planned, tmp_path):
    np.save(tmp_path / "logits.npy", np.array([[1.0, 3.0, 2.0]], np.float32))
    (tmp_path / "kernel.py").write_text("import numpy as np\nargmax = np.argmax\n")
    plan = planned(impls=[kernels.first_max, ("numpy", kernels.last_max, "argmin"),
                          "numpy:./kernel.py:argmax"],
                   frameworks=["numpy"], devices="cpu", dtypes=["float32", "float16"],
                   variants=["eager"], ops=["argmax", "argmin"], suite="full", cases="ties-*,user:*",
                   seed=3, repeats=7, processes=3, timeout=9.0, startup_timeout=11.0, jobs=1,
                   inputs=[str(tmp_path / "logits.npy"), np.array([[4.0, 4.0]])], input_dim=-1)
    assert (plan.frameworks, plan.explicit_frameworks, plan.devices) == (["numpy"], True, ["cpu"])
    assert plan.dtypes == ["float32", "float16"] and plan.variants == ["eager"]
    assert plan.ops == ["argmax", "argmin"]
    assert (plan.repeats, plan.processes, plan.timeout, plan.startup_timeout, plan.jobs) == (
        7, 3, 9.0, 11.0, 1)
    here = os.path.abspath(kernels.__file__)
    assert [(i.framework, i.module, i.function, i.op) for i in plan.impls] == [
        ("numpy", here, "first_max", "argmax"), ("numpy", here, "last_max", "argmin"),
        ("numpy", "./kernel.py", "argmax", "argmax")]
    ids = [c.id for c in plan.cases]
    assert ids[-2:] == ["user:logits.npy", "user:array0"]
    assert all(i.startswith("ties-") for i in ids[:-2]) and "ties-far-4097" in ids  # full, seed 3
    assert plan.cases[-1].values.tolist() == [[4.0, 4.0]]


def test_defaults_are_those_of_audit_run(planned):
    plan = planned()
    # every registered backend (the built-ins first); those not installed are left out later
    assert plan.explicit_frameworks is False and plan.frameworks == registry.names()
    assert plan.frameworks[:3] == ["numpy", "torch", "jax"]
    assert (plan.repeats, plan.processes, plan.timeout, plan.variants, plan.ops) == (
        5, 2, 60.0, ["eager"], ["argmax"])
    assert len(plan.cases) > 30 and not plan.impls


def test_arrays_of_torch_and_jax_are_user_cases(planned):
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    plan = planned(frameworks="numpy", cases="user:*",
                   inputs=[torch.tensor([[1.0, 5.0]], dtype=torch.bfloat16),
                           jnp.array([[2.0, 1.0]], dtype=jnp.bfloat16)])
    assert [c.id for c in plan.cases] == ["user:array0", "user:array1"]
    assert [c.values.tolist() for c in plan.cases] == [[[1.0, 5.0]], [[2.0, 1.0]]]
    assert "bfloat16" in plan.cases[0].note and "bfloat16" in plan.cases[1].note


@pytest.mark.parametrize("impl, words", [
    (lambda x, dim=None, keepdim=False: x, "a lambda cannot be imported"),
    (kernels.make_closure(), "defined inside another function (a closure)"),
    (kernels.Holder.method, "is a method or nested in a class"),
    (kernels.main_defined, "defined in the script being run (__main__)"),
    (kernels.decorated, "is not"),
    (np.argmax, "is not a plain function"),
    (42, "must be a function"),
    (("numpy", kernels.first_max, "topk"), "'argmax' or 'argmin', not 'topk'"),
    (("pandas", kernels.first_max), "unknown framework 'pandas'"),
])
def test_what_workers_cannot_import_is_refused_with_the_fix(planned, impl, words):
    with pytest.raises(UserError) as refused:
        planned(impls=[impl], frameworks=["numpy"])
    assert words in str(refused.value)


def test_a_bare_callable_needs_one_framework(planned):
    with pytest.raises(UserError, match=r"impls=\[\('torch', fn\)\]"):
        planned(impls=[kernels.first_max])
    with pytest.raises(UserError, match="say which framework"):
        planned(impls=[kernels.first_max], frameworks=["numpy", "torch"])


@pytest.mark.parametrize("arguments, words", [
    ({"frameworks": ["caffe"]}, "unknown framework 'caffe'"),
    ({"dtypes": "float8"}, "unknown dtype 'float8'"),
    ({"devices": ["gpu"]}, "unknown device 'gpu'"),
    ({"variants": ["warp"]}, "warp"),
    ({"ops": ["argmid"]}, "unknown op 'argmid'"),
    ({"suite": "huge"}, "unknown suite 'huge'"),
    ({"cases": "nothing-*"}, "matches no case"),
    ({"fail_on": "info"}, "fail_on must be"),
    ({"baseline": "missing.npz"}, "does not exist"),
    ({"local": False}, "leaves nothing to audit"),
])
def test_bad_arguments_are_user_errors(planned, arguments, words):
    with pytest.raises(UserError) as refused:
        planned(**arguments)
    assert words in str(refused.value)


# --- results ------------------------------------------------------------------------------------


def _result(findings, fail_on="error"):
    return api.Result(findings=findings, verdict="fail", fail_on=fail_on, summary={}, document={},
                      bundle="/tmp/b")


def _finding(kind, severity=None, allowed=None, reproducer="print(1)\n", case="c"):
    from auditor.model import Finding
    return Finding(check="reference", kind=kind, message=f"{kind} sentence", targets=["t"],
                   case=case, severity=severity or "", reproducer=reproducer, allowed=allowed)


def test_raise_for_findings_names_the_worst_and_one_reproducer():
    result = _result([_finding("precision_drift"), _finding("tie_break"),
                      _finding("nan_policy", allowed="known"),
                      _finding("wrong_index", reproducer="np.load('/tmp/b/arrays.npz')")])
    with pytest.raises(AuditFailed) as failed:
        result.raise_for_findings()
    text = str(failed.value)
    assert text.startswith("argmax-audit: 2 findings at or above error:")
    assert "tie_break sentence" in text and "wrong_index sentence" in text
    assert "nan_policy" not in text and "precision_drift" not in text  # allowed; a warning
    assert text.endswith("reproducer (tie_break on c):\nprint(1)")  # the self-contained one
    assert failed.value.result is result
    with pytest.raises(AuditFailed, match="3 findings at or above warning"):
        result.raise_for_findings("warning")
    assert _result([_finding("precision_drift")]).raise_for_findings() is not None


# --- end to end: the same findings as the CLI ----------------------------------------------------


@pytest.mark.slow
def test_the_api_finds_what_the_cli_finds(audit, tmp_path):
    arguments = ["--framework", "numpy", "--dtype", "float32", "--repeats", "2", "--processes",
                 "1", "--cases", "ties-short,nan-rows,dims-*"]
    cli = audit("run", "-q", *arguments, "--impl", f"numpy:{kernels.__file__}:last_max")
    result = auditor.audit(impls=[kernels.last_max], frameworks="numpy", dtypes="float32",
                           repeats=2, processes=1, cases=["ties-short,nan-rows,dims-*"],
                           out=str(tmp_path / "api"))
    def key(f):
        return (f["kind"], f["check"], f["case"], tuple(f["targets"]), f["message"])
    assert cli.code == 1 and result.verdict == "fail" and result.complete
    assert sorted(map(key, cli.results["findings"])) == sorted(
        key(f.to_json()) for f in result.findings)
    assert result.bundle == str(tmp_path / "api")
    with open(tmp_path / "api" / "results.json", encoding="utf-8") as handle:
        assert json.load(handle)["summary"]["verdict"] == "fail"
    assert {"tie_break"} <= {f.kind for f in result.failing()}
    clean = auditor.audit(impls=[kernels.first_max], frameworks="numpy", dtypes="float32",
                          repeats=2, processes=1, cases="ties-short,nan-rows,dims-*")
    assert clean.verdict == "pass" and clean.bundle is None
    assert clean.raise_for_findings() is clean
