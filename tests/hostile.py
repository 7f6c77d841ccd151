"""A corpus of hostile files, made on the fly (no committed binaries): bundles, baselines, policies
and inputs built to break the promises an audit tool makes about files from elsewhere.

Each maker writes into a folder that already holds two clean bundles `r1` and `r2` (copies of the
checked-in `clean` bundle as two machines wrote them) and a `victim.txt` that nothing may touch,
and returns the `audit` arguments that meet the hostile file. `python tests/hostile.py FOLDER`
writes the whole corpus into FOLDER, each case in a subfolder, with the command that meets it.
"""
import io
import json
import os
import shutil
import sys
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CLEAN = os.path.join(HERE, "data", "bundles", "clean")
EVERY_KIND = os.path.join(HERE, "data", "bundles", "every-kind")
VICTIM = "victim.txt"
VICTIM_TEXT = "precious\n"
#: Sequences a terminal obeys: set the window title, a hidden link, clear the screen, a bell.
TERMINAL = "\x1b]0;owned\x07\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\\x1b[2J\x07"
#: What a Markdown job page would render: an image that calls home, a javascript: link, HTML.
MARKDOWN = "<img src=https://evil.example/x.png>[x](javascript:alert(1))<script>alert(2)</script>"


def setup(folder):
    """Write r1, r2 (clean bundles of two hosts) and victim.txt into `folder`."""
    from auditor import bundle

    observations, findings, document = bundle.read(CLEAN)
    for name in ("r1", "r2"):
        environment = dict(document["environment"], host=f"host-{name}")
        bundle.write(os.path.join(folder, name), observations, findings, document["metadata"],
                     environment, document["summary"])
    with open(os.path.join(folder, VICTIM), "w", encoding="utf-8") as handle:
        handle.write(VICTIM_TEXT)


def _document(folder, name="r1"):
    with open(os.path.join(folder, name, "results.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _put(folder, document, name="r1", text=None):
    with open(os.path.join(folder, name, "results.json"), "w", encoding="utf-8") as handle:
        handle.write(text if text is not None else json.dumps(document))


def _arrays(folder, name="r1"):
    with np.load(os.path.join(folder, name, "arrays.npz")) as npz:
        return {key: npz[key] for key in npz.files}


def _npy_bytes(shape, descr="<f4", data=b""):
    """Return a .npy file whose header says `shape` and `descr`, followed by `data`."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                                  "shape": tuple(shape)})
    return buffer.getvalue() + data


def _zeros_member(archive, name, nbytes, chunk=2**22):
    """Add member `name`: an .npy of `nbytes` of float32 zeros, deflated (a zip bomb)."""
    with archive.open(name, "w", force_zip64=True) as stream:
        stream.write(_npy_bytes((nbytes // 4,)))
        zeros = bytes(chunk)
        for _ in range(nbytes // chunk):
            stream.write(zeros)


# --- 1-3: writing through links, over what is not ours -------------------------------------------


def report_link(folder):
    """The bundle's report.html is a link to a file outside it."""
    os.symlink(os.path.join(folder, VICTIM), os.path.join(folder, "r1", "report.html"))
    return ["report", "r1"]


def report_fifo(folder):
    """The bundle's report.html is a FIFO (writing into it would wait for a reader forever)."""
    os.mkfifo(os.path.join(folder, "r1", "report.html"))
    return ["report", "r1"]


def ci_file_links(folder):
    """The bundle's report.html and the CI files asked for are links to a file outside."""
    for name in ("r1/report.html", "j.xml", "s.md", "d.json"):
        os.symlink(os.path.join(folder, VICTIM), os.path.join(folder, name))
    return ["report", "r1", "--junit", "j.xml", "--summary-md", "s.md", "--json", "d.json"]


def merge_into_link(folder):
    """merge -o names an existing bundle whose report.html and arrays.npz are links outside."""
    shutil.copytree(os.path.join(folder, "r2"), os.path.join(folder, "r3"))
    os.symlink(os.path.join(folder, VICTIM), os.path.join(folder, "r3", "report.html"))
    return ["merge", "r1", "r2", "-o", "r3"]


def merge_over_alias(folder):
    """merge -o names a link to one of the bundles merged."""
    os.symlink(os.path.join(folder, "r2"), os.path.join(folder, "alias"))
    return ["merge", "r1", "r2", "-o", "alias"]


def merge_over_linked_results(folder):
    """merge -o names a folder whose results.json is a link to another bundle's."""
    os.mkdir(os.path.join(folder, "trap"))
    for name in ("results.json", "arrays.npz"):
        os.symlink(os.path.join(folder, "r2", name), os.path.join(folder, "trap", name))
    return ["merge", "r1", "r2", "-o", "trap"]


def foreign_results(folder):
    """merge -o names another tool's folder whose results.json merely mentions format_version."""
    os.mkdir(os.path.join(folder, "foreign"))
    with open(os.path.join(folder, "foreign", "results.json"), "w", encoding="utf-8") as handle:
        handle.write('{"format_version": "2.1", "tool": "someone-else", "rows": []}')
    with open(os.path.join(folder, "foreign", "arrays.npz"), "wb") as handle:
        handle.write(b"theirs")
    return ["merge", "r1", "r2", "-o", "foreign"]


# --- 4-6 and 8: bounds ---------------------------------------------------------------------------


def pt_zip_bomb(folder, nbytes=96 * 2**20):
    """A .pt whose zip members inflate to `nbytes` (a few hundred KiB on disk)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"logits": torch.zeros(4)}, buffer)
    path = os.path.join(folder, "bomb.pt")
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in source.infolist():
            bomb.writestr(info.filename, source.read(info))
        prefix = source.infolist()[0].filename.split("/")[0]
        _zeros_member(bomb, f"{prefix}/data/99", nbytes)
    return ["run", "--framework", "numpy", "--input", "bomb.pt", "--out", "out"]


def npz_bomb_in_bundle(folder, nbytes=96 * 2**20):
    """The bundle's arrays.npz holds a member that inflates to `nbytes`."""
    arrays = _arrays(folder)
    path = os.path.join(folder, "r1", "arrays.npz")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, values in arrays.items():
            with archive.open(key + ".npy", "w") as stream:
                np.lib.format.write_array(stream, values)
        _zeros_member(archive, "pad.npy", nbytes)
    return ["report", "r1"]


def npz_header_40gib(folder):
    """An arrays.npz member whose .npy header declares 40 GiB of data it does not hold."""
    arrays = _arrays(folder)
    key = next(k for k in arrays if k.startswith("obs/"))
    arrays.pop(key)
    path = os.path.join(folder, "r1", "arrays.npz")
    with zipfile.ZipFile(path, "w") as archive:
        for name, values in arrays.items():
            with archive.open(name + ".npy", "w") as stream:
                np.lib.format.write_array(stream, values)
        archive.writestr(key + ".npy", _npy_bytes((5 * 2**30,), "<i8"))
    return ["report", "r1"]


def baseline_bomb(folder):
    """A baseline .npz whose document member declares 40 GiB of text."""
    with zipfile.ZipFile(os.path.join(folder, "base.npz"), "w") as archive:
        archive.writestr("baseline/document.npy", _npy_bytes((100,), "<U100000000"))
    return ["compare", "base.npz", "r2"]


def deep_json(folder, depth=200_000):
    """results.json nests arrays `depth` levels deep."""
    document = _document(folder)
    text = json.dumps(document)
    _put(folder, None, text=text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}")
    return ["report", "r1"]


def deep_baseline(folder, depth=200_000):
    """A baseline whose document nests objects `depth` levels deep."""
    np.savez(os.path.join(folder, "base.npz"),
             **{"baseline/document": np.array('{"a":' * depth + "1" + "}" * depth)})
    return ["compare", "base.npz", "r2"]


def npy_giant_dims(folder):
    """An --input .npy of zero size whose other dim is 10**23."""
    with open(os.path.join(folder, "giant.npy"), "wb") as handle:
        handle.write(_npy_bytes((0, 10**23)))
    return ["run", "--framework", "numpy", "--input", "giant.npy", "--out", "out"]


def npy_wide_empty(folder):
    """An --input .npy of zero size whose other dims span 2**60 positions (each fits int64)."""
    with open(os.path.join(folder, "wide.npy"), "wb") as handle:
        handle.write(_npy_bytes((0, 2**30, 2**30)))
    return ["run", "--framework", "numpy", "--input", "wide.npy", "--input-dim", "0",
            "--out", "out"]


def safetensors_giant_dims(folder):
    """An --input .safetensors of zero size whose other dim is 10**30."""
    header = json.dumps({"x": {"dtype": "F32", "shape": [0, 10**30], "data_offsets": [0, 0]}})
    with open(os.path.join(folder, "giant.safetensors"), "wb") as handle:
        handle.write(len(header).to_bytes(8, "little") + header.encode())
    return ["run", "--framework", "numpy", "--input", "giant.safetensors", "--out", "out"]


# --- 7: wrong types inside valid sections ----------------------------------------------------------


def _changed(change):
    def make(folder):
        document = _document(folder)
        change(document)
        _put(folder, document)
        return ["report", "r1"]
    make.__doc__ = change.__doc__
    return make


def _settings(document):
    """targets[0].settings is a string."""
    document["targets"][0]["settings"] = "x"


def _dim(document):
    """A case's dim is 1.5."""
    document["cases"][0]["dim"] = 1.5


def _surrogate(document):
    """A finding-free string holds a lone surrogate."""
    document["cases"][0]["note"] = "\udc80"


def _huge_count(document):
    """A summary count is a string."""
    document["summary"]["allowed"] = "<b>many</b>"


def _compiles(document):
    """summary.timing.compiles is a string."""
    document["summary"]["timing"]["compiles"] = "x"


def _metadata_list(document):
    """metadata.command is a number."""
    document["metadata"]["command"] = 7


def float_indices(folder):
    """An observation's indices are floats holding NaN, met by compare."""
    arrays = _arrays(folder, "r2")
    key = next(k for k in arrays if k.startswith("obs/"))
    arrays[key] = np.full(arrays[key].shape, np.nan)
    np.savez(os.path.join(folder, "r2", "arrays.npz"), **arrays)
    return ["compare", "r1", "r2"]


def infinite_number(folder):
    """A number spelled 1e999 (Python reads it as infinity)."""
    text = json.dumps(_document(folder))
    _put(folder, None, text=text.replace('"seconds": ', '"seconds": 1e999, "x": ', 1))
    return ["report", "r1"]


# --- 9: policies ---------------------------------------------------------------------------------


def _policy(text, name="audit.toml"):
    def make(folder):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            handle.write(text)
        return ["report", "r1", "--config", name]
    return make


# --- 10: not regular files -------------------------------------------------------------------------


def fifo_input(folder):
    os.mkfifo(os.path.join(folder, "pipe.npy"))
    return ["run", "--framework", "numpy", "--input", "pipe.npy", "--out", "out"]


def fifo_config(folder):
    os.mkfifo(os.path.join(folder, "pipe.toml"))
    return ["report", "r1", "--config", "pipe.toml"]


def fifo_results(folder):
    os.unlink(os.path.join(folder, "r1", "results.json"))
    os.mkfifo(os.path.join(folder, "r1", "results.json"))
    return ["report", "r1"]


def fifo_baseline(folder):
    os.mkfifo(os.path.join(folder, "base.npz"))
    return ["compare", "base.npz", "r2"]


def device_input(folder):
    os.symlink("/dev/zero", os.path.join(folder, "zero.npy"))
    return ["run", "--framework", "numpy", "--input", "zero.npy", "--out", "out"]


#: name -> (maker, words the one-line error holds). Every one exits 2 and touches nothing.
REFUSED = {
    "merge-over-alias": (merge_over_alias, "is one of the bundles to merge"),
    "merge-over-linked-results": (merge_over_linked_results, "not a results bundle"),
    "foreign-results": (foreign_results, "not a results bundle"),
    "npz-header-40gib": (npz_header_40gib, "its header says 42949672960 bytes of data"),
    "baseline-bomb": (baseline_bomb, "baseline/document.npy"),
    "deep-json": (deep_json, "levels deep, more than the 64"),
    "deep-baseline": (deep_baseline, "levels deep, more than the 64"),
    "npy-giant-dims": (npy_giant_dims, "has a size past 2^62"),
    "npy-wide-empty": (npy_wide_empty, "spans 1,152,921,504,606,846,976 positions"),
    "safetensors-giant-dims": (safetensors_giant_dims, "has a size past 2^62"),
    "settings-string": (_changed(_settings), "targets[0].settings is a string, not an object"),
    "dim-float": (_changed(_dim), "cases[0].dim is a number, not an integer"),
    "lone-surrogate": (_changed(_surrogate), "cases[0].note holds surrogates not allowed"),
    "count-string": (_changed(_huge_count), "summary.allowed is a string, not an integer"),
    "compiles-string": (_changed(_compiles), "summary.timing.compiles is a string"),
    "command-number": (_changed(_metadata_list), "metadata.command is an integer, not an array"),
    "float-indices": (float_indices, "of dtype float64, not of the kinds 'iu'"),
    "infinite-number": (infinite_number, "metadata.seconds is inf, not a finite number"),
    "policy-kind-list": (_policy('[[allow]]\nkind = ["tie_break"]\nreason = "r"\n'),
                         "kind must be one of"),
    "policy-severity-list": (_policy('[severity]\ntie_break = ["error"]\n'), "must be one of"),
    "policy-fail-on-table": (_policy('fail-on = {a = 1}\n'), "fail-on must be warning or error"),
    "pyproject-tool-string": (_policy('tool = "x"\n', "pyproject.toml"),
                              "tool must be a table"),
    "policy-deep": (_policy("a = " + "[" * 5000 + "]" * 5000 + "\n"), "nest too deep"),
    "fifo-input": (fifo_input, "is a named pipe (FIFO), not a regular file"),
    "fifo-config": (fifo_config, "is a named pipe (FIFO), not a regular file"),
    "fifo-results": (fifo_results, "is a named pipe (FIFO), not a regular file"),
    "fifo-baseline": (fifo_baseline, "is a named pipe (FIFO), not a regular file"),
    "device-input": (device_input, "is a character device, not a regular file"),
}
#: Bombs that inflate to ~100 MiB, refused under a 64 MiB memory limit (ARGMAX_AUDIT_MEMORY_LIMIT).
BOMBS = {
    "pt-zip-bomb": (pt_zip_bomb, "its zip members inflate to 96.0 MiB"),
    "npz-bomb-in-bundle": (npz_bomb_in_bundle, "inflates to 96."),
}
#: Links (and a FIFO) that must be replaced, not written through; the command itself succeeds.
LINKS = {"report-link": report_link, "report-fifo": report_fifo, "ci-file-links": ci_file_links,
         "merge-into-link": merge_into_link}


def main(folder):
    """Write every case of the corpus into its own subfolder of `folder`; print the commands."""
    for name, maker in [*((n, m) for n, (m, _) in {**REFUSED, **BOMBS}.items()), *LINKS.items()]:
        place = os.path.join(folder, name)
        os.makedirs(place)
        setup(place)
        args = maker(place)
        print(f"cd {place} && audit {' '.join(args)}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))
    main(sys.argv[1])
