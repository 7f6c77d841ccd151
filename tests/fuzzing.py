"""Run the fuzzer in-process: planted numpy implementations judged as the workers would run them."""
import importlib.util
import os

from synthetic import run_process, target

from auditor import policy
from auditor.fuzz import Search
from auditor.model import Observations
from auditor.strategies import Space

IMPLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "impls")


def planted(file, function="argmax"):
    """Return `function` of tests/impls/`file`."""
    spec = importlib.util.spec_from_file_location(f"fuzz_{file[:-3]}", os.path.join(IMPLS, file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)


class InProcessJudge:
    """What WorkerJudge does, without processes: each (Target, fn) called on every example."""

    def __init__(self, impls, repeats=2):
        self.impls = list(impls.items()) if isinstance(impls, dict) else list(impls)
        self.targets = {t.id: t for t, _ in self.impls}
        self.repeats = repeats
        self.stats = None
        self.seen = []

    def observe(self, case):
        observations = Observations(cases={case.id: case}, targets=self.targets)
        self.seen.append(case)
        for tgt, fn in self.impls:
            if case.applies(tgt.dtype, tgt.sense):
                observations.add(tgt.id, case.id, run_process(fn, case, tgt.dtype, 0, self.repeats))
        return observations


def search(impls, space=None, max_examples=200, seed=0, database=None, seconds=None,
           config=None):
    """Return the finished Search of `impls` ({Target: fn}) over `space`."""
    rules = policy.find(config)
    found = Search(InProcessJudge(impls), rules, space or Space(), max_examples=max_examples, seed=seed,
                   database=database, seconds=seconds)
    found.run()
    return found


__all__ = ["InProcessJudge", "planted", "search", "target"]
