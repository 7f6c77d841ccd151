"""What a worker keeps between runs (auditor/worker/kept.py): only in private folders of this
user, entries whole or absent, old folders and entries pruned; the driver hands the folder to
workers unless ARGMAX_AUDIT_COMPILE_CACHE is off."""
import json
import os

import pytest

from auditor import envs
from auditor.worker import kept


def test_a_private_folder_is_made_0700_with_its_missing_parents(tmp_path):
    folder = kept.private_folder(tmp_path / "a" / "b")
    assert folder == str(tmp_path / "a" / "b")
    for path in (tmp_path / "a", tmp_path / "a" / "b"):
        assert os.stat(path).st_mode & 0o777 == 0o700


def test_a_link_or_a_folder_others_can_write_is_refused(tmp_path):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(kept.Unsafe, match="link"):
        kept.private_folder(tmp_path / "link")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(kept.Unsafe, match="writable by other users"):
        kept.private_folder(shared)
    (tmp_path / "file").write_text("")
    with pytest.raises(kept.Unsafe, match="not a folder"):
        kept.private_folder(tmp_path / "file")


def test_a_folder_per_facts_holds_them_and_the_oldest_others_go(tmp_path, monkeypatch):
    base = tmp_path / "jax"
    first = kept.folder_for(base, {"jax": "1"})
    assert json.loads(open(os.path.join(first, "facts.json")).read()) == {"jax": "1"}
    assert kept.folder_for(base, {"jax": "1"}) == first
    others = [kept.folder_for(base, {"jax": str(v)}) for v in range(2, 1 + kept.KEEP_FOLDERS)]
    assert first not in others and len(os.listdir(base)) == kept.KEEP_FOLDERS
    for age, folder in enumerate([first, *others]):  # first the oldest
        os.utime(folder, (1000 + age, 1000 + age))
    kept.folder_for(base, {"jax": "new"})
    left = os.listdir(base)
    assert len(left) == kept.KEEP_FOLDERS and os.path.basename(first) not in left
    assert all(os.path.basename(folder) in left for folder in others)
    # a folder used within the last day stays (another process of the run may be using it)
    recent = [os.path.join(base, name) for name in os.listdir(base)]
    for folder in recent:
        os.utime(folder)
    kept.folder_for(base, {"jax": "newer"})
    assert all(os.path.isdir(folder) for folder in recent) and len(os.listdir(base)) == 5


def test_entries_are_whole_and_the_least_used_half_goes_past_the_limit(tmp_path, monkeypatch):
    folder = kept.private_folder(tmp_path / "f")
    cache = kept.FolderCache(folder, touch=True)
    assert cache.get("k") is None
    cache.put("k", b"executable")
    assert cache.get("k") == b"executable"
    assert [n for n in os.listdir(folder)] == ["k-cache"]  # no temporary left
    monkeypatch.setattr(kept, "KEEP_ENTRIES", 4)
    for i in range(6):
        cache.put(f"e{i}", b"x")
        os.utime(os.path.join(folder, f"e{i}-cache"), (2000 + i, 2000 + i))
    os.utime(os.path.join(folder, "k-cache"), (1000, 1000))
    cache.get("e0")  # read: now the most recently used
    kept._prune_entries(folder)
    assert sorted(os.listdir(folder)) == ["e0-cache", "e5-cache"]


def test_a_link_in_the_way_is_never_followed(tmp_path):
    folder = kept.private_folder(tmp_path / "f")
    target = tmp_path / "elsewhere"
    (tmp_path / "f" / "k-cache").symlink_to(target)
    assert kept.FolderCache(folder).get("k") is None  # a link is not read through
    kept.FolderCache(folder).put("k", b"x")  # the link is replaced, not written through
    assert not target.exists() and not os.path.islink(tmp_path / "f" / "k-cache")
    assert kept.FolderCache(folder).get("k") == b"x"


def test_a_damaged_entry_is_written_again():
    """jax writes only after it found no entry it could read: a damaged one is replaced."""
    import tempfile

    with tempfile.TemporaryDirectory() as base:
        folder = kept.private_folder(os.path.join(base, "f"))
        cache = kept.FolderCache(folder)
        cache.put("k", b"trunc")
        cache.put("k", b"the whole executable")
        assert cache.get("k") == b"the whole executable"


def test_a_folder_above_that_others_can_write_is_refused_unless_sticky(tmp_path):
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o775)  # a group member could swap the folder below for one of their own
    with pytest.raises(kept.Unsafe, match="writable by other users"):
        kept.private_folder(team / "cache" / "compiled")
    assert not (team / "cache").exists()  # refused before anything was made there
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp: others cannot rename what is ours
    assert kept.private_folder(sticky / "mine") == str(sticky / "mine")
    (tmp_path / "real").mkdir(mode=0o700)
    (team / "link").symlink_to(tmp_path / "real")  # a link in a folder others can write
    with pytest.raises(kept.Unsafe, match="writable by other users"):
        kept.private_folder(team / "link" / "compiled")


def test_stale_temporaries_go_and_entries_vanishing_meanwhile_are_skipped(tmp_path, monkeypatch):
    folder = kept.private_folder(tmp_path / "f")
    (tmp_path / "f" / ".k-cache.123.456").write_bytes(b"half")
    os.utime(tmp_path / "f" / ".k-cache.123.456", (1000, 1000))
    (tmp_path / "f" / ".j-cache.124.457").write_bytes(b"being written")
    real_scandir = os.scandir

    def vanishing(path):  # another process removes an entry between listing and stat
        entries = list(real_scandir(path))
        os.unlink(tmp_path / "f" / "gone-cache")
        return iter(entries)

    (tmp_path / "f" / "gone-cache").write_bytes(b"x")
    monkeypatch.setattr(os, "scandir", vanishing)
    kept._prune_entries(folder)
    assert os.listdir(folder) == [".j-cache.124.457"]


def test_machine_facts_name_the_processor():
    facts = kept.machine_facts()
    assert facts["machine"]
    if os.path.exists("/proc/cpuinfo"):
        assert "model name" in facts or "Features" in facts or "flags" in facts


def test_the_driver_hands_workers_the_folder_unless_it_is_off(tmp_path, monkeypatch):
    monkeypatch.setenv("ARGMAX_AUDIT_HOME", str(tmp_path))
    monkeypatch.delenv(envs.COMPILE_CACHE_ENV, raising=False)
    assert envs.compiled_folder() == str(tmp_path / "compiled")
    for off in ("off", "0", "False", " no "):
        monkeypatch.setenv(envs.COMPILE_CACHE_ENV, off)
        assert envs.compiled_folder() is None
    monkeypatch.setenv(envs.COMPILE_CACHE_ENV, "on")
    assert envs.compiled_folder() == str(tmp_path / "compiled")


def test_each_worker_started_gets_the_folder(tmp_path, monkeypatch):
    import threading
    from types import SimpleNamespace

    from auditor import runner
    from auditor.worker.kept import KEEP_ENV

    started = []
    monkeypatch.setattr(runner, "WorkerProcess", lambda fw, python=None, env=None: started.append(env))
    fake = SimpleNamespace(lock=threading.Lock(), stopping=threading.Event(), live=set(),
                           shared_folder=lambda group: str(tmp_path / "run"), timing=False)
    group = SimpleNamespace(env={"X": "1"}, framework="jax", python=None)
    monkeypatch.setenv("ARGMAX_AUDIT_HOME", str(tmp_path))
    monkeypatch.delenv(envs.COMPILE_CACHE_ENV, raising=False)
    runner.Runner.spawn(fake, group)
    monkeypatch.setenv(envs.COMPILE_CACHE_ENV, "off")
    runner.Runner.spawn(fake, group)
    assert started[0] == {"X": "1", "ARGMAX_AUDIT_SHARED_CACHE": str(tmp_path / "run"),
                          KEEP_ENV: str(tmp_path / "compiled")}
    assert KEEP_ENV not in started[1] and started[1]["X"] == "1"
