"""The `audit bench` command, and `audit compare` on two bench bundles (Click).

Everything the user gives is checked before a worker starts: shapes (malformed, empty, too large
for memory), dims, the baseline (read within bounds and validated) and its machine. Progress goes
to stderr; the table to stdout (stderr with `--json -`); Ctrl-C keeps what was measured.
"""
import json
import os
import sys
import time

import click

from . import bench as bench_module
from . import benchcompare, benchfile, files, options
from .api import _impl, _interpreters, _ray_envs
from .errors import AuditError, ExitCode, UserError
from .model import DTYPES
from .reports import bench_html, bench_text

threshold_option = click.option(
    "--threshold", type=click.FloatRange(min=0, max=100), default=benchcompare.DEFAULT_THRESHOLD,
    show_default=True, callback=options._finite, metavar="FRACTION",
    help="Bench bundles: a pair is slower (exit 1) when its median grew by more than this "
         "fraction and beyond the samples' spread (0.1: 10%).")
force_option = click.option(
    "--force", is_flag=True,
    help="Bench bundles: compare timings even when they come from different machines.")


def _shapes(ctx, param, values):
    try:
        shapes = [bench_module.parse_shape(v) for v in values]
    except UserError as exc:
        raise click.UsageError(str(exc), ctx) from None
    return list(dict.fromkeys(shapes)) or list(bench_module.DEFAULT_SHAPES)


def _dims(ctx, param, values):
    try:
        dims = [bench_module.parse_dim(v) for v in options.split(values)]
    except UserError as exc:
        raise click.UsageError(str(exc), ctx) from None
    return list(dict.fromkeys(dims)) or list(bench_module.DEFAULT_DIMS)


def _json_out(ctx, param, value):
    return options._output(ctx, param, value)


@click.command()
@options.framework
@options.device
@click.option("--dtype", "dtypes", multiple=True, callback=options._names("dtype", DTYPES),
              help="Dtypes to time (comma list or repeated). Default: float32.")
@options.impl
@options.variant
@options.op
@click.option("--shape", "shapes", multiple=True, callback=_shapes, metavar="SHAPE",
              help="Input shape, sizes joined by x (repeatable). Default: 10x10, 100x100, "
                   "1000x1000, 4096x4096, 64x128256.")
@click.option("--dim", "dims", multiple=True, callback=_dims, metavar="DIM",
              help="The dim argmax reduces (repeatable, comma lists; None: the whole array). "
                   "Default: 0 and -1.")
@click.option("--samples", type=click.IntRange(1, 10_000), default=5, show_default=True,
              help="Timed samples per process, each of as many calls as last 50 ms or more "
                   "(median, IQR and min are over the samples of every process).")
@click.option("--processes", type=click.IntRange(1, 100), default=2, show_default=True,
              help="Fresh worker processes per target, one after another.")
@options.timeout
@options.startup_timeout
@options.envs
@options.pythons
@options.no_local
@click.option("--out", type=click.Path(file_okay=False), default="bench-results",
              show_default=True, help="Folder for the bench bundle (bench.json, report.html, "
                                      "summary.md).")
@click.option("--json", "json_file", metavar="FILE", callback=_json_out,
              help="Also write the bench document to FILE; - for stdout (the table then goes "
                   "to stderr).")
@click.option("--baseline", "baseline_path", metavar="OLD",
              help="A bench bundle or --json file of an earlier run: compare each target, shape "
                   "and dim with it (exit 1 when one is slower than allowed).")
@threshold_option
@force_option
@options.summary_md
@options.quiet
@options.executor
@options.ray_address
@options.ray_resource
@options.each_node
def bench(frameworks, devices, dtypes, impls, variants, ops, shapes, dims, samples, processes,
          timeout, startup_timeout, env_names, python_paths, no_local, out, json_file,
          baseline_path, threshold, force, summary_md, quiet, executor, ray_address,
          ray_resources, each_node):
    """Time argmax on the audit's targets: median, IQR and min per call, GB/s and % of a peak.

    Each target times its calls inside its worker: the input built on the device once, a first
    call (compilation) timed apart, loops calibrated like timeit's autorange, the device waited
    for, SAMPLES samples in each of PROCESSES fresh processes. The peak is a streaming reduction
    (a sum) on the same device in the same run. Exit 0; 1 when a target failed or one is slower
    than --baseline allows; 2 a usage mistake; 3 interrupted (what was measured is kept).
    """
    executor = options.executor_of(executor, ray_address, ray_resources, each_node)
    bench_module.check_dims(shapes, dims)
    bench_module.check_memory(shapes, dtypes or ["float32"])
    baseline = benchfile.load(baseline_path, "baseline") if baseline_path else None
    if baseline is not None:
        here = {"machine": _platform_machine(), "cpu": bench_module.cpu_name(),
                "cpu_count": os.cpu_count(), "memory_bytes": bench_module.total_memory()}
        benchcompare.check_machines(baseline["environment"], here, force, baseline_path,
                                    "this machine")
    benchfile.check_out(out)
    impls = [_impl(spec, frameworks) for spec in impls]
    plan = bench_module.BenchPlan(shapes=shapes, dims=dims, samples=samples, processes=processes,
                                  timeout=timeout, startup_timeout=startup_timeout)
    if executor is not None:  # on Ray, each --env is a runtime_env on every node
        executor, interpreters = _ray_envs(executor, list(env_names), list(python_paths),
                                           not no_local), []
    else:
        interpreters = _interpreters(list(env_names), list(python_paths), no_local)
    targets = bench_module.targets_plan(
        frameworks, devices, dtypes, variants, ops, impls, interpreters, not no_local, processes,
        timeout, startup_timeout)
    load_start = bench_module.load_average()
    metadata = {"command": ["audit", *sys.argv[1:]], "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    progress = bench_module.stderr_progress(not quiet)
    if executor is None:
        runner = bench_module.Bench(plan, targets, progress=progress)
    else:  # each target timed on its Ray node (auditor/raybench.py)
        from .raybench import RayBench

        metadata["executor"] = "ray"
        runner = RayBench(plan, targets, executor, progress=progress)
    runner.start()
    if baseline is not None:  # now the devices' names are known too
        try:
            benchcompare.check_machines(baseline["environment"],
                                        bench_module.environment(runner, load_start), force,
                                        baseline_path, "this machine")
        except UserError:
            runner.close()
            raise

    def checkpoint(measuring):
        benchfile.write(out, bench_module.document(measuring, load_start, metadata, False))

    runner.checkpoint = checkpoint
    interrupted = bench_module.measure(runner)
    progress.close()
    document = bench_module.document(runner, load_start, metadata, not interrupted)
    comparison = None
    if baseline is not None:
        differ = benchcompare.differences(baseline["environment"], document["environment"])
        comparison = dict(benchcompare.compare(baseline, document, threshold),
                          baseline=os.path.abspath(baseline_path), machines_differ=differ)
        document["run"]["comparison"] = comparison
    from .api import signals_deferred

    summary = bench_text.markdown(document, comparison)
    with signals_deferred():
        benchfile.write(out, document, bench_html.render(document), summary)
        if summary_md:
            files.write_text(summary_md, summary, "Markdown summary")
        if json_file and json_file != "-":
            files.write_text(json_file, benchfile.dumps(document), "bench document")
    _echo(bench_text.render(document, comparison), err=json_file == "-")
    if json_file == "-":
        _echo(benchfile.dumps(document))
    _echo(f"bench bundle: {os.path.join(out, benchfile.DOCUMENT_NAME)} (report.html, "
          "summary.md)", err=json_file == "-")
    if interrupted:
        raise AuditError(f"interrupted: the table covers what was measured before the stop; "
                         f"the bundle in {out} keeps it")
    failed = document["run"]["failures"] or (comparison and comparison["verdict"] == "fail")
    sys.exit(ExitCode.FINDINGS if failed else ExitCode.OK)


def _platform_machine():
    import platform

    return platform.machine()


def compare_bench(old_path, new_path, html_file, summary_md, json_file, threshold, force):
    """`audit compare OLD NEW` on bench bundles (or their --json files): each pair's ratio of
    medians and verdict; exit 1 when one is slower than allowed."""
    for path in (old_path, new_path):
        if not benchfile.is_bench(path):
            raise UserError(f"{files.printable(path)} is not a bench bundle; audit compare takes "
                            "two bench bundles or two results bundles, not one of each")
    old, new = benchfile.load(old_path, "bench bundle OLD"), benchfile.load(new_path,
                                                                          "bench bundle NEW")
    differ = benchcompare.check_machines(old["environment"], new["environment"], force,
                                         old_path, new_path)
    comparison = dict(benchcompare.compare(old, new, threshold),
                      old=os.path.abspath(old_path), new=os.path.abspath(new_path),
                      machines_differ=differ)
    document = dict(new, run=dict(new.get("run") or {}, comparison=comparison))
    echo_err = json_file == "-"
    if html_file:
        files.write_text(html_file, bench_html.render(document), "HTML report")
    if summary_md:
        files.write_text(summary_md, bench_text.markdown(document, comparison), "Markdown summary")
    if json_file and json_file != "-":
        files.write_text(json_file, json.dumps(comparison, indent=1), "comparison")
    lines = bench_text.render_comparison(comparison)
    if differ:
        lines.insert(0, f"machines differ (--force): {'; '.join(differ)}")
    _echo("\n".join(files.printable(line) for line in lines), err=echo_err)
    if json_file == "-":
        _echo(json.dumps(comparison, indent=1))
    sys.exit(ExitCode.FINDINGS if comparison["verdict"] == "fail" else ExitCode.OK)


def report_bench(path, html_file, summary_md, json_file):
    """`audit report BUNDLE` on a bench bundle: print its table, write its HTML report (and
    --summary-md, --json), exit as the run did."""
    document = benchfile.load(path)
    run = document.get("run") or {}
    comparison = run.get("comparison")
    html = bench_html.render(document)
    if html_file:
        files.write_text(html_file, html, "HTML report")
    elif os.path.isdir(path):
        files.write_text(os.path.join(path, benchfile.REPORT_NAME), html, "HTML report", False)
    else:  # a --json document alone: nothing is written beside someone's file unasked
        _echo("no HTML report written for a bench JSON document: give -o FILE for one", err=True)
    if summary_md:
        files.write_text(summary_md, bench_text.markdown(document, comparison), "Markdown summary")
    if json_file and json_file != "-":
        files.write_text(json_file, benchfile.dumps(document), "bench document")
    _echo(bench_text.render(document, comparison), err=json_file == "-")
    if json_file == "-":
        _echo(benchfile.dumps(document))
    if run.get("complete") is False:
        raise AuditError(f"{files.printable(path)} holds a bench that did not finish "
                         "(interrupted): the table covers what was measured")
    failed = run.get("failures") or (comparison and comparison.get("verdict") == "fail")
    sys.exit(ExitCode.FINDINGS if failed else ExitCode.OK)


def _echo(text, err=False):
    from .cli import _echo as echo

    echo(text, err=err)
