"""The exact values a target sees: source float32 values rounded to the target's dtype.

Rounding is round-to-nearest-even, as numpy, torch, jax and ml_dtypes convert. The result is kept
widened (float32 for float16/bfloat16, which hold them exactly) so that the driver, the checks and
every framework agree on the values without needing a bfloat16 type of their own.
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


def _round_to_bfloat16(values):
    values = np.asarray(values, dtype=np.float32)
    bits = values.reshape(-1).view(np.uint32)
    # Round to nearest even on the upper 16 bits; uint32 wraps only for NaN, handled below.
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)
    quiet_nan = (bits & np.uint32(0xFFFF0000)) | np.uint32(0x00400000)  # keeps sign and payload top
    rounded = np.where(np.isnan(values.reshape(-1)), quiet_nan, rounded)
    return rounded.view(np.float32).reshape(values.shape)


def seen_values(source, dtype):
    """Return `source` (float32) as `dtype` rounds it, widened to float32 (float64 for float64)."""
    source = np.asarray(source, dtype=np.float32)
    if dtype == "float32":
        return source
    if dtype == "float64":
        return source.astype(np.float64)
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return source.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        return _round_to_bfloat16(source)
    raise ValueError(f"unknown dtype {dtype!r}")


def spacing(values, dtype):
    """Return the gap between adjacent `dtype` numbers at the magnitude of each of `values`."""
    mantissa, min_exp = FORMATS[dtype]
    values = np.abs(np.asarray(values, dtype=np.float64))
    _, exp = np.frexp(values)
    exp = np.where(values == 0, min_exp, np.maximum(exp - 1, min_exp))
    return np.ldexp(1.0, exp - mantissa)
