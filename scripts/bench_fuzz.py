"""Measure `audit fuzz`: examples per second after warm-up, and where the time goes.

Usage: python scripts/bench_fuzz.py [--max-examples N] [--seed S] [-- extra audit fuzz options]

Runs two searches on stock frameworks in float32 with no example database: numpy alone, then
numpy, torch and jax (eager, all three judged on every example). For each it prints the examples
judged, examples/s overall and after the first ten (imports, worker start-up and the first calls
excluded), and the share of the search's time spent in hypothesis (generation and shrinking
bookkeeping), in the workers' round trip less the calls (IPC, building inputs), in the argmax
calls, compiling, and in the checks. The machine's load average is printed beside them: on a
shared machine the figures move with it, so the CPU seconds of the run (driver and workers,
start-up included) are printed too.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

SETS = (("numpy", "numpy"), ("numpy+torch+jax", "numpy,torch,jax"))


def run(frameworks, max_examples, seed, extra):
    with tempfile.TemporaryDirectory() as out:
        started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(
            [sys.executable, "-m", "auditor", "fuzz", "-q", "--framework", frameworks,
             "--dtype", "float32", "--no-database", "--max-examples", str(max_examples),
             "--seed", str(seed), "--out", out, *extra], capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        if proc.returncode not in (0, 1):
            sys.exit(f"audit fuzz failed ({proc.returncode}): {proc.stderr.strip()}")
        with open(os.path.join(out, "results.json")) as handle:
            document = json.load(handle)
    return wall, cpu, document["metadata"]["fuzz"], [
        (f["kind"], f["targets"]) for f in document["findings"] if f["severity"] != "info"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args, extra = parser.parse_known_args()
    extra = [e for e in extra if e != "--"]
    for label, frameworks in SETS:
        load = os.getloadavg()[0]
        wall, cpu, facts, findings = run(frameworks, args.max_examples, args.seed, extra)
        shares = ", ".join(f"{k} {v:.0%}" for k, v in facts["shares"].items())
        print(f"{label} float32: {facts['examples']} examples in {facts['seconds']:.1f} s of "
              f"search ({wall:.1f} s wall with start-up): {facts['examples_per_s']:.1f}/s, "
              f"{facts['examples_per_s_warm']}/s after warm-up; load average {load:.1f} on "
              f"{os.cpu_count()} CPUs; {cpu:.1f} s of CPU (driver and workers, start-up "
              f"included)")
        print(f"  time shares: {shares}")
        print(f"  findings: {json.dumps(findings) if findings else 'none'}")


if __name__ == "__main__":
    main()
