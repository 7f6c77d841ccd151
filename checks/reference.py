"""reference: each index against the first maximizer (NaN as maximum) of the values the target saw.

Every disputed position gets exactly one kind: `wrong_index` when the index is out of range or not a
maximizer, `nan_policy` when the row holds NaN and the index is not its first NaN, `tie_break` when
the index is a maximizer but not the first one.
"""
import numpy as np

from auditor.explain import answers_at, disputed_positions, excerpt, fmt, list_indices, squeeze_hint
from auditor.model import LOW_PRECISION, Finding
from auditor.oracle import maximizers
from auditor.reproduce import reproducer
from auditor.worker.casting import seen_values

NAME = "reference"


def is_index_dtype(name):
    """True for integer dtypes: indices of another type are the api check's to report."""
    return name.startswith(("int", "uint"))


def classify(row, returned, expected):
    """Return the kind of the disputed index `returned` in `row` whose reference is `expected`."""
    if not 0 <= returned < len(row):
        return "wrong_index"
    if np.isnan(row).any():
        return "nan_policy"
    if maximizers(row, 0)[returned]:
        return "tie_break"
    return "wrong_index"


def check(observations, options):
    """Report, per target, case and kind, the positions where the target left the reference."""
    findings = []
    for (target_id, case_id), outcomes in observations.outcomes.items():
        case = observations.cases[case_id]
        target = observations.targets[target_id]
        kinds = set()
        # Every distinct answer is judged (an answer wrong only sometimes is still wrong), the most
        # frequent first; each kind is reported once per target and case.
        for outcome in sorted(outcomes, key=lambda o: -len(o.runs)):
            if (outcome.failed or case.must_raise or not is_index_dtype(outcome.dtype)
                    or tuple(outcome.indices.shape) != case.output_shape):
                continue  # the api check reports answers of the wrong type or shape
            for finding in _judge(observations, case, target, outcome):
                if finding.kind not in kinds:
                    kinds.add(finding.kind)
                    findings.append(finding)
    return findings


def _judge(observations, case, target, outcome):
    seen = case.seen(target.dtype)
    expected = case.reference(target.dtype)
    positions = disputed_positions(outcome.indices != expected)
    by_kind = {}
    for position in positions:
        row = case.row(seen, position)
        kind = classify(row, int(outcome.indices[position]), int(expected[position]))
        by_kind.setdefault(kind, []).append(position)
    return [_finding(observations, case, target, outcome, expected, seen, kind, where)
            for kind, where in by_kind.items()]


def _finding(observations, case, target, outcome, expected, seen, kind, positions):
    first = positions[0]
    row = case.row(seen, first)
    got, want = int(outcome.indices[first]), int(expected[first])
    explain = {"tie_break": _tie_sentence, "nan_policy": _nan_sentence,
               "wrong_index": _wrong_sentence}[kind]
    detail, evidence = explain(row, got, want, target.dtype)
    share = f" ({len(positions)} positions like this)" if len(positions) > 1 else ""
    message = (f"{case.describe_call()} on {target.id} returned {got} at {case.where(first)} of "
               f"case {case.id}; expected {want} {detail}{share}")
    evidence.update(values=excerpt(row, [got, want]), returned=got, expected=want,
                    position=list(first), row_length=len(row))
    if kind == "tie_break":
        evidence["policy"] = case.policies(target.dtype, outcome.indices)[0]
    return Finding(
        check=NAME, kind=kind, message=message, targets=[target.id], case=case.id,
        positions=[list(p) for p in positions[:10]], count=len(positions), evidence=evidence,
        reproducer=reproducer(case, target, positions, observations.bundle_path,
                              saw=answers_at(outcome.indices, case, positions)),
    )


def _tie_sentence(row, got, want, dtype):
    tied = np.flatnonzero(maximizers(row, 0))
    return (f"(first of the tied maxima {fmt(row[want])} at {list_indices(tied)})",
            {"tied": [int(i) for i in tied[:20]], "ties": int(len(tied))})


def _nan_sentence(row, got, want, dtype):
    nans = np.flatnonzero(np.isnan(row))
    what = "a later NaN" if np.isnan(row[got]) else f"the value {fmt(row[got])}"
    return (f"(the first NaN; NaN counts as the maximum), but it returned {what}; NaN at "
            f"{list_indices(nans)}", {"nans": [int(i) for i in nans[:20]]})


def _wrong_sentence(row, got, want, dtype):
    if not 0 <= got < len(row):
        return (f"(value {fmt(row[want])}), but {got} is outside 0..{len(row) - 1}"
                f"{squeeze_hint(got, want)}", {"out_of_range": True})
    gap = float(row[want]) - float(row[got])
    return (f"(value {fmt(row[want])}), but {got} holds {fmt(row[got])}, which is not a maximum "
            f"(gap {fmt(gap)}){_hint(row, got, want, dtype)}{squeeze_hint(got, want)}", {"gap": gap})


def _hint(row, got, want, dtype):
    """Guess the mechanism behind a non-maximum answer from the two values."""
    tiny = float(np.finfo(np.float32 if dtype != "float64" else np.float64).tiny)
    if abs(float(row[want])) < tiny and abs(float(row[got])) < tiny:
        return "; both values are subnormal, as if subnormals were flushed to zero (FTZ/DAZ)"
    for low in LOW_PRECISION:
        rounded = seen_values(row[[got, want]], low)
        if dtype not in LOW_PRECISION and rounded[0] == rounded[1]:
            return f"; {low} rounds both to the same number, as if the kernel computed in {low}"
    return ""


