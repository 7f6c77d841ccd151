"""Time `audit run --executor ray` (or fuzz, or bench) against the local executor on the same
targets, one machine.

Usage: python scripts/bench_ray.py [--command run|fuzz|bench] [--rounds N] [-- extra options]

Runs the local and the Ray executor alternately (Ray started by the audit for its run, as a user
without a cluster gets it), and prints each run's wall and CPU time (user+sys of the command and
every process it started), the load average, and the ratio of the medians. It also times starting
and stopping a bare local Ray, the fixed cost the Ray executor pays on one machine.
"""
import ctypes
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def subreaper():
    """Adopt the processes that the audit's processes leave orphaned (Ray's raylet does not wait
    for its workers), so that their CPU time is counted when they are reaped (Linux only)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        print("(not Linux: the CPU time of Ray's worker processes is not counted)")


def reap(seconds=15.0):
    """Wait for every adopted process to end (up to `seconds`), collecting its CPU time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            time.sleep(0.1)


#: A cgroup v1 CPU accounting folder of our own, where the machine lets us make one: it counts
#: the CPU of every process the command starts, however they end (Ray's raylet does not wait for
#: its workers, so rusage misses them).
CPUACCT = "/sys/fs/cgroup/cpuacct"


def cgroup():
    """Return a fresh cpuacct cgroup folder, or None where none can be made."""
    folder = os.path.join(CPUACCT, f"bench-ray-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.mkdir(folder)
    except OSError:
        return None
    return folder


def timed(argv):
    """Run `argv`; return (wall seconds, CPU seconds of it and every process it started, exit
    code)."""
    group = cgroup()

    def enter():
        if group:
            with open(os.path.join(group, "tasks"), "w") as handle:
                handle.write(str(os.getpid()))

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, preexec_fn=enter)
    wall = time.perf_counter() - started
    reap()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if group:
        with open(os.path.join(group, "cpuacct.usage")) as handle:
            cpu = int(handle.read()) / 1e9
        try:
            os.rmdir(group)
        except OSError:  # a process still in it: left for the machine to clean
            pass
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return wall, cpu, proc.returncode


def describe(command, folder):
    """Return what a command's bundle in `folder` says about its work, in a few words."""
    if command == "bench":
        with open(os.path.join(folder, "bench.json")) as handle:
            document = json.load(handle)
        return (f"{len(document['run']['targets'])} targets  {len(document['results'])} rows  "
                f"{len(document['run']['failures'])} failures")
    with open(os.path.join(folder, "results.json")) as handle:
        document = json.load(handle)
    text = (f"{len(document['targets'])} targets  {len(document['observations'])} "
            f"observations  {len(document['findings'])} findings")
    if command == "fuzz":
        fuzz = document["metadata"]["fuzz"]
        text += (f"  {fuzz['examples']} examples in {fuzz['seconds']:.1f} s: "
                 f"{fuzz['examples_per_s']}/s, {fuzz['examples_per_s_warm']}/s after warm-up")
    return text


def main(args):
    subreaper()
    rounds, command = 1, "run"
    while args[:1] in (["--rounds"], ["--command"]):
        if args[0] == "--rounds":
            rounds = int(args[1])
        else:
            command = args[1]
        args = args[2:]
    extra = args[1:] if args[:1] == ["--"] else args
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    os.environ.clear()
    os.environ.update(env)
    times = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory() as out:
        for n in range(rounds):
            for name, more in (("local", []), ("ray", ["--executor", "ray"])):
                load = os.getloadavg()[0]
                folder = os.path.join(out, f"{name}{n}")
                wall, cpu, code = timed([sys.executable, "-m", "auditor", command, "-q",
                                         "--out", folder, *more, *extra])
                times[name].append(wall)
                print(f"{name:5s} round {n + 1}: wall {wall:6.1f} s  cpu {cpu:6.1f} s  exit {code}  "
                      f"{describe(command, folder)}  load before {load:.2f}", flush=True)
    code = ("import time, ray; t = time.perf_counter(); ray.init(address='local', "
            "include_dashboard=False, log_to_driver=False, logging_level='ERROR'); "
            "u = time.perf_counter(); ray.shutdown(); "
            "print(f'{u - t:.1f} {time.perf_counter() - u:.1f}')")
    wall, cpu, _ = timed([sys.executable, "-c", code])
    print(f"bare local Ray: start, stop and interpreter {wall:.1f} s wall, {cpu:.1f} s cpu")
    local, on_ray = statistics.median(times["local"]), statistics.median(times["ray"])
    print(f"median wall: local {local:.1f} s, ray {on_ray:.1f} s, ratio {on_ray / local:.2f}x "
          f"(load now {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main(sys.argv[1:])
