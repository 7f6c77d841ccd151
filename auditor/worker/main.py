"""The worker loop: load cases, run targets on them, stream one result message per case.

The protocol goes to the process's original stdout; fd 1 is pointed at stderr so that anything a
framework or a user's implementation prints cannot corrupt it.
"""
import importlib
import importlib.util
import inspect
import json
import os
import platform
import sys
import threading
import time
import traceback

import numpy as np

from . import backends, bench
from .casting import narrow, widen
from .protocol import PROTOCOL_VERSION, PayloadWriter, read_array, read_message, write_message

MAX_MESSAGE = 2000
#: Execution modes whose first call per signature compiles (timed apart as compile_s), where a
#: backend does not say (its `compiling_modes`).
COMPILING = ("compile", "compile-dynamic", "jit")
#: Compiled calls a worker keeps for reuse by later cases of the same signature.
PREPARED_KEPT = 64


def _error(exc):
    """Return a JSON-able description of `exc` with the innermost frame that raised it."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    return {"type": type(exc).__name__, "message": str(exc)[:MAX_MESSAGE], "where": where}


def load_function(module_or_file, function):
    """Import `module_or_file` (a module name or a .py path) and return its `function`."""
    if module_or_file.endswith(".py") or os.sep in module_or_file or "/" in module_or_file:
        path = os.path.abspath(module_or_file)
        if not os.path.isfile(path):
            raise LookupError(f"file {module_or_file} does not exist")
        name = "argmax_audit_impl_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_or_file)
        except ModuleNotFoundError as exc:
            if exc.name == module_or_file or module_or_file.startswith(f"{exc.name}."):
                raise LookupError(f"module {module_or_file} not found") from None
            raise
    fn = getattr(module, function, None)
    if fn is None:
        raise LookupError(f"{module_or_file} has no function {function}")
    if not callable(fn):
        raise LookupError(f"{module_or_file}.{function} is not callable")
    try:
        inspect.signature(fn).bind(None, dim=0, keepdim=False)
    except TypeError:
        raise LookupError(
            f"{module_or_file}.{function} cannot be called as fn(x, dim=..., keepdim=...)"
        ) from None
    except ValueError:  # builtins without a signature: trust them
        pass
    return fn


class Worker:
    def __init__(self, out):
        self.out = out
        self.adapter = None
        self.compiling = COMPILING
        self.impls = {}
        self.cases = {}
        self.prepared = {}  # signature -> compiled call (see _prepared)
        self.tick_every = None  # seconds between call ticks (see _tick); None: before every call
        self.sent_at = float("-inf")  # when the last message went to the driver
        self.unsent = False  # messages written and not flushed yet

    def send(self, header, payload=b""):
        """Write one message to the driver, unflushed: `flush` sends what was written."""
        write_message(self.out, header, payload, flush=False)
        self.unsent = True

    def flush(self):
        """Send the messages written since the last flush, if any, and note when. Called before
        waiting for the driver, before each case's work and before every call: a message never
        waits in the buffer behind something that could hang or kill the process (so a hang is
        blamed on the case and call that hung, and the driver's deadline starts when it does)."""
        if self.unsent:
            self.out.flush()
            self.unsent = False
            self.sent_at = time.perf_counter()

    def _tick(self):
        """Tell the driver a call starts, so its per-call deadline starts now; with `tick_every`
        (the run's), only where the driver has heard nothing for that long: its deadline then has
        that much grace, and a call is never cut before it has run for the whole --timeout. A
        message written and not yet flushed (the last case's result) goes now, as good as a tick."""
        if self.tick_every is None or (
                not self.unsent and time.perf_counter() - self.sent_at >= self.tick_every):
            self.send({"op": "tick"})
        self.flush()

    def hello(self, header, payload):
        backend = backends.resolve(header.get("backend") or backends.BUILTIN[header["framework"]])
        self.adapter = backend.adapter()
        self.compiling = tuple(getattr(backend, "compiling_modes", COMPILING))
        return {"protocol": PROTOCOL_VERSION, "python": platform.python_version(),
                "numpy": np.__version__, "pid": os.getpid(), "executable": sys.executable}

    def describe(self, header, payload):
        return self.adapter.describe()

    def impls_(self, header, payload):
        errors = {}
        for impl in header["impls"]:
            try:
                self.impls[impl["name"]] = load_function(impl["module"], impl["function"])
            except LookupError as exc:
                errors[impl["name"]] = str(exc)
            except BaseException as exc:  # the user's module raised while importing
                errors[impl["name"]] = f"importing {impl['module']} raised {_error(exc)['type']}: {exc}"
        return {"errors": errors}

    def cases_(self, header, payload):
        for case in header["cases"]:
            self.cases[case["id"]] = (case, read_array(payload, case["array"]))
        return {"count": len(self.cases)}

    def run(self, header, payload):
        """Run one target (op or implementation, in its variant) on the cases; reply with the
        settings that were in effect during the calls."""
        target = header["target"]
        builtin = not target.get("impl")
        fn = self.adapter.function(target.get("op", "argmax")) if builtin else self.impls[target["impl"]]
        variant = target.get("variant") or {}
        self.tick_every = header.get("tick_every")
        with self.adapter.configure(variant) as settings:
            more = header.get("case_repeats") or {}
            for case_id in header["cases"]:
                self._run_case(target, fn, variant.get("mode"), case_id,
                               more.get(case_id, header["repeats"]))
        return {"done": True, "settings": settings}

    def _run_case(self, target, fn, mode, case_id, repeats):
        self.flush()  # the last case's result goes before this case's input, call or hang
        case, source = self.cases[case_id]
        started = time.perf_counter()
        # A user's implementation gets a fresh input for every call and is checked for writing
        # into it; the frameworks' own argmax reuses one input across repeats.
        fresh = bool(target.get("impl"))
        try:
            x, before = self._input(target, case, source, fresh)
            call, new = self._prepared(target, fn, mode, case, source, fresh)
        except Exception as exc:
            self.send({"op": "result", "case": case_id, "setup_error": _error(exc)})
            return
        prepare_s = time.perf_counter() - started
        # Compiled modes compile on the first call of each signature: that call is timed apart
        # (compile_s), and the repeats reuse what it compiled.
        compile_s = self._compile(call, target, case, source, x) if new else None
        outcomes, keys, seconds, writer, mutated = [], [], [], PayloadWriter(), False
        for repeat in range(repeats):
            if fresh and repeat:
                x, before = self._input(target, case, source, fresh)
            self._tick()  # the driver's per-call deadline starts now
            outcome, elapsed = self._call(call, x, target["device"])
            seconds.append(elapsed)
            _add(outcomes, keys, outcome, repeat, writer)
            if fresh and not mutated:
                with self.adapter.harness():
                    mutated = _mutated(self.adapter, x, before)
        result = {"op": "result", "case": case_id, "outcomes": outcomes, "seconds": seconds,
                  "prepare_s": prepare_s}
        if mutated:
            result["mutated"] = True
        if compile_s is not None:
            result["compile_s"] = compile_s
        result["harness_s"] = time.perf_counter() - started - sum(seconds) - (compile_s or 0.0)
        self.send(result, writer.payload())

    def _prepared(self, target, fn, mode, case, source, fresh):
        """Return (the call of `fn` for `case`, True if it must compile first).

        A compiled mode keeps one compiled call per signature (target, variant, shape, layout,
        dim, keepdim), the last PREPARED_KEPT of them, so a later case of the same signature (the
        fuzzer's examples share a bounded pool of them) reuses it instead of compiling again."""
        if mode not in self.compiling:
            return self.adapter.prepare(fn, mode, case["dim"], case["keepdim"], not fresh), False
        key = (json.dumps(target, sort_keys=True), source.shape, case["layout"], case["dim"],
               case["keepdim"])
        if key in self.prepared:
            self.prepared[key] = self.prepared.pop(key)  # the most recently used goes last
            return self.prepared[key], False
        call = self.adapter.prepare(fn, mode, case["dim"], case["keepdim"], not fresh)
        self.prepared[key] = call
        while len(self.prepared) > PREPARED_KEPT:
            self.prepared.pop(next(iter(self.prepared)))
        return call, True

    def _compile(self, call, target, case, source, x):
        """Make the first call of `call`, which compiles it; return its seconds.

        A user's implementation gets an input of its own. What the call returns or raises is left
        to the timed calls after it, which return or raise the same.
        """
        if target.get("impl"):
            x = self._input(target, case, source, False)[0]
        self.send({"op": "tick", "compile": True})  # a compile's longer deadline
        self.flush()
        started = time.perf_counter()
        try:
            self.adapter.synchronize(target["device"], call(x))
        except (Exception, SystemExit):
            pass
        self.sent_at = float("-inf")  # the first call after it ticks: the per-call deadline again
        return time.perf_counter() - started

    def _input(self, target, case, source, keep_copy):
        """Return the native input (a private array) and, if asked, its values as float64.

        Built in the harness's own state: a variant that flushes denormals must not flush the
        exact values the audit hands the target (a float32 subnormal widened to float64).

        A mapped input (a large one) already in the target's dtype is handed to a built-in op as
        it is, no copy: the mapping is copy-on-write, and the frameworks' own ops do not write
        into their input. A user's implementation always gets a private copy."""
        with self.adapter.harness():
            if _as_is(target, case, source):
                host = source
            else:
                host = narrow(source, target["dtype"])
            before = widen(host, target["dtype"]).astype(np.float64) if keep_copy else None
            return self.adapter.to_native(host, target["dtype"], target["device"], case["layout"]), before

    def _call(self, call, x, device):
        started = time.perf_counter()
        try:
            result = call(x)
            self.adapter.synchronize(device, result)
        except (Exception, SystemExit) as exc:
            return {"error": _error(exc)}, time.perf_counter() - started
        elapsed = time.perf_counter() - started
        try:
            indices, dtype = self.adapter.to_numpy(result)
        except Exception as exc:  # whatever came back could not be read as indices
            message = str(exc) if isinstance(exc, TypeError) else (
                f"returned {type(result).__name__} that cannot be read as indices "
                f"({type(exc).__name__}: {exc})")
            return {"error": {"type": "BadReturn", "message": message[:MAX_MESSAGE], "where": ""}}, elapsed
        return {"indices": indices, "dtype": dtype, "type": type(result).__name__}, elapsed


def _as_is(target, case, source):
    """Return True when `source` can be handed to `target` without a copy (see `_input`)."""
    return ("file" in case["array"] and not target.get("impl")
            and source.dtype.name == target["dtype"] and source.dtype.isnative
            and source.flags.writeable)


def _mutated(adapter, x, before):
    """Return True when a user's implementation changed its input `x` (was `before`) in place."""
    try:
        now = adapter.to_host(x)
    except Exception:
        return False
    return now is not None and not np.array_equal(now, before, equal_nan=True)


def _add(outcomes, keys, outcome, repeat, writer):
    """Fold `outcome` of `repeat` into the distinct `outcomes` (identical results share one)."""
    if "error" in outcome:
        key = ("error", outcome["error"]["type"], outcome["error"]["message"])
    else:
        key = (outcome["dtype"], outcome["type"], outcome["indices"].shape,
               outcome["indices"].tobytes())
    if key in keys:
        outcomes[keys.index(key)]["repeats"].append(repeat)
        return
    entry = {"repeats": [repeat]}
    if "error" in outcome:
        entry["error"] = outcome["error"]
    else:
        entry.update(dtype=outcome["dtype"], type=outcome["type"],
                     indices=writer.add(outcome["indices"]))
    keys.append(key)
    outcomes.append(entry)


OPS = {"hello": Worker.hello, "describe": Worker.describe, "impls": Worker.impls_,
       "cases": Worker.cases_, "run": Worker.run}
OPS.update(bench.OPS)  # audit bench's timing requests (auditor/worker/bench.py)


def _exit_with_parent(interval=1.0):
    """Exit when the driver dies (this process is then re-parented), whatever the main thread does."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(70)

    threading.Thread(target=watch, daemon=True).start()


class Input:
    """The driver's side of the pipe, read in chunks: `waiting` runs before every read of the
    pipe (when what was read before is used up, so the read may block), which flushes the replies
    written since: messages already in the pipe are answered in one write, not one each."""

    CHUNK = 1 << 20

    def __init__(self, fd, waiting):
        self.fd, self.waiting = fd, waiting
        self.data, self.at = b"", 0

    def read(self, n):
        if self.at >= len(self.data):
            self.waiting()
            self.data, self.at = os.read(self.fd, max(min(n, self.CHUNK), 1 << 16)), 0
        chunk = self.data[self.at:self.at + n]
        self.at += len(chunk)
        return chunk


def serve(worker, stdin):
    """Answer the driver's requests from `stdin` until it says bye or closes the pipe."""
    while True:
        try:
            header, payload = read_message(stdin)
        except EOFError:
            break
        if header.get("op") == "bye":
            break
        try:
            reply = OPS[header["op"]](worker, header, payload)
            if not header.get("quiet"):  # a quiet request is answered only when it fails
                worker.send({"op": "reply", "ok": True, **reply})
        except Exception as exc:
            worker.send({"op": "reply", "ok": False, "error": _error(exc)})
    worker.flush()


def main():
    _exit_with_parent()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    worker = Worker(out)
    serve(worker, Input(sys.stdin.fileno(), worker.flush))
    # Leave without the interpreter's teardown: everything the driver needs went through the
    # pipe, and the frameworks' exit handlers and module cleanup took 0.8-1.3 s (torch, jax,
    # TensorFlow), which the driver spent waiting before it started the next process.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)
