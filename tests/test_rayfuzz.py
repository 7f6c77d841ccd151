"""`audit fuzz` and `audit bench` on Ray without a cluster: how the driver merges what the node
agents send (labels, crashes of a lost node, per-node peaks), and the options."""
import types

import numpy as np
import pytest

from auditor import bench, rayexec
from auditor.fuzz import Stats
from auditor.model import Case, Target

pytest.importorskip("ray")
from auditor.raybench import RayBench  # noqa: E402
from auditor.rayfuzz import RayJudge  # noqa: E402


class TaskError(Exception):
    """Stands for ray.exceptions.RayTaskError (the agent raised, the node is alive)."""


FAKE_RAY = types.SimpleNamespace(exceptions=types.SimpleNamespace(RayTaskError=TaskError))


def labelled(local, label):
    framework, device, dtype = local.split("/")
    target = Target(framework=framework, device=device, dtype=dtype, env=rayexec.env_label(label))
    assert target.id.endswith(f"@node={label}") and target.id.startswith(local)
    return target


def judge_of(nodes):
    """A RayJudge as RayRunner.start leaves it, for `nodes` ({label: [local ids]}), no Ray."""
    judge = RayJudge.__new__(RayJudge)
    judge.ray = FAKE_RAY
    judge.record = rayexec.RunRecord()
    judge.agents = {label: object() for label in nodes}
    judge.assigned = {label: list(ids) for label, ids in nodes.items()}
    judge.placed = {(label, local): labelled(local, label)
                    for label, ids in nodes.items() for local in ids}
    judge.targets = {t.id: t for t in judge.placed.values()}
    judge.dropped, judge.stats = {}, Stats()
    return judge


def answer(local_id, index, call_s=0.5):
    return {"outcomes": [(local_id, [{"runs": [[0, 0], [0, 1]], "indices": np.array(index),
                                      "dtype": "int64", "type": "ndarray", "error": None}])],
            "timings": [(local_id, {"calls": 2, "call_s": call_s})],
            "stats": (call_s, 0.25, 1), "dropped": {}}


def test_the_agents_answers_merge_under_their_nodes_labels():
    judge = judge_of({"a": ["numpy/cpu/float32"], "b": ["numpy/cpu/float32"]})
    case = Case("fuzz-current", np.array([1.0, 1.0], np.float32), dim=None)
    from auditor.model import Observations

    observations = Observations(cases={case.id: case}, targets=judge.targets)
    judge.merge("a", answer("numpy/cpu/float32", 0), case, observations)
    judge.merge("b", dict(answer("numpy/cpu/float32", 1),
                          dropped={"numpy/cpu/float32": "hung"}), case, observations)
    a, b = "numpy/cpu/float32@node=a", "numpy/cpu/float32@node=b"
    assert {tid for tid, _ in observations.outcomes} == {a, b}
    assert int(observations.outcomes[(a, case.id)][0].indices) == 0
    assert int(observations.outcomes[(b, case.id)][0].indices) == 1  # each node's own answer
    assert observations.timings[(b, case.id)]["calls"] == 2
    assert judge.stats.call_s == 1.0 and judge.stats.compiles == 2
    assert judge.dropped == {b: "hung"} and f"{b}: hung" in judge.skipped


def test_a_node_lost_mid_search_crashes_its_targets_on_the_example_and_leaves_the_rest():
    judge = judge_of({"a": ["numpy/cpu/float32"], "b": ["numpy/cpu/float32", "numpy/cpu/int64"]})
    case = Case("fuzz-current", np.array([1.0, 2.0], np.float32), dim=None)
    from auditor.model import Observations

    observations = Observations(cases={case.id: case}, targets=judge.targets)
    judge._lost("b", ConnectionError("node died"), case, observations)
    crashed = observations.outcomes[("numpy/cpu/float32@node=b", case.id)]
    assert crashed[0].crashed and "was lost mid-search" in crashed[0].error["message"]
    assert ("numpy/cpu/int64@node=b", case.id) not in observations.outcomes  # not its dtype
    assert set(judge.dropped) == {"numpy/cpu/float32@node=b", "numpy/cpu/int64@node=b"}
    assert list(judge.agents) == ["a"]  # the search goes on with the other node
    judge._lost("b", ConnectionError("again"), case, observations)  # said once
    assert sum("lost mid-search" in s for s in judge.record.skipped) == 1
    judge._lost("a", TaskError("boom"), None, None)
    assert any("agent on Ray node a failed" in s for s in judge.record.skipped)
    assert judge.observe(case).outcomes == {}  # no node left: nothing judged, no error


def bench_of(nodes, shapes=((10, 10),), dims=(0,)):
    plan = bench.BenchPlan(shapes=list(shapes), dims=list(dims), samples=2, processes=1)
    runner = RayBench.__new__(RayBench)
    runner.plan, runner.say = plan, (lambda text: None)
    runner.entries, runner.peaks, runner.overhead, runner.settings = {}, {}, {}, {}
    runner.skipped, runner.seconds, runner.inventory = [], 1.0, {"frameworks": {}}
    runner.cluster = types.SimpleNamespace(
        agents={label: object() for label in nodes}, ray=FAKE_RAY, record=rayexec.RunRecord(),
        assigned={label: list(ids) for label, ids in nodes.items()})
    runner.cluster.note = runner.cluster.record.skipped.append
    runner.placed = {(label, local): labelled(local, label)
                     for label, ids in nodes.items() for local in ids}
    return runner


def measured(times, peak_gbps):
    entry = {"times": times, "loops": 10, "first_s": [0.001], "errors": []}
    return ("measured", [("numpy/cpu/float32", [10, 10], 0, entry)],
            {"cpu": {"numpy": {"gbps": [peak_gbps], "bytes": 1, "kernel": "sum"}}},
            {"numpy/cpu/float32": {"threads": 1}}, {"numpy": 2.5e-7})


def test_bench_rows_carry_their_node_and_each_node_its_own_peak():
    runner = bench_of({"a": ["numpy/cpu/float32"], "b": ["numpy/cpu/float32"]})
    runner.apply("a", measured([1e-6, 1e-6], 4.0))
    runner.apply("b", measured([2e-6, 2e-6], 8.0))
    document = bench.document(runner, None, {"command": ["audit", "bench"]}, True)
    rows = {r["target"]: r for r in document["results"]}
    assert set(rows) == {"numpy/cpu/float32@node=a", "numpy/cpu/float32@node=b"}
    assert rows["numpy/cpu/float32@node=a"]["median_s"] == 1e-6
    assert rows["numpy/cpu/float32@node=b"]["median_s"] == 2e-6
    peaks = document["environment"]["peaks"]
    assert peaks["cpu@node=a"]["gbps"] == 4.0 and peaks["cpu@node=b"]["gbps"] == 8.0
    a_gbps = 400 / 1e-6 / 1e9
    assert rows["numpy/cpu/float32@node=a"]["peak_fraction"] == pytest.approx(a_gbps / 4.0,
                                                                                rel=1e-3)
    assert document["run"]["targets"]["numpy/cpu/float32@node=b"]["settings"] == {"threads": 1}
    assert document["environment"]["loop_overhead_s"] == {"numpy@node=a": 2.5e-7,
                                                          "numpy@node=b": 2.5e-7}


def test_a_node_lost_mid_bench_fails_what_it_had_not_measured():
    runner = bench_of({"a": ["numpy/cpu/float32"], "b": ["numpy/cpu/float32"]},
                      shapes=((10, 10), (20, 20)))
    runner.apply("b", measured([2e-6, 2e-6], 8.0))  # 10x10 done on b, 20x20 not yet
    runner.lost("b", ConnectionError("node died"))
    document = bench.document(runner, None, {}, True)
    assert [r["target"] for r in document["results"]] == ["numpy/cpu/float32@node=b"]
    failed = document["run"]["failures"]
    assert [(f["target"], f["shape"]) for f in failed] == [("numpy/cpu/float32@node=b", [20, 20])]
    assert "lost mid-bench" in failed[0]["errors"][0]["message"]
    assert list(runner.cluster.agents) == ["a"]


@pytest.mark.parametrize("command", [["fuzz", "--max-examples", "1"],
                                     ["bench", "--shape", "10x10"]])
@pytest.mark.parametrize("option", [["--ray-address", "x:1"], ["--each-node"],
                                    ["--ray-resource", "alpha"]])
def test_fuzz_and_bench_ray_options_need_the_ray_executor(audit, command, option):
    result = audit(*command, "-q", "--framework", "numpy", *option, out=False)
    assert result.code == 2 and "--executor ray" in result.err


@pytest.mark.parametrize("command", [["fuzz", "--max-examples", "1", "--no-database"],
                                     ["bench", "--shape", "10x10"]])
def test_fuzz_and_bench_on_an_unreachable_cluster_are_one_line_and_exit_2(audit, command,
                                                                           tmp_path):
    result = audit(*command, "-q", "--framework", "numpy", "--executor", "ray",
                   "--ray-address", "127.0.0.1:1", "--out", str(tmp_path / "out"), out=False)
    assert result.code == 2 and "cannot reach the Ray cluster at 127.0.0.1:1" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing measured: no trace


@pytest.mark.parametrize("command", ["fuzz", "bench"])
def test_fuzz_and_bench_help_state_the_ray_options(command):
    from click.testing import CliRunner

    from auditor.cli import cli

    result = CliRunner().invoke(cli, [command, "--help"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "--executor [local|ray]" in text and "[default: local]" in text
    assert "--ray-address ADDRESS" in text and "Default: RAY_ADDRESS" in text
    assert "--ray-resource NAME" in text and "--each-node" in text


def test_arrays_go_to_the_agents_free_of_numpys_private_module_names():
    from auditor.model import Case

    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.asfortranarray(np.ones((3, 2))),
              np.array([np.nan, -0.0], np.float16), np.zeros((0, 4), np.int64), np.array(True),
              np.arange(10)[::2]]
    case = Case("c", arrays[0], dim=1)
    data = rayexec.portable({"arrays": arrays, "case": case, "scalar": np.float32(1.5)})
    assert b"numpy._core" not in data and b"numpy.core" not in data and b"multiarray" not in data
    back = rayexec.unportable(data)
    for old, new in zip(arrays, back["arrays"]):
        assert new.dtype == old.dtype and new.shape == old.shape and new.flags.writeable
        np.testing.assert_array_equal(new, old)
    assert back["arrays"][1].flags.f_contiguous
    assert back["scalar"] == np.float32(1.5) and type(back["scalar"]) is np.float32
    assert back["case"].id == "c" and back["case"].values.dtype == np.float32
