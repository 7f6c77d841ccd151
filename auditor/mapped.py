"""Large arrays kept in files that the driver and every worker map, never copied through pipes.

A large input is read memory-mapped from the user's own file where its bytes are already float32
(or whatever the case's source dtype is); otherwise it is converted once, in row blocks, into a
temporary file of this driver, which is mapped in turn. Workers map the same file copy-on-write
(`auditor/worker/protocol.py` `map_array`), so the machine holds one physical copy in the page
cache however many workers read it.

Temporary files live in one folder per driver process, `<root>/<pid>-<start>-<random>` (`start`:
when the process started, in clock ticks after boot, so that a reused pid is told apart); the
root is `argmax-audit-maps-<uid>` (private to the user) in `$ARGMAX_AUDIT_MAP_DIR` or the system's
temporary folder. The folder is removed when the driver exits (normally or by Ctrl-C) and each
file as soon as the array mapping it is collected; a folder left by a driver that was killed
(kill -9) is removed by the next driver that makes its own, once no process of that pid (and
start) is alive.
"""
import atexit
import contextlib
import math
import mmap
import os
import re
import shutil
import stat
import tempfile
import threading
import weakref

import numpy as np

from .errors import UserError
from .files import amount

ROOT_ENV = "ARGMAX_AUDIT_MAP_DIR"
#: Arrays of at least this many bytes are mapped rather than read or sent through a pipe.
MAP_BYTES = 1 << 20
#: The most bytes converted at once when a temporary file is written.
BLOCK_BYTES = 16 << 20
#: Free space left on the temporary folder's file system after a conversion.
SPARE_BYTES = 256 << 20

_lock = threading.Lock()
_folder = None


def root():
    """Return the folder that holds the drivers' folders (see the module's docstring)."""
    where = os.environ.get(ROOT_ENV, "").strip() or tempfile.gettempdir()
    return os.path.join(os.path.abspath(where), f"argmax-audit-maps-{os.getuid()}")


def folder():
    """Return this driver's folder for temporary array files, made (and stale ones of dead
    drivers removed) on first use, removed when this process exits."""
    global _folder
    with _lock:
        if _folder is None or _folder[0] != os.getpid():  # a forked child makes its own
            base = private_root(root())
            remove_stale(base)
            path = tempfile.mkdtemp(prefix=f"{os.getpid()}-{started(os.getpid())}-", dir=base)
            atexit.register(shutil.rmtree, path, True)
            _folder = (os.getpid(), path)
        return _folder[1]


def private_root(path):
    """Make folder `path` (mode 0700) unless it exists; refuse a link, a non-folder or a folder
    of another user, so that nothing is written through a link or where others can swap files."""
    with contextlib.suppress(FileExistsError):
        os.makedirs(path, mode=0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise UserError(f"the folder for temporary array files {path} is a link, not a folder, "
                        f"another user's, or writable by others; remove it or set {ROOT_ENV}")
    return path


def remove_stale(base):
    """Remove the folders in `base` of drivers whose process is gone (`<pid>-<start>-...`)."""
    for name in os.listdir(base):
        found = re.fullmatch(r"(\d+)-(\d+)-\w+", name)
        if found and int(found[1]) != os.getpid() and not alive(int(found[1]), found[2]):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def alive(pid, start=""):
    """Return True while a process `pid` exists (of any user) that started at `start` (where the
    system says, and `start` is given)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = started(pid)
    return not (start.isdigit() and now and int(start) != now)


def started(pid):
    """Return when process `pid` started, in clock ticks after boot (Linux), else 0."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def new_file(suffix):
    """Return (the path, an open binary file) of a new file in this driver's folder."""
    handle, path = tempfile.mkstemp(suffix=suffix, dir=folder())
    return path, os.fdopen(handle, "wb")


def check_space(nbytes, what):
    """Refuse writing `nbytes` to the temporary folder when its file system lacks the room."""
    free = shutil.disk_usage(folder()).free
    if nbytes + SPARE_BYTES > free:
        raise UserError(f"{what} needs {amount(nbytes)} of temporary space, but the file system "
                        f"of {folder()} has {amount(free)} free; set {ROOT_ENV} to a folder "
                        "with more room")


def open_mapped(path, dtype, shape, offset=0, order="C"):
    """Return a read-only plain array view of `shape` mapping file `path` from `offset`."""
    return np.asarray(np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape),
                                order=order))


def write_blocks(blocks, shape, what, nbytes):
    """Write the float32 arrays `blocks` (C order, together `shape`) into a temporary file of
    `nbytes` and return a read-only array mapping it, the file removed once that is collected."""
    check_space(nbytes, what)
    path, handle = new_file(".f32")
    try:
        with handle:
            for block in blocks:
                handle.write(np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
                             .view(np.uint8).data)
        values = np.memmap(path, dtype=np.float32, mode="r", shape=tuple(shape))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    weakref.finalize(values, unlink, path)
    return np.asarray(values)


def to_float32_file(values, what, convert=None, itemsize=None):
    """Return `values` (a numpy array, or a torch tensor with `convert` and `itemsize`)
    converted to float32 (`convert(block)`, default `astype`) into a temporary mapped file, a
    block of rows at a time: no copy of the whole input in memory."""
    convert = convert or (lambda block: block.astype(np.float32))
    shape = tuple(values.shape)
    itemsize = itemsize or values.dtype.itemsize
    row_bytes = max(1, math.prod(shape[1:]) * max(itemsize, 4))
    step = max(1, BLOCK_BYTES // row_bytes)
    blocks = (convert(values[i:i + step]) for i in range(0, shape[0], step))
    with np.errstate(over="ignore"):  # float64 overflow to inf is counted by the caller
        return write_blocks(blocks, shape, what, 4 * math.prod(shape))


def unlink(path):
    with contextlib.suppress(OSError):
        os.unlink(path)


def file_ref(values):
    """Return (path, byte offset, (size, mtime_ns)) of the file `values` maps, or None when
    `values` is no C-contiguous view of a whole mapped file region (an in-memory array)."""
    memmap = values
    while memmap is not None and not isinstance(memmap, np.memmap):
        memmap = getattr(memmap, "base", None)
    if memmap is None or memmap.filename is None or not values.flags.c_contiguous:
        return None
    region = getattr(memmap, "_mmap", None)
    if not isinstance(region, mmap.mmap) or region.closed:
        return None
    start = memmap.offset - memmap.offset % mmap.ALLOCATIONGRANULARITY
    first = np.frombuffer(region, dtype=np.uint8).__array_interface__["data"][0]
    offset = start + values.__array_interface__["data"][0] - first
    info = os.stat(memmap.filename)
    return memmap.filename, offset, (info.st_size, info.st_mtime_ns)


def write_raw(values):
    """Return a read-only mapping of a temporary file holding C-ordered `values` as they are."""
    values = np.asarray(values)
    check_space(values.nbytes, "handing a large case to the workers")
    path, handle = new_file(".raw")
    try:
        with handle:
            flat = values.reshape(-1) if values.flags.c_contiguous else None
            if flat is not None:
                step = max(1, BLOCK_BYTES // max(1, values.itemsize))
                for i in range(0, flat.size, step):
                    handle.write(flat[i:i + step].view(np.uint8).data)
            else:
                handle.write(np.ascontiguousarray(values).tobytes())
        kept = np.memmap(path, dtype=values.dtype, mode="r", shape=values.shape)
    except BaseException:
        unlink(path)
        raise
    weakref.finalize(kept, unlink, path)
    return kept
