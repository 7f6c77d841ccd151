"""The results document's schema, checked in full before any check or renderer sees a document.

Bundles and baselines come from other machines and other people. `validate` checks every field
the tool reads (type, range, vocabulary), that ids are unique and that references resolve, and
that every array has the dtype and shape the document says; a document that passes can be handed
to the checks and the renderers as it is. A failure is one line naming the field:
`results.json is malformed: targets[0].settings is a string, not an object`.

Fields the tool does not read (extra metadata, a check's extra evidence) may hold any JSON; every
string anywhere must be valid Unicode (no lone surrogates) of bounded length, every number finite.
"""
import math
import re

import numpy as np

from . import files
from .model import DTYPES, KINDS, SEVERITIES, Target
from .worker import layouts

#: The longest string a document may hold (a reproducer or a worker's stderr is a few KiB).
MAX_STRING = 2**20
_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
          list: "an array", dict: "an object", type(None): "null"}


class Invalid(ValueError):
    """A field of the document is wrong: `where` (a path like targets[0].dtype) and what."""

    def __init__(self, where, problem):
        super().__init__(f"{where or 'the document'} {problem}")


def _name(value):
    return _NAMES.get(type(value), type(value).__name__)


# --- the specification language: each spec is a function (value, where) that raises Invalid ---


def of(*kinds):
    """A value of one of the JSON `kinds` (str, int, float, bool, list, dict, None)."""
    kinds = tuple(type(None) if k is None else k for k in kinds)

    def check(value, where):
        if type(value) not in kinds and not (float in kinds and type(value) is int):
            wanted = " or ".join(_NAMES[k] for k in kinds)
            raise Invalid(where, f"is {_name(value)}, not {wanted}")
    return check


def integer(low=0, high=2**63 - 1, null=False):
    def check(value, where):
        if null and value is None:
            return
        of(int, *([None] if null else []))(value, where)
        if not low <= value <= high:
            raise Invalid(where, f"is {value}, outside {low} to {high}")
    return check


def number(low=0.0, spelled=False):
    """A finite number >= `low`; with `spelled`, also 'NaN', '+inf', '-inf' (how non-finite
    values are written)."""
    def check(value, where):
        if spelled and value in ("NaN", "+inf", "-inf"):
            return
        of(float)(value, where)
        if not value >= low:
            raise Invalid(where, f"is {value}, less than {low}")
    return check


def one_of(values, null=False):
    def check(value, where):
        if null and value is None:
            return
        if type(value) is not str or value not in values:
            shown = value if type(value) in (str, int, float, bool) or value is None else _name(value)
            raise Invalid(where, f"is {shown!r}, not one of {', '.join(map(str, values))}")
    return check


def name_like(pattern, words):
    """A string matching `pattern` (a compiled regex), described as `words` when it does not."""
    def check(value, where):
        of(str)(value, where)
        if not pattern.fullmatch(value):
            raise Invalid(where, f"is {value!r}, not {words}")
    return check


def optional(spec):
    def check(value, where):
        if value is not None:
            spec(value, where)
    return check


def array(item=None, length=None):
    def check(value, where):
        of(list)(value, where)
        if length is not None and len(value) != length:
            raise Invalid(where, f"has {len(value)} entries, not {length}")
        if item is not None:
            for i, entry in enumerate(value):
                item(entry, f"{where}[{i}]")
    return check


def mapping(item=None):
    def check(value, where):
        of(dict)(value, where)
        if item is not None:
            for key, entry in value.items():
                item(entry, f"{where}.{key}")
    return check


def fields(required=(), **specs):
    """An object whose `specs` keys (when present) match their specs; `required` keys must be
    there. Other keys may hold any JSON. A key spelled with a trailing _ stands for a keyword."""
    specs = {key.rstrip("_"): spec for key, spec in specs.items()}

    def check(value, where):
        of(dict)(value, where)
        for key in required:
            if key not in value:
                raise Invalid(where, f"has no {key!r}")
        for key, spec in specs.items():
            if key in value:
                spec(value[key], f"{where}.{key}" if where else key)
    return check


STR, BOOL, OPT_STR = of(str), of(bool), of(str, None)
NAMES = array(STR)
COUNT = integer()
SECONDS = number()
SCALAR = of(str, int, float, bool, None)
SEVERITY = one_of(SEVERITIES)


DEVICE = fields(("id",), id=STR, name=STR, dtypes=NAMES, unsupported=mapping(STR))
FRAMEWORK = fields(("version",), version=STR, build=mapping(SCALAR), index_dtype=STR, settings=mapping(SCALAR),
                   devices=array(DEVICE), ops=NAMES, index_dtypes=mapping(STR))
INVENTORY = dict(python=STR, host=STR, platform=STR, machine=STR, executable=STR,
                 cpu_count=integer(null=True), nvidia_driver=OPT_STR, tool=fields(version=STR),
                 frameworks=mapping(FRAMEWORK), settings=mapping(SCALAR), unavailable=mapping(STR))
ENVIRONMENT = fields(**INVENTORY, envs=mapping(fields(**INVENTORY)))

BASELINE_FACTS = fields(path=STR, created=OPT_STR, host=OPT_STR, frameworks=mapping(OPT_STR))
METADATA = fields(
    command=NAMES, suite=OPT_STR, seed=integer(-2**63, null=True), cases=NAMES,
    repeats=integer(null=True), processes=integer(null=True), timeout=optional(SECONDS),
    startup_timeout=optional(SECONDS), fail_on=SEVERITY, policy=STR, created=STR,
    complete=BOOL, seconds=SECONDS, skipped=NAMES, policy_unused=NAMES, baseline=BASELINE_FACTS,
    recovered=STR, merged=array(fields(path=STR, host=OPT_STR, created=OPT_STR, suite=OPT_STR,
                                       seed=integer(-2**63, null=True), complete=BOOL)),
    compare=fields(old=STR, new=STR, targets_paired=COUNT, compared=COUNT, cases_not_in_old=NAMES))

#: Backends are plugins: a bundle may name one that is not installed where it is read.
BACKEND_NAME = name_like(re.compile(r"[a-z][a-z0-9_-]{0,31}"), "a backend name (lowercase letters, digits, _ and -)")
OP_NAME = name_like(re.compile(r"[a-z][a-z0-9_-]{0,31}"), "an op name (lowercase letters, digits, _ and -)")
TARGET = fields(("id", "framework", "device", "dtype"), id=STR, framework=BACKEND_NAME,
                device=STR, dtype=one_of(DTYPES), variant=STR, env=STR, impl=OPT_STR,
                index_dtype=STR, op=OP_NAME, settings=mapping(SCALAR))
SHA256 = name_like(re.compile(r"[0-9a-f]{64}"), "a sha256 in hex")
ORIGIN = fields(path=OPT_STR, size=integer(null=True), format=STR, key=OPT_STR,
                offset=integer(null=True), sha256=SHA256,
                dtype=name_like(re.compile(r"[a-z][a-z0-9_]{0,31}"), "a dtype name"))
POLICY = one_of(("none", "first", "last", "other", "mixed", "later-nan", "ignores-nan"))
LEAN = fields(rows=STR, positions=STR, references=array(fields(
    ("dtype", "sense", "array"), dtype=one_of(DTYPES), sense=one_of(("max", "min")), array=STR)),
    policies=array(fields(("dtype", "sense", "answers", "tie", "nan"), dtype=one_of(DTYPES),
                          sense=one_of(("max", "min")), answers=STR, tie=POLICY, nan=POLICY)))
#: The dtypes a case's source values have (worker/casting.py).
SOURCE_DTYPES = ("float32", "float64", "int64", "uint64", "bool")
CASE = fields(("id", "shape", "dim", "keepdim", "array"), id=STR, tags=NAMES,
              shape=array(integer()), dim=integer(-64, 63, null=True), keepdim=BOOL,
              layout=STR, note=STR, must_raise=BOOL, array=OPT_STR,
              sense=one_of(("", "max", "min")), dtypes=array(one_of(DTYPES)), origin=ORIGIN,
              values_dtype=one_of(SOURCE_DTYPES), lean=LEAN)
ERROR = fields(("type",), type=STR, message=STR, where=STR, stderr=STR)
OUTCOME = fields(("runs",), runs=array(array(integer(null=True), length=2)), error=ERROR, indices=STR,
                 dtype=STR, type=OPT_STR)
TIMING = fields(("calls", "call_s", "harness_s"), calls=COUNT, call_s=SECONDS, harness_s=SECONDS, compile_s=SECONDS, compiles=COUNT,
                min_s=optional(SECONDS), prepare_s=optional(SECONDS))
OBSERVATION = fields(("target", "case", "outcomes"), target=STR, case=STR,
                     outcomes=array(OUTCOME), timing=optional(TIMING))

INDEX = integer(-2**63)
EXCERPT = array(array(length=2))  # [[index, value], ...]: checked for integer indices below
EVIDENCE = fields(blame=NAMES, problem=STR, error=of(dict, str, None), cases=array(SCALAR),
                  groups=array(fields(index=of(int, str, None), targets=NAMES)), causes=NAMES,
                  picks=array(of(int, str, None)), values=EXCERPT, rounded=EXCERPT,
                  margins_spacings=array(number(-math.inf, spelled=True)),
                  expected=of(int, str, list, None), returned=of(int, str, list, None))
FINDING = fields(("check", "kind", "message", "targets"), check=STR, kind=one_of(tuple(KINDS)),
                 message=STR, targets=NAMES, case=OPT_STR, severity=one_of(("",) + SEVERITIES),
                 positions=array(array(INDEX)), count=COUNT, evidence=EVIDENCE,
                 reproducer=OPT_STR, allowed=OPT_STR)

TARGET_ROW = fields(("target", "cases", "calls", "findings", "tie_policy", "nan_policy"), target=STR, cases=COUNT, calls=COUNT, findings=mapping(COUNT),
                    tie_policy=STR, nan_policy=STR)
SUMMARY = fields(
    complete=BOOL, verdict=one_of(("pass", "fail")), fail_on=SEVERITY, failing=COUNT,
    allowed=COUNT, by_severity=fields(SEVERITIES, **{s: COUNT for s in SEVERITIES}),
    by_kind=mapping(COUNT), targets=array(TARGET_ROW),
    precision=mapping(fields(("flips", "positions", "rate"), flips=COUNT, positions=COUNT, rate=number(spelled=True),
                             float32_target=STR)),
    timing=fields(calls=COUNT, call_s=SECONDS, harness_s=SECONDS, compile_s=SECONDS,
                  compiles=COUNT),
    user=mapping(fields(("rows", "vs_reference"), rows=COUNT, vs_reference=COUNT,
                        baseline_target=STR, vs_baseline=COUNT, rows_compared=COUNT)))

DOCUMENT = fields(("format_version", "targets", "cases", "observations"),
                  format_version=integer(1), write_id=STR, baseline=BOOL, metadata=METADATA,
                  environment=ENVIRONMENT, targets=array(TARGET), cases=array(CASE),
                  observations=array(OBSERVATION), startup_errors=mapping(STR),
                  findings=array(FINDING), summary=SUMMARY)


# --- validation --------------------------------------------------------------------------------


def validate(document, arrays):
    """Raise Invalid unless `document` (a results document, already upgraded to this format)
    and its `arrays` are well formed in every field the tool reads, and consistent."""
    _plain(document)
    DOCUMENT(document, "")
    summary = document.get("summary", {})
    if "verdict" in summary:  # a finished run's summary; a checkpoint's holds only "complete"
        fields(VERDICT_KEYS)(summary, "summary")
    for target, row in summary.get("user", {}).items():
        if "vs_baseline" in row:
            fields(("rows_compared", "baseline_target"))(row, f"summary.user.{target}")
    targets = {}
    for i, entry in enumerate(document["targets"]):
        target = Target(**{k: v for k, v in entry.items() if k in TARGET_FIELDS})
        if entry.get("id", target.id) != target.id:
            raise Invalid(f"targets[{i}].id", f"is {entry['id']!r}, but its fields make "
                          f"{target.id!r}")
        if target.id in targets:
            raise Invalid(f"targets[{i}]", f"repeats target {target.id!r}")
        targets[target.id] = target
    cases = {}
    for i, case in enumerate(document["cases"]):
        where = f"cases[{i}]"
        if case["id"] in cases:
            raise Invalid(where, f"repeats case {case['id']!r}")
        if case["array"] is None:
            values = _lean_case(case, arrays, where)
        else:
            values = _array(arrays, case["array"], f"{where}.array", "biuf")
        if list(values.shape) != case["shape"]:
            raise Invalid(f"{where}.shape", f"is {case['shape']}, but its array has shape "
                          f"{list(values.shape)}")
        try:
            layouts.check(case.get("layout", "contiguous"), values.ndim)
        except ValueError:
            raise Invalid(f"{where}.layout", f"is {case.get('layout')!r}, not a layout of "
                          f"{values.ndim} axes this version knows") from None
        ndim = max(values.ndim, 1)
        if case["dim"] is not None and not -ndim <= case["dim"] < ndim:
            raise Invalid(f"{where}.dim", f"is {case['dim']}, out of range for {values.ndim} dims")
        cases[case["id"]] = case
    for i, record in enumerate(document["observations"]):
        where = f"observations[{i}]"
        for key, known in (("target", targets), ("case", cases)):
            if record[key] not in known:
                raise Invalid(f"{where}.{key}", f"names {record[key]!r}, which is not in the "
                              f"document's {key}s")
        for j, outcome in enumerate(record["outcomes"]):
            at = f"{where}.outcomes[{j}]"
            if "error" not in outcome:
                for key in ("indices", "dtype"):
                    if key not in outcome:
                        raise Invalid(at, f"has neither 'error' nor {key!r}")
                _array(arrays, outcome["indices"], f"{at}.indices", "iu")
    for i, finding in enumerate(document.get("findings", [])):
        for key in ("values", "rounded"):
            for j, pair in enumerate(finding.get("evidence", {}).get(key) or []):
                if type(pair[0]) is not int:
                    raise Invalid(f"findings[{i}].evidence.{key}[{j}][0]",
                                  f"is {_name(pair[0])}, not an integer index")


#: What a finished run's summary always holds (the renderers read these without a default).
VERDICT_KEYS = ("complete", "verdict", "fail_on", "failing", "allowed", "by_severity", "by_kind",
                "targets")
TARGET_FIELDS = ("framework", "device", "dtype", "variant", "env", "impl", "index_dtype", "op",
                 "settings")


def _lean_case(case, arrays, where):
    """Check a lean case (no array: auditor/lean.py): its origin, dtype and shape, and the rows
    and reference answers it kept against its shape; return an empty stand-in of that shape."""
    for key in ("origin", "values_dtype"):
        if key not in case:
            raise Invalid(where, f"has no array and no {key!r}")
    if "sha256" not in case["origin"]:
        raise Invalid(f"{where}.origin", "has no 'sha256'")
    shape = case["shape"]
    problem = files.shape_problem(shape, files.memory_limit().bytes, "the memory limit")
    if problem:
        raise Invalid(f"{where}.shape", problem)
    stand_in = np.lib.stride_tricks.as_strided(np.zeros(1, case["values_dtype"]), shape,
                                               [0] * len(shape), writeable=False)
    dim, keep, lean = case["dim"], case["keepdim"], case.get("lean") or {}
    if dim is None or not shape:
        output = [1] * len(shape) if keep and dim is None else []
        length = math.prod(shape)
    else:
        axis = dim % len(shape) if -len(shape) <= dim < len(shape) else 0
        output = shape[:axis] + ([1] if keep else []) + shape[axis + 1:]
        length = shape[axis]
    for i, reference in enumerate(lean.get("references", [])):
        answers = _array(arrays, reference["array"], f"{where}.lean.references[{i}].array", "i")
        if list(answers.shape) != output or (answers.size and not (
                0 <= answers.min() and answers.max() < max(length, 1))):
            raise Invalid(f"{where}.lean.references[{i}]", f"is not {output} indices within "
                          f"0..{length - 1}")
    if "rows" in lean or "positions" in lean:
        _lean_rows(case, arrays, f"{where}.lean", output, length)
    return stand_in


def _lean_rows(case, arrays, where, output, length):
    rows = _array(arrays, case["lean"].get("rows", ""), f"{where}.rows", "biuf")
    positions = _array(arrays, case["lean"].get("positions", ""), f"{where}.positions", "i")
    if rows.dtype.name != case["values_dtype"] or rows.ndim != 2 or rows.shape[1] != length:
        raise Invalid(f"{where}.rows", f"are {rows.dtype} of shape {list(rows.shape)}, not rows "
                      f"of {length} {case['values_dtype']}")
    if list(positions.shape) != [len(rows), len(output)] or (positions.size and not (
            (positions >= 0) & (positions < np.array(output, dtype=np.int64))).all()):
        raise Invalid(f"{where}.positions", f"are not {len(rows)} positions within {output}")


def _array(arrays, key, where, kinds):
    if key not in arrays:
        raise Invalid(where, f"names array {key!r}, which arrays.npz does not hold")
    values = arrays[key]
    if values.dtype.kind not in kinds:
        raise Invalid(where, f"names array {key!r} of dtype {values.dtype}, not of the kinds "
                      f"{kinds!r} it must have")
    return values


def _plain(document):
    """Raise Invalid where a string is not valid Unicode or too long, or a number not finite.

    Walks without recursion (the depth was bounded when the text was parsed)."""
    stack = [(document, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                _text(key, f"{where} key" if where else "a key")
                stack.append((item, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            _text(value, where)
        elif isinstance(value, float) and not math.isfinite(value):
            raise Invalid(where, f"is {value}, not a finite number")


def _text(value, where):
    if len(value) > MAX_STRING:
        raise Invalid(where, f"is a string of {len(value):,} characters, more than "
                      f"{MAX_STRING:,}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Invalid(where, f"holds {exc.reason} (U+{ord(value[exc.start]):04X}), not "
                      "Unicode text") from None
