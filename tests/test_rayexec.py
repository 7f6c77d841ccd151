"""auditor/rayexec.py without a cluster: placement, labels, resources, and the missing extra."""
import builtins

import pytest

from auditor import rayexec


def probe(label, targets, **resources):
    return {"label": label, "resources": {"CPU": 1.0, **resources},
            "targets": [{"id": tid, "device": tid.split("/")[1], "group": tid.split("/")[0]}
                        for tid in targets]}


def test_cuda_targets_go_to_the_node_with_a_gpu_and_cpu_targets_run_once():
    cpu = probe("cpu-a", ["torch/cpu/float32", "numpy/cpu/float32"])
    gpu = probe("gpu-b", ["torch/cpu/float32", "torch/cuda:0/float32", "numpy/cpu/float32"], GPU=1.0)
    chosen, notes = rayexec.place([cpu, gpu])
    assert "torch/cuda:0/float32" in chosen["gpu-b"]
    everywhere = chosen["cpu-a"] + chosen["gpu-b"]
    assert sorted(everywhere) == sorted(set(everywhere))  # each target once
    assert set(everywhere) == {"torch/cpu/float32", "torch/cuda:0/float32", "numpy/cpu/float32"}
    assert chosen["gpu-b"].count("torch/cpu/float32") == 1  # the group kept with its cuda targets
    assert notes == []


def test_a_device_without_its_ray_resource_is_not_used_and_said():
    node = probe("a", ["torch/cuda:0/float32", "torch/cpu/float32", "jax/tpu:0/float32"])
    chosen, notes = rayexec.place([node])
    assert chosen["a"] == ["torch/cpu/float32"]
    assert any("torch/cuda:0/float32" in n and "GPU" in n for n in notes)
    assert any("jax/tpu:0/float32" in n and "TPU" in n for n in notes)


def test_each_node_runs_the_cpu_targets_on_every_node_and_the_rest_once():
    a = probe("a", ["numpy/cpu/float32", "torch/cuda:0/float32"], GPU=1.0)
    b = probe("b", ["numpy/cpu/float32", "torch/cuda:0/float32"], GPU=1.0)
    chosen, _ = rayexec.place([a, b], each_node=True)
    assert "numpy/cpu/float32" in chosen["a"] and "numpy/cpu/float32" in chosen["b"]
    assert (chosen["a"] + chosen["b"]).count("torch/cuda:0/float32") == 1


def test_groups_spread_over_the_nodes():
    a = probe("a", ["numpy/cpu/float32", "torch/cpu/float32"])
    b = probe("b", ["numpy/cpu/float32", "torch/cpu/float32"])
    chosen, _ = rayexec.place([a, b])
    assert len(chosen["a"]) == 1 and len(chosen["b"]) == 1


def test_node_labels_are_host_names_made_distinct():
    assert rayexec.node_label("gpu-3", "ab" * 28, ["gpu-3", "cpu-1"]) == "gpu-3"
    assert rayexec.node_label("vm", "0123456789" * 5, ["vm", "vm"]) == "vm-01234567"
    assert rayexec.node_label("a b/c", "ff" * 28, ["a b/c"]) == "a-b-c"
    assert rayexec.env_label("gpu-3") == "node=gpu-3"


def test_agents_claim_the_devices_the_plan_may_use():
    node = {"CPU": 8.0, "GPU": 2.0, "TPU": 4.0, "alpha": 0.5}
    assert rayexec.agent_resources(node, [], ("alpha",)) == (2.0, {"alpha": 0.5, "TPU": 4.0})
    assert rayexec.agent_resources(node, ["cpu"], ()) == (0, {})
    assert rayexec.agent_resources(node, ["cuda:1"], ()) == (2.0, {})


def test_without_ray_the_executor_is_one_line_naming_the_extra(audit, monkeypatch):
    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = audit("run", "-q", "--framework", "numpy", "--executor", "ray")
    assert result.code == 2
    assert "argmax-audit[ray]" in result.err and len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("option", [["--ray-address", "x:1"], ["--each-node"],
                                    ["--ray-resource", "alpha"]])
def test_ray_options_need_the_ray_executor(audit, option):
    result = audit("run", "-q", "--framework", "numpy", *option)
    assert result.code == 2 and "--executor ray" in result.err


def test_the_cli_does_not_import_ray():
    import subprocess
    import sys

    code = "import sys, auditor.cli, auditor.api; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_environment_maps_to_a_ray_runtime_env_of_its_pip_specs():
    specs = ["numpy==1.26.4", "torch>=2.2; python_version >= '3.9'", "jax[cpu]==0.4.30", "rich"]
    assert rayexec.runtime_env(specs) == {"pip": {"packages": specs, "pip_check": False}}
    assert rayexec.env_frameworks(specs) == ["numpy", "torch", "jax"]
    assert rayexec.env_frameworks(["ONNXRuntime_GPU ~= 1.18"]) == ["onnxruntime"]


def test_an_environment_agent_audits_only_the_frameworks_its_specs_install():
    from auditor.runner import Impl, Plan

    plan = Plan(frameworks=["numpy", "torch", "jax"], explicit_frameworks=True, devices=[],
                dtypes=["float32"], impls=[Impl("torch", "k.py", "f"), Impl("jax", "k.py", "g")],
                cases=[])
    mapped = rayexec.env_plan(plan, ["numpy==1.26.4", "torch==2.2.2"])
    assert mapped.frameworks == ["numpy", "torch"] and not mapped.explicit_frameworks
    assert [i.framework for i in mapped.impls] == ["torch"]
    assert mapped.local and mapped.interpreters == []


def test_python_paths_are_refused_on_ray(audit):
    result = audit("run", "-q", "--framework", "numpy", "--executor", "ray", "--python", "/usr/bin/python3")
    assert result.code == 2 and "--env" in result.err


def test_an_address_where_nothing_answers_is_said_at_once():
    import socket

    with socket.socket() as sock:  # a port just freed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert rayexec.unreachable(f"127.0.0.1:{port}", timeout=2)
    assert rayexec.unreachable(f"ray://127.0.0.1:{port}", timeout=2)
    assert "HOST:PORT" in rayexec.unreachable("somewhere")
    assert rayexec.unreachable("local") is None and rayexec.unreachable("auto") is None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert rayexec.unreachable(f"127.0.0.1:{sock.getsockname()[1]}") is None


def test_an_unreachable_cluster_is_one_line_and_exit_2(audit):
    result = audit("run", "-q", "--framework", "numpy", "--executor", "ray",
                   "--ray-address", "127.0.0.1:1")
    assert result.code == 2 and "cannot reach the Ray cluster at 127.0.0.1:1" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_the_python_api_takes_the_executor():
    from auditor import api
    from auditor.errors import UserError

    assert api._executor(None) is None and api._executor("local") is None
    assert api._executor("ray") == rayexec.RayOptions()
    options = rayexec.RayOptions(address="h:6379", each_node=True)
    assert api._executor(options) is options
    with pytest.raises(UserError, match="executor must be"):
        api._executor("dask")
