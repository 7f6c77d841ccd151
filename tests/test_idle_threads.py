"""Idle framework threads wait without spinning in the audit's workers (they burned a third of
a torch worker's CPU), not in `audit bench`'s, and never against the user's own setting."""
import json
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from auditor import runner
from auditor.worker.protocol import TIMING_ENV

SCRIPT = r"""
import json, os
from auditor.worker.backends import torch_backend
torch_backend._load()
print(json.dumps(os.environ.get("OMP_WAIT_POLICY")))
"""


def test_only_the_bench_workers_are_told_they_are_timed(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(runner, "WorkerProcess", lambda fw, python=None, env=None: started.append(env))
    fake = SimpleNamespace(lock=threading.Lock(), stopping=threading.Event(), live=set(),
                           shared_folder=lambda group: str(tmp_path), timing=False)
    group = SimpleNamespace(env={}, framework="torch", python=None)
    runner.Runner.spawn(fake, group)
    fake.timing = True
    runner.Runner.spawn(fake, group)
    assert TIMING_ENV not in started[0] and started[1][TIMING_ENV] == "1"


def test_a_bench_times_with_its_runner_telling_the_workers():
    from auditor import bench

    plan = bench.targets_plan(["numpy"], [], ["float32"], [], [], [], [], True, 1, 60.0, 180.0)
    made = bench.Bench(bench.BenchPlan(shapes=[(4, 4)], dims=[-1]), plan)
    assert made.runner.timing is True
    assert runner.Runner(plan, made.runner.observations).timing is False


@pytest.mark.parametrize("env, expected", [
    ({}, "PASSIVE"),
    ({TIMING_ENV: "1"}, None),  # audit bench: the default
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),  # the user's own
])
def test_torch_threads_wait_passively_unless_timed_or_set(env, expected):
    pytest.importorskip("torch")
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", TIMING_ENV)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env={**environ, **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
