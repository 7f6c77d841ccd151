"""The `audit` command line (Click). User mistakes become one line and exit 2."""
import json
import os
import signal
import sys
import time

import click

from . import __version__, baseline, bundle, envs, options, policy
from .cases import build_suite, select
from .checks import regression, run_checks
from .checks.regression import same_case
from .envcmd import env
from .environment import inventory
from .errors import AuditError, ExitCode, UserError
from .inputs import load_inputs
from .model import DTYPES, FRAMEWORKS, SEVERITIES, Observations
from .progress import Progress
from .reports import html, junit, markdown, terminal
from .runner import Interpreter, Plan, Runner
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
@options.baseline
@options.save_baseline
@options.junit
@options.summary_md
@options.json_out
@options.quiet
def run(frameworks, devices, dtypes, impls, variants, ops, suite, case_patterns, seed, repeats,
        processes, timeout, startup_timeout, jobs, out, fail_on, config, env_names, python_paths,
        no_local, input_files, input_dim, baseline_path, save_baseline, junit, summary_md,
        json_file, quiet):
    """Call argmax repeatedly on every case and target, check the answers, write the bundle.

    Targets are every installed framework (numpy, torch, jax) on every device it reports, in every
    dtype it supports, plus each --impl, in this Python and in each --env and --python. The
    summary and the findings go to stdout, progress to stderr; the results bundle goes to --out.
    """
    rules = policy.find(config)
    interpreters = _interpreters(env_names, python_paths, no_local)
    previous = baseline.load(baseline_path) if baseline_path else None
    cases = _cases(suite, seed, case_patterns, previous, input_files, input_dim)
    fail_on = fail_on or rules.fail_on or "error"
    plan = Plan(
        frameworks=frameworks or list(FRAMEWORKS), explicit_frameworks=bool(frameworks),
        devices=devices, dtypes=dtypes or list(DTYPES),
        impls=[options.parse_impl(text) for text in impls],
        cases=cases, repeats=repeats, processes=processes, timeout=timeout, jobs=jobs,
        startup_timeout=startup_timeout, variants=variants or ["eager"], ops=ops or ["argmax"],
        interpreters=interpreters, local=not no_local,
    )
    created = bundle.prepare(out)
    metadata = {"command": ["audit", *sys.argv[1:]], "suite": suite, "seed": seed,
                "cases": list(case_patterns), "repeats": repeats, "processes": processes,
                "timeout": timeout, "startup_timeout": startup_timeout, "fail_on": fail_on, "policy": rules.source,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "complete": False}
    if previous:
        metadata["baseline"] = _baseline_facts(baseline_path, previous[2])
    try:
        observations, runner, environment, interrupted = _measure(plan, out, metadata, quiet)
    except (AuditError, click.ClickException):
        bundle.discard(out, created)  # refused before anything was measured: leave no trace
        raise
    findings = rules.apply(run_checks(observations, _check_options(rules, observations, environment,
                                                                   previous)))
    metadata.update(complete=not interrupted, seconds=round(runner.record.seconds, 3),
                    skipped=runner.record.skipped, policy_unused=rules.unused(findings))
    summary = summarize(observations, findings, fail_on, previous[0] if previous else None)
    summary["complete"] = not interrupted
    document = bundle.write(out, observations, findings, metadata, environment, summary)
    if save_baseline:
        baseline.save(save_baseline, observations, findings, metadata, environment, summary)
    _report(document, os.path.join(out, REPORT), junit, summary_md, json_file)
    _echo(f"results bundle: {os.path.join(out, bundle.RESULTS)}", err=json_file == "-")
    if save_baseline:
        _echo(f"baseline: {save_baseline}", err=json_file == "-")
    if interrupted:
        raise AuditError("interrupted: the findings above cover only what was measured before the "
                         f"stop; the bundle in {out} keeps it")
    sys.exit(ExitCode.FINDINGS if document["summary"]["verdict"] == "fail" else ExitCode.OK)


cli.add_command(env)


def _interpreters(env_names, python_paths, no_local):
    """Return the Interpreters of --env and --python, each checked and probed, labelled uniquely."""
    if no_local and not (env_names or python_paths):
        raise UserError("--no-local leaves nothing to audit: add --env NAME or --python PATH")
    found, labels = [], set()
    for label, path in [*((n, envs.resolve(n)) for n in env_names),
                        *((_python_label(p), p) for p in python_paths)]:
        probe = envs.check_python(path)
        while label in labels or label == "local":
            label += "+"
        labels.add(label)
        found.append(Interpreter(label, probe.get("path", path), probe))
    return found


def _python_label(path):
    """Name `--python PATH` in target ids: its environment folder (…/NAME/bin/python), or the
    interpreter's own name."""
    parts = os.path.abspath(path).split(os.sep)
    label = parts[-3] if len(parts) >= 3 and parts[-2] in ("bin", "Scripts") else parts[-1]
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label) or "python"


def _cases(suite, seed, patterns, previous, input_files=(), input_dim=-1):
    """Return the cases to run: the baseline's exact cases or the built-in suite's, and the
    user's --input arrays (one already in the baseline with the same values is run once)."""
    if previous:
        cases, where = list(previous[0].cases.values()), "the baseline"
    else:
        cases, where = build_suite(suite, seed), f"the {suite} suite"
    known = {case.id: case for case in cases}
    for case in load_inputs(input_files, dim=input_dim) if input_files else []:
        if case.id not in known:
            cases.append(case)
        elif not same_case(case, known[case.id]):
            raise UserError(f"--input gives case {case.id} other values than {where} holds; "
                            "rename the file to audit it as a new case")
    found = select(cases, options.split(patterns))
    if not found:
        raise UserError(f"--cases {','.join(patterns)} matches no case of {where}")
    return found


def _baseline_facts(path, document):
    metadata, environment = document.get("metadata", {}), document.get("environment", {})
    return {"path": os.path.abspath(path), "created": metadata.get("created"),
            "host": environment.get("host"),
            "frameworks": {name: info.get("version") for name, info in
                           (environment.get("frameworks") or {}).items()}}


def _check_options(rules, observations, environment, previous=None):
    """Return the options the checks take: thresholds, and the baseline to compare with."""
    found = {"max_flip_rate": rules.max_flip_rate}
    if previous:
        found.update(baseline=previous[0],
                     versions=baseline.target_versions(observations.targets, environment),
                     baseline_versions=baseline.target_versions(previous[0].targets,
                                                                previous[2]["environment"]))
    return found


@cli.command()
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(file_okay=False))
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
    are not allowed by the policy.
    """
    observations, findings, document = bundle.read(bundle_path)
    if "verdict" not in document["summary"]:  # a checkpoint: the run was killed before its end
        rules = policy.find(config)
        found = rules.apply(run_checks(observations, _check_options(
            rules, observations, document["environment"])))
        level = fail_on or document["metadata"].get("fail_on") or rules.fail_on or "error"
        document = dict(document, findings=bundle._clean([f.to_json() for f in found]),
                        summary=dict(summarize(observations, found, level), complete=False))
    elif fail_on and fail_on != document["summary"].get("fail_on"):
        _refail(document, fail_on)
    _report(document, html_file or os.path.join(bundle_path, REPORT), junit, summary_md, json_file)
    _exit(document, f"{bundle_path} holds")


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
def compare(old_path, new_path, html_file, fail_on, config, junit, summary_md, json_file):
    """Report every answer of NEW that differs from OLD as a regression (bundles or baselines).

    Targets pair by framework (or implementation), device, dtype and variant, whatever their
    versions and environments; cases by id and exact values. Exits 1 when a change fails the run
    (regressions are errors unless the policy says otherwise).
    """
    rules = policy.find(config)
    old, new = baseline.load(old_path), baseline.load(new_path)
    observations, _, document = new
    check_options = _check_options(rules, observations, document["environment"], old)
    found = rules.apply(regression.check(observations, check_options))
    fail_on = fail_on or rules.fail_on or "error"
    paired, compared, unmatched = regression.compared_pairs(observations, old[0])
    metadata = dict(document["metadata"], command=["audit", *sys.argv[1:]], fail_on=fail_on,
                    policy=rules.source, policy_unused=rules.unused(found),
                    compare={"old": os.path.abspath(old_path), "new": os.path.abspath(new_path),
                             "targets_paired": paired, "compared": compared,
                             "cases_not_in_old": unmatched},
                    baseline=_baseline_facts(old_path, old[2]))
    if not paired:
        raise UserError(f"no target of {new_path} has a target of the same framework, device, "
                        f"dtype and variant in {old_path}; nothing to compare")
    if not compared:
        raise UserError(f"no case of {new_path} is in {old_path} with the same values (other "
                        "suite, seed or inputs?); nothing to compare")
    if unmatched:
        metadata.setdefault("skipped", []).append(
            f"{len(unmatched)} case(s) of NEW are not in OLD with the same values and were not "
            f"compared: {', '.join(unmatched[:5])}" + (" ..." if len(unmatched) > 5 else ""))
    summary = summarize(observations, found, fail_on, old[0])
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
    if any(os.path.abspath(out) == os.path.abspath(p) for p in bundle_paths):
        raise UserError(f"-o {out} is one of the bundles to merge; give a new folder")
    observations, metadata, environment = merge_bundles(list(bundle_paths))
    fail_on = fail_on or rules.fail_on or "error"
    created = bundle.prepare(out)
    observations.bundle_path = os.path.abspath(out)
    try:
        findings = rules.apply(run_checks(observations, _check_options(rules, observations,
                                                                       environment)))
    except BaseException:
        bundle.discard(out, created)
        raise
    metadata.update(command=["audit", *sys.argv[1:]], fail_on=fail_on, policy=rules.source,
                    policy_unused=rules.unused(findings))
    summary = summarize(observations, findings, fail_on)
    summary["complete"] = metadata["complete"]
    document = bundle.write(out, observations, findings, metadata, environment, summary)
    _report(document, os.path.join(out, REPORT), junit, summary_md, json_file)
    _echo(f"merged bundle: {os.path.join(out, bundle.RESULTS)}", err=json_file == "-")
    _exit(document, "one of the merged bundles holds")


def _refail(document, fail_on):
    """Recompute the verdict of `document` at level `fail_on` from its findings."""
    rank = SEVERITIES.index(fail_on)
    failing = [f for f in document["findings"]
               if not f["allowed"] and SEVERITIES.index(f["severity"]) >= rank]
    document["summary"].update(fail_on=fail_on, failing=len(failing),
                               verdict="fail" if failing else "pass")


def _report(document, html_file, junit_file, summary_md, json_file):
    """Write the HTML report and the other files asked for, then print the summary.

    Files first: a reader that stops early (`audit run | head`) must not cost them."""
    echo_err = json_file == "-"  # stdout carries the JSON document
    if html_file:
        _write(html_file, html.render(document), "HTML report")
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


def _write(path, text, what):
    try:
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(text)
    except OSError as exc:
        raise UserError(f"cannot write the {what} to {path}: {exc.strerror or exc}") from None


def _measure(plan, out, metadata, quiet):
    """Run `plan`, checkpointing into `out`; return (observations, runner, environment, interrupted).

    Ctrl-C and SIGTERM stop the workers and keep what was measured (saved at once, then checked).
    """
    observations = Observations(cases={c.id: c for c in plan.cases},
                                bundle_path=os.path.abspath(out))
    progress = Progress(len(plan.cases) * plan.processes, enabled=not quiet and sys.stderr.isatty())
    runner = Runner(plan, observations, progress.update)
    first = runner.start()
    progress.total = runner.planned() * plan.processes
    observations.cases = {c.id: c for c in runner.used_cases()}  # the cases some target runs
    environment = inventory(runner.record.frameworks, runner.record.unavailable, runner.record.envs)
    runner.checkpoint = bundle.Checkpointer(out, observations, metadata, environment)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    interrupted = False
    try:
        runner.run(first)
    except KeyboardInterrupt:
        interrupted = True
        with runner.lock:
            runner.checkpoint(force=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()
    return observations, runner, environment, interrupted


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops a run like Ctrl-C: workers killed, measurements saved


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
        click.echo(f"audit: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug of ours: say so in one line, keep the traceback on request
        if os.environ.get("ARGMAX_AUDIT_DEBUG"):
            raise
        click.echo(f"audit: internal error: {type(exc).__name__}: {exc} "
                   "(set ARGMAX_AUDIT_DEBUG=1 for the traceback)", err=True)
        sys.exit(ExitCode.INTERNAL)
    sys.exit(ExitCode.OK)
