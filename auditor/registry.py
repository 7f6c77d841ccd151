"""The installed backends, found through the entry-point group `argmax_audit.backends`.

argmax-audit registers its built-ins there (pyproject.toml) exactly as a third party does. A
backend module is imported here for its data only (ops, promises, variants, reproducer lines);
its framework is imported by worker processes alone. A backend that fails to import, or is not
a backend, is kept as broken with the reason: listed by `audit backends`, a `crash` finding when
an audit would have run it, never a crash of the driver.
"""
import importlib.metadata
import re
from dataclasses import dataclass

from .worker.backends import BUILTIN, resolve
from .worker.backends.base import Modifier, Op

GROUP = "argmax_audit.backends"
#: The order built-ins are listed and run in; third-party backends follow by name.
ORDER = ("numpy", "torch", "jax", "tensorflow", "onnxruntime", "cupy", "mlx")
NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_REPRODUCER_KEYS = ("imports", "native", "permute", "broadcast", "to_numpy", "indices")


@dataclass
class Entry:
    """One registered backend: its name, "module:attribute", the object (None when broken), why
    it is broken, and the distribution that registered it."""

    name: str
    reference: str
    backend: object = None
    error: str = ""
    source: str = ""


_entries = None


def entries(refresh=False):
    """Return {name: Entry} of every registered backend, built-ins first (loaded once)."""
    global _entries
    if _entries is None or refresh:
        found = _discover()
        _entries = {name: _load(name, reference, source)
                    for name, (reference, source) in _ordered(found)}
    return _entries


def _discover():
    """Return {name: (reference, distribution)} from the entry points, built-ins where this
    package runs without its metadata (a source tree on the path)."""
    found = {}
    for point in importlib.metadata.entry_points(group=GROUP):
        dist = getattr(point, "dist", None)
        found.setdefault(point.name, (point.value, getattr(dist, "name", "") or ""))
    for name, reference in BUILTIN.items():
        found.setdefault(name, (reference, "argmax-audit"))
    return found


def _ordered(found):
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found.items(), key=lambda item: (rank.get(item[0], len(ORDER)), item[0]))


def _load(name, reference, source):
    """Import the backend `reference` names; return its Entry, broken with the reason if it
    cannot be imported or is not a backend."""
    entry = Entry(name, reference, source=source)
    try:
        backend = resolve(reference)
    except Exception as exc:  # noqa: BLE001 - a third party's module may raise anything
        entry.error = f"importing {reference} raised {type(exc).__name__}: {str(exc)[:300]}"
        return entry
    try:
        problem = problems(backend, name)
    except Exception as exc:  # noqa: BLE001 - its attributes may raise anything
        problem = f"reading it raised {type(exc).__name__}: {str(exc)[:300]}"
    if problem:
        entry.error = f"{reference} is not a usable backend: {problem}"
    else:
        entry.backend = backend
    return entry


def problems(backend, name):
    """Say what is wrong with `backend` registered as `name`, or return "" when it is usable."""
    if not NAME.fullmatch(name):
        return f"the name {name!r} is not lowercase letters, digits, '_' and '-'"
    if getattr(backend, "name", None) != name:
        return f"its name is {getattr(backend, 'name', None)!r}, registered as {name!r}"
    ops = getattr(backend, "ops", None)
    if not isinstance(ops, dict) or "argmax" not in ops:
        return "its ops are not a dict with argmax"
    bad = [op for op, spec in ops.items() if not isinstance(spec, Op) or spec.sense not in ("max", "min")]
    if bad:
        return f"op {bad[0]!r} is not an Op with sense 'max' or 'min'"
    modifiers = getattr(backend, "modifiers", {})
    if not isinstance(modifiers, dict) or any(not isinstance(m, Modifier) for m in modifiers.values()):
        return "its modifiers are not a dict of Modifier"
    variants = getattr(backend, "all_variants", ())
    if isinstance(variants, str) or not all(isinstance(v, str) for v in variants):
        return "its all_variants is not a list of variant names"
    reproducer = getattr(backend, "reproducer", None)
    if not isinstance(reproducer, dict) or any(k not in reproducer for k in _REPRODUCER_KEYS):
        return f"its reproducer lacks one of {', '.join(_REPRODUCER_KEYS)}"
    for method in ("adapter", "installed", "dtype_expression", "call_lines", "setting_lines"):
        if not callable(getattr(backend, method, None)):
            return f"it has no method {method}()"
    if not isinstance(getattr(backend, "install", ""), str):
        return "its install hint is not a string"
    return ""


def backends():
    """Return {name: backend} of the usable backends, in order."""
    return {name: e.backend for name, e in entries().items() if e.backend is not None}


def broken():
    """Return {name: why} of the backends that are registered but cannot be used."""
    return {name: e.error for name, e in entries().items() if e.backend is None}


def names():
    """Return the names of every registered backend (broken ones too), in order."""
    return list(entries())


def get(name):
    """Return the usable backend `name`; KeyError when it is unknown or broken."""
    backend = backends().get(name)
    if backend is None:
        raise KeyError(name)
    return backend


def reference(name):
    """Return the "module:attribute" a worker loads backend `name` from."""
    return entries()[name].reference


def installed(name):
    """True when backend `name` is usable and its framework is importable here."""
    backend = backends().get(name)
    return backend is not None and bool(backend.installed())


#: A device id as target ids hold it: "cpu", "cuda:0", "tensorrt:1", "metal" (no "/", "@", space).
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}")
#: Bounds on what a probe may say: its version's length, how many devices.
MAX_VERSION, MAX_DEVICES = 200, 256


def check_probe(info):
    """Say what is wrong with a worker's `describe` reply `info`, or return "" when it is usable.

    The runner and `audit backends` both refuse a probe that does not have this shape. A device id
    becomes part of target ids (FRAMEWORK/DEVICE/DTYPE): it must be short and hold no separator."""
    if not isinstance(info, dict):
        return f"its probe returned {type(info).__name__}, not a dict"
    if not isinstance(info.get("version"), str):
        return "its probe gave no version string"
    if len(info["version"]) > MAX_VERSION or not info["version"].isprintable():
        return f"its probe's version is not a printable string of at most {MAX_VERSION} characters"
    devices = info.get("devices")
    if not isinstance(devices, list) or not devices:
        return "its probe listed no devices"
    if len(devices) > MAX_DEVICES:
        return f"its probe listed {len(devices)} devices, more than {MAX_DEVICES}"
    for device in devices:
        if not isinstance(device, dict) or not isinstance(device.get("id"), str):
            return "its probe listed a device without an id"
        if not DEVICE_ID.fullmatch(device["id"]):
            return (f"its probe listed device {device['id'][:40]!r}, not an id of letters, digits "
                    "and _.:+- (at most 64)")
        if not isinstance(device.get("dtypes"), list) or not all(
                isinstance(d, str) for d in device["dtypes"]):
            return f"its probe gave device {device['id']} no list of dtypes"
        if not isinstance(device.get("unsupported", {}), dict):
            return f"its probe gave device {device['id']} an 'unsupported' that is not a dict"
    if not isinstance(info.get("index_dtype"), str):
        return "its probe gave no index dtype"
    for key in ("index_dtypes", "layout_limits", "settings", "build"):
        if not isinstance(info.get(key, {}), dict):
            return f"its probe's {key} is not a dict"
    return ""
