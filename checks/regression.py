"""regression: a target's answers differ from the baseline's target of the same kind.

Targets are paired by what they compute, not where: framework (or implementation), device, dtype,
variant and op, whatever their versions and environments (that is the point of an upgrade). Where
the baseline holds several targets of one kind, the one of the same environment is preferred.
Cases are paired by id and must hold the same values. Every change is reported, with its cause
(`tie_break`, `nan_policy`, `wrong_index`, or a change of what came back) and its direction:
whether the new answer, the old one, or neither follows the reference.
"""
import numpy as np

from auditor import lean
from auditor.explain import answers_at, disputed_positions, excerpt, fmt, list_indices
from auditor.model import Finding
from auditor.oracle import maximizers, oriented
from auditor.reproduce import reproducer

NAME = "regression"


def kind_of(target):
    """Return what a target computes, apart from where: the key baseline targets pair on."""
    return (target.name, target.device, target.dtype, target.variant,
            getattr(target, "op", "argmax"))


def pairs(observations, baseline):
    """Yield (target, baseline target) for every target with a baseline of the same kind."""
    by_kind = {}
    for old in baseline.targets.values():
        by_kind.setdefault(kind_of(old), []).append(old)
    for target in observations.targets.values():
        candidates = by_kind.get(kind_of(target), [])
        same_env = [old for old in candidates if old.env == target.env]
        yield from ((target, old) for old in (same_env or candidates))


def same_case(case, old):
    """True when baseline case `old` is the same call on the same values as `case`."""
    if old is None or (case.shape, case.dim, case.keepdim, case.layout) != (
            old.shape, old.dim, old.keepdim, old.layout):
        return False
    same = lean.same_input(case, old)  # inputs kept lean compare by their sha256
    if same is not None or case.lean or old.lean:
        return bool(same)
    return np.array_equal(case.values, old.values, equal_nan=True)


def check(observations, options):
    """Compare every target's modal answer on every case with its baseline target's."""
    baseline = options.get("baseline")
    if baseline is None:
        return []
    versions = (options.get("versions", {}), options.get("baseline_versions", {}))
    findings = []
    for target, old_target in pairs(observations, baseline):
        for case, _ in observations.of_target(target.id):
            if not same_case(case, baseline.cases.get(case.id)):
                continue
            new = observations.modal(target.id, case.id)
            old = baseline.modal(old_target.id, case.id)
            if new is None or old is None or new.same_result(old):
                continue
            findings.append(_finding(observations, case, target, old_target, new, old, versions))
    return findings


def changes(case, new, old):
    """Return the output positions where answers `new` and `old` (Outcomes) differ, or None
    when they cannot be compared position by position (an error or another shape)."""
    if new.failed or old.failed or new.indices.shape != old.indices.shape:
        return None
    return disputed_positions(new.indices != old.indices)


def _who(target_id, versions):
    version = versions.get(target_id)
    return f"{target_id} ({version})" if version else target_id


def compared_pairs(observations, baseline):
    """Return (targets paired, (target, case) pairs that can be compared, cases of the run that
    the baseline does not hold with the same values)."""
    targets, count, unmatched = set(), 0, set()
    for target, _ in pairs(observations, baseline):
        targets.add(target.id)
        for case, _ in observations.of_target(target.id):
            if same_case(case, baseline.cases.get(case.id)):
                count += 1
            else:
                unmatched.add(case.id)
    return len(targets), count, sorted(unmatched)


def _finding(observations, case, target, old_target, new, old, versions):
    versions, old_versions = versions
    now, then = _who(target.id, versions), _who(old_target.id, old_versions)
    positions = changes(case, new, old)
    evidence = {"blame": [target.id], "baseline_target": old_target.id,
                "version": versions.get(target.id),
                "baseline_version": old_versions.get(old_target.id)}
    changed = settings_changed(old_target.settings, target.settings)
    if changed:
        evidence["settings_changed"] = changed
    because = f"; settings differ: {_describe_settings(changed)}" if changed else ""
    if not positions:
        what = {False: lambda o: f"{o.dtype} indices of shape {tuple(o.indices.shape)}",
                True: lambda o: f"{o.error['type']}: {o.error['message'][:120]}"}
        message = (f"{case.describe_call(target)} on {now} gives {what[new.failed](new)} on case "
                   f"{case.id}; the baseline {then} gave {what[old.failed](old)}{because}")
        evidence.update(cause="api_mismatch" if not (new.failed or old.failed) else "crash")
        return Finding(check=NAME, kind="regression", message=message, case=case.id, count=1,
                       targets=[target.id, old_target.id], evidence=evidence,
                       reproducer=reproducer(case, target, bundle_path=observations.bundle_path,
                                             show="api" if not new.failed else "call"))
    expected = case.reference(target.dtype, target.sense)
    first = positions[0]
    row = case.seen_row(target.dtype, first)
    keyed = oriented(row, target.sense)  # argmin: negated
    picks = [int(old.indices[first]), int(new.indices[first])]
    cause = _cause(keyed, picks)
    direction = _direction(new.indices, old.indices, expected, positions, target)
    why = {"tie_break": f"both are tied {'maxima' if target.sense == 'max' else 'minima'} "
                        f"({list_indices(np.flatnonzero(maximizers(keyed, 0)))})",
           "nan_policy": f"the row holds NaN at {list_indices(np.flatnonzero(np.isnan(row)))}",
           "wrong_index": "not both are a maximum"}[cause]
    shown = ", ".join(f"{p} ({fmt(row[p]) if 0 <= p < len(row) else 'out of range'})" for p in picks)
    message = (f"{case.describe_call(target)} on {now} returned {picks[1]} at {case.where(first)} of "
               f"case {case.id}; the baseline {then} returned {picks[0]} (old, new: {shown}; "
               f"{why}); {direction}"
               + (f"; {len(positions)} positions changed" if len(positions) > 1 else "") + because)
    evidence.update(cause=cause, direction=direction, picks=picks, values=excerpt(row, picks),
                    changed=len(positions), positions_compared=int(max(1, new.indices.size)))
    return Finding(
        check=NAME, kind="regression", message=message, case=case.id, count=len(positions),
        targets=[target.id, old_target.id], positions=[list(p) for p in positions[:10]],
        evidence=evidence,
        reproducer=reproducer(case, target, positions, observations.bundle_path,
                              saw=answers_at(new.indices, case, positions)),
    )


def settings_changed(old, new):
    """Return {setting: [old, new]} for the recorded settings (thread count, deterministic mode,
    x64, XLA_FLAGS, ...) that differ between two targets; none when either recorded none. Where
    compiled code was kept is left out: a folder's path differs between machines and users."""
    if not old or not new:
        return {}
    keys = sorted((set(old) | set(new)) - {"by_process", "compilation_cache"})
    return {k: [old.get(k), new.get(k)] for k in keys if old.get(k) != new.get(k)}


def _describe_settings(changed):
    return ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changed.items())


def _cause(row, picks):
    if not all(0 <= p < len(row) for p in picks):
        return "wrong_index"
    if np.isnan(row).any():
        return "nan_policy"
    return "tie_break" if maximizers(row, 0)[picks].all() else "wrong_index"


def _direction(new, old, expected, positions, target):
    index = tuple(positions[0])
    new_ok, old_ok = new[index] == expected[index], old[index] == expected[index]
    rule = f"(first {'maximum' if target.sense == 'max' else 'minimum'}, first NaN)"
    if new_ok and not old_ok:
        return f"the new answer follows the reference {rule} and the old did not"
    if old_ok and not new_ok:
        return f"the old answer followed the reference {rule}; the new does not"
    return f"neither follows the reference {rule}"
