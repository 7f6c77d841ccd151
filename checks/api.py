"""api: index dtype, output shape for every dim/keepdim, and raising on empty reductions."""
from auditor.model import Finding
from auditor.reproduce import reproducer

NAME = "api"
#: What each problem's reproducer prints.
SHOW = {"dtype": "api", "shape": "api", "no-raise": "api", "bad-return": "api", "mutated": "mutated"}


def problems(case, target, outcome):
    """Yield (problem key, sentence) for what `outcome` gets wrong about argmax's contract."""
    if outcome.kind in ("bad_return", "mutated"):
        yield outcome.kind.replace("_", "-"), outcome.error["message"]
        return
    if outcome.failed:
        return
    if case.must_raise:
        yield "no-raise", (f"returned indices of shape {tuple(outcome.indices.shape)} for an empty "
                           "reduction instead of raising")
        return
    if outcome.dtype != target.index_dtype:
        yield "dtype", f"returned {outcome.dtype} indices; {_whose(target)} returns {target.index_dtype}"
    if tuple(outcome.indices.shape) != case.output_shape:
        yield "shape", (f"returned shape {tuple(outcome.indices.shape)}; expected "
                        f"{case.output_shape} for input {case.shape}")


def _whose(target):
    """Name the function whose index dtype `target` should return: "torch's argmax", "jax.topk"."""
    if target.impl or target.op in ("argmax", "argmin"):
        return f"{target.framework}'s {target.op}"
    return target.name


def check(observations, options):
    """Group each target's API problems across the cases that show them."""
    groups = {}
    for (target_id, case_id), outcomes in observations.outcomes.items():
        case = observations.cases[case_id]
        target = observations.targets[target_id]
        for outcome in outcomes:
            for problem, sentence in problems(case, target, outcome):
                groups.setdefault((target_id, problem), []).append((case, sentence, outcome))
    findings = []
    for (target_id, problem), hits in groups.items():
        case, sentence, outcome = hits[0]
        cases = sorted({c.id for c, _, _ in hits})
        more = (f" (and on {len(cases) - 1} more case{'s' if len(cases) > 2 else ''})"
                if len(cases) > 1 else "")
        findings.append(Finding(
            check=NAME, kind="api_mismatch", targets=[target_id], case=case.id, count=len(cases),
            message=f"{case.describe_call(observations.targets[target_id])} on {target_id} "
                    f"{sentence} on case {case.id}{more}",
            evidence={"problem": problem, "cases": cases, "input_shape": list(case.shape),
                      "expected_shape": list(case.output_shape)},
            reproducer=reproducer(case, observations.targets[target_id],
                                  bundle_path=observations.bundle_path,
                                  show=SHOW[problem], observed=sentence),
        ))
    return findings
