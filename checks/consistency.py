"""consistency: targets that saw the same values (same source case and dtype) must agree.

Why they disagree is classified from those values: NaN in the row (`nan_policy`), every answer a
maximizer (`tie_break`), or some answer not a maximizer (`wrong_index`). Where three or more targets
agree, the rest are named as the odd ones out.
"""
import numpy as np

from auditor.explain import answers_at, disputed_positions, excerpt, fmt, list_indices
from auditor.model import Finding
from auditor.oracle import maximizers, reference_argmax
from auditor.reproduce import reproducer

NAME = "consistency"
PRIORITY = ("wrong_index", "nan_policy", "tie_break")


def check(observations, options):
    """Compare, per case and dtype, the modal answers of every target that answered."""
    findings = []
    for case_id, per_target in observations.by_case().items():
        case = observations.cases[case_id]
        if case.must_raise:
            continue
        by_dtype = {}
        for target_id in per_target:
            answer = observations.modal(target_id, case_id)
            if answer.failed or tuple(answer.indices.shape) != case.output_shape:
                continue
            dtype = observations.targets[target_id].dtype
            by_dtype.setdefault(dtype, []).append((target_id, answer.indices))
        for dtype, answers in by_dtype.items():
            groups = _group(answers)
            if len(groups) > 1:
                findings.append(_finding(observations, case, dtype, groups))
    return findings


def _group(answers):
    """Return [(indices, [target ids])] for distinct answers, the largest group first."""
    groups = []
    for target_id, indices in answers:
        for known, members in groups:
            if np.array_equal(known, indices):
                members.append(target_id)
                break
        else:
            groups.append((indices, [target_id]))
    return sorted(groups, key=lambda g: -len(g[1]))


def _finding(observations, case, dtype, groups):
    seen = case.seen(dtype)
    differs = np.zeros(groups[0][0].shape, dtype=bool)
    for indices, _ in groups[1:]:
        differs |= indices != groups[0][0]
    positions = disputed_positions(differs)
    kinds = {_cause(case.row(seen, p), [int(g[0][p]) for g in groups]) for p in positions}
    kind = next(k for k in PRIORITY if k in kinds)
    first = positions[0]
    row = case.row(seen, first)
    picks = [int(indices[first]) for indices, _ in groups]
    sides = "; ".join(f"{', '.join(members)} return{'s' if len(members) == 1 else ''} {pick}"
                      f" ({fmt(row[pick]) if 0 <= pick < len(row) else 'out of range'})"
                      for pick, (_, members) in zip(picks, groups))
    odd = _odd_ones_out(groups)
    why = {"tie_break": f"tied maxima at {list_indices(np.flatnonzero(maximizers(row, 0)))}",
           "nan_policy": f"NaN at {list_indices(np.flatnonzero(np.isnan(row)))}",
           "wrong_index": "not every answer is a maximum"}[kind]
    message = (f"targets disagree on {case.describe_call()} of case {case.id} in {dtype} at "
               f"{case.where(first)}: {sides} ({why})"
               + (f"; the odd one out: {', '.join(odd)}" if odd else "")
               + (f"; {len(positions)} positions differ" if len(positions) > 1 else ""))
    expected = reference_argmax(seen, case.dim, case.keepdim)
    blame = [t for indices, members in groups if not np.array_equal(indices, expected) for t in members]
    shown = (odd or blame or groups[-1][1])[0]
    target = observations.targets[shown]
    saw = next(indices for indices, members in groups if shown in members)
    return Finding(
        check=NAME, kind=kind, message=message, case=case.id, count=len(positions),
        targets=[t for _, members in groups for t in members],
        positions=[list(p) for p in positions[:10]],
        evidence={"groups": [{"targets": m, "index": p} for p, (_, m) in zip(picks, groups)],
                  "odd_one_out": odd, "blame": blame, "values": excerpt(row, picks), "dtype": dtype,
                  "causes": sorted(kinds)},
        reproducer=reproducer(case, target, positions, observations.bundle_path,
                              saw=answers_at(saw, case, positions)),
    )


def _cause(row, picks):
    if np.isnan(row).any():
        return "nan_policy"
    if all(0 <= p < len(row) for p in picks) and maximizers(row, 0)[picks].all():
        return "tie_break"
    return "wrong_index"


def _odd_ones_out(groups):
    """Name the targets outside the majority when three or more targets agree."""
    majority = groups[0][1]
    rest = [t for _, members in groups[1:] for t in members]
    if len(majority) >= 3 and len(majority) > len(rest):
        return rest
    return []
