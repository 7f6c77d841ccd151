"""While `audit fuzz` searches, hypothesis leaves the global PRNGs alone around each example (it
seeds and restores them otherwise); on a hypothesis it does not know, nothing changes."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.fuzzhooks import global_prngs_left_alone


def _globals_seen(examples=5):
    """Return the first value of the global `random` each example's body saw, after seeding it."""
    seen = []

    @settings(max_examples=examples, database=None, derandomize=True)
    @given(st.integers())
    def body(number):
        seen.append(random.random())

    random.seed(1234)
    body()
    return seen, random.random()


def test_hypothesis_seeds_the_global_prng_for_every_example_without_it():
    seen, after = _globals_seen()
    assert len(set(seen)) == 1  # every example saw the same seeded state
    assert after == random.Random(1234).random()  # and the state was put back afterwards


def test_within_the_block_the_global_prng_goes_on_untouched_and_comes_back_after():
    from hypothesis import core

    before = core.deterministic_PRNG
    with global_prngs_left_alone() as changed:
        seen, after = _globals_seen()
    assert changed and core.deterministic_PRNG is before
    stream = random.Random(1234)
    assert seen + [after] == [stream.random() for _ in range(len(seen) + 1)]


def test_the_hypothesis_name_comes_back_after_an_exception():
    from hypothesis import core

    before = core.deterministic_PRNG
    with pytest.raises(KeyError), global_prngs_left_alone():
        raise KeyError("x")
    assert core.deterministic_PRNG is before


def test_a_hypothesis_that_calls_another_name_is_left_as_it_is(monkeypatch):
    from hypothesis import core

    def other(seed=0):
        raise AssertionError("never called here")

    monkeypatch.setattr(core, "deterministic_PRNG", other)
    with global_prngs_left_alone() as changed:
        assert core.deterministic_PRNG is other
    assert not changed and core.deterministic_PRNG is other


def test_nested_blocks_restore_the_original_once():
    from hypothesis import core

    before = core.deterministic_PRNG
    with global_prngs_left_alone() as outer:
        with global_prngs_left_alone() as inner:
            pass
        assert core.deterministic_PRNG is not before  # the outer block still holds
    assert outer and not inner and core.deterministic_PRNG is before
