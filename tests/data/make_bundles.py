"""Make the results bundles checked in under tests/data/bundles with the tool itself.

    python tests/data/make_bundles.py

`clean`: numpy float32 on a few cases, no findings. `every-kind`: planted faults (faulty.py),
float16 drift, and a kernel that changed since a baseline made first, so the bundle holds a
finding of every kind. Paths in the bundles are made relative to this folder, so they read the
same on every machine.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = "ties-short,ties-far-127,nan-rows,near-tie,logits-64x10,dims-*,empty-dim,scalar"
FAULTS = ("skips_nan", "random_tie", "off_by_one", "returns_int32", "raises", "changes")


def audit(name, *args, env=None):
    out = os.path.join(HERE, "bundles", name)
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "auditor", "run", "-q", "--framework", "numpy",
               "--repeats", "3", "--processes", "2", "--cases", CASES, "--out", out, *args]
    done = subprocess.run(command, cwd=HERE, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode not in (0, 1):
        sys.exit(f"{name}: exit {done.returncode}\n{done.stderr}")
    scrub(out)
    print(f"{name}: exit {done.returncode}, {len(json.load(open(os.path.join(out, 'results.json')))['findings'])} findings")


def scrub(out):
    """Replace absolute paths of this machine with ones relative to tests/data."""
    path = os.path.join(out, "results.json")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    text = text.replace(HERE + os.sep, "").replace(HERE, ".")
    text = re.sub(r'"[^"]*before.npz"', '"before.npz"', text)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.remove(os.path.join(out, "report.html")) if os.path.exists(os.path.join(out, "report.html")) else None


if __name__ == "__main__":
    audit("clean", "--dtype", "float32")
    faults = [arg for fault in FAULTS for arg in ("--impl", f"numpy:faulty.py:{fault}")]
    with tempfile.TemporaryDirectory() as scratch:
        before = os.path.join(scratch, "before.npz")
        audit("every-kind", "--dtype", "float32,float16", *faults, "--save-baseline", before)
        audit("every-kind", "--dtype", "float32,float16", *faults, "--baseline", before,
              env={"ARGMAX_AUDIT_PLANTED_CHANGE": "1"})
