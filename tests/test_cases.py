"""The built-in suite: deterministic from its seed, and holding the patterns the audit promises."""
import numpy as np
import pytest

from auditor.cases import SUITES, build_suite, select
from auditor.model import Case
from auditor.oracle import maximizers


@pytest.fixture(scope="module", params=SUITES)
def suite(request):
    return request.param, build_suite(request.param)


def test_same_seed_same_values_other_seed_other_values():
    first, again, other = build_suite(seed=3), build_suite(seed=3), build_suite(seed=4)
    assert [c.id for c in first] == [c.id for c in again] == [c.id for c in other]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.values, b.values)
    assert any(not np.array_equal(a.values, b.values, equal_nan=True) for a, b in zip(first, other))


def test_ids_are_unique_and_values_float32(suite):
    _, cases = suite
    assert len({c.id for c in cases}) == len(cases)
    assert all(c.values.dtype == np.float32 for c in cases)


def _rows(case):
    values = case.values.reshape(-1) if case.dim is None else np.moveaxis(case.values, case.axis, -1)
    return values.reshape(-1, values.shape[-1]) if values.size else values.reshape(0, 0)


def _tied_places(case):
    places = []
    for row in _rows(case):
        tied = np.flatnonzero(maximizers(row, 0)) if len(row) and not np.isnan(row).any() else []
        if len(tied) > 1:
            places.append((len(row), list(tied)))
    return places


def test_ties_at_first_middle_last_and_far_apart_around_powers_of_two(suite):
    _, cases = suite
    ties = [p for c in cases if "ties" in c.tags for p in _tied_places(c)]
    assert any(t[0] == 0 for _, t in ties) and any(t[-1] == n - 1 for n, t in ties)
    assert any(t[0] == n // 2 - 1 for n, t in ties)
    assert any(len(t) == n for n, t in ties)  # a whole row of equal values
    lengths = {n for n, t in ties if t[-1] - t[0] > n // 2}
    for power in (16, 128, 1024):
        assert {power - 1, power, power + 1} <= lengths
    assert any(n > 100_000 for n in lengths)


def test_nan_inf_zero_and_subnormal_patterns(suite):
    _, cases = suite
    rows = [row for c in cases for row in _rows(c) if len(row)]
    nan_rows = [r for r in rows if np.isnan(r).any()]
    assert any(np.isnan(r[0]) for r in nan_rows) and any(np.isnan(r[-1]) for r in nan_rows)
    assert any(np.isnan(r).sum() > 1 for r in nan_rows) and any(np.isnan(r).all() for r in nan_rows)
    assert any(np.isposinf(r).any() for r in nan_rows)  # NaN beside +inf
    assert any(np.isneginf(r).all() for r in rows)
    assert any((r == 0).sum() > 1 and np.signbit(r[r == 0]).any() and (~np.signbit(r[r == 0])).any()
               for r in rows)
    tiny = np.finfo(np.float32).tiny
    assert any(((r != 0) & (np.abs(r) < tiny)).any() for r in rows)


def test_near_ties_that_low_precision_collapses(suite):
    _, cases = suite
    near = [c for c in cases if "near-tie" in c.tags]
    collapsed = sum(int((c.reference("float16") != c.reference("float32")).sum()) for c in near)
    assert collapsed > 0


def test_large_winning_indices(suite):
    name, cases = suite
    winners = [int(c.reference("float32").max()) for c in cases if "large" in c.tags]
    assert max(winners) > 65535
    if name == "full":
        assert max(winners) > 2**24 and float(np.float32(max(winners))) != max(winners)


def test_every_dim_keepdim_layout_and_edge(suite):
    _, cases = suite
    calls = {(c.dim, c.keepdim) for c in cases}
    assert {(0, False), (1, False), (-1, False), (None, False), (None, True), (1, True)} <= calls
    assert {"transposed", "strided", "broadcast"} <= {c.layout for c in cases}
    assert any(c.values.ndim == 0 for c in cases)
    assert any(c.must_raise for c in cases)
    assert any(c.values.size == 0 and not c.must_raise for c in cases)


def test_select_matches_ids_and_tags():
    cases = build_suite()
    assert {c.id for c in select(cases, ["nan"])} == {c.id for c in cases if "nan" in c.tags}
    assert [c.id for c in select(cases, ["ties-far-12?"])] == ["ties-far-127", "ties-far-128", "ties-far-129"]
    assert select(cases, []) == cases


@pytest.mark.parametrize("kwargs, message", [
    ({"values": np.zeros(3, np.float32), "dim": 1}, "out of range"),
    ({"values": np.float32(1).reshape(()), "dim": 0}, "0-d"),
    ({"values": np.eye(2, dtype=np.float32), "dim": 0, "layout": "broadcast"}, "broadcast"),
])
def test_a_case_refuses_what_no_framework_could_be_asked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Case("bad", **kwargs)
