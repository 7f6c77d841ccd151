"""The Markdown job summary: verdict, target table, top findings; nothing from outside breaks it."""
import copy
import json
import os

from auditor.reports import markdown

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
HOSTILE = "<script>alert(1)</script> ]]> \x00\x1b | `x` *y* _u_ [z](w) ~~s~~ \\| &amp;\nnext"


def _load(name):
    with open(os.path.join(DATA, "bundles", name, "results.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _unescaped(line, char):
    """Count `char` in `line` where no backslash escapes it."""
    count, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        count += line[i] == char
        i += 1
    return count


def _tables(text):
    """Return the tables of `text`, each a list of its lines."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _assert_tables_whole(text):
    tables = _tables(text)
    assert tables
    for table in tables:
        assert len({_unescaped(line, "|") for line in table}) == 1, table
        assert all(line.endswith(" |") and not line.endswith("\\|") for line in table)


def test_clean_bundle_passes():
    text = markdown.render(_load("clean"))
    assert text.startswith("## argmax-audit: PASS\n")
    assert "**PASS**: 0 errors, 0 warnings, 0 info (failing at --fail-on error)" in text
    assert "### Findings" not in text and "Full report" not in text
    _assert_tables_whole(text)


def test_every_kind_verdict_table_precision_and_top_findings():
    document = _load("every-kind")
    counts = document["summary"]["by_severity"]
    text = markdown.render(document, report="audit-results/report.html")
    assert f"**FAIL**: {counts['error']} errors, {counts['warning']} warnings" in text
    rows = _tables(text)[0]
    assert len(rows) == 2 + len(document["summary"]["targets"])
    assert rows[0].startswith("| target | cases | calls | nondet |")
    assert "| numpy\\[faulty.py:random\\_tie\\]/cpu/float32 | 18 |" in text
    assert len(_tables(text)[1]) == 2 + len(document["summary"]["precision"])
    listed = [line for line in text.splitlines() if line[:1].isdigit() and ". **" in line]
    assert 1 <= len(listed) <= 10 and listed[0].startswith("1. **error** ")
    assert text.rstrip().endswith("Full report: audit-results/report.html")
    _assert_tables_whole(text)


def test_allowed_findings_and_not_audited_are_listed():
    document = copy.deepcopy(_load("every-kind"))
    for f in document["findings"]:
        if f["kind"] == "api_mismatch":
            f["allowed"] = "int32 indices are fine for us"
    document["environment"]["unavailable"] = {"jax": "not installed"}
    text = markdown.render(document)
    assert "### Allowed by the policy (defaults)" in text
    assert "- api\\_mismatch on numpy\\[faulty.py:returns\\_int32\\]/cpu/float32 (1 finding): " \
           "int32 indices are fine for us" in text
    assert "- not audited: jax: not installed" in text


def test_an_incomplete_run_says_so():
    document = {"summary": {"complete": False}, "metadata": {"complete": False},
                "environment": {}, "findings": []}
    text = markdown.render(document)
    assert text.startswith("## argmax-audit: INCOMPLETE")
    assert "**The run did not finish**" in text


def test_hostile_strings_cannot_break_tables_or_inject_html():
    document = copy.deepcopy(_load("every-kind"))
    victim = document["summary"]["targets"][2]["target"]
    text = json.dumps(document).replace(json.dumps(victim)[1:-1], json.dumps(HOSTILE)[1:-1])
    document = json.loads(text.replace("ties-short", json.dumps(HOSTILE)[1:-1]))
    document["findings"][0]["message"] = HOSTILE
    text = markdown.render(document, report=f"out/{HOSTILE}.html")
    assert "<script" not in text.lower() and "<" not in text and ">" not in text
    assert "\x00" not in text and "\x1b" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&amp;amp;" in text
    assert _unescaped(text, "`") == 0 and _unescaped(text, "[") == 0
    assert not any(line.startswith("next") for line in text.splitlines())
    _assert_tables_whole(text)


def test_text_escapes_markup_and_html():
    assert markdown.text("a|b`c*d_e[f]g\\h<i>&~") == (
        "a\\|b\\`c\\*d\\_e\\[f\\]g\\\\h&lt;i&gt;&amp;\\~")
    assert markdown.text("one\ntwo\x1b") == "one two\\\\x1b"


def test_compile_time_is_shown_apart_from_the_calls():
    document = _load("clean")
    document["summary"]["timing"].update(compile_s=4.5, compiles=4)
    assert ("Compiling (the compiling variants' first call per signature): 4.5 s for 4 signatures"
            in markdown.render(document))
    document["summary"]["timing"].update(compiles=0)
    assert "Compiling" not in markdown.render(document)
