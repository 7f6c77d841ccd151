"""Measure `audit run` on a large user input against a bare script making the same argmax calls.

Usage: python scripts/bench_scale.py [--size 1g|8g|ROWSxCOLS] [--folder DIR] [--keep]
                                     [--workers-only] [-- extra audit run options]

Writes (never commits) a float32 .npy of random logits (1g: 1024 x 262144; 8g: 16384 x 131072)
in a temporary folder, then runs, each in a process of its own:
  audit run --framework numpy,torch --dtype float32 --cases user --input FILE
  a bare Python script: np.load the file, then np.argmax and torch.argmax along the last axis
  as many times as the audit called each (its results.json says how many).
Prints for each: wall time, CPU time (user + sys of the process and all its descendants), the
largest single process's peak RSS (VmHWM, polled from /proc for every process of the tree) with
its resident anonymous memory (private copies) apart from file-backed pages, and for the audit
the bundle's size; then the issue's goals (2x bare wall, 1.5x input peak, bundle < 5% of input).

--workers-only measures the way to the workers alone, without the driver's reference, checks and
bundle: the input read as `audit run` reads it, handed to one numpy and one torch worker, each
making 5 float32 argmax calls along the last axis (a process of its own, polled the same way).
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

SIZES = {"1g": (1024, 262144), "8g": (16384, 131072)}
WORKERS = """
import sys, time
from auditor.inputs import load_inputs
from auditor.workers import WorkerProcess, cases_message
started = time.perf_counter()
cases = load_inputs([sys.argv[1]])
print(f"read in {time.perf_counter() - started:.2f} s", flush=True)
message = cases_message(cases)
for framework in ("numpy", "torch"):
    worker = WorkerProcess(framework)
    worker.hello(300)
    worker.request({"op": "describe"}, timeout=300)
    started = time.perf_counter()
    worker.request(*message, timeout=300)
    sent = time.perf_counter() - started
    worker.send({"op": "run", "repeats": 5, "cases": [c.id for c in cases], "target": {
        "device": "cpu", "dtype": "float32", "impl": None, "op": "argmax", "variant": {}}})
    while True:
        header, _ = worker.receive(600)
        if header.get("op") == "result":
            print(f"{framework} (pid {worker.process.pid}): cases sent in {sent:.2f} s, "
                  f"5 calls {sum(header['seconds']):.2f} s", flush=True)
        elif header.get("op") == "reply":
            break
    worker.close()
"""
BARE = """
import sys, time
import numpy as np, torch
path, calls = sys.argv[1], int(sys.argv[2])
x = np.load(path)
t = torch.from_numpy(x)
for _ in range(calls):
    np.argmax(x, axis=-1)
for _ in range(calls):
    torch.argmax(t, dim=-1)
"""


def write_input(path, rows, cols):
    """Write a float32 .npy of `rows` x `cols` random values, a block of rows at a time."""
    values = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    rng = np.random.default_rng(0)
    step = max(1, (64 << 20) // (4 * cols))
    for start in range(0, rows, step):
        values[start:start + step] = rng.standard_normal((min(step, rows - start), cols),
                                                         dtype=np.float32)
    values.flush()
    del values


class TreeMemory:
    """Poll /proc for the peak RSS of a process and its descendants, by process."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval = pid, interval
        self.peaks = {}  # pid -> {"name", "hwm", "anon", "file", "shmem"} (bytes, the largest seen)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def stop(self):
        self.done.set()
        self.thread.join()

    def _poll(self):
        while not self.done.is_set():
            for pid in self._tree():
                status = _status(pid)
                if status:
                    peak = self.peaks.setdefault(pid, {"name": status["Name"]})
                    for key, field in (("hwm", "VmHWM"), ("anon", "RssAnon"),
                                       ("file", "RssFile"), ("shmem", "RssShmem")):
                        peak[key] = max(peak.get(key, 0), status.get(field, 0))
            time.sleep(self.interval)

    def _tree(self):
        children = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat") as handle:
                        parent = int(handle.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                children.setdefault(parent, []).append(int(name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def largest(self):
        return max(self.peaks.items(), key=lambda item: item[1].get("hwm", 0), default=(None, {}))


def _status(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    status = {}
    for line in lines:
        key, _, value = line.partition(":")
        parts = value.split()
        status[key] = int(parts[0]) * 1024 if parts[-1:] == ["kB"] else value.strip()
    return status


def measure(argv, **kwargs):
    """Run `argv`; return (wall s, CPU s of it and its descendants, TreeMemory, process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)
    memory = TreeMemory(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    memory.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    proc.out, proc.err = out, err
    return wall, cpu, memory, proc


def folder_size(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def gib(nbytes):
    return f"{nbytes / 2**30:.2f} GiB"


def describe(label, wall, cpu, memory):
    pid, peak = memory.largest()
    print(f"{label}: wall {wall:.1f} s, CPU {cpu:.1f} s; largest process {peak.get('name')} "
          f"(pid {pid}) peak RSS {gib(peak.get('hwm', 0))} (anonymous at most "
          f"{gib(peak.get('anon', 0))}, file-backed {gib(peak.get('file', 0))})")
    for pid, info in sorted(memory.peaks.items()):
        if info.get("hwm", 0) > 64 << 20:
            print(f"    pid {pid} {info['name']}: peak {gib(info['hwm'])}, anon "
                  f"{gib(info.get('anon', 0))}, file {gib(info.get('file', 0))}, shmem "
                  f"{gib(info.get('shmem', 0))}")
    return peak.get("hwm", 0)


def parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1g", help="1g, 8g, or ROWSxCOLS")
    parser.add_argument("--folder", help="where to write the input (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the input and the bundle")
    parser.add_argument("--workers-only", action="store_true",
                        help="measure reading the input and the workers alone")
    parser.add_argument("extra", nargs="*", help="more `audit run` options (after --)")
    return parser.parse_args()


def main():
    args = parse()
    rows, cols = SIZES.get(args.size) or map(int, args.size.lower().split("x"))
    work = tempfile.mkdtemp(prefix="bench-scale-", dir=args.folder)
    try:
        run(work, rows, cols, args.extra, args.workers_only)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run_workers(path, size):
    """Measure the input's way to a numpy and a torch worker, and their calls, alone."""
    wall, cpu, memory, proc = measure([sys.executable, "-c", WORKERS, path])
    if proc.returncode:
        sys.exit(f"the workers' run failed: {proc.err.strip()[-2000:]}")
    print(proc.out.strip())
    peak = describe("reading and workers", wall, cpu, memory)
    print(f"  largest process {gib(peak)} / input {gib(size)} = {peak / size:.2f}x "
          "(goal <= 1.5x)")


def run(work, rows, cols, extra, workers_only=False):
    path, out = os.path.join(work, "logits.npy"), os.path.join(work, "bundle")
    started = time.perf_counter()
    write_input(path, rows, cols)
    size = os.path.getsize(path)
    print(f"input {path}: {rows} x {cols} float32, {gib(size)} (written in "
          f"{time.perf_counter() - started:.1f} s)")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min), "
          f"{os.cpu_count()} CPUs")
    if workers_only:
        return run_workers(path, size)
    audit = [sys.executable, "-m", "auditor", "run", "-q", "--framework", "numpy,torch",
             "--dtype", "float32", "--cases", "user", "--input", path, "--out", out, *extra]
    wall, cpu, memory, proc = measure(audit)
    if proc.returncode not in (0, 1):
        sys.exit(f"audit run failed ({proc.returncode}): {proc.err.strip()[-2000:]}")
    audit_peak = describe("audit run", wall, cpu, memory)
    with open(os.path.join(out, "results.json")) as handle:
        document = json.load(handle)
    calls = {}
    for record in document["observations"]:
        if record.get("timing"):
            fw = record["target"].split("/")[0]
            calls[fw] = calls.get(fw, 0) + record["timing"]["calls"]
            calls[fw + " call_s"] = calls.get(fw + " call_s", 0.0) + record["timing"]["call_s"]
    count = max(calls.get("numpy", 0), calls.get("torch", 0))
    print(f"    argmax calls: {calls}; the run itself (metadata.seconds) "
          f"{document['metadata'].get('seconds')} s")
    bundle = folder_size(out)
    bare_wall, bare_cpu, bare_memory, bare = measure([sys.executable, "-c", BARE, path,
                                                     str(count)])
    if bare.returncode:
        sys.exit(f"bare script failed: {bare.err.strip()[-2000:]}")
    describe(f"bare script ({count} calls of each)", bare_wall, bare_cpu, bare_memory)
    print("goals:")
    print(f"  wall {wall:.1f} s / bare {bare_wall:.1f} s = {wall / bare_wall:.2f}x (goal <= 2x)")
    print(f"  largest process {gib(audit_peak)} / input {gib(size)} = {audit_peak / size:.2f}x "
          "(goal <= 1.5x)")
    print(f"  bundle {bundle / 2**20:.1f} MiB / input = {100 * bundle / size:.1f}% (goal < 5%)")


if __name__ == "__main__":
    main()
