"""Merge results bundles made on different machines into one set of observations.

Each bundle's targets are labelled with the machine that ran them (its host name, or the bundle's
folder name where hosts repeat), so `torch/cpu/float32@cpu-runner` and
`torch/cuda:0/float32@gpu-runner` sit side by side and the cross-target checks see CPU against
CUDA against TPU although no machine had all three. Bundles must come from the same cases: the
same suite and seed, and the same values under every case id they share.
"""
import dataclasses
import os
import time

import numpy as np

from . import bundle, lean
from .errors import UserError
from .model import Observations


def machine_labels(paths, documents):
    """Return one distinct label per bundle: its host, else its folder name, else numbered."""
    hosts = [d.get("environment", {}).get("host") or "" for d in documents]
    labels = []
    for path, host in zip(paths, hosts):
        label = host if host and hosts.count(host) == 1 else os.path.basename(os.path.normpath(path))
        label = "".join(c if c.isalnum() or c in "-_." else "-" for c in label) or "bundle"
        while label in labels:
            label += f"-{len(labels) + 1}"
        labels.append(label)
    return labels


def _provenance(path, document):
    metadata = document.get("metadata", {})
    return {"path": os.path.abspath(path), "host": document.get("environment", {}).get("host"),
            "created": metadata.get("created"), "suite": metadata.get("suite"),
            "seed": metadata.get("seed"), "complete": metadata.get("complete", False)}


def check_compatible(paths, documents, observations):
    """Raise UserError unless the bundles ran the same suite and seed on the same values."""
    first = documents[0]["metadata"]
    for path, document in zip(paths[1:], documents[1:]):
        metadata = document["metadata"]
        for key in ("suite", "seed"):
            if metadata.get(key) != first.get(key):
                raise UserError(
                    f"cannot merge {paths[0]} ({key} {first.get(key)}) with {path} ({key} "
                    f"{metadata.get(key)}): bundles must come from the same suite and seed; run "
                    f"the audit on every machine with the same --suite and --seed")
    cases = {}
    for path, found in zip(paths, observations):
        for case_id, case in found.cases.items():
            known = cases.setdefault(case_id, (path, case))[1]
            same = lean.same_input(known, case)  # inputs kept lean compare by their sha256
            if same is None and not (known.lean or case.lean):
                same = np.array_equal(known.values, case.values, equal_nan=True)
            if known is not case and same:
                lean.combine(known, case)
            if not same or (known.shape, known.dim, known.keepdim, known.layout) != (
                    case.shape, case.dim, case.keepdim, case.layout):
                raise UserError(f"cannot merge: case {case_id} holds other values in {path} than "
                                f"in {cases[case_id][0]} (made by another version of the suite?)")
    return {case_id: case for case_id, (_, case) in cases.items()}


def _relabel(target, label):
    env = label if target.env == "local" else f"{label}:{target.env}"
    return dataclasses.replace(target, env=env)


def merge(paths):
    """Return (observations, metadata, environment) of the bundles at `paths`, targets relabelled."""
    if len(paths) < 2:
        raise UserError("give two or more bundles to merge")
    read = [bundle.read(path) for path in paths]
    documents = [document for _, _, document in read]
    seen = {}
    for path, document in zip(paths, documents):
        if document.get("write_id") in seen:
            raise UserError(f"{path} and {seen[document['write_id']]} are the same bundle; merge "
                            "bundles of different machines or runs")
        seen[document.get("write_id")] = path
    found = [observations for observations, _, _ in read]
    merged = Observations(cases=check_compatible(paths, documents, found))
    envs = {}
    for label, observations, document in zip(machine_labels(paths, documents), found, documents):
        renamed = {}
        for target_id, target in observations.targets.items():
            new = _relabel(target, label)
            renamed[target_id] = new.id
            merged.targets[new.id] = new
        for (target_id, case_id), outcomes in observations.outcomes.items():
            merged.outcomes[(renamed[target_id], case_id)] = outcomes
        for (target_id, case_id), timing in observations.timings.items():
            merged.timings[(renamed[target_id], case_id)] = timing
        for framework, why in observations.startup_errors.items():
            merged.startup_errors[f"{framework}@{label}"] = why
        envs[label] = document["environment"]
        for name, env in (document["environment"].get("envs") or {}).items():
            envs[f"{label}:{name}"] = env
    return merged, _metadata(paths, documents), _environment(envs)


def _metadata(paths, documents):
    first = documents[0]["metadata"]
    sources = [_provenance(path, document) for path, document in zip(paths, documents)]
    return {"suite": first.get("suite"), "seed": first.get("seed"), "cases": first.get("cases", []),
            "repeats": first.get("repeats"), "processes": first.get("processes"),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "merged": sources,
            "complete": all(s["complete"] for s in sources),
            "skipped": [s for d in documents for s in d["metadata"].get("skipped", [])]}


def _environment(envs):
    """Return the merged inventory: every machine's (and its environments') under `envs`."""
    first = next(iter(envs.values()))
    unavailable = {}
    for label, env in envs.items():
        for name, why in (env.get("unavailable") or {}).items():
            unavailable[f"{name}@{label}"] = why
    return {"tool": first.get("tool"), "host": ", ".join(envs), "platform": "merged",
            "python": ", ".join(sorted({str(e.get("python")) for e in envs.values()})),
            "settings": {}, "frameworks": {}, "unavailable": unavailable, "envs": envs,
            "nvidia_driver": next((e["nvidia_driver"] for e in envs.values()
                                   if e.get("nvidia_driver")), None)}
