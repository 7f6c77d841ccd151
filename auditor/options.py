"""Click options shared by the commands, each defined once."""
import os
import re

import click

from . import ops, registry, variants
from .model import DTYPES

#: `audit fuzz`'s defaults (kept here so the CLI reads them without importing hypothesis):
#: examples per run unless --max-examples says otherwise, and one example's size (elements).
MAX_EXAMPLES = 300
MAX_ELEMENTS = 70_000

DEVICE = re.compile(r"^(cpu|mps|metal|coreml|(cuda|rocm|tpu|tensorrt|dml)(:\d+)?)$")


def split(values):
    """Return the names in comma lists and repeated options `values`, in order."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _names(kind, valid):
    """A callback checking names against `valid` (a list, or a function returning one)."""
    def callback(ctx, param, values):
        names = split(values)
        known = valid() if callable(valid) else valid
        for name in names:
            if name not in known:
                raise click.BadParameter(unknown(kind, name, known))
        return list(dict.fromkeys(names))
    return callback


def unknown(kind, name, known):
    """Say that `name` is no `kind`; for a framework, list the registered backends."""
    if kind == "framework":
        return (f"unknown framework {name!r}; the registered backends are {', '.join(known)} "
                "('audit backends' shows which of them have their framework installed; a "
                "third-party backend registers under the entry point group argmax_audit.backends)")
    return f"unknown {kind} {name!r}; choose from {', '.join(known)}"


def _devices(ctx, param, values):
    names = split(values)
    for name in names:
        if not DEVICE.match(name):
            raise click.BadParameter(f"unknown device {name!r}; use cpu, cuda, cuda:N, mps, "
                                     "rocm, rocm:N, tpu or tpu:N")
    return list(dict.fromkeys(names))


framework = click.option(
    "--framework", "frameworks", multiple=True, callback=_names("framework", registry.names),
    help="Frameworks to audit (comma list or repeated): the installed backends, as 'audit "
         "backends' lists them (numpy, torch, jax, tensorflow, onnxruntime, ...). "
         "Default: every one installed.")
device = click.option(
    "--device", "devices", multiple=True, callback=_devices,
    help="Devices to audit: cpu, cuda (every cuda:N), cuda:N, mps, rocm, tpu, tpu:N. "
         "Default: every device each framework reports.")
dtype = click.option(
    "--dtype", "dtypes", multiple=True, callback=_names("dtype", DTYPES),
    help=f"Dtypes to audit ({', '.join(DTYPES)}). Integer dtypes and bool run the suite's "
         "integer cases (saturated into each type's range), the floating ones its float cases. "
         "Default: all, where the target supports them (the others are skipped with the reason).")
impl = click.option(
    "--impl", "impls", multiple=True, metavar="FRAMEWORK:MODULE_OR_FILE:FUNCTION",
    help="Your own argmax, audited like a built-in target and called as fn(x, dim=..., "
         "keepdim=...) with x a native array of FRAMEWORK (repeatable); add @argmin to audit "
         "an argmin. Example: torch:my_kernels:argmax_layer or numpy:./my_argmax.py:argmax.")


def _variants(ctx, param, values):
    names = []
    for name in split(values):
        try:
            names.append(name if name == "all" else variants.parse(name).name)
        except ValueError as exc:
            raise click.BadParameter(f"{exc}; choose from {', '.join(variants.valid_names())} "
                                     "(combine with +, e.g. compile+threads=1)") from None
    return list(dict.fromkeys(names))


_ops = _names("op", lambda: [*ops.OPS, "all"])


variant = click.option(
    "--variant", "variants", multiple=True, callback=_variants, metavar="NAME",
    help="Execution variants (comma list or repeated; 'audit backends' lists each backend's): "
         "eager; torch: compile (torch.compile, needs a C++ compiler on the CPU), "
         "compile-dynamic, threads=N, deterministic, flush-denormal; jax: jit, op-by-op "
         "(jax.disable_jit), x64, xla-deterministic; tensorflow: function, xla, deterministic, "
         "threads=N; onnxruntime: optimize-off, optimize-all, threads=N; combine with +, e.g. compile+threads=1; all for every one. A variant a framework does "
         "not have is skipped there. Default: eager.")
op = click.option(
    "--op", "ops", multiple=True, callback=_ops, metavar="NAME",
    help="argmax and its twins (comma list or repeated): argmax; argmin (against the mirrored "
         "rule: first minimum, NaN first); max (torch.max(x, dim).indices); topk (torch.topk, "
         "jax.lax.top_k with k=1); argsort (numpy's stable argsort, read from the right end); "
         "all for every one. User implementations are argmax unless named with @argmin. "
         "Default: argmax.")
suite = click.option(
    "--suite", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
    help="Built-in cases: quick (359 cases for argmax and its twins and their 359 mirrors for "
         "argmin: every layout x dim x keepdim, boundary row lengths, integers, float64; under "
         "30 s on 2 cores), or full (540 + 540: every multiple of 8 up to 256 and one either "
         "side, thread-chunk sizes, inputs up to 16.7M elements).")
cases = click.option(
    "--cases", "case_patterns", multiple=True, metavar="PATTERN",
    help="Only cases whose id or tag matches a glob (comma list or repeated), e.g. 'ties-*,nan'. "
         "Default: the whole suite.")
seed = click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                    help="Seed the cases are generated from.")
repeats = click.option("--repeats", type=click.IntRange(1), default=5, show_default=True,
                       help="Calls per case and target within one process (8 times as many on "
                            "cases where threads can race; a case that gives two answers is "
                            "called 200 more times in a fresh process to rate each answer).")
processes = click.option("--processes", type=click.IntRange(1), default=2, show_default=True,
                         help="Fresh processes per target, to catch nondeterminism between runs.")
def _finite(ctx, param, value):
    if value != value:  # NaN passes FloatRange
        raise click.BadParameter("must be a number of seconds, not nan")
    return value


timeout = click.option("--timeout", type=click.FloatRange(min=0, max=86400, min_open=True), default=60.0,
                       callback=_finite,
                       show_default=True, metavar="SECONDS",
                       help="Seconds one argmax call may take before its target counts as hung.")
startup_timeout = click.option(
    "--startup-timeout", type=click.FloatRange(min=0, max=86400, min_open=True), default=180.0,
    show_default=True, metavar="SECONDS", callback=_finite,
    help="Seconds a worker may take to import its framework and your implementations "
         "(building an extension included).")
jobs = click.option("--jobs", type=click.IntRange(1), default=lambda: os.cpu_count() or 2,
                    show_default="number of CPUs", help="Worker processes running at once.")
out = click.option("--out", type=click.Path(file_okay=False), default="audit-results",
                   show_default=True, help="Folder for the results bundle (results.json, arrays.npz).")
fail_on = click.option(
    "--fail-on", type=click.Choice(["warning", "error"]), default=None,
    help="Exit 1 when a finding at or above this severity is not allowed by the policy. "
         "Default: error (or fail-on in the policy file).")
config = click.option("--config", type=click.Path(dir_okay=False), default=None,
                      help="Policy file (default: ./audit.toml, else [tool.argmax-audit] in "
                           "./pyproject.toml).")
quiet = click.option("-q", "--quiet", is_flag=True, help="No progress display.")


def _output(ctx, param, value):
    """Refuse an output file whose folder is missing or read-only now, not after the run."""
    if value is None or (value == "-" and param.name == "json_file"):
        return value
    if value == "-":
        raise click.BadParameter("- (stdout) is for --json only; give a file name")
    if os.path.isdir(value):
        raise click.BadParameter(f"{value} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(value) and not os.access(value, os.W_OK)):
        raise click.BadParameter(f"cannot write {value}: permission denied")
    return value


envs = click.option(
    "--env", "env_names", multiple=True, metavar="NAME",
    help="Also audit the frameworks of environment NAME (made with 'audit env create'; "
         "repeatable): targets named like numpy/cpu/float32@NAME.")
pythons = click.option(
    "--python", "python_paths", multiple=True, metavar="PATH",
    help="Also audit the frameworks of this Python interpreter (an existing venv or conda env; "
         "repeatable; it needs Python 3.9+ and numpy 1.23+, not argmax-audit).")
no_local = click.option(
    "--no-local", is_flag=True,
    help="Leave out the frameworks of the Python running audit (with --env or --python).")
inputs = click.option(
    "--input", "input_files", multiple=True, metavar="FILE",
    help="Your model's logits or scores (.npy, .npz, .pt/.pth, .safetensors; repeatable): each "
         "array becomes a case tagged 'user', read without running code (allow_pickle=False, "
         "weights_only=True). Audited next to the built-in suite (only them: --cases user).")
store_inputs = click.option(
    "--store-inputs", is_flag=True,
    help="Keep a full copy of every --input in the bundle; by default an input over 64 MiB is "
         "kept as its path, size, sha256, answers and disputed rows.")
input_dim = click.option(
    "--input-dim", type=int, default=-1, show_default=True,
    help="The dim argmax reduces over in the input arrays (the last one: a row of class scores).")
baseline = click.option(
    "--baseline", "baseline_path", metavar="FILE",
    help="Replay exactly the cases of this baseline (a file from --save-baseline, or a bundle "
         "folder) and report every answer that differs from the baseline's target of the same "
         "framework, device, dtype and variant, whatever its version, as a regression.")
save_baseline = click.option(
    "--save-baseline", metavar="FILE", callback=_output,
    help="Also save this run's exact cases and every target's answers to FILE, for a later "
         "--baseline (e.g. before an upgrade).")
junit = click.option("--junit", metavar="FILE", callback=_output,
                     help="Also write JUnit XML: one test case per target and check, a failure "
                          "per failing finding (for GitHub Actions, GitLab, Jenkins).")
summary_md = click.option("--summary-md", metavar="FILE", callback=_output,
                          help="Also write a short Markdown summary, e.g. to $GITHUB_STEP_SUMMARY.")
json_out = click.option("--json", "json_file", metavar="FILE", callback=_output,
                        help="Also write the results document (results.json) to FILE; - for stdout "
                             "(the terminal summary then goes to stderr).")


def parse_impl(text):
    """Split `FRAMEWORK:MODULE_OR_FILE:FUNCTION[@argmin]`; raise click.BadParameter when it does
    not. `@argmin` audits the function as an argmin (the mirrored rule)."""
    from .runner import Impl

    head, sep, function = text.rpartition(":")
    function, at, op = function.partition("@")
    if at and op not in ("argmax", "argmin"):
        raise click.BadParameter(f"{text!r}: an implementation is audited @argmax (the default) "
                                 f"or @argmin, not @{op}", param_hint="--impl")
    framework, sep2, module = head.partition(":")
    if not (sep and sep2 and framework and module and function):
        raise click.BadParameter(f"{text!r} is not FRAMEWORK:MODULE_OR_FILE:FUNCTION "
                                 "(e.g. torch:my_kernels:argmax_layer)", param_hint="--impl")
    if framework not in registry.names():
        raise click.BadParameter(f"{unknown('framework', framework, registry.names())} (in "
                                 f"{text!r})", param_hint="--impl")
    if (module.endswith(".py") or "/" in module) and not os.path.isfile(module):
        raise click.BadParameter(f"file {module} does not exist", param_hint="--impl")
    return Impl(framework, module, function, op or "argmax")


executor = click.option(
    "--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
    help="Where the workers run: local (this machine), or ray (one audit across a Ray cluster, "
         "each target on a node that has its device; needs argmax-audit[ray]).")
ray_address = click.option(
    "--ray-address", metavar="ADDRESS",
    help="The Ray cluster to run on. Default: RAY_ADDRESS, else a local Ray started for the run "
         "and stopped after it. For --executor ray.")
ray_resource = click.option(
    "--ray-resource", "ray_resources", multiple=True, metavar="NAME",
    help="Run only on Ray nodes that have the custom resource NAME (repeatable; --executor ray).")
each_node = click.option(
    "--each-node", is_flag=True,
    help="Run the CPU targets on every Ray node, each labelled with its node "
         "(numpy/cpu/float32@node=HOST; --executor ray).")


cases_from = click.option(
    "--cases-from", "cases_from", multiple=True, metavar="BUNDLE_OR_FILE",
    help="Also run the cases a results bundle or baseline file holds, with their exact values "
         "(repeatable): an 'audit fuzz' bundle's shrunk examples become regression cases (only "
         "them: --cases fuzz).")


def executor_of(name, address, resources, each_node):
    """Return None for the local executor, or the RayOptions of `--executor ray`; refuse Ray
    options given without it."""
    if name != "ray":
        if address or resources or each_node:
            raise click.UsageError("--ray-address, --ray-resource and --each-node need "
                                   "--executor ray")
        return None
    from .rayexec import RayOptions, import_ray

    import_ray()  # a missing extra is one line now, before any work
    return RayOptions(address=address, resources=tuple(split(resources)), each_node=each_node)
