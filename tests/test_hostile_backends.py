"""What a third party's backend or bench document says cannot take over the terminal or stop the
driver: `audit backends` shows its strings escaped and cut, a backend whose attributes raise is
listed as broken, a bench document may name a backend not installed here."""
from test_bench import document

from auditor import backendcmd, benchfile, registry


def test_the_listing_shows_a_backends_strings_escaped_and_cut():
    found = {"evil\x1b[2J": {
        "status": "ok", "version": "1\x1b]0;title\x07" + "x" * 5000, "distribution": None,
        "reference": "m:B", "index_dtype": "int64", "variants": ["eager\u202e"],
        "devices": [{"id": "cpu", "dtypes": ["float32"], "unsupported": {"bfloat16": "\x1b[31m"}}],
        "ops": {"argmax": {"call": "c", "documented": None, "promise": "p\x07", "url": "u"}},
        "notes": ["n\x1b"]}}
    text = "\n".join(backendcmd.render(found))
    assert not any(c in text for c in "\x1b\x07\u202e")
    assert "evil\\x1b[2J" in text and "\\u202e" in text
    assert max(len(line) for line in text.splitlines()) < backendcmd.SHOWN + 100


def test_a_backend_whose_attributes_raise_is_broken_not_a_crash(monkeypatch):
    class Raising:
        @property
        def name(self):
            raise RuntimeError("no name today")

    monkeypatch.setattr(registry, "resolve", lambda reference: Raising())
    entry = registry._load("weird", "weird_mod:BACKEND", "test")
    assert entry.backend is None and "RuntimeError: no name today" in entry.error


def test_a_bench_document_may_name_a_backend_not_installed_here():
    found = document()
    found["run"]["targets"]["numpy/cpu/float32"]["framework"] = "mybackend"
    benchfile.validate(found)
