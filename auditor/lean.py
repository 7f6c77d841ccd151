"""Lean bundles: a large user input kept as its origin, sha256, answers and disputed rows.

A user input over THRESHOLD bytes is `lean` (unless `--store-inputs`): the bundle keeps where it
came from (path, size, format, key, the file's sha256), its shape and dtype, the reference answers
of every dtype and sense its targets ran, and the rows its findings cite (and, within a share of
the input's size, the other rows where an answer left the reference), not a copy of the input.
Read back, a lean case's values are a `LeanValues`: shape and dtype, and the values themselves
only from the original file, and only when its size and sha256 still match (a check that needs
a row the bundle did not keep loads it from there; without the file it is one line, exit 2).
"""
import hashlib
import json
import os
import re

import numpy as np

from .errors import UserError
from .files import printable
from .model import answers_key

#: A user input larger than this (its values' bytes) is kept lean in the bundle, unless the
#: environment variable below says another size.
THRESHOLD = 64 << 20
THRESHOLD_VARIABLE = "ARGMAX_AUDIT_LEAN_BYTES"
#: The share of a lean input's bytes its stored rows may take beyond the rows findings cite first.
ROWS_SHARE = 0.02
#: The rounding flips per low dtype whose rows are kept (the precision check's margins read 200).
FLIPS = 200
#: What a lean case's note says (the case browser and the summary show notes).
LEAN_NOTE = "; the bundle keeps its sha256, answers and disputed rows, not a copy"
#: The rows of each finding always kept (its reproducer loads them).
CITED = 3
HASH_BLOCK = 8 << 20


def file_sha256(path, block=HASH_BLOCK):
    """Return the sha256 (hex) of the file at `path`, read `block` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def array_sha256(values, block=HASH_BLOCK):
    """Return the sha256 (hex) of the bytes of array `values` in C order, a block at a time."""
    digest = hashlib.sha256()
    flat = np.asarray(values).reshape(-1)
    step = max(1, block // max(flat.itemsize, 1))
    for start in range(0, flat.size, step):
        digest.update(np.ascontiguousarray(flat[start:start + step]).tobytes())
    return digest.hexdigest()


def threshold():
    """Return the size past which a user input is kept lean: THRESHOLD_VARIABLE or THRESHOLD."""
    given = os.environ.get(THRESHOLD_VARIABLE, "").strip()
    if not given:
        return THRESHOLD
    found = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", given, re.IGNORECASE)
    if not found:
        raise UserError(f"{THRESHOLD_VARIABLE}={printable(given)!r} is not a size (bytes, or like "
                        "512M, 2G)")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get((found.group(2) or " ")[0].upper(), 1)
    return int(found.group(1)) * scale


def mark(cases, store_inputs=False):
    """Mark the user cases over THRESHOLD lean (none with `store_inputs`); give every user case
    with an origin and no hash its array's sha256. Return `cases`."""
    hashes = {}
    for case in cases:
        if case.origin is None:
            continue
        path = case.origin.get("path")
        if not case.origin.get("sha256") and path:
            if path not in hashes:
                hashes[path] = file_sha256(path)
            case.origin["sha256"] = hashes[path]
        elif not case.origin.get("sha256") and not isinstance(case.values, LeanValues):
            case.origin["sha256"] = array_sha256(case.values)
        case.lean = not store_inputs and case.values.nbytes > threshold()
        case.note = case.note.replace(LEAN_NOTE, "") + (LEAN_NOTE if case.lean else "")
    return cases


def same_input(case, old):
    """Return True/False when both cases name their input's sha256 (and key), None otherwise."""
    a, b = (c.origin.get("sha256") if c.origin else None for c in (case, old))
    if not (a and b):
        return None
    return a == b and case.origin.get("key") == old.origin.get("key")


def changed_input(case, old, then="the baseline"):
    """Say in words how the input of `case` differs from case `old` (of `then`), or return None."""
    if same_input(case, old) is not False:
        return None
    return (f"the input of case {case.id} differs ({_where(old)} sha256 {old.origin['sha256']} "
            f"in {then}, {_where(case)} sha256 {case.origin['sha256']} now)")


def _where(case):
    path = case.origin.get("path")
    return printable(str(path)) if path else "an array"


class LeanValues:
    """The values of a lean case read from a bundle: shape and dtype here, numbers only from the
    original file, after its size and sha256 are checked (`load`)."""

    def __init__(self, case_id, shape, dtype, origin):
        self.case_id, self.shape, self.dtype = case_id, tuple(shape), np.dtype(dtype)
        self.origin = origin
        self._values = None

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))
    nbytes = property(lambda self: self.size * self.dtype.itemsize)
    itemsize = property(lambda self: self.dtype.itemsize)

    def load(self):
        """Return the values from the original file; UserError where it is gone or changed."""
        if self._values is None:
            self._values = load_origin(self.case_id, self.origin, self.shape, self.dtype)
        return self._values

    def __array__(self, dtype=None, copy=None):
        values = self.load()
        return values if dtype is None else values.astype(dtype)

    def __getitem__(self, index):
        return self.load()[index]

    def reshape(self, *shape):
        return self.load().reshape(*shape)

    def __len__(self):
        return self.shape[0]


def load_origin(case_id, origin, shape, dtype, dim=-1):
    """Return the array `origin` names, checked against its size and sha256 and the case's
    `shape` and `dtype`; UserError in one line where it is gone, changed or not the same."""
    from . import inputs  # the readers of every input format

    path = (origin or {}).get("path")
    keep = ("the bundle keeps no copy of it (a lean bundle: large inputs are kept as their "
            "path and sha256; run the audit with --store-inputs to keep one)")
    if not path or not os.path.isfile(path):
        where = f"its input {printable(str(path))} is not there" if path else "it was an array"
        raise UserError(f"case {case_id}: {keep}, and {where}")
    size, sha = os.path.getsize(path), origin.get("sha256")
    if size != origin.get("size") or (sha and file_sha256(path) != sha):
        now = file_sha256(path)
        raise UserError(f"case {case_id}: {keep}, and {printable(path)} changed since (sha256 "
                        f"{sha} then, {now} now)")
    for case in inputs.load_inputs([path], dim=None):
        if case.origin and case.origin.get("key") == origin.get("key"):
            values = case.values
            if tuple(values.shape) != tuple(shape) or values.dtype != dtype:
                break
            return values
    raise UserError(f"case {case_id}: {printable(path)} holds no array {origin.get('key')!r} "
                    f"of shape {tuple(shape)} and dtype {dtype}")


class Stored:
    """What a lean bundle kept of a case: rows by output position, reference answers by
    (dtype, sense)."""

    def __init__(self, rows=None, references=None, policies=None):
        self.rows = rows or {}
        self.references = references or {}
        self.policies = policies or {}  # (dtype, sense, answers_key) -> (tie, NaN policy)

    def row(self, position, case=None):
        return self.rows.get(tuple(int(p) for p in position))


def kept_positions(case, observations, findings):
    """Return the output positions whose rows a lean bundle keeps: the first CITED of every
    finding on `case` (its reproducer loads them), then the other positions findings cite, where
    some answer left the reference, and where float16 or bfloat16 rounding moves the reference
    (FLIPS of each), within ROWS_SHARE of the input's bytes."""
    if case.dim is None or case.must_raise or case.values.ndim == 0:
        return []
    first, more = [], []
    for finding in findings:
        if finding.case == case.id:
            first += [tuple(p) for p in finding.positions[:CITED]]
            more += [tuple(p) for p in finding.positions[CITED:]]
    for target_id, outcomes in ((t, o) for (t, c), o in observations.outcomes.items()
                                if c == case.id):
        target = observations.targets[target_id]
        for outcome in outcomes:
            if outcome.failed or tuple(outcome.indices.shape) != case.output_shape:
                continue
            expected = case.reference(target.dtype, target.sense)
            more += [tuple(int(i) for i in p) for p in np.argwhere(outcome.indices != expected)]
    senses = {observations.targets[t].sense for t, c in observations.outcomes if c == case.id}
    dtypes = {observations.targets[t].dtype for t, c in observations.outcomes if c == case.id}
    for sense in senses if "float32" in dtypes else ():  # flips the precision check explains
        for low in dtypes & {"float16", "bfloat16"}:
            flips = np.argwhere(case.reference(low, sense) != case.reference("float32", sense))
            more += [tuple(int(i) for i in p) for p in flips[:FLIPS]]
    row_bytes = max(1, case.shape[case.axis] * case.values.dtype.itemsize)
    room = max(0, int(ROWS_SHARE * case.values.nbytes) // row_bytes)
    first = list(dict.fromkeys(first))
    extra = [p for p in dict.fromkeys(more) if p not in set(first)][:room]
    return first + extra


def encode(case, observations, findings, arrays, final):
    """Return the document fields of lean `case` and add its kept rows and reference answers to
    `arrays`; a checkpoint (`final` False) keeps only the origin, shape and dtype."""
    entry = {"array": None, "origin": dict(case.origin or {}),
             "values_dtype": case.values.dtype.name, "lean": {}}
    if not final:
        return entry
    references = []
    for key in sorted({(observations.targets[t].dtype, observations.targets[t].sense)
                       for t, c in observations.outcomes if c == case.id}):
        if case.must_raise:
            break
        name = f"ref/{case.id}/{key[0]}/{key[1]}"
        arrays[name] = case.reference(*key)
        references.append({"dtype": key[0], "sense": key[1], "array": name})
    policies = []
    for (target_id, case_id), outcomes in observations.outcomes.items():
        target = observations.targets[target_id]
        for outcome in outcomes if case_id == case.id and not case.must_raise else ():
            if not outcome.failed and tuple(outcome.indices.shape) == case.output_shape:
                tie, nan = case.policies(target.dtype, outcome.indices, target.sense)
                policies.append({"dtype": target.dtype, "sense": target.sense, "tie": tie,
                                 "nan": nan, "answers": answers_key(outcome.indices)})
    positions = kept_positions(case, observations, findings)
    length = case.shape[case.axis] if case.dim is not None and case.values.ndim else 0
    rows = [np.asarray(case.source_row(p)) for p in positions]
    arrays[f"rows/{case.id}"] = np.stack(rows) if rows else np.zeros((0, length),
                                                                       case.values.dtype)
    arrays[f"rowpos/{case.id}"] = np.array(positions, dtype=np.int64).reshape(
        len(positions), len(case.output_shape))
    entry["lean"] = {"rows": f"rows/{case.id}", "positions": f"rowpos/{case.id}",
                     "references": references,
                     "policies": list({json.dumps(p, sort_keys=True): p for p in policies}.values())}
    return entry


def decode(entry, arrays):
    """Return (LeanValues, Stored) of a lean case's validated document `entry`."""
    values = LeanValues(entry["id"], entry["shape"], entry["values_dtype"], entry.get("origin"))
    lean = entry.get("lean") or {}
    rows = {}
    if lean.get("rows"):
        for position, row in zip(arrays[lean["positions"]].tolist(), arrays[lean["rows"]]):
            rows[tuple(position)] = row
    references = {(r["dtype"], r["sense"]): arrays[r["array"]]
                  for r in lean.get("references", [])}
    policies = {(p["dtype"], p["sense"], p["answers"]): (p["tie"], p["nan"])
                for p in lean.get("policies", [])}
    return values, Stored(rows, references, policies)


def combine(case, other):
    """Add the rows and reference answers `other` (a lean case of the same input) kept to
    those of `case`; return `case`."""
    if case.stored is not None and other.stored is not None:
        for key, row in other.stored.rows.items():
            case.stored.rows.setdefault(key, row)
        for key, answer in other.stored.references.items():
            case.stored.references.setdefault(key, answer)
        for key, found in other.stored.policies.items():
            case.stored.policies.setdefault(key, found)
    return case


def stored_name(case):
    """Return the file under the bundle's `inputs/` a large user input kept whole is written to,
    named by its origin's sha256 and what was read from it; None for every other case."""
    origin = case.origin or {}
    if case.lean or not origin.get("sha256") or case.values.nbytes <= threshold():
        return None
    digest = hashlib.sha256(json.dumps([origin["sha256"], origin.get("key"), list(case.shape),
                                        case.values.dtype.name]).encode()).hexdigest()
    return f"inputs/{digest}.npy"


def reproducer_input(case, positions, bundle_path):
    """Return (the case a lean case's reproducer calls on, its positions, the lines that build
    its `values`): the rows at the first `positions` as they were kept in the bundle, or, with
    none to show, lines that load the original file (named with its sha256)."""
    from .model import Case

    origin = case.origin or {}
    said = (f"{printable(str(origin.get('path')))}" + (f", array {origin.get('key')!r}"
                                                         if origin.get("key") else "")
            + f" (sha256 {origin.get('sha256')})")
    picks = [tuple(int(i) for i in p) for p in positions[:CITED]]
    if case.dim is None or not picks:
        path = origin.get("path")
        if path and str(path).endswith(".npy"):
            load = f"values = np.load({str(path)!r}).astype(np.{case.values.dtype.name})"
        elif path and str(path).endswith(".npz") and origin.get("key"):
            load = (f"values = np.load({str(path)!r})[{origin['key']!r}]"
                    f".astype(np.{case.values.dtype.name})")
        else:
            load = f"raise SystemExit('load the input as values: {said}')"
        return case, positions, [f"# the input, of which the bundle keeps no copy: {said}", load]
    rows = np.stack([np.asarray(case.source_row(p)) for p in picks])
    shown = Case(case.id, rows, dim=1, tags=case.tags, note=case.note)
    arrays = os.path.join(bundle_path, "arrays.npz")
    lines = [f"arrays = np.load({arrays!r})",
             f"at = arrays[{'rowpos/' + case.id!r}].tolist()",
             f"values = arrays[{'rows/' + case.id!r}][[at.index(list(p)) for p in {picks}]]  "
             f"# rows {', '.join(str(p[0]) if len(p) == 1 else str(p) for p in picks)} of "
             f"{said}, kept in the bundle"]
    return shown, [(i,) for i in range(len(picks))], lines
