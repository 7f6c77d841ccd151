"""The bench report: a view model built from a bench document, rendered by one Jinja2 template.

One self-contained page: CSS inline, charts as inline SVG, no script, nothing fetched. Per target
a log-log chart of median time against bytes read, one line per dim, beside the time the device's
peak bandwidth would take (the closer a line runs to it, the nearer argmax is to the hardware's
limit); then every row with its spread and a bar of its share of the peak. Every string from the
document is escaped by autoescape; the view model hands the template numbers and plain text.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import jinja2

from .bench_text import dim_text, ms, notes, peak_lines, shape_text

PALETTE = ("#3d7dd8", "#d8893d", "#2f9e6e", "#6a4fb3", "#c8372d", "#7a8699")


@dataclass
class Series:
    label: str
    colour: str
    points: list  # [(x, y, title)]

    @property
    def path(self):
        return " ".join(f"{x},{y}" for x, y, _ in self.points)


@dataclass
class Chart:
    target: str
    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    x_ticks: list  # [(x, label)]
    y_ticks: list  # [(y, label)]
    series: list
    peak: str | None  # the polyline of bytes / peak
    peak_title: str


@dataclass
class Row:
    target: str
    shape: str
    dim: str
    median: str
    iqr: str
    minimum: str
    samples: int
    loops: int
    gbps: str
    share: str
    bar: float  # 0..100, the share of the peak (capped)
    over: bool  # above the peak: the input sits in a cache


@dataclass
class PairRow:
    target: str
    shape: str
    dim: str
    old: str
    new: str
    ratio: str
    verdict: str
    error: str


@dataclass
class Report:
    title: str
    facts: list
    peaks: list
    notes: list
    charts: list
    rows: list
    comparison: dict | None = None
    pairs: list = field(default_factory=list)
    comparison_notes: list = field(default_factory=list)


def _log_scale(low, high, size, flip=False):
    lo, hi = math.log10(low), math.log10(high)
    span = hi - lo or 1.0

    def place(value):
        share = (math.log10(value) - lo) / span
        return round(size * (1 - share) if flip else size * share, 1)
    return place


def _decades(low, high):
    return [10.0**k for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            if low <= 10.0**k <= high]


def _bytes_label(value):
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:g} {unit}"
    return f"{value:g} B"


def _time_label(value):
    for unit, size in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= size:
            return f"{value / size:g} {unit}"
    return f"{value * 1e9:g} ns"


def chart(target, results, peak_gbps, width=520, height=300):
    """Return the Chart of one target's `results`: median seconds against bytes, log-log."""
    left, top, right, bottom = 64, 14, 14, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [r["bytes"] for r in results]
    ys = [r["median_s"] for r in results]
    if peak_gbps:
        ys += [b / (peak_gbps * 1e9) for b in xs]
    x_lo, x_hi = min(xs) / 2, max(xs) * 2
    y_lo, y_hi = min(ys) / 2, max(ys) * 2
    place_x = _log_scale(x_lo, x_hi, plot_w)
    place_y = _log_scale(y_lo, y_hi, plot_h, flip=True)
    series = []
    for i, dim in enumerate(dict.fromkeys(dim_text(r["dim"]) for r in results)):
        chosen = sorted((r for r in results if dim_text(r["dim"]) == dim), key=lambda r: r["bytes"])
        series.append(Series(f"dim {dim}", PALETTE[i % len(PALETTE)], [
            (place_x(r["bytes"]), place_y(r["median_s"]),
             f"{shape_text(r['shape'])} dim {dim}: {ms(r['median_s'])} ms, "
             f"{_bytes_label(r['bytes'])}") for r in chosen]))
    peak = None
    if peak_gbps:
        ends = sorted({min(xs), max(xs)})
        peak = " ".join(f"{place_x(b)},{place_y(b / (peak_gbps * 1e9))}" for b in ends)
    return Chart(target, width, height, left, top, plot_w, plot_h,
                 [(place_x(v), _bytes_label(v)) for v in _decades(x_lo, x_hi)],
                 [(place_y(v), _time_label(v)) for v in _decades(y_lo, y_hi)], series, peak,
                 f"reading the input at the peak, {peak_gbps:.3g} GB/s" if peak_gbps else "")


def row(result):
    share = result.get("peak_fraction")
    return Row(result["target"], shape_text(result["shape"]), dim_text(result["dim"]),
               ms(result["median_s"]), ms(result["iqr_s"]), ms(result["min_s"]),
               result["samples"], result["loops"],
               f"{result['gbps']:.3g}" if result.get("gbps") is not None else "?",
               f"{share:.0%}" if share is not None else "?",
               round(min(share, 1.0) * 100, 1) if share is not None else 0.0,
               bool(share and share > 1))


def pair_row(pair):
    return PairRow(pair["target"], shape_text(pair["shape"]), dim_text(pair["dim"]),
                   ms(pair["old_median_s"]),
                   ms(pair["new_median_s"]) if pair["new_median_s"] is not None else "-",
                   f"{pair['ratio']:.2f}" if pair["ratio"] is not None else "-",
                   pair["verdict"], pair.get("error", ""))


def facts(document):
    environment, run = document["environment"], document.get("run") or {}
    frameworks = ", ".join(f"{name} {info.get('version', '?')}" for name, info in
                           (environment.get("frameworks") or {}).items())
    found = [("host", environment.get("host")), ("CPU", environment.get("cpu")),
             ("CPUs", environment.get("cpu_count")), ("Python", environment.get("python")),
             ("frameworks", frameworks), ("created", run.get("created")),
             ("command", " ".join(run.get("command") or [])),
             ("samples", f"{run.get('samples')} per process in {run.get('processes')} "
                         "process(es)" if run.get("samples") else None)]
    return [(label, str(value)) for label, value in found if value not in (None, "")]


def view(document):
    """Return the Report view model of bench `document`."""
    run = document.get("run") or {}
    peaks = document["environment"].get("peaks") or {}
    by_target = {}
    for result in document["results"]:
        by_target.setdefault(result["target"], []).append(result)
    charts = []
    for target, results in by_target.items():
        device = ((run.get("targets") or {}).get(target) or {}).get("device")
        charts.append(chart(target, results, (peaks.get(device) or {}).get("gbps")))
    comparison = run.get("comparison")
    complete = "" if run.get("complete", True) else " (incomplete)"
    return Report(f"argmax bench{complete}", facts(document), peak_lines(document),
                  notes(document), charts, [row(r) for r in document["results"]],
                  comparison, [pair_row(p) for p in (comparison or {}).get("pairs", [])],
                  list((comparison or {}).get("notes") or []))


def _environment():
    return jinja2.Environment(loader=jinja2.PackageLoader("auditor.reports", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def render(document):
    """Return the HTML report of bench `document` as one self-contained page."""
    return _environment().get_template("bench.html.j2").render(report=view(document))
