"""Users' input files (.npy, .npz, .pt/.pth, .safetensors) read into cases without running code."""
import contextlib
import importlib
import json
import math
import os
import re
import sys
import warnings
import weakref
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from . import files, mapped
from .errors import UserError
from .files import amount, npy_header, one_line, printable
from .model import Case
from .worker.casting import family

SUPPORTED = (".npy", ".npz", ".pt", ".pth", ".safetensors")
#: The most levels of dicts and lists a .pt file may nest its tensors in.
MAX_DEPTH = 64
#: The most dicts, lists and tuples a .pt file's tensors are read through.
MAX_CONTAINERS = 100_000
#: The name of a storage's record in a .pt zip (torch.save writes them uncompressed).
STORAGE = re.compile(r"[^/]+/data/[^/]+")
#: The largest safetensors header read (the format's own reader refuses larger ones too).
MAX_SAFETENSORS_HEADER = 100_000_000

#: safetensors dtype -> (numpy dtype of the stored bytes, itemsize, name said in notes).
SAFETENSORS_DTYPES = {
    "F64": ("<f8", 8, "float64"), "F32": ("<f4", 4, "float32"), "F16": ("<f2", 2, "float16"),
    "BF16": ("<u2", 2, "bfloat16"), "F8_E4M3": ("float8_e4m3fn", 1, "float8_e4m3fn"),
    "F8_E5M2": ("float8_e5m2", 1, "float8_e5m2"),
    "I64": ("<i8", 8, "int64"), "I32": ("<i4", 4, "int32"), "I16": ("<i2", 2, "int16"),
    "I8": ("i1", 1, "int8"), "U64": ("<u8", 8, "uint64"), "U32": ("<u4", 4, "uint32"),
    "U16": ("<u2", 2, "uint16"), "U8": ("u1", 1, "uint8"), "BOOL": ("?", 1, "bool"),
}
#: Integer dtypes whose every value float32 holds exactly.
EXACT_INTS = ("int8", "uint8", "int16", "uint16")
#: Why an array of a numpy dtype kind is no input for argmax.
NOT_NUMERIC = {
    "b": "bool values, not scores",
    "c": "complex numbers, which have no order",
    "O": "Python objects, which are not unpickled (that could run code)",
    "U": "strings", "S": "bytes strings", "M": "datetimes", "m": "timedeltas",
    "V": "raw bytes or records (a bfloat16 array saved from ml_dtypes looks like this: "
         "save it as float32 or .safetensors)",
}


def load_inputs(paths, dim=-1, limit_bytes=None):
    """Return one `Case` per array in the files `paths`, argmax taken along `dim`.

    `dim` is checked against every array (None reduces each array whole; 0-d arrays always are).
    `limit_bytes` caps the memory the arrays may take in this process: a small array (under
    `mapped.MAP_BYTES`) decoded and as its float32 copy, a large one (memory-mapped, see
    auditor/mapped.py) by its answers, 8 bytes per output position; by default half the memory
    available. Raise UserError, one line naming the file, for anything unreadable.
    """
    budget = Budget(default_limit() if limit_bytes is None else limit_bytes, limit_bytes is None)
    given = {}
    for path in map(os.fspath, paths):
        given.setdefault(os.path.abspath(path), path)  # a file given twice is read once
    names = short_names(list(given))
    cases = []
    for path, as_given in given.items():
        source = Source(as_given, names[path])
        for key, values, dtype_name, origin in read_file(source, budget):
            cases.append(make_case(source, key, values, dtype_name, dim, origin, budget))
    return unique_ids(cases)


def array_cases(arrays, dim=-1, limit_bytes=None):
    """Return one `Case` per array given in memory (numpy, torch, jax: what np.asarray takes),
    ids `user:array0`, `user:array1`, ...; checked and converted as files are."""
    budget = Budget(default_limit() if limit_bytes is None else limit_bytes, limit_bytes is None)
    cases = []
    for i, value in enumerate(arrays):
        source = Source(f"inputs[{i}]", f"array{i}")
        values, dtype_name = in_memory(source, value)
        budget.reserve_float32(source, None, tuple(values.shape))
        cases.append(make_case(source, None, values, dtype_name, dim))
    return unique_ids(cases)


def in_memory(source, value):
    """Return (a numpy array of `value`, its dtype name); narrow floats of torch and ml_dtypes
    (bfloat16, float8) widened exactly."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return tensor_values(source, None, value.cpu())
    try:
        values = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - whatever np.asarray refuses, said in one line
        raise source.error(f"is no array: {one_line(exc)}") from None
    name = values.dtype.name
    if values.dtype.kind == "V" and name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        return values.astype(np.float32), name
    return values, name


@dataclass
class Source:
    """One input file: the path as the user gave it and the name its case ids use."""

    path: str
    name: str

    def where(self, key=None):
        """Name the file (and array `key` in it) for an error message."""
        text = self.path if self.path.startswith("inputs[") else f"--input {printable(self.path)}"
        return text if key is None else f"{text}, array {printable(key)!r}"

    def error(self, problem, key=None):
        return UserError(f"{self.where(key)}: {problem}")


class Budget:
    """The memory the inputs may take, and the float32 copies reserved so far."""

    def __init__(self, limit, default):
        self.limit = limit
        self.default = default
        self.reserved = 0

    def describe(self):
        text = f"the {amount(self.limit)} memory limit"
        return text + f" ({files.memory_limit().why})" if self.default else text

    def check_decoded(self, source, nbytes, what="its arrays take"):
        """Refuse `source` when its arrays, decoded, take more than the limit."""
        if nbytes > self.limit:
            raise source.error(f"{what} {amount(nbytes)}, more than {self.describe()}")

    def reserve_answers(self, source, key, shape, dim):
        """Reserve the answers (int64 per output position) to a mapped array of `shape` reduced
        along `dim`, refusing them past the limit: its values stay in the file, not in memory."""
        problem = files.shape_problem(shape, self.limit, self.describe())
        if problem:
            raise source.error(problem, key)
        need = 8 * (math.prod(shape) // shape[dim] if dim is not None and shape[dim] else 1)
        if self.reserved + need > self.limit:
            raise source.error(f"its answers take {amount(need)} (8 bytes per output position), "
                               f"more than {self.describe()}", key)
        self.reserved += need

    def reserve_float32(self, source, key, shape):
        """Reserve the float32 copy of an array of `shape`, refusing it past the limit, and
        refusing a shape whose answers or reductions would not fit (even where it is empty)."""
        problem = files.shape_problem(shape, self.limit, self.describe())
        if problem:
            raise source.error(problem, key)
        need = 4 * math.prod(shape)
        if self.reserved + need > self.limit:
            before = f" ({amount(self.reserved + need)} with the inputs before it)" \
                if self.reserved else ""
            raise source.error(f"its float32 copy takes {amount(need)}{before}, more than "
                               f"{self.describe()}", key)
        self.reserved += need


def default_limit():
    """Return half the memory available now (or ARGMAX_AUDIT_MEMORY_LIMIT), in bytes."""
    return files.memory_limit().bytes


def short_names(paths):
    """Return {path: the shortest trailing part of `path` no other of `paths` ends with}."""
    parts = {p: p.replace(os.sep, "/").split("/") for p in paths}
    names = {}
    for path, mine in parts.items():
        for depth in range(1, len(mine) + 1):
            name = "/".join(mine[-depth:])
            if not any(o != path and "/".join(other[-depth:]) == name
                       for o, other in parts.items()):
                break
        names[path] = name
    return names


def unique_ids(cases):
    """Return `cases`, a repeated id suffixed '#2', '#3', ... in order of appearance."""
    seen = set()
    for case in cases:
        base, number = case.id, 1
        while case.id in seen:
            number += 1
            case.id = f"{base}#{number}"
        seen.add(case.id)
    return cases


def read_file(source, budget):
    """Yield (key or None, numpy array, dtype name, origin) for every array in `source`: origin
    None where the array was read into memory, else where its mapped values come from (see
    `Case.origin`)."""
    extension = os.path.splitext(source.path)[1].lower()
    reader = READERS.get(extension)
    if reader is None:
        raise source.error(f"unknown file type {printable(extension) or '(no extension)'!r}; "
                           f"--input reads {', '.join(SUPPORTED)}")
    with files.open_regular(source.path, "--input") as handle:  # no FIFO, device or folder
        size = os.fstat(handle.fileno()).st_size
    found = False
    for item in reader(source, budget, size):
        found = True
        yield item if len(item) == 4 else (*item, None)
    if not found:
        raise source.error("holds no arrays")


def make_case(source, key, values, dtype_name, dim, origin=None, budget=None):
    """Return the case of array `values` (key `key` of `source`), converted to float32: in
    memory, or for a mapped array (`origin` given) in a temporary file unless it is float32."""
    check_numeric(source, key, values.dtype)
    shape = tuple(values.shape)
    case_dim = resolve_dim(source, key, shape, dim)
    if origin is None:
        floats, conversion = to_float32(values, dtype_name)
    else:
        if budget is not None:
            budget.reserve_answers(source, key, shape, case_dim)
        floats, conversion = mapped_float32(source, key, values, dtype_name)
    where = source.path if key is None else f"{source.path}, array {key!r}"
    note = f"from {printable(where)}: {dtype_name}, shape {shape}{conversion}"
    case_id = f"user:{source.name}" if key is None else f"user:{source.name}:{key}"
    return Case(printable(case_id), floats, dim=case_dim, tags=("user",), note=note,
                origin=dict(origin_of(source, key), dtype=dtype_name,
                            offset=origin["offset"] if origin else None))


def origin_of(source, key):
    """Return where the array `key` of `source` came from (its sha256 is added by auditor/lean)."""
    if source.path.startswith("inputs["):
        return {"path": None, "size": None, "format": "array", "key": None, "offset": None}
    return {"path": os.path.abspath(source.path), "size": os.path.getsize(source.path),
            "format": os.path.splitext(source.path)[1].lower(), "key": key, "offset": None}


def own_dtypes(cases, asked):
    """Return the dtypes `asked` for plus the float16 and bfloat16 of inputs stored in those
    types, so each is audited in its own dtype too; where one is added, every case runs in the
    dtypes asked for, and an input of it in its own as well."""
    extra = list(dict.fromkeys(c.origin.get("dtype") for c in cases if c.origin
                               and c.origin.get("dtype") in ("float16", "bfloat16")
                               and c.origin.get("dtype") not in asked))
    if not asked or not extra:
        return asked
    for case in cases:
        own = [case.origin["dtype"]] if case.origin and case.origin.get("dtype") in extra else []
        allowed = tuple(d for d in asked if family(d) == case.family) + tuple(own)
        if allowed and not case.dtypes:
            case.dtypes = allowed
    return [*asked, *extra]


def mapped_float32(source, key, values, dtype_name):
    """Return (mapped `values` as float32, a note on how exact that was): the mapping itself
    where it holds C-ordered native float32, else a temporary file converted block by block."""
    if values.dtype == np.float32 and values.dtype.isnative and mapped.file_ref(values):
        floats = values
    else:
        floats = mapped.to_float32_file(values, f"converting {source.where(key)} to float32")
    return floats, conversion_note(values, floats, dtype_name)


def check_numeric(source, key, dtype):
    """Refuse arrays of `dtype` that hold no real numbers (int or float)."""
    if dtype.kind not in "iuf" or dtype.fields is not None:
        why = NOT_NUMERIC.get(dtype.kind, f"values of dtype {dtype}")
        raise source.error(f"holds {why}; argmax needs real numbers (int or float)", key)


def resolve_dim(source, key, shape, dim):
    """Return the dim argmax takes on an array of `shape`: `dim`, checked, or None for 0-d."""
    if dim is None or not shape:
        return None
    if not -len(shape) <= dim < len(shape):
        raise source.error(f"dim {dim} (--input-dim) is out of range for shape {shape}: pass "
                           f"one from {-len(shape)} to {len(shape) - 1}", key)
    return dim


def to_float32(values, dtype_name):
    """Return (`values` as a new C-ordered float32 array, a note on how exact that was)."""
    with np.errstate(over="ignore"):  # overflow is counted below
        floats = values.astype(np.float32, order="C", copy=False)
    if not floats.flags.writeable:  # a view of the file's bytes
        floats = floats.copy()
    return floats, conversion_note(values, floats, dtype_name)


def conversion_note(values, floats, dtype_name):
    """Return the note on how exactly `floats` (float32) hold `values` (of `dtype_name`)."""
    if dtype_name == "float32":
        return ""
    if values.dtype.kind == "f" and values.dtype.itemsize <= 4 or dtype_name in EXACT_INTS:
        return "; converted to float32 exactly"
    rounded, overflowed = count_rounded(values, floats)
    if not rounded:
        return "; converted to float32 exactly"
    extra = f" ({overflowed} overflowed to inf)" if overflowed else ""
    return f"; converted to float32, {rounded} of {values.size} values rounded{extra}"


def count_rounded(values, floats):
    """Return how many of `values` their float32 copy `floats` changed, and made infinite."""
    rounded = overflowed = 0
    chunks = np.nditer([values, floats], flags=["external_loop", "buffered", "zerosize_ok"],
                       buffersize=2**16)
    with np.errstate(invalid="ignore", over="ignore"), chunks:
        for chunk, chunk_floats in chunks:
            same = chunk_floats.astype(values.dtype) == chunk
            if values.dtype.kind == "f":
                same |= np.isnan(chunk) & np.isnan(chunk_floats)
                overflowed += int(np.count_nonzero(np.isinf(chunk_floats) & ~np.isinf(chunk)))
            rounded += chunk.size - int(np.count_nonzero(same))
    return rounded, overflowed


# --- .npy and .npz ---------------------------------------------------------------------------


def array_bytes(shape, dtype):
    return math.prod(shape) * dtype.itemsize


def read_npy(source, budget, size):
    """Yield the one array of a .npy file, its header checked before the data is read."""
    with open(source.path, "rb") as handle:
        with translated(source, ".npy"):
            shape, dtype = npy_header(handle)
        check_numeric(source, None, dtype)
        nbytes, offset = array_bytes(shape, dtype), handle.tell()
        if size - offset < nbytes:
            raise source.error(f"is truncated: its header says {nbytes} bytes of data, "
                               f"the file holds {size - offset}")
        if nbytes >= mapped.MAP_BYTES:
            yield None, map_npy(source, shape, dtype), dtype.name, mapped_at(offset)
            return
        budget.check_decoded(source, nbytes)
        budget.reserve_float32(source, None, shape)
        handle.seek(0)
        with translated(source, ".npy"):
            yield None, np.lib.format.read_array(handle, allow_pickle=False), dtype.name


def map_npy(source, shape, dtype):
    """Return the data of .npy file `source` (header `shape` and `dtype`, checked) mapped."""
    with translated(source, ".npy"):
        values = np.load(source.path, mmap_mode="r", allow_pickle=False)
    if values.shape != tuple(shape) or values.dtype != dtype:
        raise source.error("changed while being read")
    return values


def mapped_at(offset):
    """Return what a reader says of an array it mapped: where its data lies in the file (None
    where it was extracted or converted into a temporary file)."""
    return {"offset": offset}


def read_npz(source, budget, size):
    """Yield every array of an .npz file, all headers checked before any data is read."""
    with translated(source, ".npz (zip)"), zipfile.ZipFile(source.path) as archive:
        members = [npz_member(source, archive, info)
                   for info in archive.infolist() if not info.is_dir()]
        small = [m for m in members if array_bytes(m[2], m[3]) < mapped.MAP_BYTES]
        budget.check_decoded(source, sum(array_bytes(s, d) for _, _, s, d in small))
        for _, key, shape, _ in small:
            budget.reserve_float32(source, key, shape)
        budget.check_decoded(source, sum(i.file_size for i, _, s, d in members if i.compress_type
                                         and array_bytes(s, d) >= mapped.MAP_BYTES),
                             what="its large compressed members, extracted to disk, take")
        for info, key, shape, dtype in members:
            with archive.open(info) as stream:
                if array_bytes(shape, dtype) < mapped.MAP_BYTES:
                    yield key, np.lib.format.read_array(stream, allow_pickle=False), dtype.name
                    continue
                fortran = npy_fortran(stream)
                offset = stored_offset(source, info, stream.tell(), size, shape, dtype)
                if offset is None:
                    values = extract_npy(source, key, stream, shape, dtype, fortran)
                else:
                    values = np.memmap(source.path, dtype=dtype, mode="r", offset=offset,
                                       shape=tuple(shape), order="F" if fortran else "C")
                yield key, values, dtype.name, mapped_at(offset)


def npy_fortran(stream):
    """Read the (checked) .npy header at `stream`; return True if its data is in Fortran order."""
    version = np.lib.format.read_magic(stream)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
        np.lib.format.read_array_header_2_0
    return read(stream)[1]


def stored_offset(source, info, header, size, shape, dtype):
    """Return where in `source` the data of stored (uncompressed) member `info` lies, after its
    .npy header of `header` bytes; None for a compressed or encrypted member."""
    if info.compress_type or info.flag_bits & 0x1:
        return None
    with open(source.path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        return None
    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
        int.from_bytes(local[28:30], "little")
    offset = start + header
    return offset if offset + array_bytes(shape, dtype) <= size else None


def extract_npy(source, key, stream, shape, dtype, fortran):
    """Return the data of the .npy member at `stream` (after its header; `shape`, `dtype`,
    checked), copied once into a temporary file and mapped from there (a compressed zip member
    cannot be mapped)."""
    nbytes = array_bytes(shape, dtype)
    mapped.check_space(nbytes, f"extracting {source.where(key)}")
    path, handle = mapped.new_file(".raw")
    try:
        with handle:
            left = nbytes
            while left:
                data = stream.read(min(left, mapped.BLOCK_BYTES))
                if not data:
                    raise source.error("is truncated: it changed while being read", key)
                handle.write(data)
                left -= len(data)
    except BaseException:
        mapped.unlink(path)
        raise
    values = np.memmap(path, dtype=dtype, mode="r", shape=tuple(shape), order="F" if fortran else "C")
    weakref.finalize(values, mapped.unlink, path)
    return values


def npz_member(source, archive, info):
    """Return (info, key, shape, dtype) of a member of an .npz `archive`, from its header."""
    if not info.filename.endswith(".npy"):
        raise source.error(f"member {printable(info.filename)!r} is not a .npy array")
    key = info.filename[: -len(".npy")]
    with archive.open(info) as stream:
        shape, dtype = npy_header(stream)
        offset = stream.tell()
    check_numeric(source, key, dtype)
    if offset + array_bytes(shape, dtype) > info.file_size:
        raise source.error(f"is truncated: its header says {array_bytes(shape, dtype)} bytes "
                           f"of data, the member holds {info.file_size - offset}", key)
    return info, key, shape, dtype


@contextlib.contextmanager
def translated(source, kind):
    """Turn what numpy and zipfile raise on a damaged `kind` file into one UserError line."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError,
            RuntimeError, OSError) as exc:
        if isinstance(exc, ValueError) and "allow_pickle" in str(exc):
            raise source.error(f"holds {NOT_NUMERIC['O']}") from None
        raise source.error(f"not a valid {kind} file: {one_line(exc)}") from None


# --- .safetensors ----------------------------------------------------------------------------


@dataclass
class Tensor:
    """One entry of a safetensors header, validated."""

    key: str
    dtype: str
    shape: tuple
    begin: int
    end: int


def read_safetensors(source, budget, size):
    """Yield every array of a .safetensors file, parsed by hand and checked before reading."""
    with open(source.path, "rb") as handle:
        tensors, start = safetensors_header(source, handle, size)
        for tensor in tensors:
            if tensor.dtype == "BOOL":
                check_numeric(source, tensor.key, np.dtype(bool))
        small = [t for t in tensors if t.end - t.begin < mapped.MAP_BYTES]
        budget.check_decoded(source, sum(t.end - t.begin for t in small))
        for tensor in small:
            budget.reserve_float32(source, tensor.key, tensor.shape)
        for tensor in tensors:
            if tensor.end - tensor.begin >= mapped.MAP_BYTES:
                yield map_safetensor(source, tensor, start, size)
                continue
            handle.seek(start + tensor.begin)
            data = handle.read(tensor.end - tensor.begin)
            if len(data) != tensor.end - tensor.begin:
                raise source.error("is truncated: it changed while being read", tensor.key)
            yield tensor.key, safetensors_values(tensor, data), SAFETENSORS_DTYPES[tensor.dtype][2]


def map_safetensor(source, tensor, start, size):
    """Return (key, values, dtype name, origin) of large `tensor`, mapped from the file at its
    offset; a bfloat16 or float8 one widened exactly into a temporary float32 file."""
    stored, _, name = SAFETENSORS_DTYPES[tensor.dtype]
    if stored.startswith("float8"):
        stored = getattr(importlib.import_module("ml_dtypes"), stored)
    with translated(source, ".safetensors"):
        values = np.memmap(source.path, dtype=stored, mode="r", offset=start + tensor.begin,
                           shape=tensor.shape)
    what = f"converting {source.where(tensor.key)} to float32"
    if tensor.dtype == "BF16":
        values = mapped.to_float32_file(
            values, what, lambda block: (block.astype(np.uint32) << 16).view(np.float32))
    elif tensor.dtype.startswith("F8"):
        values = mapped.to_float32_file(values, what)
    return tensor.key, values, name, mapped_at(start + tensor.begin)


def safetensors_header(source, handle, size):
    """Return (the validated tensors in file order, where their data starts) of `handle`."""
    try:
        header, length = safetensors_json(handle, size)
        buffer = size - 8 - length
        tensors = [safetensors_entry(key, info, buffer)
                   for key, info in header.items() if key != "__metadata__"]
        check_layout(tensors, buffer)
    except (ValueError, RecursionError) as exc:
        raise source.error(f"not a valid safetensors file: {one_line(exc)}") from None
    return sorted(tensors, key=lambda t: t.begin), 8 + length


def safetensors_json(handle, size):
    """Return (the JSON object of the header at `handle`, its length); ValueError if bad."""
    prefix = handle.read(8)
    if len(prefix) < 8:
        raise ValueError(f"{size} bytes is too short for the 8-byte header length")
    length = int.from_bytes(prefix, "little")
    if length > size - 8:
        raise ValueError(f"header length {length} is more than the {size - 8} bytes after it")
    if length > MAX_SAFETENSORS_HEADER:
        raise ValueError(f"header length {length} is over 100 MB")
    try:
        header = json.loads(handle.read(length), object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the header is not JSON: {one_line(exc)}") from None
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    return header, length


def no_duplicates(pairs):
    """Build a JSON object, refusing a key that appears twice (`pairs` of one object)."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"key {next(k for k in keys if keys.count(k) > 1)!r} appears twice")
    return dict(pairs)


def safetensors_entry(key, info, buffer):
    """Return the Tensor `info` describes, or raise ValueError saying what is wrong with it."""
    name = f"tensor {printable(key)!r}"
    if not isinstance(info, dict):
        raise ValueError(f"{name} is not described by a JSON object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in SAFETENSORS_DTYPES:
        raise ValueError(f"{name} has dtype {printable(str(dtype))!r}, not one of "
                         f"{', '.join(SAFETENSORS_DTYPES)}")
    if not (isinstance(shape, list) and all(natural(d) for d in shape)):
        raise ValueError(f"{name} has shape {printable(str(shape))}, not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(natural(o) for o in offsets)
            and offsets[0] <= offsets[1] <= buffer):
        raise ValueError(f"{name} has data_offsets {printable(str(offsets))}, not a range "
                         f"within the {buffer}-byte data buffer")
    nbytes = math.prod(shape) * SAFETENSORS_DTYPES[dtype][1]
    if nbytes != offsets[1] - offsets[0]:
        raise ValueError(f"{name} of shape {shape} and dtype {dtype} takes {nbytes} bytes, "
                         f"but its data_offsets give {offsets[1] - offsets[0]}")
    return Tensor(key, dtype, tuple(shape), offsets[0], offsets[1])


def natural(number):
    return type(number) is int and number >= 0


def check_layout(tensors, buffer):
    """Raise ValueError unless `tensors` fill the data `buffer` end to end, none overlapping."""
    end = 0
    for tensor in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if tensor.begin != end:
            problem = "overlaps the tensor before it" if tensor.begin < end else \
                f"leaves bytes {end} to {tensor.begin} unused"
            raise ValueError(f"tensor {printable(tensor.key)!r} {problem}")
        end = tensor.end
    if end != buffer:
        raise ValueError(f"the tensors take {end} bytes of the {buffer}-byte data buffer")


def safetensors_values(tensor, data):
    """Return the array `data` holds for `tensor` (bfloat16 and float8 widened exactly)."""
    stored = SAFETENSORS_DTYPES[tensor.dtype][0]
    if stored.startswith("float8"):  # numpy knows it as raw bytes: widen it here, exactly
        stored = getattr(importlib.import_module("ml_dtypes"), stored)
        return np.frombuffer(data, dtype=stored).astype(np.float32).reshape(tensor.shape)
    values = np.frombuffer(data, dtype=stored).reshape(tensor.shape)
    if tensor.dtype == "BF16":
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values


# --- .pt and .pth ----------------------------------------------------------------------------


def read_torch(source, budget, size):
    """Yield every tensor of a .pt/.pth file, loaded with `weights_only=True` (no code runs)."""
    inflated, pickled = torch_inflated(source)
    mmap = size >= mapped.MAP_BYTES and pickled is not None  # a zip: its storages can be mapped
    if not mmap:
        budget.check_decoded(source, size, what="the file takes")
        budget.check_decoded(source, inflated, what="its zip members inflate to")
    else:  # the storages stay in the file; what is unpickled is read into memory
        budget.check_decoded(source, pickled, what="its zip members other than data inflate to")
    torch = import_torch(source)
    try:
        with warnings.catch_warnings():  # deprecation notes about the file's storage format
            warnings.simplefilter("ignore")
            loaded = torch.load(source.path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad or unsafe file
        raise source.error(torch_refusal(exc)) from None
    found = list(tensors_in(source, loaded, (torch.Tensor, np.ndarray)))
    base = storage_base(source, [t for _, t in found]) if mmap else None
    for key, tensor in found:
        if mmap and tensor.nbytes >= mapped.MAP_BYTES:
            yield map_tensor(source, key, tensor, size, base)
            continue
        budget.reserve_float32(source, key, tuple(tensor.shape))
        yield (key, *tensor_values(source, key, tensor))


def map_tensor(source, key, tensor, size, base):
    """Return (key, values, dtype name, origin) of large `tensor`, mapped by torch.load from the
    file: a contiguous one mapped from the file at its offset where `base` (`storage_base`) is
    known; float16, bfloat16 and float8 widened exactly into a temporary float32 file; others
    left to `make_case`, which converts them into one."""
    if isinstance(tensor, np.ndarray):
        return key, tensor, tensor.dtype.name, mapped_at(None)
    torch = sys.modules["torch"]
    name = str(tensor.dtype).removeprefix("torch.")
    tensor, offset = tensor.detach(), None
    if tensor.is_floating_point() and tensor.element_size() < 4:
        values = mapped.to_float32_file(
            tensor, f"converting {source.where(key)} to float32",
            lambda block: block.to(torch.float32).numpy(), tensor.element_size())
    else:
        values = tensor_values(source, key, tensor)[0]
        if base is not None and tensor.is_contiguous():
            offset = tensor.untyped_storage().data_ptr() - base + \
                tensor.storage_offset() * tensor.element_size()
            values, offset = in_file(source, values, offset, size)
    return key, values, name, mapped_at(offset)


def in_file(source, values, offset, size):
    """Return (`values` mapped from `source` at `offset`, the offset), or (`values`, None) when
    the file does not hold the same bytes there."""
    if offset < 0 or offset + values.nbytes > size:
        return values, None
    found = np.memmap(source.path, dtype=values.dtype, mode="r", offset=offset,
                      shape=values.shape)
    head = min(values.size, 4096)
    if found.reshape(-1)[:head].tobytes() != values.reshape(-1)[:head].tobytes():
        return values, None
    return np.asarray(found), offset


def storage_base(source, tensors):
    """Return the address at which torch.load(mmap=True) mapped byte 0 of `source`, or None when
    the storages of `tensors` do not say it unambiguously: every storage is a slice of one
    mapping of the whole file, at the offset of its zip record (`archive/data/KEY`)."""
    records = data_records(source)
    storages = {}
    for tensor in tensors:
        if not isinstance(tensor, np.ndarray) and tensor.untyped_storage().nbytes():
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    if not storages or not records:
        return None
    first, nbytes = next(iter(storages.items()))
    bases = [first - offset for offset, size in records.items() if size == nbytes]
    bases = [b for b in bases if all(records.get(p - b) == n for p, n in storages.items())]
    return bases[0] if len(bases) == 1 else None


def data_records(source):
    """Return {offset of its data: size} of every stored record `.../data/KEY` of a .pt zip."""
    records = {}
    with open(source.path, "rb") as handle, translated(source, ".pt (zip)"), \
            zipfile.ZipFile(handle) as archive:
        for info in archive.infolist():
            if not STORAGE.fullmatch(info.filename) or info.compress_type:
                continue
            handle.seek(info.header_offset)
            local = handle.read(30)
            if len(local) == 30 and local[:4] == b"PK\x03\x04":
                extra = int.from_bytes(local[26:28], "little") + \
                    int.from_bytes(local[28:30], "little")
                records[info.header_offset + 30 + extra] = info.file_size
    return records


def torch_inflated(source):
    """Return the bytes the members of a zip-format .pt file declare, inflated (torch.load
    allocates that much before checking anything), and those of its members other than the
    storages (`ARCHIVE/data/KEY`); (0, None) for the legacy format, which is no zip."""
    with open(source.path, "rb") as handle, translated(source, ".pt (zip)"):
        if not zipfile.is_zipfile(handle):
            return 0, None
        handle.seek(0)
        end = zipfile._EndRecData(handle)
        if end and end[zipfile._ECD_ENTRIES_TOTAL] > files.MAX_MEMBERS:
            raise source.error(f"lists {end[zipfile._ECD_ENTRIES_TOTAL]:,} zip members, more "
                               f"than the {files.MAX_MEMBERS:,} an archive may hold")
        with zipfile.ZipFile(handle) as archive:
            infos = archive.infolist()
            return (sum(info.file_size for info in infos),
                    sum(info.file_size for info in infos if not STORAGE.fullmatch(info.filename)))


def import_torch(source):
    """Return the torch module, or refuse `source` saying how to install it."""
    try:
        return importlib.import_module("torch")
    except (ImportError, OSError):
        raise source.error("reading a .pt file needs PyTorch: pip install torch") from None


def torch_refusal(exc):
    """Say in one line why torch.load(weights_only=True) refused a file (`exc`)."""
    text = str(exc)
    found = re.search(r"GLOBAL (\S+)", text)
    if "Weights only load failed" in text and found:
        return (f"torch.load(weights_only=True) refused it: it pickles {found.group(1)}, which "
                "is not a tensor or a plain container (loading it could run code); save tensors "
                "or a dict of them")
    reason = one_line(text.split("WeightsUnpickler error:", 1)[-1])
    return f"not a file torch.load(weights_only=True) can read ({type(exc).__name__}: {reason})"


def tensors_in(source, value, tensor_types, path=(), state=None):
    """Yield (key, tensor) for every tensor in `value`: a tensor, or dicts/lists/tuples of them.

    Keys join the dict keys and list positions on the way with '.'. A container inside itself (a
    cycle) or nested too deep is refused; containers met more than once (CPython shares `()`, a
    dict may name one list twice) are read each time, up to MAX_CONTAINERS in all, so sharing
    cannot multiply the work without end.
    """
    key = ".".join(path) if path else None
    state = {"open": set(), "visits": 0} if state is None else state
    if isinstance(value, tensor_types):
        yield key, value
        return
    if not isinstance(value, (dict, list, tuple)):
        raise source.error(f"holds a value of type {type(value).__name__}, not a tensor", key)
    if id(value) in state["open"] or len(path) > MAX_DEPTH:
        raise source.error("holds a container inside itself or nested too deep; save plain "
                           "tensors or a dict of them", key)
    state["visits"] += 1
    if state["visits"] > MAX_CONTAINERS:
        raise source.error(f"holds more than {MAX_CONTAINERS:,} containers (counting each "
                           "shared one every time it is met); save plain tensors or a dict of "
                           "them", key)
    state["open"].add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for name, item in items:
        yield from tensors_in(source, item, tensor_types, (*path, str(name)), state)
    state["open"].discard(id(value))


def tensor_values(source, key, tensor):
    """Return (a numpy array of `tensor`'s values, its dtype name); narrow floats widened."""
    if isinstance(tensor, np.ndarray):
        return tensor, tensor.dtype.name
    torch = sys.modules["torch"]
    name = str(tensor.dtype).removeprefix("torch.")
    try:
        tensor = tensor.detach().resolve_conj().resolve_neg()
        if tensor.is_floating_point() and tensor.element_size() < 4:
            tensor = tensor.to(torch.float32)  # float16, bfloat16, float8: exact
        return tensor.numpy(), name
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        raise source.error(f"holds a {name} tensor that has no array form ({one_line(exc)})",
                           key) from None


READERS = {".npy": read_npy, ".npz": read_npz, ".pt": read_torch, ".pth": read_torch,
           ".safetensors": read_safetensors}
