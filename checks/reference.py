"""reference: each index against the first maximizer (NaN as maximum) of the values the target saw.

Every disputed position gets exactly one kind: `wrong_index` when the index is out of range or not a
maximizer, `nan_policy` when the row holds NaN and the index is not its first NaN, `tie_break` when
the index is a maximizer but not the first one. argmin targets are judged by the mirrored rule (first
minimum, NaN first) on the same terms. Where a twin's documentation says it may return another of
the equal candidates (torch.topk), such an answer is a warning that quotes it (auditor/ops.py).
"""
import numpy as np

from auditor import ops
from auditor.explain import answers_at, disputed_positions, excerpt, fmt, list_indices, squeeze_hint
from auditor.model import LOW_PRECISION, Finding
from auditor.oracle import maximizers, oriented
from auditor.reproduce import reproducer
from auditor.worker.casting import is_integer, seen_values

NAME = "reference"


def is_index_dtype(name):
    """True for integer dtypes: indices of another type are the api check's to report."""
    return name.startswith(("int", "uint"))


def classify(row, returned, expected):
    """Return the kind of the disputed index `returned` in `row` whose reference is `expected`.

    `row` holds the values as the target's rule orders them (negated for argmin)."""
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
        reported = set()
        # Every distinct answer is judged (an answer wrong only sometimes is still wrong), the most
        # frequent first; each kind (and severity) is reported once per target and case.
        for outcome in sorted(outcomes, key=lambda o: -len(o.runs)):
            if (outcome.failed or case.must_raise or not is_index_dtype(outcome.dtype)
                    or tuple(outcome.indices.shape) != case.output_shape):
                continue  # the api check reports answers of the wrong type or shape
            for finding in _judge(observations, case, target, outcome):
                if (finding.kind, finding.severity) not in reported:
                    reported.add((finding.kind, finding.severity))
                    findings.append(finding)
    return findings


def _judge(observations, case, target, outcome):
    expected = case.reference(target.dtype, target.sense)
    documented = ops.documented(target.framework, target.op) if not target.impl else None
    positions = disputed_positions(outcome.indices != expected)
    by_kind = {}
    for position in positions:
        row = case.ordered_row(target.dtype, target.sense, position)
        got = int(outcome.indices[position])
        kind = classify(row, got, int(expected[position]))
        covered = (documented is not None and kind in ops.DOCUMENTED_KINDS
                   and documented.covers(row, got, maximizers(row, 0)))
        by_kind.setdefault((kind, covered), []).append(position)
    return [_finding(observations, case, target, outcome, expected, kind,
                     documented if covered else None, where)
            for (kind, covered), where in by_kind.items()]


def _finding(observations, case, target, outcome, expected, kind, documented, positions):
    first = positions[0]
    row = case.seen_row(target.dtype, first)
    ordered = oriented(row, target.sense)
    got, want = int(outcome.indices[first]), int(expected[first])
    explain = {"tie_break": _tie_sentence, "nan_policy": _nan_sentence,
               "wrong_index": _wrong_sentence}[kind]
    detail, evidence = explain(row, ordered, got, want, target)
    share = f" ({len(positions)} positions like this)" if len(positions) > 1 else ""
    message = (f"{case.describe_call(target)} on {target.id} returned {got} at {case.where(first)} "
               f"of case {case.id}; expected {want} {detail}{share}")
    evidence.update(values=excerpt(row, [got, want]), returned=got, expected=want,
                    position=list(first), row_length=len(row))
    if kind == "tie_break":
        evidence["policy"] = case.policies(target.dtype, outcome.indices, target.sense)[0]
    severity = ""
    if documented is not None:
        message += (f"; documented: {target.name} {documented.meaning}: \"{documented.quote}\" "
                    f"({documented.url})")
        evidence["documented"] = documented.to_json()
        severity = "warning"
    return Finding(
        check=NAME, kind=kind, message=message, targets=[target.id], case=case.id,
        severity=severity, positions=[list(p) for p in positions[:10]], count=len(positions),
        evidence=evidence,
        reproducer=reproducer(case, target, positions, observations.bundle_path,
                              saw=answers_at(outcome.indices, case, positions)),
    )


def extreme(target, plural=False):
    """Return 'maximum' (argmax and its twins) or 'minimum' (argmin), or their plurals."""
    word = "maxim" if target.sense == "max" else "minim"
    return word + ("a" if plural else "um")


def _tie_sentence(row, ordered, got, want, target):
    tied = np.flatnonzero(maximizers(ordered, 0))
    return (f"(first of the tied {extreme(target, True)} {fmt(row[want])} at {list_indices(tied)})",
            {"tied": [int(i) for i in tied[:20]], "ties": int(len(tied))})


def _nan_sentence(row, ordered, got, want, target):
    nans = np.flatnonzero(np.isnan(row))
    what = "a later NaN" if np.isnan(row[got]) else f"the value {fmt(row[got])}"
    return (f"(the first NaN; NaN counts as the {extreme(target)}), but it returned {what}; NaN at "
            f"{list_indices(nans)}", {"nans": [int(i) for i in nans[:20]]})


def _wrong_sentence(row, ordered, got, want, target):
    if not 0 <= got < len(row):
        return (f"(value {fmt(row[want])}), but {got} is outside 0..{len(row) - 1}"
                f"{squeeze_hint(got, want)}", {"out_of_range": True})
    gap = _gap(ordered[want], ordered[got])
    return (f"(value {fmt(row[want])}), but {got} holds {fmt(row[got])}, which is not a "
            f"{extreme(target)} (gap {fmt(gap)}){_hint(row, got, want, target.dtype)}"
            f"{squeeze_hint(got, want)}", {"gap": gap})


def _gap(high, low):
    """Return `high - low` exactly for integers (a Python int), as a float for floats."""
    if isinstance(high, (np.integer, np.bool_)):
        return int(high) - int(low)
    return float(high) - float(low)


def _hint(row, got, want, dtype):
    """Guess the mechanism behind a non-maximum answer from the two values (floats only: an
    integer answer off the maximum has no rounding to blame)."""
    if is_integer(dtype):
        return ""
    tiny = float(np.finfo(np.float32 if dtype != "float64" else np.float64).tiny)
    if abs(float(row[want])) < tiny and abs(float(row[got])) < tiny:
        return "; both values are subnormal, as if subnormals were flushed to zero (FTZ/DAZ)"
    for low in LOW_PRECISION:
        rounded = seen_values(row[[got, want]], low)
        if dtype not in LOW_PRECISION and rounded[0] == rounded[1]:
            return f"; {low} rounds both to the same number, as if the kernel computed in {low}"
    return ""


