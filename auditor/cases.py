"""The built-in case suite, generated deterministically from a seed.

Each builder returns cases whose rows hold one adversarial pattern each; many patterns share one
array so that a framework compiles and dispatches few distinct shapes. `quick` takes seconds,
`full` adds longer rows and larger inputs.
"""
import fnmatch

import numpy as np

from .model import Case

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


def tie_cases(rng, lengths):
    cases = [Case("ties-short", _tie_rows(rng, 8), dim=1, tags=("ties",),
                  note="maximum tied at the first, middle and last positions; a row of equal values")]
    for n in lengths:
        cases.append(Case(f"ties-far-{n}", _tie_rows(rng, n), dim=-1, tags=("ties", "long"),
                          note=f"rows of {n}: ties far apart, across vector and thread chunks"))
    flat = _noise(rng, (131075,))
    flat[[7, 65543, 131074]] = F32(9.0)
    cases.append(Case("ties-flat-131075", flat, dim=None, tags=("ties", "long"),
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
        Case("nan-long", long, dim=1, tags=("nan", "inf", "long"),
             note="a late NaN in long rows, where vectorised reductions meet it"),
        Case("nan-flat", whole, dim=None, tags=("nan", "long"),
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
    return [
        Case("signed-zero", zeros, dim=1, tags=("signed-zero", "ties"),
             note="-0.0 and +0.0 are equal: the first of them wins"),
        Case("subnormal", sub, dim=1, tags=("subnormal",),
             note="maxima among subnormals, where flush-to-zero makes ties"),
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
        cases.append(Case(f"large-index-{n}", values, dim=0, tags=("large",),
                          note=f"the maximum at {n - 2}: an index squeezed through a narrow "
                               "integer or float type comes back changed"))
    return cases


def dim_cases(rng):
    values = (rng.standard_normal((3, 4, 5)) * 2).astype(F32)
    values[1, 2, [0, 4]] = F32(9.0)
    values[2, [0, 3], 1] = F32(9.0)
    cases = []
    for dim in (0, 1, 2, -1, None):
        for keepdim in (False, True):
            label = "none" if dim is None else str(dim)
            cases.append(Case(f"dims-{label}{'-keep' if keepdim else ''}", values, dim=dim,
                              keepdim=keepdim, tags=("dims", "ties"),
                              note="a 3-d input over every dim, keepdim on and off"))
    return cases


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


def build_suite(name="quick", seed=0):
    """Return the cases of suite `name` (`quick` or `full`) generated from `seed`."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}")
    rng = np.random.default_rng(seed)
    full = name == "full"
    lengths = [15, 16, 17, 127, 128, 129, 1023, 1024, 1025, 4097]
    if full:
        lengths += [31, 32, 33, 63, 64, 65, 255, 256, 257, 511, 512, 513, 2047, 2048, 2049,
                    4095, 4096, 8191, 8192, 8193, 16384, 32768, 65535, 65536, 65537]
    shapes = [(64, 10), (32, 1000), (4, 32007)]
    if full:
        shapes += [(256, 1000), (8, 50257), (2, 151936)]
    large = [70001] + ([2**24 + 5] if full else [])
    cases = (tie_cases(rng, lengths) + nan_cases(rng) + inf_cases(rng)
             + zero_and_subnormal_cases(rng) + near_tie_cases(rng, rows=256 if full else 32)
             + logits_cases(rng, shapes) + large_index_cases(rng, large) + dim_cases(rng)
             + layout_cases(rng) + edge_cases())
    return cases


def select(cases, patterns):
    """Return the cases whose id or a tag matches one of the glob `patterns` (all if none)."""
    if not patterns:
        return cases
    return [c for c in cases if any(fnmatch.fnmatchcase(name, p) for p in patterns
                                    for name in (c.id, *c.tags))]
