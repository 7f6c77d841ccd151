"""The exact values a target sees: source float32 values rounded to the target's dtype.

Rounding is round-to-nearest-even, as numpy, torch, jax and ml_dtypes convert. `narrow` gives the
values in the dtype itself (what the worker hands a framework); `seen_values` gives them widened
(float32 for float16/bfloat16, which hold them exactly) so that the driver, the checks and every
framework agree on the values without needing a bfloat16 type of their own.
"""
import numpy as np

DTYPES = ("float32", "float16", "bfloat16", "float64")

# Significand bits after the point and the smallest normal exponent of each dtype.
FORMATS = {
    "float16": (10, -14),
    "bfloat16": (7, -126),
    "float32": (23, -126),
    "float64": (52, -1022),
}


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


def narrow(source, dtype):
    """Return `source` (float32) rounded to `dtype` as a new numpy array of that dtype.

    bfloat16, which numpy lacks, comes as its uint16 bit patterns; every framework can take those
    without a cast of its own.
    """
    source = np.asarray(source, dtype=np.float32)
    if dtype == "float32":
        return source.copy()
    if dtype == "float64":
        return source.astype(np.float64)
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return source.astype(np.float16)
    if dtype == "bfloat16":
        return _bfloat16_bits(source)
    raise ValueError(f"unknown dtype {dtype!r}")


def widen(values, dtype):
    """Return `narrow`'s result as float32 (float64 for float64): the same numbers, exactly."""
    if dtype == "bfloat16":
        return (values.astype(np.uint32) << 16).view(np.float32)
    if dtype == "float16":
        return values.astype(np.float32)
    return values


def seen_values(source, dtype):
    """Return `source` (float32) as `dtype` rounds it, widened losslessly."""
    return widen(narrow(source, dtype), dtype)


def spacing(values, dtype):
    """Return the gap between adjacent `dtype` numbers at the magnitude of each of `values`."""
    mantissa, min_exp = FORMATS[dtype]
    values = np.abs(np.asarray(values, dtype=np.float64))
    _, exp = np.frexp(values)
    exp = np.where(values == 0, min_exp, np.maximum(exp - 1, min_exp))
    return np.ldexp(1.0, exp - mantissa)
