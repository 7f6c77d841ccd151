"""The HTML report: structure, self-containment, escaping, and a real browser opening it."""
import base64
import copy
import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess

import pytest

from auditor.model import KINDS
from auditor.reports import html as report

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bundles")
HOSTILE = "<script>document.documentElement.setAttribute('data-pwned','1')</script>"
HOSTILE_IMG = "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','2')\">"


def load(name):
    with open(os.path.join(DATA, name, "results.json"), encoding="utf-8") as handle:
        return json.load(handle)


class Page(html.parser.HTMLParser):
    """The parts of a page the tests look at: elements, ids, classes, scripts, text."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.ids, self.scripts, self.text = [], {}, [], []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids[attrs["id"]] = (tag, attrs)
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    def having(self, tag=None, cls=None):
        return [a for t, a in self.tags if (tag is None or t == tag)
                and (cls is None or cls in (a.get("class") or "").split())]


@pytest.fixture(scope="module")
def every_kind():
    document = load("every-kind")
    return document, Page(report.render(document))


def test_clean_bundle_reads_as_a_pass_with_no_findings():
    document = load("clean")
    page = Page(report.render(document))
    banner = page.ids["verdict"][1]
    assert "pass" in banner["class"].split()
    assert "No findings" in "".join(page.text)
    assert not page.having("details", "finding")
    cells = page.having("td", "cell")
    assert cells and all("sev-ok" in c["class"] for c in cells)


def test_every_section_is_there_in_order(every_kind):
    _, page = every_kind
    order = [a["id"] for t, a in page.tags if t == "section"]
    assert order == ["verdict", "environment", "matrix", "policies", "precision", "findings", "cases"]


def test_every_finding_has_an_anchor_and_every_kind_a_group(every_kind):
    document, page = every_kind
    anchors = {i for i in page.ids if re.fullmatch(r"f\d+", i)}
    assert anchors == {f"f{i}" for i in range(len(document["findings"]))}
    kinds = {f["kind"] for f in document["findings"]}
    assert kinds == set(KINDS)  # the bundle holds a finding of every kind
    assert {i.removeprefix("kind-") for i in page.ids if i.startswith("kind-")} == kinds


def test_matrix_cells_take_the_worst_finding_of_their_check(every_kind):
    document, page = every_kind
    rows = {}
    for t, a in page.tags:
        if t == "a" and "filter-link" in (a.get("class") or ""):
            rows[(a["data-target"], a["data-check"])] = a
    worst = {}
    for f in document["findings"]:
        for target in f["evidence"].get("blame") or f["targets"]:
            worst.setdefault((target, f["check"]), set()).add(f["severity"])
    assert set(rows) == set(worst)
    cells = page.having("td", "cell")
    assert len(cells) == len(document["targets"]) * len(report.check_names(document))
    assert "regression" in report.check_names(document)  # the bundle was made against a baseline
    errors = sum(1 for c in cells if "sev-error" in c["class"])
    assert errors == sum(1 for s in worst.values() if "error" in s)


def test_policy_table_names_each_targets_tie_and_nan_policy(every_kind):
    document, page = every_kind
    text = "".join(page.text)
    for row in document["summary"]["targets"]:
        assert row["target"] in text
    assert "ignores-nan" in text and "mixed" in text  # skips_nan and random_tie
    bad = page.having("span", "bad")
    assert len(bad) == sum((r["tie_policy"] not in ("first", "untested"))
                           + (r["nan_policy"] not in ("first", "untested"))
                           for r in document["summary"]["targets"])


def test_precision_section_has_rates_and_a_margin_chart(every_kind):
    document, page = every_kind
    text = "".join(page.text)
    for stats in document["summary"]["precision"].values():
        assert f"{stats['rate']:.2%}" in text
    bars = [a for t, a in page.tags if t == "rect" and a.get("fill")]
    margins = sum(len(f["evidence"]["margins_spacings"]) for f in document["findings"]
                  if f["kind"] == "precision_drift")
    assert bars and f"({margins} flips)" in text


def test_disputed_values_are_highlighted():
    document = load("every-kind")
    finding = next(f for f in document["findings"] if f["check"] == "reference")
    rows = report._value_rows(finding)
    disputed = {c.index for _, cells in rows for c in cells if c.disputed}
    assert disputed == {finding["evidence"]["returned"], finding["evidence"]["expected"]}
    gaps = [c for _, cells in rows for c in cells if c.index is None]
    indices = [i for i, _ in finding["evidence"]["values"]]
    assert len(gaps) == sum(1 for a, b in zip(indices, indices[1:]) if b > a + 1)


def test_reproducers_are_on_the_page_with_a_copy_button(every_kind):
    document, page = every_kind
    reproducers = [f for f in document["findings"] if f.get("reproducer")]
    assert len(page.having("button", "copy")) == len(reproducers)
    assert reproducers[0]["reproducer"].splitlines()[0] in "".join(page.text)


def test_case_browser_lists_every_case_with_filter_data(every_kind):
    document, page = every_kind
    rows = page.having("tr", "case-row")
    assert [r["id"] for r in rows] == [f"case-{c['id']}" for c in document["cases"]]
    nan_rows = next(r for r in rows if r["id"] == "case-nan-rows")
    assert "nan" in nan_rows["data-tags"].split("\n")
    assert "nan_policy" in nan_rows["data-kinds"].split("\n")
    selects = [a["data-filter"] for t, a in page.tags if t == "select"]
    assert selects == ["targets", "check", "severity", "tags", "targets", "kinds"]


def test_page_is_self_contained_and_only_its_own_script_may_run(every_kind):
    _, page = every_kind
    for tag, attrs in page.tags:
        assert tag not in ("link", "iframe", "object", "embed"), tag
        for name in ("src", "href", "action", "data"):
            value = attrs.get(name) or ""
            assert not re.match(r"\s*(https?:|//|javascript:)", value, re.I), (tag, name, value)
    assert len(page.scripts) == 1
    csp = next(a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy")
    digest = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    assert "default-src 'none'" in csp and f"'sha256-{digest}'" in csp


def hostile_document():
    """Return the every-kind document with hostile strings where the outside world writes."""
    document = copy.deepcopy(load("every-kind"))
    old = document["targets"][1]["id"]
    new = old.replace("numpy[", f"numpy[{HOSTILE}")
    text = json.dumps(document).replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    document = json.loads(text)
    document["cases"][0]["tags"].append(HOSTILE_IMG)
    document["cases"][0]["note"] = HOSTILE
    crash = next(f for f in document["findings"] if f["kind"] == "crash")
    crash["evidence"]["error"]["message"] = f"</code></pre>{HOSTILE}{HOSTILE_IMG}"
    crash["message"] = f"it raised {HOSTILE_IMG}"
    document["environment"]["settings"]["XLA_FLAGS"] = HOSTILE
    return document


def test_hostile_strings_are_escaped():
    document = hostile_document()
    text = report.render(document)
    page = Page(text)
    assert len(page.scripts) == 1 and "data-pwned" not in page.scripts[0]
    for tag, attrs in page.tags:
        assert tag != "img"
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    assert HOSTILE not in text and HOSTILE_IMG not in text
    assert "&lt;script&gt;" in text  # shown to the reader as text


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def open_in_browser(path, tmp_path, *extra):
    """Return (stdout, console lines) of headless Chromium opening file `path`."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               "--enable-logging=stderr", "--v=0", "--window-size=1400,3000", *extra,
               f"file://{path}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


needs_chromium = pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed")


@needs_chromium
@pytest.mark.slow
def test_browser_shows_the_report_without_console_errors(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(report.render(load("every-kind")), encoding="utf-8")
    dom, console = open_in_browser(page, tmp_path, "--dump-dom")
    assert console == []
    assert re.search(r'class="shown"[^>]*>\d+ of \d+ entries<', dom)  # the script ran to its end
    shot = tmp_path / "shot.png"
    _, console = open_in_browser(page, tmp_path, f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page is a few KB


@needs_chromium
@pytest.mark.slow
def test_browser_runs_nothing_hostile(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(report.render(hostile_document()), encoding="utf-8")
    dom, console = open_in_browser(page, tmp_path, "--dump-dom")
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    assert "data-pwned" not in html_tag
    assert console == []
