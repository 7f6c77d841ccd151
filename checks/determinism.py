"""determinism: one target must give identical indices across all repeats and processes."""
import numpy as np

from auditor.explain import disputed_positions, excerpt, fmt
from auditor.model import Finding, Outcome
from auditor.reproduce import reproducer

NAME = "determinism"


def _answers(outcomes):
    return [o for o in outcomes if o.is_answer]


def _describe_runs(outcome):
    processes = sorted({p for p, _ in outcome.runs})
    return f"{len(outcome.runs)} run{'s' if len(outcome.runs) > 1 else ''} (process {', '.join(map(str, processes))})"


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
    evidence = {"answers": [{"runs": o.runs, "error": o.error} for o in answers], "scope": scope}
    positions = []
    if len(results) > 1 and all(r.indices.shape == results[0].indices.shape for r in results):
        differs = np.zeros(results[0].indices.shape, dtype=bool)
        for r in results[1:]:
            differs |= r.indices != results[0].indices
        positions = disputed_positions(differs)
        first = positions[0]
        seen = case.seen(target.dtype)
        row = case.row(seen, first)
        picks = [int(r.indices[first]) for r in results]
        by_pick = {}
        for pick, result in zip(picks, results):
            by_pick.setdefault(pick, []).extend(result.runs)
        detail = "; ".join(f"{p} ({fmt(row[p]) if 0 <= p < len(row) else 'out of range'}) in "
                           f"{_describe_runs(Outcome(runs))}" for p, runs in by_pick.items())
        sentence = (f"{case.describe_call(target)} on {target_id} gave {len(answers)} different "
                    f"answers on case {case.id}, {scope}, differing at {len(positions)} position"
                    f"{'s' if len(positions) > 1 else ''}: at {case.where(first)} it returned {detail}")
        evidence.update(values=excerpt(row, picks), picks=picks)
    else:
        kinds = ", ".join(f"{o.error['type'] if o.failed else 'indices'} in {_describe_runs(o)}" for o in answers)
        sentence = (f"{case.describe_call(target)} on {target_id} gave {len(answers)} different "
                    f"answers on case {case.id}, {scope}: {kinds}")
    return Finding(
        check=NAME, kind="nondeterministic", message=sentence, targets=[target_id], case=case.id,
        positions=[list(p) for p in positions[:10]], count=len(positions) or 1, evidence=evidence,
        reproducer=reproducer(case, target, positions, observations.bundle_path, repeat=True),
    )
