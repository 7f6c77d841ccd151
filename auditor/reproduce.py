"""Short Python scripts that reproduce a finding with the framework alone.

The framework's own lines (imports, the native array, views, the call through its variant) come
from its backend (`Backend.reproducer`, `call_lines`, `setting_lines`); this module lays out the
script around them.

A script calls what the target called: its op (argmax, argmin, or a twin such as
`torch.topk(x, 1, dim=1).indices`) or the user's implementation, through its variant (the thread
count or deterministic mode set first, the call wrapped in torch.compile, jax.jit or
jax.disable_jit, jax's x64 mode or XLA flags set before jax starts).
"""
import os

import numpy as np

from . import lean, ops, registry, variants
from .worker import layouts
from .worker.casting import is_integer

INLINE_LIMIT = 256
SPARSE_LIMIT = 48
SPARSE_SCAN_LIMIT = 1 << 20  # larger inputs load from the bundle instead of being scanned

#: Calls a nondeterministic finding's reproducer makes, counting each answer.
LOOP_CALLS = 1000


def _literal(value):
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if np.isnan(value):
        return "-np.nan" if np.signbit(value) else "np.nan"
    if np.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    return repr(value)


def values_lines(case, bundle_path):
    """Return lines that rebuild the case's exact source values (float32, float64, integers or
    bool) as `values`."""
    values = case.values
    shape = tuple(values.shape)
    flat = values.reshape(-1)
    kind = f"np.{values.dtype.name}"
    if flat.size <= INLINE_LIMIT:
        items = ", ".join(_literal(v) for v in flat)
        return [f"values = np.array([{items}], dtype={kind}).reshape({shape})"]
    if 0 < flat.size <= SPARSE_SCAN_LIMIT:
        bits = flat.view(f"u{values.dtype.itemsize}")  # bit patterns: -0.0 and NaNs kept apart
        uniq, counts = np.unique(bits, return_counts=True)
        fill_bits = uniq[np.argmax(counts)]
        others = np.flatnonzero(bits != fill_bits)
        if len(others) <= SPARSE_LIMIT:
            fill = flat[np.flatnonzero(bits == fill_bits)[0]]
            return [f"values = np.full({shape}, {_literal(fill)}, dtype={kind})",
                    f"values.reshape(-1)[[{', '.join(str(i) for i in others)}]] = "
                    f"[{', '.join(_literal(flat[i]) for i in others)}]"]
    kept = lean.stored_name(case)  # a large input kept whole: a file of its own
    if kept:
        return [f"values = np.load({bundle_path + '/' + kept!r})  # the input's exact values, "
                "saved by the audit"]
    return [f"values = np.load({bundle_path + '/arrays.npz'!r})[{'case/' + case.id!r}]  "
            "# the case's exact values, saved by the audit"]


def narrowing_lines(case, dtype):
    """Return the lines that convert `values` to `dtype` as the audit does where the framework's
    own conversion would differ: integers saturate to the dtype's range (bool: positive is True),
    float64 sources go to bfloat16 through float32."""
    source = case.values.dtype
    if is_integer(dtype):
        if dtype == "bool":
            return ["values = values > 0  # the audit's bool: positive is True"]
        into, have = np.iinfo(dtype), np.iinfo(np.int64 if source.kind == "b" else source)
        low, high = max(into.min, have.min), min(into.max, have.max)
        if (low, high) == (have.min, have.max) and source == np.dtype(dtype):
            return []
        return [f"values = np.clip(values, {low}, {high}).astype(np.{dtype})  "
                f"# the audit saturates to {dtype}'s range"]
    if source == np.float64 and dtype != "float64":
        wide = "float32" if dtype == "bfloat16" else dtype
        return [f"values = values.astype(np.{wide})  # rounded as the audit rounds to {dtype}"]
    return []


def base_lines(case):
    """Return the lines that build `base`, the memory the case's layout views."""
    layout, shape = case.layout, tuple(case.values.shape)
    if layout == "contiguous" or not shape:
        return ["base = values"]
    if layout == "transposed" or layout.startswith("permuted-"):
        order = tuple(int(a) for a in np.argsort(layouts.steps(layout, shape)[0][1]))
        return [f"base = np.ascontiguousarray(values.transpose({order}))  # memory: axes {order}"]
    if layout == "strided":
        return ["base = np.zeros(values.shape[:-1] + (2 * values.shape[-1],), values.dtype)",
                "base[..., ::2] = values                     # memory: every other element"]
    if layout == "reversed":
        return [f"base = np.ascontiguousarray(values[{', '.join(['::-1'] * len(shape))}])  "
                "# memory: every axis reversed"]
    if layout == "offset":
        return [f"base = np.concatenate([np.zeros({layouts.OFFSET}, values.dtype), "
                f"values.reshape(-1)])  # memory: {layouts.OFFSET} elements before the view"]
    if layout == "window":
        where = _slice_text(layouts.steps(layout, shape)[0][1])
        return [f"base = np.zeros({tuple(n + 3 for n in shape)}, values.dtype)",
                f"base[{where}] = values  # memory: a block inside a larger array"]
    return ["base = np.ascontiguousarray(values[:1])     # memory: one row, stride 0"]


def _slice_text(spec):
    """Return a `slice` step's (start, stop, step) triples as the text inside `x[...]`."""
    return ", ".join(":".join("" if v is None else str(v) for v in triple).removesuffix(":")
                     for triple in spec)


def view_lines(case, framework):
    """Return the lines that view `x` (the base moved to the framework) as the case's layout."""
    templates = registry.get(framework).reproducer
    lines = []
    for op, arg in layouts.steps(case.layout, tuple(case.values.shape)):
        if op == "permute":
            lines.append(templates["permute"].format(arg))
        elif op == "slice":
            lines.append(f"x = x[{_slice_text(arg)}]")
        elif op == "reshape":
            lines.append(f"x = x.reshape({arg})")
        else:
            lines.append(templates["broadcast"].format(arg))
    return lines


def _impl_lines(target):
    module, function = target.impl.rsplit(":", 1)
    alias = _impl_alias(target)
    if module.endswith(".py") or "/" in module:
        path = os.path.abspath(module)
        return ["import importlib.util, sys",
                f"spec = importlib.util.spec_from_file_location('impl', {path!r})",
                "impl = sys.modules['impl'] = importlib.util.module_from_spec(spec)",
                f"spec.loader.exec_module(impl); {alias} = impl.{function}"]
    return ["import sys", f"sys.path.insert(0, {os.getcwd()!r})  # where the audit found {module}",
            f"from {module} import {function} as {alias}"]


def _impl_alias(target):
    """The name a reproducer gives a user implementation: argmax, or argmin for @argmin ones."""
    return "argmin" if target.op == "argmin" else "argmax"


def _picks(case, target, positions):
    """Return (expression printing the answer at `positions`, the reference there)."""
    expected = None if case.must_raise else case.reference(target.dtype, target.sense)
    if expected is not None and expected.size == 0:
        expected = None
    indices = registry.get(target.framework).reproducer["indices"]
    if positions and case.dim is not None:
        picks = [tuple(int(i) for i in p) for p in positions[:3]]
        return (f"[int({indices}[p]) for p in {picks}]",
                None if expected is None else [int(expected[p]) for p in picks])
    return (f"int({indices}.reshape(-1)[0])",
            None if expected is None else int(np.asarray(expected).reshape(-1)[0]))


def _functions(case, target):
    """Return the lines of `make(dtype)` (the input, built as the audit built it) and `run(dtype)`."""
    backend = registry.get(target.framework)
    make = [backend.reproducer["native"].format(device=backend.device_expression(target.device),
                                                dtype="dtype")]
    make += view_lines(case, target.framework)
    if target.impl:
        expression = f"{_impl_alias(target)}(x, dim={case.dim}, keepdim={case.keepdim})"
    else:
        expression = ops.expression(target.framework, target.op, case.dim, case.keepdim)
    variant = variants.parse(target.variant)
    compiled, call = backend.call_lines(variant.mode, variant.name, expression)
    return [*compiled, "", "", "def make(dtype):", *(f"    {line}" for line in make), "    return x",
            "", "", "def run(dtype):", "    x = make(dtype)", *call, "    return x, r", "", ""]


def _setting_lines(backend, variant):
    """Return (lines before the framework's import, lines right after it) that set `variant`'s
    process state as the audit's worker did."""
    modifiers = {key: value if value is not None else True for key, value in variant.modifiers}
    return backend.setting_lines(modifiers)


def reproducer(case, target, positions=(), bundle_path="audit-results", repeat=False, saw=None,
               show="positions", against=None, observed=None):
    """Return a script that calls argmax as the audit did and prints what came back.

    `saw` is what the audit observed; `show` is "positions" (the indices at `positions`), "api"
    (type, dtype and shape of the result), "mutated" (whether the call changed its input), or
    "call" (just the call, which raised or died). `against` (a dtype) adds a run in that dtype
    printed before the target's, and `saw` is then the pair; `repeat` calls LOOP_CALLS times
    and prints how often each answer came.
    `observed` is a sentence for a note where the printed value is not the audit's own.
    """
    try:
        backend = registry.get(target.framework)
    except KeyError:  # a bundle read where its backend is not installed
        return f"# no reproducer: the {target.framework} backend is not installed here"
    built = None
    if case.lean:  # no copy of the input in the bundle: its kept rows, or its file by name
        case, positions, built = lean.reproducer_input(case, positions, bundle_path)
    before, after = _setting_lines(backend, variants.parse(target.variant))
    dtypes = [d for d in (target.dtype, against) if d]
    lines = [*before, "import numpy as np", *backend.import_lines(dtypes), *after]
    if target.impl:
        lines += _impl_lines(target)
    lines += built or values_lines(case, bundle_path)
    lines += narrowing_lines(case, target.dtype)
    lines += base_lines(case)
    lines += _functions(case, target)
    dtype = backend.dtype_expression(target.dtype)
    expression, expected = _picks(case, target, positions)
    note = f"  # the audit saw {saw}" if saw is not None else (
        f"  # the audit observed: it {observed}" if observed else "")
    if show == "call":
        lines.append(f"x, r = run({dtype})")
    elif show == "api":
        lines += [f"x, r = run({dtype})",
                  "print(type(r).__name__, getattr(r, 'dtype', None), tuple(getattr(r, 'shape', ())))"
                  + note]
    elif show == "mutated":
        to_numpy = backend.reproducer["to_numpy"]
        after, fresh = to_numpy.format("x"), to_numpy.format(f"make({dtype})")
        lines += [f"x, r = run({dtype})",
                  f"print('input changed in place:', not np.array_equal({after}, {fresh}, equal_nan=True))"
                  + note]
    elif repeat:
        lines += ["counts = {}", f"for _ in range({LOOP_CALLS}):", f"    x, r = run({dtype})",
                  f"    answer = str({expression})",
                  "    counts[answer] = counts.get(answer, 0) + 1",
                  f"print(counts)  # each answer and how many of {LOOP_CALLS} calls gave it; more "
                  "than one: nondeterministic (run it in several processes too)" + note]
    elif against:
        lines += ["answers = []", f"for dtype in ({backend.dtype_expression(against)}, {dtype}):",
                  "    x, r = run(dtype)", f"    answers.append({expression})",
                  "print(answers)" + note + f" ({against}, then {target.dtype})"]
    else:
        if expected is not None:
            rule = "first maximum" if target.sense == "max" else "first minimum"
            note += ("; " if note else "  # ") + f"the reference ({rule}, first NaN) is {expected}"
        lines += [f"x, r = run({dtype})", f"print({expression})" + note]
    return "\n".join(lines)
