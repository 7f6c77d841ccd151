"""A one-line progress display on stderr, shown only on a terminal and without -q."""
import sys
import threading
import time


class Progress:
    def __init__(self, total, enabled=True, stream=None):
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        self.last = 0.0
        self.started = time.monotonic()

    def update(self, target, case_id):
        with self.lock:
            self.done += 1
            now = time.monotonic()
            if not self.enabled or now - self.last < 0.1:
                return
            self.last = now
            share = self.done / self.total if self.total else 1.0
            line = f"\r[{share:4.0%}] {now - self.started:5.1f}s  {target.id}  {case_id}"
            self.stream.write(line[:100].ljust(100))
            self.stream.flush()

    def grow(self, more):
        """Add `more` steps to the total (re-runs decided while the run goes on)."""
        with self.lock:
            self.total += more

    def close(self):
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()
