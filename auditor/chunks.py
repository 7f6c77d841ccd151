"""Row chunks: the reference and the row facts of a large input, a bounded block at a time.

A case's reference (and the facts its tie and NaN policies are read from) is computed on blocks
of whole rows, each converted to the target's dtype on its own, so the driver holds one block's
converted copy (CHUNK_BYTES of source values) at a time, never a widened copy of the whole input.
Blocks split the input along an axis that is not reduced; a reduction over the whole input (or
over the one axis of a vector) combines the first maximum of each flat block instead. Small
inputs take one block, so they are computed exactly as before.
"""
import math

import numpy as np

from .oracle import merge_classes, policy_classes

#: The source bytes one block of rows may take (read when a block is cut, so tests may change it;
#: a block's temporaries take a few times as much).
CHUNK_BYTES = 64 << 20


def split_axis(ndim, axis):
    """Return the axis blocks of rows are cut along: the first one that is not `axis`, or None
    where every row is the whole input (`axis` None or a 1-d input)."""
    if axis is None or ndim < 2:
        return None
    return 0 if axis != 0 else 1


def blocks(shape, axis, itemsize, chunk_bytes=None):
    """Yield index tuples that select consecutive blocks of whole rows (along `axis`) of an
    array of `shape`, each of at most `chunk_bytes` (at least one row's slice)."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    split = split_axis(len(shape), axis)
    if split is None:
        yield ()
        return
    per_slice = max(1, math.prod(shape) // max(shape[split], 1)) * itemsize
    step = max(1, chunk_bytes // max(per_slice, 1))
    for start in range(0, shape[split], step):
        yield (slice(None),) * split + (slice(start, min(start + step, shape[split])),)


def output_index(block, axis):
    """Return the index of the answers of `block` in the answers (the reduced `axis` removed)."""
    split = len(block) - 1
    return block if split < axis else block[:axis] + block[axis + 1:]


def flat_blocks(size, itemsize, chunk_bytes=None):
    """Yield (start, stop) of consecutive flat blocks of at most `chunk_bytes`."""
    step = max(1, (chunk_bytes or CHUNK_BYTES) // itemsize)
    for start in range(0, size, step):
        yield start, min(start + step, size)


def reference(source, convert, dim, keepdim, chunk_bytes=None, summary=None):
    """Return the reference indices (int64) of `source` reduced over `dim`, where `convert`
    turns a block of source values into the values the rule orders (the target's dtype, widened,
    negated for argmin); the same answer as `oracle.reference_argmax` on the whole input.
    `summary` is the `row_summary` of these rows where it is known already."""
    shape = tuple(source.shape)
    if source.size == 0 and (dim is None or shape[dim] == 0):
        raise ValueError("argmax of an empty sequence is undefined")
    if len(shape) == 0:
        return np.zeros((), dtype=np.int64) if dim is not None else np.asarray(np.int64(0))
    axis = None if dim is None else dim % len(shape)
    if axis is None or len(shape) == 1:
        index = np.int64(_flat_first_maximum(source, convert, chunk_bytes))
        if dim is None:
            return index.reshape((1,) * len(shape)) if keepdim else np.asarray(index)
        return np.expand_dims(np.asarray(index), 0) if keepdim else np.asarray(index)
    first = (summary or row_summary(source, convert, axis, chunk_bytes))["first"]
    return np.expand_dims(first, axis) if keepdim else first


def row_summary(source, convert, axis, chunk_bytes=None):
    """Return, per row of `source` along `axis` (rank 2 or more), what the reference and the
    policies need, computed in one pass of blocks: `first` (the reference: the first NaN, else
    the first maximum), `skipping` (the first maximum of the other values), `last` (the last
    maximum), `ties` (two or more maxima, no NaN) and `has_nan` (NaN beside other values)."""
    shape = tuple(source.shape)
    out_shape = shape[:axis] + shape[axis + 1:]
    found = {name: np.empty(out_shape, dtype=kind) for name, kind in (
        ("first", np.int64), ("skipping", np.int64), ("last", np.int64), ("ties", bool),
        ("has_nan", bool))}
    length = shape[axis]
    for block in blocks(shape, axis, source.dtype.itemsize, chunk_bytes):
        values = convert(source[block])
        where = output_index(block, axis)
        nan = np.isnan(values) if values.dtype.kind == "f" else None
        if nan is not None and nan.any():
            any_nan, all_nan = nan.any(axis=axis), nan.all(axis=axis)
            first_nan = nan.argmax(axis=axis)
            values = np.where(nan, -np.inf, values)
        else:  # no NaN in the block (the usual case): none of the NaN facts to compute
            any_nan = None
        del nan
        top = values == values.max(axis=axis, keepdims=True)
        del values
        skipping = top.argmax(axis=axis)
        found["skipping"][where] = skipping
        found["last"][where] = length - 1 - np.flip(top, axis=axis).argmax(axis=axis)
        ties = top.sum(axis=axis) >= 2
        if any_nan is None:
            found["first"][where] = skipping
            found["ties"][where] = ties
            found["has_nan"][where] = False
        else:
            found["first"][where] = np.where(any_nan, first_nan, skipping)
            found["ties"][where] = ties & ~any_nan
            found["has_nan"][where] = any_nan & ~all_nan
    return found


def _flat_first_maximum(source, convert, chunk_bytes):
    """Return the first maximum (the first NaN, if any) of `source` read in flat blocks."""
    flat = source.reshape(-1)
    best, best_value = None, None
    for start, stop in flat_blocks(flat.size, source.dtype.itemsize, chunk_bytes):
        values = convert(flat[start:stop])
        if values.dtype.kind == "f":
            nan = np.flatnonzero(np.isnan(values))
            if nan.size:
                return start + int(nan[0])
        top = values.max()
        if best is None or top > best_value:
            best, best_value = start + int(np.argmax(values == top)), top
    return best


def policies(source, convert, axis, indices, chunk_bytes=None, summary=None):
    """Return (tie policy, NaN policy) of the answers `indices` (the reduced `axis` removed; for a
    whole-input reduction `axis` None and `indices` one number), as `oracle.policies` reads them
    from the facts of every row: the `row_summary` (given, or computed here) and whether the
    value each answer picked is NaN (read at the answers alone)."""
    shape = tuple(source.shape)
    if axis is None or len(shape) == 1:
        facts = _flat_facts(source, convert, chunk_bytes)
        return tuple(map(merge_classes, policy_classes(facts, np.asarray(indices).reshape(1))))
    summary = summary or row_summary(source, convert, axis, chunk_bytes)
    length = shape[axis]
    inside = (indices >= 0) & (indices < length)
    at = np.expand_dims(np.where(inside, indices, 0), axis)
    picked = convert(np.take_along_axis(source, at, axis=axis))
    picked_nan = (np.isnan(picked) if picked.dtype.kind == "f" else np.zeros(picked.shape, bool))
    facts = dict(summary, axis=axis, length=length, nan=_Picked(picked_nan.squeeze(axis)))
    return tuple(map(merge_classes, policy_classes(facts, indices)))


class _Picked:
    """Whether the value each answer picked is NaN, known at the answers alone."""

    def __init__(self, mask):
        self.mask = mask

    def picked(self, indices):
        return self.mask


def _flat_facts(source, convert, chunk_bytes):
    """Return `oracle.row_facts` of the whole input as one row, from two passes of flat blocks:
    the first finds the maximum without NaN and whether NaN is there, the second where it is."""
    flat = source.reshape(-1)
    spans = list(flat_blocks(flat.size, source.dtype.itemsize, chunk_bytes))
    top, nan_at, all_nan = None, [], True
    for start, stop in spans:
        values = convert(flat[start:stop])
        nan = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
        nan_at.extend((start + np.flatnonzero(nan)).tolist()[:2])
        if not nan.all():
            all_nan = False
            block_top = values[~nan].max()
            top = block_top if top is None or block_top > top else top
    first = last = skipping = None
    count = 0
    for start, stop in spans:
        values = convert(flat[start:stop])
        hits = np.flatnonzero(values == top) if top is not None else np.array([], np.int64)
        if hits.size:
            skipping = start + int(hits[0]) if skipping is None else skipping
            last = start + int(hits[-1])
            count += hits.size
    has_nan = bool(nan_at)
    if has_nan:
        first = last = nan_at[0]
    first = skipping if first is None else first
    return _facts_of_row(flat.size, nan_at, first, last, skipping, count, has_nan, all_nan)


def _facts_of_row(length, nan_at, first, last, skipping, count, has_nan, all_nan):
    """Return facts in `oracle.row_facts`' form for one row of `length` (a tie or NaN row's last
    maximum only matters without NaN); the NaN mask is sparse, read only at the picked index."""
    return {"axis": 0, "length": length, "nan": _SparseMask(set(nan_at)),
            "skipping": np.asarray([skipping if skipping is not None else 0]),
            "has_nan": np.asarray([has_nan and not all_nan]),
            "ties": np.asarray([count >= 2 and not has_nan]),
            "first": np.asarray([first if first is not None else 0]),
            "last": np.asarray([last if last is not None else 0])}


class _SparseMask:
    """Where a whole-input row holds NaN, read only at the picked index (`policy_classes`)."""

    def __init__(self, positions):
        self.positions = positions

    def picked(self, indices):
        return np.asarray([int(np.asarray(indices).reshape(-1)[0]) in self.positions])

