"""Short Python scripts that reproduce a finding with the framework alone."""
import numpy as np

INLINE_LIMIT = 64
SPARSE_LIMIT = 48
SPARSE_SCAN_LIMIT = 1 << 20  # larger inputs load from the bundle instead of being scanned

_NATIVE = {
    "numpy": ("import numpy as np", "x = base.astype({np_dtype})", "r = np.argmax(x, axis={dim}, keepdims={keepdim})"),
    "torch": ("import torch", "x = torch.from_numpy(base).to(device={device!r}, dtype=torch.{dtype})",
              "r = torch.argmax(x, dim={dim}, keepdim={keepdim})"),
    "jax": ("import jax, jax.numpy as jnp", "x = jax.device_put(base.astype({np_dtype}), {jax_device})",
            "r = jnp.argmax(x, axis={dim}, keepdims={keepdim})"),
}
_VIEWS = {
    "numpy": {"transposed": "x = x.T", "strided": "x = x[..., ::2]",
              "broadcast": "x = np.broadcast_to(x, {shape})"},
    "torch": {"transposed": "x = x.permute(*reversed(range(x.ndim)))", "strided": "x = x[..., ::2]",
              "broadcast": "x = x.expand(*{shape})"},
    "jax": {"transposed": "x = jnp.transpose(x)", "strided": "x = x[..., ::2]",
            "broadcast": "x = jnp.broadcast_to(x, {shape})"},
}
_BASES = {
    "transposed": "base = np.ascontiguousarray(values.T)      # memory: column-major",
    "strided": ("base = np.zeros(values.shape[:-1] + (2 * values.shape[-1],), np.float32)\n"
                "base[..., ::2] = values                     # memory: every other element"),
    "broadcast": "base = np.ascontiguousarray(values[:1])     # memory: one row, stride 0",
}


def _literal(value):
    value = float(value)
    if np.isnan(value):
        return "-np.nan" if np.signbit(value) else "np.nan"
    if np.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    return repr(value)


def values_lines(case, bundle_path):
    """Return lines that rebuild the case's exact float32 source values as `values`."""
    values = case.values
    shape = tuple(values.shape)
    flat = values.reshape(-1)
    if flat.size <= INLINE_LIMIT:
        items = ", ".join(_literal(v) for v in flat)
        return [f"values = np.array([{items}], dtype=np.float32).reshape({shape})"]
    if 0 < flat.size <= SPARSE_SCAN_LIMIT:
        uniq, counts = np.unique(flat.view(np.uint32), return_counts=True)
        fill_bits = uniq[np.argmax(counts)]
        others = np.flatnonzero(flat.view(np.uint32) != fill_bits)
        if len(others) <= SPARSE_LIMIT:
            fill = flat[np.flatnonzero(flat.view(np.uint32) == fill_bits)[0]]
            return [f"values = np.full({shape}, {_literal(fill)}, dtype=np.float32)",
                    f"values.reshape(-1)[[{', '.join(str(i) for i in others)}]] = "
                    f"[{', '.join(_literal(flat[i]) for i in others)}]"]
    return [f"values = np.load({bundle_path + '/arrays.npz'!r})[{'case/' + case.id!r}]  "
            "# the case's exact values, saved by the audit"]


def _impl_lines(target):
    module, function = target.impl.rsplit(":", 1)
    if module.endswith(".py") or "/" in module:
        return [f"import importlib.util, os  # load {module}",
                f"spec = importlib.util.spec_from_file_location('impl', os.path.abspath({module!r}))",
                "impl = importlib.util.module_from_spec(spec); spec.loader.exec_module(impl)",
                f"argmax = impl.{function}"]
    return [f"from {module} import {function} as argmax"]


def _to_numpy(fw):
    return {"torch": "np.asarray(r.cpu())", "jax": "np.asarray(r)"}.get(fw, "np.asarray(r)")


def _show(case, target, positions, show):
    """Return the expression printed at the end, and the values it gives for the reference."""
    if show == "api":
        return "(type(r).__name__, r.dtype, tuple(r.shape))", None
    if show == "call":
        return None, None
    expected = None if case.must_raise else case.reference(target.dtype)
    if positions and case.dim is not None:
        picks = [tuple(int(i) for i in p) for p in positions[:3]]
        expression = f"[int({_to_numpy(target.framework)}[p]) for p in {picks}]"
        return expression, None if expected is None else [int(expected[p]) for p in picks]
    expression = f"int({_to_numpy(target.framework)}.reshape(-1)[0])"
    return expression, None if expected is None else int(np.asarray(expected).reshape(-1)[0])


def reproducer(case, target, positions=(), bundle_path="audit-results", repeat=False, saw=None,
               show="positions"):
    """Return a script that calls argmax as the audit did and prints what came back.

    `saw` is what the audit observed at the printed positions; `show` is "positions" (indices
    there), "api" (type, dtype and shape of the result) or "call" (just the call, which raised).
    """
    fw = target.framework
    imports, native, call = _NATIVE[fw]
    fields = dict(device=target.device, dtype=target.dtype, dim=case.dim, keepdim=case.keepdim,
                  shape=tuple(case.values.shape),
                  np_dtype="jnp.bfloat16" if fw == "jax" and target.dtype == "bfloat16" else
                  "ml_dtypes.bfloat16" if target.dtype == "bfloat16" else f"np.{target.dtype}",
                  jax_device=("jax.devices('cpu')[0]" if target.device == "cpu" else
                              f"jax.devices()[{target.device.split(':')[-1]}]"))
    lines = ["import numpy as np"] + ([imports] if fw != "numpy" else [])
    if target.dtype == "bfloat16" and fw == "numpy":
        lines.append("import ml_dtypes")
    if target.impl:
        lines += _impl_lines(target)
        call = "r = argmax(x, dim={dim}, keepdim={keepdim})"
    lines += values_lines(case, bundle_path)
    lines.append(_BASES.get(case.layout, "base = values") if case.values.ndim else "base = values")
    lines.append(native.format(**fields))
    if case.layout in _VIEWS[fw] and case.values.ndim:
        lines.append(_VIEWS[fw][case.layout].format(**fields))
    expression, expected = _show(case, target, positions, show)
    if repeat and expression:
        lines += ["answers = set()", "for _ in range(200):", "    " + call.format(**fields),
                  f"    answers.add(str({expression}))",
                  "print(answers)  # more than one: nondeterministic (try several processes too)"]
        return "\n".join(lines)
    lines.append(call.format(**fields))
    if expression:
        note = []
        if saw is not None:
            note.append(f"the audit saw {saw}")
        if expected is not None and show == "positions":
            note.append(f"the reference (first maximum, first NaN) is {expected}")
        lines.append(f"print({expression})" + (f"  # {'; '.join(note)}" if note else ""))
    return "\n".join(lines)
