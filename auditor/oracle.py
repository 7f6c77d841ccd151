"""The reference: what argmax must return for the exact values a target saw.

The rule, as NumPy, PyTorch, JAX and the Python array API standard document it: the index of the
first occurrence of the maximum along the reduced axis, where NaN counts as the maximum (so the
first NaN wins); for dim=None the index into the C-order flattened input. It is computed here
without calling any argmax, so an argmax under audit never judges itself.

argmin's rule is the mirror (the first minimum, NaN counted as the minimum, first NaN wins): it is
the argmax rule on the negated values (`oriented`), so every function here serves both.

Integer and bool values are compared in their own type (never through float64, which would merge
int64 values past 2**53).
"""
import numpy as np


def oriented(values, sense):
    """Return `values` as the rule of `sense` ("max" or "min") orders them: negated for "min".

    Negation keeps every equality (-0.0 == 0.0, NaN stays NaN) and reverses every order, so the
    first maximum of the result is the first minimum of `values`; integers are inverted bitwise.
    """
    values = np.asarray(values)
    if sense == "max":
        return values
    # ~x reverses the order of every integer type without overflow (-x - 1 for signed ones,
    # MAX - x for unsigned ones, not x for bool); negation reverses the floats.
    return np.invert(values) if values.dtype.kind in "iub" else np.negative(values)


def _without_nan(values, nan):
    """Return `values` with NaN replaced by the lowest value of their type (ints: unchanged)."""
    if values.dtype.kind in "iub":
        return values
    return np.where(nan, -np.inf, values)


def maximizers(values, axis):
    """Return a boolean mask of the positions that are a maximum along `axis` (NaN wins)."""
    values = np.asarray(values)
    nan = np.isnan(values)
    has_nan = nan.any(axis=axis, keepdims=True)
    top = _without_nan(values, nan).max(axis=axis, keepdims=True)
    return np.where(has_nan, nan, values == top)


def first_true(mask, axis):
    """Return the index of the first True along `axis` (the count of leading Falses)."""
    return (~np.logical_or.accumulate(mask, axis=axis)).sum(axis=axis)


def reference_argmax(values, dim=None, keepdim=False, sense="max"):
    """Return the reference indices (int64) of `values` reduced over `dim` (argmin's for "min")."""
    values = oriented(values, sense)
    if values.size == 0 and (dim is None or values.shape[dim] == 0):
        raise ValueError("argmax of an empty sequence is undefined")
    if dim is None:
        flat = values.reshape(-1)
        index = np.int64(first_true(maximizers(flat, 0), 0))
        return index.reshape((1,) * values.ndim) if keepdim else np.asarray(index)
    if values.ndim == 0:
        return np.zeros((), dtype=np.int64)
    index = first_true(maximizers(values, dim), dim).astype(np.int64)
    return np.expand_dims(index, dim) if keepdim else index


def reference_row(row):
    """Return the reference index of one 1-d `row`, written as the plain loop the rule states."""
    best = 0
    for i, value in enumerate(row):
        if np.isnan(row[best]):
            break
        if np.isnan(value) or value > row[best]:
            best = i
    return best


def row_facts(values, axis):
    """Return what `policies` needs to know about each row of `values` along `axis`."""
    nan = np.isnan(values)
    mask = maximizers(values, axis)
    length = values.shape[axis]
    any_nan = nan.any(axis=axis)
    no_nan = _without_nan(values, nan)
    skipping = first_true(no_nan == no_nan.max(axis=axis, keepdims=True), axis)
    return {"axis": axis, "length": length, "nan": nan, "skipping": skipping,
            "has_nan": any_nan & ~nan.all(axis=axis),  # an all-NaN row tells no policy apart
            "ties": (mask.sum(axis=axis) >= 2) & ~any_nan, "first": first_true(mask, axis),
            "last": length - 1 - first_true(np.flip(mask, axis=axis), axis)}


def policies(facts, indices):
    """Return (tie policy, NaN policy) of the answers `indices` to rows described by `facts`.

    Tie policy over rows with two or more tied maxima and no NaN: 'first', 'last', 'other', or
    'mixed'; NaN policy over rows holding NaN and other values: 'first', 'later-nan',
    'ignores-nan' (the first maximum of the other values, as nanargmax), 'other', or 'mixed';
    'none' where no row qualifies. `indices` has the reduced axis removed.
    """
    tie, nan_policy = policy_classes(facts, indices)
    return merge_classes(tie), merge_classes(nan_policy)


def policy_classes(facts, indices):
    """Return ([tie classes], [NaN classes]) that the answers `indices` show on the rows of
    `facts`, in the order `policies` names them; classes of several blocks of rows concatenate.
    `facts["nan"]` may instead say only whether each answer picked a NaN (`picked(indices)`)."""
    axis, first, last, ties, has_nan = (facts[k] for k in ("axis", "first", "last", "ties", "has_nan"))
    inside = (indices >= 0) & (indices < facts["length"])
    if hasattr(facts["nan"], "picked"):
        picked_nan = facts["nan"].picked(indices) & inside
    else:
        at = np.expand_dims(np.where(inside, indices, 0), axis)
        picked_nan = np.take_along_axis(facts["nan"], at, axis=axis).squeeze(axis) & inside
    tie = _seen({"first": ties & (indices == first),
                 "last": ties & (indices == last) & (indices != first),
                 "other": ties & (indices != first) & (indices != last)})
    skipping = facts["skipping"]
    nan_policy = _seen({"first": has_nan & (indices == first),
                        "later-nan": has_nan & (indices != first) & picked_nan,
                        "ignores-nan": has_nan & ~picked_nan & (indices == skipping),
                        "other": has_nan & ~picked_nan & (indices != skipping)})
    return tie, nan_policy


def _seen(classes):
    return [name for name, hits in classes.items() if np.any(hits)]


def merge_classes(seen):
    """Return the policy the classes `seen` make: 'none', the one class, or 'mixed'."""
    seen = list(dict.fromkeys(seen))
    return "none" if not seen else seen[0] if len(seen) == 1 else "mixed"
