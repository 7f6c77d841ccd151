"""Rules of the api check: an implementation that writes into its input is reported."""
from synthetic import empty, error, indices, small_case, target

from auditor.checks import api

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
