"""Python environments for cross-version audits, and the worker staged to run inside them.

Environments are virtual environments in a cache folder (`envs_folder()`), each with an
`argmax-audit-env.json` that records how it was made and what it holds. The worker package is
copied out as a standalone top-level package (`argmax_audit_worker`) so that any Python >= 3.9
with numpy can run it without argmax-audit installed there.
"""
import collections
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

from . import files
from .errors import UserError

#: The record of an environment, inside its folder.
ENV_FILE = "argmax-audit-env.json"
#: Bump when the record changes incompatibly.
#:  1: name, specs, created, seconds, base_python, installer, probe.
ENV_FORMAT = 1
#: The import name of the staged worker package.
WORKER_PACKAGE = "argmax_audit_worker"
#: The oldest Python and numpy the worker runs on.
MIN_PYTHON = (3, 9)
MIN_NUMPY = (1, 23)
#: The distributions a probe reports besides those each backend names (`distributions`); the
#: probe reads their metadata, never imports them.
_BASE_PROBED = ("numpy",)


def probed():
    """Return the distributions a probe reports: numpy and every registered backend's."""
    from . import registry

    names = list(_BASE_PROBED)
    for backend in registry.backends().values():
        names += [d for d in backend.distributions if d not in names]
    return tuple(names)


def __getattr__(name):
    if name == "PROBED":  # the name other modules and tests know
        return probed()
    raise AttributeError(name)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SPEC_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PROBE_TAG = "ARGMAX_AUDIT_PROBE "
# Runs on any Python (2.7 included) so that a too-old interpreter is named, not misread.
_PROBE = r"""
import json, platform, sys
try:
    from importlib import metadata
except ImportError:
    metadata = None
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = metadata.version(name) if metadata else None
    except Exception:
        found[name] = None
print("ARGMAX_AUDIT_PROBE " + json.dumps({
    "python": platform.python_version(), "version_info": list(sys.version_info[:3]),
    "implementation": platform.python_implementation(), "executable": sys.executable,
    "prefix": sys.prefix, "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "packages": found}))
"""
_WORKER_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker")


def cache_folder():
    """Return the argmax-audit cache: $ARGMAX_AUDIT_HOME, else $XDG_CACHE_HOME/argmax-audit."""
    if os.environ.get("ARGMAX_AUDIT_HOME"):
        return os.path.abspath(os.environ["ARGMAX_AUDIT_HOME"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "argmax-audit")


#: `off` (or 0, false, no) keeps compiled code for one run only (see compiled_folder).
COMPILE_CACHE_ENV = "ARGMAX_AUDIT_COMPILE_CACHE"


def compiled_folder():
    """Return the folder workers keep compiled code in across runs (the cache's `compiled`;
    jax's executables on CPU, see auditor/worker/kept.py), or None where
    $ARGMAX_AUDIT_COMPILE_CACHE is off."""
    if os.environ.get(COMPILE_CACHE_ENV, "").strip().lower() in ("off", "0", "false", "no"):
        return None
    return os.path.join(cache_folder(), "compiled")


def envs_folder():
    """Return the folder that holds the environments (it may not exist yet)."""
    return os.path.join(cache_folder(), "envs")


def check_name(name):
    """Return `name` if it can name an environment; raise UserError otherwise."""
    if not NAME.fullmatch(name or ""):
        raise UserError(f"{name!r} cannot name an environment: use letters, digits, '.', '_' and "
                        "'-', starting with a letter or digit")
    return name


def env_python(folder):
    """Return the interpreter of the virtual environment in `folder`."""
    if os.name == "nt":
        return os.path.join(folder, "Scripts", "python.exe")
    return os.path.join(folder, "bin", "python")


# --- probing interpreters ---------------------------------------------------------------------

def probe(python, timeout=60):
    """Run `python` on a small script; return its version, executable and framework versions.

    Nothing is imported there but the standard library (framework versions come from package
    metadata). Raise UserError when `python` cannot be run or does not answer like Python.
    """
    try:
        done = subprocess.run([python, "-c", _PROBE, *probed()], capture_output=True, text=True,
                              errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"{python} did not answer within {timeout} s") from None
    except OSError as exc:
        raise UserError(f"{python} cannot be run: {exc.strerror or exc}") from None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(_PROBE_TAG):
            try:
                return json.loads(line[len(_PROBE_TAG):])
            except ValueError:
                break
    why = _reason(done.stderr) or f"exit status {done.returncode}"
    raise UserError(f"{python} does not run as Python: {why}")


def check_python(path):
    """Return the probe of interpreter `path` (for `--python`) if the worker can run there.

    It must exist, be executable, run, be Python >= 3.9 and have numpy >= 1.23; raise UserError
    saying which is not so otherwise. A bare name (`python3.9`) is looked up on PATH.
    """
    found = _existing_program(path)
    result = probe(found)
    _require(found, result, numpy=True)
    result["path"] = found
    return result


def _existing_program(path):
    """Return `path` (looked up on PATH if it has no folder) made absolute, if it can be run."""
    if os.sep not in path and "/" not in path and shutil.which(path):
        path = shutil.which(path)
    if not os.path.lexists(path):
        raise UserError(f"interpreter {path} does not exist")
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder; give the interpreter in it (e.g. {env_python(path)})")
    if not os.path.exists(path):
        raise UserError(f"interpreter {path} is a broken link (to {os.readlink(path)})")
    if not os.access(path, os.X_OK):
        raise UserError(f"{path} is not executable")
    return os.path.abspath(path)


def _require(python, result, numpy):
    """Raise UserError unless the probe `result` of `python` is new enough (numpy too if asked)."""
    if tuple(result.get("version_info", (0,)))[:2] < MIN_PYTHON:
        raise UserError(f"{python} is Python {result.get('python', '?')}; the worker needs Python "
                        f">= {_dotted(MIN_PYTHON)}")
    if not numpy:
        return
    version = (result.get("packages") or {}).get("numpy")
    if not version:
        raise UserError(f"{python} has no numpy; install numpy>={_dotted(MIN_NUMPY)} there")
    if _release(version) < MIN_NUMPY:
        raise UserError(f"{python} has numpy {version}; install numpy>={_dotted(MIN_NUMPY)} there")


def _release(version):
    """Return the leading (major, minor) of a version string, (0, 0) when it has none."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _dotted(numbers):
    return ".".join(str(n) for n in numbers)


# --- environments -----------------------------------------------------------------------------

def create(name, specs, progress=print, python=None, replace=False):
    """Make environment `name` with `specs` installed (numpy added if not named); return its record.

    `python` is the base interpreter (default: this one). The environment is built beside the
    others under a hidden name and renamed into place once it works, so a failure (a pip error, a
    bad spec, no network, Ctrl-C) leaves nothing behind; an existing `name` is refused unless
    `replace`. `progress` receives a line per stage and the installer's output.
    """
    check_name(name)
    specs = _with_numpy(list(specs))
    base = _existing_program(python) if python else sys.executable
    _require(base, probe(base), numpy=False)
    folder = envs_folder()
    target = os.path.join(folder, name)
    if os.path.lexists(target) and not replace:
        raise UserError(f"environment {name} exists ({target}); add --replace to build it anew")
    _make_folder(folder)
    sweep(folder)
    building = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
    started = time.monotonic()
    try:
        record = _build(name, specs, base, building, target, progress)
        record["seconds"] = round(time.monotonic() - started, 1)
        _write_record(building, record)
        _move_into_place(building, target, replace)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    progress(f"environment {name} ready in {record['seconds']:g} s: "
             f"{versions_line(record['probe'])}; use it with: audit run --env {name}")
    return _with_location(record, target)


_LEFTOVER = re.compile(r"\..+\.(?:tmp|old|rm)-(\d+)")


def sweep(folder):
    """Delete what dead processes left half-built, half-replaced or half-removed in `folder`."""
    for entry in os.listdir(folder):
        match = _LEFTOVER.fullmatch(entry)
        if match and not process_alive(int(match.group(1))):
            _unlink_tree(os.path.join(folder, entry))


def process_alive(pid):
    """Return whether process `pid` exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, and is another user's
        return True
    return True


def _make_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot make {folder}: {exc.strerror or exc}; set ARGMAX_AUDIT_HOME to a "
                        "folder you can write") from None


def _with_numpy(specs):
    """Return `specs` with "numpy" added unless one of them already names numpy."""
    for spec in specs:
        match = _SPEC_NAME.match(spec)
        if match and re.sub(r"[-_.]+", "-", match.group(1)).lower() == "numpy":
            return specs
    return [*specs, "numpy"]


def _build(name, specs, base, building, target, progress):
    """Make the virtual environment in `building` and install `specs`; return its record."""
    shutil.rmtree(building, ignore_errors=True)
    uv = _uv()
    progress(f"creating environment {name} from {base} in {target}")
    _run(_venv_command(uv, base, building), "creating the virtual environment", progress)
    python = env_python(building)
    progress(f"installing {' '.join(specs)} with {'uv' if uv else 'pip'}")
    _run(_install_command(uv, python, specs), f"installing {' '.join(specs)}", progress)
    progress("probing the environment")
    _relocate(building, target)
    result = probe(python)
    _require(python, result, numpy=True)
    for key in ("executable", "prefix"):  # as they will read once renamed into place
        if str(result.get(key, "")).startswith(building):
            result[key] = target + result[key][len(building):]
    return {"format_version": ENV_FORMAT, "name": name, "specs": specs,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "base_python": base,
            "installer": "uv" if uv else "pip", "probe": result}


def _uv():
    """Return the uv program to build with, or None to use venv and pip.

    ARGMAX_AUDIT_INSTALLER=pip picks pip even where uv is installed (uv does not read pip's
    configuration files); =uv insists on uv.
    """
    choice = os.environ.get("ARGMAX_AUDIT_INSTALLER", "").strip().lower()
    if choice not in ("", "pip", "uv"):
        raise UserError(f"ARGMAX_AUDIT_INSTALLER={choice} is not pip or uv")
    uv = shutil.which("uv") if choice != "pip" else None
    if choice == "uv" and not uv:
        raise UserError("ARGMAX_AUDIT_INSTALLER=uv, but uv is not on PATH")
    return uv


def _venv_command(uv, base, folder):
    if uv:
        return [uv, "venv", "--python", base, folder]
    return [base, "-m", "venv", folder]


def _install_command(uv, python, specs):
    if uv:
        return [uv, "pip", "install", "--python", python, *specs]
    return [python, "-m", "pip", "install", "--progress-bar", "off", *specs]


def _run(argv, what, progress):
    """Run `argv`, streaming its output to `progress`; raise UserError saying why if it fails."""
    tail = collections.deque(maxlen=200)
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, errors="replace")
    except OSError as exc:
        raise UserError(f"{what} failed: cannot run {argv[0]}: {exc.strerror or exc}") from None
    with process:
        try:
            for line in process.stdout:
                line = line.rstrip()
                tail.append(line)
                if line.strip():
                    progress(f"  {line}")
        except BaseException:
            process.kill()
            raise
    if process.returncode:
        why = installer_error(tail) or f"exit status {process.returncode}"
        raise UserError(f"{what} failed: {why}")


def installer_error(lines):
    """Return the line of pip's (or uv's) output that says why it failed, without its prefix."""
    lines = [line.strip() for line in lines if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error:")]
    if errors:
        return errors[-1].split(":", 1)[1].strip()
    for line in reversed(lines):
        if "╰─▶" in line:
            return line.split("╰─▶", 1)[1].strip()
    for line in reversed(lines):
        if not line.lower().startswith(("warning", "hint", "note", "[notice]")):
            return line
    return ""


def _relocate(building, target):
    """Point the scripts and pyvenv.cfg built in `building` at `target`, where it will live."""
    old, new = os.fsencode(building), os.fsencode(target)
    scripts = os.path.dirname(env_python(building))
    paths = [os.path.join(building, "pyvenv.cfg")]
    paths += [os.path.join(scripts, entry) for entry in os.listdir(scripts)]
    for path in paths:
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as handle:
            data = handle.read()
        if old in data:
            with open(path, "wb") as handle:
                handle.write(data.replace(old, new))


def _write_record(folder, record):
    text = json.dumps(record, indent=1).encode()
    files.write_atomic(os.path.join(folder, ENV_FILE), lambda handle: handle.write(text))


def _move_into_place(building, target, replace):
    """Rename `building` to `target`; an old `target` (only when `replace`) is deleted after."""
    old = None
    if replace and os.path.lexists(target):
        folder, name = os.path.split(target)
        old = os.path.join(folder, f".{name}.old-{os.getpid()}")
        _unlink_tree(old)
        os.rename(target, old)
    try:
        os.rename(building, target)
    except OSError as exc:
        if old:
            os.rename(old, target)
        raise UserError(f"cannot put the environment in place at {target}: "
                        f"{exc.strerror or exc}") from None
    if old:
        _unlink_tree(old)


def _unlink_tree(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def list_envs():
    """Return the records of the environments, by name, each with its `path` and `python`.

    A folder without a readable record is listed from a fresh probe; one whose interpreter is
    gone (its base Python was removed) carries `broken` with the reason.
    """
    folder = envs_folder()
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return [_read_env(os.path.join(folder, n)) for n in names
            if NAME.fullmatch(n) and os.path.isdir(os.path.join(folder, n))]


def _read_env(path):
    """Return the record of the environment in `path`, with `path`, `python` and `broken`."""
    name = os.path.basename(path)
    try:
        with open(os.path.join(path, ENV_FILE), encoding="utf-8") as handle:
            record = json.load(handle)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError):
        record = {"name": name, "specs": None, "probe": None}
    record = _with_location(record, path)
    if not os.path.exists(record["python"]):
        record["broken"] = f"its interpreter {record['python']} is gone"
    elif not record.get("probe"):
        try:
            record["probe"] = probe(record["python"])
        except UserError as exc:
            record["broken"] = str(exc)
    return record


def _with_location(record, path):
    return {**record, "name": os.path.basename(path), "path": path, "python": env_python(path)}


def known_names():
    """Return the names of the environments in the cache."""
    return [record["name"] for record in list_envs()]


def _unknown(name):
    names = known_names()
    known = f"known: {', '.join(names)}" if names else "there are none yet"
    return UserError(f"unknown environment {name!r} in {envs_folder()} ({known}; make one with "
                     "'audit env create NAME SPEC...')")


def resolve(name):
    """Return the interpreter of environment `name` (for `audit run --env NAME`)."""
    path = os.path.join(envs_folder(), check_name(name))
    if not os.path.isdir(path) or os.path.islink(path):
        raise _unknown(name)
    python = env_python(path)
    if not os.path.exists(python):
        raise UserError(f"environment {name} is broken: its interpreter {python} is gone (was its "
                        f"base Python removed?); rebuild it with 'audit env create --replace "
                        f"{name} SPEC...'")
    return python


def remove(name):
    """Delete environment `name` from the cache; return the folder it was in.

    Refuse names outside the cache, symbolic links and folders that are not environments.
    """
    folder = envs_folder()
    path = os.path.join(folder, check_name(name))
    if not os.path.lexists(path):
        raise _unknown(name)
    if os.path.islink(path) or not os.path.isdir(path):
        what = "symbolic link" if os.path.islink(path) else "file"
        raise UserError(f"{path} is not an environment made by argmax-audit (it is a {what}); "
                        "remove it yourself")
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(folder):
        raise UserError(f"{path} lies outside {folder}; remove it yourself")
    if not any(os.path.isfile(os.path.join(path, f)) for f in (ENV_FILE, "pyvenv.cfg")):
        raise UserError(f"{path} is not an environment (no {ENV_FILE} or pyvenv.cfg); remove it "
                        "yourself")
    doomed = os.path.join(folder, f".{name}.rm-{os.getpid()}")
    os.rename(path, doomed)  # gone at once for everyone; the files are deleted after
    shutil.rmtree(doomed, ignore_errors=True)
    return path


def versions_line(result):
    """Return "Python 3.9.18 · numpy 1.24.4 · torch 2.1.0" for probe `result` (installed only)."""
    if not result:
        return "not probed"
    packages = result.get("packages") or {}
    found = [f"{name} {packages[name]}" for name in probed() if packages.get(name)]
    return " · ".join([f"Python {result.get('python', '?')}", *found])


def _reason(stderr):
    """Return the line of `stderr` that says why: a traceback's last, else the first."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if "Traceback (most recent call last):" in lines else lines[0]


# --- the worker in another interpreter ----------------------------------------------------------

def worker_sources():
    """Return {path relative to auditor/worker: bytes} of the worker package's Python files."""
    sources = {}
    for folder, dirs, names in os.walk(_WORKER_SOURCE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for file in sorted(names):
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                relative = os.path.relpath(path, _WORKER_SOURCE).replace(os.sep, "/")
                with open(path, "rb") as handle:
                    sources[relative] = handle.read()
    return sources


def worker_home():
    """Return a folder holding the worker as the standalone package `argmax_audit_worker`.

    The folder is named after a hash of the worker's sources and reused while they are unchanged;
    it is staged under a hidden name and renamed into place, so it is complete or absent.
    """
    sources = worker_sources()
    digest = hashlib.sha256()
    for relative, data in sorted(sources.items()):
        digest.update(relative.encode() + b"\0" + data + b"\0")
    home = os.path.join(cache_folder(), f"worker-{digest.hexdigest()[:16]}")
    with _STAGING:  # the runner starts workers from several threads; one stages, the rest reuse
        return _stage(home, sources)


#: Held while this process stages the worker (its staging folder is named by the process id).
_STAGING = threading.Lock()


def _stage(home, sources):
    if os.path.isfile(os.path.join(home, WORKER_PACKAGE, "__main__.py")):
        return home
    _make_folder(cache_folder())
    sweep(cache_folder())
    staging = os.path.join(cache_folder(), f".{os.path.basename(home)}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _write_sources(os.path.join(staging, WORKER_PACKAGE), sources)
        os.rename(staging, home)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if not os.path.isfile(os.path.join(home, WORKER_PACKAGE, "__main__.py")):
            # not a lost race with another process that staged the same sources
            raise UserError(f"cannot stage the worker in {home}: {exc.strerror or exc}; set "
                            "ARGMAX_AUDIT_HOME to a folder you can write") from None
    return home


def _write_sources(package, sources):
    for relative, data in sources.items():
        path = os.path.join(package, *relative.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        files.write_atomic(path, lambda handle, data=data: handle.write(data))


def worker_command(python):
    """Return (argv, extra_env) that start the worker in interpreter `python`.

    Merge `extra_env` into the user's environment (it prepends the staged worker to PYTHONPATH).
    """
    paths = [worker_home(), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return [python, "-m", WORKER_PACKAGE], {"PYTHONPATH": os.pathsep.join(paths)}
