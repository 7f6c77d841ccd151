"""The terminal summary: one row per target, then the most important findings in a sentence each.

Every string of the document may come from elsewhere (a bundle from another machine, an exception
message, a file name), and a terminal obeys what it is sent: escape sequences can set the window
title, hide a link, clear the screen. `plain` shows each control character (C0, DEL, C1, and the
bidirectional overrides that reorder text) as a visible escape, and `render` passes every string
of the document through it before one is interpolated; the colours are added afterwards.
"""
import re

import click

from auditor.model import KINDS, severity_rank

SHORT = {"nondeterministic": "nondet", "wrong_index": "wrong", "tie_break": "tie",
         "nan_policy": "nan", "precision_drift": "drift", "api_mismatch": "api",
         "crash": "crash", "regression": "regr"}
COLOURS = {"error": "red", "warning": "yellow", "info": "blue"}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                      "\u2028\u2029]")


def plain(text):
    """Return `text` with every control character shown as a visible escape (ESC as \\x1b)."""
    def visible(match):
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return _CONTROL.sub(visible, str(text))


def _neutral(value):
    """Return `value` (a document or part of one) with `plain` applied to every string in it,
    keys included."""
    if isinstance(value, str):
        return plain(value)
    if isinstance(value, dict):
        return {_neutral(k): _neutral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_neutral(v) for v in value]
    return value


def _table(rows):
    kinds = list(KINDS)
    header = ["target", "cases", "calls", *[SHORT[k] for k in kinds], "ties", "NaN"]
    body = [[r["target"], str(r["cases"]), str(r["calls"]),
             *[str(r["findings"].get(k, 0) or "·") for k in kinds],
             r["tie_policy"], r["nan_policy"]] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    def fmt(line):
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths)))
    return [fmt(header), *[fmt(line) for line in body]]


def _grouped(findings):
    """Return [(first finding, other cases)] for not-allowed findings, worst first.

    Findings of one kind and severity that blame the same targets are one problem seen on several
    cases; the summary shows the first and names the rest.
    """
    groups = {}
    for f in findings:
        if f["allowed"]:
            continue
        blame = tuple(f["evidence"].get("blame") or f["targets"])
        problem = f["evidence"].get("problem")  # the api check's findings name several problems
        groups.setdefault((f["severity"], f["kind"], f["check"], problem, blame), []).append(f)
    ranked = sorted(groups.items(), key=lambda item: (-severity_rank(item[0][0]),
                                                      list(KINDS).index(item[0][1])))
    return [(found[0], [f["case"] for f in found[1:] if f["case"]]) for _, found in ranked]


def _header(environment):
    """Return one line naming the frameworks, their builds and the devices audited."""
    parts, devices = [f"Python {environment.get('python', '?')}"], {}
    for name, info in environment.get("frameworks", {}).items():
        build = info.get("build", {})
        extra = [f"CUDA {build['cuda']}"] if build.get("cuda") else []
        extra += [f"jaxlib {build['jaxlib']}"] if build.get("jaxlib") else []
        parts.append(f"{name} {info['version']}" + (f" ({', '.join(extra)})" if extra else ""))
        for device in info.get("devices", []):
            devices.setdefault(device["id"], device.get("name", ""))
    for label, env in (environment.get("envs") or {}).items():
        versions = ", ".join(f"{name} {info.get('version', '?')}"
                             for name, info in (env.get("frameworks") or {}).items())
        for info in (env.get("frameworks") or {}).values():
            for device in info.get("devices", []):
                devices.setdefault(device["id"], device.get("name", ""))
        parts.append(f"@{label}: Python {env.get('python', '?')}" + (f", {versions}" if versions else ""))
    driver = environment.get("nvidia_driver")
    listed = ", ".join(f"{d} ({n})" if n else d for d, n in devices.items())
    return " · ".join(parts) + f" · devices: {listed}" + (f" · NVIDIA driver {driver}" if driver else "")


def _allowed_groups(findings):
    groups = {}
    for f in findings:
        key = (f["kind"], ", ".join(f["evidence"].get("blame") or f["targets"]), f["allowed"])
        groups[key] = groups.get(key, 0) + 1
    return groups


def _rate(part, whole):
    return f"{part} / {whole} ({part / whole:.2%})" if whole else "0 / 0"


def _user_lines(user):
    """Return the lines that lead the summary when the run had the user's own cases."""
    if not user:
        return []
    lines = ["your data: predictions (rows of --input) that differ from the reference "
             "(first maximum, first NaN)" + (" and from the baseline" if any(
                 "vs_baseline" in r for r in user.values()) else "") + ":"]
    for target, row in user.items():
        line = f"  {target}: {_rate(row['vs_reference'], row['rows'])} from the reference"
        if "vs_baseline" in row:
            line += f"; {_rate(row['vs_baseline'], row['rows_compared'])} from the baseline"
        lines.append(line)
    return [*lines, ""]


def _compile_lines(timing):
    """Return the line that keeps compilation (a compiling variant's first call of each
    signature) apart from the calls."""
    if not timing.get("compiles"):
        return []
    return ["", f"compiling: {timing['compile_s']:.1f} s for {timing['compiles']} signatures "
                f"(the first call of each, through its compiling variant); the argmax calls "
                f"took {timing['call_s']:.1f} s ({timing['calls']} calls)"]


def _plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


#: The parts of a results document the summary shows (observations and cases stay unread).
SHOWN = ("summary", "environment", "findings", "metadata")


def render(document, limit=10, color=False):
    """Return the summary text for results `document`, its strings neutralised by `plain`."""
    document = {key: _neutral(document[key]) for key in SHOWN if key in document}
    summary = document["summary"]
    style = (lambda text, **kw: click.style(text, **kw)) if color else (lambda text, **kw: text)
    lines = [_header(document["environment"]), "", *_user_lines(summary.get("user") or {}),
             *_table(summary["targets"])]
    precision = summary.get("precision", {})
    if precision:
        lines.append("")
        lines.append("precision drift against float32 (flipped positions / compared):")
        for target, stats in precision.items():
            lines.append(f"  {target}: {stats['flips']} / {stats['positions']} ({stats['rate']:.2%})")
    lines += _compile_lines(summary.get("timing") or {})
    groups = _grouped(document["findings"])
    if groups:
        total = sum(1 + len(more) for _, more in groups)
        lines.append("")
        lines.append(f"findings ({total}, most important first):")
        for f, more in groups[:limit]:
            tag = style(f"{f['severity']:<7}", fg=COLOURS.get(f["severity"]), bold=True)
            lines.append(f"  {tag} {f['kind']}: {f['message']}")
            if more:
                names = ", ".join(more[:5]) + (f" and {len(more) - 5} more" if len(more) > 5 else "")
                lines.append(f"          the same on {len(more)} more case{'s' if len(more) > 1 else ''}: {names}")
        if len(groups) > limit:
            rest = sum(1 + len(more) for _, more in groups[limit:])
            lines.append(f"  ... and {rest} more in results.json")
    allowed = [f for f in document["findings"] if f["allowed"]]
    if allowed:
        lines.append("")
        lines.append(f"allowed by the policy ({document['metadata'].get('policy', 'policy')}):")
        for (kind, blame, reason), count in _allowed_groups(allowed).items():
            lines.append(f"  {kind} on {blame} ({count} finding{'s' if count > 1 else ''}): {reason}")
    for rule in document["metadata"].get("policy_unused", []):
        lines.append(f"policy: {rule} matched no finding")
    base = document["metadata"].get("baseline")
    if base:
        versions = ", ".join(f"{k} {v}" for k, v in (base.get("frameworks") or {}).items())
        lines.append("")
        lines.append(f"baseline: {base.get('path')} (made {base.get('created') or '?'} on "
                     f"{base.get('host') or '?'} with {versions or 'no framework'})")
    notes = document["environment"].get("unavailable", {})
    skipped = document["metadata"].get("skipped", [])
    if notes or skipped:
        lines.append("")
        lines += [f"not audited: {fw}: {why}" for fw, why in notes.items()]
        lines += [f"skipped: {s}" for s in skipped]
    if not (summary.get("complete", True) and document["metadata"].get("complete", True)):
        lines.append("")
        lines.append(style("INCOMPLETE", fg="yellow", bold=True) + ": the run did not finish "
                     "(interrupted or killed); what follows covers only what was measured")
        if document["metadata"].get("recovered"):
            lines.append(f"recovered: {document['metadata']['recovered']}")
    counts = summary["by_severity"]
    verdict = summary["verdict"].upper()
    lines.append("")
    lines.append(style(verdict, fg="red" if verdict == "FAIL" else "green", bold=True)
                 + f": {_plural(counts['error'], 'error')}, {_plural(counts['warning'], 'warning')}, "
                 f"{counts['info']} info"
                 + (f", {summary['allowed']} allowed by policy" if summary["allowed"] else "")
                 + f" (failing at --fail-on {summary['fail_on']})")
    return "\n".join(lines)
