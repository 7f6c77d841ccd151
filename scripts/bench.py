"""Time the default `audit run` and report how much of it is spent inside argmax calls.

Usage: python scripts/bench.py [-- extra audit run options]

Prints the wall time of the whole command (imports and fresh worker processes included), the
summed time of the argmax calls themselves, the harness time the workers spend around them
(building native inputs, converting results), and, per large case, harness time against call time.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

LARGE = 100_000  # elements: a case this big counts as large


def main(extra):
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "auditor", "run", "-q", "--out", out, *extra],
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode not in (0, 1):
            sys.exit(f"audit run failed ({proc.returncode}): {proc.stderr.strip()}")
        with open(os.path.join(out, "results.json")) as handle:
            document = json.load(handle)
    sizes = {c["id"]: _size(c["shape"]) for c in document["cases"]}
    frameworks, large = {}, {}
    for record in document["observations"]:
        timing = record["timing"]
        if not timing:
            continue
        fw = record["target"].split("/")[0].split("[")[0]
        entry = frameworks.setdefault(fw, {"calls": 0, "call_s": 0.0, "harness_s": 0.0})
        entry["calls"] += timing["calls"]
        entry["call_s"] += timing["call_s"]
        entry["harness_s"] += timing["harness_s"]
        if sizes[record["case"]] >= LARGE:
            row = large.setdefault(record["case"], {"call_s": 0.0, "harness_s": 0.0})
            row["call_s"] += timing["call_s"]
            row["harness_s"] += timing["harness_s"]
    call_s = sum(f["call_s"] for f in frameworks.values())
    harness_s = sum(f["harness_s"] for f in frameworks.values())
    print(f"audit run {' '.join(extra)}: wall {wall:.1f} s (imports and {document['metadata']['processes']} "
          f"fresh processes per target included), exit {proc.returncode}")
    print(f"argmax calls: {call_s:.2f} s summed over workers; harness around them: {harness_s:.2f} s")
    print(f"share of worker time inside argmax calls: {call_s / max(call_s + harness_s, 1e-9):.0%}")
    for fw, f in frameworks.items():
        print(f"  {fw:6s} {f['calls']:6d} calls  {f['call_s']:7.2f} s in argmax  {f['harness_s']:6.2f} s harness")
    print(f"large cases (>= {LARGE} elements), harness / call time over all targets:")
    for case, row in large.items():
        print(f"  {case:24s} call {row['call_s']:.3f} s  harness {row['harness_s']:.3f} s  "
              f"ratio {row['harness_s'] / max(row['call_s'], 1e-9):.2f}")


def _size(shape):
    n = 1
    for s in shape:
        n *= s
    return n


if __name__ == "__main__":
    main(sys.argv[1:])
