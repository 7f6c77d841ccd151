"""Files that may come from someone else, read within bounds; outputs written without following links.

Bundles, baselines, policies and input files travel between machines and people. Everything read
here is a regular file (a FIFO, device or folder is refused at once: reading one could block
forever), and every bound is decided before the bytes are read or inflated: the file's size, each
archive member's size as declared and as inflated, their total, the nesting depth of a JSON
document. The bounds follow the memory available now (`ARGMAX_AUDIT_MEMORY_LIMIT` overrides it)
and every refusal says which bound and how large it is.

Outputs are written to a temporary file in the destination's folder and renamed over it: a link
at the destination is replaced, never written through, and a reader never sees half a file.
"""
import json
import math
import os
import re
import stat
import tempfile
import zipfile
import zlib

import numpy as np

from .errors import BundleError, UserError

#: The default memory limit when neither /proc/meminfo nor sysconf says what is available.
FALLBACK_LIMIT = 8 * 2**30
#: Overrides the memory limit (bytes, or with a K, M or G suffix): for small CI machines and tests.
LIMIT_VARIABLE = "ARGMAX_AUDIT_MEMORY_LIMIT"
#: The deepest nesting of lists and objects a JSON document may have (results hold about 8).
MAX_JSON_DEPTH = 64
#: The most members an archive may list (a bundle holds one per case and per distinct answer).
MAX_MEMBERS = 2**18
#: Python objects of a parsed JSON document take this many times its size, at most (measured: ~6).
JSON_GROWTH = 16

_UMASK = os.umask(0)
os.umask(_UMASK)
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def amount(nbytes):
    """Return `nbytes` in words: '1.5 GiB', '12.0 MiB', '3.0 KiB' or '100 bytes'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} bytes"


class Limit:
    """A memory bound in bytes and how to name it in an error: '11.2 GiB (half the memory
    available now)'."""

    def __init__(self, nbytes, why):
        self.bytes, self.why = int(nbytes), why

    def __str__(self):
        return f"{amount(self.bytes)} ({self.why})"

    def words(self):
        """Name the limit as a memory limit: 'the 11.2 GiB memory limit (half the memory ...)'."""
        return f"the {amount(self.bytes)} memory limit ({self.why})"

    def part(self, divisor, what):
        return Limit(self.bytes // divisor, f"1/{divisor} of {self.why}, for {what}")


def memory_limit():
    """Return the Limit on what one file may take in memory: half the memory available now."""
    given = os.environ.get(LIMIT_VARIABLE, "").strip()
    if given:
        found = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", given, re.IGNORECASE)
        if not found:
            raise UserError(f"{LIMIT_VARIABLE}={given!r} is not a size (bytes, or like 512M, 2G)")
        unit = (found.group(2) or " ")[0].upper()
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(unit, 1)
        return Limit(int(found.group(1)) * scale, LIMIT_VARIABLE)
    return Limit(available_memory() // 2, "half the memory available now")


def available_memory():
    """Return the memory available now: /proc/meminfo, else sysconf, else FALLBACK_LIMIT * 2."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return FALLBACK_LIMIT * 2


def document_limit():
    """Return the Limit on a JSON or TOML document's size (parsed, it takes many times that)."""
    return memory_limit().part(JSON_GROWTH, "a document's parsed objects")


# --- reading ---------------------------------------------------------------------------------


def kind_of(mode):
    """Return what a file of `mode` is, in words, unless it is a regular file (then None)."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path, what, error=UserError):
    """Open `path` for reading in binary if it is a regular file; else raise `error` in one line.

    Opened without blocking, so a FIFO is refused instead of waiting for a writer forever."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{what} {printable(path)}: cannot read it: {exc.strerror or exc}") from None
    kind = kind_of(os.fstat(fd).st_mode)
    if kind:
        os.close(fd)
        raise error(f"{what} {printable(path)} is {kind}, not a regular file")
    return os.fdopen(fd, "rb")


def read_bytes(path, what, limit, error=UserError):
    """Return the bytes of regular file `path`, refusing one larger than Limit `limit`."""
    with open_regular(path, what, error) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit.bytes:
            raise error(f"{what} {printable(path)} takes {amount(size)}, more than the "
                        f"{limit} a document may take")
        data = handle.read(limit.bytes + 1)
    if len(data) > limit.bytes:
        raise error(f"{what} {printable(path)} grew past {limit} while being read")
    return data


def json_depth(data):
    """Return the deepest nesting of arrays and objects in JSON text `data` (bytes), found
    without parsing: strings are blanked, then brackets counted."""
    skeleton = np.frombuffer(_STRINGS.sub(b'""', data), dtype=np.uint8)
    steps = (np.isin(skeleton, (ord("["), ord("{"))).astype(np.int32)
             - np.isin(skeleton, (ord("]"), ord("}"))).astype(np.int32))
    return int(np.cumsum(steps).max(initial=0))


def _no_constant(name):
    raise ValueError(f"{name} is not JSON (non-finite numbers are spelled as strings here)")


def load_json(data, source, error=BundleError):
    """Parse JSON `data` (bytes) from `source`, its depth bounded first; `error` in one line."""
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{source} nests {depth} levels deep, more than the {MAX_JSON_DEPTH} a "
                    "document may have")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise error(f"{source} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{source} is unreadable or truncated: {one_line(exc)}") from None


def printable(text):
    """Return `text` with unprintable characters escaped, so that it stays on one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace")
                   .decode("ascii") for c in str(text))


def one_line(error):
    """Return the first line of `error` (an exception or text), printable, at most 200 chars."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    text = printable(re.sub(r"\x1b\[[0-9;]*m", "", text))
    return text if len(text) <= 200 else text[:197] + "..."


# --- .npy members of .npz archives -----------------------------------------------------------


def npy_header(handle):
    """Return (shape, dtype) from the .npy header at `handle`, which is left at the data."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version in ((2, 0), (3, 0)):  # 3.0 only differs in utf-8 field names
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"unknown .npy format version {version}")
    if any(size < 0 for size in shape):
        raise ValueError(f"shape {shape} has a negative size")
    return shape, dtype


def shape_problem(shape, nbytes, limit_words):
    """Say what is wrong with array `shape` (None if nothing): a size no index type holds, or an
    empty array (a zero among its sizes) whose other sizes span more positions than `nbytes` of
    int64 indices hold (an answer keeps those dims). `limit_words` names the limit."""
    if any(size >= 2**62 for size in shape):
        return f"shape {tuple(shape)} has a size past 2^62"
    positions = math.prod(size for size in shape if size) if shape else 1
    if math.prod(shape) == 0 and positions * 8 > nbytes:  # else the data itself is bounded
        return (f"shape {tuple(shape)} spans {positions:,} positions; their int64 indices "
                f"alone would take more than {limit_words}")
    return None


def read_npz(path, what, kinds="biuf", text_members=(), limit=None, error=BundleError):
    """Return {name: array} of the .npz archive `path`, every bound checked before inflating.

    Members must be .npy arrays of dtype kinds `kinds` (names in `text_members` may hold a
    string), their declared sizes within `limit` together, their headers within their declared
    size; nothing is unpickled.
    """
    limit = limit or memory_limit()
    with open_regular(path, what, error) as handle:
        try:
            end = zipfile._EndRecData(handle)  # the count of members, before any is listed
            if end and end[zipfile._ECD_ENTRIES_TOTAL] > MAX_MEMBERS:
                raise error(f"{what} {printable(path)} lists {end[zipfile._ECD_ENTRIES_TOTAL]:,} "
                            f"members, more than the {MAX_MEMBERS:,} an archive may hold")
            with zipfile.ZipFile(handle) as archive:
                infos = [info for info in archive.infolist() if not info.is_dir()]
                total = sum(info.file_size for info in infos)
                if total > limit.bytes:
                    raise error(f"{what} {printable(path)} inflates to {amount(total)}, more than "
                                f"{limit.words()}")
                headers = [_member(archive, info, what, path, kinds, text_members, limit, error)
                           for info in infos]
                arrays = {}
                for info, name in headers:
                    with archive.open(info) as stream:
                        arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
                return arrays
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError,
                NotImplementedError) as exc:
            raise error(f"{what} {printable(path)} is unreadable or truncated: "
                        f"{type(exc).__name__}: {one_line(exc)}") from None


def _member(archive, info, what, path, kinds, text_members, limit, error):
    """Return (info, array name) of one .npz member, its .npy header checked against bounds."""
    name = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else None
    where = f"{what} {printable(path)}, member {printable(info.filename)!r}"
    if name is None:
        raise error(f"{where} is not a .npy array")
    with archive.open(info) as stream:
        shape, dtype = npy_header(stream)
        offset = stream.tell()
    allowed = kinds + ("U" if name in text_members else "")
    if dtype.kind not in allowed or dtype.fields is not None or dtype.hasobject:
        raise error(f"{where} holds dtype {dtype}, not one of the kinds {allowed!r} it must hold")
    problem = shape_problem(shape, limit.bytes, limit.words())
    if problem:
        raise error(f"{where}: {problem}")
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes > info.file_size:
        raise error(f"{where} is truncated: its header says {nbytes} bytes of data, the member "
                    f"holds {info.file_size - offset}")
    return info, name


# --- writing ---------------------------------------------------------------------------------


def write_atomic(path, write, streams=False):
    """Write a file at `path` through `write(binary handle)`: into a temporary file in the same
    folder, then renamed over `path`. A link at `path` is replaced, not followed. With `streams`
    (a path the user named), a stream at `path` (a pipe, /dev/stdout, /dev/null) is written into
    as it is; else it is replaced too. A folder is refused. OSError where the folder cannot take
    the file."""
    try:
        mode = os.stat(path).st_mode  # follows a link: /dev/stdout is one
    except OSError:
        mode = None
    if streams and mode is not None and (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        with open(os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)), "wb") as handle:
            write(handle)
        return
    if mode is not None and stat.S_ISDIR(mode) and not os.path.islink(path):
        raise IsADirectoryError(21, "it is a folder", path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are for others to read too
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text, what, streams=True):
    """Write `text` (UTF-8) to `path` with `write_atomic`; UserError in one line if it cannot."""
    data = text.encode("utf-8", "backslashreplace")
    try:
        write_atomic(path, lambda handle: handle.write(data), streams)
    except OSError as exc:
        raise UserError(f"cannot write the {what} to {printable(path)}: "
                        f"{exc.strerror or exc}") from None


def same_place(a, b):
    """True when paths `a` and `b` name the same place once links are resolved (either may not
    exist yet)."""
    try:
        if os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)
