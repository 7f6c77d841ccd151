"""Measure the driver's side of a large user input: the checks, the summary and the bundle.

    python scripts/bench_checks_scale.py ROWS COLS [--store-inputs] [--dtypes float32,bfloat16]

Builds a ROWS x COLS float32 input in a temporary .npy, answers for a numpy target per dtype
(the reference itself: a clean run, plus ties at 1% of the rows answered with the last maximum by
a planted kernel), then times `run_checks`, `summarize` and the final bundle write, and prints
the peak resident memory of this process beside the input's size, and the bundle's size. No
worker runs: this isolates what the driver does with the answers (the workers' side is measured
by the input delivery benchmark).
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from auditor import bundle  # noqa: E402
from auditor.checks import run_checks  # noqa: E402
from auditor.inputs import load_inputs  # noqa: E402
from auditor.model import Observations, Outcome, Target  # noqa: E402
from auditor.summary import summarize  # noqa: E402


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make(path, rows, cols):
    """Write the input: normal logits, the rows of `tied` with a tie of 100.0 at 7 and -3."""
    rng = np.random.default_rng(0)
    values = np.lib.format.open_memmap(path, "w+", np.float32, (rows, cols))
    for start in range(0, rows, 64):
        values[start:start + 64] = rng.standard_normal((min(64, rows - start), cols),
                                                       dtype=np.float32)
    values[tied(rows), 7] = values[tied(rows), -3] = 100.0
    values.flush()


def tied(rows):
    return np.arange(0, rows, 100)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", type=int)
    parser.add_argument("cols", type=int)
    parser.add_argument("--store-inputs", action="store_true")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--make", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        return make(args.make, args.rows, args.cols)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "logits.npy")
        subprocess.run([sys.executable, __file__, str(args.rows), str(args.cols), "--make", path],
                       check=True)
        started, cpu0, base = time.monotonic(), time.process_time(), peak_mib()
        try:
            from auditor import lean
            cases = lean.mark(load_inputs([path]), args.store_inputs)
        except ImportError:  # a version without lean bundles
            cases = load_inputs([path])
        case = cases[0]
        loaded = time.monotonic()
        observations = Observations(cases={case.id: case}, bundle_path=os.path.join(folder, "b"))
        for dtype in args.dtypes.split(","):
            good = Target("numpy", "cpu", dtype)
            bad = Target("numpy", "cpu", dtype, impl="kern.py:last_tie")
            answers = case.reference(dtype)
            planted = answers.copy()
            planted[tied(args.rows)] = args.cols - 3
            for target, found in ((good, answers), (bad, planted)):
                observations.targets[target.id] = target
                observations.outcomes[(target.id, case.id)] = [Outcome([[0, 0]], found, "int64")]
        case._cache.clear()  # the checks compute the reference themselves
        checks_started = time.monotonic()
        findings = run_checks(observations, {})
        summary = dict(summarize(observations, findings, "error"), complete=True)
        checked = time.monotonic()
        bundle.write(observations.bundle_path, observations, findings, {"complete": True}, {},
                     summary)
        written = time.monotonic()
        size = sum(os.path.getsize(os.path.join(observations.bundle_path, n))
                   for n in os.listdir(observations.bundle_path))
        cpu = time.process_time() - cpu0
        nbytes = args.rows * args.cols * 4
        print(f"input {args.rows} x {args.cols} float32: {nbytes / 2**20:.0f} MiB; lean: {getattr(case, 'lean', False)}")
        print(f"load+hash {loaded - started:.2f} s, reference+checks+summary "
              f"{checked - checks_started:.2f} s, bundle write {written - checked:.2f} s; "
              f"cpu {cpu:.2f} s")
        print(f"findings {len(findings)}; peak RSS {peak_mib():.0f} MiB (before loading "
              f"{base:.0f} MiB): {(peak_mib() - base) / (nbytes / 2**20):.2f}x the input")
        print(f"bundle {size / 2**20:.2f} MiB: {size / nbytes:.2%} of the input")


if __name__ == "__main__":
    main()
