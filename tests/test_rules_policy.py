"""Rules of the policy: an allow rule excuses the target a finding blames, not every target named."""
from auditor.model import Finding
from auditor.policy import parse

BLAMED, WITNESS = "jax/cpu/float32", "numpy/cpu/float32"


def _disagreement():
    """A finding naming two targets that blames one of them (as the consistency check does)."""
    return Finding(check="consistency", kind="tie_break", message="m", targets=[WITNESS, BLAMED],
                   case="ties-short", evidence={"blame": [BLAMED]})


def _allow(**rule):
    return parse({"allow": [dict(kind="tie_break", reason="known", **rule)]}, "audit.toml")


def test_an_allow_rule_for_the_blamed_target_excuses_the_finding():
    (finding,) = _allow(target="jax/*").apply([_disagreement()])
    assert finding.allowed == "known"


def test_an_allow_rule_for_a_target_only_named_as_witness_excuses_nothing():
    (finding,) = _allow(target="numpy/*").apply([_disagreement()])
    assert finding.allowed is None


def test_an_allow_rule_names_the_kind_and_case_it_excuses():
    assert _allow(case="ties-*").apply([_disagreement()])[0].allowed == "known"
    assert _allow(case="nan-*").apply([_disagreement()])[0].allowed is None
    other = parse({"allow": [{"kind": "nan_policy", "reason": "r"}]}, "audit.toml")
    assert other.apply([_disagreement()])[0].allowed is None
