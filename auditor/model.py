"""The data the stages pass on: cases, targets, outcomes, observations and findings."""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np

from . import chunks, ops
from .oracle import oriented
from .worker import layouts
from .worker.casting import DTYPES as DTYPES  # re-exported: the one list of dtypes
from .worker.casting import family, seen_values


def __getattr__(name):
    """`FRAMEWORKS`: the names of the registered backends (auditor/registry.py), in order."""
    if name == "FRAMEWORKS":
        from . import registry
        return tuple(registry.names())
    raise AttributeError(name)


LOW_PRECISION = ("float16", "bfloat16")
SEVERITIES = ("info", "warning", "error")

#: The fixed vocabulary of finding kinds (DESIGN.md) and the severity each has by default.
KINDS = {
    "nondeterministic": "error",
    "wrong_index": "error",
    "tie_break": "error",
    "nan_policy": "error",
    "precision_drift": "warning",
    "api_mismatch": "error",
    "crash": "error",
    "regression": "error",
}


def severity_rank(severity):
    """Return the order of `severity` (higher is worse)."""
    return SEVERITIES.index(severity)


@dataclass
class Case:
    """An input (source values) and the call made on it.

    The source values are float32, float64 (values only float64 holds), or integers (int64, or
    uint64 past int64's range) and bool: a float case runs on the floating dtypes, an integer case
    on the integer ones and bool (see worker/casting.py). `dtypes` narrows that to some dtypes
    (empty: all of its family); `sense` to argmax and its twins ("max") or argmin ("min"); empty:
    every op. The tag `race` asks for more calls: threads can race on it.
    """

    id: str
    values: np.ndarray
    dim: int | None
    keepdim: bool = False
    layout: str = "contiguous"
    tags: tuple = ()
    note: str = ""
    sense: str = ""
    dtypes: tuple = ()
    #: Where a user input came from: {"path", "size", "format", "key", "offset", "dtype",
    #: "sha256"}; "offset" is the byte offset of the array's data in the file where a large
    #: input is memory-mapped from there (auditor/mapped.py), else None.
    origin: dict | None = None
    #: True when the bundle keeps no copy of the values (a large user input: see auditor/lean.py)
    lean: bool = False
    #: A lean case read from a bundle: its stored rows and reference answers (lean.Stored).
    stored: object = field(default=None, repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        ndim = np.ndim(self.values)
        if self.dim is not None and not -max(ndim, 1) <= self.dim < max(ndim, 1):
            raise ValueError(f"case {self.id}: dim {self.dim} is out of range for {ndim} dims")
        if self.dim is not None and ndim == 0:
            raise ValueError(f"case {self.id}: a 0-d input takes dim=None")
        layouts.check(self.layout, ndim)
        if self.layout == "broadcast" and ndim and self.values.shape[0] and not (
                self.values == self.values[:1]).all() and not np.isnan(self.values).any():
            raise ValueError(f"case {self.id}: a broadcast layout needs equal entries along dim 0")

    @property
    def shape(self):
        return tuple(self.values.shape)

    @property
    def family(self):
        """"int" for integer and bool source values, "float" otherwise."""
        return "int" if self.values.dtype.kind in "iub" else "float"

    def applies(self, dtype, sense="max"):
        """True when this case is for targets of `dtype` whose op follows `sense`."""
        return (family(dtype) == self.family and (not self.dtypes or dtype in self.dtypes)
                and (not self.sense or self.sense == sense))

    @property
    def axis(self):
        """The reduced axis as a non-negative number, or None for dim=None."""
        return None if self.dim is None else self.dim % max(self.values.ndim, 1)

    @property
    def must_raise(self):
        """True when the reduction runs over zero elements, which every framework must refuse."""
        if self.dim is None:
            return self.values.size == 0
        return self.values.ndim > 0 and self.values.shape[self.axis] == 0

    @property
    def output_shape(self):
        shape = self.shape
        if self.dim is None:
            return (1,) * len(shape) if self.keepdim else ()
        if self.keepdim:
            return shape[: self.axis] + (1,) + shape[self.axis + 1 :]
        return shape[: self.axis] + shape[self.axis + 1 :]

    def seen(self, dtype):
        """Return the exact values a target of `dtype` sees, widened losslessly (computed once)."""
        if ("seen", dtype) not in self._cache:
            self._cache["seen", dtype] = seen_values(self.values, dtype)
        return self._cache["seen", dtype]

    def ordered(self, dtype, sense="max"):
        """Return the seen values as the rule of `sense` orders them (negated for argmin), so
        that the first maximum of the result is the reference (computed once)."""
        if sense == "max":
            return self.seen(dtype)
        if ("ordered", dtype, sense) not in self._cache:
            self._cache["ordered", dtype, sense] = oriented(self.seen(dtype), sense)
        return self._cache["ordered", dtype, sense]

    def _orders(self, dtype, sense):
        """Return the function that turns a block of source values into ordered values."""
        return lambda block: oriented(seen_values(block, dtype), sense)

    def reference(self, dtype, sense="max"):
        """Return the reference indices for a target of `dtype` and `sense` (computed once, in
        blocks of rows: see auditor/chunks.py; a lean case read from a bundle has them stored)."""
        key = ("reference", dtype, sense)
        if key not in self._cache:
            stored = self.stored.references.get((dtype, sense)) if self.stored else None
            self._cache[key] = stored if stored is not None else chunks.reference(
                self.values, self._orders(dtype, sense), self.dim, self.keepdim,
                summary=self._summary(dtype, sense))
        return self._cache[key]

    def _summary(self, dtype, sense):
        """Return the per-row facts of `chunks.row_summary` (computed once), or None where the
        rows are the whole input (dim=None, or a vector)."""
        if self.dim is None or self.values.ndim < 2 or self.values.shape[self.axis] == 0:
            return None
        if ("summary", dtype, sense) not in self._cache:
            self._cache["summary", dtype, sense] = chunks.row_summary(
                self.values, self._orders(dtype, sense), self.axis)
        return self._cache["summary", dtype, sense]

    def policies(self, dtype, indices, sense="max"):
        """Return (tie policy, NaN policy) of the answer `indices` (see oracle.policies)."""
        if self.values.size == 0 or self.values.ndim == 0:
            return "none", "none"
        key = ("policies", dtype, sense, answers_key(indices))
        if self.stored is not None and key[1:] in self.stored.policies:
            return self.stored.policies[key[1:]]
        if key not in self._cache:
            if self.dim is None:
                indices = np.asarray(indices).reshape(1)
            elif self.keepdim:
                indices = np.squeeze(indices, self.axis)
            self._cache[key] = chunks.policies(self.values, self._orders(dtype, sense), self.axis,
                                               indices, summary=self._summary(dtype, sense))
        return self._cache[key]

    def source_row(self, position):
        """Return the source values output `position` reduces over (a lean case's from its
        stored rows where it has them)."""
        if self.stored is not None:
            row = self.stored.row(position, self)
            if row is not None:
                return row
        return self.row(self.values, position)

    def seen_row(self, dtype, position):
        """Return the values a target of `dtype` saw in the row of output `position`, widened."""
        return seen_values(self.source_row(position), dtype)

    def ordered_row(self, dtype, sense, position):
        """Return `seen_row` as the rule of `sense` orders it (negated for argmin)."""
        return oriented(self.seen_row(dtype, position), sense)

    def row(self, values, position):
        """Return the 1-d slice of `values` that output `position` reduces over."""
        if self.dim is None:
            return values.reshape(-1)
        position = tuple(position)
        if self.keepdim:
            position = position[: self.axis] + position[self.axis + 1 :]
        return values[position[: self.axis] + (slice(None),) + position[self.axis :]]

    def describe_call(self, target=None):
        """Return the call `target` (default: argmax) made on this case, in words."""
        if target is None:
            keep = ", keepdim=True" if self.keepdim else ""
            return f"argmax(x, dim={self.dim}{keep})"
        return ops.describe(target.framework, target.op, self.dim, self.keepdim)

    def where(self, position):
        """Name output `position` for a sentence: 'row 17', 'column 3', 'position (2, 4)'."""
        if self.dim is None or not position:
            return "the whole input" if self.values.ndim > 1 else "the input"
        position = tuple(int(p) for p in position)
        if self.values.ndim == 2 and not self.keepdim:
            return f"{'row' if self.axis == 1 else 'column'} {position[0]}"
        if len(position) == 1:
            return f"row {position[0]}"
        return f"position {position}"


def answers_key(indices):
    """Return a short key of an answer array (its shape and the sha256 of its int64 bytes)."""
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    return f"{'x'.join(map(str, indices.shape))}:{hashlib.sha256(indices.tobytes()).hexdigest()}"


@dataclass(frozen=True)
class Target:
    """One way of computing argmax: framework (or user implementation) x device x dtype x
    variant (the code path: eager, compile, jit, threads=1, ...) x op (argmax or a twin).

    Its id reads `torch/cpu/float16`, `torch/cpu/float16/compile`, `torch.topk/cpu/float32`,
    `jax.argmin/cpu/float32/jit`: the op joins the framework's name unless it is argmax, the
    variant follows the dtype unless it is eager. `settings` records what can change the answer
    (thread count, deterministic mode, x64, XLA_FLAGS, ...) as the worker saw it during the calls.
    """

    framework: str
    device: str
    dtype: str
    variant: str = "eager"
    env: str = "local"
    impl: str | None = None
    index_dtype: str = field(default="int64", compare=False)
    op: str = "argmax"
    settings: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self):
        name = f"{self.framework}[{self.impl}]" if self.impl else self.framework
        return name if self.op == ops.DEFAULT else f"{name}.{self.op}"

    @property
    def sense(self):
        """"max" for argmax and its twins, "min" for argmin: the reference the target follows."""
        return ops.sense(self.op)

    @property
    def id(self):
        text = f"{self.name}/{self.device}/{self.dtype}"
        if self.variant != "eager":
            text += f"/{self.variant}"
        return text if self.env == "local" else f"{text}@{self.env}"

    @property
    def lane(self):
        """The target without its dtype: the targets compared for precision drift."""
        return (self.name, self.device, self.variant, self.env)

    def to_json(self):
        return {"id": self.id, **dataclasses.asdict(self)}


#: Error types that say the run itself broke (the process died or hung, the input could not be
#: built), as opposed to the target raising an exception.
CRASHES = ("ProcessDied", "Timeout", "WorkerError", "SetupError")


@dataclass
class Outcome:
    """One distinct result of a target on a case and the runs (process, repeat) that gave it."""

    runs: list
    indices: np.ndarray | None = None
    dtype: str | None = None
    type: str | None = None
    error: dict | None = None

    @property
    def kind(self):
        """Return 'indices', 'raised', 'bad_return' (garbage came back), 'mutated' (a note that
        the input was changed in place) or 'crashed' (the process died or hung)."""
        if self.error is None:
            return "indices"
        return {"BadReturn": "bad_return", "MutatedInput": "mutated"}.get(
            self.error["type"], "crashed" if self.error["type"] in CRASHES else "raised")

    @property
    def failed(self):
        return self.error is not None

    @property
    def crashed(self):
        return self.kind == "crashed"

    @property
    def is_answer(self):
        """True for what a call gave back: indices, an exception, or garbage."""
        return self.kind in ("indices", "raised", "bad_return")

    def same_result(self, other):
        """Equal indices (and dtype), or errors of the same type (messages may hold addresses)."""
        if self.failed or other.failed:
            return self.failed and other.failed and self.error["type"] == other.error["type"]
        return (self.dtype == other.dtype and self.indices.shape == other.indices.shape
                and np.array_equal(self.indices, other.indices))


@dataclass
class Finding:
    """One problem, with the values that explain it and a reproducer."""

    check: str
    kind: str
    message: str
    targets: list
    case: str | None = None
    severity: str = ""
    positions: list = field(default_factory=list)
    count: int = 0
    evidence: dict = field(default_factory=dict)
    reproducer: str = ""
    allowed: str | None = None

    def __post_init__(self):
        self.severity = self.severity or KINDS[self.kind]

    def to_json(self):
        return dataclasses.asdict(self)


@dataclass
class Observations:
    """Everything measured: cases, targets and every outcome of every target on every case."""

    cases: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    outcomes: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    startup_errors: dict = field(default_factory=dict)  # framework -> why its worker never started
    bundle_path: str = "audit-results"

    def add(self, target_id, case_id, outcomes):
        """Merge `outcomes` of one process into what `target_id` gave on `case_id`."""
        known = self.outcomes.setdefault((target_id, case_id), [])
        for outcome in outcomes:
            match = next((k for k in known if k.same_result(outcome)), None)
            if match is None:
                known.append(outcome)
            else:
                match.runs.extend(outcome.runs)

    def of_target(self, target_id):
        """Yield (case, outcomes) for every case `target_id` ran."""
        for (tid, cid), outcomes in self.outcomes.items():
            if tid == target_id:
                yield self.cases[cid], outcomes

    def by_case(self):
        """Return {case id: {target id: outcomes}}."""
        grouped = {}
        for (tid, cid), outcomes in self.outcomes.items():
            grouped.setdefault(cid, {})[tid] = outcomes
        return grouped

    def modal(self, target_id, case_id):
        """Return the answer most runs of `target_id` gave on `case_id`, or None."""
        answers = [o for o in self.outcomes.get((target_id, case_id), ()) if o.is_answer]
        return max(answers, key=lambda o: len(o.runs)) if answers else None
