"""`audit backends`: every registered backend, probed in a worker process of its own.

Each backend's framework is imported in its worker only (as in a run); what it reports about
itself is checked before it is shown, so a backend that raises or returns nonsense while probing
is listed with what went wrong and the others are listed as usual.
"""
import concurrent.futures
import json

import click

from . import registry, variants
from .registry import check_probe
from .reports.terminal import plain
from .workers import WorkerGone, WorkerProcess


def probe(name, timeout):
    """Start a worker for backend `name` and return what it says about itself, checked: a dict
    with `status` ("ok", "not installed", "broken") and `why`, or the probe's fields."""
    entry = registry.entries()[name]
    if entry.backend is None:
        return {"status": "broken", "why": entry.error}
    try:
        present = entry.backend.installed()
    except Exception as exc:  # noqa: BLE001 - a third party's backend may raise anything
        return {"status": "broken", "why": f"its installed() raised {type(exc).__name__}: {exc}"}
    if not present:
        return {"status": "not installed", "why": f"install it with: {entry.backend.install}"}
    worker = WorkerProcess(name)
    try:
        worker.hello(timeout)
        info = worker.request({"op": "describe"}, timeout=timeout)
    except (WorkerGone, RuntimeError) as exc:
        worker.kill()
        return {"status": "broken", "why": f"its worker could not start: {exc}"}
    worker.close()
    info = {k: v for k, v in info.items() if k not in ("ok", "op")}
    problem = check_probe(info)
    if problem:
        return {"status": "broken", "why": problem}
    return {"status": "ok", **info}


def listing(timeout=180.0):
    """Return {name: entry} for every registered backend: where it comes from, its ops with
    their promises, variants, hints, and what its probe says."""
    names = registry.names()
    with concurrent.futures.ThreadPoolExecutor(max(1, len(names))) as pool:
        probes = dict(zip(names, pool.map(lambda n: probe(n, timeout), names)))
    found = {}
    for name in names:
        entry = registry.entries()[name]
        item = {"reference": entry.reference, "distribution": entry.source, **probes[name]}
        backend = entry.backend
        if backend is not None:
            item["ops"] = {op: {"call": spec.words, "promise": spec.promise, "url": spec.url,
                                "documented": spec.documented.to_json() if spec.documented else None}
                           for op, spec in backend.ops.items()}
            try:
                item["variants"] = variants.all_for(name)
            except Exception as exc:  # noqa: BLE001 - a third party's variants may be nonsense
                item["variants"] = []
                item["why"] = f"its variants cannot be read: {exc}"
            item["devices_possible"] = dict(backend.device_hints)
            item["notes"] = list(backend.notes)
        found[name] = item
    return found


#: The longest text of a backend (a probe's reason, a note) the listing shows.
SHOWN = 500


def render(found):
    """Yield the lines of the listing `found`, every string from a backend or its probe with its
    control characters shown as escapes and cut at SHOWN characters (a third party's backend
    may say anything)."""
    yield from _render(_shown(found))


def _shown(value):
    if isinstance(value, str):
        return plain(value if len(value) <= SHOWN else value[:SHOWN] + "...")
    if isinstance(value, dict):
        return {_shown(k): _shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    return value


def _render(found):
    for name, item in found.items():
        if item["status"] != "ok":
            yield f"{name}: {item['status']}: {item['why']}"
            continue
        yield f"{name} {item['version']}  ({item['distribution'] or 'registered'}: {item['reference']})"
        for device in item["devices"]:
            yield f"  device {device['id']}: {', '.join(device['dtypes'])}"
            for dtype, why in device.get("unsupported", {}).items():
                yield f"    {dtype} unavailable: {why}"
            for mode, why in (device.get("unavailable_modes") or {}).items():
                yield f"    variant {mode} unavailable: {why}"
        yield f"  variants: {', '.join(item.get('variants') or ['eager'])}"
        index = item.get("index_dtypes") or {}
        for op, spec in item.get("ops", {}).items():
            yield f"  op {op}: {spec['call']} -> {index.get(op, item['index_dtype'])}"
            if spec["documented"]:
                yield f"    documented: \"{spec['documented']['quote']}\" ({spec['documented']['url']})"
            elif spec["promise"]:
                yield f"    promise: \"{spec['promise']}\" ({spec['url']})"
        for why in (item.get("layout_limits") or {}).values():
            yield f"  layouts: {why}"
        for note in item.get("notes", ()):
            yield f"  note: {note}"


@click.command("backends")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
@click.option("--startup-timeout", type=click.FloatRange(min=1), default=180.0, show_default=True,
              help="Seconds each backend's worker may take to import its framework and probe it.")
def backends(as_json, startup_timeout):
    """List the installed backends: version, devices, dtypes, variants, ops and their
    documented promises, and why anything is unavailable.

    Backends register under the entry-point group argmax_audit.backends (the built-ins too);
    each is probed in a worker process of its own, so a broken one is listed with its error.
    """
    found = listing(startup_timeout)
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    for line in render(found):
        click.echo(line)
