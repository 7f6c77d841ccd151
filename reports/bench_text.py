"""The bench document as text: the terminal table in the article's layout, the Markdown summary,
and a comparison's table. Reads only the bench document (auditor/benchfile.py)."""
from auditor.files import printable
from auditor.reports.markdown import text as markdown_text

GROUP_ORDER = ("failed", "slower", "noisy", "faster", "same")


def shape_text(shape):
    return "x".join(str(size) for size in shape)


def dim_text(dim):
    return "None" if dim is None else str(dim)


def ms(seconds):
    """Return `seconds` as milliseconds with 4 significant digits (0.0021, 1.232, 22.1)."""
    return f"{seconds * 1e3:.4g}"


def rate(result):
    """Return 'GB/s %' of `result`: '3.24 20%' ('3.24 ?' where no peak was measured)."""
    if result.get("gbps") is None:
        return "?"
    share = result.get("peak_fraction")
    return f"{result['gbps']:.3g} " + (f"{share:.0%}" if share is not None else "?")


def table(document):
    """Return [(target, dim, {shape text: result})] rows and the shape texts, in run order."""
    run = document.get("run") or {}
    shapes = [shape_text(s) for s in run.get("shapes") or []]
    rows = {}
    for result in document["results"]:
        label = shape_text(result["shape"])
        if label not in shapes:
            shapes.append(label)
        rows.setdefault((result["target"], dim_text(result["dim"])), {})[label] = result
    return [(target, dim, cells) for (target, dim), cells in rows.items()], shapes


def peak_lines(document):
    lines = []
    for device, peak in (document["environment"].get("peaks") or {}).items():
        by = peak.get("by") or {}
        best = max(by.items(), key=lambda item: item[1]["gbps"], default=None)
        if best and peak.get("gbps") is not None:
            others = ", ".join(f"{label} {p['gbps']:.3g}" for label, p in by.items())
            lines.append(f"peak on {printable(device)}: {peak['gbps']:.3g} GB/s "
                         f"({printable(best[1]['kernel'])}; {printable(others)})")
    return lines


def render(document, comparison=None):
    """Return the terminal text of bench `document` (and of `comparison`, where given)."""
    rows, shapes = table(document)
    out = ["argmax median ms per call; below it GB/s read and % of the device's peak"]
    out += peak_lines(document)
    width = max([len(printable(t)) for t, _, _ in rows] + [6])
    columns = [max(len(s), 9) for s in shapes]
    out.append(f"{'target':{width}}  {'dim':>4}  " + "  ".join(
        f"{s:>{w}}" for s, w in zip(shapes, columns)))
    last = None
    for target, dim, cells in rows:
        name = printable(target) if target != last else ""
        last = target
        out.append(f"{name:{width}}  {dim:>4}  " + "  ".join(
            f"{ms(cells[s]['median_s']) if s in cells else '-':>{w}}"
            for s, w in zip(shapes, columns)))
        out.append(f"{'':{width}}  {'':>4}  " + "  ".join(
            f"{rate(cells[s]) if s in cells else '':>{w}}" for s, w in zip(shapes, columns)))
    out += notes(document)
    if comparison is not None:
        out += [""] + render_comparison(comparison)
    return "\n".join(out)


def spread_line(document):
    """Say how wide the samples' spread is: rows with an IQR under 5% of the median, the widest."""
    results = document["results"]
    if not results:
        return None
    relative = [(r["iqr_s"] / r["median_s"], r) for r in results]
    tight = sum(share < 0.05 for share, _ in relative)
    share, widest = max(relative, key=lambda item: item[0])
    return (f"spread: IQR under 5% of the median in {tight} of {len(results)} rows; widest "
            f"{printable(widest['target'])} {shape_text(widest['shape'])} dim "
            f"{dim_text(widest['dim'])} ({share:.0%}); min/median/IQR per row in the JSON")


def notes(document):
    run, environment = document.get("run") or {}, document["environment"]
    lines = [line for line in [spread_line(document)] if line]
    overhead = environment.get("loop_overhead_s") or {}
    if overhead:
        lines.append("timing loop overhead per call: " + ", ".join(
            f"{printable(label)} {seconds * 1e6:.2f} us" for label, seconds in overhead.items()))
    load = environment.get("load_average") or {}
    if load.get("start"):
        lines.append(f"load average: {' '.join(map(str, load['start']))} at the start, "
                     f"{' '.join(map(str, load.get('end') or []))} at the end "
                     f"({environment.get('cpu_count')} CPUs)")
    for first in run.get("first_call_s") or []:
        variant = ((run.get("targets") or {}).get(first["target"]) or {}).get("variant", "")
        if any(word in variant for word in ("compile", "jit")) and first.get("seconds"):
            lines.append(f"first call (compiles): {printable(first['target'])} "
                         f"{shape_text(first['shape'])} dim {dim_text(first['dim'])}: "
                         f"{max(first['seconds']):.3g} s")
    for failure in run.get("failures") or []:
        error = failure["errors"][0] if failure["errors"] else {}
        lines.append(f"failed: {printable(failure['target'])} {shape_text(failure['shape'])} "
                     f"dim {dim_text(failure['dim'])}: {printable(error.get('type', ''))}: "
                     f"{printable(error.get('message', ''))[:300]}")
    lines += [f"skipped: {printable(text)}" for text in run.get("skipped") or []]
    if run.get("complete") is False:
        lines.append("incomplete: the run was interrupted; the table holds what was measured")
    return lines


def render_comparison(comparison):
    """Return the lines of a comparison: each pair's medians, ratio and verdict, worst first."""
    pairs = comparison["pairs"]
    out = [f"against the baseline (threshold {comparison['threshold']:.0%}, beyond the "
           f"samples' spread): " + ", ".join(f"{n} {word}" for word, n in
                                             comparison["counts"].items() if n)]
    if not pairs:
        return out + ["no target, shape and dim of the baseline was measured again"]
    width = max(len(printable(p["target"])) for p in pairs)
    out.append(f"{'target':{width}}  {'shape':>11}  {'dim':>4}  {'old ms':>9}  {'new ms':>9}  "
               f"{'ratio':>6}  verdict")
    for p in pairs:
        new = ms(p["new_median_s"]) if p["new_median_s"] is not None else "-"
        ratio = f"{p['ratio']:.2f}" if p["ratio"] is not None else "-"
        out.append(f"{printable(p['target']):{width}}  {shape_text(p['shape']):>11}  "
                   f"{dim_text(p['dim']):>4}  {ms(p['old_median_s']):>9}  {new:>9}  "
                   f"{ratio:>6}  {p['verdict']}"
                   + (f" ({printable(p['error'])[:200]})" if p.get("error") else ""))
    for key, words in (("only_old", "only in the baseline"), ("only_new", "new, no baseline")):
        if comparison[key]:
            out.append(f"{words}: " + ", ".join(
                f"{printable(r['target'])} {shape_text(r['shape'])} dim {dim_text(r['dim'])}"
                for r in comparison[key][:8]) + (" ..." if len(comparison[key]) > 8 else ""))
    out += [f"note: {printable(note)}" for note in comparison.get("notes") or []]
    out.append("FAIL: slower than allowed" if comparison["verdict"] == "fail" else
               "PASS: nothing slower than allowed")
    return out


# --- Markdown ------------------------------------------------------------------------------------


def _md(value):
    """Return `value` as one line of literal Markdown for a table cell (as the run's summary
    does: `&<>` as entities, markup characters and table pipes escaped)."""
    return markdown_text(printable(value))


def markdown(document, comparison=None):
    """Return the Markdown summary of bench `document` (for a CI step summary)."""
    rows, shapes = table(document)
    out = ["## argmax bench", "",
           "Median ms per call (GB/s read, % of the device's peak).", ""]
    out += [f"- {_md(line)}" for line in peak_lines(document)]
    out += ["", "| target | dim | " + " | ".join(_md(s) for s in shapes) + " |",
            "|---|---:|" + "---:|" * len(shapes)]
    for target, dim, cells in rows:
        out.append(f"| {_md(target)} | {_md(dim)} | " + " | ".join(
            f"{ms(cells[s]['median_s'])} ({_md(rate(cells[s]))})" if s in cells else "-"
            for s in shapes) + " |")
    out += [""] + [f"- {_md(line)}" for line in notes(document)]
    if comparison is not None:
        out += ["", f"### Against the baseline: {comparison['verdict'].upper()}", "",
                "| target | shape | dim | old ms | new ms | ratio | verdict |",
                "|---|---|---:|---:|---:|---:|---|"]
        for p in comparison["pairs"]:
            out.append(f"| {_md(p['target'])} | {shape_text(p['shape'])} | {_md(dim_text(p['dim']))} "
                       f"| {ms(p['old_median_s'])} | "
                       f"{ms(p['new_median_s']) if p['new_median_s'] is not None else '-'} | "
                       f"{p['ratio']:.2f} | {p['verdict']} |" if p["ratio"] is not None else
                       f"| {_md(p['target'])} | {shape_text(p['shape'])} | {_md(dim_text(p['dim']))} "
                       f"| {ms(p['old_median_s'])} | - | - | {p['verdict']} |")
    return "\n".join(out) + "\n"
