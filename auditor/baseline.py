"""Baselines: a run's exact cases and every target's answers in one file, for upgrades.

A baseline file is a results bundle packed into one `.npz`: the results document as JSON text under
`baseline/document`, next to the bundle's arrays (case values, observed indices). It is read with
`allow_pickle=False` and the bundle's format version and migrations, so a baseline written by one
version of argmax-audit stays readable by the next, and one too new is refused in one line.
Wherever a baseline is read, a bundle folder is accepted too.
"""
import json
import os

import numpy as np

from . import bundle, files
from .errors import BundleError, UserError

DOCUMENT = "baseline/document"


def save(path, observations, findings, metadata, environment, summary):
    """Write the baseline file `path` (atomically) from a run's observations and results."""
    document, arrays = bundle.encode(observations, list(findings), metadata, environment, summary)
    document["baseline"] = True
    arrays[DOCUMENT] = np.array(json.dumps(document, default=bundle._json_default, allow_nan=False))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"cannot write the baseline {path}: folder {folder} does not exist")
    try:
        files.write_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))
    except OSError as exc:
        raise UserError(f"cannot write the baseline {path}: {exc.strerror or exc}") from None


def load(path):
    """Return (observations, findings, document) of baseline file or bundle folder `path`."""
    if os.path.isdir(path):
        return bundle.read(path)
    if not os.path.lexists(path):
        raise UserError(f"baseline {path} does not exist")
    arrays = files.read_npz(path, "baseline", text_members=(DOCUMENT,))
    if DOCUMENT not in arrays:
        raise BundleError(f"{path} is not an argmax-audit baseline (no {DOCUMENT})")
    text = arrays.pop(DOCUMENT)
    if text.ndim != 0:
        raise BundleError(f"{path}: the baseline document is an array of shape {text.shape}, "
                          "not one text")
    data = str(text).encode("utf-8", "surrogatepass")
    if len(data) > files.document_limit().bytes:
        raise BundleError(f"{path}: the baseline document takes {files.amount(len(data))}, more "
                          f"than the {files.document_limit()} a document may take")
    document = files.load_json(data, f"{path}: the baseline document")
    document = bundle.upgrade(document, path)
    return bundle.decode(document, arrays, os.path.dirname(os.path.abspath(path)), path)


def target_versions(targets, environment):
    """Return {target id: "framework version (Python x.y)"} from an environment inventory."""
    versions = {}
    for target in targets.values():
        where = environment if target.env == "local" else (environment.get("envs") or {}).get(
            target.env, {})
        info = (where.get("frameworks") or {}).get(target.framework) or {}
        if info.get("version"):
            python = where.get("python")
            versions[target.id] = f"{target.framework} {info['version']}" + (
                f", Python {python}" if python and target.env != "local" else "")
    return versions
