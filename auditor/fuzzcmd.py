"""The `audit fuzz` command: the target options of `audit run`, a budget, and the same outputs."""
import os
import sys

import click

from . import bundle, options
from .errors import AuditError, ExitCode, UserError
from .options import MAX_ELEMENTS, MAX_EXAMPLES


def _budget(ctx, param, value):
    if value is not None and not value == value:
        raise click.BadParameter("must be a number of seconds, not nan")
    return value


@click.command("fuzz")
@options.framework
@options.device
@options.dtype
@options.impl
@options.variant
@options.op
@click.option("--max-examples", type=click.IntRange(1), default=MAX_EXAMPLES, show_default=True,
              help="Examples hypothesis generates (shrinking comes on top).")
@click.option("--time", "seconds", type=click.FloatRange(min=0, max=10**7, min_open=True),
              default=None, callback=_budget, metavar="SECONDS",
              help="Wall-clock budget for the search, shrinking included; when it runs out the "
                   "search stops and keeps every finding so far. Default: no limit.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the search: same seed, same targets, same examples (after the ones "
                   "the example database replays).")
@click.option("--max-elements", type=click.IntRange(1, 2**25), default=MAX_ELEMENTS,
              show_default=True, help="Largest input an example may have (elements).")
@click.option("--database", "database", metavar="DIR", type=click.Path(file_okay=False),
              default=None, help="Hypothesis's example database, so a rerun tries earlier "
                                 "failures first. Default: $ARGMAX_AUDIT_HOME/fuzz-db (else "
                                 "~/.cache/argmax-audit/fuzz-db).")
@click.option("--no-database", is_flag=True, help="Keep no example database.")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True,
              help="Calls per example and target within one process.")
@click.option("--processes", type=click.IntRange(1), default=1, show_default=True,
              help="Warm worker processes per target; each example runs in every one.")
@options.timeout
@options.startup_timeout
@options.out
@options.fail_on
@options.config
@options.envs
@options.pythons
@options.no_local
@options.junit
@options.summary_md
@options.json_out
@options.quiet
@options.executor
@options.ray_address
@options.ray_resource
@options.each_node
def fuzz(frameworks, devices, dtypes, impls, variants, ops, max_examples, seconds, seed,
         max_elements, database, no_database, repeats, processes, timeout, startup_timeout, out,
         fail_on, config, env_names, python_paths, no_local, junit, summary_md, json_file, quiet,
         executor, ray_address, ray_resources, each_node):
    """Search for inputs that break argmax's rule on the targets, and shrink each to a minimal one.

    Hypothesis generates shapes, layouts, dims and adversarial values; each example runs on every
    target through warm workers with the checks and policy of 'audit run'. Each distinct (kind,
    targets) is shrunk to a minimal example, kept in the bundle with its exact values and a
    reproducer; 'audit run --cases-from BUNDLE' replays them as cases. Progress goes to stderr.
    """
    from . import api
    from .cli import REPORT, _echo, _report

    if database and no_database:
        raise UserError("--database and --no-database contradict each other; give one")
    try:
        impl_specs = [api._impl(spec, frameworks) for spec in impls]
    except UserError:
        raise
    executor = options.executor_of(executor, ray_address, ray_resources, each_node)
    if executor is not None:  # on Ray, each --env is a runtime_env on every node
        executor, interpreters = api._ray_envs(executor, list(env_names), list(python_paths),
                                               not no_local), []
    else:
        interpreters = api._interpreters(list(env_names), list(python_paths), no_local)
    from .fuzz import FuzzProgress, database_folder, fuzz_audit  # hypothesis: only for fuzz

    display = None if quiet else FuzzProgress()

    def reports(document, folder):
        if display:
            display.close()
        _report(document, os.path.join(folder, REPORT), junit, summary_md, json_file, True)

    document, stats, interrupted = fuzz_audit(
        frameworks=frameworks, devices=devices, dtypes=dtypes or None, variants=variants,
        ops=ops, impls=impl_specs, repeats=repeats, processes=processes, timeout=timeout,
        startup_timeout=startup_timeout, out=out, fail_on=fail_on, config=config,
        interpreters=interpreters, local=not no_local, max_examples=max_examples,
        seconds=seconds, seed=seed, max_elements=max_elements,
        database=None if no_database else (database or database_folder()),
        progress=display, command=["audit", *sys.argv[1:]], after_save=reports,
        executor=executor)
    err = json_file == "-"
    _echo(describe(document["metadata"]["fuzz"]), err=err)
    _echo(f"results bundle: {os.path.join(out, bundle.RESULTS)}", err=err)
    if interrupted:
        raise AuditError("interrupted: the findings above are those found before the stop; the "
                         f"bundle in {out} keeps them")
    sys.exit(ExitCode.FINDINGS if document["summary"]["verdict"] == "fail" else ExitCode.OK)


def describe(facts):
    """Say in two lines how the search went: examples, rate, compile time, time shares."""
    shares = facts["shares"]
    warm = facts.get("examples_per_s_warm")
    rate = f"{facts['examples_per_s']:.1f}/s" + (f", {warm:.1f}/s after warm-up" if warm else "")
    compiled = (f"; compiling: {facts['compile_s']:.1f} s for {facts['compiles']} signatures "
                f"(a pool of {facts['signatures']})" if facts["compiles"] else "")
    stopped = {"time": "the --time budget ran out", "interrupt": "interrupted",
               "max-examples": "--max-examples generated"}.get(facts["stopped"], facts["stopped"])
    fresh = min(facts["generated"], facts["examples"])
    return (f"fuzz: {facts['examples']} examples judged in {facts['seconds']:.1f} s ({rate}), "
            f"{fresh} of them fresh, the others replayed or shrinking; stopped: {stopped}"
            f"{compiled}\n"
            f"time shares: generation {shares['generation']:.0%}, IPC and workers "
            f"{shares['ipc']:.0%}, calls {shares['calls']:.0%}, compiling {shares['compile']:.0%}, "
            f"checks {shares['checks']:.0%}")
