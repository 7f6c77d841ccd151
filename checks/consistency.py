"""consistency: targets that saw the same values (same source case and dtype) must agree.

Per case and dtype the answers fall into groups of targets that agree. The baseline is the group
that matches the reference (or else the largest); every other group gets its own finding, with the
cause classified from the values: NaN in the row (`nan_policy`), both answers maximizers
(`tie_break`), or an answer that is not a maximizer (`wrong_index`). Where three or more targets
agree, the targets of a smaller group are named as the odd ones out.

These findings are `info`: whenever targets that saw the same values disagree, at least one of them
is off the reference, and the reference check reports that target with the kind's severity. This
check adds the cross-target view (who agrees with whom) without counting the problem twice.

argmax's twins (torch.max(dim).indices, topk(1), lax.top_k, argsort read from the right) are
compared with argmax and with each other; argmin only with argmin. Where the odd side is a twin whose
documentation allows its pick, the finding quotes that documentation.
"""
import numpy as np

from auditor import ops
from auditor.explain import answers_at, disputed_positions, excerpt, fmt, list_indices
from auditor.model import Finding
from auditor.oracle import maximizers, oriented
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
            if answer is None or answer.failed or tuple(answer.indices.shape) != case.output_shape:
                continue
            target = observations.targets[target_id]
            by_dtype.setdefault((target.dtype, target.sense), []).append((target_id, answer.indices))
        for (dtype, sense), answers in by_dtype.items():
            findings.extend(_compare(observations, case, dtype, sense, _group(answers)))
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


def _compare(observations, case, dtype, sense, groups):
    if len(groups) < 2:
        return []
    expected = case.reference(dtype, sense)
    baseline = next((g for g in groups if np.array_equal(g[0], expected)), groups[0])
    total = sum(len(members) for _, members in groups)
    return [_finding(observations, case, dtype, sense, baseline, group, expected, total)
            for group in groups if group is not baseline]


def _finding(observations, case, dtype, sense, baseline, group, expected, total):
    (base, base_members), (other, members) = baseline, group
    positions = disputed_positions(other != base)
    causes = [_cause(case.ordered_row(dtype, sense, p), [int(base[p]), int(other[p])])
              for p in positions]
    kind = next(k for k in PRIORITY if k in causes)
    first = positions[causes.index(kind)]  # the sentence describes a position of its kind
    row = case.seen_row(dtype, first)
    keyed = oriented(row, sense)
    picks = [int(base[first]), int(other[first])]
    sides = "; ".join(f"{', '.join(who)} return{'s' if len(who) == 1 else ''} {pick} "
                      f"({fmt(row[pick]) if 0 <= pick < len(row) else 'out of range'})"
                      for pick, who in zip(picks, (base_members, members)))
    extreme = "maxim" if sense == "max" else "minim"
    why = {"tie_break": f"tied {extreme}a at {list_indices(np.flatnonzero(maximizers(keyed, 0)))}",
           "nan_policy": f"NaN at {list_indices(np.flatnonzero(np.isnan(row)))}",
           "wrong_index": f"not both answers are a {extreme}um"}[kind]
    odd = members if len(base_members) >= 3 and len(base_members) > total - len(base_members) else []
    wrong_side = members if not np.array_equal(other, expected) else base_members
    message = (f"targets disagree on {_call(observations, case, [*base_members, *members])} "
               f"of case {case.id} in {dtype} at {case.where(first)}: {sides} ({why})"
               + (f"; the odd one out: {', '.join(odd)}" if odd else "")
               + (f"; {len(positions)} positions differ" if len(positions) > 1 else ""))
    shown = wrong_side[0]
    shown_indices = other if shown in members else base
    message += f"; the reference check reports {', '.join(wrong_side)}"
    evidence = {"groups": [{"targets": base_members, "index": picks[0]},
                           {"targets": members, "index": picks[1]}],
                "odd_one_out": odd, "blame": wrong_side, "values": excerpt(row, picks),
                "dtype": dtype, "causes": sorted(set(causes))}
    documented = _documented(observations, wrong_side, kind, keyed, picks[1 if shown in members else 0])
    if documented:
        message += f" ({documented.meaning}, as documented: {documented.url})"
        evidence["documented"] = documented.to_json()
    return Finding(
        check=NAME, kind=kind, severity="info", message=message, case=case.id, count=len(positions),
        targets=[*base_members, *members], positions=[list(p) for p in positions[:10]],
        evidence=evidence,
        reproducer=reproducer(case, observations.targets[shown], positions,
                              observations.bundle_path, saw=answers_at(shown_indices, case, positions)),
    )


def _call(observations, case, target_ids):
    """Name the call the targets made: `argmax(x, dim=1)`, or the ops where twins take part."""
    targets = [observations.targets[t] for t in target_ids]
    names = sorted({t.op for t in targets})
    if len(names) == 1 and names[0] in ("argmax", "argmin"):
        return case.describe_call(targets[0])
    keep = ", keepdim=True" if case.keepdim else ""
    return f"{' / '.join(names)} (dim={case.dim}{keep})"


def _documented(observations, blamed, kind, keyed, pick):
    """Return the Documented note that allows `pick` when every blamed target shares it."""
    notes = {ops.documented(t.framework, t.op) if not t.impl else None
             for t in (observations.targets[b] for b in blamed)}
    if len(notes) != 1 or kind not in ops.DOCUMENTED_KINDS:
        return None
    note = notes.pop()
    return note if note is not None and note.covers(keyed, pick, maximizers(keyed, 0)) else None


def _cause(row, picks):
    if not all(0 <= p < len(row) for p in picks):
        return "wrong_index"
    if np.isnan(row).any():
        return "nan_policy"
    if all(0 <= p < len(row) for p in picks) and maximizers(row, 0)[picks].all():
        return "tie_break"
    return "wrong_index"
