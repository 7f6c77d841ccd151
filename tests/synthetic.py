"""Build Observations in-process: plain numpy argmax implementations run as the workers run targets.

A planted implementation is `fn(x, dim=..., keepdim=...)`, called like a user's `--impl`. `observe`
calls it on the values each target sees (in the case's memory layout), folds repeats into distinct
outcomes the way the worker does and merges processes the way the runner does, with no process.
"""
import functools
import itertools

import numpy as np

from auditor.cases import build_suite
from auditor.model import Case, Observations, Outcome, Target
from auditor.oracle import maximizers, reference_argmax
from auditor.worker.backends.np_backend import Adapter
from auditor.worker.casting import is_integer

_ADAPTER = Adapter()


# -- running implementations as targets ------------------------------------------------------------

def target(impl=None, dtype="float32", framework="numpy", device="cpu", variant="eager",
           op="argmax"):
    """Return a Target for implementation `impl` (None: the framework's own `op`).

    A bare name becomes `planted:NAME`, the MODULE:FUNCTION form `--impl` names take.
    """
    if impl and ":" not in impl:
        impl = f"planted:{impl}"
    return Target(framework, device, dtype, variant=variant, impl=impl, op=op)


def native(case, dtype):
    """Return what a target of `dtype` is handed: the seen values, widened, in the case's layout
    (integers and bool in their own type)."""
    wide = dtype if dtype == "float64" or is_integer(dtype) else "float32"
    return _ADAPTER.to_native(case.seen(dtype), wide, "cpu", case.layout)


def call(fn, x, case):
    """Call `fn` as the worker does and return {'indices', 'dtype', 'type'} or {'error'}."""
    try:
        result = fn(x, dim=case.dim, keepdim=case.keepdim)
    except Exception as exc:  # noqa: BLE001 - failures are data
        return {"error": {"type": type(exc).__name__, "message": str(exc), "where": "synthetic"}}
    try:
        indices, dtype = _ADAPTER.to_numpy(result)
    except TypeError as exc:
        return {"error": {"type": "BadReturn", "message": str(exc), "where": ""}}
    return {"indices": indices, "dtype": dtype, "type": type(result).__name__}


def _key(result):
    if "error" in result:
        return ("error", result["error"]["type"], result["error"]["message"])
    return (result["dtype"], result["type"], result["indices"].shape, result["indices"].tobytes())


def run_process(fn, case, dtype, process, repeats):
    """Return the distinct Outcomes of `repeats` calls of `fn` on `case` in one `process`."""
    x = native(case, dtype)
    outcomes = {}
    for repeat in range(repeats):
        result = call(fn, x, case)
        known = outcomes.get(_key(result))
        if known is not None:
            known.runs.append([process, repeat])
        elif "error" in result:
            outcomes[_key(result)] = Outcome([[process, repeat]], error=result["error"])
        else:
            outcomes[_key(result)] = Outcome([[process, repeat]], indices=result["indices"],
                                             dtype=result["dtype"], type=result["type"])
    return list(outcomes.values())


def observe(cases, impls, processes=2, repeats=2):
    """Return Observations of every (Target, fn) in `impls` on every case of `cases` that applies
    to it (its dtype's family and op's sense), as the runner chooses them."""
    observations = empty(cases, [t for t, _ in _pairs(impls)])
    for process in range(processes):
        for tgt, fn in _pairs(impls):
            for case in (c for c in cases if c.applies(tgt.dtype, tgt.sense)):
                observations.add(tgt.id, case.id, run_process(fn, case, tgt.dtype, process, repeats))
    return observations


def _pairs(impls):
    return list(impls.items()) if isinstance(impls, dict) else list(impls)


def empty(cases, targets):
    """Return Observations that know `cases` and `targets` and hold no outcome yet."""
    observations = Observations()
    for case in cases:
        observations.cases[case.id] = case
    for tgt in targets:
        observations.targets[tgt.id] = tgt
    return observations


def indices(values, runs=((0, 0),), dtype="int64"):
    """Return a hand-made Outcome holding `values` as the indices."""
    return Outcome([list(r) for r in runs], indices=np.asarray(values, dtype=np.int64),
                   dtype=dtype, type="ndarray")


def error(kind, message="boom", runs=((0, 0),)):
    """Return a hand-made failed Outcome with error type `kind`."""
    return Outcome([list(r) for r in runs], error={"type": kind, "message": message, "where": ""})


@functools.cache
def whole_quick_suite():
    """Return every case of the built-in quick suite (built once; treat it as read-only)."""
    return tuple(build_suite("quick"))


@functools.cache
def suite_for(dtype="float32", sense="max"):
    """Return the quick suite's cases that a target of `dtype` and `sense` runs (read-only)."""
    return tuple(c for c in whole_quick_suite() if c.applies(dtype, sense))


def quick_suite():
    """Return the quick suite's cases of a float32 argmax: the float cases for argmax and its
    twins (the suite's argmin mirrors, integer and float64-only cases: `suite_for`)."""
    return suite_for("float32", "max")


def suite_case(case_id):
    return next(c for c in whole_quick_suite() if c.id == case_id)


def small_case(values, dim=-1, keepdim=False, layout="contiguous", id="small"):
    return Case(id, np.asarray(values, dtype=np.float32), dim=dim, keepdim=keepdim, layout=layout)


# -- planted implementations -----------------------------------------------------------------------

def rowwise(pick):
    """Return an argmax that applies `pick(row) -> index` to every 1-d row it reduces."""

    def argmax(x, dim=None, keepdim=False):
        x = np.asarray(x)
        if x.ndim == 0:
            return np.zeros((), dtype=np.int64)
        if dim is None:
            if x.size == 0:
                raise ValueError("attempt to get argmax of an empty sequence")
            out = np.array(pick(x.reshape(-1)), dtype=np.int64)
            return out.reshape((1,) * x.ndim) if keepdim else out
        axis = dim % x.ndim
        if x.shape[axis] == 0:
            raise ValueError("attempt to get argmax of an empty sequence")
        moved = np.moveaxis(x, axis, -1)
        rows = moved.reshape(-1, moved.shape[-1])
        out = np.array([pick(row) for row in rows], dtype=np.int64).reshape(moved.shape[:-1])
        return np.expand_dims(out, axis) if keepdim else out

    return argmax


def first_max(row):
    """The rule: the first NaN, else the first maximum."""
    nans = np.flatnonzero(np.isnan(row))
    return int(nans[0]) if len(nans) else int(np.flatnonzero(row == row.max())[0])


def last_tie(row):
    """Fault: ties go to the LAST maximum (NaN still handled right)."""
    nans = np.flatnonzero(np.isnan(row))
    return int(nans[0]) if len(nans) else int(np.flatnonzero(row == row.max())[-1])


def nan_skip(row):
    """Fault: NaN is skipped, as nanargmax does (an all-NaN row gives 0)."""
    if np.isnan(row).all():
        return 0
    return int(np.nanargmax(row))


class RandomTie:
    """Fault: a random choice among tied maxima, with a fresh seed on every call."""

    def __init__(self):
        self.calls = itertools.count()

    def __call__(self, x, dim=None, keepdim=False):
        rng = np.random.default_rng(next(self.calls))

        def pick(row):
            if np.isnan(row).any():
                return first_max(row)
            return int(rng.choice(np.flatnonzero(row == row.max())))

        return rowwise(pick)(x, dim=dim, keepdim=keepdim)


def correct(x, dim=None, keepdim=False):
    return np.argmax(x, axis=dim, keepdims=keepdim)


def oracle(x, dim=None, keepdim=False):
    return reference_argmax(x, dim, keepdim)


def half_kernel(x, dim=None, keepdim=False):
    """Fault: a float32 kernel that computes in float16."""
    with np.errstate(over="ignore"):
        return np.argmax(np.asarray(x).astype(np.float16), axis=dim, keepdims=keepdim)


def int32_indices(x, dim=None, keepdim=False):
    """Fault: int32 indices where the framework returns int64."""
    return np.asarray(np.argmax(x, axis=dim, keepdims=keepdim)).astype(np.int32)


def keepdim_ignored(x, dim=None, keepdim=False):
    """Fault: keepdim is not passed on."""
    return np.argmax(x, axis=dim)


def int16_squeezed(x, dim=None, keepdim=False):
    """Fault: indices that went through int16 on their way out (widened back to int64)."""
    out = np.asarray(np.argmax(x, axis=dim, keepdims=keepdim))
    with np.errstate(all="ignore"):
        return out.astype(np.int16).astype(np.int64)


def out_of_range(x, dim=None, keepdim=False):
    """Fault: every index shifted past the end of its row."""
    x = np.asarray(x)
    length = x.size if dim is None else x.shape[dim]
    return np.asarray(np.argmax(x, axis=dim, keepdims=keepdim)) + length


def no_raise_on_empty(x, dim=None, keepdim=False):
    """Fault: an empty reduction answers zeros instead of raising."""
    x = np.asarray(x)
    if x.size == 0 and (dim is None or x.shape[dim] == 0):
        stand_in = np.zeros([max(n, 1) for n in x.shape], dtype=x.dtype)
        return np.zeros_like(np.argmax(stand_in, axis=dim, keepdims=keepdim))
    return np.argmax(x, axis=dim, keepdims=keepdim)


def raises_on_3d(x, dim=None, keepdim=False):
    """Fault: a kernel that fails on 3-d inputs."""
    if np.ndim(x) == 3:
        raise RuntimeError("planted kernel failure on a 3-d input")
    return np.argmax(x, axis=dim, keepdims=keepdim)


def float_garbage(x, dim=None, keepdim=False):
    """Fault: returns the input values instead of indices."""
    return np.asarray(x, dtype=np.float32) + np.float32(0.5)


PLANTED = {
    "last_tie": rowwise(last_tie),
    "nan_skip": rowwise(nan_skip),
    "half_kernel": half_kernel,
    "int32_indices": int32_indices,
    "keepdim_ignored": keepdim_ignored,
    "int16_squeezed": int16_squeezed,
    "out_of_range": out_of_range,
    "no_raise_on_empty": no_raise_on_empty,
    "raises_on_3d": raises_on_3d,
    "float_garbage": float_garbage,
}


# -- reading findings ------------------------------------------------------------------------------

def kinds(findings, target_id=None):
    """Return the set of (check, kind) in `findings`, optionally only those naming `target_id`."""
    return {(f.check, f.kind) for f in findings if target_id is None or target_id in f.targets}


def of_kind(findings, kind, target_id=None):
    return [f for f in findings if f.kind == kind and (target_id is None or target_id in f.targets)]


def expected_of(case, dtype):
    """Return the reference indices for `case` as a target of `dtype` sees it."""
    return reference_argmax(case.seen(dtype), case.dim, case.keepdim)


def ties_without_nan(case, dtype="float32"):
    """Return True when some reduced row has two or more maxima and no NaN."""
    seen = case.seen(dtype)
    if case.must_raise or seen.ndim == 0:
        return False
    axis = case.axis
    rows = seen.reshape(1, -1) if axis is None else np.moveaxis(seen, axis, -1).reshape(-1, seen.shape[axis])
    return any(maximizers(r, 0).sum() > 1 and not np.isnan(r).any() for r in rows)


def assert_explains(finding, check, kind, target_id, positions=True):
    """Assert `finding` is a self-explaining `check`/`kind` finding that names `target_id`."""
    assert (finding.check, finding.kind) == (check, kind), finding
    assert target_id in finding.targets, finding.targets
    assert finding.case and finding.message and finding.evidence
    assert finding.count >= 1
    if positions:
        assert finding.positions, finding
        assert len(finding.positions) <= 10
    compile(finding.reproducer, f"<reproducer of {finding.case}>", "exec")


def rows(case, dtype="float32"):
    """Return the 1-d rows `case` reduces, as a target of `dtype` sees them (none if it must raise)."""
    seen = case.seen(dtype)
    if case.must_raise or seen.ndim == 0:
        return []
    if case.dim is None:
        return [seen.reshape(-1)]
    moved = np.moveaxis(seen, case.axis, -1)
    return list(moved.reshape(-1, moved.shape[-1]))
