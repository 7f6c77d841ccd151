"""The backend interface: everything the audit knows about one framework, in one object.

A backend module defines one `Backend` (a subclass, or an instance with these attributes) and
registers it under the entry-point group `argmax_audit.backends`, as the built-ins do in
argmax-audit's pyproject.toml:

    [project.entry-points."argmax_audit.backends"]
    myfw = "myfw_audit:BACKEND"

Importing a backend module must not import its framework: the driver reads the attributes below
(ops and their documented promises, variants, reproducer lines, hints) without it. The framework
is imported by `adapter()` alone, which only a worker process calls. The adapter is the worker's
side: probe (`describe`), native arrays, the calls, their settings (see `Adapter` below).

This module imports nothing but the standard library and numpy, so the worker package stays
standalone (it is copied into other Python environments as `argmax_audit_worker`).
"""
import importlib.util
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Documented:
    """A framework's own words saying that a twin may return another index than the first."""

    url: str
    quote: str
    picks: str  # "any": any of the equal candidates; "last": the last of them
    meaning: str  # what that means for a top-1 answer, in a sentence for the finding

    def covers(self, ordered_row, returned, candidates):
        """True when index `returned` into `ordered_row` is a pick this documentation allows.

        `candidates` is the mask of the row's maximizers (its NaNs where it holds NaN).
        """
        if not 0 <= returned < len(ordered_row) or not candidates[returned]:
            return False
        return self.picks == "any" or returned == int(np.flatnonzero(candidates)[-1])

    def to_json(self):
        return {"url": self.url, "quote": self.quote, "meaning": self.meaning}


@dataclass(frozen=True)
class Op:
    """One formulation a backend offers: `argmax`, `argmin` or a twin of argmax.

    `sense` is "max" (judged against the first maximum, NaN first) or "min" (argmin's mirror).
    `words` names the call in prose; `call` is the call as a finding's sentence writes it and
    `expression` as a reproducer runs it on `x`: format strings over `dim`, `keepdim`, `keep`
    (", keepdim=True" or ""), `keep_all` (`.reshape((1,) * x.ndim)` or "") and `squeeze`;
    `call_none`/`expression_none` are used instead for dim=None where they are given.
    `documented` is set where the framework documents that this twin does not promise the first
    index among equal values (the checks then report such a pick as a warning that quotes it).
    `promise` is the documented promise in words, quoted in `audit backends` and the README.
    """

    sense: str
    words: str
    call: str
    expression: str
    call_none: str = ""
    expression_none: str = ""
    documented: object = None  # a Documented, or None
    promise: str = ""
    url: str = ""


@dataclass(frozen=True)
class Modifier:
    """One variant modifier: `group` (at most one modifier per group in a variant), what it does
    in words, `process` (True: it must be set before the framework starts, so it gets a worker
    process of its own) and `env` (the environment variables such a process is started with:
    {name: value}, or {name: ("append", value)} to add to what the user set)."""

    group: str
    words: str
    process: bool = False
    env: tuple = ()
    takes_number: bool = False  # `threads=N`: the modifier carries a number


class Backend:
    """One framework. Subclasses set the attributes and implement `adapter()`.

    Attributes (all plain data; nothing here imports the framework):

    - `name`: the framework's name in target ids (`torch`), lowercase letters, digits, `_`, `-`.
    - `module`: the import name whose presence means the framework is installed.
    - `distributions`: package names whose versions an environment probe reads (metadata only).
    - `install`: the command that installs it, for "not installed" messages.
    - `device_hints`: {device kind: what brings that device} (`cuda`: "an NVIDIA GPU and ...").
    - `ops`: {op name: Op}; `argmax` first. `index_dtype` rules come from the adapter's probe.
    - `modifiers`: {name: Modifier}; `all_variants`: what `--variant all` runs (`eager` first).
    - `compiling_modes`: the mode modifiers whose first call per signature compiles.
    - `settings_env`: environment variables that can change its answers (recorded per target).
    - `reproducer`: {"imports": line, "native": line building `x` from numpy `base` with
      `{device}`, `{dtype}` (this backend's dtype expression, see `dtype_expression`),
      "permute": line with `{0}` (the axes), "broadcast": line with `{0}` (the shape),
      "to_numpy": expression of `{0}` as float64 numpy, "indices": expression of `r` as numpy}.
    - `notes`: sentences `audit backends` prints (what is special about this backend).
    """

    name = ""
    module = ""
    distributions = ()
    install = ""
    device_hints = {"cpu": "any build"}
    ops = {}
    modifiers = {}
    all_variants = ("eager",)
    compiling_modes = ()
    settings_env = ()
    reproducer = {}
    notes = ()

    def installed(self):
        """True when the framework can be imported in this Python (nothing is imported)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def adapter(self):
        """Import the framework and return the worker-side adapter (called in workers only)."""
        raise NotImplementedError

    # -- reproducers: the lines a finding's script runs, with the framework alone
    def import_lines(self, dtypes):
        """Return the import lines of a reproducer in `dtypes` (after `import numpy as np`)."""
        return [self.reproducer["imports"]]

    def dtype_expression(self, dtype):
        """Return the Python expression of `dtype` in a reproducer (`np.float16`, `torch.int8`)."""
        return f"np.{dtype}"

    def device_expression(self, device):
        """Return the Python expression of `device` in a reproducer's `native` line."""
        return repr(device)

    def call_lines(self, mode, variant_name, expression):
        """Return (lines defining the compiled `f`, lines of `run` that set `r`) for mode `mode`
        (None: the plain call) of variant `variant_name`; `expression` is the call on `x`."""
        return [], [f"    r = {expression}"]

    def setting_lines(self, modifiers):
        """Return (lines before the framework's import, lines right after it) that set the
        process state of `modifiers` ({name: value}) as the worker did."""
        return [], []


class Adapter:
    """The worker's side of a backend; `Backend.adapter()` returns one (the framework imported).

    - `describe()`: the probe, a dict: `version` (str), `build` (dict), `devices` (list of
      {"id", "name", "dtypes": [...], "unsupported": {dtype: why}, "unavailable_modes":
      {mode: why}}), `index_dtype` and `index_dtypes` ({op: dtype name}), `ops`, `modes`,
      `layout_limits` ({"views" or a need such as "negative-step": why}), `settings`.
    - `function(op)`: `fn(x, dim=None, keepdim=False)` computing `op`.
    - `prepare(fn, mode, dim, keepdim, builtin)`: `x -> fn(x, dim, keepdim)` through `mode`.
    - `configure(variant)`: a context manager setting the variant's process state around a
      target's calls; it yields the settings in effect.
    - `harness()`: a context manager suspending variant state while the harness builds inputs.
    - `to_native(host, dtype, device, layout)`: the native array of numpy `host` in `layout`.
    - `synchronize(device, result)`: wait until `result` is computed (no-op where calls block).
    - `to_host(x)`: `x` as float64 numpy (to check it was not written into), or None.
    - `to_numpy(result)`: (int64 numpy indices, dtype name) or TypeError for garbage.
    """

    def synchronize(self, device, result):
        """Wait until `result` on `device` is computed; calls that block need nothing."""
