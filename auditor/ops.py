"""Argmax and its twins: the formulations users write for the same answer, and what each promises.

An op is audited on the exact values a target saw, against the reference of its sense: `max`
(the first maximum, NaN counted as the maximum) for argmax and its twins, `min` (the first minimum,
NaN counted as the minimum) for argmin. Where a framework documents that a twin does not promise
the first index, `DOCUMENTED` says so with the documentation's own words, and the checks report
such a difference as a warning that cites it.

The worker's adapters (auditor/worker/backends/) implement the same formulations; `expression`
here is the line a reproducer prints, kept beside the description of each twin.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Op:
    """One formulation: the frameworks that have it, its sense and what it is in words."""

    name: str
    frameworks: tuple
    sense: str  # "max" or "min"
    words: str


OPS = {
    "argmax": Op("argmax", ("numpy", "torch", "jax"), "max", "argmax"),
    "argmin": Op("argmin", ("numpy", "torch", "jax"), "min",
                 "argmin, against the mirrored rule (first minimum, NaN first)"),
    "max": Op("max", ("torch",), "max", "torch.max(x, dim).indices"),
    "topk": Op("topk", ("torch", "jax"), "max", "torch.topk(x, 1, dim).indices; jax.lax.top_k(x, 1)"),
    "argsort": Op("argsort", ("numpy",), "max",
                  "np.argsort(x, kind='stable') read from the right end"),
}
DEFAULT = "argmax"


def for_framework(framework):
    """Return the names of the ops `framework` has, argmax first."""
    return [name for name, op in OPS.items() if framework in op.frameworks]


def sense(op):
    return OPS[op].sense


@dataclass(frozen=True)
class Documented:
    """A framework's own words saying that a twin may return another index than the first."""

    url: str
    quote: str
    picks: str  # "any": any of the equal candidates; "last": the last of them
    meaning: str  # what that means for a top-1 answer, in a sentence for the finding

    def covers(self, ordered_row, returned, candidates):
        """True when index `returned` into `ordered_row` is a pick this documentation allows.

        `candidates` is the mask of the row's maximizers (its NaNs where it holds NaN).
        """
        if not 0 <= returned < len(ordered_row) or not candidates[returned]:
            return False
        return self.picks == "any" or returned == int(np.flatnonzero(candidates)[-1])

    def to_json(self):
        return {"url": self.url, "quote": self.quote, "meaning": self.meaning}


DOCUMENTED = {
    ("torch", "topk"): Documented(
        url="https://docs.pytorch.org/docs/stable/generated/torch.topk.html",
        quote=("When using torch.topk, the indices of tied elements are not guaranteed to be "
               "stable and may vary across different invocations."),
        picks="any",
        meaning="does not promise which of equal values (tied maxima, or NaNs) comes first"),
    ("numpy", "argsort"): Documented(
        url="https://numpy.org/doc/stable/reference/generated/numpy.sort.html",
        quote=("A stable sort keeps items with the same key in the same relative order. [...] "
               "In numpy versions >= 1.4.0 nan values are sorted to the end."),
        picks="last",
        meaning="read from the right end gives the last of equal values (and the last NaN)"),
}
#: The kinds a documented twin difference can be: a later tied maximum, or a later NaN.
DOCUMENTED_KINDS = ("tie_break", "nan_policy")


def documented(framework, op):
    """Return the Documented note of `op` on `framework`, or None where it promises the rule."""
    return DOCUMENTED.get((framework, op))


def describe(framework, op, dim, keepdim):
    """Return the call in words, for a finding's sentence: `topk(x, 1, dim=1).indices`."""
    keep = ", keepdim=True" if keepdim else ""
    if op in ("argmax", "argmin"):
        return f"{op}(x, dim={dim}{keep})"
    if op == "max":
        return f"max(x, dim={dim}{keep}).indices"
    if op == "topk":
        text = "topk(x, 1, dim={dim}).indices" if framework == "torch" else "lax.top_k(x, 1) along dim {dim}"
        return text.format(dim=dim) + (" (keepdim)" if keepdim else "")
    return f"argsort(x, axis={dim}, kind='stable')[-1]" + (" (keepdim)" if keepdim else "")


def expression(framework, op, dim, keepdim):
    """Return the Python expression of `op` on `x` as a reproducer writes it (one line)."""
    if op in ("argmax", "argmin"):
        module = {"numpy": "np", "torch": "torch", "jax": "jnp"}[framework]
        if framework == "torch":
            return f"torch.{op}(x, dim={dim}, keepdim={keepdim})"
        return f"{module}.{op}(x, axis={dim}, keepdims={keepdim})"
    keep_all = ".reshape((1,) * x.ndim)" if keepdim else ""
    if op == "max":
        if dim is None:
            return f"torch.max(x.reshape(-1), 0).indices{keep_all}"
        return f"torch.max(x, dim={dim}, keepdim={keepdim}).indices"
    if op == "topk" and framework == "torch":
        if dim is None:
            return f"torch.topk(x.reshape(-1), 1).indices[0]{keep_all}"
        return f"torch.topk(x, 1, dim={dim}).indices" + ("" if keepdim else f".squeeze({dim})")
    if op == "topk":
        if dim is None:
            return f"jax.lax.top_k(x.reshape(-1), 1)[1][0]{keep_all}"
        picked = f"jax.lax.top_k(jnp.moveaxis(x, {dim}, -1), 1)[1][..., 0]"
        return f"jnp.expand_dims({picked}, {dim})" if keepdim else picked
    if dim is None:
        return f"np.argsort(x, axis=None, kind='stable')[-1]{keep_all}"
    return f"np.take(np.argsort(x, axis={dim}, kind='stable'), {[-1] if keepdim else -1}, axis={dim})"
