"""The fuzzer finds planted faults the built-in suite misses, shrinks them small, and leaves a
correct implementation alone (in-process: planted numpy implementations, no worker process)."""
import numpy as np
import pytest
from fuzzing import planted, search, target
from synthetic import correct, observe, suite_for

from auditor import policy
from auditor.checks import run_checks
from auditor.fuzz import BudgetSpent, Stats, assemble, finding_key
from auditor.strategies import Space


def _suite_findings(fn, dtype="float32"):
    tgt = target("planted", dtype=dtype)
    observations = observe(list(suite_for(dtype)), {tgt: fn}, processes=1, repeats=1)
    return [f for f in run_checks(observations) if f.severity != "info"]


@pytest.mark.parametrize("file, kind", [("rank1_view_offset.py", "wrong_index"),
                                        ("nan_payload.py", "nan_policy")])
def test_a_planted_fault_the_suite_misses_is_found_and_shrunk_small(file, kind):
    fn = planted(file)
    assert _suite_findings(fn) == []  # the built-in quick suite misses it
    tgt = target("planted")
    found = search({tgt: fn}, max_examples=300)
    key = (kind, (tgt.id,))
    assert key in found.records, sorted(found.records)
    shrunk = found.records[key].example
    assert shrunk.values.size <= 4, shrunk.describe()
    if file == "rank1_view_offset.py":
        assert shrunk.values.ndim == 1 and shrunk.layout != "contiguous"
    else:
        bits = shrunk.values.astype(np.float32).view(np.uint32)
        assert (np.isnan(shrunk.values) & ~np.isin(bits, (0x7FC00000, 0xFFC00000))).any()


def test_a_correct_implementation_stays_clean_through_a_full_budget():
    found = search({target("correct"): correct, target("argmax", dtype="float64"): correct},
                   space=Space(families=("float",), float64=True, mirror=False),
                   max_examples=300)
    assert found.records == {}
    assert found.stats.examples >= 300 and found.stats.stopped == "max-examples"


def test_each_kind_and_target_is_one_finding_on_its_own_shrunk_case():
    faulty, tgt = planted("rank1_view_offset.py"), target("planted")
    nan = planted("nan_payload.py")
    both = target("nan")
    found = search({tgt: faulty, both: nan}, max_examples=300)
    assert {("wrong_index", (tgt.id,)), ("nan_policy", (both.id,))} <= set(found.records)
    observations, findings = assemble(found.records, found.judge.targets, policy.find(None),
                                      {}, "bundle")
    keys = [finding_key(f) for f in findings]
    assert len(keys) == len(set(keys))
    assert all(c.startswith("fuzz-") and "fuzz" in observations.cases[c].tags
               for c in observations.cases)
    wrong = next(f for f in findings if finding_key(f) == ("wrong_index", (tgt.id,)))
    assert wrong.reproducer and "np.array(" in wrong.reproducer  # exact values inline


def test_the_time_budget_stops_the_search_and_keeps_what_it_found():
    found = search({target("planted"): planted("nan_payload.py")}, max_examples=10**6,
                   seconds=1.5)
    assert found.stats.stopped == "time"
    assert found.stats.seconds < 10


def test_an_interrupt_keeps_the_records_so_far():
    from fuzzing import InProcessJudge

    from auditor.fuzz import Search

    class Interrupting(InProcessJudge):
        def observe(self, case):
            if len(self.seen) == 150:
                raise KeyboardInterrupt
            return super().observe(case)

    tgt = target("planted")
    found = Search(Interrupting({tgt: planted("rank1_view_offset.py")}), policy.find(None),
                   Space(), max_examples=10**6)
    with pytest.raises(KeyboardInterrupt):
        found.run()
    assert ("wrong_index", (tgt.id,)) in found.records
    assert 0 < found.stats.generated <= found.stats.examples  # the cut round's examples count


def test_the_example_database_replays_an_earlier_failure_first(tmp_path):
    from hypothesis.database import DirectoryBasedExampleDatabase

    database = DirectoryBasedExampleDatabase(str(tmp_path / "db"))
    tgt, fn = target("planted"), planted("nan_payload.py")
    first = search({tgt: fn}, max_examples=300, database=database)
    assert first.records
    again = search({tgt: fn}, max_examples=1, database=database, seed=7)
    assert set(again.records) == set(first.records)


def test_the_same_seed_gives_the_same_examples():
    runs = [search({target("correct"): correct}, max_examples=40, seed=3) for _ in range(2)]
    assert [c.id for c in runs[0].judge.seen] and [
        (c.values.tobytes(), c.dim, c.layout) for c in runs[0].judge.seen] == [
        (c.values.tobytes(), c.dim, c.layout) for c in runs[1].judge.seen]


def test_stats_give_each_share_of_the_time():
    stats = Stats(examples=100, seconds=10.0, judge_s=5.0, call_s=1.0, checks_s=2.0,
                  warm_after=1.0)
    facts = stats.to_json()
    assert facts["shares"] == {"generation": 0.3, "ipc": 0.4, "calls": 0.1, "compile": 0.0,
                               "checks": 0.2}
    assert facts["examples_per_s"] == 10.0 and facts["examples_per_s_warm"] == 10.0
    assert issubclass(BudgetSpent, KeyboardInterrupt)


def test_the_space_follows_the_targets():
    from auditor.fuzz import EAGER_POOL, POOL, space_for
    from auditor.model import Target

    plain = space_for([Target("numpy", "cpu", "float32")], 1000, seed=0)
    assert plain.families == ("float",) and not plain.signatures and not plain.mirror
    mixed = space_for([Target("numpy", "cpu", "float64", op="argmin"),
                       Target("numpy", "cpu", "int8")], 1000, seed=0)
    assert mixed.families == ("float", "int") and mixed.float64 and mixed.mirror
    compiled = space_for([Target("torch", "cpu", "float32", variant="compile")], 1000, seed=1)
    assert len(compiled.signatures) == POOL
    eager_jax = space_for([Target("jax", "cpu", "float32")], 1000, seed=1)
    assert len(eager_jax.signatures) == EAGER_POOL


def test_a_framework_that_cannot_start_is_a_crash_finding():
    _, findings = assemble({}, {}, policy.find(None), {}, "bundle",
                           {"jax": "could not start: ImportError: boom"})
    assert [f.kind for f in findings] == ["crash"]


def test_progress_says_examples_rate_findings_and_budget_left():
    import io

    from auditor.fuzz import FuzzProgress

    found = search({target("planted"): planted("nan_payload.py")}, max_examples=60, seconds=600)
    stream = io.StringIO()
    FuzzProgress(stream, interval=0)(found)
    line = stream.getvalue()
    assert "examples (" in line and "/s)" in line and "findings" in line and "s left" in line


def test_a_nondeterministic_target_is_found_and_its_flakiness_does_not_stop_the_search():
    from synthetic import RandomTie

    tgt = target("random")
    # A tie in one row of many replays flakily (5 calls may all pick the same maximum), so for
    # some seeds hypothesis never gets to shrink what it found: seeds 1, 6 and 7 of 0-8 before
    # the strategies drew fewer choices, 0 and 3 after; 4 shrinks in both.
    found = search({tgt: RandomTie()}, max_examples=150, seed=4)
    assert ("nondeterministic", (tgt.id,)) in found.records
    assert found.records[("nondeterministic", (tgt.id,))].example.values.size <= 4
    assert found.stats.stopped == "max-examples"
