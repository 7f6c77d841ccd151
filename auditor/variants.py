"""Execution variants: the code paths one framework, device and dtype can compute argmax along.

A variant is `eager` (the plain call) or one or more modifiers joined by `+`, at most one of each
group: `compile+threads=1`. Modifiers that change state which cannot be undone inside a process
(jax's x64 mode, XLA flags read at import) get a worker process of their own; the others are set
around each target's calls and restored after it (threads, deterministic mode, denormal flushing),
or wrap the call itself (torch.compile, jax.jit, jax.disable_jit).
"""
import os
import re
from dataclasses import dataclass

EAGER = "eager"
#: XLA flags users set for deterministic results (no effect on the CPU, which is deterministic).
XLA_DETERMINISTIC = "--xla_gpu_deterministic_ops=true"


@dataclass(frozen=True)
class Modifier:
    group: str
    frameworks: tuple
    words: str
    process: bool = False  # True: needs a worker process of its own


MODIFIERS = {
    "compile": Modifier("mode", ("torch",), "torch.compile (inductor, dynamic=False): one "
                                            "compilation per input signature"),
    "compile-dynamic": Modifier("mode", ("torch",), "torch.compile(dynamic=True): kernels with "
                                                    "symbolic sizes"),
    "jit": Modifier("mode", ("jax",), "jax.jit, compiled once per input signature"),
    "op-by-op": Modifier("mode", ("jax",), "inside jax.disable_jit()"),
    "threads": Modifier("threads", ("torch",), "torch.set_num_threads(N)"),
    "deterministic": Modifier("deterministic", ("torch",), "torch.use_deterministic_algorithms(True)"),
    "flush-denormal": Modifier("denormal", ("torch",), "torch.set_flush_denormal(True)"),
    "x64": Modifier("x64", ("jax",), "jax_enable_x64 on (int64 indices, float64)", process=True),
    "xla-deterministic": Modifier("xla", ("jax",), f"XLA_FLAGS += {XLA_DETERMINISTIC}",
                                  process=True),
}
GROUPS = ("mode", "threads", "deterministic", "denormal", "x64", "xla")
_THREADS = re.compile(r"^threads=([1-9][0-9]{0,3})$")


def many_threads():
    """Return the thread count of the `threads=N` variant in `all`: more than a default pool."""
    return max(4, os.cpu_count() or 1)


def all_for(framework):
    """Return the variants `--variant all` audits on `framework`: torch's compiled kernels under
    each thread setting too (a race between threads shows with many, and not with one)."""
    many = f"threads={many_threads()}"
    return {"numpy": [EAGER],
            "torch": [EAGER, "compile", "compile-dynamic", "threads=1", many, "compile+threads=1",
                      f"compile+{many}", "compile-dynamic+threads=1", f"compile-dynamic+{many}",
                      "deterministic", "flush-denormal"],
            "jax": [EAGER, "jit", "op-by-op", "x64", "jit+x64", "xla-deterministic"]}[framework]


def valid_names():
    """Return the names `--variant` accepts, for a usage message."""
    return [EAGER, "compile", "compile-dynamic", "threads=N", "deterministic", "flush-denormal",
            "jit", "op-by-op", "x64", "xla-deterministic", "all"]


def _modifier(part):
    match = _THREADS.match(part)
    if match:
        return "threads", int(match.group(1))
    if part in MODIFIERS and part != "threads":
        return part, None
    raise ValueError(f"unknown variant {part!r}")


@dataclass(frozen=True)
class Variant:
    """A parsed variant: its canonical name and modifiers ((name, value) pairs, group order)."""

    name: str
    modifiers: tuple = ()

    @property
    def frameworks(self):
        allowed = {"numpy", "torch", "jax"}
        for name, _ in self.modifiers:
            allowed &= set(MODIFIERS[name].frameworks)
        return allowed

    def get(self, name):
        return next((value if value is not None else True
                     for key, value in self.modifiers if key == name), None)

    @property
    def mode(self):
        return next((key for key, _ in self.modifiers if MODIFIERS[key].group == "mode"), None)

    @property
    def process(self):
        """The modifiers that need a worker process of their own, as a tuple of names."""
        return tuple(key for key, _ in self.modifiers if MODIFIERS[key].process)

    def worker_spec(self):
        """Return what the worker applies around the calls (protocol 2's `variant`)."""
        return {"mode": self.mode, "threads": self.get("threads"),
                "deterministic": bool(self.get("deterministic")),
                "flush_denormal": bool(self.get("flush-denormal"))}


def parse(name):
    """Return the Variant named `name` (`eager`, `compile`, `jit+x64`, ...); ValueError if bad."""
    name = name.strip()
    if name == EAGER:
        return Variant(EAGER)
    found = {}
    for part in name.split("+"):
        key, value = _modifier(part.strip())
        group = MODIFIERS[key].group
        if group in found:
            raise ValueError(f"variant {name!r} has two {group} settings")
        found[group] = (key, value)
    modifiers = tuple(found[g] for g in GROUPS if g in found)
    variant = Variant("+".join(k if v is None else f"{k}={v}" for k, v in modifiers), modifiers)
    if not variant.frameworks:
        raise ValueError(f"variant {name!r} mixes modifiers of different frameworks")
    return variant


def process_env(process, environ=None):
    """Return the environment overrides for a worker running the process modifiers `process`."""
    environ = os.environ if environ is None else environ
    env = {}
    if "x64" in process:
        env["JAX_ENABLE_X64"] = "1"
    if "xla-deterministic" in process:
        env["XLA_FLAGS"] = " ".join(f for f in (environ.get("XLA_FLAGS", ""), XLA_DETERMINISTIC) if f)
    return env


def select(names, framework):
    """Return the Variants of `names` (from `--variant`, `all` included) that apply to `framework`."""
    chosen = []
    for name in names:
        for each in (all_for(framework) if name == "all" else [name]):
            variant = parse(each)
            if framework in variant.frameworks and variant not in chosen:
                chosen.append(variant)
    return chosen
