"""A worker answers messages already in the pipe in one write, flushing before it waits, before
each case's work and before every call; a quiet request is answered only when it fails."""
import io
import os

import numpy as np

from auditor.worker import protocol


class _Counted(io.BytesIO):
    """An output that counts its flushes (each one a write the driver wakes up to)."""

    flushes = 0

    def flush(self):
        self.flushes += 1
        self.at_flush = getattr(self, "at_flush", []) + [len(self.getvalue())]


def _served(*requests):
    """Feed framed `requests` through a pipe to a Worker's serve loop; return (ops written,
    their headers, the output)."""
    from auditor.worker.main import Input, Worker, serve

    read, write = os.pipe()
    framed = io.BytesIO()
    for header, payload in requests:
        protocol.write_message(framed, header, payload)
    os.write(write, framed.getvalue())
    os.close(write)
    out = _Counted()
    worker = Worker(out)
    worker.hello({"framework": "numpy"}, b"")
    try:
        serve(worker, Input(read, worker.flush))
    finally:
        os.close(read)
    out.seek(0)
    headers = []
    while out.tell() < len(out.getvalue()):
        headers.append(protocol.read_message(out)[0])
    return [h["op"] for h in headers], headers, out


def _example(case_id, values, quiet=True):
    from auditor.model import Case
    from auditor.workers import cases_message

    header, payload = cases_message([Case(case_id, values, None)])
    if quiet:
        header["quiet"] = True
    run = {"op": "run", "repeats": 2, "tick_every": 30.0, "cases": [case_id],
           "target": {"device": "cpu", "dtype": "float32", "op": "argmax", "impl": None}}
    return [(header, payload), (run, b"")]


def test_a_quiet_request_is_answered_only_when_it_fails():
    ops, headers, _ = _served(*_example("a", np.arange(3, dtype=np.float32)))
    assert ops == ["tick", "result", "reply"]  # no reply to the quiet cases
    broken = {"op": "cases", "quiet": True, "cases": [
        {"id": "b", "dim": None, "keepdim": False, "layout": "contiguous",
         "array": {"offset": 0, "dtype": "<f4", "shape": [1000]}}]}  # past the payload
    ops, headers, _ = _served((broken, b""))
    assert ops == ["reply"] and not headers[0]["ok"]
    assert "outside the payload" in headers[0]["error"]["message"]
    ops, _, _ = _served(*_example("c", np.arange(3, dtype=np.float32), quiet=False))
    assert ops == ["reply", "result", "reply"]  # not quiet: answered (and flushed) as before


def test_replies_are_flushed_together_before_a_wait_or_the_next_case_not_one_by_one():
    ops, headers, out = _served(*_example("a", np.arange(3, dtype=np.float32)),
                                *_example("b", np.arange(5, dtype=np.float32)))
    assert ops == ["tick", "result", "reply", "result", "reply"]
    assert [h["case"] for h in headers if h["op"] == "result"] == ["a", "b"]
    # the tick before the first call; a's result and reply before b's work starts (a hang in b
    # is b's); b's result and reply before the worker waits for the driver: three writes
    assert out.flushes == 3
    tick, first, last = out.at_flush
    assert 0 < tick < first < last == len(out.getvalue())
