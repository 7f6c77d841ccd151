"""crash: a target raised where argmax must answer, hung, or its process died."""
from auditor.model import Finding
from auditor.reproduce import reproducer

NAME = "crash"


def check(observations, options):
    """Group the unexpected errors of each target by error type and message."""
    groups = {}
    for (target_id, case_id), outcomes in observations.outcomes.items():
        case = observations.cases[case_id]
        for outcome in outcomes:
            if outcome.kind not in ("crashed", "raised"):
                continue  # answers, garbage and in-place changes are other checks' to report
            if case.must_raise and not outcome.crashed:
                continue  # raising is what argmax must do here
            key = (target_id, outcome.error["type"], outcome.error["message"][:200])
            groups.setdefault(key, []).append((case, outcome))
    findings = [_finding(observations, key, hits) for key, hits in groups.items()]
    for framework, why in observations.startup_errors.items():
        findings.append(Finding(
            check=NAME, kind="crash", targets=[framework], count=1,
            message=f"{framework} is installed but its worker could not start: {why}",
            evidence={"error": why}))
    return findings


def _finding(observations, key, hits):
    target_id, error_type, message = key
    target = observations.targets[target_id]
    case, outcome = hits[0]
    how = {"ProcessDied": "its worker process died",
           "Timeout": "it hung",
           "WorkerError": "its worker broke down",
           "SetupError": "the input could not be built on it"}.get(error_type, f"it raised {error_type}")
    runs = sum(len(o.runs) for _, o in hits)
    cases = sorted({c.id for c, _ in hits})
    sentence = (f"{case.describe_call(target)} on {target_id}: {how} ({message}) on {len(cases)} "
                f"case{'s' if len(cases) > 1 else ''}, first {case.id}")
    return Finding(
        check=NAME, kind="crash", message=sentence, targets=[target_id], case=case.id,
        count=runs,
        evidence={"error": outcome.error, "cases": cases, "runs": runs},
        reproducer=reproducer(case, target, bundle_path=observations.bundle_path, show="call"),
    )
