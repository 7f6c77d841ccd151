"""The built-in case suite, generated deterministically from a seed.

Each builder returns cases whose rows hold one adversarial pattern each; many patterns share one
array so that a framework compiles and dispatches few distinct shapes. `quick` takes seconds,
`full` adds longer rows and larger inputs.

What the suite covers (README: "What the suite covers"): ties, NaN, infinities, signed zeros and
subnormals (float16's and bfloat16's own too); rows of every length class around multiples of 8 and
thread chunks with the unique maximum at the first, last and boundary positions; winners past 2**15
and 2**16 (2**24 in full); every layout crossed with every dim (None and negative included) and
keepdim on rank 2, 3 and 4, with the maxima where memory order and logical order disagree; values
only float64 holds; integer patterns for every integer dtype and bool. Every case is for argmax and
its twins (sense "max"); `mirrored` adds its mirror for argmin (sense "min"): the values negated
(integers inverted), so tied maxima become tied minima, +inf -inf, subnormals negative subnormals.
"""
import fnmatch

import numpy as np

from .model import Case
from .oracle import oriented
from .worker import layouts

SUITES = ("quick", "full")
F32 = np.float32
NAN, INF = F32("nan"), F32("inf")


def _noise(rng, shape, low=-4.0, high=-1.0):
    """Return values strictly below every maximum the builders plant (they plant >= 0)."""
    return rng.uniform(low, high, size=shape).astype(F32)


def _tie_rows(rng, length):
    """Return rows of `length` with the maximum tied at first/middle/last and far-apart places."""
    n = length
    patterns = [(0, 1), (0, n - 1), (n // 2 - 1, n // 2), (n // 2, n - 1), (n - 2, n - 1),
                (1, n // 3, 2 * n // 3), tuple(range(0, n, 7)), tuple(range(n - 1, -1, -5))]
    rows = _noise(rng, (len(patterns) + 1, n))
    for row, places in zip(rows, patterns):
        row[list(places)] = F32(7.5)
    rows[-1] = F32(2.25)  # a whole row of equal values
    return rows


#: Widths of vector lanes and thread chunks whose edges a kernel can get wrong.
CHUNKS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


def boundary_positions(n):
    """Return the places in a row of `n` where chunks meet: first, last, each side of every
    chunk edge below `n`, and each side of where a vector kernel's tail of fewer than 8 starts."""
    places = {0, n - 1}
    for width in CHUNKS:
        if width < n:
            places.update((width - 1, width))
    tail = n - n % 8
    if 0 < tail < n:
        places.update((tail - 1, tail))
    return sorted(places)


def _boundary_rows(rng, n):
    """Return rows of `n` with the unique maximum at each of `boundary_positions(n)`."""
    places = boundary_positions(n)
    rows = _noise(rng, (len(places), n))
    rows[np.arange(len(places)), places] = F32(7.5)
    return rows


def tie_cases(rng, lengths):
    cases = [Case("ties-short", _tie_rows(rng, 8), dim=1, tags=("ties",),
                  note="maximum tied at the first, middle and last positions; a row of equal values")]
    for n in lengths:
        rows = np.concatenate([_tie_rows(rng, n), _boundary_rows(rng, n)])
        cases.append(Case(f"ties-far-{n}", rows, dim=-1,
                          tags=("ties", "long", "boundary") + (("race",) if n >= 1024 else ()),
                          note=f"rows of {n}: ties far apart, across vector and thread chunks; the "
                               "unique maximum at the first, last and chunk-edge positions"))
    flat = _noise(rng, (131075,))
    flat[[7, 65543, 131074]] = F32(9.0)
    cases.append(Case("ties-flat-131075", flat, dim=None, tags=("ties", "long", "race"),
                      note="one long input reduced whole (dim=None): ties across parallel chunks"))
    columns = _tie_rows(rng, 33).T.copy()
    cases.append(Case("ties-columns", columns, dim=0, tags=("ties",),
                      note="ties reduced along dim 0 (strided reduction)"))
    return cases


def nan_cases(rng):
    rows = _noise(rng, (10, 12))
    rows[0, 0] = NAN                       # first
    rows[1, 11] = NAN                      # last
    rows[2, [3, 8]] = NAN                  # several
    rows[3, [4, 5]] = [INF, NAN]           # NaN just after +inf
    rows[4, [4, 5]] = [NAN, INF]           # NaN just before +inf
    rows[5, :] = NAN                       # all NaN
    rows[6, [2, 6, 9]] = [F32(5), NAN, F32(5)]  # NaN among tied maxima
    rows[7, 6] = -NAN                      # NaN with the sign bit set
    rows[8, [1, 10]] = [F32(3), NAN]       # NaN after the maximum
    rows[9, [0, 11]] = [NAN, NAN]
    long = _noise(rng, (3, 4099))
    long[0, 4000] = NAN
    long[1, [5, 4098]] = [INF, NAN]
    long[2, [2048, 2049]] = NAN
    whole = _noise(rng, (70001,))
    whole[[12, 66000]] = [F32(9.0), NAN]
    return [
        Case("nan-rows", rows, dim=1, tags=("nan", "inf"),
             note="NaN first, last, several, beside +inf, all NaN, among ties, negative NaN"),
        Case("nan-long", long, dim=1, tags=("nan", "inf", "long", "race"),
             note="a late NaN in long rows, where vectorised reductions meet it"),
        Case("nan-flat", whole, dim=None, tags=("nan", "long", "race"),
             note="a NaN after the maximum in one long input reduced whole"),
    ]


def inf_cases(rng):
    rows = _noise(rng, (6, 9))
    rows[0, 4] = INF
    rows[1, [2, 7]] = INF                  # tied +inf
    rows[2, :] = -INF                      # all -inf
    rows[3, :] = -INF
    rows[3, 5] = F32(-1e30)                # one finite value among -inf
    rows[4, [0, 8]] = [-INF, F32(-3.0)]
    rows[5, [1, 3]] = [F32(3.0e38), INF]   # huge finite before +inf
    return [Case("inf-rows", rows, dim=1, tags=("inf", "ties"),
                 note="+inf, tied +inf, all -inf, a finite value among -inf")]


def zero_and_subnormal_cases(rng):
    zeros = _noise(rng, (4, 6))
    zeros[0, [1, 4]] = [F32(-0.0), F32(0.0)]
    zeros[1, [1, 4]] = [F32(0.0), F32(-0.0)]
    zeros[2, :] = F32(-0.0)
    zeros[3, [0, 2, 5]] = [F32(-0.0), F32(-0.0), F32(0.0)]
    tiny = np.float32(np.finfo(F32).smallest_subnormal)
    sub = _noise(rng, (5, 7), low=-1e-30, high=-1e-35)
    sub[0, [2, 5]] = [tiny, tiny * 2]                    # the larger subnormal wins
    sub[1, [1, 3]] = [tiny * 3, tiny * 3]                # tied subnormals
    sub[2, [0, 6]] = [F32(0.0), tiny]                    # a subnormal above zero
    sub[3, [2, 4]] = [F32(3e-8), F32(5e-8)]              # float16 subnormals
    sub[4, [1, 5]] = [F32(1e-39), F32(1.1e-39)]          # bfloat16 subnormals
    half, brain = F32(2.0**-24), F32(2.0**-133)  # float16's, bfloat16's smallest subnormal
    low = _noise(rng, (6, 8), low=-1e-30, high=-1e-35)
    low[0, [2, 5]] = [half, 2 * half]                    # float16 subnormals
    low[1, [1, 6]] = [3 * half, 3 * half]                # tied float16 subnormals
    low[2, [0, 4]] = [F32(0.0), half]                    # float16's smallest above zero
    low[3, [3, 6]] = [1023 * half, 1024 * half]          # its largest subnormal, smallest normal
    low[4, [3, 6]] = [brain, 2 * brain]                  # bfloat16 subnormals
    low[5, [2, 7]] = [5 * brain, 5 * brain]              # tied bfloat16 subnormals
    return [
        Case("signed-zero", zeros, dim=1, tags=("signed-zero", "ties"),
             note="-0.0 and +0.0 are equal: the first of them wins"),
        Case("subnormal", sub, dim=1, tags=("subnormal",),
             note="maxima among subnormals, where flush-to-zero makes ties"),
        Case("subnormal-low", low, dim=1, tags=("subnormal", "ties"),
             note="float16's and bfloat16's own subnormals (exact multiples of 2**-24 and "
                  "2**-133), tied and beside their smallest normal"),
    ]


def near_tie_cases(rng, rows=32, classes=24):
    """Return logits whose top two differ by less than (or about) a float16/bfloat16 spacing."""
    values = _noise(rng, (rows, classes))
    top = rng.uniform(0.5, 8.0, size=rows).astype(F32)
    for i in range(rows):
        first, second = rng.choice(classes, size=2, replace=False)
        # Gaps from a few float32 ulps up to several bfloat16 spacings, so some flips and some don't.
        gap = F32(top[i] * 2.0 ** -rng.uniform(4, 22))
        values[i, first], values[i, second] = top[i], top[i] + gap
    overflow = _noise(rng, (2, 6))
    overflow[0, [1, 4]] = [F32(65520.0), F32(70000.0)]   # both round to +inf in float16
    overflow[1, [2, 3]] = [F32(1.0 + 2**-12), F32(1.0 + 2**-11)]
    return [
        Case("near-tie", values, dim=-1, tags=("near-tie",),
             note="top-2 margins from float32 ulps to several bfloat16 spacings"),
        Case("near-tie-overflow", overflow, dim=1, tags=("near-tie",),
             note="values that float16 rounds to the same number or to +inf"),
    ]


def logits_cases(rng, shapes):
    cases = []
    for batch, classes in shapes:
        values = (rng.standard_normal((batch, classes)) * 3).astype(F32)
        cases.append(Case(f"logits-{batch}x{classes}", values, dim=-1, tags=("random",),
                          note="classifier-like random logits (batch x classes)"))
    return cases


def large_index_cases(rng, lengths):
    cases = []
    for n in lengths:
        values = _noise(rng, (n,))
        values[[n // 3, n - 2]] = [F32(5.0), F32(6.0)]
        cases.append(Case(f"large-index-{n}", values, dim=0, tags=("large", "race"),
                          note=f"the maximum at {n - 2}: an index squeezed through a narrow "
                               "integer or float type comes back changed"))
    return cases


def winner_cases(rng):
    """Return rows whose unique maximum lies just either side of 2**15 and 2**16 (where an index
    squeezed through int16 or uint16 changes, and where thread chunks of 32768 meet), and a
    whole-input reduction of a 2-d array whose winner lies past 2**16."""
    n = 65540
    places = [32767, 32768, 65535, 65536, n - 1]
    rows = _noise(rng, (len(places), n))
    rows[np.arange(len(places)), places] = F32(7.5)
    whole = _noise(rng, (3, 21847))
    whole.reshape(-1)[65537] = F32(7.5)
    return [
        Case(f"winners-{n}", rows, dim=1, tags=("large", "boundary", "race"),
             note="the unique maximum at 2**15 - 1, 2**15, 2**16 - 1, 2**16 and last"),
        Case("winners-whole", whole, dim=None, tags=("large", "race"),
             note="dim=None over a 3 x 21847 input: the winner at flat index 65537 (past 2**16)"),
    ]


def layout_cases(rng):
    rows = _tie_rows(rng, 33)
    broadcast = np.broadcast_to(_tie_rows(rng, 17)[4:5], (6, 17)).copy()
    return [
        Case("layout-transposed", rows, dim=1, layout="transposed", tags=("noncontiguous", "ties"),
             note="a transposed (column-major) view"),
        Case("layout-transposed-dim0", rows.T.copy(), dim=0, layout="transposed",
             tags=("noncontiguous", "ties"), note="a transposed view reduced along dim 0"),
        Case("layout-strided", rows, dim=1, layout="strided", tags=("noncontiguous", "ties"),
             note="a step-2 slice of a larger array"),
        Case("layout-broadcast", broadcast, dim=1, layout="broadcast",
             tags=("noncontiguous", "ties"), note="one row broadcast to six (stride 0)"),
        Case("layout-broadcast-dim0", broadcast, dim=0, layout="broadcast",
             tags=("noncontiguous", "ties"),
             note="reduced along the broadcast (stride-0) dim: every value ties"),
    ]


def edge_cases():
    return [
        Case("scalar", np.array(3.5, dtype=F32), dim=None, tags=("0-d",), note="a 0-d input"),
        Case("scalar-keep", np.array(3.5, dtype=F32), dim=None, keepdim=True, tags=("0-d",),
             note="a 0-d input with keepdim"),
        Case("empty", np.zeros((0,), dtype=F32), dim=None, tags=("empty",),
             note="an empty input: argmax must raise"),
        Case("empty-dim", np.zeros((3, 0), dtype=F32), dim=1, tags=("empty",),
             note="a reduction over an empty dim: argmax must raise"),
        Case("empty-batch", np.zeros((0, 4), dtype=F32), dim=1, tags=("empty",),
             note="an empty batch of non-empty rows: an empty result, no error"),
    ]


#: The logical shape of the layout grid's cases of each rank (rank 3 is that of the dims cases).
GRID_SHAPES = {2: (9, 8), 3: (3, 4, 5), 4: (2, 3, 4, 5)}
#: Of rank 4's 24 axis orders, those the grid takes (with every other layout).
RANK4_ORDERS = ((2, 0, 3, 1), (1, 3, 2, 0))


def grid_layouts(ndim):
    """Return the layouts the grid crosses with every dim on rank `ndim`."""
    if ndim < 4:
        return layouts.all_layouts(ndim)
    return list(layouts.FIXED) + [layouts.permuted(o) for o in RANK4_ORDERS]


def grid_dims(ndim):
    """Return every dim of rank `ndim`: None, each axis, and each axis counted from the end."""
    return [None, *range(ndim), *range(-1, -ndim - 1, -1)]


def _dim_label(dim):
    return "none" if dim is None else f"m{-dim}" if dim < 0 else str(dim)


def _grid_id(ndim, layout, dim):
    """Name a grid case: `dims-1`, `dims--1`, `dims-none` for the contiguous rank-3 ones (the
    suite's dims cases), `grid2-transposed-m1` (dim=-1) for the others."""
    if ndim == 3 and layout == "contiguous":
        return f"dims-{'none' if dim is None else dim}"
    return f"grid{ndim}-{layout}-{_dim_label(dim)}"


def _disagreeing_pair(offsets, rng):
    """Return flat positions a < b for a tied maximum: where possible b comes first in memory,
    and neither memory offset equals a's logical index (so an answer that is a memory offset,
    or the first maximum in memory order, is wrong)."""
    a, b = np.triu_indices(len(offsets), k=1)
    good = [(offsets[a] > offsets[b]) & (offsets[a] != a) & (offsets[b] != a), offsets[a] != a,
            np.ones_like(a, dtype=bool)]
    chosen = next(mask for mask in good if mask.any())
    pick = rng.choice(np.flatnonzero(chosen))
    return int(a[pick]), int(b[pick])


def _plant_rows(rng, values, axis):
    """Plant in each row along `axis` of `values` (in place) a unique maximum at the first, the
    last or a random place, or a maximum tied at two places, in turn."""
    rows = np.moveaxis(values, axis, -1).reshape(-1, values.shape[axis])
    n = rows.shape[1]
    for k, row in enumerate(rows):
        pattern = k % 4
        if pattern == 2 and n > 1:
            row[np.sort(rng.choice(n, size=2, replace=False))] = F32(7.5)
        else:
            row[{0: 0, 1: n - 1}.get(pattern, int(rng.integers(n)))] = F32(7.5)
    np.moveaxis(values, axis, -1)[...] = rows.reshape(np.moveaxis(values, axis, -1).shape)


def _grid_values(rng, shape, layout, dim):
    """Return values of `shape` for `layout` reduced over `dim`: distinct noise and planted maxima
    (rows: see `_plant_rows`; dim=None: a tie whose memory order disagrees with its logical order).
    A broadcast layout repeats its first entry along axis 0."""
    broadcast = layout == "broadcast"
    slab = _noise(rng, (1,) + shape[1:] if broadcast else shape)
    if dim is None:
        offsets = layouts.memory_offsets(layout, shape)[: slab.size]
        slab.reshape(-1)[list(_disagreeing_pair(offsets, rng))] = F32(7.5)
    elif not (broadcast and dim % len(shape) == 0):
        _plant_rows(rng, slab, dim % len(shape))
    return np.broadcast_to(slab, shape).copy() if broadcast else slab


#: The dtypes the quick suite crosses layouts with dims in (beyond the contiguous rank-3 `dims-*`
#: cases, which run in every dtype): a view's strides are the same whatever its element type, and
#: each dtype's own kernels meet every row length; the full suite crosses them in every dtype.
GRID_DTYPES = ("float32", "float64")


def layout_grid_cases(rng, full):
    """Return every grid layout crossed with every dim and keepdim on ranks 2, 3 and 4 (rank 4:
    keepdim alternating over the dims in quick, both in full); in quick, all but the `dims-*`
    cases in GRID_DTYPES only."""
    cases = []
    for ndim, shape in GRID_SHAPES.items():
        for layout in grid_layouts(ndim):
            dtypes = () if full or (ndim == 3 and layout == "contiguous") else GRID_DTYPES
            for i, dim in enumerate(grid_dims(ndim)):
                values = _grid_values(rng, shape, layout, dim)
                keeps = (False, True) if ndim < 4 or full else (i % 2 == 1,)
                for keepdim in keeps:
                    cases.append(Case(
                        _grid_id(ndim, layout, dim) + ("-keep" if keepdim else ""),
                        values, dim=dim, keepdim=keepdim, layout=layout, dtypes=dtypes,
                        tags=("dims", "ties") + (() if layout == "contiguous" else (
                            "noncontiguous",)),
                        note=f"a {layout} view of rank {ndim} over dim={dim}: maxima where memory "
                             "order and logical order disagree"))
    return cases


def float64_cases(rng):
    """Return values only float64 holds: its own subnormals, ties and near-ties below float32's
    resolution, and numbers past float32's range (run on float64 targets only)."""
    tiny = np.finfo(np.float64).smallest_subnormal
    normal = np.finfo(np.float64).tiny
    sub = rng.uniform(-1e-300, -1e-305, size=(5, 7))
    sub[0, [2, 5]] = [tiny, 2 * tiny]                    # the larger subnormal wins
    sub[1, [1, 3]] = [3 * tiny, 3 * tiny]                # tied subnormals
    sub[2, [0, 6]] = [0.0, tiny]                         # a subnormal above zero
    sub[3, [2, 4]] = [normal - tiny, normal]             # largest subnormal, smallest normal
    sub[4, [1, 5]] = [1e-310, 1.0000001e-310]
    one, ulp = 1.0, 2.0**-52
    near = rng.uniform(-4.0, -1.0, size=(6, 9))
    near[0, [3, 7]] = [one + ulp, one + 2 * ulp]         # one float64 ulp apart
    near[1, [2, 6]] = [one + 2.0**-40, one + 2.0**-40]   # tied below float32's resolution
    near[2, [1, 8]] = [one + 2.0**-30, one + 2.0**-29]   # equal once rounded to float32
    near[3, [0, 4]] = [1e300, 2e300]                     # past float32's range
    near[4, [5, 6]] = [3.5e38, 3.6e38]                   # both +inf in float32
    near[5, [2, 3]] = [-1e-320, -2e-320]                 # negative subnormals
    only = ("float64",)
    return [
        Case("f64-subnormal", sub, dim=1, tags=("subnormal", "float64"), dtypes=only,
             note="float64's own subnormals, tied and beside its smallest normal"),
        Case("f64-near-tie", near, dim=1, tags=("near-tie", "ties", "float64"), dtypes=only,
             note="ties and near-ties below float32's resolution; numbers past float32's range"),
    ]


def _ints(rows):
    return np.array(rows, dtype=np.int64)


def int_cases(rng):
    """Return integer patterns for every integer dtype and bool (saturated into each type's range,
    so each type meets its own extremes): ties, extremes, all-equal rows, signs, vector tails."""
    top, bottom = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    rows = _ints([
        [5, 1, 2, 3, 0, 4, 2, 1, 3, 0, 4, 5],              # tied at first and last
        [3] * 12,                                          # all equal
        [0, 1, 2, 3, top, 5, 6, 7, 8, top, 9, 1],          # each type's maximum, tied
        [100, 127, 128, 200, 255, 256, 300, -1, -128, -129, 32767, 32768],  # ties by saturation
        [-1, 5, 3, -7, 2, -128, 4, -3, 5, 1, 0, -2],       # signed: -1 is no large number
        [-9, -3, -3, -100, -50, -4, -5, -6, -7, -8, -10, -11],  # all negative, tied
        [bottom, bottom, -5, bottom, bottom, bottom, bottom, bottom, bottom, bottom, bottom, 0],
        [bottom] * 12,                                     # each type's minimum, all equal
        [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0],              # bool: the first True
        [0, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 7, 1, 0, 3, 2],  # 16/32-bit edges
        [2**53 + 3, 2**53 + 4, 0, 2**53 + 1, 0, 0, 1, 2, 3, 4, 5, 6],  # equal once in float64
        [top - 1, top, top, 7, 0, 1, 2, 3, 4, 5, 6, 8],    # int64's maximum, tied
        [bottom + 1, bottom, 5, -5, 0, 1, 2, 3, 4, 5, 6, 7],
    ])
    long = rng.integers(-100, 100, size=(8, 130))
    places = [0, 63, 64, 127, 128, 129]                    # 64-lane int8 vectors and their tail
    long[np.arange(len(places)), places] = 120
    long[6, [5, 129]] = 120                                # tied across vector chunks
    long[7] = 42                                           # all equal
    flat = rng.integers(-100, 100, size=4099)
    flat[[1000, 4000]] = 120
    unsigned = np.array([[2**63 - 1, 2**63, 2**64 - 1, 2**64 - 2, 5],
                         [2**64 - 1, 3, 2**64 - 1, 0, 1]], dtype=np.uint64)
    note = "saturated to each integer type's range (bool: positive is True)"
    return [
        Case("int-rows", rows, dim=1, tags=("int", "ties"),
             note=f"ties, extremes, all-equal rows, signs, int64 values past 2**53, {note}"),
        Case("int-long", long, dim=-1, tags=("int", "ties", "boundary"),
             note=f"rows of 130: the maximum at vector-chunk edges and the tail, {note}"),
        Case("int-flat", flat, dim=None, tags=("int", "ties", "long", "race"),
             note=f"one input of 4099 reduced whole, tied far apart, {note}"),
        Case("int-uint64", unsigned, dim=1, tags=("int", "ties"), dtypes=("uint64",),
             note="uint64 values past int64's range (uint64 targets only)"),
    ]


def copy_case(case, **changes):
    """Return a new Case like `case` with `changes` (a fresh cache)."""
    fields = dict(id=case.id, values=case.values, dim=case.dim, keepdim=case.keepdim,
                  layout=case.layout, tags=case.tags, note=case.note, sense=case.sense,
                  dtypes=case.dtypes, origin=case.origin)
    return Case(**{**fields, **changes})


MIRROR = "-min"


def mirrored(cases):
    """Return each case for argmax and its twins (sense "max") followed by all their mirrors for
    argmin (sense "min", id + "-min"): the values negated, integers inverted (`oracle.oriented`),
    so every argmax pattern is met by argmin as its own (tied minima, -inf, negative subnormals,
    NaN among minima)."""
    maxima = [copy_case(c, sense="max") for c in cases]
    minima = [copy_case(c, id=c.id + MIRROR, values=oriented(c.values, "min"), sense="min",
                        note=f"mirrored for argmin: {c.note}") for c in cases]
    return maxima + minima


def build_suite(name="quick", seed=0):
    """Return the cases of suite `name` (`quick` or `full`) generated from `seed`."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}")
    rng = np.random.default_rng(seed)
    full = name == "full"
    lengths = [7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257,
               1025, 4097]
    if full:  # every multiple of 8 up to 256 and one either side, then thread-chunk sizes
        lengths += [n for m in range(24, 256, 8) if m & (m - 1) for n in (m - 1, m, m + 1)]
        lengths += [511, 512, 513, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 8191, 8192, 8193, 16384,
                    32768, 65535, 65536, 65537]
    shapes = [(64, 10), (32, 1000), (4, 32007)]
    if full:
        shapes += [(256, 1000), (8, 50257), (2, 151936)]
    large = [70001] + ([2**24 + 5] if full else [])
    cases = (tie_cases(rng, lengths) + nan_cases(rng) + inf_cases(rng)
             + zero_and_subnormal_cases(rng) + near_tie_cases(rng, rows=256 if full else 32)
             + logits_cases(rng, shapes) + large_index_cases(rng, large) + winner_cases(rng)
             + layout_cases(rng) + layout_grid_cases(rng, full)
             + float64_cases(rng) + int_cases(rng) + edge_cases())
    return mirrored(cases)


def select(cases, patterns):
    """Return the cases whose id or a tag matches one of the glob `patterns` (all if none); a
    mirror for argmin also matches by the id of the case it mirrors."""
    if not patterns:
        return cases
    return [c for c in cases if any(fnmatch.fnmatchcase(name, p) for p in patterns
                                    for name in _names(c))]


def _names(case):
    mirror = case.sense == "min" and case.id.endswith(MIRROR)
    return (case.id, *([case.id.removesuffix(MIRROR)] if mirror else []), *case.tags)
