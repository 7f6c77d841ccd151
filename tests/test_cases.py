"""The built-in suite: deterministic from its seed, and holding the patterns the audit promises."""
import numpy as np
import pytest

from auditor.cases import (
    GRID_SHAPES,
    SUITES,
    boundary_positions,
    build_suite,
    grid_dims,
    grid_layouts,
    select,
)
from auditor.model import Case
from auditor.oracle import maximizers
from auditor.worker import layouts
from auditor.worker.casting import FLOAT_DTYPES, INT_DTYPES


@pytest.fixture(scope="module", params=SUITES)
def suite(request):
    return request.param, build_suite(request.param)


def test_same_seed_same_values_other_seed_other_values():
    first, again, other = build_suite(seed=3), build_suite(seed=3), build_suite(seed=4)
    assert [c.id for c in first] == [c.id for c in again] == [c.id for c in other]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.values, b.values)
    assert any(not np.array_equal(a.values, b.values, equal_nan=True) for a, b in zip(first, other))


def test_ids_are_unique_and_values_of_the_source_types(suite):
    _, cases = suite
    assert len({c.id for c in cases}) == len(cases)
    assert {c.values.dtype.name for c in cases} == {"float32", "float64", "int64", "uint64"}
    assert all(c.dtypes == ("float64",) for c in cases if c.values.dtype == np.float64)


def _argmax_cases(cases):
    return [c for c in cases if c.sense == "max"]


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
    name, cases = suite
    ties = [p for c in cases if "ties" in c.tags and c.family == "float" and c.sense == "max"
            for p in _tied_places(c)]
    assert any(t[0] == 0 for _, t in ties) and any(t[-1] == n - 1 for n, t in ties)
    assert any(t[0] == n // 2 - 1 for n, t in ties)
    assert any(len(t) == n for n, t in ties)  # a whole row of equal values
    lengths = {n for n, t in ties if t[-1] - t[0] > n // 2}
    for power in (8, 16, 32, 64, 128, 256):
        assert {power - 1, power, power + 1} <= lengths
    assert 1025 in lengths and any(n > 100_000 for n in lengths)
    if name == "full":
        assert {n for m in range(8, 257, 8) for n in (m - 1, m, m + 1)} <= lengths
        assert {1023, 1024, 2047, 2048, 32768, 65535, 65536, 65537} <= lengths


def _unique_max_places(case):
    """Return {row length: positions of a unique maximum} over the rows of float `case`."""
    found = {}
    for row in _rows(case):
        mask = maximizers(row, 0) if len(row) and not np.isnan(row).any() else np.zeros(0, bool)
        if mask.sum() == 1:
            found.setdefault(len(row), set()).add(int(np.flatnonzero(mask)[0]))
    return found


def test_every_boundary_row_length_has_its_unique_maximum_at_each_boundary(suite):
    _, cases = suite
    places = {}
    for case in cases:
        if "boundary" in case.tags and case.family == "float" and case.sense == "max":
            for n, where in _unique_max_places(case).items():
                places.setdefault(n, set()).update(where)
    for n in (7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 4097):
        assert set(boundary_positions(n)) <= places[n], n
        assert {0, n - 1} <= places[n]
    assert {32767, 32768, 65535, 65536} <= places[65540]  # int16's and uint16's edges, chunks
    assert boundary_positions(17) == [0, 7, 8, 15, 16]  # first, lane edges, the tail, last


def test_winners_past_two_to_the_15_and_16_and_24_in_full(suite):
    name, cases = suite
    winners = {int(i) for c in cases if "large" in c.tags and c.sense == "max"
               for i in np.asarray(c.reference("float32")).reshape(-1)}
    assert {32767, 32768, 65535, 65536} <= winners and any(w > 65536 for w in winners)
    if name == "full":
        assert any(w > 2**24 for w in winners)


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


def test_every_layout_is_crossed_with_every_dim_and_keepdim_on_ranks_2_3_and_4(suite):
    name, cases = suite
    calls = {(c.values.ndim, c.layout, c.dim, c.keepdim) for c in _argmax_cases(cases)}
    for ndim in (2, 3):
        assert len(grid_layouts(ndim)) == len(layouts.FIXED) + {2: 0, 3: 4}[ndim]
        for layout in grid_layouts(ndim):
            for dim in grid_dims(ndim):
                assert {(ndim, layout, dim, False), (ndim, layout, dim, True)} <= calls
    assert grid_dims(4) == [None, 0, 1, 2, 3, -1, -2, -3, -4]
    for layout in grid_layouts(4):
        assert all(any((4, layout, dim, k) in calls for k in (False, True)) for dim in grid_dims(4))
        assert {k for (n, lay, _, k) in calls if n == 4 and lay == layout} == {False, True}
    grid = [c for c in _argmax_cases(cases) if c.id.startswith("grid")]
    dims = [c for c in _argmax_cases(cases) if c.id.startswith("dims-")]
    assert len(dims) == 14 and all(c.dtypes == () for c in dims)  # every dtype, in both suites
    if name == "full":
        assert all((4, lay, d, k) in calls for lay in grid_layouts(4) for d in grid_dims(4)
                   for k in (False, True))
        assert all(c.dtypes == () for c in grid)
    else:  # quick crosses the other layouts with dims in float32 and float64
        assert all(c.dtypes == ("float32", "float64") for c in grid)


def _first_in_memory(case):
    """Return the logical flat index of the first maximum in memory order, and the memory
    offset of the first maximum in logical order."""
    offsets = layouts.memory_offsets(case.layout, case.shape)
    mask = maximizers(case.values.reshape(-1), 0)
    first = int(np.flatnonzero(mask)[0])
    by_memory = int(np.flatnonzero(mask)[np.argmin(offsets[mask])])
    return by_memory, int(offsets[first]), first


@pytest.mark.parametrize("ndim", sorted(GRID_SHAPES))
def test_whole_input_maxima_lie_where_memory_and_logical_order_disagree(ndim):
    for case in build_suite("quick"):
        if case.sense != "max" or case.dim is not None or case.id.split("-")[0] not in (
                f"grid{ndim}", "dims"):
            continue
        if case.values.ndim != ndim:
            continue
        by_memory, offset, first = _first_in_memory(case)
        if case.layout in ("transposed", "reversed") or case.layout.startswith("permuted-"):
            assert by_memory != first, case.id  # the first maximum in memory is a later one
        if case.layout not in ("contiguous", "broadcast"):
            assert offset != first, case.id  # a memory offset is not the logical index


def test_float16_and_bfloat16_subnormals_of_their_own(suite):
    _, cases = suite
    values = np.concatenate([c.values.reshape(-1) for c in _argmax_cases(cases)
                             if c.values.dtype == np.float32 and c.values.size < 10**6])
    half = values[(values != 0) & (np.abs(values) < 2.0**-14)
                  & (values.astype(np.float16).astype(np.float32) == values)]
    brain = values[(values != 0) & (np.abs(values) < 2.0**-126)
                   & (values.view(np.uint32) & 0xFFFF == 0)]
    assert len(np.unique(half)) >= 3 and len(np.unique(brain)) >= 3


def test_float64_cases_hold_what_float32_cannot(suite):
    _, cases = suite
    wide = [c for c in _argmax_cases(cases) if c.values.dtype == np.float64]
    values = np.concatenate([c.values.reshape(-1) for c in wide])
    with np.errstate(over="ignore"):
        lost = values.astype(np.float32).astype(np.float64) != values
    assert lost.all() or lost.sum() > len(values) // 2
    assert ((values != 0) & (np.abs(values) < np.finfo(np.float64).tiny)).sum() >= 4
    for case in wide:  # float32 would turn ties-or-not into other answers
        assert case.applies("float64") and not case.applies("float32")
    flips = [c for c in wide if not np.array_equal(c.reference("float64"),
                                                   _reference_as_float32(c))]
    assert flips


def _reference_as_float32(case):
    from auditor.oracle import reference_argmax

    with np.errstate(over="ignore"):
        return reference_argmax(case.values.astype(np.float32), case.dim, case.keepdim)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_every_integer_type_meets_ties_its_extremes_and_equal_rows(dtype):
    cases = [c for c in build_suite("quick") if c.applies(dtype, "max")]
    assert cases and all(c.family == "int" for c in cases)
    seen = np.concatenate([c.seen(dtype).reshape(-1) for c in cases])
    if dtype == "bool":
        assert set(seen.tolist()) == {False, True}
    else:
        info = np.iinfo(dtype)
        assert info.max in seen and info.min in seen
    rows = [row for c in cases for row in _rows_of(c.seen(dtype), c)]
    assert any(len(np.unique(r)) == 1 for r in rows)  # all equal
    assert any(maximizers(r, 0).sum() >= 2 and len(np.unique(r)) > 1 for r in rows)  # ties


def _rows_of(values, case):
    values = values.reshape(-1) if case.dim is None else np.moveaxis(values, case.axis, -1)
    return values.reshape(-1, values.shape[-1])


def test_integers_past_two_to_the_53_are_compared_as_integers():
    case = next(c for c in build_suite("quick") if c.id == "int-rows")
    assert case.reference("int64")[10] == 1  # 2**53 + 4 beats 2**53 + 3, equal in float64
    assert case.reference("int64", "min")[10] == 2


@pytest.mark.parametrize("name", SUITES)
def test_every_argmax_case_has_its_mirror_for_argmin(name):
    cases = build_suite(name)
    by_id = {c.id: c for c in cases}
    originals = _argmax_cases(cases)
    assert len(cases) == 2 * len(originals)
    for case in originals:
        mirror = by_id[case.id + "-min"]
        assert mirror.sense == "min" and not mirror.applies("float32", "max")
        if case.values.size > 10**6:
            continue
        # Inverting integers mirrors the signed types exactly (~ maps each one's range onto
        # itself); an unsigned type saturates the inverted values to its zero: tied minima.
        for dtype in (FLOAT_DTYPES if case.family == "float" else ("int8", "int16", "int32", "int64")):
            if case.must_raise or not case.applies(dtype):
                continue
            if dtype in ("float16", "bfloat16") and case.values.size > 10**5:
                continue
            np.testing.assert_array_equal(mirror.reference(dtype, "min"), case.reference(dtype))


def test_argmin_mirrors_hold_minima_of_their_own():
    cases = {c.id: c for c in build_suite("quick")}
    subnormal = cases["subnormal-min"].values
    assert ((subnormal < 0) & (subnormal > -np.finfo(np.float32).tiny)).any()  # negative subnormals
    assert np.isneginf(cases["inf-rows-min"].values).any()
    row = cases["ties-short-min"].values[0]
    assert (row == row.min()).sum() >= 2  # tied minima


def test_select_matches_ids_and_tags():
    cases = build_suite()
    assert {c.id for c in select(cases, ["nan"])} == {c.id for c in cases if "nan" in c.tags}
    assert [c.id for c in select(cases, ["ties-far-12?"])] == [
        "ties-far-127", "ties-far-128", "ties-far-129",
        "ties-far-127-min", "ties-far-128-min", "ties-far-129-min"]  # the mirrors by their source
    assert [c.id for c in select(cases, ["ties-short-min"])] == ["ties-short-min"]
    assert select(cases, []) == cases


@pytest.mark.parametrize("kwargs, message", [
    ({"values": np.zeros(3, np.float32), "dim": 1}, "out of range"),
    ({"values": np.float32(1).reshape(()), "dim": 0}, "0-d"),
    ({"values": np.eye(2, dtype=np.float32), "dim": 0, "layout": "broadcast"}, "broadcast"),
])
def test_a_case_refuses_what_no_framework_could_be_asked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Case("bad", **kwargs)
