"""precision: float16/bfloat16 against float32 of the same framework, device and variant.

A flip is a position where the low-precision target picked another index than float32 on the same
source values. It is drift (a warning) when rounding explains it: in the low dtype both indices hold
the same value, so the first of them wins (rounding is monotone, so it can only make ties, never
swap an order). An answer that does not follow the rule in its own dtype is not drift: the reference
check reports it, as an error.
"""

from auditor.explain import answers_at, disputed_positions, excerpt, fmt, in_spacings
from auditor.model import LOW_PRECISION, Finding
from auditor.reproduce import reproducer

NAME = "precision"


def check(observations, options):
    """Report drift per low-precision target and case; add flip-rate threshold breaches."""
    findings, rates = [], {}
    for low, wide, pairs in _pairs(observations):
        flipped = 0
        for case, low_answer, wide_answer in pairs:
            found = flips(case, low.dtype, low_answer.indices, wide_answer.indices, low.sense)
            flipped += len(found)
            if found:
                findings.append(_finding(observations, case, low, wide, low_answer, wide_answer, found))
        rates[low.id] = _rate(flipped, pairs, wide)
    findings.extend(_thresholds(observations, rates, options.get("max_flip_rate", {})))
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


def flips(case, low_dtype, low_indices, wide_indices, sense="max"):
    """Return [(position, low index, float32 index)] where the two answers differ and each
    follows the rule (of `sense`: argmax's or argmin's) in its own dtype (an answer off the rule
    is the reference check's)."""
    differ = low_indices != wide_indices
    if not differ.any():
        return []
    on_rule = ((low_indices == case.reference(low_dtype, sense))
               & (wide_indices == case.reference("float32", sense)))
    return [(p, int(low_indices[p]), int(wide_indices[p]))
            for p in disputed_positions(differ & on_rule)]


def _rate(flipped, pairs, wide):
    total = sum(max(1, a.indices.size) for _, a, _ in pairs)
    return {"flips": flipped, "positions": total, "rate": flipped / total if total else 0.0,
            "float32_target": wide.id}


def flip_rates(observations):
    """Return {low target id: {flips, positions, rate, float32 target}} over all paired cases."""
    return {low.id: _rate(sum(len(flips(c, low.dtype, a.indices, b.indices, low.sense))
                              for c, a, b in pairs),
                          pairs, wide)
            for low, wide, pairs in _pairs(observations)}


def _finding(observations, case, low, wide, low_answer, wide_answer, found):
    position, lo, hi = found[0]
    wide_row, low_row = case.seen_row("float32", position), case.seen_row(low.dtype, position)
    units = _margin(wide_row, lo, hi, low.dtype)
    total = max(1, low_answer.indices.size)
    message = (f"{case.describe_call(low)} on {low.id} picked another index than {wide.id} at "
               f"{len(found)} of {total} positions of case {case.id}: at {case.where(position)} "
               f"float32 picks {hi} ({fmt(wide_row[hi])}) over {lo} ({fmt(wide_row[lo])}), a margin "
               f"of {units:.3g} {low.dtype} spacings; {low.dtype} rounds them to {fmt(low_row[hi])} "
               f"and {fmt(low_row[lo])}, so the first wins")
    positions = [f[0] for f in found]
    return Finding(
        check=NAME, kind="precision_drift", message=message, targets=[low.id, wide.id],
        case=case.id, count=len(found), positions=[list(p) for p in positions[:10]],
        evidence={"blame": [low.id], "flips": len(found), "positions_compared": total,
                  "margin": abs(float(wide_row[hi]) - float(wide_row[lo])), "margin_spacings": units,
                  "values": excerpt(wide_row, [lo, hi]), "rounded": excerpt(low_row, [lo, hi]),
                  "picks": [hi, lo],
                  "margins_spacings": [_margin(case.seen_row("float32", p), lo_, hi_, low.dtype)
                                       for p, lo_, hi_ in found[:200]]},
        reproducer=reproducer(case, low, positions, observations.bundle_path, against="float32",
                              saw=[answers_at(wide_answer.indices, case, positions),
                                   answers_at(low_answer.indices, case, positions)]),
    )


def _margin(row, lo, hi, dtype):
    """Return how far apart `row[hi]` and `row[lo]` are in `dtype` spacings at that magnitude
    (a distance: an argmin's pick lies below the other)."""
    return in_spacings(abs(float(row[hi]) - float(row[lo])), row[hi], dtype)


def _thresholds(observations, rates, limits):
    findings = []
    for target_id, stats in rates.items():
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
