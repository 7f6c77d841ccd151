"""The policy: severities per kind, allowed findings with reasons, thresholds.

Read from `audit.toml`, or from `[tool.argmax-audit]` in pyproject.toml::

    fail-on = "error"                 # default for --fail-on
    [severity]
    precision_drift = "error"         # any kind: "info", "warning" or "error"
    [thresholds]
    max_flip_rate = { bfloat16 = 0.05, float16 = 0.01 }
    [[allow]]
    kind = "tie_break"                # required
    target = "torch/cuda:*"           # glob on target ids (optional)
    case = "ties-*"                   # glob on case ids (optional)
    reason = "CUDA breaks ties by block; we only use argmax on distinct logits"   # required
"""
import fnmatch
import os
from dataclasses import dataclass, field

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from . import files
from .errors import UserError
from .files import printable
from .model import KINDS, LOW_PRECISION, SEVERITIES, severity_rank

KEYS = {"fail-on", "severity", "allow", "thresholds"}
#: The largest policy file read (a pyproject.toml with much else in it is far smaller).
MAX_BYTES = files.Limit(16 * 2**20, "the largest policy file read")


@dataclass
class Policy:
    source: str = "defaults"
    fail_on: str | None = None
    severity: dict = field(default_factory=dict)
    allow: list = field(default_factory=list)
    max_flip_rate: dict = field(default_factory=dict)

    def apply(self, findings):
        """Set each finding's severity from the policy and mark the allowed ones.

        A severity rule changes findings at their kind's default severity, and documented twin
        differences (a torch.topk tie, a warning by default); never the cross-target `info` view.
        """
        for finding in findings:
            documented = "documented" in finding.evidence and finding.severity != "info"
            if finding.kind in self.severity and (finding.severity == KINDS[finding.kind]
                                                  or documented):
                finding.severity = self.severity[finding.kind]
            for rule in self.allow:
                if _matches(rule, finding):
                    finding.allowed = rule["reason"]
                    break
        return findings

    def unused(self, findings):
        """Return a description of each allow rule that matched none of `findings`."""
        return [f"[[allow]] #{i + 1} ({', '.join(f'{k} = {rule[k]!r}' for k in ('kind', 'target', 'case') if k in rule)})"
                for i, rule in enumerate(self.allow) if not any(_matches(rule, f) for f in findings)]


def _glob(name, pattern):
    """Match `name` against `pattern` exactly or as a glob (ids hold '[', a glob character)."""
    return name == pattern or fnmatch.fnmatchcase(name, pattern)


def _matches(rule, finding):
    if rule["kind"] != finding.kind:
        return False
    blamed = finding.evidence.get("blame") or finding.targets
    if "target" in rule and not any(_glob(t, rule["target"]) for t in blamed):
        return False
    return "case" not in rule or _glob(finding.case or "", rule["case"])


def find(explicit=None, folder="."):
    """Return the policy from `explicit` (a path), else audit.toml, else pyproject.toml."""
    if explicit:
        if not os.path.lexists(explicit):
            raise UserError(f"--config {explicit} does not exist")
        policy = load(explicit)
        if policy is None:
            raise UserError(f"--config {explicit} has no [tool.argmax-audit] table")
        return policy
    for name in ("audit.toml", "pyproject.toml"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            policy = load(path)
            if policy is not None:
                return policy
    return Policy()


def load(path):
    """Parse the policy in `path`; raise UserError with the place and the fix when it is wrong."""
    data = files.read_bytes(path, "policy file", MAX_BYTES)
    try:
        data = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {files.one_line(exc)}") from None
    except RecursionError:
        raise UserError(f"{path}: not a policy: its tables or arrays nest too deep") from None
    if os.path.basename(path) == "pyproject.toml":
        data = data.get("tool", {})
        if not isinstance(data, dict):
            raise UserError(f"{path}: tool must be a table, got {type(data).__name__}")
        data = data.get("argmax-audit")
        if data is None:
            return None
    return parse(data, path)


def _expect(value, kind, where):
    if not isinstance(value, kind):
        name = {dict: "a table", list: "an array of tables", str: "a string"}[kind]
        raise UserError(f"{where} must be {name}, got {type(value).__name__} {_shown(value)}")
    return value


def parse(data, path):
    where = f"{path}"
    _expect(data, dict, where)
    unknown = set(data) - KEYS
    if unknown:
        raise UserError(f"{where}: unknown key {sorted(unknown)[0]!r}; known keys: {', '.join(sorted(KEYS))}")
    policy = Policy(source=path)
    if "fail-on" in data:
        if not isinstance(data["fail-on"], str) or data["fail-on"] not in ("warning", "error"):
            raise UserError(f"{where}: fail-on must be warning or error, got "
                            f"{_shown(data['fail-on'])}")
        policy.fail_on = data["fail-on"]
    for kind, level in _expect(data.get("severity", {}), dict, f"{where}: severity").items():
        if kind not in KINDS:
            raise UserError(f"{where}: [severity] names unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        policy.severity[kind] = _severity(level, f"{where}: [severity] {kind}")
    for i, rule in enumerate(_expect(data.get("allow", []), list, f"{where}: allow")):
        policy.allow.append(_rule(rule, f"{where}: [[allow]] #{i + 1}"))
    thresholds = _expect(data.get("thresholds", {}), dict, f"{where}: thresholds")
    for key in set(thresholds) - {"max_flip_rate"}:
        raise UserError(f"{where}: unknown threshold {key!r}; known: max_flip_rate")
    rates = _expect(thresholds.get("max_flip_rate", {}), dict, f"{where}: max_flip_rate")
    for dtype, rate in rates.items():
        if dtype not in LOW_PRECISION or type(rate) not in (int, float) or not 0 <= rate <= 1:
            raise UserError(f"{where}: max_flip_rate wants {{float16 = 0.01, bfloat16 = 0.05}} "
                            f"with rates in 0..1, got {printable(dtype)} = {_shown(rate)}")
        policy.max_flip_rate[dtype] = float(rate)
    return policy


def _severity(level, where):
    if not isinstance(level, str) or level not in SEVERITIES:
        raise UserError(f"{where} must be one of {', '.join(SEVERITIES)}, got {_shown(level)}")
    return level


def _shown(value, width=60):
    """Return `value` as the error shows it: its repr, on one line, cut to `width` characters."""
    text = printable(repr(value))
    return text if len(text) <= width else text[: width - 3] + "..."


def _rule(rule, where):
    if not isinstance(rule, dict):
        raise UserError(f"{where} must be a table with kind and reason")
    unknown = set(rule) - {"kind", "target", "case", "reason"}
    if unknown:
        raise UserError(f"{where}: unknown key {sorted(unknown)[0]!r}; keys: kind, target, case, reason")
    if not isinstance(rule.get("kind"), str) or rule["kind"] not in KINDS:
        raise UserError(f"{where}: kind must be one of {', '.join(KINDS)}, got "
                        f"{_shown(rule.get('kind'))}")
    for key in ("target", "case", "reason"):
        if key in rule:
            _expect(rule[key], str, f"{where}: {key}")
    if not rule.get("reason", "").strip():
        raise UserError(f"{where}: every allowed finding needs a reason")
    return rule


def failing(findings, fail_on):
    """Return the findings that fail the run at level `fail_on` (allowed ones never do)."""
    return [f for f in findings if not f.allowed and severity_rank(f.severity) >= severity_rank(fail_on)]
