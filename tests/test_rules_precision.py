"""Rules of the precision check: flips are counted per position against each dtype's own limit, the
limit itself is tolerated, and argmin lanes follow the first minimum."""
import numpy as np
import pytest
from synthetic import empty, error, indices, small_case, target

from auditor.checks import precision

NEAR = 1.0 + 2**-12  # float16 and bfloat16 round it to 1.0


def _lane(answers, rows=((NEAR, 1.0, 3.0), (1.0, NEAR, 5.0)), op="argmin", dim=-1, low="float16"):
    """Return Observations of a `low`/float32 lane giving `answers` (low, float32) on case c."""
    case = small_case(np.array(rows, dtype=np.float32), id="c", dim=dim)
    targets = [target(dtype=low, op=op), target(dtype="float32", op=op)]
    observations = empty([case], targets)
    for tgt, answer in zip(targets, answers):
        observations.add(tgt.id, "c", [answer])
    return observations


def test_argmin_lanes_count_the_flips_of_the_first_minimum():
    observations = _lane([indices([0, 0]), indices([1, 0])])
    (finding,) = precision.check(observations, {})
    assert (finding.count, finding.positions) == (1, [[0]])
    assert finding.message.startswith(
        "argmin(x, dim=-1) on numpy.argmin/cpu/float16 picked another index than "
        "numpy.argmin/cpu/float32 at 1 of 2 positions of case c: at row 0 float32 picks 1 (1) over "
        "0 (1.0002441), a margin of 0.25 float16 spacings")
    assert finding.evidence["margin"] == 2**-12 and finding.evidence["margins_spacings"] == [0.25]
    assert precision.flip_rates(observations)["numpy.argmin/cpu/float16"]["flips"] == 1


def test_a_drift_finding_names_both_picks_their_values_and_what_rounding_made_of_them():
    observations = _lane([indices([0, 0]), indices([1, 2])], op="argmax",
                         rows=((1.0, NEAR, 0.0), (4.0, 2.0, 4.5)))
    (finding,) = precision.check(observations, {})
    assert finding.message == (
        "argmax(x, dim=-1) on numpy/cpu/float16 picked another index than numpy/cpu/float32 at 1 "
        "of 2 positions of case c: at row 0 float32 picks 1 (1.0002441) over 0 (1), a margin of "
        "0.25 float16 spacings; float16 rounds them to 1 and 1, so the first wins")
    assert finding.evidence == {
        "blame": ["numpy/cpu/float16"], "flips": 1, "positions_compared": 2,
        "margin": 2**-12, "margin_spacings": 0.25, "values": [[0, "1"], [1, "1.0002441"], [2, "0.0"]],
        "rounded": [[0, "1"], [1, "1"], [2, "0.0"]], "picks": [1, 0], "margins_spacings": [0.25]}
    assert finding.reproducer.endswith(
        "print(answers)  # the audit saw [[1], [0]] (float32, then float16)")


def test_a_whole_input_reduction_is_one_position():
    observations = _lane([indices(0), indices(1)], op="argmax", rows=((1.0, NEAR, 0.0),), dim=None)
    (finding,) = precision.check(observations, {})
    assert "at 1 of 1 positions of case c: at the whole input float32 picks 1" in finding.message
    rate = precision.flip_rates(observations)["numpy/cpu/float16"]
    assert (rate["flips"], rate["positions"], rate["rate"]) == (1, 1, 1.0)


@pytest.mark.parametrize("limit, breach", [(0.5, False), (0.49, True)])
def test_a_flip_rate_at_the_limit_is_tolerated_and_above_it_is_an_error(limit, breach):
    observations = _lane([indices([0, 0]), indices([1, 0])])
    findings = precision.check(observations, {"max_flip_rate": {"float16": limit}})
    errors = [f for f in findings if f.severity == "error"]
    assert bool(errors) == breach
    if breach:
        (error_finding,) = errors
        assert (error_finding.check, error_finding.kind, error_finding.count) == (
            "precision", "precision_drift", 1)
        assert error_finding.targets == ["numpy.argmin/cpu/float16"]
        assert error_finding.evidence == {"flips": 1, "positions": 2, "rate": 0.5,
                                          "float32_target": "numpy.argmin/cpu/float32"}
        assert error_finding.message == (
            "numpy.argmin/cpu/float16 flips 1 of 2 positions against numpy.argmin/cpu/float32 "
            "(50.00%), more than the 49.00% the policy tolerates")


def test_each_dtype_is_held_to_its_own_flip_limit():
    lows = {"float16": 0.0, "bfloat16": 1.0}
    for low, limit in lows.items():
        observations = _lane([indices([0, 0]), indices([1, 0])], low=low)
        breaches = [f for f in precision.check(observations, {"max_flip_rate": lows})
                    if f.severity == "error"]
        assert bool(breaches) == (limit < 0.5), low


def test_a_lane_where_the_low_dtype_never_answered_compares_nothing():
    observations = _lane([error("RuntimeError"), indices([1, 0])])
    assert precision.check(observations, {"max_flip_rate": {"float16": 0.0}}) == []
    assert precision.flip_rates(observations)["numpy.argmin/cpu/float16"] == {
        "flips": 0, "positions": 0, "rate": 0.0, "float32_target": "numpy.argmin/cpu/float32"}


def test_the_margins_of_at_most_200_flips_are_kept_as_evidence():
    rows = [(1.0, NEAR)] * 250
    observations = _lane([indices([0] * 250), indices([1] * 250)], rows=rows, op="argmax")
    (finding,) = precision.check(observations, {})
    assert finding.count == 250 and len(finding.evidence["margins_spacings"]) == 200


def test_flips_follow_argmaxs_rule_unless_told_the_sense():
    case = small_case([[1.0, NEAR, 0.0]], id="c")
    assert precision.flips(case, "float16", np.array([0]), np.array([1])) == [((0,), 0, 1)]
    assert precision.flips(case, "float16", np.array([0]), np.array([1]), "min") == []
