"""The bench document and bundle: its schema, checked in full before use, and how it is written.

A bench document is what `audit bench --json` prints and what a bench bundle (`--out`) keeps in
`bench.json`, beside `report.html` and `summary.md`:

    {"format_version": 1, "environment": {...}, "results": [{"target": "numpy/cpu/float32",
     "shape": [1000, 1000], "dim": 0, "median_s": ..., "iqr_s": ..., "min_s": ..., "samples": ...,
     "loops": ..., "bytes": ..., "gbps": ..., "peak_gbps": ..., "peak_fraction": ...}], "run": {...}}

`run` holds the command, the plan (shapes, dims, samples, processes), each target's fields and
settings, the first calls' seconds (compilation included), the failures and what was skipped.
Bench bundles and baselines come from other machines and people: `load` reads them within the
bounds of auditor.files and validates every field the tool reads, the refusal one line.
"""
import json
import math
import os

from . import files, ops, schema
from .errors import BundleError, UserError
from .model import DTYPES
from .schema import (
    BOOL,
    NAMES,
    OPT_STR,
    SECONDS,
    STR,
    Invalid,
    array,
    fields,
    integer,
    mapping,
    number,
    of,
    one_of,
    optional,
)

# Bump on any incompatible change, and say here what changed.
#  1: the first format (results, environment with peaks and loop overhead, run).
FORMAT_VERSION = 1
DOCUMENT_NAME = "bench.json"
REPORT_NAME = "report.html"
SUMMARY_NAME = "summary.md"
RESULT_KEYS = ("target", "shape", "dim", "median_s", "iqr_s", "min_s", "samples", "loops",
               "bytes", "gbps", "peak_gbps", "peak_fraction")

SIZE = integer(1, 2**62)
DIM = integer(-64, 63, null=True)
RATE = optional(number())


def _seconds(low):
    """A time per call from `low` to a day: the charts take logarithms of it and comparisons
    divide by it, which a smaller or larger number would turn into an infinity."""
    def check(value, where):
        number(low)(value, where)
        if value > 86400.0:
            raise Invalid(where, f"is {value}, more than a day")
    return check


TIME, SPREAD = _seconds(1e-12), _seconds(0.0)
RESULT = fields(RESULT_KEYS, target=STR, shape=array(SIZE), dim=DIM, median_s=TIME,
                iqr_s=SPREAD, min_s=SPREAD, samples=integer(1), loops=integer(1),
                bytes=integer(1), gbps=RATE, peak_gbps=RATE, peak_fraction=RATE)
TARGET = fields(("framework", "device", "dtype"), framework=schema.BACKEND_NAME, device=STR,
                dtype=one_of(DTYPES), variant=STR, op=one_of(tuple(ops.OPS)), impl=OPT_STR,
                env=STR, settings=of(dict))
ERROR = fields(("type",), type=STR, message=STR, where=STR, process=integer(null=True))
FAILURE = fields(("target", "shape", "dim", "errors"), target=STR, shape=array(SIZE), dim=DIM,
                 errors=array(ERROR))
WHERE = fields(("target", "shape", "dim"), target=STR, shape=array(SIZE), dim=DIM)
#: A comparison with a baseline, as benchcompare.compare returns it: every field the renderers
#: and the exit code read.
PAIR = fields(("target", "old_target", "shape", "dim", "old_median_s", "old_iqr_s", "new_median_s",
               "new_iqr_s", "ratio", "verdict"),
              target=STR, old_target=STR, shape=array(SIZE), dim=DIM, old_median_s=TIME,
              old_iqr_s=SPREAD, new_median_s=optional(TIME), new_iqr_s=optional(SPREAD),
              ratio=optional(number()),
              verdict=one_of(("failed", "slower", "noisy", "faster", "same")), error=STR)
COMPARISON = fields(("threshold", "verdict", "counts", "pairs"), threshold=number(),
                    verdict=one_of(("pass", "fail")), counts=mapping(integer(0)),
                    pairs=array(PAIR), only_old=array(WHERE), only_new=array(WHERE),
                    notes=NAMES)
RUN = fields(command=NAMES, created=STR, complete=BOOL, seconds=SECONDS, samples=integer(1),
             processes=integer(1), targets=mapping(TARGET), failures=array(FAILURE),
             skipped=NAMES, shapes=array(array(SIZE)), dims=array(DIM),
             first_call_s=array(fields(("target", "seconds", "shape", "dim"), target=STR,
                                       seconds=array(number()), shape=array(SIZE), dim=DIM)),
             comparison=COMPARISON)
PEAK = fields(gbps=RATE, by=mapping(fields(("gbps", "kernel"), gbps=number(), bytes=integer(),
                                            kernel=STR)))
LOAD = optional(array(number(), length=3))
ENVIRONMENT = fields(**schema.INVENTORY, cpu=OPT_STR, memory_bytes=integer(null=True),
                     load_average=fields(start=LOAD, end=LOAD), peaks=mapping(PEAK),
                     loop_overhead_s=mapping(number()))
DOCUMENT = fields(("format_version", "environment", "results"), format_version=integer(1),
                  environment=ENVIRONMENT, results=array(RESULT), run=RUN)


def validate(document, source="bench document"):
    """Raise BundleError (one line, naming the field) unless `document` is a well-formed bench
    document of a format this version reads."""
    try:
        schema.of(dict)(document, "")
        version = document.get("format_version")
        if type(version) is int and version > FORMAT_VERSION:
            raise BundleError(f"{source} has format {version}, newer than the {FORMAT_VERSION} "
                              "this argmax-audit reads; upgrade argmax-audit")
        schema._plain(document)
        DOCUMENT(document, "")
        if version != FORMAT_VERSION:
            raise Invalid("format_version", f"is {version}, not {FORMAT_VERSION}")
        _consistent(document)
    except Invalid as exc:
        raise BundleError(f"{source} is malformed: {exc}") from None


def _consistent(document):
    """Raise Invalid where results repeat a (target, shape, dim), name a target the run does not
    list, or hold statistics that cannot be (a median below the minimum, bytes that are not the
    shape's)."""
    targets = (document.get("run") or {}).get("targets")
    seen = set()
    for i, result in enumerate(document["results"]):
        where = f"results[{i}]"
        key = (result["target"], tuple(result["shape"]), result["dim"])
        if key in seen:
            raise Invalid(where, f"repeats {result['target']} on {result['shape']} dim "
                          f"{result['dim']}")
        seen.add(key)
        if targets is not None and result["target"] not in targets:
            raise Invalid(f"{where}.target", f"names {result['target']!r}, which run.targets "
                          "does not list")
        if not result["shape"] or math.prod(result["shape"]) >= 2**62:
            raise Invalid(f"{where}.shape", f"is {result['shape']}, not a shape of 1 to 2^62 "
                          "elements")
        if result["median_s"] <= 0 or result["min_s"] > result["median_s"]:
            raise Invalid(f"{where}.median_s", f"is {result['median_s']}, not a positive time "
                          f"at least min_s ({result['min_s']})")
        if result["dim"] is not None and not -len(result["shape"]) <= result["dim"] < len(
                result["shape"]):
            raise Invalid(f"{where}.dim", f"is {result['dim']}, out of range for "
                          f"{len(result['shape'])} dims")


def is_bench(path):
    """True when `path` is a bench bundle (a folder with bench.json and no results.json) or a
    JSON file (baselines of `audit run` are .npz archives, results bundles folders)."""
    if os.path.isdir(path):
        return (os.path.isfile(os.path.join(path, DOCUMENT_NAME))
                and not os.path.lexists(os.path.join(path, "results.json")))
    if os.path.basename(path) == "results.json":  # a results bundle's document
        return False
    try:
        with files.open_regular(path, "file") as handle:
            start = handle.read(64).lstrip()
    except UserError:
        return False
    return start.startswith(b"{")


def load(path, what="bench bundle"):
    """Return the bench document of bundle folder or JSON file `path`, read within bounds and
    validated; BundleError or UserError (one line) if it is not one."""
    name = os.path.join(path, DOCUMENT_NAME) if os.path.isdir(path) else path
    if not os.path.lexists(name):
        raise UserError(f"{what} {files.printable(path)} does not exist" if name == path else
                        f"{what} {files.printable(path)} has no {DOCUMENT_NAME}: it is not a "
                        "bench bundle (made by audit bench --out)")
    data = files.read_bytes(name, what, files.document_limit(), BundleError)
    document = files.load_json(data, files.printable(name))
    validate(document, files.printable(name))
    return document


def check_out(out):
    """Refuse bundle folder `out` where a results bundle or something not a folder is there."""
    if os.path.lexists(os.path.join(out, "results.json")):
        raise UserError(f"--out {files.printable(out)} holds a results bundle of audit run; "
                        "give another folder for the bench bundle")
    if os.path.lexists(out) and not os.path.isdir(out):
        raise UserError(f"--out {files.printable(out)} is not a folder")


def prepare(out):
    """Make bundle folder `out` (checked by `check_out`)."""
    check_out(out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot make the bench bundle folder {files.printable(out)}: "
                        f"{exc.strerror or exc}") from None


def dumps(document):
    return json.dumps(document, indent=1, allow_nan=False)


def write(out, document, report=None, summary=None):
    """Write bench.json (and `report` HTML, `summary` Markdown where given) into folder `out`,
    each atomically; the folder is made where it is missing."""
    prepare(out)
    files.write_text(os.path.join(out, DOCUMENT_NAME), dumps(document), "bench document", False)
    if report is not None:
        files.write_text(os.path.join(out, REPORT_NAME), report, "HTML report", False)
    if summary is not None:
        files.write_text(os.path.join(out, SUMMARY_NAME), summary, "Markdown summary", False)
