"""jax on CPU keeps its compiled executables in the folder the run's processes of a group share,
so the second process loads what the first compiled; elsewhere every process compiles its own."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("jax")

SCRIPT = r"""
import json, os, sys
import jax, jax.numpy as jnp, numpy as np
from jax import monitoring
from auditor.worker.backends import jax_backend

jax_backend._load()  # the adapter imports jax into the module first
hits = []
monitoring.register_event_listener(lambda event, **kw: hits.append(event))
devices = {"cpu": None}
report = {
    "gpu": jax_backend._share_compilations({"cpu": None, "cuda:0": None}),
    "enabled": jax_backend._share_compilations(devices),
}
report["dir"] = jax.config.jax_compilation_cache_dir
report["answer"] = int(jnp.argmax(jnp.asarray(np.arange(37.0, dtype=np.float32)[::-1].copy())))
report["hits"] = sum("cache_hits" in e for e in hits)
print(json.dumps(report))
"""


def _run(env, without=()):
    environ = {k: v for k, v in {**os.environ, **env}.items() if k not in without}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=environ, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_second_process_loads_what_the_first_compiled(tmp_path):
    env = {"ARGMAX_AUDIT_SHARED_CACHE": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    first = _run(env, without=["JAX_COMPILATION_CACHE_DIR"])
    assert first["gpu"] is None  # never where a GPU is seen: its autotuning may differ per process
    assert first["enabled"] and first["dir"] == str(tmp_path)
    assert first["answer"] == 0 and first["hits"] == 0
    assert os.listdir(tmp_path)  # the executable is there
    second = _run(env, without=["JAX_COMPILATION_CACHE_DIR"])
    assert second["answer"] == 0 and second["hits"] >= 1


@pytest.mark.slow
def test_no_sharing_without_the_folder_or_with_the_users_own_cache(tmp_path):
    alone = _run({"JAX_PLATFORMS": "cpu"},
                 without=["ARGMAX_AUDIT_SHARED_CACHE", "JAX_COMPILATION_CACHE_DIR"])
    assert alone["enabled"] is None and alone["dir"] is None
    mine = tmp_path / "mine"
    report = _run({"ARGMAX_AUDIT_SHARED_CACHE": str(tmp_path / "run"),
                   "JAX_COMPILATION_CACHE_DIR": str(mine), "JAX_PLATFORMS": "cpu"})
    assert report["enabled"] is None and report["dir"] == str(mine)
