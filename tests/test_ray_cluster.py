"""`audit run --executor ray` on a local Ray cluster (ray.cluster_utils.Cluster): placement by
resources, a planted fault on one node, a node lost mid-run, the local executor's findings, and
no Ray process left behind. One small cluster is shared by the module (2 cores here)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import impl_spec

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow

#: Small: numpy only, the tie cases, few calls.
SMALL = ["run", "-q", "--executor", "ray", "--framework", "numpy", "--dtype", "float32",
         "--cases", "ties-*", "--repeats", "2", "--processes", "2"]
PLANTED = '''
import os
import numpy as np

def argmax(x, dim=None, keepdim=False):
    if os.environ.get("ARGMAX_AUDIT_RAY_NODE") == {node!r}:
        x = np.flip(np.asarray(x), axis=dim)  # ties to the last maximum on this node only
        i = np.argmax(x, axis=dim, keepdims=keepdim)
        return (x.shape[dim] if dim is not None else x.size) - 1 - i
    return np.argmax(x, axis=dim, keepdims=keepdim)
'''


def ray_processes():
    """Return the ids of the raylet and gcs_server processes alive on this machine (/proc)."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as handle:
                name = handle.read().strip()
            with open(f"/proc/{pid}/stat") as handle:
                zombie = handle.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if name in ("raylet", "gcs_server") and not zombie:
            found.add(int(pid))
    return found


@pytest.fixture(scope="module")
def cluster():
    """A head node with resource alpha and a second node with resource beta."""
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"alpha": 1}})
    beta = made.add_node(num_cpus=1, resources={"beta": 1})
    made.wait_for_nodes()
    made.beta = beta
    yield made
    made.shutdown()


def nodes_of(results):
    """Return {target id: Ray node id it ran on} from a bundle's results."""
    envs = results["environment"]["envs"]
    return {t["id"]: envs[t["env"]]["ray_node"]["id"] for t in results["targets"]}


def test_targets_land_on_the_node_with_the_resource(audit, cluster):
    result = audit(*SMALL, "--ray-address", cluster.address, "--ray-resource", "beta")
    assert result.code == 0, result.err
    where = nodes_of(result.results)
    assert where and set(where.values()) == {cluster.beta.node_id}
    assert all(re.search(r"@node=[\w.-]+$", tid) for tid in where)
    result = audit(*SMALL, "--ray-address", cluster.address, "--ray-resource", "gamma")
    assert result.code == 2 and "gamma" in result.err


def test_a_fault_planted_on_one_node_is_found_by_the_consistency_check(audit, cluster, tmp_path):
    impl = tmp_path / "planted.py"
    impl.write_text(PLANTED.format(node=cluster.beta.node_id))
    result = audit(*SMALL, "--ray-address", cluster.address, "--each-node",
                   "--impl", f"numpy:{impl}:argmax")
    assert result.code == 1, result.err
    results = result.results
    where = nodes_of(results)
    impl_targets = [t for t in where if "planted.py" in t]
    assert len(impl_targets) == 2 and len(set(where.values())) == 2  # on both nodes
    faulty = {t for t in impl_targets if where[t] == cluster.beta.node_id}
    blamed = {t for f in results["findings"] if f["kind"] == "tie_break" and f["check"] != "consistency"
              for t in f["targets"]}
    assert blamed == faulty
    odd = [f for f in results["findings"] if f["check"] == "consistency"]
    assert odd and all(set(f["evidence"].get("blame") or f["targets"]) & faulty for f in odd)


def strip_nodes(findings):
    """Return the findings as comparable tuples, node labels taken out of target ids and text."""
    def clean(text):
        return re.sub(r"@node=[\w.-]+", "", text)
    return sorted((f["check"], f["kind"], f["severity"], f["case"] or "",
                   tuple(sorted(clean(t) for t in f["targets"]))) for f in findings)


def test_same_verdict_and_findings_as_the_local_executor(audit, cluster, tmp_path):
    planted = ["--impl", impl_spec("last_tie.py")]
    local = audit(*[a for a in SMALL if a not in ("--executor", "ray")], *planted,
                  "--out", str(tmp_path / "local"))
    on_ray = audit(*SMALL, *planted, "--ray-address", cluster.address,
                   "--out", str(tmp_path / "ray"))
    assert local.code == on_ray.code == 1
    assert local.results["summary"]["verdict"] == on_ray.results["summary"]["verdict"]
    assert strip_nodes(local.results["findings"]) == strip_nodes(on_ray.results["findings"])
    assert strip_nodes(local.results["findings"])  # the planted fault was found by both


def test_no_ray_process_is_left_when_the_audit_started_ray(audit, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    auth = os.environ.get("RAY_AUTH_MODE")
    before = ray_processes()
    result = audit(*SMALL)
    assert result.code == 0, result.err
    assert os.environ.get("RAY_AUTH_MODE") == auth  # the local Ray's token mode is not left set
    deadline = time.monotonic() + 20  # ray.shutdown has returned; the processes end at once
    while ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ray_processes() - before
    assert not ray.is_initialized()


def _when_marked(args, marker, then):
    """Start `args`; once file `marker` exists, call `then(process)`; return (exit code, stdout,
    stderr) when the process ends."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), process.communicate()
        then(process)
        stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stdout, stderr


def _interrupt_after(seconds):
    def interrupt(process):
        time.sleep(seconds)
        process.send_signal(signal.SIGINT)
    return interrupt


def _lose_a_node_midway(cluster, tmp_path, resource, pause, command):
    """Run `python -m auditor COMMAND --each-node` with an --impl that is slow on a node added
    with `resource`, remove that node (ungracefully) once the impl was called there; return
    (exit code, stderr, results document, the lost node's targets, the targets of crash findings)."""
    doomed = cluster.add_node(num_cpus=1, resources={resource: 1})
    cluster.wait_for_nodes()
    marker = tmp_path / "started"
    impl = tmp_path / "slow_there.py"
    impl.write_text(f'''
import os, time
import numpy as np

def argmax(x, dim=None, keepdim=False):
    if os.environ.get("ARGMAX_AUDIT_RAY_NODE") == {doomed.node_id!r}:
        open({str(marker)!r}, "a").close()
        time.sleep({pause!r})
    return np.argmax(x, axis=dim, keepdims=keepdim)
''')
    out = tmp_path / "bundle"
    args = [sys.executable, "-m", "auditor", *command, "--ray-address", cluster.address,
            "--each-node", "--impl", f"numpy:{impl}:argmax", "--out", str(out)]
    code, _, stderr = _when_marked(args, marker, lambda process: cluster.remove_node(
        doomed, allow_graceful=False))
    results = json.loads((out / "results.json").read_text())
    lost = {t for t, node in nodes_of(results).items() if node == doomed.node_id}
    crashed = {t for f in results["findings"] if f["kind"] == "crash" for t in f["targets"]}
    return code, stderr, results, lost, crashed


def test_a_node_lost_mid_run_gives_crash_findings_and_a_completed_audit(cluster, tmp_path):
    code, stderr, results, lost, crashed = _lose_a_node_midway(cluster, tmp_path, "gamma", 0.5,
                                                               SMALL)
    assert code == 1, stderr
    assert results["summary"]["complete"] and results["metadata"]["complete"]
    assert lost and crashed == lost
    assert any("was lost mid-run" in s for s in results["metadata"]["skipped"])
    finished = {o["target"] for o in results.get("observations", [])} - lost
    assert finished  # the other nodes' work completed


def test_ctrl_c_stops_the_ray_work_keeps_what_was_measured_and_leaves_no_ray(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    before = ray_processes()
    marker = tmp_path / "started"
    impl = tmp_path / "slow.py"
    impl.write_text(f'''
import time
import numpy as np

def argmax(x, dim=None, keepdim=False):
    open({str(marker)!r}, "a").close()
    time.sleep(0.3)
    return np.argmax(x, axis=dim, keepdims=keepdim)
''')
    out = tmp_path / "bundle"
    args = [sys.executable, "-m", "auditor", *SMALL, "--impl", f"numpy:{impl}:argmax",
            "--out", str(out)]
    code, stdout, stderr = _when_marked(args, marker, _interrupt_after(2))
    assert code == 3, stderr
    assert "interrupted" in stderr
    results = json.loads((out / "results.json").read_text())
    assert not results["metadata"]["complete"]
    assert any("slow.py" in o["target"] for o in results["observations"])  # kept
    deadline = time.monotonic() + 20
    while ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ray_processes() - before


# --- audit fuzz and audit bench on the same cluster -----------------------------------------------

#: Small: numpy float32, few examples, no example database.
FUZZ = ["fuzz", "-q", "--executor", "ray", "--framework", "numpy", "--dtype", "float32",
        "--repeats", "1", "--no-database", "--max-examples", "40"]


# In a process of its own: a Ray session made in this process after one it shut down can lose its
# actors (the ids repeat across sessions; test_no_ray_process_is_left... starts one in-process).


def test_fuzz_finds_and_shrinks_a_fault_planted_on_one_node(audit_subprocess, cluster, tmp_path):
    impl = tmp_path / "planted.py"
    impl.write_text(PLANTED.format(node=cluster.beta.node_id))
    result = audit_subprocess([*FUZZ, "--ray-address", cluster.address, "--each-node", "--impl",
                               f"numpy:{impl}:argmax", "--out", str(tmp_path / "fuzz")], tmp_path)
    assert result.code == 1, result.err
    results = json.loads((tmp_path / "fuzz" / "results.json").read_text())
    assert results["metadata"]["executor"] == "ray"
    where = nodes_of(results)
    faulty = {t for t in where if "planted.py" in t and where[t] == cluster.beta.node_id}
    assert len(faulty) == 1 and len(set(where.values())) == 2  # targets on both nodes
    wrong = [f for f in results["findings"] if f["kind"] == "tie_break" and f["severity"] != "info"]
    assert wrong and {t for f in wrong for t in f["targets"]} == faulty
    shrunk = {c["id"]: c for c in results["cases"]}[wrong[0]["case"]]
    assert np.prod(shrunk["shape"]) <= 4  # shrunk to a few elements (two tied maxima)


def test_bench_gives_a_row_per_target_and_node(audit_subprocess, cluster, tmp_path):
    out = tmp_path / "bench"
    result = audit_subprocess(["bench", "-q", "--executor", "ray", "--ray-address",
                               cluster.address, "--each-node", "--framework", "numpy", "--shape",
                               "100x100", "--dim", "-1", "--samples", "2", "--processes", "1",
                               "--out", str(out)], tmp_path)
    assert result.code == 0, result.err
    document = json.loads((out / "bench.json").read_text())
    rows = document["results"]
    assert len(rows) == 2 and all(re.search(r"@node=[\w.-]+$", r["target"]) for r in rows)
    assert len({r["target"] for r in rows}) == 2 and all(r["median_s"] > 0 for r in rows)
    envs = document["environment"]["envs"]
    nodes = {envs[document["run"]["targets"][r["target"]]["env"]]["ray_node"]["id"] for r in rows}
    assert nodes == {cluster.head_node.node_id, cluster.beta.node_id}
    assert all(r["peak_gbps"] for r in rows)  # each node's own peak, measured there
    assert (out / "report.html").exists() and "@node=" in (out / "summary.md").read_text()


def test_a_node_lost_mid_fuzz_gives_crash_findings_and_the_search_goes_on(cluster, tmp_path):
    code, stderr, results, lost, crashed = _lose_a_node_midway(
        cluster, tmp_path, "delta", 0.2, [*FUZZ[:-1], "100000", "--time", "25"])
    assert code == 1, stderr
    assert results["metadata"]["complete"]
    assert results["metadata"]["fuzz"]["stopped"] == "time"  # went on to its budget
    assert lost and crashed == lost
    assert any("was lost mid-search" in s for s in results["metadata"]["skipped"])


def test_fuzz_on_a_ray_it_started_leaves_no_ray_process(audit, monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    before = ray_processes()
    result = audit(*FUZZ[:-1], "10", "--out", str(tmp_path / "fuzz"), out=False)
    assert result.code == 0, result.err
    deadline = time.monotonic() + 20
    while ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ray_processes() - before
    assert not ray.is_initialized()


def test_ctrl_c_mid_fuzz_keeps_the_findings_so_far_and_leaves_no_ray(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    before = ray_processes()
    marker = tmp_path / "found"
    impl = tmp_path / "slow_last.py"
    impl.write_text(f'''
import time
import numpy as np

def argmax(x, dim=None, keepdim=False):
    time.sleep(0.05)
    x = np.flip(np.asarray(x), axis=dim)  # ties to the last maximum
    i = np.argmax(x, axis=dim, keepdims=keepdim)
    if np.asarray(x).size > 1:
        open({str(marker)!r}, "a").close()
    return (x.shape[dim] if dim is not None else x.size) - 1 - i
''')
    out = tmp_path / "bundle"
    args = [sys.executable, "-m", "auditor", *FUZZ[:-1], "100000", "--impl",
            f"numpy:{impl}:argmax", "--out", str(out)]
    # some examples judged before the interrupt: a tie among them is near certain
    code, stdout, stderr = _when_marked(args, marker, _interrupt_after(8))
    assert code == 3, stderr
    results = json.loads((out / "results.json").read_text())
    assert not results["metadata"]["complete"] and results["metadata"]["fuzz"]["stopped"] == "interrupt"
    assert any(f["kind"] == "tie_break" and f["severity"] == "error" for f in results["findings"])
    deadline = time.monotonic() + 20
    while ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ray_processes() - before
