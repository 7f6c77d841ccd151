"""precision: float16/bfloat16 against float32 of the same framework, device and variant.

A flip is a position where the low-precision target picked another index than float32 on the same
source values. It is drift (a warning) when rounding explains it: in the low dtype both indices hold
the same value, so the first of them wins. A low-precision answer that is not a maximizer of its own
values is a wrong index, which the reference check reports as an error.
"""
import numpy as np

from auditor.explain import answers_at, disputed_positions, excerpt, fmt, in_spacings
from auditor.model import LOW_PRECISION, Finding
from auditor.oracle import reference_argmax
from auditor.reproduce import reproducer

NAME = "precision"


def check(observations, options):
    """Report drift per low-precision target and case; add flip-rate threshold breaches."""
    findings = []
    for low, wide, pairs in _pairs(observations):
        for case, low_answer, wide_answer in pairs:
            finding = _compare(observations, case, low, wide, low_answer, wide_answer)
            if finding:
                findings.append(finding)
    findings.extend(_thresholds(observations, options.get("max_flip_rate", {})))
    return findings


def _pairs(observations):
    """Yield (low target, float32 target, [(case, low answer, float32 answer)])."""
    by_lane = {}
    for target in observations.targets.values():
        by_lane.setdefault(target.lane, {})[target.dtype] = target
    for lane in by_lane.values():
        wide = lane.get("float32")
        for low in (lane.get(d) for d in LOW_PRECISION):
            if wide is None or low is None:
                continue
            pairs = []
            for case in observations.cases.values():
                a, b = observations.modal(low.id, case.id), observations.modal(wide.id, case.id)
                if (a and b and not a.failed and not b.failed and not case.must_raise
                        and a.indices.shape == b.indices.shape == case.output_shape):
                    pairs.append((case, a, b))
            yield low, wide, pairs


def flips(case, low_dtype, low_indices, wide_indices):
    """Return [(position, low index, float32 index, explained)] where the two differ."""
    low_seen, wide_seen = case.seen(low_dtype), case.seen("float32")
    found = []
    for position in disputed_positions(low_indices != wide_indices):
        lo, hi = int(low_indices[position]), int(wide_indices[position])
        wide_row, low_row = case.row(wide_seen, position), case.row(low_seen, position)
        if lo != int(reference_argmax(low_row)) or hi != int(reference_argmax(wide_row)):
            continue  # an answer off the rule in its own dtype: the reference check reports it
        explained = bool(low_row[lo] == low_row[hi] or (np.isnan(low_row[lo]) and np.isnan(low_row[hi])))
        found.append((position, lo, hi, explained))
    return found


def flip_rates(observations):
    """Return {low target id: {flips, positions, rate, float32 target}} over all paired cases."""
    rates = {}
    for low, wide, pairs in _pairs(observations):
        count = sum(len(flips(c, low.dtype, a.indices, b.indices)) for c, a, b in pairs)
        total = sum(max(1, a.indices.size) for _, a, _ in pairs)
        rates[low.id] = {"flips": count, "positions": total, "rate": count / total if total else 0.0,
                         "float32_target": wide.id}
    return rates


def _compare(observations, case, low, wide, low_answer, wide_answer):
    found = flips(case, low.dtype, low_answer.indices, wide_answer.indices)
    if not found:
        return None
    position, lo, hi, explained = found[0]
    wide_seen = case.seen("float32")
    wide_row = case.row(wide_seen, position)
    low_row = case.row(case.seen(low.dtype), position)
    gap = float(wide_row[hi]) - float(wide_row[lo])
    units = _margin(wide_row, lo, hi, low.dtype)
    unexplained = [f for f in found if not f[3]]
    total = max(1, low_answer.indices.size)
    message = (f"{case.describe_call()} on {low.id} picked another index than {wide.id} at "
               f"{len(found)} of {total} positions of case {case.id}: at {case.where(position)} "
               f"float32 picks {hi} ({fmt(wide_row[hi])}) over {lo} ({fmt(wide_row[lo])}), a margin "
               f"of {units:.3g} {low.dtype} spacings; {low.dtype} rounds them to {fmt(low_row[hi])} "
               f"and {fmt(low_row[lo])}")
    message += ", so the first wins" if explained else ", which rounding cannot explain"
    return Finding(
        check=NAME, kind="precision_drift", severity="error" if unexplained else "",
        message=message, targets=[low.id, wide.id], case=case.id, count=len(found),
        positions=[list(f[0]) for f in found[:10]],
        evidence={"blame": [low.id], "flips": len(found), "positions_compared": total, "margin": gap,
                  "margin_spacings": units, "unexplained": len(unexplained),
                  "values": excerpt(wide_row, [lo, hi]),
                  "rounded": excerpt(low_row, [lo, hi]),
                  "margins_spacings": [_margin(case.row(wide_seen, p), lo_, h, low.dtype)
                                       for p, lo_, h, _ in found[:200]]},
        reproducer=reproducer(case, low, [f[0] for f in found], observations.bundle_path,
                              saw=answers_at(low_answer.indices, case, [f[0] for f in found])),
    )


def _margin(row, lo, hi, dtype):
    """Return how far apart `row[hi]` and `row[lo]` are in `dtype` spacings at that magnitude."""
    return in_spacings(float(row[hi]) - float(row[lo]), row[hi], dtype)


def _thresholds(observations, limits):
    findings = []
    for target_id, stats in flip_rates(observations).items():
        limit = limits.get(observations.targets[target_id].dtype)
        if limit is not None and stats["rate"] > limit:
            findings.append(Finding(
                check=NAME, kind="precision_drift", severity="error", targets=[target_id],
                count=stats["flips"],
                message=(f"{target_id} flips {stats['flips']} of {stats['positions']} positions "
                         f"against {stats['float32_target']} ({stats['rate']:.2%}), more than the "
                         f"{limit:.2%} the policy tolerates"),
                evidence=stats,
            ))
    return findings
