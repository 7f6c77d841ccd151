"""All checks together: correct targets stay clean, each planted fault gets exactly its kind, on the
built-in suite and on hypothesis-drawn cases; and the reproducers findings carry run as they say."""
import contextlib
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from synthetic import (
    PLANTED,
    RandomTie,
    correct,
    expected_of,
    first_max,
    kinds,
    nan_skip,
    observe,
    oracle,
    quick_suite,
    rows,
    rowwise,
    small_case,
    target,
    ties_without_nan,
)

from auditor.checks import CHECKS, run_checks
from auditor.model import Case, Target
from auditor.reproduce import reproducer
from auditor.worker.backends.np_backend import Adapter
from auditor.worker.casting import narrow

DTYPES = ["float32", "float16", "bfloat16", "float64"]
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the built-in suite ----------------------------------------------------------------------------

def test_checks_are_the_documented_modules():
    assert [c.NAME for c in CHECKS] == ["crash", "api", "determinism", "reference", "consistency",
                                        "precision", "regression"]


def test_correct_targets_of_every_dtype_are_clean_but_for_drift_warnings():
    impls = {}
    for dtype in DTYPES:
        impls[target(dtype=dtype)] = correct
        impls[target(dtype=dtype, framework="torch")] = oracle
        impls[target("rowwise", dtype=dtype)] = rowwise(first_max)
    findings = run_checks(observe(list(quick_suite()), impls))
    assert findings
    assert {(f.check, f.kind, f.severity) for f in findings} == {
        ("precision", "precision_drift", "warning")}
    assert {f.targets[0].split("/")[-1] for f in findings} == {"float16", "bfloat16"}


#: What each planted fault must produce over the quick suite, and nothing else.
EXPECTED = {
    "last_tie": {("reference", "tie_break")},
    "nan_skip": {("reference", "nan_policy")},
    "half_kernel": {("reference", "wrong_index")},
    "int32_indices": {("api", "api_mismatch")},
    "keepdim_ignored": {("api", "api_mismatch")},
    # The squeezed index of the large-index case is not a maximum; that of the NaN case lands on
    # a number in a row holding NaN, which is that row's kind.
    "int16_squeezed": {("reference", "wrong_index"), ("reference", "nan_policy")},
    "out_of_range": {("reference", "wrong_index")},
    "no_raise_on_empty": {("api", "api_mismatch")},
    "raises_on_3d": {("crash", "crash")},
    "float_garbage": {("api", "api_mismatch")},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_planted_fault_gets_exactly_its_kind(name):
    tgt = target(name)
    findings = run_checks(observe(list(quick_suite()), {tgt: PLANTED[name]}))
    assert kinds(findings) == EXPECTED[name]
    assert all(f.targets == [tgt.id] for f in findings)


def test_random_tie_break_is_nondeterministic_and_tie_break():
    tgt = target("random")
    findings = run_checks(observe(list(quick_suite()), {tgt: RandomTie()}))
    assert kinds(findings) == {("determinism", "nondeterministic"), ("reference", "tie_break")}


def test_faulty_target_beside_correct_ones_is_blamed_alone():
    impls = {target(framework=fw): correct for fw in ("numpy", "torch", "jax")}
    odd = target("last_tie")
    impls[odd] = PLANTED["last_tie"]
    findings = run_checks(observe(list(quick_suite()), impls))
    assert kinds(findings) == {("reference", "tie_break"), ("consistency", "tie_break")}
    assert all(f.targets == [odd.id] for f in findings if f.check == "reference")
    assert all(f.evidence["odd_one_out"] == [odd.id] for f in findings if f.check == "consistency")


# -- hypothesis-drawn cases: the detectors are general, not tuned to the suite ---------------------

POOL = [0.0, -0.0, 1.0, 1.0 + 2**-12, 1.0 + 2**-9, 2.0, -1.0, np.inf, -np.inf, np.nan, -np.nan,
        1e-40, 65520.0, 70000.0]


@st.composite
def cases(draw, max_side=5):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=max_side))
    values = draw(hnp.arrays(np.float32, shape, elements=st.sampled_from(POOL).map(np.float32)))
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided", "broadcast"]))
    if layout == "broadcast":  # the view repeats the first entry along axis 0
        values = np.broadcast_to(values[:1], shape).copy()
    dim = draw(st.sampled_from([None, *range(len(shape)), *range(-len(shape), 0)]))
    return Case("drawn", values, dim=dim, keepdim=draw(st.booleans()), layout=layout)


def _reference_kinds(case, name, fn, dtype="float32"):
    tgt = target(name, dtype)
    findings = run_checks(observe([case], {tgt: fn}, processes=1, repeats=1))
    return {kind for check, kind in kinds(findings)}, findings


@PROPERTY
@given(cases())
def test_last_tie_is_tie_break_exactly_where_a_row_ties(case):
    found, _ = _reference_kinds(case, "last_tie", PLANTED["last_tie"])
    assert found == ({"tie_break"} if ties_without_nan(case) else set())


@PROPERTY
@given(cases())
def test_nan_skipping_is_nan_policy_exactly_where_it_misses_the_first_nan(case):
    found, _ = _reference_kinds(case, "nan_skip", PLANTED["nan_skip"])
    # Not every row mixing NaN and numbers: nanargmax of [NaN, -inf] is 0, the first NaN.
    missed = any(nan_skip(r) != first_max(r) for r in rows(case))
    assert found == ({"nan_policy"} if missed else set())


@PROPERTY
@given(cases())
def test_float16_kernel_is_wrong_index_exactly_where_rounding_changes_the_answer(case):
    found, findings = _reference_kinds(case, "half_kernel", PLANTED["half_kernel"])
    changed = bool(np.any(expected_of(case, "float16") != expected_of(case, "float32")))
    assert found == ({"wrong_index"} if changed else set())
    for finding in findings:
        assert f"returned {finding.evidence['returned']} " in finding.message
        assert f"expected {finding.evidence['expected']} " in finding.message


@PROPERTY
@given(cases())
def test_correct_targets_only_ever_drift(case):
    impls = {target(framework=fw, dtype=d): correct for fw in ("numpy", "torch") for d in DTYPES}
    impls.update({target("oracle", d): oracle for d in DTYPES})
    findings = run_checks(observe([case], impls, processes=1, repeats=1))
    assert {(f.kind, f.severity) for f in findings} <= {("precision_drift", "warning")}


@PROPERTY
@given(cases())
def test_consistency_names_the_last_tie_target_exactly_where_a_row_ties(case):
    impls = {target(framework=fw): correct for fw in ("numpy", "torch", "jax")}
    odd = target("last_tie")
    impls[odd] = PLANTED["last_tie"]
    findings = [f for f in run_checks(observe([case], impls, processes=1, repeats=1))
                if f.check == "consistency"]
    if ties_without_nan(case):
        assert [f.kind for f in findings] == ["tie_break"]
        assert findings[0].evidence["odd_one_out"] == [odd.id]
    else:
        assert findings == []


# -- reproducers -----------------------------------------------------------------------------------

def _run_script(script):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(script, "<reproducer>", "exec"), {"__name__": "__reproducer__"})
    return out.getvalue().strip()


def _printed(result, case, positions):
    result = np.asarray(result)
    if positions and case.dim is not None:
        return str([int(result[tuple(p)]) for p in positions[:3]])
    return str(int(result.reshape(-1)[0]))


def _numpy_answer(case, dtype):
    x = Adapter().to_native(narrow(case.values, dtype), dtype, "cpu", case.layout)
    return np.argmax(x, axis=case.dim, keepdims=case.keepdim)


TIES = np.array([[1.0, 7.5, 7.5, 0.0], [np.nan, 2.0, 2.0, np.nan], [-0.0, 0.0, -1.0, 0.0]],
                dtype=np.float32)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("layout, values, dim", [
    ("contiguous", TIES, 1), ("transposed", TIES, 1), ("transposed", TIES.T.copy(), 0),
    ("strided", TIES, -1), ("broadcast", np.broadcast_to(TIES[:1], (5, 4)).copy(), 1),
    ("broadcast", np.broadcast_to(TIES[:1], (5, 4)).copy(), 0), ("contiguous", TIES, None),
])
def test_numpy_reproducer_prints_numpys_answer(layout, values, dim, dtype):
    case = Case("layout", values, dim=dim, layout=layout)
    positions = [(i,) for i in range(case.output_shape[0])] if case.output_shape else []
    script = reproducer(case, Target("numpy", "cpu", dtype), positions)
    assert _run_script(script) == _printed(_numpy_answer(case, dtype), case, positions)


@settings(max_examples=40, deadline=None)
@given(cases(max_side=4), st.sampled_from(["float32", "float16", "bfloat16"]))
def test_numpy_reproducer_of_any_drawn_case(case, dtype):  # up to 64 values: written inline
    positions = [tuple(p) for p in np.argwhere(np.ones(case.output_shape, dtype=bool))][:3]
    script = reproducer(case, Target("numpy", "cpu", dtype), positions)
    assert _run_script(script) == _printed(_numpy_answer(case, dtype), case, positions)


def test_repeat_reproducer_counts_each_answer():
    case = small_case([[3.0, 3.0], [1.0, 2.0]], dim=1)
    script = reproducer(case, Target("numpy", "cpu", "float32"), [(0,), (1,)], repeat=True)
    assert _run_script(script) == str({"[0, 1]": 1000})


def test_repeat_reproducer_counts_how_often_a_racing_answer_came(tmp_path):
    (tmp_path / "racy.py").write_text(
        "import numpy as np\n"
        "calls = [0]\n"
        "def argmax(x, dim=None, keepdim=False):\n"
        "    calls[0] += 1\n"
        "    return np.int64(1 if calls[0] % 4 == 0 else 0)\n")
    case = small_case([3.0, 3.0], dim=None)
    target_ = Target("numpy", "cpu", "float32", impl=f"{tmp_path / 'racy.py'}:argmax")
    script = reproducer(case, target_, repeat=True)
    assert _run_script(script) == str({"0": 750, "1": 250})


def test_large_case_reproducer_sparse_and_saved(tmp_path):
    sparse = np.full((10, 30), -1.0, dtype=np.float32)  # more values than are written inline
    sparse[3, [4, 17]] = 8.0
    sparse[7, 0] = np.nan
    dense = np.random.default_rng(0).standard_normal((10, 30)).astype(np.float32)
    np.savez(tmp_path / "arrays.npz", **{"case/dense": dense})
    for case_id, values in (("sparse", sparse), ("dense", dense)):
        case = Case(case_id, values, dim=1)
        positions = [(3,), (7,), (9,)]
        script = reproducer(case, Target("numpy", "cpu", "float32"), positions,
                            bundle_path=str(tmp_path))
        assert ("np.load" in script) == (case_id == "dense")
        assert _run_script(script) == _printed(np.argmax(values, axis=1), case, positions)


def test_user_implementation_reproducer_calls_the_file(tmp_path):
    source = ("import numpy as np\n"
              "def argmax(x, dim=None, keepdim=False):\n"
              "    flipped = np.flip(x, axis=dim)\n"
              "    return x.shape[dim] - 1 - np.argmax(flipped, axis=dim, keepdims=keepdim)\n")
    path = tmp_path / "my_argmax.py"
    path.write_text(source)
    case = small_case([[1.0, 5.0, 5.0], [2.0, 0.0, 2.0]], dim=1, layout="transposed")
    script = reproducer(case, Target("numpy", "cpu", "float32", impl=f"{path}:argmax"),
                        [(0,), (1,)])
    assert _run_script(script) == "[2, 2]"


def test_torch_reproducer_prints_torchs_answer():
    torch = pytest.importorskip("torch")
    case = Case("torch", TIES, dim=1, layout="transposed")
    positions = [(0,), (1,), (2,)]
    script = reproducer(case, Target("torch", "cpu", "float32"), positions)
    x = torch.from_numpy(np.ascontiguousarray(TIES.T)).permute(1, 0)
    expected = torch.argmax(x, dim=1).numpy()
    assert _run_script(script) == _printed(expected, case, positions)


def test_findings_reproduce_what_the_audit_saw():
    """A numpy float16 drift finding's script prints the low-precision answers the audit saw."""
    impls = {target(dtype="float32"): correct, target(dtype="float16"): correct}
    case = next(c for c in quick_suite() if c.id == "near-tie-overflow")  # small: inline values
    [finding] = run_checks(observe([case], impls, processes=1, repeats=1))
    printed = _run_script(finding.reproducer)
    positions = [tuple(p) for p in finding.positions]
    answers = [_printed(_numpy_answer(case, dtype), case, positions) for dtype in ("float32", "float16")]
    assert printed == f"[{', '.join(answers)}]"  # float32's answers, then float16's
    assert f"# the audit saw {printed} (float32, then float16)" in finding.reproducer
