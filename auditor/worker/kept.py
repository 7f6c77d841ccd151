"""What a worker keeps on disk between runs: compiled executables, in a private folder of the
user's argmax-audit cache that only this user can write (an executable read back is code that
runs), one folder per framework version and machine, each entry written whole or not at all."""
import hashlib
import json
import os
import platform
import shutil
import stat
import time

#: The environment variable naming the folder a worker may keep compiled code in across runs
#: (the driver sets it to <cache>/compiled unless ARGMAX_AUDIT_COMPILE_CACHE is off).
KEEP_ENV = "ARGMAX_AUDIT_KEEP"
#: Folders of other versions or machines kept beside the one in use; older ones are removed
#: once unused for KEEP_IDLE_S (a run with several jax settings uses several folders at once).
KEEP_FOLDERS = 4
KEEP_IDLE_S = 24 * 3600
#: Entries in one folder before the least recently used half is removed (at a worker's start).
KEEP_ENTRIES = 20_000


class Unsafe(Exception):
    """A folder that must not hold code this process will run."""


def private_folder(path):
    """Make folder `path` (mode 0700) and check it: a real folder, no link, owned by this user,
    writable by no one else; and every folder above it, as written and as the links resolve,
    owned by this user or root and writable by no one else unless sticky (else another user
    could put a folder or link of their own in its place). Return `path`; Unsafe otherwise."""
    path = os.path.abspath(path)
    missing = []
    at = path
    while not os.path.lexists(at):
        missing.append(at)
        parent = os.path.dirname(at)
        if parent == at:
            break
        at = parent
    above = at if missing else os.path.dirname(path)
    for folder in {*_ancestors(above), *_ancestors(os.path.realpath(above))}:  # before anything is made
        _check(folder, os.lstat, own=False)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise Unsafe(f"cannot make {folder}: {exc.strerror or exc}") from None
    for folder in [path, *missing]:
        _check(folder, os.lstat, own=True)
    return path


def _ancestors(path):
    """Return `path` and every folder above it."""
    found = [path]
    while os.path.dirname(found[-1]) != found[-1]:
        found.append(os.path.dirname(found[-1]))
    return found


def _check(folder, status, own):
    """Check `folder` (own: one of ours, else one above them, which may be a link root or this
    user made, such as /home/me/.cache pointing elsewhere: where it points is checked too)."""
    try:
        info = status(folder)
    except OSError as exc:
        raise Unsafe(f"cannot read {folder}: {exc.strerror or exc}") from None
    link = stat.S_ISLNK(info.st_mode)
    if own and link or not link and not stat.S_ISDIR(info.st_mode):
        raise Unsafe(f"{folder} is a link or not a folder")
    me = os.geteuid() if hasattr(os, "geteuid") else None
    if me is not None and info.st_uid != me and (own or info.st_uid != 0):
        raise Unsafe(f"{folder} belongs to another user")
    if not link and info.st_mode & 0o022 and (own or not info.st_mode & stat.S_ISVTX):
        raise Unsafe(f"{folder} is writable by other users")


def machine_facts():
    """Return what the code a compiler makes for this CPU depends on, besides the program: the
    processor's model and its instruction set extensions (Linux: /proc/cpuinfo's flags)."""
    facts = {"machine": platform.machine(), "system": platform.system()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("vendor_id", "model name", "cpu family", "model", "flags", "Features",
                           "CPU implementer", "CPU part") and key not in facts:
                    facts[key] = value.strip()
                if not line.strip() and len(facts) > 2:  # the first processor is enough
                    break
    except OSError:  # no /proc: the machine's name stands for its processor
        facts["node"] = platform.node()
        facts["processor"] = platform.processor()
    return facts


def folder_for(base, facts):
    """Return the private folder of `base` for `facts` (a dict: versions, flags, machine), with
    the facts beside the entries for people to read; remove the least recently used folders
    of other facts past KEEP_FOLDERS that no one used for KEEP_IDLE_S. Unsafe where the folder
    cannot be trusted."""
    text = json.dumps(facts, sort_keys=True)
    base = private_folder(base)
    folder = private_folder(os.path.join(base, hashlib.sha256(text.encode()).hexdigest()[:20]))
    facts_file = os.path.join(folder, "facts.json")
    if not os.path.lexists(facts_file):
        write_whole(facts_file, text.encode())
    os.utime(folder)
    _prune_folders(base, folder)
    _prune_entries(folder)
    return folder


def write_whole(path, data):
    """Write `data` to `path` under a temporary name first, then rename: a reader sees all of it
    or none, and a link put at the temporary name is never followed."""
    staged = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{os.getpid()}.{time.monotonic_ns()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(staged, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(staged, path)
    except BaseException:
        try:
            os.unlink(staged)
        except OSError:
            pass
        raise


def _prune_folders(base, keep):
    try:
        folders = [e for e in os.scandir(base) if e.is_dir(follow_symlinks=False) and e.path != keep]
        folders.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
    except OSError:
        return
    for entry in folders[KEEP_FOLDERS - 1:]:
        if time.time() - entry.stat(follow_symlinks=False).st_mtime > KEEP_IDLE_S:
            shutil.rmtree(entry.path, ignore_errors=True)


def _prune_entries(folder):
    """Remove temporaries older than an hour (a worker killed while writing one); past
    KEEP_ENTRIES entries, remove the least recently used half. Another process may remove or
    add entries meanwhile: what is gone is skipped."""
    entries = []
    try:
        for entry in os.scandir(folder):
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.name.startswith(".") and time.time() - info.st_mtime > 3600:
                _unlink(entry.path)
            elif stat.S_ISREG(info.st_mode) and entry.name != "facts.json":
                entries.append((info.st_mtime, entry.path))
    except OSError:
        return
    if len(entries) > KEEP_ENTRIES:
        for _, path in sorted(entries)[:len(entries) - KEEP_ENTRIES // 2]:
            _unlink(path)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


class FolderCache:
    """Entries as files of one folder, each written whole (`write_whole`); no lock and no size
    limit while a run goes on. `touch`: mark an entry used when it is read, so that pruning a
    folder kept across runs removes the least recently used."""

    SUFFIX = "-cache"

    def __init__(self, folder, touch=False):
        import pathlib

        self._path = pathlib.Path(folder)
        self.touch = touch

    def get(self, key):
        path = os.path.join(self._path, f"{key}{self.SUFFIX}")
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except (FileNotFoundError, OSError):
            return None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
        if self.touch:
            try:
                os.utime(path)
            except OSError:
                pass
        return data

    def put(self, key, value):
        """Write the entry, replacing one already there: jax writes only after it found none it
        could read (a damaged one, or one another process has just written, the same)."""
        write_whole(os.path.join(self._path, f"{key}{self.SUFFIX}"), value)
