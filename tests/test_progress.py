"""The progress line: its share never passes 100%, re-runs decided mid-run included."""
import io

from auditor.model import Observations, Target
from auditor.progress import Progress
from auditor.runner import Group, Plan, Runner


def _shares(display, steps):
    target = Target("numpy", "cpu", "float32")
    shares = []
    for _ in range(steps):
        display.last = float("-inf")  # every update draws
        display.update(target, "c")
        shares.append(display.stream.getvalue().rsplit("\r[", 1)[1].split("]")[0].strip())
    return shares


def test_growing_the_total_keeps_the_share_within_100_percent():
    display = Progress(2, stream=io.StringIO())
    assert _shares(display, 2) == ["50%", "100%"]
    display.grow(2)
    assert _shares(display, 2) == ["75%", "100%"]


def test_the_runner_announces_its_re_runs_before_making_them(monkeypatch):
    plan = Plan(frameworks=["numpy"], explicit_frameworks=True, devices=[], dtypes=["float32"],
                impls=[], cases=[])
    runner = Runner(plan, Observations(cases={}))
    grown, made = [], []
    runner.grow = grown.append
    group = Group("numpy")
    monkeypatch.setattr(runner, "_unsettled", lambda: {group: [("t1", ["a", "b"]), ("t2", ["c"])]})
    monkeypatch.setattr(runner, "_rerun", lambda g, items: made.append((g, items)))
    runner.run({})
    assert grown == [3] and made == [(group, [("t1", ["a", "b"]), ("t2", ["c"])])]
