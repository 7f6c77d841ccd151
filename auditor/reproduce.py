"""Short Python scripts that reproduce a finding with the framework alone."""
import numpy as np

from .explain import fmt

INLINE_LIMIT = 64
SPARSE_LIMIT = 48

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
    if flat.size:
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


def reproducer(case, target, positions=(), bundle_path="audit-results", repeat=False):
    """Return a script that calls argmax as the audit did and prints what came back."""
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
    picks = ", ".join(str(tuple(p)) for p in positions[:3])
    show = f"[int(np.asarray(r)[p]) for p in [{picks}]]" if positions and case.dim is not None else "int(np.asarray(r).reshape(-1)[0])"
    if repeat:
        lines.append("answers = set()")
        lines.append("for _ in range(200):")
        lines.append("    " + call.format(**fields))
        lines.append(f"    answers.add(str({show}))")
        lines.append("print(answers)  # more than one answer: nondeterministic (also try several processes)")
    else:
        lines.append(call.format(**fields))
        lines.append(f"print({show})")
    return "\n".join(lines)


def describe_values(row, indices):
    """Return 'a at i, b at j' for the values of `row` at `indices`."""
    return ", ".join(f"{fmt(row[i])} at {int(i)}" for i in indices)
