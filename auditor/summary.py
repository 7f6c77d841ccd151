"""Plain numbers about a run, computed once and stored in the bundle for every renderer."""
import numpy as np

from .checks.precision import flip_rates
from .checks.reference import tie_policy
from .model import KINDS, SEVERITIES
from .policy import failing


def nan_policy(case, seen, indices):
    """Return 'first', 'later-nan', 'ignores-nan', 'mixed' or 'none' for NaN rows of `case`."""
    policies = set()
    for position in np.ndindex(indices.shape):
        row = case.row(seen, position)
        nans = np.flatnonzero(np.isnan(row))
        if not len(nans):
            continue
        got = int(indices[position])
        if got == nans[0]:
            policies.add("first")
        elif 0 <= got < len(row) and np.isnan(row[got]):
            policies.add("later-nan")
        else:
            policies.add("ignores-nan")
    if not policies:
        return "none"
    return policies.pop() if len(policies) == 1 else "mixed"


def _merge_policy(policies):
    seen = {p for p in policies if p != "none"}
    if not seen:
        return "untested"
    return seen.pop() if len(seen) == 1 else "mixed"


def target_rows(observations, findings):
    """Return one dict per target: cases, calls, findings by kind, tie and NaN policy."""
    rows = []
    for target_id, target in observations.targets.items():
        ties, nans, cases, calls = [], [], 0, 0
        for case, outcomes in observations.of_target(target_id):
            cases += 1
            calls += sum(len(o.runs) for o in outcomes)
            answer = observations.modal(target_id, case.id)
            if answer is None or answer.failed or case.must_raise or tuple(answer.indices.shape) != case.output_shape:
                continue
            seen = case.seen(target.dtype)
            ties.append(tie_policy(case, seen, answer.indices))
            nans.append(nan_policy(case, seen, answer.indices))
        by_kind = {}
        for f in findings:
            if target_id in (f.evidence.get("blame") or f.targets) and not f.allowed:
                by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
        rows.append({"target": target_id, "cases": cases, "calls": calls, "findings": by_kind,
                     "tie_policy": _merge_policy(ties), "nan_policy": _merge_policy(nans)})
    return rows


def timing(observations):
    calls = sum(t["calls"] for t in observations.timings.values())
    call_s = sum(t["call_s"] for t in observations.timings.values())
    harness_s = sum(t["harness_s"] for t in observations.timings.values())
    return {"calls": calls, "call_s": call_s, "harness_s": harness_s}


def summarize(observations, findings, fail_on):
    """Return the bundle's summary: verdict, counts by kind and severity, per-target rows."""
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
        "targets": target_rows(observations, findings),
        "precision": flip_rates(observations),
        "timing": timing(observations),
    }
