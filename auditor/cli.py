"""The `audit` command line (Click). User mistakes become one line and exit 2."""
import dataclasses
import json
import os
import sys

import click

from . import __version__, baseline, benchfile, bundle, files, lean, options, policy
from .api import baseline_facts, check_options, run_audit, save
from .backendcmd import backends
from .benchcli import (  # audit bench (issue 14)
    bench,
    compare_bench,
    force_option,
    report_bench,
    threshold_option,
)
from .checks import regression, run_checks
from .envcmd import env
from .errors import AuditError, ExitCode, UserError
from .fuzzcmd import fuzz
from .model import KINDS, SEVERITIES
from .reports import html, junit, markdown, terminal
from .summary import summarize

#: The HTML report's name inside a results bundle.
REPORT = "report.html"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="argmax-audit")
def cli():
    """Audit argmax: nondeterminism, tie-breaking, NaN handling, precision drift and wrong indices
    across frameworks, devices and dtypes.

    Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 a usage mistake
    (bad option, unreadable file, unknown framework/device/dtype); 3 the audit could not run.
    """


@cli.command()
@options.framework
@options.device
@options.dtype
@options.impl
@options.variant
@options.op
@options.suite
@options.cases
@options.seed
@options.repeats
@options.processes
@options.timeout
@options.startup_timeout
@options.jobs
@options.out
@options.fail_on
@options.config
@options.envs
@options.pythons
@options.no_local
@options.inputs
@options.input_dim
@options.store_inputs
@options.cases_from
@options.baseline
@options.save_baseline
@options.junit
@options.summary_md
@options.json_out
@options.quiet
@options.executor
@options.ray_address
@options.ray_resource
@options.each_node
def run(frameworks, devices, dtypes, impls, variants, ops, suite, case_patterns, seed, repeats,
        processes, timeout, startup_timeout, jobs, out, fail_on, config, env_names, python_paths,
        no_local, input_files, input_dim, store_inputs, cases_from, baseline_path, save_baseline,
        junit, summary_md, json_file, quiet, executor, ray_address, ray_resources, each_node):
    """Call argmax repeatedly on every case and target, check the answers, write the bundle.

    Targets are every installed framework (numpy, torch, jax) on every device it reports, in every
    dtype it supports, plus each --impl, in this Python and in each --env and --python. The
    summary and the findings go to stdout, progress to stderr; the results bundle goes to --out.
    """
    def reports(document, folder):  # written while a second Ctrl-C still waits
        _report(document, os.path.join(folder, REPORT), junit, summary_md, json_file, True)

    result, interrupted = run_audit(
        impls=impls, frameworks=frameworks, devices=devices, dtypes=dtypes, variants=variants,
        ops=ops, suite=suite, cases=case_patterns, seed=seed, repeats=repeats,
        processes=processes, timeout=timeout, startup_timeout=startup_timeout, jobs=jobs,
        inputs=input_files, input_dim=input_dim, store_inputs=store_inputs,
        baseline=baseline_path,
        save_baseline=save_baseline, out=out, fail_on=fail_on, config=config, envs=env_names,
        pythons=python_paths, local=not no_local, progress=not quiet and sys.stderr.isatty(),
        command=["audit", *sys.argv[1:]], after_save=reports, cases_from=cases_from,
        executor=options.executor_of(executor, ray_address, ray_resources, each_node))
    _echo(f"results bundle: {os.path.join(out, bundle.RESULTS)}", err=json_file == "-")
    if save_baseline:
        _echo(f"baseline: {save_baseline}", err=json_file == "-")
    if interrupted:
        raise AuditError("interrupted: the findings above cover only what was measured before the "
                         f"stop; the bundle in {out} keeps it")
    sys.exit(ExitCode.FINDINGS if result.verdict == "fail" else ExitCode.OK)


cli.add_command(env)
cli.add_command(bench)
cli.add_command(backends)
cli.add_command(fuzz)  # audit fuzz: auditor/fuzzcmd.py


@cli.command()
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path())
@click.option("-o", "--output", "html_file", metavar="FILE", callback=options._output,
              help="Where to write the HTML report. Default: BUNDLE/report.html.")
@options.fail_on
@options.config
@options.junit
@options.summary_md
@options.json_out
def report(bundle_path, html_file, fail_on, config, junit, summary_md, json_file):
    """Render the reports of a saved results bundle; needs no framework installed.

    Prints the summary, writes the HTML report (and --junit, --summary-md, --json where given),
    and exits like the run did: 1 when findings at or above --fail-on (default: the run's level)
    are not allowed by the policy. With --config, the run's observations are checked again under
    that policy (its thresholds, severities and allowed findings); the bundle keeps its own.
    """
    if benchfile.is_bench(bundle_path):  # a bench bundle (audit bench, issue 14)
        if junit or fail_on or config:
            raise UserError("--junit, --fail-on and --config are for results bundles, not bench "
                            "bundles")
        return report_bench(bundle_path, html_file, summary_md, json_file)
    if os.path.lexists(bundle_path) and not os.path.isdir(bundle_path):
        raise UserError(f"{files.printable(bundle_path)} is a file: give a results bundle's folder, or "
                        "a bench bundle or bench JSON document")
    rules = policy.find(config)  # checked even where the saved verdict stands
    observations, findings, document = bundle.read(bundle_path)
    if "verdict" not in document["summary"]:  # a checkpoint: the run was killed before its end
        found = rules.apply(run_checks(observations, check_options(
            rules, observations, document["environment"])))
        level = fail_on or document["metadata"].get("fail_on") or rules.fail_on or "error"
        document = dict(document, findings=bundle._clean([f.to_json() for f in found]),
                        summary=dict(summarize(observations, found, level), complete=False))
    elif config is not None:  # a policy given by name: the run's observations judged by it
        document = _rejudge(document, observations, findings, rules, fail_on)
    elif fail_on and fail_on != document["summary"].get("fail_on"):
        _refail(document, fail_on)
    _report(document, html_file or os.path.join(bundle_path, REPORT), junit, summary_md, json_file,
            in_bundle=not html_file)
    _exit(document, f"{bundle_path} holds")


def _rejudge(document, observations, saved, rules, fail_on):
    """Return `document` with its findings checked again under `rules` (`audit report --config`):
    thresholds, severities and allowed findings as that policy says. Regression findings, made
    against a baseline the bundle does not hold, are kept and given the policy's severity."""
    kept = [dataclasses.replace(f, severity=KINDS[f.kind], allowed=None) for f in saved
            if f.kind == "regression"]
    found = rules.apply(run_checks(observations, check_options(
        rules, observations, document["environment"])) + kept)
    level = fail_on or rules.fail_on or document["metadata"].get("fail_on") or "error"
    summary = dict(summarize(observations, found, level),
                   complete=document["summary"].get("complete", True))
    summary["user"] = document["summary"].get("user", summary["user"])  # needs the baseline too
    _keep_fuzz_rows(document, summary)
    metadata = dict(document["metadata"], policy=rules.source, policy_unused=rules.unused(found),
                    fail_on=level)
    return dict(document, findings=bundle._clean([f.to_json() for f in found]), summary=summary,
                metadata=metadata)


def _keep_fuzz_rows(document, summary):
    """Give a fuzz bundle's `summary`, made again from its observations, the saved per-target
    counts: they cover every example the search judged, not only the cases the bundle keeps."""
    if document["metadata"].get("suite") != "fuzz":
        return
    saved = {row.get("target"): row for row in document["summary"].get("targets", [])}
    summary["targets"] = [
        dict(row, **{key: saved.get(row["target"], {}).get(key, row[key])
                     for key in ("cases", "calls", "tie_policy", "nan_policy")})
        for row in summary["targets"]]


def _exit(document, subject):
    """Exit as the run did: 3 for a run that did not finish, else by the verdict."""
    if not (document["summary"].get("complete") and document["metadata"].get("complete", True)):
        raise AuditError(f"{subject} a run that did not finish (interrupted or killed): the "
                         "findings above cover only what was measured")
    sys.exit(ExitCode.FINDINGS if document["summary"].get("verdict") == "fail" else ExitCode.OK)


@cli.command()
@click.argument("old_path", metavar="OLD")
@click.argument("new_path", metavar="NEW")
@click.option("-o", "--output", "html_file", metavar="FILE", callback=options._output,
              help="Also write an HTML report of the changes to FILE.")
@options.fail_on
@options.config
@options.junit
@options.summary_md
@options.json_out
@threshold_option
@force_option
def compare(old_path, new_path, html_file, fail_on, config, junit, summary_md, json_file,
            threshold, force):
    """Report every answer of NEW that differs from OLD as a regression (bundles or baselines).

    Targets pair by framework (or implementation), device, dtype and variant, whatever their
    versions and environments; cases by id and exact values. Exits 1 when a change fails the run
    (regressions are errors unless the policy says otherwise).

    On two bench bundles (audit bench --out, or their --json files): each target, shape and dim's
    ratio of medians with a noise-aware verdict; exits 1 when one is slower than --threshold and
    the samples' spread allow. Timings of different machines are refused unless --force.
    """
    if benchfile.is_bench(old_path) or benchfile.is_bench(new_path):  # audit bench (issue 14)
        if junit or fail_on or config:
            raise UserError("--junit, --fail-on and --config are for results bundles, not bench "
                            "bundles")
        return compare_bench(old_path, new_path, html_file, summary_md, json_file, threshold,
                             force)
    rules = policy.find(config)
    old, new = baseline.load(old_path), baseline.load(new_path)
    observations, _, document = new
    found = rules.apply(regression.check(observations, check_options(
        rules, observations, document["environment"], old)))
    fail_on = fail_on or rules.fail_on or "error"
    paired, compared, unmatched = regression.compared_pairs(observations, old[0])
    metadata = dict(document["metadata"], command=["audit", *sys.argv[1:]], fail_on=fail_on,
                    policy=rules.source, policy_unused=rules.unused(found),
                    compare={"old": os.path.abspath(old_path), "new": os.path.abspath(new_path),
                             "targets_paired": paired, "compared": compared,
                             "cases_not_in_old": unmatched},
                    baseline=baseline_facts(old_path, old[2]))
    if not paired:
        raise UserError(f"no target of {new_path} has a target of the same framework, device, "
                        f"dtype and variant in {old_path}; nothing to compare")
    differ = [text for text in (lean.changed_input(case, old[0].cases[case.id], old_path)
                                for case in observations.cases.values() if case.id in old[0].cases)
              if text]  # user inputs whose file changed: said, never compared
    if not compared:
        raise UserError(f"no case of {new_path} is in {old_path} with the same values (other "
                        "suite, seed or inputs?)" + "".join(f"; {d}" for d in differ)
                        + "; nothing to compare")
    if differ:
        metadata.setdefault("skipped", []).extend(differ)
    if unmatched:
        metadata.setdefault("skipped", []).append(
            f"{len(unmatched)} case(s) of NEW are not in OLD with the same values and were not "
            f"compared: {', '.join(unmatched[:5])}" + (" ..." if len(unmatched) > 5 else ""))
    summary = summarize(observations, found, fail_on, old[0])
    _keep_fuzz_rows(document, summary)
    result = dict(document, metadata=metadata, summary=summary,
                  findings=bundle._clean([f.to_json() for f in found]))
    _report(result, html_file, junit, summary_md, json_file)
    sys.exit(ExitCode.FINDINGS if summary["verdict"] == "fail" else ExitCode.OK)


@cli.command()
@click.argument("bundle_paths", metavar="BUNDLE...", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Folder for the merged results bundle (results.json, arrays.npz, report.html).")
@options.fail_on
@options.config
@options.junit
@options.summary_md
@options.json_out
def merge(bundle_paths, out, fail_on, config, junit, summary_md, json_file):
    """Join bundles made on different machines and check them together.

    Each machine's targets are labelled with its host name (e.g. torch/cpu/float32@cpu-runner),
    and every check runs on the union, so drift between CPU, CUDA and TPU is found although no
    machine had all of them. The bundles must come from the same suite and seed. Exits like
    `audit run` on the merged findings.
    """
    from .merge import merge as merge_bundles

    rules = policy.find(config)
    if any(files.same_place(out, p) for p in bundle_paths):
        raise UserError(f"-o {out} is one of the bundles to merge; give a new folder")
    observations, metadata, environment = merge_bundles(list(bundle_paths))
    fail_on = fail_on or rules.fail_on or "error"
    created = bundle.prepare(out)
    observations.bundle_path = os.path.abspath(out)
    try:
        findings = rules.apply(run_checks(observations, check_options(rules, observations,
                                                                       environment)))
    except BaseException:
        bundle.discard(out, created)
        raise
    metadata.update(command=["audit", *sys.argv[1:]], fail_on=fail_on, policy=rules.source,
                    policy_unused=rules.unused(findings))
    summary = summarize(observations, findings, fail_on)
    summary["complete"] = metadata["complete"]
    document = save(out, observations, findings, metadata, environment, summary)
    _report(document, os.path.join(out, REPORT), junit, summary_md, json_file, True)
    _echo(f"merged bundle: {os.path.join(out, bundle.RESULTS)}", err=json_file == "-")
    _exit(document, "one of the merged bundles holds")


def _refail(document, fail_on):
    """Recompute the verdict of `document` at level `fail_on` from its findings."""
    rank = SEVERITIES.index(fail_on)
    failing = [f for f in document["findings"]
               if not f["allowed"] and SEVERITIES.index(f["severity"]) >= rank]
    document["summary"].update(fail_on=fail_on, failing=len(failing),
                               verdict="fail" if failing else "pass")


def _report(document, html_file, junit_file, summary_md, json_file, in_bundle=False):
    """Write the HTML report and the other files asked for, then print the summary.

    Files first: a reader that stops early (`audit run | head`) must not cost them. `in_bundle`:
    the HTML report goes into a bundle folder (from elsewhere, maybe), where whatever sits at its
    name is replaced, a FIFO included; the files the user names may be streams."""
    echo_err = json_file == "-"  # stdout carries the JSON document
    if html_file:
        _write(html_file, html.render(document), "HTML report", streams=not in_bundle)
    if junit_file:
        _write(junit_file, junit.render(document), "JUnit XML")
    if summary_md:
        _write(summary_md, markdown.render(document, report=html_file), "Markdown summary")
    if json_file and json_file != "-":
        _write(json_file, json.dumps(document, indent=1), "results document")
    _echo(terminal.render(document, color=sys.stdout.isatty() and not echo_err), err=echo_err)
    if json_file == "-":
        _echo(json.dumps(document, indent=1))
    if html_file:
        _echo(f"HTML report: {html_file}", err=echo_err)


def _echo(text, err=False):
    """Print `text`; a reader that went away (`audit run | head`) ends the printing, not the run."""
    try:
        click.echo(text, err=err)
        (sys.stderr if err else sys.stdout).flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, (sys.stderr if err else sys.stdout).fileno())


def _write(path, text, what, streams=True):
    files.write_text(path, text, what, streams)  # a link at `path` is replaced, not followed


def main(argv=None):
    """Run the CLI; turn the tool's errors and Click's usage errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="audit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("audit: aborted", err=True)
        sys.exit(ExitCode.INTERNAL)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help())
        sys.exit(ExitCode.USAGE)
    except click.UsageError as exc:
        hint = f" (see 'audit {exc.ctx.info_name} --help')" if exc.ctx and exc.ctx.parent else ""
        click.echo(f"audit: error: {exc.format_message()}{hint}", err=True)
        sys.exit(ExitCode.USAGE)
    except click.ClickException as exc:
        click.echo(f"audit: error: {exc.format_message()}", err=True)
        sys.exit(ExitCode.USAGE)
    except AuditError as exc:
        click.echo(f"audit: error: {files.printable(exc)}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug of ours: say so in one line, keep the traceback on request
        if os.environ.get("ARGMAX_AUDIT_DEBUG"):
            raise
        click.echo(f"audit: internal error: {type(exc).__name__}: {files.printable(exc)} "
                   "(set ARGMAX_AUDIT_DEBUG=1 for the traceback)", err=True)
        sys.exit(ExitCode.INTERNAL)
    sys.exit(ExitCode.OK)
