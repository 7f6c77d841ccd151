"""Rules of the api check: what each problem says, whose index dtype is expected, and an
implementation that writes into its input."""
import numpy as np
import pytest
from synthetic import empty, error, indices, small_case, target

from auditor.checks import api
from auditor.model import Target

MUTATED = "changed its input in place (the values after the calls differ from before)"


def test_an_implementation_that_writes_into_its_input_is_an_api_mismatch():
    case = small_case([[1.0, 2.0]], id="c")
    tgt = target("writes", op="argmin")
    observations = empty([case], [tgt])
    observations.add(tgt.id, case.id, [indices([1]), error("MutatedInput", MUTATED, runs=((0, None),))])
    (finding,) = api.check(observations, {})
    assert (finding.check, finding.kind, finding.severity, finding.targets, finding.case) == (
        "api", "api_mismatch", "error", [tgt.id], "c")
    assert finding.evidence["problem"] == "mutated"
    assert finding.message == f"argmin(x, dim=-1) on {tgt.id} {MUTATED} on case c"
    last = finding.reproducer.splitlines()[-1]
    assert last.startswith("print('input changed in place:', not np.array_equal(")
    assert last.endswith(f"# the audit observed: it {MUTATED}")


def _int32_everywhere(tgt, case_ids=("c1", "c2", "c3")):
    cases = [small_case([[1.0, 2.0]], id=c) for c in case_ids]
    observations = empty(cases, [tgt])
    for case in cases:
        observations.add(tgt.id, case.id, [indices([1], dtype="int32")])
    (finding,) = api.check(observations, {})
    return finding


@pytest.mark.parametrize("tgt, call, whose", [
    (target(framework="torch"), "argmax(x, dim=-1)", "torch's argmax"),
    (target(framework="torch", op="argmin"), "argmin(x, dim=-1)", "torch's argmin"),
    (target(framework="torch", op="max"), "max(x, dim=-1).indices", "torch.max"),
    (Target("torch", "cpu", "float32", impl="kernels:top1", op="topk"),
     "topk(x, 1, dim=-1).indices", "torch's topk"),
], ids=["argmax", "argmin", "twin", "impl"])
def test_a_dtype_finding_names_whose_index_dtype_is_expected_and_how_many_cases(tgt, call, whose):
    finding = _int32_everywhere(tgt)
    sentence = f"returned int32 indices; {whose} returns int64"
    assert finding.message == f"{call} on {tgt.id} {sentence} on case c1 (and on 2 more cases)"
    assert finding.evidence == {"problem": "dtype", "cases": ["c1", "c2", "c3"],
                                "input_shape": [1, 2], "expected_shape": [1]}
    assert finding.reproducer.endswith(
        "print(type(r).__name__, getattr(r, 'dtype', None), tuple(getattr(r, 'shape', ())))"
        f"  # the audit observed: it {sentence}")


def test_a_finding_on_one_case_names_no_more_cases_and_the_call_made():
    finding = _int32_everywhere(target(framework="torch", op="max"), ["only"])
    assert finding.message == ("max(x, dim=-1).indices on torch.max/cpu/float32 returned int32 "
                               "indices; torch.max returns int64 on case only")
    assert _int32_everywhere(target(), ["a", "b"]).message.endswith("on case a (and on 1 more case)")


def test_an_empty_reduction_that_answers_is_a_no_raise_finding():
    case = small_case(np.zeros((3, 0)), dim=1, id="e")
    tgt = target()
    observations = empty([case], [tgt])
    observations.add(tgt.id, "e", [indices([0, 0, 0])])
    (finding,) = api.check(observations, {})
    assert finding.message == ("argmax(x, dim=1) on numpy/cpu/float32 returned indices of shape "
                               "(3,) for an empty reduction instead of raising on case e")
