"""Hypothesis strategies for `audit fuzz`: shapes, layouts, dims and adversarial values.

Every choice is drawn on its own, simplest first, so hypothesis can shrink a failing example
towards fewer elements, plainer values and a plainer layout:

- **rank** 1, 2, 3, 4 or 0 (a scalar); **sizes** per axis: 1 to 4, the boundary sizes where
  kernels change path (multiples of 8 up to 256 and one either side), thread-chunk sizes up to
  65537 (and 2**24 + 1), or 0 (an empty input, which must raise), all within `max_elements`;
- **layout**: contiguous, transposed, every axis permutation, a step-2 slice (`strided`), step -1
  (`reversed`), a view starting inside a larger buffer (`offset`, `window`) and a broadcast with
  stride 0 (`broadcast`): the layouts of `auditor/worker/layouts.py`, which the workers build with
  each framework's own view operations;
- **dim**: None, every axis, every axis counted from the end; **keepdim** on or off;
- **values**: a background (all equal, distinct noise, a few small integers, logit-like normals)
  and up to four plants, each a value at positions of every row or of one row: tied at 1, 2, 3,
  many or all positions (first, last, vector and thread chunk edges, the tail, 2**7, 2**8,
  2**15, 2**16, 2**24 where the row is long enough, or anywhere), or a near-tie (a value and its
  neighbour one spacing of float16, bfloat16, float32 or float64 apart). Float plants: NaN of both
  signs and other payloads, +-inf, +-0, the subnormals of float16, bfloat16, float32 and (in a
  float64 source) float64, values near each dtype's overflow, integer-valued floats; a float64
  source (where a float64 target is audited) holds ties and near-ties below float32's resolution.
  Integer plants: each type's extremes and one past them (127, 128, 255, 256, 32767, ...), -1,
  values past 2**53;
- **orientation**: where an argmin is audited, the values are mirrored half the time
  (`oracle.oriented`), so argmin meets the planted patterns as its own.

A `Space` says what the audited targets need (families, float64, argmin, the element budget, and a
bounded pool of call signatures where targets compile per shape).
"""
import functools
import hashlib
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from .cases import boundary_positions
from .model import Case
from .options import MAX_ELEMENTS
from .oracle import oriented
from .worker import layouts

#: Axis sizes where kernels change path: multiples of 8 up to 256 and one either side.
MID_SIZES = (5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257)
#: Thread-chunk sizes and sizes whose last index lies past a narrow index type.
LARGE_SIZES = (511, 512, 513, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097, 8191, 8192,
               8193, 16384, 32767, 32768, 32769, 65535, 65536, 65537, 2**24 + 1)
#: Positions past where an index squeezed through a narrow type changes.
WINNERS = (2**7, 2**8, 2**15, 2**16, 2**24)

F16_SUB, BF16_SUB, F32_SUB = 2.0**-24, 2.0**-133, 2.0**-149
F64_SUB = float(np.finfo(np.float64).smallest_subnormal)
F64_NORMAL = float(np.finfo(np.float64).tiny)
#: Float32 NaNs: the quiet NaN, its negative, and other payloads (signalling ones quieted by
#: float16/bfloat16 conversion, which keeps their sign).
NAN_BITS = (0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7FFFFFFF, 0xFFC12345, 0x7F800001)
NANS = tuple(float(np.array(bits, dtype=np.uint32).view(np.float32)) for bits in NAN_BITS)


def _signed(values):
    return tuple(values) + tuple(-v for v in values if v)


#: Float plants by kind, the plainest kind and value first (a kind is drawn, then a value of it,
#: so each kind comes up often whatever its size).
FLOAT_KINDS = (
    ("plain", _signed((7.5, 1.0, 3.0, 2.0, 5.0, 8.0, 0.5, 1e30, 2.0**24, 2.0**24 + 2))),
    ("zero", (0.0, -0.0)),
    ("inf", (np.inf, -np.inf)),
    ("nan", NANS),
    ("subnormal", _signed((F16_SUB, 3 * F16_SUB, 1023 * F16_SUB, 2.0**-14,  # float16's
                           BF16_SUB, 5 * BF16_SUB, 2.0**-126 - BF16_SUB,      # bfloat16's
                           F32_SUB, 2 * F32_SUB, 2.0**-126))),                # float32's
    ("overflow", _signed((65504.0, 65519.0, 65520.0, 3.3895314e38, 3.4028235e38))),
)
#: Values only float64 holds (a float64 source): its subnormals, ties below float32's
#: resolution, numbers past float32's range.
FLOAT64_KINDS = (
    ("float64", _signed((F64_SUB, 2 * F64_SUB, F64_NORMAL - F64_SUB, F64_NORMAL, 1.0 + 2.0**-52,
                         1.0 + 2.0**-40, 2.0**53 + 2, 1e300, 1.7976931348623157e308, 3.5e38))),
)
FLOAT64_VALUES = FLOAT64_KINDS[0][1]
INT_KINDS = (
    ("plain", (5, 1, 0, -1, 2, 3, 7, -5)),
    ("edge", (127, 128, 255, 256, -128, -129, 32767, 32768, 65535, 65536, -32769, 2**31 - 1,
              2**31, 2**32 - 1, 2**32, -2**31)),
    ("huge", (2**53 + 1, 2**53 + 2, 2**63 - 1, -2**63, 2**62)),
)
#: Spacings a near-tie is planted at: one unit in the last place of each floating dtype.
NEAR_DTYPES = ("float16", "bfloat16", "float32", "float64")
_BITS = {"float16": 10, "bfloat16": 7, "float32": 23, "float64": 52}


@dataclass(frozen=True)
class Space:
    """What the audited targets need from the examples.

    `families`: "float" and/or "int"; `float64`: a float64 target is audited (float64 sources);
    `mirror`: an argmin is audited (mirrored values); `max_elements`: the size budget;
    `signatures`: where targets compile per call signature, a bounded pool of (shape, layout,
    dim, keepdim) to draw from instead of drawing each freely.
    """

    families: tuple = ("float",)
    float64: bool = False
    mirror: bool = False
    max_elements: int = MAX_ELEMENTS
    signatures: tuple = ()
    layouts: tuple = field(default=())  # empty: every layout


@dataclass
class Example:
    """One generated input and call, with the choices that made it (in words)."""

    values: np.ndarray
    dim: int | None
    keepdim: bool
    layout: str
    plants: list

    def describe(self):
        """Say what this example is, in one line."""
        call = f"dim={self.dim}" + (", keepdim" if self.keepdim else "")
        planted = "; ".join(self.plants) or "nothing planted"
        return (f"fuzz: {self.values.dtype} of shape {tuple(self.values.shape)}, {self.layout}, "
                f"{call}; {planted}")

    def case_id(self):
        """Return an id that names these exact values and this call (same values, same id)."""
        digest = hashlib.sha1(self.values.tobytes())
        digest.update(repr((self.values.dtype.str, self.values.shape, self.dim, self.keepdim,
                            self.layout)).encode())
        return "fuzz-" + digest.hexdigest()[:10]

    def case(self, case_id=None):
        """Return the Case of this example (for every op: argmax and argmin alike)."""
        return Case(case_id or self.case_id(), self.values, dim=self.dim, keepdim=self.keepdim,
                    layout=self.layout, tags=tags(self.values, self.layout), note=self.describe())


def tags(values, layout):
    """Return the case tags that describe `values` in `layout`."""
    found = ["fuzz"]
    if values.dtype.kind in "iub":
        found.append("int")
    else:
        finite = np.isfinite(values)
        if finite.all():  # the usual case: no NaN or inf to look for or to leave out
            nan = inf = False
            finite = values
        else:
            nan, inf = np.isnan(values).any(), np.isinf(values).any()
            finite = values[finite]
        zero = finite == 0
        size = np.abs(finite)
        found += [tag for tag, hit in (
            ("nan", nan), ("inf", inf),
            ("signed-zero", zero.any() and np.signbit(finite[zero]).any()),
            ("subnormal", ((size < 2.0**-14) & ~zero).any()),
            ("float64", values.dtype == np.float64)) if hit]
    if layout != "contiguous":
        found.append("noncontiguous")
    return tuple(found)


# --- shapes, layouts, calls ----------------------------------------------------------------------
# Each choice is one draw where it can be (hypothesis's cost is per draw): a draw of an index into
# a table whose first entries are the simplest, so shrinking walks towards them.

_BOOL = st.booleans()
# sampled_from draws uniformly and shrinks to the first entry; st.integers favours its lower end
# heavily (a third of the draws), which would starve the later entries of every table.
_SEED = st.sampled_from(range(2**16))
_RANK = st.sampled_from((1, 2, 3, 1, 2, 3, 4, 0))


#: One draw picks an axis size from this table of 256 (hypothesis draws an index below 257
#: uniformly): 1-4 in 10/16 of draws, the boundary sizes in 4/16, a large size (a second draw
#: says which) in 1/16 and 0 in 1/16; simplest first, so shrinking walks towards size 1.
LARGE, _SIZE_SLOTS = "large", 256
SIZE_TABLE = ((1, 2, 3, 4) * 40 + tuple(MID_SIZES[i * len(MID_SIZES) // 64] for i in range(64))
              + (LARGE,) * 16 + (0,) * 16)
_SIZE = st.sampled_from(range(_SIZE_SLOTS))
_LARGE_INDEX = st.sampled_from(range(len(LARGE_SIZES)))


def _size(draw, budget):
    """Draw one axis size: mostly 1-4, then boundary sizes, rarely large ones or 0 (one draw; a
    large size takes a second)."""
    size = SIZE_TABLE[draw(_SIZE)]
    if size != LARGE:
        return size
    large = tuple(s for s in LARGE_SIZES if s <= budget) or MID_SIZES
    return large[draw(_LARGE_INDEX) % len(large)]


def draw_shape(draw, max_elements=MAX_ELEMENTS):
    """Draw a shape of rank 0 to 4 with at most `max_elements` elements."""
    shape, room = [], max_elements
    for _ in range(draw(_RANK)):
        size = min(_size(draw, room), room)
        shape.append(size)
        room = max(1, room // max(size, 1))
    return tuple(shape)


@st.composite
def shapes(draw, max_elements=MAX_ELEMENTS):
    """Draw a shape of rank 0 to 4 with at most `max_elements` elements."""
    return draw_shape(draw, max_elements)


def layout_names(ndim, allowed=()):
    """Return the layouts of rank `ndim` (contiguous first), those in `allowed` if given."""
    if ndim == 0:
        return ["contiguous"]
    names = layouts.all_layouts(ndim)
    if ndim == 1:  # transposing one axis changes nothing
        names = [n for n in names if n != "transposed"]
    return [n for n in names if not allowed or n in allowed] or ["contiguous"]


@functools.cache
def _index(count):
    return st.sampled_from(range(count))


def pick(draw, options):
    """Draw one of `options` (a sequence; the first is the simplest) with one draw."""
    return options[draw(_index(len(options)))] if len(options) > 1 else options[0]


def dim_options(ndim):
    """Return every dim of rank `ndim`: None, each axis, each axis counted from the end."""
    return (None,) if ndim == 0 else (None, *range(ndim), *range(-1, -ndim - 1, -1))


def dims(ndim):
    """Return a strategy for dim: None, an axis, or an axis counted from the end."""
    return st.sampled_from(dim_options(ndim))


def signature_pool(space, seed, count=12):
    """Return `count` (shape, layout, dim, keepdim) signatures drawn from `seed`, smallest first:
    the bounded pool examples draw from where every new signature compiles."""
    rng = np.random.default_rng(seed)
    pool = {((n,), "contiguous", None, False) for n in (1, 2, 3, 4)} | {
        ((2, 3), "contiguous", dim, False) for dim in (-1, 0)}  # small ones to shrink towards
    while len(pool) < count:
        ndim = int(rng.integers(1, 5))
        shape = tuple(int(rng.choice((1, 2, 3, 4) + MID_SIZES[:12])) for _ in range(ndim))
        if np.prod(shape) > space.max_elements:
            continue
        names = layout_names(ndim, space.layouts)
        dim = dim_options(ndim)[int(rng.integers(2 * ndim + 1))]
        pool.add((shape, str(rng.choice(names)), dim, bool(rng.integers(2))))
    return tuple(sorted(pool, key=lambda s: (int(np.prod(s[0])), len(s[0]), repr(s))))


def draw_call(draw, space):
    """Draw (shape, layout, dim, keepdim): from the signature pool where there is one."""
    if space.signatures:
        return pick(draw, space.signatures)
    shape = draw_shape(draw, space.max_elements)
    kinds = _layout_kinds(len(shape), tuple(space.layouts))
    layout = pick(draw, pick(draw, kinds))
    return (shape, layout, *pick(draw, calls(len(shape))))


@functools.cache
def calls(ndim):
    """Return every (dim, keepdim) of rank `ndim`, the plainest first (one draw picks one)."""
    return tuple((dim, keepdim) for dim in dim_options(ndim) for keepdim in (False, True))


@functools.cache
def _layout_kinds(ndim, allowed):
    """Return the layouts of rank `ndim` by kind (contiguous first; the axis permutations one
    kind), so that each kind is drawn as often whatever the rank."""
    names = layout_names(ndim, allowed)
    permuted = tuple(n for n in names if n.startswith("permuted-"))
    return tuple((n,) for n in names if n not in permuted) + ((permuted,) if permuted else ())


# --- values --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def position_table(n):
    """Return the edges of a row of `n`: first, last, chunk edges, the tail, past a narrow index
    type (any other position is drawn after them)."""
    edges = set(boundary_positions(n)) | {1, n - 2} | {w for w in WINNERS if w < n} | {
        w - 1 for w in WINNERS if w <= n}
    return tuple(sorted(p for p in edges if 0 <= p < n))


def draw_position(draw, n):
    """Draw a position in a row of `n`: an edge, or anywhere (one draw)."""
    edges = position_table(n)
    index = draw(_index(len(edges) + n))
    return edges[index] if index < len(edges) else index - len(edges)


NEAR, ANY = "near-tie", "any"


@functools.cache
def value_kinds(family, wide):
    """Return the plant kinds of `family`: (name, values) pairs, then NEAR (floats: a near-tie)
    and ANY (a value drawn freely)."""
    if family == "int":
        return INT_KINDS + ((ANY, ()),)
    return FLOAT_KINDS + (FLOAT64_KINDS if wide else ()) + ((NEAR, ()), (ANY, ()))


@functools.cache
def value_table(family, wide):
    """Return the plants of `family` one draw picks from: each kind of `value_kinds` gets an
    equal share of at most 256 entries (hypothesis draws an index below 257 uniformly), its
    values spread over that share in order (NEAR and ANY stand for themselves)."""
    kinds = value_kinds(family, wide)
    share = 256 // len(kinds)
    return tuple(values[i * len(values) // share] if values else kind
                 for kind, values in kinds for i in range(share))


_ANY = {"int": st.integers(-2**63, 2**63 - 1), True: st.floats(allow_nan=False, width=64),
        False: st.floats(allow_nan=False, width=32)}


def _nudge(value, dtype, steps):
    """Return `value` moved `steps` units in the last place of `dtype` (at its magnitude)."""
    if not np.isfinite(value) or value == 0:
        return value + steps * 2.0**-20
    exponent = np.floor(np.log2(abs(value)))
    return value + steps * 2.0 ** (exponent - _BITS[dtype])


BACKGROUNDS = ("equal", "ramp", "noise", "small", "normal")


def draw_background(draw, family, shape, wide):
    """Draw the values every position holds before the plants: all equal, an increasing ramp
    below zero (the last largest), noise, a few small integers, or logit-like normals (the last
    three from a drawn seed)."""
    kind = pick(draw, BACKGROUNDS)
    rng = np.random.default_rng(draw(_SEED)) if kind not in ("equal", "ramp") else None
    count = math.prod(shape)
    ramp = lambda: np.arange(count, dtype=np.int64).reshape(shape) - count  # noqa: E731
    if family == "int":
        made = {"equal": lambda: np.zeros(shape, np.int64), "ramp": ramp,
                "noise": lambda: rng.integers(-1000, 1000, shape),
                "small": lambda: rng.integers(-3, 3, shape),
                "normal": lambda: rng.integers(-100, 100, shape)}[kind]()
        return kind, made.astype(np.int64)
    dtype = np.float64 if wide else np.float32
    made = {"equal": lambda: np.zeros(shape), "ramp": lambda: ramp().astype(np.float64),
            "noise": lambda: rng.uniform(-4.0, -1.0, shape),
            "small": lambda: rng.integers(-3, 3, shape).astype(np.float64),
            "normal": lambda: rng.standard_normal(shape) * 3}[kind]()
    return kind, made.astype(dtype)


COUNTS = (1, 2, 3, "many", "all")
NEAR_VALUES = (1.0, 7.5, 1000.0, 0.1, -2.5)
NEAR_STEPS = (1, -1, 0.5, 2)


def draw_plant(draw, family, n, rows, wide):
    """Draw one plant for rows of `n` (`rows` of them): (value or [value, neighbour], positions,
    row or None for every row, what it is in words)."""
    row = draw(_index(rows + 1)) - 1 if rows > 1 else -1
    row = None if row < 0 else row
    value = pick(draw, value_table(family, wide))
    if value == NEAR and n >= 2:  # a value and its neighbour one spacing of a dtype apart
        dtype = pick(draw, NEAR_DTYPES if wide else NEAR_DTYPES[:3])
        value, steps = pick(draw, NEAR_VALUES), pick(draw, NEAR_STEPS)
        first, second = draw_position(draw, n), draw_position(draw, n)
        second = (first + 1) % n if first == second else second
        return [value, _nudge(value, dtype, steps)], [first, second], row, f"near-tie ({dtype})"
    if value in (NEAR, ANY):
        value = draw(_ANY[family if family == "int" else wide])
    count = pick(draw, COUNTS)
    if count == "all":
        where = list(range(n))
    elif count == "many":  # 4 to 16 places, spread by a drawn seed
        rng = np.random.default_rng(draw(_SEED))
        where = np.unique(rng.integers(0, n, size=4 + draw(_index(13)))).tolist()
    else:
        where = sorted({draw_position(draw, n) for _ in range(min(n, count))})
    return value, where, row, f"{count} x {value!r}"


def _rows(values, dim):
    """Return (a 2-d copy of `values` whose rows are what `dim` reduces, a function back)."""
    if dim is None or values.ndim == 0:
        shape = values.shape
        return values.reshape(1, -1).copy(), lambda rows: rows.reshape(shape)
    axis = dim % values.ndim
    moved = np.moveaxis(values, axis, -1)
    shape = moved.shape
    return moved.reshape(-1, shape[-1]).copy(), lambda rows: np.moveaxis(
        rows.reshape(shape), -1, axis)


def _set(rows, row, where, values, dtype):
    """Put `values` (one value, or one per position) at positions `where` of `row` (every row
    if None), cast into `dtype` (integers saturated)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        cast = np.array([min(max(int(v), info.min), info.max)
                         for v in np.atleast_1d(np.asarray(values, dtype=object))], dtype=dtype)
    else:
        cast = np.array(values, dtype=np.float64).astype(dtype)
    if row is None:
        rows[:, where] = cast
    else:
        rows[row, where] = cast


_PLANTS = st.sampled_from(range(5))


@st.composite
def examples(draw, space=Space()):
    """Draw one Example: a call (shape, layout, dim, keepdim) and its values."""
    family = pick(draw, space.families)
    shape, layout, dim, keepdim = draw_call(draw, space)
    wide = family == "float" and space.float64 and draw(_BOOL)
    background, values = draw_background(draw, family, shape, wide)
    described = [f"background {background}"]
    rows, back = _rows(values, dim) if values.size else (values, lambda rows: rows)
    if rows.size:
        for _ in range(draw(_PLANTS)):
            value, where, row, text = draw_plant(draw, family, rows.shape[1], rows.shape[0], wide)
            _set(rows, row, where, value, rows.dtype)
            described.append(f"{text} at {where[:6]}{'...' if len(where) > 6 else ''}"
                             + ("" if row is None else f" of row {row}"))
    values = back(rows)
    if layout == "broadcast":
        values = np.broadcast_to(values[:1], values.shape)
    values = np.ascontiguousarray(values)
    if space.mirror and draw(_BOOL):
        values = oriented(values, "min")
        described.append("mirrored for argmin")
    return Example(values, dim, keepdim, layout, described)


def all_layouts_of(ndims=(1, 2, 3, 4)):
    """Return every layout name of the ranks `ndims` (for documentation and tests)."""
    return sorted(set(itertools.chain.from_iterable(layout_names(n) for n in ndims)))
