"""argmin and argmax's twins in the checks: the mirrored reference, documented twin differences."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from synthetic import (
    PLANTED,
    assert_explains,
    correct,
    observe,
    rowwise,
    small_case,
    suite_case,
    suite_for,
    target,
)

from auditor import ops
from auditor.checks import consistency, reference, run_checks
from auditor.model import Target
from auditor.oracle import reference_argmax
from auditor.policy import parse
from auditor.reproduce import reproducer

# -- the mirrored reference ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
                  elements=st.sampled_from([-1.0, 0.0, -0.0, 2.5, np.inf, -np.inf, np.nan])))
def test_argmin_reference_is_numpys_argmin(values):
    for dim in (None, *range(values.ndim)):
        np.testing.assert_array_equal(reference_argmax(values, dim, sense="min"),
                                      np.argmin(values, axis=dim))


def test_argmin_reference_takes_the_first_minimum_and_the_first_nan():
    values = np.array([[3.0, -1.0, 5.0, -1.0], [2.0, np.nan, -7.0, np.nan], [-0.0, 0.0, 1.0, 0.0]],
                      dtype=np.float32)
    assert reference_argmax(values, 1, sense="min").tolist() == [1, 1, 0]
    assert reference_argmax(values, 1).tolist() == [2, 1, 2]


def test_target_ids_name_op_and_variant_and_keep_the_default():
    assert Target("torch", "cpu", "float32").id == "torch/cpu/float32"
    assert Target("torch", "cpu", "float16", variant="compile").id == "torch/cpu/float16/compile"
    assert Target("torch", "cpu", "float32", op="topk").id == "torch.topk/cpu/float32"
    assert Target("jax", "cpu", "float32", variant="jit", op="argmin").id == "jax.argmin/cpu/float32/jit"
    assert Target("numpy", "cpu", "float32", impl="k.py:f", op="argmin").id == "numpy[k.py:f].argmin/cpu/float32"
    assert Target("torch", "cpu", "float32", op="argmin").sense == "min"


# -- argmin through every check --------------------------------------------------------------------


def last_min(row):
    nans = np.flatnonzero(np.isnan(row))
    return int(nans[0]) if len(nans) else int(np.flatnonzero(row == row.min())[-1])


def test_numpys_argmin_is_clean_as_an_argmin_target():
    tgt = target(None, op="argmin")
    observations = observe(list(suite_for("float32", "min")), {
        tgt: lambda x, dim=None, keepdim=False: np.argmin(x, axis=dim, keepdims=keepdim)})
    assert run_checks(observations) == []


def test_last_minimum_is_an_argmin_tie_break_said_in_argmin_words():
    tgt = target("last_min", op="argmin")
    observations = observe(list(suite_for("float32", "min")), {tgt: rowwise(last_min)})
    findings = reference.check(observations, {})
    assert findings and {f.kind for f in findings} == {"tie_break"}
    first = next(f for f in findings if f.case == "ties-short-min")
    assert_explains(first, "reference", "tie_break", tgt.id)
    assert first.message.startswith("argmin(x, dim=1) on numpy[planted:last_min].argmin/cpu/float32")
    assert "tied minima" in first.message and "maxim" not in first.message
    assert first.evidence["policy"] == "last"
    assert "first minimum" in first.reproducer


def test_argmin_that_skips_nan_is_a_nan_policy():
    def skip_nan(row):
        return 0 if np.isnan(row).all() else int(np.nanargmin(row))

    tgt = target("nanargmin", op="argmin")
    observations = observe([suite_case("nan-rows-min")], {tgt: rowwise(skip_nan)})
    (finding,) = reference.check(observations, {})
    assert finding.kind == "nan_policy" and finding.severity == "error"
    assert "NaN counts as the minimum" in finding.message


def test_argmax_is_not_compared_with_argmin():
    case = small_case([[1.0, 5.0, 3.0]])
    observations = observe([case], {target(None): correct,
                                     target(None, op="argmin"): lambda x, dim=None, keepdim=False:
                                     np.argmin(x, axis=dim, keepdims=keepdim)})
    assert consistency.check(observations, {}) == []


# -- twins: documented differences are warnings that quote the documentation ----------------------


def _twin(framework, op, fn, cases):
    tgt = target(None, framework=framework, op=op)
    return tgt, reference.check(observe(cases, {tgt: fn}), {})


def test_topk_tie_difference_is_a_warning_citing_torchs_documentation():
    tgt, findings = _twin("torch", "topk", PLANTED["last_tie"], [suite_case("ties-short")])
    (finding,) = findings
    assert (finding.kind, finding.severity) == ("tie_break", "warning")
    note = ops.documented("torch", "topk")
    assert note.url in finding.message and note.quote in finding.message
    assert finding.evidence["documented"]["url"] == "https://docs.pytorch.org/docs/stable/generated/torch.topk.html"
    assert "indices of tied elements are not guaranteed" in note.quote


def test_topk_wrong_index_and_nan_skipping_stay_errors():
    _, findings = _twin("torch", "topk", PLANTED["out_of_range"], [suite_case("ties-short")])
    assert {(f.kind, f.severity) for f in findings} == {("wrong_index", "error")}
    _, findings = _twin("torch", "topk", PLANTED["nan_skip"], [suite_case("nan-rows")])
    assert ("nan_policy", "error") in {(f.kind, f.severity) for f in findings}


def test_topk_picking_a_later_nan_is_a_documented_warning():
    def last_nan(row):
        nans = np.flatnonzero(np.isnan(row))
        return int(nans[-1]) if len(nans) else int(np.flatnonzero(row == row.max())[0])

    _, findings = _twin("torch", "topk", rowwise(last_nan), [suite_case("nan-rows")])
    assert {(f.kind, f.severity) for f in findings} == {("nan_policy", "warning")}


def test_argsort_read_from_the_right_may_give_the_last_tie_and_nothing_else():
    _, findings = _twin("numpy", "argsort", PLANTED["last_tie"], [suite_case("ties-short")])
    assert {(f.kind, f.severity) for f in findings} == {("tie_break", "warning")}

    def second_tie(row):
        tied = np.flatnonzero(row == row.max())
        return int(tied[1]) if len(tied) > 2 else last_tie_row(row)

    _, findings = _twin("numpy", "argsort", rowwise(second_tie), [suite_case("ties-short")])
    assert ("tie_break", "error") in {(f.kind, f.severity) for f in findings}


def last_tie_row(row):
    return int(np.flatnonzero(row == row.max())[-1])


def test_jax_top_k_promises_the_first_index_so_its_ties_are_errors():
    _, findings = _twin("jax", "topk", PLANTED["last_tie"], [suite_case("ties-short")])
    assert {(f.kind, f.severity) for f in findings} == {("tie_break", "error")}


def test_an_implementation_gets_no_documented_allowance():
    tgt = Target("torch", "cpu", "float32", impl="k:topk_like", op="argmax")
    findings = reference.check(observe([suite_case("ties-short")], {tgt: PLANTED["last_tie"]}), {})
    assert {f.severity for f in findings} == {"error"}


@pytest.mark.parametrize("level", ["error", "info"])
def test_policy_severity_applies_to_documented_warnings(level):
    _, findings = _twin("torch", "topk", PLANTED["last_tie"], [suite_case("ties-short")])
    policy = parse({"severity": {"tie_break": level}}, "audit.toml")
    assert {f.severity for f in policy.apply(findings)} == {level}


def test_consistency_quotes_the_documentation_of_the_odd_twin():
    case = suite_case("ties-short")
    twin = target(None, framework="torch", op="topk")
    observations = observe([case], {target(None, framework="torch"): correct,
                                     target(None, framework="torch", op="max"): correct,
                                     twin: PLANTED["last_tie"]})
    (finding,) = consistency.check(observations, {})
    assert finding.severity == "info" and finding.evidence["blame"] == [twin.id]
    assert "argmax / max / topk (dim=1)" in finding.message
    assert finding.evidence["documented"]["url"] in finding.message


# -- reproducers through the op and the variant ------------------------------------------------------


@pytest.mark.parametrize("framework, op, variant, lines", [
    ("torch", "topk", "compile", ["f = torch.compile(lambda x: torch.topk(x, 1, dim=1).indices"
                                  ".squeeze(1), dynamic=False)", "    r = f(x)"]),
    ("torch", "max", "threads=1+deterministic", ["torch.set_num_threads(1)",
                                                 "torch.use_deterministic_algorithms(True)",
                                                 "r = torch.max(x, dim=1, keepdim=False).indices"]),
    ("torch", "argmax", "flush-denormal", ["torch.set_flush_denormal(True)"]),
    ("jax", "topk", "jit+x64", ["jax.config.update('jax_enable_x64', True)",
                                "f = jax.jit(lambda x: jax.lax.top_k(jnp.moveaxis(x, 1, -1), 1)[1][..., 0])"]),
    ("jax", "argmin", "op-by-op", ["    with jax.disable_jit():",
                                   "        r = jnp.argmin(x, axis=1, keepdims=False)"]),
    ("jax", "argmax", "xla-deterministic", ["os.environ['XLA_FLAGS']"]),
])
def test_reproducer_calls_through_op_and_variant(framework, op, variant, lines):
    script = reproducer(suite_case("ties-short"), Target(framework, "cpu", "float32", variant=variant, op=op))
    for line in lines:
        assert line in script, script
    compile(script, "<reproducer>", "exec")
    if variant == "xla-deterministic":
        assert script.index("XLA_FLAGS") < script.index("import jax")


@pytest.mark.parametrize("op, expected", [("argsort", [1, 4, 7]), ("argmin", None)])
def test_numpy_twin_reproducers_print_their_answer(op, expected):
    case = suite_case("ties-short")
    tgt = Target("numpy", "cpu", "float32", op=op)
    positions = [(0,), (2,), (4,)]
    script = reproducer(case, tgt, positions)
    printed = {}
    exec(compile(script.replace("print(", "printed['out'] = ("), "<reproducer>", "exec"), {"printed": printed})
    fn = ops.expression("numpy", op, case.dim, case.keepdim)
    answer = eval(fn, {"np": np, "x": case.seen("float32")})
    assert printed["out"] == [int(answer[p]) for p in positions]
    if expected:
        assert printed["out"] == expected


# -- settings explain a difference between two runs ------------------------------------------------


def test_a_regression_names_the_settings_that_differ_from_the_baseline():
    from auditor.checks import regression

    case = suite_case("ties-short")
    new_target = Target("torch", "cpu", "float32", settings={"num_threads": 1, "x": "same"})
    old_target = Target("torch", "cpu", "float32", env="before",
                        settings={"num_threads": 8, "x": "same"})
    new, old = observe([case], {new_target: PLANTED["last_tie"]}), observe([case], {old_target: correct})
    (finding,) = regression.check(new, {"baseline": old})
    assert finding.evidence["settings_changed"] == {"num_threads": [8, 1]}
    assert "settings differ: num_threads 8 -> 1" in finding.message
    assert regression.settings_changed({}, {"num_threads": 1}) == {}
