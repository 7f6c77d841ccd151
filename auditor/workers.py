"""The driver's side of a worker process: start it, talk the protocol, notice death and hangs."""
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import weakref

import numpy as np

from . import mapped
from .worker.protocol import (
    PROTOCOL_VERSION,
    PayloadWriter,
    ProtocolError,
    read_message,
    write_message,
)

_EOF = object()
#: In-memory case values of at least this many bytes reach workers through a mapped file.
PIPE_BYTES = 128 << 20
#: The most bytes one message's payload may take (its length is a 32-bit field).
MAX_PAYLOAD = 2**32 - 1
_WRITTEN = {}  # id(values) -> (weak reference to them, the mapped temporary file holding them)


class WorkerGone(Exception):
    """The worker died, hung past its deadline, or broke the protocol."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind  # "ProcessDied", "Timeout" or "WorkerError"


class WorkerProcess:
    """One worker process for one framework, started like a user's own Python would start."""

    def __init__(self, framework, python=None, env=None):
        self.framework = framework
        self.stderr = tempfile.TemporaryFile()
        if python is None:
            argv, environ = [sys.executable, "-m", "auditor.worker"], _worker_env(env)
        else:  # another interpreter: the worker staged as a package of its own, no auditor there
            from .envs import worker_command

            argv, extra = worker_command(python)
            environ = {**os.environ, **(env or {}), **extra}
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            env=environ, start_new_session=True,  # Ctrl-C reaches the driver, which stops them
        )
        self.messages = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                self.messages.put(read_message(self.process.stdout))
        except (EOFError, OSError, ProtocolError, ValueError) as exc:
            self.messages.put((_EOF, exc))

    def send(self, header, payload=b""):
        try:
            write_message(self.process.stdin, header, payload)
        except (BrokenPipeError, OSError):
            raise self._gone("ProcessDied") from None

    def receive(self, timeout, grace=0.0):
        """Return the next (header, payload); raise WorkerGone on death, garbage or no message
        within `timeout` seconds (waiting `grace` more, see `tick_grace`)."""
        try:
            header, payload = self.messages.get(timeout=timeout + grace)
        except queue.Empty:
            self.kill()
            raise WorkerGone("Timeout", f"no answer within {timeout:g} s; the process was killed") from None
        if header is _EOF:
            if isinstance(payload, ProtocolError):
                self.kill()
                raise WorkerGone("WorkerError", f"the worker broke the protocol: {payload}")
            raise self._gone("ProcessDied")
        return header, payload

    def request(self, header, payload=b"", timeout=60.0):
        """Send `header` and return the reply; raise WorkerGone, or RuntimeError if it failed."""
        self.send(header, payload)
        reply, _ = self.receive(timeout)
        if not reply.get("ok"):
            error = reply.get("error", {})
            raise RuntimeError(f"{error.get('type', 'Error')}: {error.get('message', '')}")
        return reply

    def hello(self, timeout):
        from . import registry  # the backend's "module:attribute", which the worker imports

        try:
            backend = registry.reference(self.framework)
        except KeyError:
            backend = None
        reply = self.request({"op": "hello", "framework": self.framework, "backend": backend,
                              "protocol": PROTOCOL_VERSION}, timeout=timeout)
        if reply.get("protocol") != PROTOCOL_VERSION:
            raise WorkerGone("WorkerError", f"worker speaks protocol {reply.get('protocol')}, "
                                            f"this driver {PROTOCOL_VERSION}")
        return reply


    def stderr_tail(self, limit=2000):
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - limit))
        return self.stderr.read().decode(errors="replace").strip()

    def _gone(self, kind):
        code = self.process.wait()
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with status {code}"
        tail = self.stderr_tail(600)
        return WorkerGone(kind, how + (f"; stderr ends: {tail}" if tail else ""))

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            try:
                stream.close()
            except OSError:
                pass

    def close(self):
        if self.process.poll() is None:
            try:
                write_message(self.process.stdin, {"op": "bye"})
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.stderr.close()


def tick_grace(timeout):
    """Return the seconds a worker may go without a message before a call (its `tick_every`) and
    the driver then waits past `timeout`: a worker ticks before a call only when it has been
    silent that long, so the runs of thousands of quick calls send a few messages, not one per
    call, and a call is still never cut before it has run for `timeout` seconds."""
    return min(1.0, timeout / 10)


def cases_message(cases):
    """Return the (header, payload) of the message that hands `cases` to a worker.

    Values already in a mapped file (large user inputs) travel as the file's name and offset,
    which the worker maps; in-memory values past PIPE_BYTES are written once to a temporary file
    (kept while the values live) and travel the same way; the rest go in the payload."""
    writer = PayloadWriter()
    header = [{"id": c.id, "dim": c.dim, "keepdim": c.keepdim, "layout": c.layout,
               "array": array_ref(c.values, writer)} for c in cases]
    return {"op": "cases", "cases": header}, writer.payload()


def array_ref(values, writer):
    """Return the reference to `values` a cases message carries: a mapped file or `writer`'s."""
    nbytes = np.asarray(values).nbytes
    found = mapped.file_ref(values) if nbytes >= mapped.MAP_BYTES else None
    if found is None and (nbytes >= PIPE_BYTES or writer.size + nbytes >= MAX_PAYLOAD):
        found = mapped.file_ref(_written(values))
    if found is None:
        return writer.add(values)
    path, offset, stamp = found
    return {"file": path, "offset": offset, "dtype": values.dtype.str,
            "shape": list(values.shape), "stamp": list(stamp)}


def _written(values):
    """Return a mapping of a temporary file holding `values`, written once while they live."""
    kept = _WRITTEN.get(id(values))
    if kept is None or kept[0]() is not values:
        kept = (weakref.ref(values), mapped.write_raw(values))
        _WRITTEN[id(values)] = kept
        weakref.finalize(values, _WRITTEN.pop, id(values), None)
    return kept[1]


def _signal_name(number):
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"


def _worker_env(overrides=None):
    """Return the environment for a worker: the user's with `overrides` (a variant's process-wide
    settings, such as JAX_ENABLE_X64), plus the path that finds this package."""
    env = {**os.environ, **(overrides or {})}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths and not _importable_from_site(root):
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return env


def _importable_from_site(root):
    return any(os.path.abspath(p) == root for p in sys.path if p)
