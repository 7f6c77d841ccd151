"""Plain numbers about a run, computed once and stored in the bundle for every renderer."""
import numpy as np

from .checks import regression
from .checks.precision import flip_rates
from .model import KINDS, SEVERITIES
from .policy import failing


def _merge_policy(policies):
    seen = {p for p in policies if p != "none"}
    if not seen:
        return "untested"
    return seen.pop() if len(seen) == 1 else "mixed"


def target_rows(observations, findings, tallies=None):
    """Return one dict per target: cases, calls, findings by kind, tie and NaN policy; from
    `tallies` ({target id: `tally`}) where given (audit fuzz counts every example it judged,
    while its bundle keeps only the shrunk examples that failed)."""
    rows = []
    for target_id, target in observations.targets.items():
        counted = (tallies or {}).get(target_id) or tally(observations, target_id, target)
        by_kind = {}
        for f in findings:
            if f.severity == "info" or f.allowed:
                continue
            if target_id in (f.evidence.get("blame") or f.targets):
                by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
        rows.append({"target": target_id, "cases": counted["cases"], "calls": counted["calls"],
                     "findings": by_kind, "tie_policy": _merge_policy(counted["ties"]),
                     "nan_policy": _merge_policy(counted["nans"])})
    return rows


def tally(observations, target_id, target, into=None):
    """Add to `into` (a new one if None) the cases `target` ran in `observations`, its calls, and
    the tie and NaN policies its answers showed; return it."""
    into = into if into is not None else {"cases": 0, "calls": 0, "ties": set(), "nans": set()}
    for case, outcomes in observations.of_target(target_id):
        into["cases"] += 1
        into["calls"] += sum(len(o.runs) for o in outcomes if o.kind != "mutated")
        answer = observations.modal(target_id, case.id)
        if answer is None or answer.failed or case.must_raise or tuple(answer.indices.shape) != case.output_shape:
            continue
        tie, nan = case.policies(target.dtype, answer.indices, target.sense)
        into["ties"].add(tie)
        into["nans"].add(nan)
    return into


def timing(observations):
    """Return the run's time in argmax calls, in the harness, and compiling (torch.compile,
    jax.jit: the first call of each compiled signature, apart from the calls)."""
    calls = sum(t["calls"] for t in observations.timings.values())
    call_s = sum(t["call_s"] for t in observations.timings.values())
    harness_s = sum(t["harness_s"] for t in observations.timings.values())
    compile_s = sum(t.get("compile_s", 0.0) for t in observations.timings.values())
    compiles = sum(t.get("compiles", 0) for t in observations.timings.values())
    return {"calls": calls, "call_s": call_s, "harness_s": harness_s, "compile_s": compile_s,
            "compiles": compiles}


def _changed(case, answer, other):
    """Return how many output positions of `answer` differ from indices `other` (all if failed)."""
    size = int(np.prod(case.output_shape, dtype=np.int64))
    if answer is None or answer.failed or tuple(answer.indices.shape) != case.output_shape:
        return size
    return int(np.count_nonzero(answer.indices != other))


def user_flips(observations, baseline=None):
    """Return, per target, how many predictions on the user's cases differ from the reference
    and from the baseline's target of the same kind: {target: {rows, vs_reference, ...}}."""
    partner = {}
    if baseline is not None:
        for target, old in regression.pairs(observations, baseline):
            partner.setdefault(target.id, old.id)
    found = {}
    for target_id, target in observations.targets.items():
        row = {"rows": 0, "vs_reference": 0}
        if target_id in partner:
            row.update(baseline_target=partner[target_id], vs_baseline=0, rows_compared=0)
        for case, _ in observations.of_target(target_id):
            if "user" not in case.tags or case.must_raise:
                continue
            answer = observations.modal(target_id, case.id)
            row["rows"] += int(np.prod(case.output_shape, dtype=np.int64))
            row["vs_reference"] += _changed(case, answer, case.reference(target.dtype, target.sense))
            old = baseline.modal(partner[target_id], case.id) if target_id in partner else None
            if old is not None and not old.failed and regression.same_case(
                    case, baseline.cases.get(case.id)):
                row["rows_compared"] += int(np.prod(case.output_shape, dtype=np.int64))
                row["vs_baseline"] += _changed(case, answer, old.indices)
        if row["rows"]:
            found[target_id] = row
    return found


def summarize(observations, findings, fail_on, baseline=None, tallies=None):
    """Return the bundle's summary: verdict, counts by kind and severity, per-target rows (from
    `tallies` where given, see `target_rows`), and on the user's cases, the predictions that
    differ from the reference and the `baseline`."""
    counts = {kind: {s: 0 for s in SEVERITIES} for kind in KINDS}
    allowed = 0
    for f in findings:
        if f.allowed:
            allowed += 1
        else:
            counts[f.kind][f.severity] += 1
    failed = failing(findings, fail_on)
    return {
        "complete": True,
        "verdict": "fail" if failed else "pass",
        "fail_on": fail_on,
        "failing": len(failed),
        "allowed": allowed,
        "by_severity": {s: sum(c[s] for c in counts.values()) for s in SEVERITIES},
        "by_kind": {k: sum(v.values()) for k, v in counts.items()},
        "targets": target_rows(observations, findings, tallies),
        "precision": flip_rates(observations),
        "timing": timing(observations),
        "user": user_flips(observations, baseline),
    }
