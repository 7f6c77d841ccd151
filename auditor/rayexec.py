"""Run one audit on a Ray cluster (`audit run --executor ray`): an agent actor per node drives the
local executor's worker processes there and streams the observations back to the driver.

Ray places the work; nothing here schedules. Each node gets one agent actor, pinned to it (node
affinity) and holding the resources its targets need (its GPUs, its `TPU`, each `--ray-resource`).
The agent runs `Runner.start()` there, which is how the audit asks the node which frameworks and
devices it has; the driver then picks the node of every target (`place`) and the agents run their
share with the same isolated workers and protocol as a local run. Targets are labelled with their
node: `numpy/cpu/float32@node=HOST` (`=` is in no `--env` name nor host name, so the two cannot be
confused; a host name that several nodes share gets its node id's first hex digits).

Ray is optional: nothing imports it unless `--executor ray` is asked for.
"""
from __future__ import annotations

import dataclasses
import io
import os
import pickle
import re
import socket
import threading
import time
from dataclasses import dataclass

import numpy as np

from . import __version__
from .errors import CouldNotRun, UserError
from .model import Outcome
from .runner import Runner, RunRecord

#: What installs Ray with this tool.
EXTRA = "pip install 'argmax-audit[ray]'"
#: Workers started by an agent see their Ray node's id here (an implementation may read it).
NODE_ENV = "ARGMAX_AUDIT_RAY_NODE"
#: The variable by which Ray turns token authentication on or off.
AUTH_MODE = "RAY_AUTH_MODE"
#: Seconds to wait for the cluster's address to answer before trying to join it.
CONNECT_S = 10.0
#: Seconds between two collections of the agents' observations.
POLL_S = 0.25
#: Seconds the agents get to stop their workers after Ctrl-C before they are killed.
STOP_S = 10.0


@dataclass(frozen=True)
class RayOptions:
    """Where and how to run on Ray: `address` (None: RAY_ADDRESS, else a local Ray started for
    the run), `resources` (custom resources a node must have), `each_node` (CPU targets on every
    node)."""

    address: str | None = None
    resources: tuple = ()
    each_node: bool = False
    envs: tuple = ()  # ((name, pip specs), ...) of --env: each a Ray runtime_env on every node


class _PortablePickler(pickle.Pickler):
    """Pickles numpy arrays and scalars as raw bytes, dtype and shape, not by numpy's own
    reduce, which names numpy's private modules (numpy._core in numpy 2, numpy.core before)."""

    def reducer_override(self, obj):
        if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.isbuiltin == 1 \
                and not obj.dtype.hasobject:
            array = np.asarray(obj)
            order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
            return _array, (array.tobytes(order=order), array.dtype.str, array.shape, order,
                            isinstance(obj, np.generic))
        return NotImplemented


def _array(data, dtype, shape, order, scalar):
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order=order)
    return array[()] if scalar else array


def portable(obj):
    """Return `obj` pickled so that a node whose numpy is another major version reads it (the
    agent of an --env, whose runtime_env installs another numpy): see `unportable`."""
    buffer = io.BytesIO()
    _PortablePickler(buffer, protocol=4).dump(obj)
    return buffer.getvalue()


def unportable(data):
    """Return the object `portable` pickled (bytes this audit's own driver made)."""
    return pickle.loads(data)


def import_ray():
    """Return the ray module; UserError naming the extra where it is not installed."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray, which is not installed; install it with {EXTRA}"
                        ) from None
    return ray


def unreachable(address, timeout=CONNECT_S):
    """Say why nothing answers at Ray `address` (`HOST:PORT` or `ray://HOST:PORT`), or return
    None where something does (or the address is `local` or `auto`, which Ray resolves)."""
    if address in ("local", "auto"):
        return None
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return "give it as HOST:PORT (the head node's GCS port, 6379 by default) or ray://HOST:PORT"
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        return f"{exc.strerror or exc} (no connection within {timeout:g} s)"
    return None


def node_label(host, node_id, hosts):
    """Return the label of node `node_id` on `host`: the host name, made file-safe, with the
    node id's first hex digits where `hosts` (every node's host) hold it more than once."""
    label = "".join(c if c.isalnum() or c in "-_." else "-" for c in host or "") or "node"
    return label if list(hosts).count(host) == 1 else f"{label}-{node_id[:8]}"


def env_label(label):
    """Return a node's label as targets carry it (their `env`): `node=LABEL`, and
    `node=LABEL:ENV` for an agent of environment ENV there."""
    return f"node={label}"


def runtime_env(specs):
    """Return the Ray runtime_env of an environment made with `audit env create NAME SPEC...`:
    its pip specs, installed by Ray into a virtualenv on each node over that node's Python."""
    return {"pip": {"packages": list(specs), "pip_check": False}}


def env_frameworks(specs):
    """Return the frameworks (backend names) whose distributions `specs` name: those an
    environment audits (the others it inherits from the node's own Python)."""
    from . import registry

    names = {_spec_name(spec) for spec in specs}
    return [fw for fw, backend in registry.backends().items()
            if names & {_normal(d) for d in (backend.distributions or (backend.module,))}]


def _spec_name(spec):
    head = spec.strip().split(";")[0]
    for stop in "<>=!~[ @":
        head = head.split(stop)[0]
    return _normal(head)


def _normal(name):
    return name.lower().replace("_", "-").replace(".", "-")


def env_plan(plan, specs):
    """Return `plan` for the agent of an environment with `specs`: its frameworks only."""
    frameworks = [fw for fw in env_frameworks(specs)
                  if fw in plan.frameworks or any(i.framework == fw for i in plan.impls)]
    return dataclasses.replace(plan, frameworks=frameworks, explicit_frameworks=False,
                               impls=[i for i in plan.impls if i.framework in frameworks],
                               local=True, interpreters=[])


def device_resource(device):
    """Return the Ray resource a target on `device` needs besides CPU: GPU, TPU, or None."""
    kind = device.split(":")[0]
    return {"cuda": "GPU", "rocm": "GPU", "tpu": "TPU"}.get(kind)


def agent_resources(node_resources, plan_devices, wanted):
    """Return (num_gpus, {resource: amount}) an agent claims on a node with `node_resources`:
    every GPU and TPU of the node the plan's devices may use, and each of the custom resources
    `wanted` (one unit, or all the node has where that is less)."""
    kinds = {d.split(":")[0] for d in plan_devices}
    gpus = node_resources.get("GPU", 0) if not kinds or kinds & {"cuda", "rocm"} else 0
    custom = {name: min(1.0, node_resources[name]) for name in wanted}
    if node_resources.get("TPU") and (not kinds or "tpu" in kinds):
        custom["TPU"] = node_resources["TPU"]
    return gpus, custom


def place(probes, each_node=False):
    """Return ({node label: [target ids]}, [notes]): the node each probed target runs on.

    `probes` are the nodes' probe results, in order of preference (the driver's node first), each
    {"label", "resources", "targets": [{"id", "device", "group"}]}. A target on a GPU or TPU
    runs only where Ray counts that resource; `each_node` runs the CPU targets on every node that
    has them; every other target runs once, its group kept on one node where it can be, on the
    node with the fewest targets so far.
    """
    chosen, notes, load = {p["label"]: [] for p in probes}, [], dict.fromkeys(
        (p["label"] for p in probes), 0)
    usable = {}  # target id -> [labels]
    groups = {}  # group -> [target ids], in order
    for probe in probes:
        for target in probe["targets"]:
            need = device_resource(target["device"])
            if need and not probe["resources"].get(need):
                notes.append(f"{target['id']} on node {probe['label']}: the node has the device "
                             f"but Ray gives it no {need} resource")
                continue
            if each_node and target["device"] == "cpu":
                chosen[probe["label"]].append(target["id"])
                load[probe["label"]] += 1
                continue
            usable.setdefault(target["id"], []).append(probe["label"])
            ids = groups.setdefault(target["group"], [])
            if target["id"] not in ids:
                ids.append(target["id"])
    order = [p["label"] for p in probes]
    for ids in groups.values():
        left = list(ids)
        while left:
            candidates = sorted({label for tid in left for label in usable[tid]},
                                key=lambda label: (-sum(label in usable[t] for t in left),
                                                   load[label], order.index(label)))
            label = candidates[0]
            here = [tid for tid in left if label in usable[tid]]
            chosen[label] += here
            load[label] += len(here)
            left = [tid for tid in left if tid not in here]
    return chosen, notes


class NodeAgent:
    """Runs on one node (as a Ray actor): the local executor for the whole plan, its
    observations queued for the driver to collect."""

    def __init__(self, plan, node_id):
        os.environ[NODE_ENV] = node_id  # the workers started here inherit it
        from .model import Observations

        plan = unportable(plan)  # the cases' arrays, whatever numpy this node has
        self.node_id = node_id
        self.plan = plan
        self.events = []
        self.events_lock = threading.Lock()
        self.runner = _QueueingRunner(plan, Observations(cases={c.id: c for c in plan.cases}),
                                      self._emit)
        self.runner.grow = lambda more: self._emit(("grow", more))
        self.first = {}
        self.skipped_sent = 0

    def _emit(self, event):
        with self.events_lock:
            self.events.append(event)

    def probe(self):
        """Start a worker of every group here; return what this node can run."""
        from .environment import inventory

        facts = {"host": socket.gethostname(), "version": __version__, "targets": [],
                 "error": None, "user_error": False}
        try:
            self._start()
        except (UserError, CouldNotRun) as exc:
            facts.update(error=str(exc), user_error=isinstance(exc, UserError))
        record = self.runner.record
        facts["inventory"] = inventory(record.frameworks, record.unavailable)
        facts["skipped"] = list(record.skipped)
        self.skipped_sent = len(record.skipped)  # said once, with the probe
        facts["startup_errors"] = dict(self.runner.observations.startup_errors)
        for target, group in self.runner.targets.values():
            facts["targets"].append({"id": target.id, "device": target.device,
                                     "group": f"{group.framework}:{'+'.join(group.process)}",
                                     "target": dataclasses.asdict(target),
                                     "cases": list(self.runner.cases_for(target))})
        return facts

    def _start(self):
        """Start the local executor's first workers here (what `probe` reports on)."""
        self.first = self.runner.start()

    def keep(self, target_ids):
        """Leave the runner only the targets of `target_ids` (those the driver placed here)."""
        keep = set(target_ids)
        runner = self.runner
        runner.targets = {tid: v for tid, v in runner.targets.items() if tid in keep}
        runner._cases_for = {tid: ids for tid, ids in runner._cases_for.items() if tid in keep}

    def run(self, target_ids):
        """Run the targets of `target_ids` (those the driver placed here) to their end."""
        self.keep(target_ids)
        runner = self.runner
        first, self.first = self.first, {}
        runner.run(first)
        return runner.record.seconds

    def drain(self):
        """Return the events queued since the last call, and the new notes of skipped work."""
        with self.events_lock:
            events, self.events = self.events, []
        skipped = self.runner.record.skipped[self.skipped_sent:]
        self.skipped_sent += len(skipped)
        return events, skipped

    def stop(self):
        """Stop the run here: kill the workers, keep what was queued."""
        self.runner.stopping.set()
        with self.runner.lock:
            doomed = list(self.runner.live)
        for worker in doomed:
            worker.kill()
        for worker in self.first.values():
            worker.kill()
        self.first = {}
        return True


class NodeRunner(Runner):
    """The local executor on one node: a device the plan names that this node lacks is a note
    (another node may have it), not an error."""

    def _make_targets(self):
        try:
            super()._make_targets()
        except UserError as exc:
            self.note(str(exc))
            for target, _ in self.targets.values():
                self.observations.targets[target.id] = target


class _QueueingRunner(NodeRunner):
    """The local executor whose observations also go to `emit` as plain events."""

    def __init__(self, plan, observations, emit):
        super().__init__(plan, observations, progress=lambda t, c: emit(("progress", t.id, c)))
        self.emit = emit

    def record_outcomes(self, target, case_id, outcomes, timing=None):
        self.emit(("outcomes", target.id, case_id, [_outcome_json(o) for o in outcomes],
                   _timing_json(timing)))
        super().record_outcomes(target, case_id, outcomes, timing)

    def record_settings(self, target, process, settings):
        if settings:
            self.emit(("settings", target.id, process, settings))
        super().record_settings(target, process, settings)


def _outcome_json(outcome):
    return {"runs": [list(r) for r in outcome.runs], "indices": outcome.indices,
            "dtype": outcome.dtype, "type": outcome.type, "error": outcome.error}


def outcome_of(found):
    """Return the Outcome an agent sent as `_outcome_json`."""
    return Outcome([list(r) for r in found["runs"]], dtype=found["dtype"],
                   indices=None if found["indices"] is None else np.array(found["indices"]),
                   type=found["type"], error=found["error"])


def _timing_json(timing):
    if not timing:
        return None
    keys = ("seconds", "prepare_s", "harness_s", "compile_s")
    return {k: timing[k] for k in keys if k in timing}


class RayRunner:
    """Drive an audit on a Ray cluster; the driver's face is the local Runner's (see api.measure).

    `start` (connect, probe every node with an agent of `agent_class`, place the targets) is
    shared by `audit fuzz` and `audit bench` on Ray (auditor/rayfuzz.py, auditor/raybench.py)."""

    agent_class = NodeAgent

    def __init__(self, plan, observations, progress=None, checkpoint=None, options=None):
        self.plan = plan
        self.observations = observations
        self.display = progress or (lambda *a: None)
        self.progress = lambda *a: None  # Runner.record_outcomes calls it; "progress" events count
        self.checkpoint = checkpoint or (lambda force=False: None)
        self.grow = lambda more: None
        self.options = options or RayOptions()
        self.lock = threading.Lock()
        self.record = RunRecord()
        self.ray = None
        # ray.init may switch this process to token authentication by setting RAY_AUTH_MODE in
        # os.environ; the caller's value is given back at shutdown.
        self._auth_mode = os.environ.get(AUTH_MODE)
        self.agents = {}  # label -> actor handle
        self.assigned = {}  # label -> [local target ids]
        self.targets = {}  # (label, local id) -> Target of the driver (labelled)
        self.cases = {}  # (label, local id) -> [case ids]
        self.done = {}  # (label, local id, case id) -> progress events received

    # -- phase 1: connect, probe every node, place the targets
    def start(self):
        self.ray = import_ray()
        try:
            self._connect()
            probes = self._probe()
            self._place(probes)
        except BaseException:
            self.shutdown()
            raise
        return {}

    def _connect(self):
        ray = self.ray
        address = self.options.address or os.environ.get("RAY_ADDRESS") or "local"
        why = unreachable(address)
        if why:  # Ray itself would retry for minutes
            raise UserError(f"cannot reach the Ray cluster at {address}: {why}")
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=True, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"cannot connect to Ray at {address}: {exc}".splitlines()[0]) from None

    def _nodes(self):
        """Return the alive nodes that have every --ray-resource, the driver's first."""
        here = self.ray.get_runtime_context().get_node_id()
        alive = [n for n in self.ray.nodes() if n.get("Alive")]
        wanted = self.options.resources
        nodes = [n for n in alive if all(n["Resources"].get(r) for r in wanted)]
        if not nodes:
            have = sorted({r for n in alive for r in n["Resources"]
                           if not r.startswith("node:") and r not in ("memory", "object_store_memory")})
            raise UserError(f"no node of the Ray cluster has resource {', '.join(wanted)} "
                            f"(resources there: {', '.join(have) or 'none'})")
        return sorted(nodes, key=lambda n: n["NodeID"] != here)

    def _probe(self):
        """Start an agent on every node and ask it what it can run; return the probes."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = self._nodes()
        hosts = [n.get("NodeManagerHostname") or n.get("NodeManagerAddress") for n in nodes]
        agent_class = self.ray.remote(self.agent_class)
        units = ([(None, self.plan, None)] if self.plan.local else []) + [
            (name, env_plan(self.plan, specs), runtime_env(specs)) for name, specs in self.options.envs]
        pending = {}
        for node, host in zip(nodes, hosts):
            gpus, custom = agent_resources(node["Resources"], self.plan.devices,
                                           self.options.resources)
            for name, plan, environment in units:
                label = node_label(host, node["NodeID"], hosts) + (f":{name}" if name else "")
                agent = agent_class.options(
                    num_cpus=0, num_gpus=gpus, resources=custom, max_concurrency=4,
                    runtime_env=environment,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
                ).remote(*self.agent_args(portable(plan), node["NodeID"]))
                self.agents[label] = agent
                pending[agent.probe.remote()] = (label, node, name)
        probes = []
        # An environment's agent waits for Ray to install its pip specs on the node first.
        deadline = self.plan.startup_timeout + (600 if self.options.envs else 60)
        ready, late = self.ray.wait(list(pending), num_returns=len(pending), timeout=deadline)
        for ref in late:
            label = pending[ref][0]
            self.note(f"node {label}: no answer within {deadline:g} s (its resources busy, or "
                      "the node too slow to start); nothing runs there")
            self._drop(label)
        for ref in ready:
            label, node, name = pending[ref]
            try:
                facts = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:
                hint = (" (Ray could not install the environment's pip specs there; the node's "
                        "runtime_env_setup log says why; Ray's pip runtime_env needs virtualenv "
                        "in the node's Python)"
                        if isinstance(exc, self.ray.exceptions.RuntimeEnvSetupError) else "")
                self.note(f"node {label}: its agent failed: {_first_line(exc)}{hint}")
                self._drop(label)
                continue
            if facts["version"] != __version__:
                self.note(f"node {label}: argmax-audit {facts['version']} there, {__version__} "
                          "here; install the same version on every node")
                self._drop(label)
                continue
            facts.update(label=label, resources=node["Resources"], node_id=node["NodeID"])
            for target in facts["targets"]:  # an environment's targets are others than the node's
                target["local"] = target["id"]
                if name:
                    target["id"] += f"@{name}"
                    target["group"] += f"@{name}"
            probes.append(facts)
        order = [label for label, _, _ in pending.values()]
        return sorted(probes, key=lambda p: order.index(p["label"]))

    def agent_args(self, plan, node_id):
        """Return the arguments an agent of `agent_class` is made with on node `node_id`."""
        return plan, node_id

    def _place(self, probes):
        self.hosts = {p["label"]: p["host"] for p in probes}
        for probe in probes:
            label, env = probe["label"], env_label(probe["label"])
            inventory = dict(probe["inventory"], ray_node={
                "id": probe["node_id"], "host": probe["host"],
                "resources": {k: v for k, v in probe["resources"].items()
                              if not k.startswith("node:")}})
            self.record.envs[env] = inventory
            for framework, why in probe["startup_errors"].items():
                self.observations.startup_errors[f"{framework}@{env}"] = why
            for framework, why in probe["inventory"].get("unavailable", {}).items():
                self.record.unavailable[f"{framework}@{env}"] = why
        chosen, notes = place(probes, self.options.each_node)
        notes += [f"node {p['label']} runs nothing: {p['error']}" for p in probes if p["error"]]
        for note in notes:
            self.note(note)
        self._notes_of_nodes(probes)
        for probe in probes:
            label = probe["label"]
            mine = set(chosen[label])
            self.assigned[label] = [t["local"] for t in probe["targets"] if t["id"] in mine]
            for item in probe["targets"]:
                if item["id"] in mine:
                    fields = dict(item["target"], env=env_label(label))
                    target = _target(fields)
                    self.targets[label, item["local"]] = target
                    self.cases[label, item["local"]] = item["cases"]
                    self.observations.targets[target.id] = target
        for label in [label for label in self.agents if not self.assigned.get(label)]:
            self._drop(label)
        if not self.targets:
            why = "; ".join([*(f"node {p['label']}: {p['error']}" for p in probes if p["error"]),
                             *self.record.skipped])
            error = UserError if probes and all(p["user_error"] for p in probes) else CouldNotRun
            raise error("no node of the Ray cluster can run a target"
                        + (f" ({why})" if why else ""))

    def _notes_of_nodes(self, probes):
        """Note what each node skipped (one line for what several skipped alike), and each
        requested device that no node has."""
        seen = {}
        for probe in probes:
            for text in probe["skipped"]:
                seen.setdefault(text, []).append(probe["label"])
        for text, labels in seen.items():
            if text.startswith("device ") and len(labels) < len(probes):
                continue  # absent there, present on another node
            self.note(f"{text} (node {', '.join(labels)})")
        found = {t["device"] for p in probes for t in p["targets"]}
        for wanted in self.plan.devices:
            if not any(d == wanted or d.split(":")[0] == wanted for d in found):
                self.note(f"no node of the Ray cluster can run device {wanted}")

    def note(self, text):
        if text not in self.record.skipped:
            self.record.skipped.append(text)

    def _drop(self, label):
        agent = self.agents.pop(label, None)
        if agent is not None:
            try:
                self.ray.kill(agent)
            except Exception:  # noqa: BLE001 - an agent already gone
                pass

    def planned(self):
        return sum(len(ids) for ids in self.cases.values())

    def used_cases(self):
        used = {cid for ids in self.cases.values() for cid in ids}
        return [c for c in self.plan.cases if c.id in used]

    # -- phase 2: every agent runs its share; the driver collects
    def run(self, first=None):
        started = time.perf_counter()
        running = {}
        try:
            for label, agent in self.agents.items():
                running[label] = agent.run.remote(self.assigned[label])
            while running:
                finished, _ = self.ray.wait(list(running.values()), num_returns=len(running),
                                            timeout=POLL_S)
                for label in list(running):
                    self._collect(label)
                    if running[label] in finished and label in self.agents:
                        self._finish(label, running.pop(label))
                    elif label not in self.agents:
                        running.pop(label)
                with self.lock:
                    self.checkpoint()
        except BaseException:
            self._stop(list(running))
            raise
        finally:
            self.record.seconds = time.perf_counter() - started
            self.shutdown()

    def _collect(self, label):
        """Apply the events agent `label` queued; a node that is gone has its work crashed."""
        try:
            events, skipped = self.ray.get(self.agents[label].drain.remote(),
                                           timeout=self.plan.timeout + 30)
        except (self.ray.exceptions.RayError, KeyError) as exc:
            self._lost(label, exc)
            return
        for text in skipped:
            self.note(f"{text} (node {label})")
        for event in events:
            self._apply(label, event)

    def _finish(self, label, ref):
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self._lost(label, exc)
            return
        self._collect(label)
        self._drop(label)

    def _apply(self, label, event):
        kind = event[0]
        if kind == "grow":
            self.grow(event[1])
        elif kind == "progress":
            target = self.targets[label, event[1]]
            key = (label, event[1], event[2])
            self.done[key] = self.done.get(key, 0) + 1
            self.display(target, event[2])
        elif kind == "settings":
            Runner.record_settings(self, self.targets[label, event[1]], event[2], event[3])
        elif kind == "outcomes":
            _, local_id, case_id, outcomes, timing = event
            found = [outcome_of(o) for o in outcomes]
            Runner.record_outcomes(self, self.targets[label, local_id], case_id, found, timing)

    def _lost(self, label, exc):
        """Record a crash for every target of node `label` that had work left, once."""
        if label not in self.agents:
            return
        self.agents.pop(label)
        why = lost_reason(self.ray, label, exc, "run")  # RayTaskError: the agent raised
        for local_id in self.assigned.get(label, []):
            target = self.targets[label, local_id]
            left = [c for c in self.cases[label, local_id]
                    if self.done.get((label, local_id, c), 0) < self.plan.processes]
            if not left:
                continue
            process = self.done.get((label, local_id, left[0]), 0)
            error = {"type": "WorkerError", "message": why, "where": ""}
            Runner.record_outcomes(self, target, left[0], [Outcome([[process, None]], error=error)])
            self.note(f"{target.id}: {len(left)} cases not finished: {why}")

    def _stop(self, labels):
        """Ctrl-C: tell each running agent to stop its workers, keep what they measured."""
        refs = {}
        for label in labels:
            if label in self.agents:
                refs[self.agents[label].stop.remote()] = label
        if refs:
            self.ray.wait(list(refs), num_returns=len(refs), timeout=STOP_S)
        for label in labels:
            if label in self.agents:
                try:
                    events, _ = self.ray.get(self.agents[label].drain.remote(), timeout=STOP_S)
                except Exception:  # noqa: BLE001 - gone or slow: what it had is lost with it
                    continue
                for event in events:
                    self._apply(label, event)

    def shutdown(self):
        """Kill the agents and disconnect (which stops a Ray this run started)."""
        if self.ray is None:
            return
        for label in list(self.agents):
            self._drop(label)
        if self.ray.is_initialized():
            self.ray.shutdown()
        if self._auth_mode is None:
            os.environ.pop(AUTH_MODE, None)
        else:
            os.environ[AUTH_MODE] = self._auth_mode


def _target(fields):
    from .model import Target

    return Target(**{k: v for k, v in fields.items() if k in Target.__dataclass_fields__})


def lost_reason(ray, label, exc, during):
    """Say why node `label`'s work ended with `exc`: its agent failed (a RayTaskError), or the
    node was lost mid-`during` (run, search, bench)."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        return f"the audit's agent on Ray node {label} failed ({_first_line(exc)})"
    return f"the Ray node {label} was lost mid-{during} ({_first_line(exc)})"


def _first_line(exc):
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()  # Ray colours names
    return text[0][:300] if text else type(exc).__name__
