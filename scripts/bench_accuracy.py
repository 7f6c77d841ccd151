"""Check `audit bench` against `python -m timeit` on the same call, in the same minute.

Usage: python scripts/bench_accuracy.py [--rounds N] [--default]

For numpy 1000x1000 float32 argmax over dim 0 and dim 1, runs `python -m timeit -v` and
`audit bench --framework numpy --shape 1000x1000 --dim D --json -` back to back (timeit, bench,
timeit), and prints bench's median beside timeit's best and median per loop, their ratio, and the
timing loop's own cost per call (bench's no-op loop). With --default it also times the default
`audit bench` (numpy, torch and jax on the CPU) from start to exit. The load average is printed
before and after each step: on a busy machine, run it again.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

SETUP = ("import numpy as np; "
         "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)")
_RAW = re.compile(r"raw times: (.*)")
_LOOPS = re.compile(r"^(\d+) loops?, best of")
_UNITS = {"nsec": 1e-9, "usec": 1e-6, "msec": 1e-3, "sec": 1.0}


def load():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def timeit(dim):
    """Return (best, median) seconds per loop of `python -m timeit -v` on argmax over `dim`."""
    out = subprocess.run([sys.executable, "-m", "timeit", "-v", "-s", SETUP,
                          f"np.argmax(x, axis={dim})"], capture_output=True, text=True,
                         check=True).stdout
    loops = int(next(m.group(1) for line in out.splitlines() if (m := _LOOPS.match(line))))
    raw = [_seconds(t) / loops for t in _RAW.search(out).group(1).split(",")]
    return min(raw), statistics.median(raw)


def _seconds(text):
    value, unit = text.split()
    return float(value) * _UNITS[unit]


def bench(dim):
    """Return (result, environment) of `audit bench` on numpy 1000x1000 float32 over `dim`."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-m", "auditor", "bench", "-q", "--framework",
                               "numpy", "--shape", "1000x1000", "--dim", str(dim), "--out",
                               out, "--json", "-"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"audit bench failed ({proc.returncode}): {proc.stderr.strip()}")
    document = json.loads(proc.stdout)
    return document["results"][0], document["environment"]


def accuracy(rounds):
    print("numpy 1000x1000 float32 argmax: bench median against python -m timeit (per call)")
    for dim in (0, 1):
        medians, timeits = [], []
        for _ in range(rounds):
            before = load()
            best1, median1 = timeit(dim)
            result, environment = bench(dim)
            best2, median2 = timeit(dim)
            best, median = min(best1, best2), statistics.median([median1, median2])
            overhead = environment["loop_overhead_s"]
            print(f"  dim {dim}: bench median {result['median_s'] * 1e6:8.1f} us (min "
                  f"{result['min_s'] * 1e6:.1f}, IQR {result['iqr_s'] * 1e6:.1f}, "
                  f"{result['samples']} samples of {result['loops']} loops); timeit best "
                  f"{best * 1e6:.1f} us, median {median * 1e6:.1f} us; bench/timeit median "
                  f"{result['median_s'] / median:.3f}, bench min/timeit best "
                  f"{result['min_s'] / best:.3f}; loop overhead "
                  + ", ".join(f"{k} {v * 1e6:.2f} us" for k, v in overhead.items())
                  + f"; load {before} -> {load()}")
            medians.append(result["median_s"])
            timeits.append(median)
        if rounds > 1:
            bench_s, timeit_s = statistics.median(medians), statistics.median(timeits)
            print(f"  dim {dim} over {rounds} rounds: bench {bench_s * 1e6:.1f} us, timeit "
                  f"{timeit_s * 1e6:.1f} us (medians of the rounds' medians): ratio "
                  f"{bench_s / timeit_s:.3f}")


def default_run():
    before = load()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "auditor", "bench", "-q", "--out", out],
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
    print(f"default audit bench: {wall:.1f} s wall, exit {proc.returncode}; load {before} -> "
          f"{load()} on {os.cpu_count()} CPUs")
    print(proc.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--default", action="store_true", help="also time the default bench")
    args = parser.parse_args()
    accuracy(args.rounds)
    if args.default:
        default_run()


if __name__ == "__main__":
    main()
