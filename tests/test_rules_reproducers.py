"""Rule of every check's reproducer: a case too large to write out loads its exact values from the
run's own bundle, wherever that bundle was saved."""
import dataclasses

import numpy as np
import pytest
from synthetic import empty, error, indices, target

from auditor.checks import api, consistency, crash, determinism, precision, reference, regression
from auditor.model import Case

BUNDLE = "/tmp/saved-run"


def _large_case():
    values = np.random.default_rng(0).permutation(400).astype(np.float32).reshape(2, 200)
    values[:, 198:] = [1000.0, 1000.25]  # the maximum at the end; float16 rounds both to 1000
    return Case("large", values, dim=1)


def _observations(answers, targets=None):
    case = _large_case()
    targets = targets or [target()]
    observations = empty([case], targets)
    for tgt, outcomes in zip(targets, answers):
        observations.add(tgt.id, case.id, outcomes)
    observations.bundle_path = BUNDLE
    return observations


def _regression():
    new = _observations([[indices([0, 0])]])
    old_target = dataclasses.replace(target(), env="old")
    old = _observations([[indices([199, 199])]], [old_target])
    return regression.check(new, {"baseline": old})


def _regression_api():
    new = _observations([[indices([199, 199], dtype="int32")]])
    old = _observations([[indices([199, 199])]])
    return regression.check(new, {"baseline": old})


FINDINGS = {
    "crash": lambda: crash.check(_observations([[error("RuntimeError")]]), {}),
    "api": lambda: api.check(_observations([[indices([199, 199], dtype="int32")]]), {}),
    "determinism": lambda: determinism.check(_observations(
        [[indices([199, 199]), indices([0, 199], runs=[(1, 0)])]]), {}),
    "reference": lambda: reference.check(_observations([[indices([0, 199])]]), {}),
    "consistency": lambda: consistency.check(_observations(
        [[indices([199, 199])], [indices([0, 199])]], [target(), target("other")]), {}),
    "precision": lambda: precision.check(_observations(
        [[indices([199, 199])], [indices([198, 198])]],
        [target(dtype="float32"), target(dtype="float16")]), {}),
    "regression": _regression,
    "regression-api": _regression_api,
}


@pytest.mark.parametrize("check", FINDINGS)
def test_a_large_case_is_loaded_from_the_runs_bundle_in_every_reproducer(check):
    findings = FINDINGS[check]()
    assert findings
    for finding in findings:
        assert f"values = np.load('{BUNDLE}/arrays.npz')['case/large']" in finding.reproducer
