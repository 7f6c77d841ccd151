"""Argmax and its twins: the formulations users write for the same answer, and what each promises.

An op is audited on the exact values a target saw, against the reference of its sense: `max`
(the first maximum, NaN counted as the maximum) for argmax and its twins, `min` (the first minimum,
NaN counted as the minimum) for argmin. Where a framework documents that a twin does not promise
the first index, `DOCUMENTED` says so with the documentation's own words, and the checks report
such a difference as a warning that cites it.

Each backend (auditor/worker/backends/) declares its ops: their sense, their call in words and
as a reproducer's line, and their documented promise. This module gathers them for the driver.
"""
from dataclasses import dataclass

from . import registry
from .worker.backends.base import Documented as Documented  # re-exported


@dataclass(frozen=True)
class Op:
    """One formulation: the frameworks that have it, its sense and what it is in words."""

    name: str
    frameworks: tuple
    sense: str  # "max" or "min"
    words: str


_tables = {}
#: The order ops are listed and run in (argmax first); others follow as backends declare them.
_ORDER = ("argmax", "argmin", "max", "topk", "argsort")


def table():
    """Return {op name: Op} gathered from the registered backends (recomputed when they change)."""
    entries = registry.entries()
    if _tables.get("of") is not entries:
        ops, documents = {}, {}
        for backend in registry.backends().values():
            for name, spec in backend.ops.items():
                known = ops.get(name)
                if known is None:
                    ops[name] = Op(name, (backend.name,), spec.sense, spec.words)
                elif backend.name not in known.frameworks:
                    words = known.words if spec.words in known.words.split("; ") else (
                        f"{known.words}; {spec.words}")
                    ops[name] = Op(name, (*known.frameworks, backend.name), known.sense, words)
                if spec.documented is not None:
                    documents[backend.name, name] = spec.documented
        rank = {name: i for i, name in enumerate(_ORDER)}
        ops = dict(sorted(ops.items(), key=lambda item: rank.get(item[0], len(_ORDER))))
        _tables.update(of=entries, ops=ops, documented=documents)
    return _tables["ops"]


def __getattr__(name):
    """`OPS` ({op name: Op}) and `DOCUMENTED` ({(framework, op): Documented}), from the backends."""
    if name == "OPS":
        return table()
    if name == "DOCUMENTED":
        table()
        return _tables["documented"]
    raise AttributeError(name)


DEFAULT = "argmax"


def for_framework(framework):
    """Return the names of the ops `framework` has, argmax first."""
    return [name for name, op in table().items() if framework in op.frameworks]


def sense(op):
    """Return "max" or "min": the rule `op` is judged by ("max" for an op no backend knows)."""
    known = table().get(op)
    if known is not None:
        return known.sense
    return "min" if op == "argmin" else "max"


def _spec(framework, op):
    try:
        return registry.get(framework).ops.get(op)
    except KeyError:
        return None


#: The kinds a documented twin difference can be: a later tied maximum, or a later NaN.
DOCUMENTED_KINDS = ("tie_break", "nan_policy")


def documented(framework, op):
    """Return the Documented note of `op` on `framework`, or None where it promises the rule."""
    spec = _spec(framework, op)
    return spec.documented if spec is not None else None


def _fields(dim, keepdim):
    return {"dim": dim, "keepdim": keepdim, "keep": ", keepdim=True" if keepdim else "",
            "keep_note": " (keepdim)" if keepdim else "",
            "keep_all": ".reshape((1,) * x.ndim)" if keepdim else "",
            "squeeze": "" if keepdim else f".squeeze({dim})"}


def _render(template, dim, keepdim):
    if callable(template):
        return template(dim, keepdim)
    return template.format(**_fields(dim, keepdim))


def describe(framework, op, dim, keepdim):
    """Return the call in words, for a finding's sentence: `topk(x, 1, dim=1).indices`."""
    spec = _spec(framework, op)
    if spec is None:  # a backend not installed here (a bundle from elsewhere)
        keep = ", keepdim=True" if keepdim else ""
        return f"{op}(x, dim={dim}{keep})"
    template = spec.call_none if dim is None and spec.call_none else spec.call
    return _render(template, dim, keepdim)


def expression(framework, op, dim, keepdim):
    """Return the Python expression of `op` on `x` as a reproducer writes it (one line)."""
    spec = registry.get(framework).ops[op]
    template = spec.expression_none if dim is None and spec.expression_none else spec.expression
    return _render(template, dim, keepdim)
