"""determinism: one target must give identical indices across all repeats and processes.

A finding says how often each answer came, over every call the target made on the case: the
runner calls a (target, case) that gave two answers again in a fresh process (RERUN_CALLS
times), so a race that shows in one call of twenty is reported with its rate."""
import numpy as np

from auditor.explain import disputed_positions, excerpt, fmt
from auditor.model import Finding, Outcome
from auditor.reproduce import reproducer

NAME = "determinism"


def _answers(outcomes):
    return [o for o in outcomes if o.is_answer]


def _describe_runs(outcome, total=None):
    """Say how many calls gave `outcome` (of `total`, with the share) and in which processes."""
    processes = ", ".join(map(str, sorted({p for p, _ in outcome.runs})))
    count = len(outcome.runs)
    if total:
        return f"{count} of {total} calls ({count / total:.1%}; process {processes})"
    return f"{count} run{'s' if count > 1 else ''} (process {processes})"


def rates(answers):
    """Return [{answer, calls, share}] for the distinct `answers`, the most frequent first."""
    total = sum(len(o.runs) for o in answers)
    ordered = sorted(answers, key=lambda o: -len(o.runs))
    return [{"answer": o.error["type"] if o.failed else o.indices.reshape(-1)[:10].tolist(),
             "calls": len(o.runs), "share": len(o.runs) / total} for o in ordered]


def _scope(answers):
    """Say whether one process saw several answers, or each process kept to one."""
    per_process = {}
    for i, outcome in enumerate(answers):
        for process, _ in outcome.runs:
            per_process.setdefault(process, set()).add(i)
    if any(len(seen) > 1 for seen in per_process.values()):
        return "within one process"
    return "only between processes"


def check(observations, options):
    """Report every (target, case) with more than one distinct answer."""
    findings = []
    for (target_id, case_id), outcomes in observations.outcomes.items():
        answers = _answers(outcomes)
        if len(answers) > 1:
            findings.append(_finding(observations, target_id, observations.cases[case_id], answers))
    return findings


def _finding(observations, target_id, case, answers):
    target = observations.targets[target_id]
    results = [o for o in answers if not o.failed]
    scope = _scope(answers)
    total = sum(len(o.runs) for o in answers)
    evidence = {"answers": [{"runs": o.runs, "error": o.error} for o in answers], "scope": scope,
                "calls": total, "rates": rates(answers)}
    positions = []
    if len(results) > 1 and all(r.indices.shape == results[0].indices.shape for r in results):
        differs = np.zeros(results[0].indices.shape, dtype=bool)
        for r in results[1:]:
            differs |= r.indices != results[0].indices
        positions = disputed_positions(differs)
        first = positions[0]
        row = case.seen_row(target.dtype, first)
        picks = [int(r.indices[first]) for r in results]
        by_pick = {}
        for pick, result in zip(picks, results):
            by_pick.setdefault(pick, []).extend(result.runs)
        detail = "; ".join(f"{p} ({fmt(row[p]) if 0 <= p < len(row) else 'out of range'}) in "
                           f"{_describe_runs(Outcome(runs), total)}" for p, runs in by_pick.items())
        sentence = (f"{case.describe_call(target)} on {target_id} gave {len(answers)} different "
                    f"answers on case {case.id}, {scope}, differing at {len(positions)} position"
                    f"{'s' if len(positions) > 1 else ''}: at {case.where(first)} it returned {detail}")
        evidence.update(values=excerpt(row, picks), picks=picks)
    else:
        kinds = ", ".join(f"{o.error['type'] if o.failed else 'indices'} in {_describe_runs(o, total)}"
                          for o in answers)
        sentence = (f"{case.describe_call(target)} on {target_id} gave {len(answers)} different "
                    f"answers on case {case.id}, {scope}: {kinds}")
    return Finding(
        check=NAME, kind="nondeterministic", message=sentence, targets=[target_id], case=case.id,
        positions=[list(p) for p in positions[:10]], count=len(positions) or 1, evidence=evidence,
        reproducer=reproducer(case, target, positions, observations.bundle_path, repeat=True),
    )
