"""The results bundle: `results.json` (schema-versioned) and `arrays.npz` in one folder.

Both files are replaced atomically (written to a temporary name, then renamed; a link in the
folder is replaced, never written through), and the runner saves a checkpoint as targets finish,
so an interrupted run keeps what it measured. While a save replaces the pair, the pair before it
stays in the folder as `.previous-*`: a save torn by a kill between the two renames falls back to
that last consistent checkpoint. A bundle read from elsewhere is bounded and validated in full
(`files`, `schema`) before any check or renderer sees it. A large user input is kept lean (its
origin, sha256, answers and disputed rows: auditor/lean.py), or, with --store-inputs, whole in a
file of its own under `inputs/`, written once.
"""
import json
import os
import re
import time
import uuid

import numpy as np

from . import files, lean, schema
from .errors import BundleError, UserError
from .model import Case, Finding, Observations, Outcome, Target

# 1: first format: metadata, environment, targets, cases, observations, findings, summary.
#    Fields added since, without a version bump (a reader defaults them when absent):
#    targets[].op ("argmax") and targets[].settings ({}); observations[].timing compile_s (0.0)
#    and compiles (0); summary.timing compile_s and compiles; cases[].sense ("": every op) and
#    cases[].dtypes ([]: every dtype of the values' family); case arrays of float64, integers and
#    bool beside float32; metadata.recovered (set by a reader that fell back to the checkpoint
#    before a torn save); cases[].origin (where a user input came from, with its sha256) and lean
#    cases (array null; values_dtype, lean.rows/positions/references: auditor/lean.py).
FORMAT_VERSION = 1
WRITE_ID = "meta/write_id"
RESULTS = "results.json"
ARRAYS = "arrays.npz"
#: The consistent pair kept while a save replaces RESULTS and ARRAYS (hard links, no copies).
PREVIOUS = {RESULTS: ".previous-results.json", ARRAYS: ".previous-arrays.npz"}
#: The folder of the large inputs a bundle keeps whole (--store-inputs), one .npy file each.
INPUTS = "inputs"
INPUT_NAME = re.compile(r"inputs/[0-9a-f]{64}\.npy")
#: The keys a results document of any version has; a bundle is recognised by all of them.
SIGNATURE = ("format_version", "write_id", "targets", "cases", "observations")


def prepare(path):
    """Create the folder `path` for a results bundle; return True if this call created it.

    An unrelated non-empty folder, a file, or a place that cannot be written is refused at once,
    before anything is measured. `discard` removes a folder made here if the run never wrote it.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out {path} is a file; give a folder for the results bundle")
    if os.path.isdir(path) and os.listdir(path) and not is_bundle(path):
        raise UserError(f"--out {path} is a non-empty folder that is not a results bundle of "
                        "argmax-audit; give a new or empty folder")
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


def is_bundle(path):
    """True when folder `path` holds a bundle written by argmax-audit: a regular results.json
    (not a link) whose JSON object has every key of the SIGNATURE, beside a regular arrays.npz."""
    for name in (RESULTS, ARRAYS):
        where = os.path.join(path, name)
        if os.path.islink(where) or not os.path.isfile(where):
            return False
    try:
        data = files.read_bytes(os.path.join(path, RESULTS), RESULTS, files.document_limit(),
                                BundleError)
        document = files.load_json(data, RESULTS)
    except BundleError:
        return False
    return isinstance(document, dict) and all(key in document for key in SIGNATURE) and \
        type(document["format_version"]) is int and isinstance(document["write_id"], str)


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(default=_json_default, allow_nan=False)


def dumps(document):
    """Return `document` as JSON text a person can read: a line per section, and per item of a
    list section (one observation, one finding), each line encoded by json's C encoder (an
    indented dump goes through its pure-Python one, ten times slower on a checkpoint)."""
    sections = []
    for key, value in document.items():
        if isinstance(value, list) and value:
            body = ",\n  ".join(_ENCODER.encode(item) for item in value)
            sections.append(f" {_ENCODER.encode(key)}: [\n  {body}\n ]")
        else:
            sections.append(f" {_ENCODER.encode(key)}: {_ENCODER.encode(value)}")
    return "{\n" + ",\n".join(sections) + "\n}\n"


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
    """Return (results document, arrays dict) for a bundle; a lean case (auditor/lean.py) keeps
    its origin, answers and disputed rows instead of its values (the rows once the run is checked,
    `summary` holding a verdict)."""
    arrays, leaner = {}, {}
    for case in observations.cases.values():
        if case.lean:
            leaner[case.id] = lean.encode(case, observations, findings, arrays,
                                          "verdict" in summary)
        else:
            arrays[_array_name(case)] = case.values
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
                   "must_raise": c.must_raise, "array": _array_name(c), "sense": c.sense,
                   "dtypes": list(c.dtypes),
                   **({"origin": c.origin} if c.origin else {}), **leaner.get(c.id, {})}
                  for c in observations.cases.values()],
        "observations": records,
        "startup_errors": observations.startup_errors,
        "findings": _clean([f.to_json() for f in findings]),
        "summary": _clean(summary),
    }
    return document, arrays


def _array_name(case):
    """Return where a case's values are kept: `case/<id>` in ARRAYS, or, for a large user input
    kept whole (--store-inputs), a file of its own under INPUTS (`lean.stored_name`), written
    once and never again by later checkpoints."""
    return lean.stored_name(case) or f"case/{case.id}"


def _write_inputs(path, arrays):
    """Move the arrays kept in files of their own out of `arrays` and write each file that is
    not there yet (atomically; the INPUTS folder is never a link)."""
    for name in [n for n in arrays if n.startswith(INPUTS + "/")]:
        values = arrays.pop(name)
        folder = os.path.join(path, INPUTS)
        if os.path.islink(folder):
            raise BundleError(f"{folder} is a link; a bundle writes its inputs into a folder")
        os.makedirs(folder, exist_ok=True)
        where = os.path.join(path, name)
        if not (os.path.isfile(where) and not os.path.islink(where)):
            files.write_atomic(where, lambda handle, v=values: np.lib.format.write_array(
                handle, np.asarray(v), allow_pickle=False))


def read_inputs(path, document, arrays):
    """Add to `arrays` the case values a bundle keeps in files of their own (INPUTS), each a
    regular .npy file named as `_array_name` names them, memory-mapped read-only."""
    cases = document.get("cases") if isinstance(document, dict) else None
    for case in cases if isinstance(cases, list) else ():
        name = case.get("array") if isinstance(case, dict) else None
        if not isinstance(name, str) or not name.startswith(INPUTS + "/") or name in arrays:
            continue
        if not INPUT_NAME.fullmatch(name) or any(os.path.islink(os.path.join(path, part)) for part
                                                 in (INPUTS, name)):
            raise BundleError(f"{path}: case array {files.printable(name)!r} is not a file "
                              f"{INPUTS}/<sha256>.npy of the bundle")
        where = os.path.join(path, name)
        with files.open_regular(where, "bundle input", BundleError):
            pass
        try:
            arrays[name] = np.load(where, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise BundleError(f"bundle input {files.printable(where)} is not a valid .npy file: "
                              f"{files.one_line(exc)}") from None


def write(path, observations, findings=(), metadata=None, environment=None, summary=None):
    """Write the bundle into folder `path`, each file atomically (arrays first, then the document).

    Both files carry the same write id, so a reader never pairs a document with the arrays of
    another write (a run killed between the two renames): it falls back to the pair that was
    there before, kept as PREVIOUS until both renames are done. Return the document as written.
    """
    document, arrays = encode(observations, list(findings), metadata or {}, environment or {},
                              summary or {})
    document["write_id"] = uuid.uuid4().hex
    arrays[WRITE_ID] = np.array(document["write_id"])
    text = dumps(document)
    os.makedirs(path, exist_ok=True)
    _write_inputs(path, arrays)
    kept = _keep_previous(path)
    files.write_atomic(os.path.join(path, ARRAYS), lambda handle: np.savez(handle, **arrays))
    files.write_atomic(os.path.join(path, RESULTS), lambda handle: handle.write(text.encode()))
    if kept:
        for name in PREVIOUS.values():
            _unlink(os.path.join(path, name))
    return json.loads(text)


def _keep_previous(path):
    """Hard-link the pair now in `path` to the PREVIOUS names (each replaced atomically); return
    True if kept. Nothing is kept where the pair is missing or the file system has no links."""
    current = {name: os.path.join(path, name) for name in PREVIOUS}
    if not all(os.path.isfile(p) and not os.path.islink(p) for p in current.values()):
        return False
    for name, source in current.items():
        staged = os.path.join(path, f".tmp-link-{uuid.uuid4().hex}")
        try:
            os.link(source, staged)
            os.replace(staged, os.path.join(path, PREVIOUS[name]))
        except OSError:
            _unlink(staged)
            return False
    return True


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read(path):
    """Return (observations, findings, document) from bundle folder `path`; BundleError if bad.

    A pair torn by a kill during a save is refused unless the last consistent checkpoint kept
    beside it can stand in: then that is returned, marked incomplete and `recovered`.
    """
    if not os.path.lexists(os.path.join(path, RESULTS)):
        raise BundleError(f"{path} is not a results bundle (no {RESULTS})")
    try:
        return _read_pair(path, RESULTS, ARRAYS)
    except BundleError as error:
        if not (getattr(error, "torn", False) and all(
                os.path.isfile(os.path.join(path, name)) for name in PREVIOUS.values())):
            raise
    observations, findings, document = _read_pair(path, PREVIOUS[RESULTS], PREVIOUS[ARRAYS])
    document["metadata"].update(complete=False, recovered=(
        "the last save was torn (the run was killed while saving); these are the results of "
        "the last consistent checkpoint before it"))
    document["summary"]["complete"] = False
    return observations, findings, document


def _read_pair(path, results_name, arrays_name):
    results = os.path.join(path, results_name)
    data = files.read_bytes(results, "results document", files.document_limit(), BundleError)
    document = upgrade(files.load_json(data, results), results)
    arrays = files.read_npz(os.path.join(path, arrays_name), "bundle arrays",
                            text_members=(WRITE_ID,))
    read_inputs(path, document, arrays)
    if str(arrays.get(WRITE_ID, "")) != document.get("write_id"):
        error = BundleError(f"{path} is torn: {RESULTS} and {ARRAYS} come from different writes "
                            "(the run was killed while saving) and no consistent checkpoint is "
                            "beside them; run the audit again")
        error.torn = True
        raise error
    return decode(document, arrays, path, results)


def decode(document, arrays, path, source):
    """Return (observations, findings, document): the document validated in full against the
    schema and its arrays, its findings normalised; BundleError in one line naming the field."""
    for key, kind in OPTIONAL.items():
        if isinstance(document, dict):
            document.setdefault(key, kind())
    try:
        schema.validate(document, arrays)
        findings = [Finding(**{k: v for k, v in f.items() if k in FINDING_FIELDS})
                    for f in document["findings"]]
        document["findings"] = _clean([f.to_json() for f in findings])
        return _decode(document, arrays, path), findings, document
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{files.printable(source)} is malformed: {files.one_line(exc)}") from None


#: The sections a document may leave out, and what they default to.
OPTIONAL = {"metadata": dict, "environment": dict, "summary": dict, "findings": list,
            "startup_errors": dict}
FINDING_FIELDS = tuple(Finding.__dataclass_fields__)


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
        values, stored = (arrays[c["array"]], None) if c["array"] else lean.decode(c, arrays)
        observations.cases[c["id"]] = Case(c["id"], values, c["dim"], c["keepdim"],
                                           c.get("layout", "contiguous"), tuple(c.get("tags", ())),
                                           c.get("note", ""), c.get("sense", ""),
                                           tuple(c.get("dtypes", ())), origin=c.get("origin"),
                                           lean=not c["array"], stored=stored)
    for t in document["targets"]:
        target = Target(**{k: v for k, v in t.items() if k in schema.TARGET_FIELDS})
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

    def __init__(self, path, observations, metadata, environment, interval=5.0):
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
        # A checkpoint rewrites the whole bundle: keep that under a tenth of the driver's time,
        # which it shares with the workers on a small machine.
        self.interval = max(self.interval, 10 * (self.last - started))
