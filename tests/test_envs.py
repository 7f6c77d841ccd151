"""Environments for cross-version audits: the cache, `audit env`, and the worker staged for them."""
import ast
import glob
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner

from auditor import envs, registry
from auditor.envcmd import env
from auditor.errors import UserError
from auditor.worker.protocol import (
    PROTOCOL_VERSION,
    PayloadWriter,
    read_array,
    read_message,
    write_message,
)

WORKER = pathlib.Path(envs.__file__).resolve().parent / "worker"


def _pyenv(version):
    """Return an interpreter of Python `version` ("3.9") on this machine, or None."""
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    return candidates[0] if candidates else shutil.which(f"python{version}")


PYTHON39 = _pyenv("3.9")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Point the cache at an empty `tmp_path/home`; return its envs folder."""
    monkeypatch.setenv("ARGMAX_AUDIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "envs"


def fake_env(folder, name, python=sys.executable, record=True):
    """Make a folder that looks like an environment made by `create`; return it."""
    path = folder / name
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(python)
    (path / "pyvenv.cfg").write_text("home = /usr/bin\n")
    if record:
        probe = {"python": "3.11.7", "version_info": [3, 11, 7],
                 "packages": {"numpy": "1.26.4", "torch": None, "jax": "0.4.30"}}
        (path / envs.ENV_FILE).write_text(json.dumps(
            {"format_version": 1, "name": name, "specs": ["numpy==1.26.4", "jax"], "probe": probe}))
    return path


def fake_python(folder, body, name="python"):
    """Write an executable shell script `name` in `folder` running `body`; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def probe_says(python="3.11.7", numpy="2.0.0"):
    """Return a shell command printing what the probe of such an interpreter prints."""
    info = {"python": python, "version_info": [int(p) for p in python.split(".")],
            "implementation": "CPython", "executable": "/x/python",
            "packages": {"numpy": numpy}}
    return f"echo 'ARGMAX_AUDIT_PROBE {json.dumps(info)}'"


def invoke(*args, **kwargs):
    """Run `env ARGS` registered on a throwaway group, as the lead will on `audit`."""

    @click.group()
    def root():
        pass

    root.add_command(env)
    return CliRunner().invoke(root, ["env", *args], **kwargs)


def user_error(result):
    """Return the one-line message of the UserError that `result` (of `invoke`) ended with."""
    assert isinstance(result.exception, UserError), (result.output, result.exception)
    message = str(result.exception)
    assert "\n" not in message
    return message


def converse(python, messages, cwd):
    """Start the staged worker in `python`, send `messages`, return every (header, payload) back."""
    argv, extra_env = envs.worker_command(python)
    stream = io.BytesIO()
    for header, payload in messages:
        write_message(stream, header, payload)
    write_message(stream, {"op": "bye"})
    done = subprocess.run(argv, input=stream.getvalue(), capture_output=True, timeout=120,
                          cwd=cwd, env={**os.environ, **extra_env})
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    replies, out = [], io.BytesIO(done.stdout)
    while out.tell() < len(done.stdout):
        replies.append(read_message(out))
    return replies


def hello(framework="numpy"):
    return {"op": "hello", "framework": framework, "protocol": PROTOCOL_VERSION}, b""


def audit_of(python, cwd, dtypes=("float32", "float16", "float64")):
    """Return the hello reply and {(dtype, case id): indices} of a few cases run in `python`."""
    writer = PayloadWriter()
    x = np.array([[1, 3, 3, np.nan], [2, 2, 1, 0], [-np.inf, 0.0, -0.0, 5e-45]], np.float32)
    layouts = ("contiguous", "transposed", "strided", "broadcast")
    cases = [{"id": layout, "dim": 1, "keepdim": False, "layout": layout, "array": writer.add(x)}
             for layout in layouts]
    messages = [hello(), ({"op": "cases", "cases": cases}, writer.payload())]
    messages += [({"op": "run", "target": {"dtype": dtype, "device": "cpu"}, "repeats": 2,
                   "cases": list(layouts)}, b"") for dtype in dtypes]
    replies = converse(python, messages, cwd)
    assert all(h["ok"] for h, _ in replies if h["op"] == "reply"), replies
    results = [(h, p) for h, p in replies if h["op"] == "result"]
    indices = {}
    for i, (header, payload) in enumerate(results):
        (outcome,) = header["outcomes"]
        indices[dtypes[i // len(layouts)], header["case"]] = read_array(
            payload, outcome["indices"]).tolist()
    return replies[0][0], indices


def expected(dtype, layout):
    """Return the first maximizers of `audit_of`'s rows (float16 flushes 5e-45 to a tied 0)."""
    if layout == "broadcast":
        return [3, 3, 3]  # every row is the first one
    return [3, 0, 1] if dtype == "float16" else [3, 0, 3]


def assert_first_maximizers(indices):
    assert len(indices) == 12
    for (dtype, layout), found in indices.items():
        assert found == expected(dtype, layout), (dtype, layout)


# --- names and the cache folder ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["np126", "torch-2.1", "a", "Py3.9_numpy1.24"])
def test_good_names_pass(name):
    assert envs.check_name(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "..", "-x", "a/b", "../up", "a b", "ü", "x\n"])
def test_bad_names_are_one_line(name):
    with pytest.raises(UserError, match="cannot name an environment") as info:
        envs.check_name(name)
    assert "\n" not in str(info.value).replace(repr(name), "")


def test_cache_folder_follows_the_environment_variables(monkeypatch, tmp_path):
    monkeypatch.delenv("ARGMAX_AUDIT_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert envs.envs_folder() == str(tmp_path / ".cache" / "argmax-audit" / "envs")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert envs.envs_folder() == str(tmp_path / "xdg" / "argmax-audit" / "envs")
    monkeypatch.setenv("ARGMAX_AUDIT_HOME", str(tmp_path / "mine"))
    assert envs.envs_folder() == str(tmp_path / "mine" / "envs")


# --- list, resolve, remove ----------------------------------------------------------------------

def test_list_resolve_and_remove(home):
    fake_env(home, "b")
    fake_env(home, "a")
    (home / ".c.tmp-123").mkdir()  # a build in progress is not listed
    (home / "notes.txt").write_text("")
    assert [r["name"] for r in envs.list_envs()] == ["a", "b"]
    assert envs.list_envs()[0]["probe"]["packages"]["numpy"] == "1.26.4"
    assert envs.resolve("a") == str(home / "a" / "bin" / "python")
    assert envs.remove("a") == str(home / "a")
    assert not (home / "a").exists() and envs.known_names() == ["b"]
    assert not [p for p in home.iterdir() if p.name.startswith(".a.")]


def test_unknown_names_list_the_known_ones(home):
    with pytest.raises(UserError, match="there are none yet"):
        envs.resolve("nope")
    fake_env(home, "np126")
    fake_env(home, "py39")
    for action in (envs.resolve, envs.remove):
        with pytest.raises(UserError, match=r"unknown environment 'nope' .*known: np126, py39"):
            action("nope")


def test_a_folder_without_record_is_probed(home):
    fake_env(home, "bare", record=False)
    (record,) = envs.list_envs()
    assert record["specs"] is None  # an empty virtual environment: no numpy there
    assert record["probe"]["prefix"] == str(home / "bare")
    assert record["probe"]["python"] == sys.version.split()[0]
    assert record["probe"]["packages"]["numpy"] is None


def test_a_broken_environment_says_so(home, tmp_path):
    fake_env(home, "gone", python=str(tmp_path / "removed-python"))
    (record,) = envs.list_envs()
    assert "is gone" in record["broken"]
    with pytest.raises(UserError, match="environment gone is broken: .* --replace"):
        envs.resolve("gone")


def test_remove_refuses_what_is_not_an_environment(home, tmp_path):
    outside = tmp_path / "precious"
    (outside / "bin").mkdir(parents=True)
    (outside / "pyvenv.cfg").write_text("")
    home.mkdir(parents=True)
    (home / "link").symlink_to(outside)
    (home / "plain").mkdir()
    (home / "file").write_text("")
    with pytest.raises(UserError, match="symbolic link"):
        envs.remove("link")
    with pytest.raises(UserError, match="no argmax-audit-env.json or pyvenv.cfg"):
        envs.remove("plain")
    with pytest.raises(UserError, match="it is a file"):
        envs.remove("file")
    with pytest.raises(UserError, match="cannot name"):
        envs.remove("../precious")
    with pytest.raises(UserError, match="unknown environment"):
        envs.resolve("link")  # a link is not followed out of the cache
    assert (outside / "pyvenv.cfg").exists() and (home / "plain").exists()


# --- interpreters -------------------------------------------------------------------------------

def test_this_python_passes_and_is_probed_without_imports():
    result = envs.check_python(sys.executable)
    assert result["path"] == os.path.abspath(sys.executable)
    assert result["python"] == ".".join(map(str, sys.version_info[:3]))
    assert result["packages"]["numpy"] == np.__version__
    assert set(result["packages"]) == set(envs.PROBED)


@pytest.mark.parametrize("body, message", [
    (probe_says(python="3.8.18"), "is Python 3.8.18; the worker needs Python >= 3.9"),
    (probe_says(numpy=None), "has no numpy; install numpy>=1.23 there"),
    (probe_says(numpy="1.21.6"), "has numpy 1.21.6; install numpy>=1.23 there"),
    ("echo 'Python is not here' >&2; exit 1", "does not run as Python: Python is not here"),
    ("echo garbage", "does not run as Python: exit status 0"),
    ("printf 'pyenv: python3.9: command not found\\n\\nNote: see pyenv help\\n' >&2; exit 127",
     "does not run as Python: pyenv: python3.9: command not found$"),
    ("printf 'Traceback (most recent call last):\\n  x\\nImportError: no site\\n' >&2; exit 1",
     "does not run as Python: ImportError: no site$"),
])
def test_unusable_interpreters_are_named(tmp_path, body, message):
    python = fake_python(tmp_path, body)
    with pytest.raises(UserError, match=message) as info:
        envs.check_python(python)
    assert str(info.value).startswith(python) and "\n" not in str(info.value)


def test_a_good_fake_interpreter_passes(tmp_path):
    python = fake_python(tmp_path, probe_says(numpy="1.23.0"))
    assert envs.check_python(python)["python"] == "3.11.7"


def test_interpreters_that_cannot_run(tmp_path, monkeypatch):
    folder = tmp_path / "py"
    script = fake_python(folder, probe_says())
    with pytest.raises(UserError, match="does not exist"):
        envs.check_python(str(tmp_path / "missing"))
    with pytest.raises(UserError, match=r"is a folder; give the interpreter in it \(e.g. .*bin"):
        envs.check_python(str(folder))
    os.chmod(script, 0o644)
    with pytest.raises(UserError, match="is not executable"):
        envs.check_python(script)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="broken link"):
        envs.check_python(str(tmp_path / "dangling"))
    os.chmod(script, 0o755)
    monkeypatch.setenv("PATH", str(folder), prepend=os.pathsep)
    assert envs.check_python("python")["path"] == script  # a bare name is looked up on PATH


@pytest.mark.parametrize("version", ["2.7", "3.6", "3.8"])
def test_real_old_pythons_are_refused_by_version(version):
    python = _pyenv(version)
    if not python:
        pytest.skip(f"no Python {version} here")
    with pytest.raises(UserError, match=f"is Python {version}.* needs Python >= 3.9"):
        envs.check_python(python)


def test_a_python_without_numpy_is_refused():
    if not PYTHON39 or envs.probe(PYTHON39)["packages"]["numpy"]:
        pytest.skip("needs a Python 3.9 without numpy")
    with pytest.raises(UserError, match="has no numpy; install numpy>=1.23 there"):
        envs.check_python(PYTHON39)


# --- create, with the installer faked ---------------------------------------------------------

class FakeInstaller:
    """Stand in for `envs._run`: venv makes a folder linked to `python`, pip prints or fails."""

    def __init__(self, python=sys.executable, fail=None, interrupt=False):
        self.python, self.fail, self.interrupt = python, fail, interrupt
        self.commands = []

    def __call__(self, argv, what, progress):
        self.commands.append(argv)
        if argv[1:3] == ["-m", "venv"]:
            folder = pathlib.Path(argv[-1])
            (folder / "bin").mkdir(parents=True)
            (folder / "bin" / "python").symlink_to(self.python)
            (folder / "bin" / "tool").write_text(f"#!{folder}/bin/python\nimport tool\n")
            (folder / "pyvenv.cfg").write_text("include-system-site-packages = true\n"
                                              f"command = python -m venv {folder}\n")
            return
        progress("  Successfully installed numpy-1.26.4")
        if self.interrupt:
            raise KeyboardInterrupt
        if self.fail:
            raise UserError(f"{what} failed: {self.fail}")


@pytest.fixture
def installer(monkeypatch):
    fake = FakeInstaller()
    monkeypatch.setattr(envs, "_run", fake)
    monkeypatch.setattr(envs, "_uv", lambda: None)
    return fake


def leftovers(home):
    return sorted(p.name for p in home.iterdir() if p.name.startswith("."))


def test_create_builds_aside_and_renames_into_place(home, installer):
    lines = []
    record = envs.create("np", ["numpy==1.26.4", "jax"], progress=lines.append)
    target = home / "np"
    assert record["path"] == str(target) and record["python"] == str(target / "bin" / "python")
    saved = json.loads((target / envs.ENV_FILE).read_text())
    assert saved["specs"] == ["numpy==1.26.4", "jax"] and saved["installer"] == "pip"
    assert saved["base_python"] == sys.executable and saved["probe"]["packages"]["numpy"]
    assert installer.commands[1][1:] == ["-m", "pip", "install", "--progress-bar", "off",
                                         "numpy==1.26.4", "jax"]
    assert (target / "bin" / "tool").read_text().startswith(f"#!{target}/bin/python\n")
    assert f"venv {target}\n" in (target / "pyvenv.cfg").read_text()
    assert leftovers(home) == []
    assert lines[0].startswith("creating environment np from") and lines[1].startswith("installing")
    assert "  Successfully installed numpy-1.26.4" in lines
    assert lines[-1].startswith("environment np ready in") and "audit run --env np" in lines[-1]


@pytest.mark.parametrize("specs, expected", [
    (["torch==2.1.0"], ["torch==2.1.0", "numpy"]),
    (["NumPy>=1.26"], ["NumPy>=1.26"]),
    (["numpy @ https://example.org/numpy.whl"], ["numpy @ https://example.org/numpy.whl"]),
    (["numpy-financial"], ["numpy-financial", "numpy"]),
    ([], ["numpy"]),
])
def test_numpy_is_always_installed(specs, expected):
    assert envs._with_numpy(specs) == expected


def test_an_existing_name_is_kept_unless_replaced(home, installer):
    envs.create("np", [], progress=lambda line: None)
    (home / "np" / "marker").write_text("old")
    with pytest.raises(UserError, match="environment np exists .* --replace"):
        envs.create("np", [], progress=lambda line: None)
    assert (home / "np" / "marker").exists()
    envs.create("np", [], progress=lambda line: None, replace=True)
    assert not (home / "np" / "marker").exists() and leftovers(home) == []


@pytest.mark.parametrize("fake", [FakeInstaller(fail="No matching distribution found for nump"),
                                  FakeInstaller(interrupt=True),
                                  FakeInstaller(python="/nonexistent/python")])
def test_a_failed_create_leaves_nothing_and_keeps_the_old_one(home, monkeypatch, fake):
    monkeypatch.setattr(envs, "_uv", lambda: None)
    monkeypatch.setattr(envs, "_run", FakeInstaller())
    envs.create("np", [], progress=lambda line: None)
    (home / "np" / "marker").write_text("old")
    monkeypatch.setattr(envs, "_run", fake)
    with pytest.raises((UserError, KeyboardInterrupt)):
        envs.create("np", [], progress=lambda line: None, replace=True)
    with pytest.raises((UserError, KeyboardInterrupt)):
        envs.create("other", [], progress=lambda line: None)
    assert (home / "np" / "marker").exists()
    assert sorted(p.name for p in home.iterdir()) == ["np"]


def test_create_refuses_an_environment_the_worker_cannot_use(home, monkeypatch, tmp_path):
    old_numpy = fake_python(tmp_path, probe_says(numpy="1.21.6"))
    monkeypatch.setattr(envs, "_run", FakeInstaller(python=old_numpy))
    monkeypatch.setattr(envs, "_uv", lambda: None)
    with pytest.raises(UserError, match="has numpy 1.21.6; install numpy>=1.23"):
        envs.create("np", ["numpy==1.21.6"], progress=lambda line: None)
    assert list(home.iterdir()) == []
    too_old = fake_python(tmp_path / "old", probe_says(python="3.8.18"))
    with pytest.raises(UserError, match="is Python 3.8.18"):
        envs.create("np", [], progress=lambda line: None, python=too_old)


def test_uv_is_used_where_installed(home, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: f"/opt/{name}" if name == "uv" else None)
    assert envs._venv_command(envs._uv(), "/py", "/e")[:2] == ["/opt/uv", "venv"]
    assert envs._install_command(envs._uv(), "/e/bin/python", ["numpy"]) == [
        "/opt/uv", "pip", "install", "--python", "/e/bin/python", "numpy"]
    monkeypatch.setenv("ARGMAX_AUDIT_INSTALLER", "pip")
    assert envs._uv() is None


def test_the_installers_reason_is_the_message(home):
    script = ("import sys\nprint('Collecting numpy==0.0.1')\n"
              "print('ERROR: Could not find a version that satisfies the requirement')\n"
              "print('ERROR: No matching distribution found for numpy==0.0.1', file=sys.stderr)\n"
              "print('[notice] A new release of pip is available')\nsys.exit(1)\n")
    lines = []
    with pytest.raises(UserError) as info:
        envs._run([sys.executable, "-c", script], "installing numpy==0.0.1", lines.append)
    assert str(info.value) == ("installing numpy==0.0.1 failed: No matching distribution found "
                               "for numpy==0.0.1")
    assert "  Collecting numpy==0.0.1" in lines
    uv = ["  × No solution found when resolving dependencies:",
          "  ╰─▶ Because there is no version of numpy==0.0.1 and you require numpy==0.0.1, "
          "we can conclude that your requirements are unsatisfiable."]
    assert envs.installer_error(uv).startswith("Because there is no version of numpy==0.0.1")
    assert envs.installer_error(["error: Failed to parse: `nump y`", "hint: x"]) == (
        "Failed to parse: `nump y`")
    with pytest.raises(UserError, match="cannot run /nonexistent/pip"):
        envs._run(["/nonexistent/pip"], "installing", lines.append)


# --- the staged worker --------------------------------------------------------------------------

def test_the_worker_is_staged_once_and_reused(home, monkeypatch):
    staged = pathlib.Path(envs.worker_home())
    package = staged / envs.WORKER_PACKAGE
    for relative, data in envs.worker_sources().items():
        assert (package / relative).read_bytes() == data
    assert (package / "__main__.py").exists() and (package / "backends" / "np_backend.py").exists()
    assert not [p for p in home.parent.iterdir() if p.name.startswith(".")]

    def no_copy(*args):
        raise AssertionError("staged again")

    monkeypatch.setattr(envs, "_write_sources", no_copy)
    assert envs.worker_home() == str(staged)
    argv, extra_env = envs.worker_command("/py")
    assert argv == ["/py", "-m", "argmax_audit_worker"]
    assert extra_env["PYTHONPATH"].split(os.pathsep)[0] == str(staged)


def test_leftovers_of_dead_processes_are_swept(home, installer):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    home.mkdir(parents=True)
    names = [f".np.tmp-{dead}", f".old.old-{dead}", f".gone.rm-{dead}", f".np.tmp-{os.getpid()}",
             f".busy.tmp-{os.getppid()}", ".keep"]
    for name in names:
        (home / name / "bin").mkdir(parents=True)
    envs.create("np", [], progress=lambda line: None)
    assert leftovers(home) == [".busy.tmp-" + str(os.getppid()), ".keep"]


def test_staging_is_all_or_nothing(home, monkeypatch):
    real = envs._write_sources

    def half(package, sources):
        real(package, dict(list(sources.items())[:1]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(envs, "_write_sources", half)
    with pytest.raises(UserError, match="cannot stage the worker in .*No space left"):
        envs.worker_home()
    assert list(home.parent.iterdir()) == []


def test_staging_lost_to_another_process_uses_its_copy(home, monkeypatch):
    real = envs._write_sources

    def racing(package, sources):
        real(package, sources)
        staging = os.path.dirname(package)  # .worker-HASH.tmp-PID; another process wins:
        winner = os.path.join(os.path.dirname(staging), os.path.basename(staging)[1:].split(".")[0])
        shutil.copytree(staging, winner)

    monkeypatch.setattr(envs, "_write_sources", racing)
    staged = envs.worker_home()
    assert os.path.isfile(os.path.join(staged, envs.WORKER_PACKAGE, "__main__.py"))
    assert [p.name for p in home.parent.iterdir()] == [os.path.basename(staged)]


def test_changed_sources_get_another_folder(home, monkeypatch, tmp_path):
    first = envs.worker_home()
    copy = tmp_path / "worker"
    shutil.copytree(WORKER, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(envs, "_WORKER_SOURCE", str(copy))
    assert envs.worker_home() == first  # same sources, same folder
    (copy / "casting.py").write_text((copy / "casting.py").read_text() + "\n# changed\n")
    assert envs.worker_home() != first


def test_the_staged_worker_runs_standalone_here(home, tmp_path):
    reply, indices = audit_of(sys.executable, cwd=tmp_path)
    assert reply["ok"] and reply["protocol"] == PROTOCOL_VERSION
    assert reply["numpy"] == np.__version__
    assert_first_maximizers(indices)


@pytest.mark.parametrize("path", sorted(WORKER.rglob("*.py")), ids=lambda p: p.name)
def test_the_worker_is_python39_syntax(path):
    tree = ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))
    newer = {"pairwise", "bit_count", "stdlib_module_names", "aiter", "anext", "TypeAlias",
             "ParamSpec", "EncodingWarning", "orig_argv"}
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        assert not (isinstance(node, ast.Attribute) and node.attr in newer), where
        assert not (isinstance(node, ast.Name) and node.id in newer), where
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "zip":
            assert "strict" not in [k.arg for k in node.keywords], where
        annotations = [getattr(node, "returns", None), getattr(node, "annotation", None)]
        for annotation in filter(None, annotations):  # X | Y fails when 3.9 evaluates it
            assert not any(isinstance(n, ast.BinOp) for n in ast.walk(annotation)), where
        if isinstance(node, ast.ImportFrom):
            assert node.level > 0 or node.module.split(".")[0] != "auditor", where


# --- the `audit env` commands -------------------------------------------------------------------

def test_env_list_shows_a_table(home):
    result = invoke("list")
    assert result.exit_code == 0 and "no environments in" in result.output
    fake_env(home, "np126")
    fake_env(home, "other-env", record=False)
    lines = invoke("list").output.splitlines()
    # a column per registered backend (numpy, torch, jax, then the others installed)
    others = list(registry.backends())[3:]
    assert lines[0].split() == ["name", "Python", "numpy", "torch", "jax", *others, "specs", "path"]
    assert lines[1].split() == ["np126", "3.11.7", "1.26.4", "-", "0.4.30", *["-"] * len(others),
                                "numpy==1.26.4", "jax", str(home / "np126")]
    assert lines[2].split()[:5] == ["other-env", sys.version.split()[0], "-", "-", "-"]
    assert lines[1].index("3.11.7") == lines[0].index("Python")  # columns line up


def test_env_path_and_remove(home):
    fake_env(home, "np126")
    result = invoke("path", "np126")
    assert result.exit_code == 0 and result.output == f"{home / 'np126' / 'bin' / 'python'}\n"
    assert invoke("remove", "np126").output == f"removed np126 ({home / 'np126'})\n"
    assert "unknown environment 'np126'" in user_error(invoke("path", "np126"))


def test_env_create_through_the_command(home, installer):
    result = invoke("create", "np", "numpy==1.26.4")
    assert result.exit_code == 0, result.output
    assert "installing numpy==1.26.4 with pip" in result.output
    assert "environment np ready" in result.output
    assert "exists" in user_error(invoke("create", "np", "numpy==1.26.4"))
    assert invoke("create", "np", "--replace").exit_code == 0
    assert "cannot name" in user_error(invoke("create", "../np", "numpy"))
    assert "does not exist" in user_error(invoke("create", "x", "numpy", "--python", "/nope"))


def test_env_help_names_every_command():
    result = invoke("--help")
    for command in ("create", "list", "remove", "path"):
        assert command in result.output


def test_mistakes_are_one_line_at_the_audit_edge(audit, helpers, monkeypatch, tmp_path):
    from auditor import cli

    monkeypatch.setenv("ARGMAX_AUDIT_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(cli.cli.commands, "env", env)
    line = helpers.one_line_error(audit("env", "path", "nope"))
    assert "unknown environment 'nope'" in line
    helpers.one_line_error(audit("env", "remove", ".."))


# --- real environments (pip, the network or its caches) -----------------------------------------

@pytest.fixture(scope="session")
def real_home(tmp_path_factory):
    """An argmax-audit cache for the session, holding the environments the slow tests make."""
    return tmp_path_factory.mktemp("argmax-audit-home")


def _create(home, *args):
    result = invoke("create", *args, env={"ARGMAX_AUDIT_HOME": str(home)})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.fixture(scope="session")
def np126(real_home):
    """Create environment np126 (this Python, numpy 1.26.4) once; return the command's output."""
    return _create(real_home, "np126", "numpy==1.26.4")


@pytest.fixture(scope="session")
def py39(real_home):
    """Create environment py39 (Python 3.9, numpy 1.24.4) once; return the command's output."""
    if not PYTHON39:
        pytest.skip("no Python 3.9 here")
    return _create(real_home, "py39", "numpy==1.24.4", "--python", PYTHON39)


@pytest.mark.slow
def test_a_real_environment_is_listed_and_runs_the_worker(np126, real_home, monkeypatch,
                                                          tmp_path):
    monkeypatch.setenv("ARGMAX_AUDIT_HOME", str(real_home))
    assert "environment np126 ready" in np126 and "numpy 1.26.4" in np126.splitlines()[-1]
    row = next(line for line in invoke("list").output.splitlines() if line.startswith("np126 "))
    assert row.split()[2:3] == ["1.26.4"] and "numpy==1.26.4" in row
    python = invoke("path", "np126").output.strip()
    assert python == envs.resolve("np126") and envs.check_python(python)
    reply, indices = audit_of(python, cwd=tmp_path)
    assert reply["numpy"] == "1.26.4" and reply["executable"] == python
    assert_first_maximizers(indices)


@pytest.mark.slow
def test_python39_runs_the_staged_worker(py39, real_home, monkeypatch, tmp_path):
    monkeypatch.setenv("ARGMAX_AUDIT_HOME", str(real_home))
    python = envs.resolve("py39")
    record = next(r for r in envs.list_envs() if r["name"] == "py39")
    assert record["probe"]["python"].startswith("3.9.") and record["base_python"] == PYTHON39
    reply, indices = audit_of(python, cwd=tmp_path)
    print("hello from Python 3.9:", reply)
    assert reply["python"].startswith("3.9.") and reply["numpy"] == "1.24.4"
    assert_first_maximizers(indices)


@pytest.mark.slow
def test_a_spec_that_cannot_install_leaves_nothing(real_home):
    result = invoke("create", "bad", "numpy==0.0.1", env={"ARGMAX_AUDIT_HOME": str(real_home)})
    message = user_error(result)
    assert message.endswith("No matching distribution found for numpy==0.0.1"), message
    assert not [p for p in (real_home / "envs").iterdir() if "bad" in p.name]
