"""Per-example work of hypothesis that `audit fuzz` does not need, switched off while it searches.

Around every example, hypothesis saves the states of the global PRNGs (`random`, and
`numpy.random` once numpy is imported), seeds them, and restores them afterwards
(`hypothesis.internal.entropy.deterministic_PRNG`), so that a test body using the global PRNGs
replays the same. The fuzzer's test body never uses them (its examples are drawn by hypothesis;
the seeds of its backgrounds are drawn too, into `np.random.default_rng`), and saving, seeding and
restoring numpy's Mersenne Twister costs a tenth of the driver's time per example. Hypothesis
offers no setting for it, so `global_prngs_left_alone` replaces the name `hypothesis.core` calls
for the length of a search, where that name is still the one in `hypothesis.internal.entropy`
(the hypothesis versions this was written against); on any other version it changes nothing and
hypothesis keeps doing it. The global PRNGs are then neither seeded nor restored during the
search: whatever else in the process uses them is left as it would be without hypothesis.
"""
import contextlib


@contextlib.contextmanager
def _untouched(seed=0):
    yield


@contextlib.contextmanager
def global_prngs_left_alone():
    """Within this block, hypothesis leaves the global PRNGs alone around each example; yields
    True where it could be arranged, False where this hypothesis does it otherwise (no change)."""
    try:
        from hypothesis import core
        from hypothesis.internal import entropy
    except ImportError:  # pragma: no cover - hypothesis moved its modules: change nothing
        yield False
        return
    original = getattr(core, "deterministic_PRNG", None)
    if original is None or original is not getattr(entropy, "deterministic_PRNG", None):
        yield False  # not the hypothesis this knows (or already replaced): change nothing
        return
    core.deterministic_PRNG = _untouched
    try:
        yield True
    finally:
        core.deterministic_PRNG = original
