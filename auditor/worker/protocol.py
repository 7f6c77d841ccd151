"""The framing both sides speak: a JSON header plus one raw byte payload, length-prefixed.

No pickle anywhere: arrays travel as raw bytes described by dtype and shape in the header, or,
when large, as the name of a file and an offset that the worker maps (`map_array`).
"""
import json
import math
import os
import struct

import numpy as np

# Bump on any incompatible change to messages; the driver refuses a worker of another version.
#  1: hello, describe, cases, run, bye.
#  2: run's target names an op and a variant (mode, threads, deterministic, flush_denormal); its
#     closing reply carries the settings in effect; a result carries compile_s for compiled modes
#     and a tick before a compilation says so ("compile": true); describe lists ops, index_dtypes,
#     modes and per device unavailable_modes.
#  3: run carries case_repeats ({case id: calls}, for the cases that get more calls than repeats);
#     describe lists layout_limits ({"views" or a need such as "negative-step": why}); cases carry
#     integer, bool and float64 arrays beside float32.
#  4: hello carries the backend to load ("module:attribute", from the entry point group
#     argmax_audit.backends); run's variant carries every modifier of the variant. Compatible
#     addition: run may carry tick_every (seconds): the worker then ticks before a call only
#     after that long without a message (without it, before every call, as before).
#  5: a case's array may be {"file", "offset", "dtype", "shape", "stamp": [size, mtime_ns]}: a
#     file the worker maps copy-on-write instead of bytes in the payload (large inputs).
#  6: a request may carry "quiet": true: the worker then replies only if it fails (`audit fuzz`
#     sends its cases so, with its runs in the same write, and reads the results). A worker
#     writes its messages without flushing each: it flushes what it wrote before it waits for
#     the driver's next message and before every call, so a message still reaches the driver
#     before anything that could hang or kill the process.
PROTOCOL_VERSION = 6
#: The environment variable naming a folder that a worker group's processes share for one run
#: (the driver removes it when the run ends).
SHARED_ENV = "ARGMAX_AUDIT_SHARED_CACHE"
#: Set ("1") in the workers of `audit bench`: a backend then keeps the framework's own settings
#: for how idle threads wait, which the audit's other commands change to save CPU.
TIMING_ENV = "ARGMAX_AUDIT_TIMING"

_PREFIX = struct.Struct("<II")


class ProtocolError(Exception):
    """The other side sent something that is not a protocol message."""


def write_message(stream, header, payload=b"", flush=True):
    """Write `header` (JSON-able dict) and `payload` (bytes) to `stream`; flush unless told."""
    data = json.dumps(header, separators=(",", ":")).encode()
    stream.write(_PREFIX.pack(len(data), len(payload)) + data)
    if payload:
        stream.write(payload)
    if flush:
        stream.flush()


def _read_exact(stream, n):
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError("stream closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(stream, max_header=64 << 20):
    """Read one message from `stream`; return (header, payload). Raise EOFError at the end."""
    head_len, payload_len = _PREFIX.unpack(_read_exact(stream, _PREFIX.size))
    if head_len > max_header:
        raise ProtocolError(f"header of {head_len} bytes is not a protocol message")
    try:
        header = json.loads(_read_exact(stream, head_len))
    except ValueError as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    return header, _read_exact(stream, payload_len) if payload_len else b""


class PayloadWriter:
    """Collect arrays into one payload; `add` returns the descriptor a header carries."""

    def __init__(self):
        self.parts = []
        self.size = 0

    def add(self, array):
        array = np.asarray(array, order="C")  # keeps 0-d arrays 0-d
        raw = array.tobytes()
        ref = {"offset": self.size, "dtype": array.dtype.str, "shape": list(array.shape)}
        self.parts.append(raw)
        self.size += len(raw)
        return ref

    def payload(self):
        return b"".join(self.parts)


def read_array(payload, ref):
    """Return the array that `ref` (from `PayloadWriter.add`) describes inside `payload`, or
    the mapped file it names (see `map_array`)."""
    if "file" in ref:
        return map_array(ref)
    dtype = np.dtype(ref["dtype"])
    if dtype.hasobject:
        raise ProtocolError("object arrays are not accepted")
    shape = ref["shape"]
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise ProtocolError("an array's shape is not a list of sizes")
    count = math.prod(shape)  # exact: a hostile shape cannot wrap round
    end = ref["offset"] + count * dtype.itemsize
    if ref["offset"] < 0 or end > len(payload):
        raise ProtocolError("array reference points outside the payload")
    flat = np.frombuffer(payload, dtype=dtype, count=count, offset=ref["offset"])
    return flat.reshape(shape)


def map_array(ref):
    """Return the array in file `ref["file"]` at `ref["offset"]` mapped copy-on-write: every
    process reads the same physical pages; one that writes changes only its own copy of a page.

    The file must still have the size and modification time `ref["stamp"]` the driver saw."""
    dtype = np.dtype(ref["dtype"])
    if dtype.hasobject:
        raise ProtocolError("object arrays are not accepted")
    shape = tuple(int(n) for n in ref["shape"])
    info = os.stat(ref["file"])
    if [info.st_size, info.st_mtime_ns] != list(ref["stamp"]):
        raise ValueError(f"{ref['file']} changed since the driver read it (size or time)")
    if ref["offset"] < 0 or ref["offset"] + int(np.prod(shape)) * dtype.itemsize > info.st_size:
        raise ProtocolError("array reference points outside its file")
    # A plain array over the mapping: what frameworks return from it is no np.memmap.
    return np.asarray(np.memmap(ref["file"], dtype=dtype, mode="c", offset=ref["offset"],
                                shape=shape))
