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


@pytest.mark.slow
def test_a_later_run_loads_what_an_earlier_one_compiled(tmp_path):
    """Kept across runs in a folder named after the versions, flags and processor."""
    keep = tmp_path / "keep"
    env = {"ARGMAX_AUDIT_KEEP": str(keep), "JAX_PLATFORMS": "cpu"}
    without = ["JAX_COMPILATION_CACHE_DIR", "ARGMAX_AUDIT_SHARED_CACHE", "XLA_FLAGS"]
    first = _run(env, without=without)
    assert first["enabled"].startswith(f"kept across runs in {keep / 'jax'}")
    folder = first["dir"]
    assert os.path.dirname(folder) == str(keep / "jax") and first["hits"] == 0
    with open(os.path.join(folder, "facts.json")) as handle:
        facts = json.load(handle)
    assert facts["jax"] and facts["cpu"]["machine"] and facts["XLA_FLAGS"] == ""
    second = _run({**env, "ARGMAX_AUDIT_SHARED_CACHE": str(tmp_path / "run")}, without=without[:1])
    assert second["dir"] == folder and second["hits"] >= 1 and second["answer"] == 0
    flags = _run({**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}, without=without[:2])
    assert flags["dir"] != folder and flags["hits"] == 0  # other flags: another folder


@pytest.mark.slow
def test_a_folder_others_can_write_is_not_kept_in(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    keep.chmod(0o777)  # an executable read back from there would run here
    report = _run({"ARGMAX_AUDIT_KEEP": str(keep), "ARGMAX_AUDIT_SHARED_CACHE": str(tmp_path / "run"),
                   "JAX_PLATFORMS": "cpu"}, without=["JAX_COMPILATION_CACHE_DIR"])
    assert report["dir"] == str(tmp_path / "run") and "not kept across runs" in report["enabled"]
    assert "writable by other users" in report["enabled"] and not os.listdir(keep)
    alone = _run({"ARGMAX_AUDIT_KEEP": str(keep), "JAX_PLATFORMS": "cpu"},
                 without=["JAX_COMPILATION_CACHE_DIR", "ARGMAX_AUDIT_SHARED_CACHE"])
    assert alone["enabled"] is None and alone["dir"] is None
