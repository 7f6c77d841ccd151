"""Hostile bundles, baselines, policies and inputs (tests/hostile.py makes them): one line and
exit 2, nothing written outside the output place, never through a link, within a memory bound;
terminal, Markdown and XML outputs neutralise what the files say; a fuzzed bundle never makes an
internal error."""
import copy
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import hostile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import bundle


def snapshot(folder):
    """Return {path: (kind, content hash or link target)} of everything under `folder`."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                found[path] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                with open(path, "rb") as handle:
                    found[path] = ("file", hashlib.sha256(handle.read()).hexdigest())
            elif stat.S_ISFIFO(mode):
                found[path] = ("fifo", None)
            else:
                found[path] = ("other", stat.S_IFMT(mode))
    return found


@pytest.fixture
def corpus(tmp_path):
    hostile.setup(str(tmp_path))
    return tmp_path


@pytest.fixture
def deadline():
    """Fail a test that blocks (reading a FIFO waits for a writer forever) instead of hanging."""
    def expired(signum, frame):
        raise TimeoutError("blocked for 60 s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _refused(audit, helpers, corpus, maker, words):
    args = maker(str(corpus))
    before = snapshot(corpus)
    result = audit(*args)
    line = helpers.one_line_error(result)
    assert words in line, line
    assert snapshot(corpus) == before  # nothing written, replaced or removed
    assert "\x1b" not in result.err
    return line


@pytest.mark.parametrize("name", sorted(hostile.REFUSED))
def test_hostile_file_is_one_line_exit_2_and_touches_nothing(audit, helpers, corpus, deadline,
                                                             name):
    maker, words = hostile.REFUSED[name]
    if "pt" in name or "safetensors" in name:
        pytest.importorskip("torch")
    _refused(audit, helpers, corpus, maker, words)


@pytest.mark.parametrize("name", sorted(hostile.BOMBS))
def test_bombs_are_refused_before_they_are_inflated(audit, helpers, corpus, monkeypatch, name):
    maker, words = hostile.BOMBS[name]
    if name.startswith("pt"):
        pytest.importorskip("torch")
    monkeypatch.setenv("ARGMAX_AUDIT_MEMORY_LIMIT", "64M")
    line = _refused(audit, helpers, corpus, maker, words)
    assert "64.0 MiB" in line and "ARGMAX_AUDIT_MEMORY_LIMIT" in line  # the bound is stated


@pytest.mark.parametrize("name", sorted(hostile.LINKS))
def test_outputs_replace_links_instead_of_writing_through_them(audit, corpus, deadline, name):
    args = hostile.LINKS[name](str(corpus))
    links = [path for path, (kind, _) in snapshot(corpus).items() if kind in ("link", "fifo")]
    result = audit(*args)
    assert result.code in (0, 1), result.err
    assert (corpus / hostile.VICTIM).read_text() == hostile.VICTIM_TEXT
    for path in links:  # each output the command wrote is now its own regular file
        assert not os.path.islink(path) and os.path.isfile(path), path


def test_a_pt_with_shared_empty_tuples_is_read(tmp_path):
    torch = pytest.importorskip("torch")
    from auditor.inputs import load_inputs

    shared = [torch.zeros(3)]
    torch.save({"logits": torch.tensor([[1.0, 2.0]]), "a": (), "b": (), "c": shared, "d": shared},
               tmp_path / "shared.pt")
    cases = load_inputs([tmp_path / "shared.pt"])
    assert [c.id for c in cases] == ["user:shared.pt:logits", "user:shared.pt:c.0",
                                     "user:shared.pt:d.0"]


MEMORY_BOUND = textwrap.dedent("""
    import os, sys, tempfile
    sys.path.insert(0, {tests!r})
    import hostile
    from auditor.cli import main
    for name in {names!r}:
        maker = {{**hostile.REFUSED, **hostile.BOMBS}}[name][0]
        folder = tempfile.mkdtemp()
        hostile.setup(folder)
        os.chdir(folder)
        args = maker(folder)
        try:
            main(args)
        except SystemExit as exc:
            print(name, exc.code)
    # VmHWM: this process's peak resident memory (ru_maxrss would carry the parent's over exec)
    with open("/proc/self/status") as status:
        print("peak_kib", next(line.split()[1] for line in status if line.startswith("VmHWM")))
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's VmHWM")
def test_bounded_reads_stay_within_a_memory_bound(tmp_path):
    """The bombs with the default limit (half the memory available): refused on what they
    declare, so the process never grows past a few hundred MiB."""
    names = ["npz-header-40gib", "baseline-bomb", "deep-json", "deep-baseline", "npy-giant-dims",
             "npy-wide-empty", "safetensors-giant-dims"]
    script = MEMORY_BOUND.format(tests=os.path.dirname(os.path.abspath(__file__)), names=names)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    lines = dict(line.split() for line in done.stdout.splitlines())
    assert all(lines[name] == "2" for name in names), done.stdout + done.stderr
    assert int(lines["peak_kib"]) < 400 * 1024, lines


# --- untrusted text in every output ---------------------------------------------------------------

#: Strings whose change would break the document's references or vocabulary (checked elsewhere).
STRUCTURAL = {"id", "target", "case", "array", "indices", "framework", "dtype", "variant", "env",
              "op", "kind", "severity", "check", "write_id", "layout", "fail_on", "verdict",
              "index_dtype", "float32_target", "baseline_target", "type"}


def inject(value, payload, key=None):
    """Return `value` with `payload` appended to every free-text string (and dict key) in it."""
    if isinstance(value, dict):
        return {(k + payload if k not in STRUCTURAL and not isinstance(value[k], (dict, list))
                 and key in ("settings", "build", "unavailable") else k):
                inject(v, payload, k) for k, v in value.items()}
    if isinstance(value, list):
        if key in ("targets", "blame", "cases", "tags"):
            return value if key != "tags" else [t + payload for t in value]
        return [inject(v, payload, key) for v in value]
    if isinstance(value, str) and key not in STRUCTURAL:
        return value + payload
    return value


def _payload_bundle(path, payload):
    """Write the every-kind bundle with `payload` in every free-text field and in the device
    name of every target (so target ids, in every table and sentence, carry it too)."""
    observations, findings, document = bundle.read(hostile.EVERY_KIND)
    document = inject(document, payload)
    text = json.dumps(document).replace("/cpu/", "/cpu" + json.dumps(payload)[1:-1] + "/")
    text = text.replace('"device": "cpu"', '"device": "cpu' + json.dumps(payload)[1:-1] + '"')
    os.makedirs(path)
    with open(os.path.join(hostile.EVERY_KIND, "arrays.npz"), "rb") as source, \
            open(os.path.join(path, "arrays.npz"), "wb") as target:
        target.write(source.read())
    with open(os.path.join(path, "results.json"), "w", encoding="utf-8") as handle:
        handle.write(text)
    return bundle.read(path)[2]  # valid: the payload is only text


def test_terminal_shows_escape_sequences_instead_of_obeying_them(audit, tmp_path):
    document = _payload_bundle(str(tmp_path / "b"), hostile.TERMINAL)
    assert hostile.TERMINAL in document["findings"][0]["message"]
    result = audit("report", "b")
    assert result.code == 1
    for char in "\x1b\x07\x9b":
        assert char not in result.out + result.err
    assert "\\x1b]0;owned\\x07" in result.out  # shown, visibly
    assert "cpu\\x1b" in result.out  # target ids in the table and the sentences too


def test_markdown_renders_bundle_text_literally(audit, tmp_path):
    import re
    _payload_bundle(str(tmp_path / "b"), hostile.MARKDOWN)
    result = audit("report", "b", "--summary-md", "s.md", "--junit", "j.xml")
    assert result.code == 1
    markdown = (tmp_path / "s.md").read_text()
    assert "<img" not in markdown and "<script" not in markdown
    assert not re.search(r"(?<!\\)\]\(javascript", markdown)
    assert markdown.count("&lt;img") > 10  # the payload is there, as text, in many fields
    import xml.etree.ElementTree as ET
    ET.parse(tmp_path / "j.xml")  # well-formed, the payload as text
    html = (tmp_path / "b" / "report.html").read_text()
    assert "<img src=https://evil" not in html and "<script>alert(2)" not in html


def test_xml_and_html_hold_control_characters_safely(audit, tmp_path):
    import xml.etree.ElementTree as ET
    _payload_bundle(str(tmp_path / "b"), hostile.TERMINAL)
    result = audit("report", "b", "--junit", "j.xml", "--summary-md", "s.md")
    assert result.code == 1
    ET.parse(tmp_path / "j.xml")
    assert "\x1b" not in (tmp_path / "s.md").read_text()


# --- saves that survive signals --------------------------------------------------------------------


def test_a_second_signal_waits_for_the_save(tmp_path):
    from auditor.api import signals_deferred

    observations, findings, document = bundle.read(hostile.CLEAN)
    received = []
    previous = signal.signal(signal.SIGTERM, lambda n, f: received.append(n))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            bundle.write(str(tmp_path / "b"), observations, findings, document["metadata"],
                         document["environment"], document["summary"])
            assert received == []  # held while saving
        assert received == [signal.SIGTERM]  # delivered once the save is done
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert bundle.read(str(tmp_path / "b"))[2]["summary"]["verdict"] == "pass"


def test_a_torn_final_save_falls_back_to_the_last_checkpoint(audit, tmp_path, monkeypatch):
    observations, findings, document = bundle.read(hostile.EVERY_KIND)
    path = str(tmp_path / "b")
    bundle.write(path, observations, (), dict(document["metadata"], complete=False),
                 document["environment"], {"complete": False})  # a checkpoint
    real = os.replace

    def killed_after_the_arrays(source, target):
        real(source, target)
        if os.path.basename(target) == bundle.ARRAYS:
            raise KeyboardInterrupt  # SIGKILL between the two renames, as far as files go
    monkeypatch.setattr(os, "replace", killed_after_the_arrays)
    with pytest.raises(KeyboardInterrupt):
        bundle.write(path, observations, findings, document["metadata"],
                     document["environment"], document["summary"])
    monkeypatch.setattr(os, "replace", real)
    result = audit("report", "b")
    assert result.code == 3, result.err
    assert "did not finish" in result.err
    assert "recovered: the last save was torn" in result.out
    assert "FAIL:" in result.out  # the checks ran on the checkpoint's measurements
    assert (tmp_path / "b" / "report.html").is_file()


def test_a_completed_save_leaves_no_previous_pair(tmp_path):
    observations, findings, document = bundle.read(hostile.CLEAN)
    for _ in range(2):
        bundle.write(str(tmp_path / "b"), observations, findings, document["metadata"],
                     document["environment"], document["summary"])
    assert sorted(os.listdir(tmp_path / "b")) == ["arrays.npz", "results.json"]


# --- the bundle reader, fuzzed ----------------------------------------------------------------------


def _small_every_kind(path):
    """Write a small bundle with one finding of each kind and check (from every-kind)."""
    observations, findings, document = bundle.read(hostile.EVERY_KIND)
    kept, seen = [], set()
    for finding in findings:
        if (finding.kind, finding.check) not in seen:
            seen.add((finding.kind, finding.check))
            kept.append(finding)
    cases = {f.case for f in kept if f.case}
    observations.cases = {k: v for k, v in observations.cases.items() if k in cases}
    observations.outcomes = {k: v for k, v in observations.outcomes.items() if k[1] in cases}
    observations.timings = {k: v for k, v in observations.timings.items() if k[1] in cases}
    bundle.write(path, observations, kept, document["metadata"], document["environment"],
                 document["summary"])


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fuzz") / "source")
    _small_every_kind(path)
    with open(os.path.join(path, "results.json"), encoding="utf-8") as handle:
        return path, json.load(handle)


def _places(value, path=()):
    """Yield the path of every value in a JSON document."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _places(item, (*path, i))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["NaN", "+inf", "\udc80", "cpu", "argmax", "error",
                                              "numpy/cpu/float32", "case/ties-short", "obs/1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_bundles_never_make_an_internal_error(small_bundle, tmp_path_factory, capsys,
                                                     data):
    from auditor.cli import main

    source, original = small_bundle
    document = copy.deepcopy(original)
    places = [p for p in _places(document) if p]
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        place = data.draw(st.sampled_from(places), label="place")
        parent = document
        try:
            for step in place[:-1]:
                parent = parent[step]
            if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
                parent.pop(place[-1], None)
            else:
                parent[place[-1]] = data.draw(JSON, label="value")
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the way there
    folder = tmp_path_factory.mktemp("fuzzed")
    with open(os.path.join(source, "arrays.npz"), "rb") as handle:
        (folder / "arrays.npz").write_bytes(handle.read())
    (folder / "results.json").write_text(json.dumps(document), encoding="utf-8",
                                         errors="surrogatepass")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(folder), "--junit", str(folder / "j.xml"), "--summary-md",
              str(folder / "s.md")])
    err = capsys.readouterr().err
    assert "internal error" not in err, err
    assert exit_info.value.code in (0, 1, 2) or "did not finish" in err, err


@pytest.mark.slow
def test_run_into_a_bundle_replaces_its_links(audit, helpers, corpus):
    """`run --out` over an earlier bundle whose report.html is a link, with --junit a link."""
    for name in ("r1/report.html", "j.xml"):
        os.symlink(str(corpus / hostile.VICTIM), str(corpus / name))
    result = audit(*helpers.SMALL, "--cases", "ties-short", "--out", "r1", "--junit", "j.xml")
    assert result.code == 0, result.err
    assert (corpus / hostile.VICTIM).read_text() == hostile.VICTIM_TEXT
    assert not os.path.islink(corpus / "r1" / "report.html")
    assert not os.path.islink(corpus / "j.xml") and "testsuite" in (corpus / "j.xml").read_text()
