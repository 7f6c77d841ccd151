"""The HTML report: a view model built from a results document, rendered by one Jinja2 template.

The page is one self-contained file: CSS, JavaScript and the SVG chart are inline, nothing is
fetched, and a Content-Security-Policy lets only the page's own script (by its hash) run. Every
string that came from a run is escaped by Jinja2's autoescape; the script reads data attributes
and writes text, never markup.
"""
from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass, field

import jinja2
from markupsafe import Markup

from auditor.model import KINDS, SEVERITIES, severity_rank

#: The checks, in the order findings are reported (auditor.checks.CHECKS).
CHECK_NAMES = ("crash", "api", "determinism", "reference", "consistency", "precision")
CHECK_TITLES = {"crash": "crash", "api": "API", "determinism": "determinism",
                "reference": "reference", "consistency": "consistency", "precision": "precision",
                "regression": "regression"}
KIND_TEXT = {
    "nondeterministic": "different indices for the same case across repeats or processes",
    "wrong_index": "the index is not a maximizer of the values the target saw",
    "tie_break": "a maximizer, but not the first one (or targets chose different maximizers)",
    "nan_policy": "the input holds NaN and the target did not return the first NaN",
    "precision_drift": "float16/bfloat16 picked another index than float32 because rounding "
                       "changed the order or made a tie",
    "api_mismatch": "wrong output dtype or shape, or a call that should raise did not",
    "crash": "the target raised, hung, or its process died",
    "regression": "the indices differ from the baseline for the same target",
}
#: Margin bins of the precision chart, in spacings of the low-precision dtype: [low, high).
MARGIN_BINS = ((0.0, 0.01, "< 0.01"), (0.01, 0.1, "0.01–0.1"), (0.1, 0.5, "0.1–0.5"),
               (0.5, 1.0, "0.5–1"), (1.0, 2.0, "1–2"), (2.0, 8.0, "2–8"),
               (8.0, math.inf, "≥ 8"), (math.inf, math.inf, "∞"))
#: Joins the values of one data-* attribute the page's filters split (ids may hold spaces).
FILTER_SEP = "\n"


@dataclass
class Cell:
    """One square of the target × check matrix."""

    check: str
    severity: str  # worst not-allowed finding: error/warning/info, "allowed", "ok" or "none"
    count: int


@dataclass
class TargetRow:
    id: str
    framework: str
    device: str
    dtype: str
    variant: str
    env: str
    cases: int
    calls: int
    tie_policy: str
    nan_policy: str
    cells: list
    worst: str
    op: str = "argmax"
    settings: str = ""


@dataclass
class ValueCell:
    index: int | None  # None: a gap in the excerpt
    value: str
    disputed: bool = False
    label: str = ""


@dataclass
class FindingView:
    anchor: str
    kind: str
    check: str
    severity: str
    allowed: str | None
    message: str
    case: str | None
    targets: list
    blame: list
    positions: str
    rows: list  # [(label, [ValueCell])]
    details: list  # [(label, text)]
    reproducer: str | None

    @property
    def filter_targets(self):
        return FILTER_SEP.join(self.blame)


@dataclass
class KindGroup:
    kind: str
    text: str
    severities: dict
    problems: list


@dataclass
class CaseRow:
    id: str
    tags: list
    shape: str
    call: str
    note: str
    targets: list  # targets with a finding on this case
    kinds: list
    worst: str
    findings: list  # anchors

    @property
    def filter_tags(self):
        return FILTER_SEP.join(self.tags)

    @property
    def filter_targets(self):
        return FILTER_SEP.join(self.targets)

    @property
    def filter_kinds(self):
        return FILTER_SEP.join(self.kinds)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass
class Chart:
    width: int
    height: int
    bars: list
    labels: list  # (x, text)
    ticks: list  # (y, text)
    legend: list  # (colour, text)
    total: int


@dataclass
class Report:
    title: str
    version: str
    verdict: dict
    run: list
    environment: dict
    checks: list
    targets: list
    user: list
    precision: list
    chart: Chart | None
    groups: list
    cases: list
    tags: list
    kinds: list
    allowed: list
    notes: list
    css: Markup = field(repr=False)
    script: Markup = field(repr=False)
    script_hash: str = ""


def _blame(finding):
    return list(finding["evidence"].get("blame") or finding["targets"])


def _worst(severities):
    ranked = [s for s in severities if s in SEVERITIES]
    if ranked:
        return max(ranked, key=severity_rank)
    return "allowed" if "allowed" in severities else "ok"


def _anchor(index):
    return f"f{index}"


def verdict(document):
    """Return the numbers of the verdict banner."""
    summary, metadata = document["summary"], document["metadata"]
    return {
        "verdict": summary.get("verdict", "incomplete"),
        "fail_on": summary.get("fail_on", metadata.get("fail_on", "error")),
        "by_severity": summary.get("by_severity", {s: 0 for s in SEVERITIES}),
        "by_kind": [(k, n) for k, n in summary.get("by_kind", {}).items() if n],
        "allowed": summary.get("allowed", 0),
        "complete": bool(summary.get("complete", False) and metadata.get("complete", True)),
        "targets": len(document["targets"]),
        "cases": len(document["cases"]),
        "calls": f"{summary.get('timing', {}).get('calls', 0):,}",
    }


def run_facts(document):
    """Return [(label, text)] about how the run was made."""
    metadata = document["metadata"]
    facts = [("command", " ".join(metadata.get("command", []))),
             ("created", metadata.get("created", "")),
             ("suite", f"{metadata.get('suite', '?')} (seed {metadata.get('seed', '?')})"),
             ("repeats", f"{metadata.get('repeats', '?')} × {metadata.get('processes', '?')} processes"),
             ("policy", metadata.get("policy", "defaults"))]
    if metadata.get("seconds") is not None:
        facts.append(("wall time", f"{metadata['seconds']:.1f} s"))
    timing = document["summary"].get("timing") or {}
    if metadata.get("baseline"):
        base = metadata["baseline"]
        versions = ", ".join(f"{k} {v}" for k, v in (base.get("frameworks") or {}).items())
        facts.append(("baseline", f"{base.get('path')} ({base.get('created') or '?'}, "
                      f"{base.get('host') or '?'}; {versions})"))
    if timing.get("calls"):
        facts.append(("calls", f"{timing['calls']:,} calls, {timing['call_s'] or 0:.2f} s inside "
                      f"argmax, {timing['harness_s'] or 0:.2f} s harness"))
    if timing.get("compiles"):
        facts.append(("compiling", f"{timing['compile_s'] or 0:.1f} s for {timing['compiles']:,} "
                      "compiled signatures (a compiling variant's first call of each), apart from the calls"))
    return facts


def environment(document):
    """Return the environment section: host facts, frameworks, devices and settings."""
    env = document["environment"]
    host = [("host", env.get("host")), ("platform", env.get("platform")),
            ("CPUs", env.get("cpu_count")), ("Python", env.get("python")),
            ("interpreter", env.get("executable")), ("NVIDIA driver", env.get("nvidia_driver")),
            ("argmax-audit", (env.get("tool") or {}).get("version"))]
    frameworks, devices = [], []
    described = list((env.get("frameworks") or {}).items())
    for label, other in (env.get("envs") or {}).items():
        described += [(f"{name}@{label}", dict(info, build={"Python": other.get("python"),
                                                             **(info.get("build") or {})}))
                      for name, info in (other.get("frameworks") or {}).items()]
    for name, info in described:
        build = ", ".join(f"{k} {v}" for k, v in (info.get("build") or {}).items() if v)
        settings = ", ".join(f"{k}={v}" for k, v in (info.get("settings") or {}).items())
        frameworks.append({"name": name, "version": info.get("version", "?"), "build": build,
                           "index_dtype": info.get("index_dtype", ""), "settings": settings})
        for device in info.get("devices", []):
            extra = {k: v for k, v in device.items()
                     if k not in ("id", "name", "dtypes", "unsupported") and v not in ({}, [], None, "")}
            unsupported = "; ".join(f"{k}: {v}" for k, v in (device.get("unsupported") or {}).items())
            devices.append({"framework": name, "id": device.get("id"), "name": device.get("name", ""),
                            "extra": ", ".join(f"{k} {v}" for k, v in extra.items()),
                            "dtypes": ", ".join(device.get("dtypes", [])),
                            "unsupported": unsupported})
    return {"host": [(k, v) for k, v in host if v not in (None, "")], "frameworks": frameworks,
            "devices": devices, "settings": sorted((env.get("settings") or {}).items()),
            "unavailable": sorted((env.get("unavailable") or {}).items())}


def check_names(document):
    """Return the checks the matrix shows: regression only where there was a baseline."""
    compared = document["metadata"].get("baseline") or any(
        f["check"] == "regression" for f in document["findings"])
    return CHECK_NAMES + ("regression",) if compared else CHECK_NAMES


def target_rows(document):
    """Return one TargetRow per target (and per framework that never started)."""
    checks = check_names(document)
    summary_rows = {r["target"]: r for r in document["summary"].get("targets", [])}
    found = {}
    for f in document["findings"]:
        for target in _blame(f):
            found.setdefault((target, f["check"]), []).append("allowed" if f["allowed"] else f["severity"])
    rows = []
    for t in document["targets"]:
        row = summary_rows.get(t["id"], {})
        cells = [Cell(check, _worst(found.get((t["id"], check), [])) if (t["id"], check) in found
                      else "ok", len(found.get((t["id"], check), []))) for check in checks]
        rows.append(TargetRow(t["id"], t["framework"], t["device"], t["dtype"],
                              t.get("variant", "eager"), t.get("env", "local"),
                              row.get("cases", 0), f"{row.get('calls', 0):,}",
                              row.get("tie_policy", "untested"), row.get("nan_policy", "untested"),
                              cells, _worst([c.severity for c in cells]), t.get("op", "argmax"),
                              _settings(t.get("settings"))))
    for framework in document.get("startup_errors") or {}:
        cells = [Cell(c, "error" if c == "crash" else "none", int(c == "crash")) for c in checks]
        rows.append(TargetRow(framework, framework, "", "", "", "", 0, 0, "untested", "untested",
                              cells, "error"))
    return rows


def user_rows(document):
    """Return, per target, the predictions on the user's cases that differ (reference, baseline)."""
    rows = []
    for target, row in (document["summary"].get("user") or {}).items():
        def share(part, whole):
            return f"{part:,} of {whole:,} ({part / whole:.2%})" if whole else "–"
        rows.append({"target": target, "rows": f"{row['rows']:,}",
                     "reference": share(row["vs_reference"], row["rows"]),
                     "reference_bad": row["vs_reference"] > 0,
                     "baseline": share(row["vs_baseline"], row["rows_compared"])
                     if "vs_baseline" in row else "no baseline",
                     "baseline_bad": row.get("vs_baseline", 0) > 0,
                     "baseline_target": row.get("baseline_target", "")})
    return rows


def _settings(settings):
    """Return a target's recorded settings (threads, deterministic mode, x64, ...) as one line."""
    settings = {k: v for k, v in (settings or {}).items() if k != "by_process"}
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def precision_rows(document):
    """Return the flip rate of each low-precision target against its float32 twin."""
    rows = []
    for target, stats in (document["summary"].get("precision") or {}).items():
        rate = stats.get("rate") or 0.0
        rows.append({"target": target, "against": stats.get("float32_target", ""),
                     "flips": stats.get("flips", 0), "positions": stats.get("positions", 0),
                     "rate": f"{rate:.2%}", "width": min(100.0, 100.0 * rate / 0.1)})
    return rows


def _spacings(value):
    if isinstance(value, str):
        return math.inf if value in ("+inf", "inf") else math.nan
    return float(value)


def margin_chart(document, width=640, height=220):
    """Return a bar chart of precision flips by their float32 margin in low-precision spacings."""
    counts = {}
    for f in document["findings"]:
        if f["kind"] != "precision_drift" or "margins_spacings" not in f["evidence"]:
            continue
        dtype = _blame(f)[0].split("/")[2] if _blame(f)[0].count("/") >= 2 else "low"
        for margin in f["evidence"]["margins_spacings"]:
            margin = abs(_spacings(margin))
            for i, (low, high, _) in enumerate(MARGIN_BINS):
                if low <= margin < high or (margin == math.inf and low == math.inf):
                    counts.setdefault(dtype, [0] * len(MARGIN_BINS))[i] += 1
                    break
    if not counts:
        return None
    palette = ("#3d7dd8", "#d8893d", "#6a4fb3", "#2f9e6e")
    left, bottom, top = 44, 36, 12
    plot_h = height - bottom - top
    slot = (width - left - 8) / len(MARGIN_BINS)
    peak = max(max(v) for v in counts.values())
    bars, legend = [], []
    bar_w = (slot - 10) / len(counts)
    for j, (dtype, values) in enumerate(sorted(counts.items())):
        colour = palette[j % len(palette)]
        legend.append((colour, dtype))
        for i, n in enumerate(values):
            h = plot_h * n / peak if peak else 0
            bars.append(Bar(round(left + i * slot + 5 + j * bar_w, 1), round(top + plot_h - h, 1),
                            round(bar_w - 1, 1), round(h, 1), colour,
                            f"{dtype}: {n} flip{'s' if n != 1 else ''} with a margin of "
                            f"{MARGIN_BINS[i][2]} spacings"))
    labels = [(round(left + i * slot + slot / 2, 1), text) for i, (_, _, text) in enumerate(MARGIN_BINS)]
    ticks = [(round(top + plot_h - plot_h * k / 4, 1), str(round(peak * k / 4))) for k in range(5)]
    total = sum(sum(v) for v in counts.values())
    return Chart(width, height, bars, labels, ticks, legend, total)


def _value_rows(finding):
    """Return [(label, [ValueCell])]: the values around the disputed indices, those highlighted."""
    evidence = finding["evidence"]
    disputed = {}
    for key, label in (("expected", "expected"), ("returned", "returned")):
        if isinstance(evidence.get(key), int):
            disputed.setdefault(evidence[key], label)
    for group in evidence.get("groups", []):
        if isinstance(group.get("index"), int):
            disputed.setdefault(group["index"], "picked")
    picks = evidence.get("picks") or []
    if finding["kind"] == "precision_drift" and len(picks) == 2:
        disputed.setdefault(picks[0], "float32 picks")
        disputed.setdefault(picks[1], "low precision picks")
    else:
        for pick in picks:
            if isinstance(pick, int):
                disputed.setdefault(pick, "picked")
    rows = []
    for key, label in (("values", "values"), ("rounded", "rounded")):
        if evidence.get(key):
            rows.append((label, _cells(evidence[key], disputed)))
    return rows


def _cells(excerpt, disputed):
    cells, previous = [], None
    for index, value in excerpt:
        if previous is not None and index > previous + 1:
            cells.append(ValueCell(None, "…"))
        cells.append(ValueCell(index, str(value), index in disputed, disputed.get(index, "")))
        previous = index
    return cells


def _details(finding):
    """Return [(label, text)] of evidence worth a line that the value table does not show."""
    evidence, details = finding["evidence"], []
    if finding["allowed"]:
        details.append(("allowed by the policy", finding["allowed"]))
    for key in ("problem", "policy", "scope", "dtype", "margin_spacings", "flips",
                "positions_compared", "row_length", "input_shape", "expected_shape", "runs"):
        if key in evidence and evidence[key] not in (None, "", []):
            details.append((key.replace("_", " "), str(evidence[key])))
    if isinstance(evidence.get("error"), dict):
        error = evidence["error"]
        details.append(("error", f"{error.get('type', '')}: {error.get('message', '')}"))
        if error.get("stderr"):
            details.append(("stderr", str(error["stderr"])))
    elif evidence.get("error"):
        details.append(("error", str(evidence["error"])))
    if evidence.get("cases"):
        details.append(("cases", ", ".join(map(str, evidence["cases"]))))
    for group in evidence.get("groups", []):
        details.append((f"index {group.get('index')}", ", ".join(group.get("targets", []))))
    if evidence.get("causes"):
        details.append(("causes", ", ".join(evidence["causes"])))
    return details


def _positions(finding):
    positions = finding.get("positions") or []
    shown = ", ".join("(" + ", ".join(map(str, p)) + ")" for p in positions[:5])
    count = finding.get("count") or len(positions)
    more = count - min(5, len(positions))
    return shown + (f" and {more} more" if more > 0 else "") if shown else ""


@dataclass
class Problem:
    """Findings of one kind, check and severity that blame the same targets: one problem seen
    on one or more cases. The first finding stands for the problem; the others are listed."""

    kind: str
    check: str
    severity: str
    allowed: str | None
    blame: list
    findings: list

    @property
    def first(self):
        return self.findings[0]

    @property
    def others(self):
        return self.findings[1:]

    @property
    def state(self):
        return "allowed" if self.allowed else self.severity

    @property
    def filter_targets(self):
        return FILTER_SEP.join(self.blame)


def _finding_view(index, f):
    return FindingView(_anchor(index), f["kind"], f["check"], f["severity"], f["allowed"],
                       f["message"], f.get("case"), list(f["targets"]), _blame(f), _positions(f),
                       _value_rows(f), _details(f), f.get("reproducer"))


def _problems(findings):
    """Return the Problems among `findings` [(index, finding)], worst first, allowed last."""
    problems = {}
    for i, f in findings:
        problem = f["evidence"].get("problem")  # the api check names several problems
        key = (f["check"], f["severity"], f["allowed"], problem, tuple(_blame(f)))
        if key not in problems:
            problems[key] = Problem(f["kind"], f["check"], f["severity"], f["allowed"], _blame(f), [])
        problems[key].findings.append(_finding_view(i, f))
    return sorted(problems.values(), key=lambda p: (
        p.allowed is not None, -severity_rank(p.severity) if p.severity in SEVERITIES else 0,
        CHECK_NAMES.index(p.check) if p.check in CHECK_NAMES else len(CHECK_NAMES)))


def finding_groups(document):
    """Return the findings grouped by kind (fixed order), then into problems, worst first."""
    by_kind = {}
    for i, f in enumerate(document["findings"]):
        by_kind.setdefault(f["kind"], []).append((i, f))
    groups = []
    for kind in [*KINDS, *sorted(set(by_kind) - set(KINDS))]:
        found = by_kind.get(kind, [])
        if not found:
            continue
        severities = {s: sum(1 for _, f in found if f["severity"] == s and not f["allowed"])
                      for s in SEVERITIES[::-1]}
        severities["allowed"] = sum(1 for _, f in found if f["allowed"])
        groups.append(KindGroup(kind, KIND_TEXT.get(kind, ""), severities, _problems(found)))
    return groups


def _call(case):
    dim = "None" if case.get("dim") is None else case["dim"]
    return f"dim={dim}" + (", keepdim=True" if case.get("keepdim") else "") + (
        f", {case['layout']}" if case.get("layout", "contiguous") != "contiguous" else "")


def case_rows(document):
    """Return one CaseRow per case, with the targets and kinds of the findings on it."""
    on_case = {}
    for i, f in enumerate(document["findings"]):
        if f.get("case"):
            on_case.setdefault(f["case"], []).append((i, f))
    rows = []
    for case in document["cases"]:
        found = on_case.get(case["id"], [])
        targets = sorted({t for _, f in found for t in _blame(f)})
        severities = ["allowed" if f["allowed"] else f["severity"] for _, f in found]
        rows.append(CaseRow(case["id"], list(case.get("tags", [])),
                            "×".join(map(str, case.get("shape", []))) or "scalar", _call(case),
                            case.get("note", ""), targets, sorted({f["kind"] for _, f in found}),
                            _worst(severities), [_anchor(i) for i, _ in found]))
    return rows


def allowed_rows(document):
    groups = {}
    for f in document["findings"]:
        if f["allowed"]:
            key = (f["kind"], ", ".join(_blame(f)), f["allowed"])
            groups[key] = groups.get(key, 0) + 1
    return [{"kind": k, "targets": t, "reason": r, "count": n} for (k, t, r), n in groups.items()]


def notes(document):
    metadata = document["metadata"]
    lines = [f"skipped: {s}" for s in metadata.get("skipped", [])]
    lines += [f"policy: {rule} matched no finding" for rule in metadata.get("policy_unused", [])]
    return lines


def _environment():
    return jinja2.Environment(loader=jinja2.PackageLoader("auditor.reports", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def view(document, env=None):
    """Return the Report view model of results `document`."""
    env = env or _environment()
    script = env.loader.get_source(env, "report.js")[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    cases = case_rows(document)
    return Report(
        title=f"argmax audit: {document['summary'].get('verdict', 'incomplete').upper()}",
        version=(document["environment"].get("tool") or {}).get("version", ""),
        verdict=verdict(document), run=run_facts(document), environment=environment(document),
        checks=list(check_names(document)), targets=target_rows(document), user=user_rows(document),
        precision=precision_rows(document),
        chart=margin_chart(document), groups=finding_groups(document), cases=cases,
        tags=sorted({t for c in cases for t in c.tags}), kinds=list(KINDS),
        allowed=allowed_rows(document), notes=notes(document),
        css=Markup(env.loader.get_source(env, "report.css")[0]), script=Markup(script),
        script_hash=f"sha256-{digest}")


def render(document):
    """Return the HTML report of results `document` as one self-contained page."""
    env = _environment()
    return env.get_template("report.html.j2").render(report=view(document, env),
                                                    titles=CHECK_TITLES)
