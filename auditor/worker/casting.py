"""The exact values a target sees: a case's source values converted to the target's dtype.

Floating dtypes: a float source (float32, or float64 for values only float64 holds) is rounded to
nearest even, as numpy, torch, jax and ml_dtypes convert (bfloat16 from float64 goes through
float32, as torch converts). Integer dtypes and bool: an integer source (int64, or uint64 for
values past int64) saturates to the dtype's range, so one case shows every integer type its own
extremes (300 is 127 in int8, 255 in uint8); bool is the source clipped to 0..1 (positive is True).

`narrow` gives the values in the dtype itself (what the worker hands a framework); `seen_values`
gives them widened losslessly (float32 for float16/bfloat16; integers and bool as they are) so that
the driver, the checks and every framework agree on the values without a bfloat16 type of their own.
"""
import numpy as np

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
#: Integer dtypes and bool; uint16/32/64 only where a framework has them (its adapter says).
INT_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool")
DTYPES = FLOAT_DTYPES + INT_DTYPES

#: Sources past this many bytes are converted a block of rows at a time (see `narrow`).
BLOCK_BYTES = 64 << 20

# Significand bits after the point and the smallest normal exponent of each floating dtype.
FORMATS = {
    "float16": (10, -14),
    "bfloat16": (7, -126),
    "float32": (23, -126),
    "float64": (52, -1022),
}


def is_integer(dtype):
    """True for the integer dtypes and bool (`dtype` a name from DTYPES)."""
    return dtype in INT_DTYPES


def family(dtype):
    """Return "int" for integer dtypes and bool, "float" for the floating ones."""
    return "int" if is_integer(dtype) else "float"


def source_family(values):
    """Return the family of dtypes source `values` are for: "int" (integer or bool) or "float"."""
    return "int" if np.asarray(values).dtype.kind in "iub" else "float"


def _bfloat16_bits(values):
    """Return the bit patterns (uint16) of float32 `values` rounded to bfloat16 (nearest even)."""
    bits = values.reshape(-1).view(np.uint32)
    rounded = (bits >> 16) & np.uint32(1)  # in place from here on: large inputs, few passes
    rounded += np.uint32(0x7FFF)
    rounded += bits
    rounded >>= 16
    nan = np.flatnonzero((bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000))
    rounded[nan] = (bits[nan] >> 16) | np.uint32(0x0040)  # quiet, keeping sign and top payload
    return rounded.astype(np.uint16).reshape(values.shape)


def _saturate(source, dtype):
    """Return integer `source` clipped to the range of integer `dtype` and converted to it."""
    if dtype == "bool":
        return np.asarray(source) > 0
    source = np.asarray(source)
    if source.dtype.kind == "b":
        source = source.astype(np.int64)
    into, have = np.iinfo(dtype), np.iinfo(source.dtype)
    low, high = max(into.min, have.min), min(into.max, have.max)  # Python ints: no overflow
    kind = source.dtype.type
    return np.clip(source, kind(low), kind(high)).astype(dtype)


def narrow(source, dtype):
    """Return `source` converted to `dtype` (see the module's rules) as a new numpy array.

    bfloat16, which numpy lacks, comes as its uint16 bit patterns; every framework can take those
    without a cast of its own. ValueError for a source of the other family (integers for a float
    dtype or floats for an integer one): such a case does not apply to such a target.
    """
    source = np.asarray(source)
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}")
    if family(dtype) != source_family(source):
        raise ValueError(f"{source.dtype} source values are not for a {dtype} target")
    if source.ndim and source.nbytes > BLOCK_BYTES:
        return _blockwise(source, dtype)
    return _convert(source, dtype)


def _convert(source, dtype):
    """Return `source` converted to `dtype` whole (see `narrow`)."""
    if is_integer(dtype):
        return _saturate(source, dtype)
    with np.errstate(over="ignore"):
        if dtype == "float64":
            return source.astype(np.float64)
        if dtype == "float32":
            return source.astype(np.float32)
        if dtype == "float16":
            return source.astype(np.float16)
        return _bfloat16_bits(np.array(source, dtype=np.float32, order="C"))


def _blockwise(source, dtype):
    """Return `narrow(source, dtype)` converted a block of rows at a time into one new array, so
    that a large input costs the result and a block, not the whole-input temporaries of a
    conversion (bfloat16's rounding takes three times the input at once)."""
    first = _convert(source[:1], dtype)
    out = np.empty(source.shape, dtype=first.dtype)
    rows = max(1, BLOCK_BYTES // max(1, source[:1].nbytes))
    for start in range(0, source.shape[0], rows):
        out[start:start + rows] = _convert(source[start:start + rows], dtype)
    return out


def widen(values, dtype):
    """Return `narrow`'s result exactly, in a type numpy computes with: float32 for float16 and
    bfloat16, the array itself otherwise (float32, float64, integers, bool)."""
    if dtype == "bfloat16":
        return (values.astype(np.uint32) << 16).view(np.float32)
    if dtype == "float16":
        return values.astype(np.float32)
    return values


def seen_values(source, dtype):
    """Return `source` as `dtype` converts it, widened losslessly."""
    return widen(narrow(source, dtype), dtype)


def spacing(values, dtype):
    """Return the gap between adjacent `dtype` numbers at the magnitude of each of `values`
    (1 for the integer dtypes)."""
    if is_integer(dtype):
        return np.ones(np.shape(values))
    mantissa, min_exp = FORMATS[dtype]
    values = np.abs(np.asarray(values, dtype=np.float64))
    _, exp = np.frexp(values)
    exp = np.where(values == 0, min_exp, np.maximum(exp - 1, min_exp))
    return np.ldexp(1.0, exp - mantissa)
