"""`audit fuzz --executor ray`: the search runs here, the targets' warm workers on the Ray nodes.

Connection, probing, placement, labels and shutdown are `audit run`'s (auditor/rayexec.py): one
agent actor per node (and per --env there) holds a local `WorkerJudge` for the targets placed on
it. Each example (and each shrinking step) goes to every agent at once; their observations are
merged, under the targets' node labels, before the checks. A node lost mid-search gives a `crash`
outcome for its targets on the example in flight and its targets leave the later examples; the
search goes on with the rest.
"""
from __future__ import annotations

import os
import threading
import time

from . import rayexec
from .environment import inventory
from .fuzz import Stats, WorkerJudge
from .model import Observations, Outcome
from .rayexec import NODE_ENV, STOP_S, NodeAgent, NodeRunner, RayRunner, outcome_of


class _NodeJudge(WorkerJudge):
    """The local WorkerJudge, tolerant of the devices this node lacks."""

    runner_class = NodeRunner


class FuzzAgent(NodeAgent):
    """Runs on one node (as a Ray actor): a WorkerJudge for the targets placed here."""

    def __init__(self, plan, node_id):
        os.environ[NODE_ENV] = node_id  # the workers started here inherit it
        plan = rayexec.unportable(plan)
        self.node_id, self.plan = node_id, plan
        self.runner = NodeRunner(plan, Observations(cases={c.id: c for c in plan.cases}))
        self.judge = None
        self.stats = Stats()
        self.first = {}
        self.events, self.events_lock = [], threading.Lock()
        self.skipped_sent = 0

    def _start(self):
        self.judge = _NodeJudge(self.plan)
        self.judge.stats = self.stats
        self.runner = self.judge.runner

    def keep(self, target_ids):
        """Keep the targets of `target_ids`; close the warm workers no kept target uses."""
        super().keep(target_ids)
        used = {group for _, group in self.runner.targets.values()}
        for group in [g for g in self.judge.slots if g not in used]:
            for slot in self.judge.slots.pop(group):
                slot.close()
        return sorted(self.runner.targets)

    def observe(self, case):
        """Judge `case` on this node's targets; return what they gave, as plain data."""
        before = (self.stats.call_s, self.stats.compile_s, self.stats.compiles)
        found = self.judge.observe(rayexec.unportable(case))
        return {"outcomes": [(tid, [rayexec._outcome_json(o) for o in outcomes])
                             for (tid, _), outcomes in found.outcomes.items()],
                "timings": [(tid, timing) for (tid, _), timing in found.timings.items()],
                "stats": (self.stats.call_s - before[0], self.stats.compile_s - before[1],
                          self.stats.compiles - before[2]),
                "dropped": dict(self.judge.dropped)}

    def stop(self):
        """Ctrl-C: kill the warm workers (an example in flight ends at once)."""
        if self.judge is not None:
            self.judge.kill()
        return True

    def close(self):
        """The search is over: close the warm workers."""
        if self.judge is not None:
            self.judge.close()
        return True


class RayJudge(RayRunner):
    """The face of `fuzz.WorkerJudge` (observe, targets, skipped, environment, kill, close) over
    the agents of a Ray cluster; `fuzz.Search` drives it unchanged."""

    agent_class = FuzzAgent

    def __init__(self, plan, options):
        super().__init__(plan, Observations(cases={c.id: c for c in plan.cases}), options=options)
        self.stats = None  # the Search's, shared
        self.dropped = {}  # target id -> why it is left out of later examples
        self.start()  # connect, probe every node, place the targets (rayexec)
        self.placed = self.targets  # (node label, its local target id) -> labelled Target
        try:
            refs = {self.agents[label].keep.remote(ids): label
                    for label, ids in self.assigned.items() if label in self.agents}
            for ref, label in refs.items():
                try:
                    self.ray.get(ref, timeout=self.plan.startup_timeout)
                except (self.ray.exceptions.RayError, TimeoutError) as exc:
                    self._lost(label, exc, None, None)
        except BaseException:
            self.shutdown()
            raise
        self.targets = dict(self.observations.targets)  # labelled id -> Target, as the Search
        self.environment = inventory(self.record.frameworks, self.record.unavailable,
                                     self.record.envs)

    @property
    def skipped(self):
        return self.record.skipped + [f"{t}: {why}" for t, why in self.dropped.items()]

    def deadline(self, label):
        """Seconds an agent gets to judge one example before its node counts as lost."""
        return self.plan.startup_timeout + self.plan.timeout * self.plan.processes * (
            1 + len(self.assigned.get(label, ())))

    def observe(self, case):
        """Return Observations of every target on `case`, each judged on its node."""
        observations = Observations(cases={case.id: case}, targets=self.targets)
        if not self.agents:
            return observations
        # an example is small: Ray sends it inline with each call (a ray.put first costs more)
        sent = rayexec.portable(case)  # read by an --env's other numpy too
        pending = {self.agents[label].observe.remote(sent): label for label in self.agents}
        deadline = max(self.deadline(label) for label in pending.values())
        began = time.monotonic()
        try:  # every agent answered: one call to Ray (the common case)
            answers = self.ray.get(list(pending), timeout=deadline)
        except (self.ray.exceptions.RayError, TimeoutError):
            answers = None  # which one failed, or is late, is sorted out below
        if answers is not None:
            for label, found in zip(pending.values(), answers):
                self.merge(label, found, case, observations)
            return observations
        ready, late = self.ray.wait(list(pending), num_returns=len(pending),
                                    timeout=max(0.0, deadline - (time.monotonic() - began)))
        for ref in ready:
            label = pending[ref]
            try:
                found = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:
                self._lost(label, exc, case, observations)
                continue
            self.merge(label, found, case, observations)
        for ref in late:
            self._lost(label := pending[ref], TimeoutError(
                f"no answer within {self.deadline(label):g} s"), case, observations)
        return observations

    def merge(self, label, found, case, observations):
        """Add an agent's answer on `case` to `observations`, under its targets' labelled ids."""
        for local_id, outcomes in found["outcomes"]:
            target = self.targets.get(self.labelled(label, local_id))
            if target is not None:
                observations.add(target.id, case.id, [outcome_of(o) for o in outcomes])
        for local_id, timing in found["timings"]:
            observations.timings[(self.labelled(label, local_id), case.id)] = timing
        for local_id, why in found["dropped"].items():
            self.dropped[self.labelled(label, local_id)] = why
        if self.stats is not None:
            call_s, compile_s, compiles = found["stats"]
            self.stats.call_s += call_s
            self.stats.compile_s += compile_s
            self.stats.compiles += compiles

    def labelled(self, label, local_id):
        target = self.placed.get((label, local_id))
        return target.id if target is not None else f"{local_id}@{label}"

    def _lost(self, label, exc, case, observations):
        """Node `label` is gone (or its agent failed): its targets crash on `case` (when one was
        in flight) and leave the later examples."""
        agent = self.agents.pop(label, None)
        if agent is None:
            return
        try:
            self.ray.kill(agent)  # where only its answer was late, it is not left running
        except Exception:  # noqa: BLE001 - an agent already gone
            pass
        why = rayexec.lost_reason(self.ray, label, exc, "search")
        self.note(why)
        for local_id in self.assigned.get(label, []):
            target = self.placed[label, local_id]
            self.dropped[target.id] = f"left out of later examples: {why}"
            if case is not None and case.applies(target.dtype, target.sense):
                error = {"type": "WorkerError", "message": why, "where": ""}
                observations.add(target.id, case.id, [Outcome([[0, None]], error=error)])

    def kill(self):
        """Ctrl-C: every agent kills its workers; Ray is left at close."""
        refs = [agent.stop.remote() for agent in self.agents.values()]
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=STOP_S)

    def close(self):
        """Close the agents' workers, kill the agents, disconnect (stopping a Ray we started)."""
        try:
            refs = [agent.close.remote() for agent in self.agents.values()]
            if refs:
                self.ray.wait(refs, num_returns=len(refs), timeout=STOP_S)
        finally:
            self.shutdown()
