"""`audit bench --executor ray`: each target timed on the Ray node it is placed on.

Connection, probing, placement, labels and shutdown are `audit run`'s (auditor/rayexec.py). The
agent on a node runs the local `bench.Bench` there for the targets placed on it: the timing loops
run in that node's worker processes exactly as locally, and only each (target, shape)'s samples,
once measured, come back to the driver. Agents on different machines time at once; agents that
share a machine (several nodes of one host, or the --env agents of a node) one after another, as a
local bench times one worker at a time. The driver's face is `bench.Bench`'s, so the bench
document, its table, Markdown and HTML are the local ones, targets labelled `@node=HOST`; each
node's peak bandwidth is measured and used on that node.
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import threading
import time

from . import rayexec
from .bench import Bench, Entry
from .environment import inventory
from .model import Observations
from .rayexec import NODE_ENV, POLL_S, STOP_S, NodeAgent, NodeRunner, RayRunner


class _NodeBench(Bench):
    """The local Bench, tolerant of the devices this node lacks."""

    runner_class = NodeRunner


class BenchAgent(NodeAgent):
    """Runs on one node (as a Ray actor): a Bench of the targets placed here; what it measured
    is queued, (target, shape) by (target, shape), for the driver to collect."""

    def __init__(self, plan, node_id, bench_plan):
        os.environ[NODE_ENV] = node_id  # the workers started here inherit it
        plan = rayexec.unportable(plan)
        self.node_id, self.plan = node_id, plan
        self.bench = _NodeBench(bench_plan, plan, checkpoint=self._measured,
                                progress=lambda text: self._emit(("progress", text)))
        self.runner = self.bench.runner
        self.first = {}
        self.events, self.events_lock = [], threading.Lock()
        self.skipped_sent = 0
        self.stopping, self.finished = threading.Event(), threading.Event()
        self.sent = {}  # entry key -> (samples, errors) sent

    def _start(self):
        self.bench.start()

    def _measured(self, bench):
        """After each (target, shape): queue the entries that changed, the peaks, the settings;
        stop here after Ctrl-C (what was measured is queued)."""
        changed = []
        for key, entry in bench.entries.items():
            size = (len(entry.times), len(entry.errors))
            if self.sent.get(key) != size:
                self.sent[key] = size
                changed.append((key[0], list(key[1]), key[2], dataclasses.asdict(entry)))
        self._emit(("measured", changed, bench.peaks, bench.settings, bench.overhead))
        if self.stopping.is_set():
            raise KeyboardInterrupt

    def run(self, target_ids):
        """Time the targets of `target_ids` (those the driver placed here); return the seconds."""
        self.keep(target_ids)
        try:
            self.bench.run()
        except KeyboardInterrupt:
            pass
        finally:
            self.finished.set()
        self._emit(("measured", [], self.bench.peaks, self.bench.settings, self.bench.overhead))
        return self.bench.seconds

    def stop(self):
        """Ctrl-C: stop after the (target, shape) being timed (its samples are kept), or kill
        its worker where that takes more than a few seconds."""
        self.stopping.set()
        if not self.finished.wait(STOP_S / 2):
            for worker in list(self.runner.live):
                worker.kill()
        return True


class _Cluster(RayRunner):
    """rayexec's driver with bench agents; what they send goes to the RayBench."""

    agent_class = BenchAgent

    def __init__(self, targets_plan, options, bench):
        super().__init__(targets_plan, Observations(bundle_path=""), options=options)
        self.bench = bench

    def agent_args(self, plan, node_id):
        return plan, node_id, self.bench.plan

    def _apply(self, label, event):
        self.bench.apply(label, event)

    def _lost(self, label, exc):
        self.bench.lost(label, exc)


class RayBench:
    """The face of `bench.Bench` (start, run, close, plan, targets, entries, peaks, ...) over the
    agents of a Ray cluster; auditor.bench's document and environment read it unchanged."""

    def __init__(self, plan, targets_plan, options, progress=None):
        self.plan = plan
        self.cluster = _Cluster(targets_plan, options, self)
        self.say = progress or (lambda text: None)
        self.checkpoint = lambda bench: None
        self.placed = {}  # (node label, its local target id) -> labelled Target
        self.entries = {}  # (labelled target id, shape, dim) -> Entry
        self.peaks = {}  # "device@node=LABEL" -> {group label: {gbps, bytes, kernel}}
        self.overhead = {}  # "group label@node=LABEL" -> seconds per call of the timing loop
        self.settings = {}
        self.skipped = []
        self.seconds = 0.0
        self.inventory = None

    def start(self):
        """Connect, probe every node, place the targets (rayexec)."""
        cluster = self.cluster
        cluster.start()
        self.placed = cluster.targets
        self.skipped = cluster.record.skipped
        self.inventory = inventory(cluster.record.frameworks, cluster.record.unavailable,
                                   cluster.record.envs)

    @property
    def targets(self):
        """[(target, None)] in the order they are measured, as `Bench.targets`."""
        return [(target, None) for target in self.placed.values()]

    def peak_gbps(self, device, env=None):
        """Return the peak of `device` on node `env` (or of the key `device@env` itself)."""
        key = device if env is None else f"{device}@{env}"
        rates = [statistics.median(p["gbps"]) for p in self.peaks.get(key, {}).values()]
        return max(rates) if rates else None

    def run(self):
        """Time every node's targets, the agents of one machine one after another; Ctrl-C stops
        them, keeping what was measured (KeyboardInterrupt goes on to the caller)."""
        cluster = self.cluster
        started = time.perf_counter()
        queues = {}
        for label in cluster.agents:
            queues.setdefault(cluster.hosts.get(label), []).append(label)
        running = {}
        try:
            while queues or running:
                for host in list(queues):
                    if any(cluster.hosts.get(label) == host for label in running):
                        continue
                    label = queues[host].pop(0)
                    if not queues[host]:
                        del queues[host]
                    if label in cluster.agents:
                        running[label] = cluster.agents[label].run.remote(cluster.assigned[label])
                if not running:
                    continue
                finished, _ = cluster.ray.wait(list(running.values()), num_returns=1,
                                               timeout=POLL_S)
                for label in list(running):
                    if label in cluster.agents:
                        cluster._collect(label)
                    if running[label] in finished and label in cluster.agents:
                        cluster._finish(label, running.pop(label))
                    elif label not in cluster.agents:
                        running.pop(label)
                self.checkpoint(self)
        except BaseException:
            cluster._stop(list(running))
            raise
        finally:
            self.seconds = time.perf_counter() - started
            cluster.shutdown()

    def apply(self, label, event):
        """Take in what agent `label` sent: a progress line, or what it measured."""
        env = rayexec.env_label(label)
        if event[0] == "progress":
            self.say(f"{event[1]} (node {label})")
            return
        _, changed, peaks, settings, overhead = event
        for local_id, shape, dim, fields in changed:
            target = self.placed.get((label, local_id))
            if target is not None:
                self.entries[(target.id, tuple(shape), dim)] = Entry(**fields)
        for device, measured in peaks.items():
            self.peaks[f"{device}@{env}"] = measured
        for local_id, found in settings.items():
            target = self.placed.get((label, local_id))
            if target is not None:
                self.settings[target.id] = found
        for group, seconds in overhead.items():
            self.overhead[f"{group}@{env}"] = seconds

    def lost(self, label, exc):
        """Node `label` is gone: every (target, shape, dim) of it not fully measured fails."""
        cluster = self.cluster
        if cluster.agents.pop(label, None) is None:
            return
        why = rayexec.lost_reason(cluster.ray, label, exc, "bench")
        cluster.note(why)
        error = {"type": "WorkerError", "message": why, "where": "", "process": 0}
        for local_id in cluster.assigned.get(label, []):
            target = self.placed[label, local_id]
            for shape in self.plan.shapes:
                for dim in self.plan.dims:
                    entry = self.entries.setdefault((target.id, tuple(shape), dim), Entry())
                    if len(entry.times) < self.plan.samples * self.plan.processes:
                        entry.errors.append(dict(error))

    def close(self):
        self.cluster.shutdown()

    def units(self):
        return self.plan.processes * len(self.placed) * len(self.plan.shapes)
