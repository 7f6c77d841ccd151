"""The terminal summary: one row per target, then the most important findings in a sentence each."""
import click

from auditor.model import KINDS, severity_rank

SHORT = {"nondeterministic": "nondet", "wrong_index": "wrong", "tie_break": "tie",
         "nan_policy": "nan", "precision_drift": "drift", "api_mismatch": "api",
         "crash": "crash", "regression": "regr"}
COLOURS = {"error": "red", "warning": "yellow", "info": "blue"}


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


def _ranked(findings):
    return sorted((f for f in findings if not f["allowed"]),
                  key=lambda f: (-severity_rank(f["severity"]), list(KINDS).index(f["kind"])))


def render(document, limit=10, color=False):
    """Return the summary text for results `document`."""
    summary = document["summary"]
    style = (lambda text, **kw: click.style(text, **kw)) if color else (lambda text, **kw: text)
    lines = _table(summary["targets"])
    precision = summary.get("precision", {})
    if precision:
        lines.append("")
        lines.append("precision drift against float32 (flipped positions / compared):")
        for target, stats in precision.items():
            lines.append(f"  {target}: {stats['flips']} / {stats['positions']} ({stats['rate']:.2%})")
    findings = _ranked(document["findings"])
    if findings:
        lines.append("")
        lines.append(f"findings ({len(findings)}, most important first):")
        for f in findings[:limit]:
            tag = style(f"{f['severity']:<7}", fg=COLOURS.get(f["severity"]), bold=True)
            lines.append(f"  {tag} {f['kind']}: {f['message']}")
        if len(findings) > limit:
            lines.append(f"  ... and {len(findings) - limit} more in results.json")
    notes = document["environment"].get("unavailable", {})
    skipped = document["metadata"].get("skipped", [])
    if notes or skipped:
        lines.append("")
        lines += [f"not audited: {fw}: {why}" for fw, why in notes.items()]
        lines += [f"skipped: {s}" for s in skipped]
    counts = summary["by_severity"]
    verdict = summary["verdict"].upper()
    lines.append("")
    lines.append(style(verdict, fg="red" if verdict == "FAIL" else "green", bold=True)
                 + f": {counts['error']} errors, {counts['warning']} warnings"
                 + (f", {summary['allowed']} allowed by policy" if summary["allowed"] else "")
                 + f" (failing at --fail-on {summary['fail_on']})")
    return "\n".join(lines)
