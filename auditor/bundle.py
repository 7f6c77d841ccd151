"""The results bundle: `results.json` (schema-versioned) and `arrays.npz` in one folder.

Both files are replaced atomically (write to a temporary name, then rename), and the runner saves
a checkpoint as targets finish, so an interrupted run keeps what it measured.
"""
import json
import os
import tempfile
import time
import uuid
import zipfile

import numpy as np

from .errors import BundleError, UserError
from .model import KINDS, SEVERITIES, Case, Finding, Observations, Outcome, Target

# 1: first format: metadata, environment, targets, cases, observations, findings, summary.
#    Fields added since, without a version bump (a reader defaults them when absent):
#    targets[].op ("argmax") and targets[].settings ({}); observations[].timing compile_s (0.0)
#    and compiles (0); summary.timing compile_s and compiles; cases[].sense ("": every op) and
#    cases[].dtypes ([]: every dtype of the values' family); case arrays of float64, integers and
#    bool beside float32.
FORMAT_VERSION = 1
WRITE_ID = "meta/write_id"
_UMASK = os.umask(0)
os.umask(_UMASK)
RESULTS = "results.json"
ARRAYS = "arrays.npz"


def prepare(path):
    """Create the folder `path` for a results bundle; return True if this call created it.

    An unrelated non-empty folder, a file, or a place that cannot be written is refused at once,
    before anything is measured. `discard` removes a folder made here if the run never wrote it.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out {path} is a file; give a folder for the results bundle")
    if os.path.isdir(path) and os.listdir(path) and not _is_bundle(path):
        raise UserError(f"--out {path} is a non-empty folder that is not a results bundle; "
                        "give a new or empty folder")
    created = not os.path.exists(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"cannot write into --out {path}: permission denied")
    return created


def discard(path, created):
    """Remove the folder `prepare` created at `path` if nothing was written into it."""
    if created and os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)


def _is_bundle(path):
    """True when `path` holds a results.json written by argmax-audit (any format version)."""
    try:
        with open(os.path.join(path, RESULTS), encoding="utf-8") as handle:
            return '"format_version"' in handle.read(4096)
    except (OSError, UnicodeDecodeError):
        return False


def _atomic(path, write):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a bundle is for others to read too
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _clean(value):
    """Return `value` with non-finite floats spelled as strings JSON can hold."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")
    return value


def _float(value):
    return None if value is None or not np.isfinite(value) else float(value)


def encode(observations, findings, metadata, environment, summary):
    """Return (results document, arrays dict) for a bundle."""
    arrays = {f"case/{case.id}": case.values for case in observations.cases.values()}
    records = []
    for (target_id, case_id), outcomes in observations.outcomes.items():
        entries = []
        for outcome in outcomes:
            entry = {"runs": outcome.runs}
            if outcome.failed:
                entry["error"] = outcome.error
            else:
                key = f"obs/{len(arrays)}"
                arrays[key] = outcome.indices
                entry.update(indices=key, dtype=outcome.dtype, type=outcome.type)
            entries.append(entry)
        timing = observations.timings.get((target_id, case_id))
        if timing:
            timing = {k: _float(v) if isinstance(v, float) else v for k, v in timing.items()}
        records.append({"target": target_id, "case": case_id, "outcomes": entries, "timing": timing})
    document = {
        "format_version": FORMAT_VERSION,
        "metadata": metadata,
        "environment": environment,
        "targets": [t.to_json() for t in observations.targets.values()],
        "cases": [{"id": c.id, "tags": list(c.tags), "shape": list(c.shape), "dim": c.dim,
                   "keepdim": c.keepdim, "layout": c.layout, "note": c.note,
                   "must_raise": c.must_raise, "array": f"case/{c.id}", "sense": c.sense,
                   "dtypes": list(c.dtypes)}
                  for c in observations.cases.values()],
        "observations": records,
        "startup_errors": observations.startup_errors,
        "findings": _clean([f.to_json() for f in findings]),
        "summary": _clean(summary),
    }
    return document, arrays


def write(path, observations, findings=(), metadata=None, environment=None, summary=None):
    """Write the bundle into folder `path`, each file atomically (arrays first, then the document).

    Both files carry the same write id, so a reader never pairs a document with the arrays of
    another write (a run killed between the two renames). Return the document as written.
    """
    document, arrays = encode(observations, list(findings), metadata or {}, environment or {},
                              summary or {})
    document["write_id"] = uuid.uuid4().hex
    arrays[WRITE_ID] = np.array(document["write_id"])
    text = json.dumps(document, indent=1, default=_json_default, allow_nan=False)
    os.makedirs(path, exist_ok=True)
    _atomic(os.path.join(path, ARRAYS), lambda handle: np.savez(handle, **arrays))
    _atomic(os.path.join(path, RESULTS), lambda handle: handle.write(text.encode()))
    return json.loads(text)


def read(path):
    """Return (observations, findings, document) from bundle folder `path`; BundleError if bad."""
    results = os.path.join(path, RESULTS)
    if not os.path.isfile(results):
        raise BundleError(f"{path} is not a results bundle (no {RESULTS})")
    try:
        with open(results, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{results} is unreadable or truncated: {exc}") from None
    document = upgrade(document, results)
    try:
        with np.load(os.path.join(path, ARRAYS), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BundleError(f"{path}/{ARRAYS} is unreadable or truncated: {exc}") from None
    if str(arrays.get(WRITE_ID, "")) != document.get("write_id"):
        raise BundleError(f"{path} is torn: {RESULTS} and {ARRAYS} come from different writes "
                          "(the run was killed while saving); run the audit again")
    return decode(document, arrays, path, results)


def decode(document, arrays, path, source):
    """Return (observations, findings, document), the document's sections checked and its
    findings normalised; BundleError (one line) where something is missing or of the wrong kind."""
    try:
        _check_sections(document)
        findings = [_finding(f) for f in document["findings"]]
        document["findings"] = _clean([f.to_json() for f in findings])
        return _decode(document, arrays, path), findings, document
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"{source} is malformed: {type(exc).__name__}: {exc}") from None


#: The document's sections and their kind; the optional ones default to empty.
SECTIONS = {"metadata": dict, "environment": dict, "summary": dict, "targets": list, "cases": list,
            "observations": list, "findings": list, "startup_errors": dict}
OPTIONAL = ("metadata", "environment", "summary", "findings", "startup_errors")


def _check_sections(document):
    for key, kind in SECTIONS.items():
        if key in OPTIONAL:
            document.setdefault(key, kind())
        if not isinstance(document[key], kind):
            raise TypeError(f"{key} is a {type(document[key]).__name__}, not a {kind.__name__}")
    environment = document["environment"]
    for key in ("frameworks", "envs", "settings", "unavailable"):
        if not isinstance(environment.get(key, {}), dict):
            raise TypeError(f"environment.{key} is not a mapping")


def _finding(entry):
    """Return the Finding of a document entry, its vocabulary and field kinds checked."""
    if not isinstance(entry, dict):
        raise TypeError(f"a finding is a {type(entry).__name__}")
    finding = Finding(**entry)
    if finding.kind not in KINDS or finding.severity not in SEVERITIES:
        raise ValueError(f"a finding of kind {finding.kind!r} and severity {finding.severity!r}")
    kinds = {"check": str, "message": str, "targets": list, "positions": list, "evidence": dict,
             "count": int, "reproducer": (str, type(None)), "case": (str, type(None)),
             "allowed": (str, type(None))}
    for name, kind in kinds.items():
        if not isinstance(getattr(finding, name), kind):
            raise TypeError(f"a finding's {name} is a {type(getattr(finding, name)).__name__}")
    if not all(isinstance(t, str) for t in finding.targets):
        raise TypeError("a finding's targets are not all names")
    return finding


def upgrade(document, source):
    """Return results `document` (read from `source`) in FORMAT_VERSION, migrating older ones.

    A document of a newer version, or not a results document at all, is refused in one line.
    """
    if not isinstance(document, dict) or "format_version" not in document:
        raise BundleError(f"{source} is not an argmax-audit results document")
    version = document["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{source} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise BundleError(f"{source} has format version {version}, newer than this argmax-audit "
                          f"reads ({FORMAT_VERSION}); upgrade argmax-audit to read it")
    while version < FORMAT_VERSION:
        document = MIGRATIONS[version](document)
        version = document["format_version"] = version + 1
    return document


#: MIGRATIONS[n] turns a version-n document into a version-(n + 1) one (in place, returned).
MIGRATIONS = {}


def _decode(document, arrays, path):
    observations = Observations(bundle_path=os.path.abspath(path))
    for c in document["cases"]:
        observations.cases[c["id"]] = Case(c["id"], arrays[c["array"]], c["dim"], c["keepdim"],
                                           c["layout"], tuple(c["tags"]), c.get("note", ""),
                                           c.get("sense", ""), tuple(c.get("dtypes", ())))
    for t in document["targets"]:
        target = Target(**{k: v for k, v in t.items() if k != "id"})
        observations.targets[target.id] = target
    observations.startup_errors.update(document.get("startup_errors", {}))
    for record in document["observations"]:
        for key, known in (("target", observations.targets), ("case", observations.cases)):
            if record[key] not in known:
                raise KeyError(f"an observation names {key} {record[key]!r}, which is not in the "
                               f"document's {key}s")
        outcomes = [Outcome(e["runs"], error=e["error"]) if "error" in e else
                    Outcome(e["runs"], arrays[e["indices"]], e["dtype"], e.get("type"))
                    for e in record["outcomes"]]
        observations.outcomes[(record["target"], record["case"])] = outcomes
        if record.get("timing"):
            observations.timings[(record["target"], record["case"])] = record["timing"]
    return observations


class Checkpointer:
    """Save partial bundles while a run goes on, at most every `interval` seconds."""

    def __init__(self, path, observations, metadata, environment, interval=2.0):
        self.path, self.observations = path, observations
        self.metadata, self.environment = metadata, environment
        self.interval = interval
        self.last = float("-inf")

    def __call__(self, force=False):
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        started = time.monotonic()
        write(self.path, self.observations, (), dict(self.metadata, complete=False), self.environment,
              {"complete": False})
        self.last = time.monotonic()
        self.interval = max(self.interval, 5 * (self.last - started))
