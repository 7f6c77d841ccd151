"""Compare two bench documents: targets paired as the regression check pairs them, a noise-aware
verdict per (target, shape, dim), and a refusal to compare timings of different machines.

A pair is `slower` only when the ratio of medians passes 1 + threshold and the medians lie further
apart than the samples' spread (half of each side's IQR, added); `faster` the mirror (below
1 / (1 + threshold)); `noisy` when the ratio passes the threshold but the spread covers it; `same`
otherwise; `failed` when the new run could not time what the old one did. `slower` and `failed`
fail the comparison (exit 1), as asv's continuous comparison does.
"""
from .checks.regression import kind_of
from .errors import UserError
from .model import Target

DEFAULT_THRESHOLD = 0.10
FAILING = ("slower", "failed")


def verdict(old, new, threshold=DEFAULT_THRESHOLD):
    """Return (ratio of medians, verdict) of result `new` against result `old` (bench results:
    median_s and iqr_s)."""
    ratio = new["median_s"] / old["median_s"]
    spread = (old["iqr_s"] + new["iqr_s"]) / 2
    gap = new["median_s"] - old["median_s"]
    if ratio > 1 + threshold:
        return ratio, "slower" if gap > spread else "noisy"
    if ratio < 1 / (1 + threshold):
        return ratio, "faster" if -gap > spread else "noisy"
    return ratio, "same"


def target_of(document, target_id):
    """Return the model Target that `target_id` names in `document` (from run.targets), or None."""
    fields = ((document.get("run") or {}).get("targets") or {}).get(target_id)
    if fields is None:
        return None
    return Target(**{k: fields[k] for k in ("framework", "device", "dtype", "variant", "op",
                                            "impl", "env") if k in fields and fields[k] is not None})


def _key(document, result):
    target = target_of(document, result["target"])
    kind = kind_of(target) if target else (result["target"].split("@")[0],)
    return kind, tuple(result["shape"]), result["dim"]


def _env(document, target_id):
    target = target_of(document, target_id)
    return target.env if target else "local"


def compare(old, new, threshold=DEFAULT_THRESHOLD):
    """Return the comparison of bench documents `old` and `new`: {threshold, verdict, pairs,
    only_old, only_new, counts}. Targets pair by framework (or implementation), device, dtype,
    variant and op, whatever their versions and environments; the same environment is preferred
    where the old document has several."""
    by_key = {}
    for result in old["results"]:
        by_key.setdefault(_key(old, result), []).append(result)
    pairs, paired = [], set()
    for result in new["results"]:
        candidates = by_key.get(_key(new, result), [])
        same = [c for c in candidates if _env(old, c["target"]) == _env(new, result["target"])]
        if not candidates:
            continue
        before = (same or candidates)[0]
        paired.add(id(before))
        ratio, word = verdict(before, result, threshold)
        pairs.append(_pair(before, result, ratio, word))
    for failure in (new.get("run") or {}).get("failures", []):
        for before in by_key.get(_key(new, failure), []):
            paired.add(id(before))
            error = failure["errors"][0] if failure["errors"] else {}
            pairs.append(dict(_pair(before, failure, None, "failed"),
                              error=f"{error.get('type', 'Error')}: {error.get('message', '')}"))
    only_old = [_where(r) for r in old["results"] if id(r) not in paired]
    old_keys = set(by_key)
    only_new = [_where(r) for r in new["results"] if _key(new, r) not in old_keys]
    counts = {word: sum(p["verdict"] == word for p in pairs)
              for word in ("slower", "faster", "same", "noisy", "failed")}
    failing = any(p["verdict"] in FAILING for p in pairs)
    return {"threshold": threshold, "verdict": "fail" if failing else "pass", "counts": counts,
            "pairs": sorted(pairs, key=_worst_first), "only_old": only_old, "only_new": only_new,
            "notes": load_notes(old, new)}


def load_notes(old, new):
    """Say which run started on a machine busier than its CPUs (load average per CPU above 1):
    its timings include other work, and a verdict between them may be the load's."""
    notes = []
    for name, document in (("OLD", old), ("NEW", new)):
        environment = document["environment"]
        start = (environment.get("load_average") or {}).get("start")
        cpus = environment.get("cpu_count")
        if start and cpus and start[0] > cpus:
            notes.append(f"{name} started at a load average of {start[0]:g} on {cpus} CPUs: "
                         "its timings include other work on the machine")
    return notes


def _pair(old, new, ratio, word):
    return {"target": new["target"], "old_target": old["target"], "shape": list(new["shape"]),
            "dim": new["dim"], "old_median_s": old["median_s"], "old_iqr_s": old["iqr_s"],
            "new_median_s": new.get("median_s"), "new_iqr_s": new.get("iqr_s"),
            "ratio": ratio, "verdict": word}


def _where(result):
    return {"target": result["target"], "shape": list(result["shape"]), "dim": result["dim"]}


def _worst_first(pair):
    rank = {"failed": 0, "slower": 1, "noisy": 2, "faster": 3, "same": 4}[pair["verdict"]]
    return rank, -(pair["ratio"] or 0.0)


# --- machines ------------------------------------------------------------------------------------


def machine(environment):
    """Return the facts that make timings comparable: architecture, CPU model and count, memory
    (GiB), and the name of each device the frameworks reported."""
    devices = {}
    for info in (environment.get("frameworks") or {}).values():
        for device in info.get("devices") or []:
            if device.get("id") != "cpu" and device.get("name"):
                devices.setdefault(device["id"], device["name"])
    memory = environment.get("memory_bytes")
    return {"architecture": environment.get("machine"), "CPU": environment.get("cpu"),
            "CPUs": environment.get("cpu_count"),
            "memory": f"{round(memory / 2**30)} GiB" if memory else None,
            **{f"device {key}": name for key, name in sorted(devices.items())}}


def differences(old_environment, new_environment):
    """Return what differs between the machines of two bench documents, in words (empty: same).
    A fact one side does not know (None) or a device only one side has is not a difference."""
    old, new = machine(old_environment), machine(new_environment)
    found = []
    for key in old:
        if key in new and old[key] is not None and new[key] is not None and old[key] != new[key]:
            found.append(f"{key} {old[key]!r} vs {new[key]!r}")
    return found


def check_machines(old_environment, new_environment, force, old_name="OLD", new_name="NEW"):
    """Raise UserError when the machines differ and not `force`; return the differences."""
    found = differences(old_environment, new_environment)
    if found and not force:
        raise UserError(f"{old_name} and {new_name} were measured on different machines "
                        f"({'; '.join(found)}): their timings are not comparable; measure both on "
                        "one machine, or pass --force to compare anyway")
    return found
