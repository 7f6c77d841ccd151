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

from . import registry

EAGER = "eager"
#: XLA flags users set for deterministic results (re-exported from the jax backend).
XLA_DETERMINISTIC = "--xla_gpu_deterministic_ops=true"


@dataclass(frozen=True)
class Modifier:
    group: str
    frameworks: tuple
    words: str
    process: bool = False  # True: needs a worker process of its own (on some framework)


_THREADS = re.compile(r"^threads=([1-9][0-9]{0,3})$")
_tables = {}


def _table():
    """Return (modifiers {name: Modifier}, groups in order) from the registered backends."""
    entries = registry.entries()
    if _tables.get("of") is not entries:
        modifiers, groups = {}, []
        for backend in registry.backends().values():
            for name, spec in backend.modifiers.items():
                known = modifiers.get(name)
                if spec.group not in groups:
                    groups.append(spec.group)
                if known is None:
                    modifiers[name] = Modifier(spec.group, (backend.name,), spec.words, spec.process)
                else:
                    modifiers[name] = Modifier(known.group, (*known.frameworks, backend.name),
                                               f"{known.words}; {spec.words}",
                                               known.process or spec.process)
        _tables.update(of=entries, modifiers=modifiers, groups=tuple(groups))
    return _tables["modifiers"], _tables["groups"]


def __getattr__(name):
    """`MODIFIERS` and `GROUPS`, gathered from the backends."""
    if name == "MODIFIERS":
        return _table()[0]
    if name == "GROUPS":
        return _table()[1]
    raise AttributeError(name)


def many_threads():
    """Return the thread count of the `threads=N` variant in `all`: more than a default pool."""
    return max(4, os.cpu_count() or 1)


def all_for(framework):
    """Return the variants `--variant all` audits on `framework` (its backend's `all_variants`,
    `MANY` standing for `many_threads()`): for torch, its compiled kernels under each thread
    setting too (a race between threads shows with many, and not with one)."""
    many = str(many_threads())
    names = registry.get(framework).all_variants
    return [name.replace("threads=MANY", f"threads={many}") for name in names]


def valid_names():
    """Return the names `--variant` accepts, for a usage message."""
    modifiers = _table()[0]
    return [EAGER, *(f"{n}=N" if n == "threads" else n for n in modifiers), "all"]


def _modifier(part):
    modifiers = _table()[0]
    match = _THREADS.match(part)
    if match and "threads" in modifiers:
        return "threads", int(match.group(1))
    if part in modifiers and part != "threads":
        return part, None
    raise ValueError(f"unknown variant {part!r}")


def _spec(framework, name):
    """Return the backend Modifier `name` of `framework`, or None."""
    try:
        return registry.get(framework).modifiers.get(name)
    except KeyError:
        return None


@dataclass(frozen=True)
class Variant:
    """A parsed variant: its canonical name and modifiers ((name, value) pairs, group order)."""

    name: str
    modifiers: tuple = ()

    @property
    def frameworks(self):
        allowed = set(registry.backends())
        for name, _ in self.modifiers:
            allowed &= set(_table()[0][name].frameworks)
        return allowed

    def get(self, name):
        return next((value if value is not None else True
                     for key, value in self.modifiers if key == name), None)

    @property
    def mode(self):
        return next((key for key, _ in self.modifiers if _table()[0][key].group == "mode"), None)

    @property
    def process(self):
        """The modifiers that need a worker process of their own on some framework this variant
        applies to (`Variant.process_for` says which, for one framework)."""
        frameworks = self.frameworks
        return tuple(key for key, _ in self.modifiers
                     if any(getattr(_spec(fw, key), "process", False) for fw in frameworks))

    def process_for(self, framework):
        """The modifiers that need a worker process of their own on `framework`, as they are
        written in the variant's name (`x64`, `threads=1`: a number is part of the process)."""
        return tuple(key if value is None else f"{key}={value}" for key, value in self.modifiers
                     if getattr(_spec(framework, key), "process", False))

    def worker_spec(self):
        """Return what the worker applies around the calls (protocol 2's `variant`)."""
        return {"mode": self.mode, "threads": self.get("threads"),
                "deterministic": bool(self.get("deterministic")),
                "flush_denormal": bool(self.get("flush-denormal")),
                **{key: value if value is not None else True for key, value in self.modifiers
                   if key not in ("threads", "deterministic", "flush-denormal")
                   and _table()[0][key].group != "mode"}}


def parse(name):
    """Return the Variant named `name` (`eager`, `compile`, `jit+x64`, ...); ValueError if bad."""
    name = name.strip()
    if name == EAGER:
        return Variant(EAGER)
    modifiers_table, groups = _table()
    found = {}
    for part in name.split("+"):
        key, value = _modifier(part.strip())
        group = modifiers_table[key].group
        if group in found:
            raise ValueError(f"variant {name!r} has two {group} settings")
        found[group] = (key, value)
    modifiers = tuple(found[g] for g in groups if g in found)
    variant = Variant("+".join(k if v is None else f"{k}={v}" for k, v in modifiers), modifiers)
    if not variant.frameworks:
        raise ValueError(f"variant {name!r} mixes modifiers of different frameworks")
    return variant


def process_env(process, environ=None, framework=None):
    """Return the environment overrides for a worker running the process modifiers `process`
    (names as `Variant.process_for` gives them) of `framework` (default: whichever backend has
    each). A value `("append", text)` adds to what the user set; `{N}` stands for the number."""
    environ = os.environ if environ is None else environ
    env = {}
    for part in process:
        name, _, number = part.partition("=")
        frameworks = [framework] if framework else _table()[0][name].frameworks
        spec = next((s for s in (_spec(fw, name) for fw in frameworks) if s is not None), None)
        for key, value in (spec.env if spec else ()):
            if isinstance(value, tuple) and value[0] == "append":
                env[key] = " ".join(f for f in (environ.get(key, ""), value[1]) if f)
            else:
                env[key] = value.replace("{N}", number)
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
