"""The Markdown summary for a CI job page ($GITHUB_STEP_SUMMARY): verdict, targets, top findings.

GitHub renders some HTML inside Markdown, and target ids, messages and case ids come from outside
the tool (user file paths, exception messages, bundles from other machines). Every such string
goes through `text`, which makes it one line of literal text: `&<>` as entities, Markdown's
markup characters (table pipes included) escaped with a backslash.
"""
import re

from auditor.model import KINDS
from auditor.reports.terminal import SHORT, _allowed_groups, _grouped, _header

_MARKUP = re.compile(r"([\\`*_\[\]|~])")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BREAKS = re.compile("[\t\n\r\u2028\u2029]+")


def text(value):
    """Return `value` as one line of Markdown that renders literally (no HTML, no markup)."""
    value = _BREAKS.sub(" ", str(value))
    value = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", value)
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKUP.sub(r"\\\1", value)


def _row(cells):
    return "| " + " | ".join(cells) + " |"


def _plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


def _verdict(summary):
    """Return the heading and the verdict line: PASS or FAIL with counts by severity."""
    counts = summary.get("by_severity", {})
    verdict = text(str(summary.get("verdict") or "incomplete").upper())
    line = (f"**{verdict}**: {text(_plural(counts.get('error', 0), 'error'))}, "
            f"{text(_plural(counts.get('warning', 0), 'warning'))}, "
            f"{text(counts.get('info', 0))} info")
    if summary.get("allowed"):
        line += f", {text(summary['allowed'])} allowed by policy"
    line += f" (failing at --fail-on {text(summary.get('fail_on', 'error'))})"
    return [f"## argmax-audit: {verdict}", "", line]


def _targets(rows):
    """Return the per-target table: findings by kind, tie policy and NaN policy."""
    kinds = list(KINDS)
    header = ["target", "cases", "calls", *[SHORT[k] for k in kinds], "ties", "NaN"]
    lines = ["### Targets", "", _row(header),
             _row(["---", *["---:"] * (len(header) - 3), "---", "---"])]
    for r in rows:
        cells = [r["target"], r["cases"], r["calls"],
                 *[r["findings"].get(k, 0) or "·" for k in kinds], r["tie_policy"], r["nan_policy"]]
        lines.append(_row([text(cell) for cell in cells]))
    legend = ", ".join(f"{SHORT[k]} = {k}" for k in kinds)
    return [*lines, "", text(f"Columns: {legend}; findings of severity info are not counted.")]


def _precision(precision):
    lines = ["### Precision drift against float32", "",
             _row(["target", "compared with", "flipped", "positions", "rate"]),
             _row(["---", "---", "---:", "---:", "---:"])]
    for target, stats in precision.items():
        rate = stats.get("rate")
        cells = [target, stats.get("float32_target", ""), stats.get("flips"),
                 stats.get("positions"), f"{rate:.2%}" if isinstance(rate, float) else rate]
        lines.append(_row([text(cell) for cell in cells]))
    return lines


def _finding(number, finding, more):
    line = (f"{number}. **{text(finding['severity'])}** {text(finding['kind'])}: "
            f"{text(finding['message'])}")
    if more:
        names = ", ".join(more[:5]) + (f" and {len(more) - 5} more" if len(more) > 5 else "")
        line += " " + text(f"(the same on {_plural(len(more), 'more case')}: {names})")
    return line


def _findings(findings, limit):
    groups = _grouped(findings)
    total = sum(1 + len(more) for _, more in groups)
    lines = [f"### Findings ({text(total)}, most important first)", ""]
    lines += [_finding(i + 1, f, more) for i, (f, more) in enumerate(groups[:limit])]
    if len(groups) > limit:
        rest = sum(1 + len(more) for _, more in groups[limit:])
        lines += ["", f"... and {text(rest)} more in results.json"]
    return lines


def _allowed(findings, policy):
    lines = [f"### Allowed by the policy ({text(policy)})", ""]
    for (kind, blame, reason), count in _allowed_groups(findings).items():
        lines.append(f"- {text(kind)} on {text(blame)} ({text(_plural(count, 'finding'))}): "
                     f"{text(reason)}")
    return lines


def _not_audited(document):
    notes = document.get("environment", {}).get("unavailable", {})
    lines = [f"- not audited: {text(fw)}: {text(why)}" for fw, why in notes.items()]
    skipped = document.get("metadata", {}).get("skipped", [])
    lines += [f"- skipped: {text(entry)}" for entry in skipped]
    lines += [f"- {text(fw)} did not start: {text(why)}"
              for fw, why in (document.get("startup_errors") or {}).items()]
    return lines


def _share(part, whole):
    return f"{part} / {whole} ({part / whole:.2%})" if whole else "–"


def _user(user):
    """Return the table of predictions on the user's data that differ (reference, baseline)."""
    lines = ["### Your data: predictions that differ", "",
             "| target | rows | from the reference | from the baseline |",
             "| --- | ---: | ---: | ---: |"]
    for target, row in user.items():
        base = _share(row["vs_baseline"], row["rows_compared"]) if "vs_baseline" in row else "–"
        lines.append(_row([text(target), text(row["rows"]),
                           text(_share(row["vs_reference"], row["rows"])), text(base)]))
    return lines


def _sections(document, limit):
    summary, findings = document.get("summary", {}), document.get("findings", [])
    metadata = document.get("metadata", {})
    yield _verdict(summary)
    if not (summary.get("complete", True) and metadata.get("complete", True)):
        yield ["**The run did not finish**: the results cover only what was measured before it "
               "stopped." + (f" {text(metadata['recovered'])}" if metadata.get("recovered") else "")]
    if document.get("environment", {}).get("frameworks"):
        yield [text(_header(document["environment"]))]
    if summary.get("user"):
        yield _user(summary["user"])
    if summary.get("targets"):
        yield _targets(summary["targets"])
    if summary.get("precision"):
        yield _precision(summary["precision"])
    timing = summary.get("timing") or {}
    if timing.get("compiles"):
        yield [text(f"Compiling (the compiling variants' first call per signature): {timing.get('compile_s') or 0:.1f} s "
                    f"for {timing['compiles']} signatures, apart from the "
                    f"{timing.get('calls', 0)} calls ({timing.get('call_s') or 0:.2f} s).")]
    if any(not f["allowed"] for f in findings):
        yield _findings(findings, limit)
    if any(f["allowed"] for f in findings):
        yield _allowed([f for f in findings if f["allowed"]], metadata.get("policy", "policy"))
    notes = _not_audited(document)
    if notes:
        yield notes


def render(document, report=None, limit=10):
    """Return the Markdown summary of results `document`, pointing at HTML `report` if given."""
    sections = list(_sections(document, limit))
    if report:
        sections.append([f"Full report: {text(report)}"])
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"
