"""Words and numbers for findings: value excerpts, positions, index hints. Shared by the checks."""
import numpy as np

from .worker.casting import seen_values, spacing

#: Narrow types an index can be squeezed through, in the order a hint names them.
NARROW_TYPES = ("int8", "uint8", "int16", "uint16", "float16", "bfloat16", "float32", "int32")


def fmt(value):
    """Return `value` as a short, exact-enough number for a sentence (integers exactly)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "+inf" if value > 0 else "-inf"
    if value == 0:
        return "-0.0" if np.signbit(value) else "0.0"
    return f"{value:.8g}"


def excerpt(row, indices, width=2):
    """Return [[index, value], ...] around each of `indices` in `row`, for evidence."""
    keep = set()
    for i in indices:
        if 0 <= i < len(row):
            keep.update(range(max(0, i - width), min(len(row), i + width + 1)))
    return [[int(i), fmt(row[i])] for i in sorted(keep)]


def list_indices(indices, limit=4):
    indices = [int(i) for i in indices]
    text = ", ".join(str(i) for i in indices[:limit])
    return text + (f" and {len(indices) - limit} more" if len(indices) > limit else "")


def in_spacings(gap, value, dtype):
    """Return `gap` in units of `dtype`'s spacing at `value`."""
    return float(gap / spacing(value, dtype)) if np.isfinite(gap) else float("inf")


def squeeze_hint(returned, expected):
    """Name the narrow type that turns index `expected` into `returned`, or return ''."""
    for name in NARROW_TYPES:
        with np.errstate(all="ignore"):
            if name == "bfloat16":  # rounded as the frameworks do, without importing ml_dtypes
                back = float(seen_values(np.array([expected], dtype=np.float64), name)[0])
            else:
                back = np.array([expected], dtype=np.int64).astype(name).astype(np.float64)[0]
        if back == returned and back != expected:
            return f"; {expected} squeezed through {name} comes back as {returned}"
    return ""


def disputed_positions(mask, limit=None):
    """Return the output positions (tuples) where `mask` is True, in C order."""
    positions = [tuple(int(i) for i in p) for p in np.argwhere(mask)]
    return positions if limit is None else positions[:limit]


def answers_at(indices, case, positions):
    """Return the answer at (the first three) `positions`, as a reproducer prints it."""
    if case.dim is None:
        return int(indices.reshape(-1)[0])
    return [int(indices[tuple(p)]) for p in positions[:3]]
