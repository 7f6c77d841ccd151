"""Mutation testing of the code that decides (checks, oracle, policy, verdict, exit codes, pairing).

mutmut 3 names each mutant after the module its file path spells (`checks/api.py` -> `checks.api`)
and only activates it where the running function's `__module__` is that name; here the checks
import as `auditor.checks` (setuptools package-dir). So this script stages the sources in the
standard layout mutmut expects (`src/auditor/`, with checks/ and reports/ in their import places),
runs `mutmut run` there on the scoped functions with the fast tests that cover them, and prints the
score: killed / (mutants - the equivalent ones listed in tests/mutation-equivalent.txt).

    python scripts/mutation.py                  # the whole scope (tox -e mutation)
    python scripts/mutation.py 'auditor.policy.*'   # a subset, by mutant-name glob

mutmut skips decorated functions; the staging step rewrites `@property` methods of auditor/model.py
as `name = property(name)` (the same class, the same behaviour) so that the suite's rules
(`Case.must_raise`, `Case.output_shape`, `Outcome.kind`, ...) are mutated too. Click command bodies
stay out: their exit-code lines are covered through `_exit`, `_refail` and `main`.
Exits 1 when the score is under --min (default 90), 2 when the staging or the clean run fails.
"""
import argparse
import ast
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGE = os.path.join(ROOT, ".mutation")
EQUIVALENT = os.path.join(ROOT, "tests", "mutation-equivalent.txt")

#: The files mutmut mutates (staged paths) and the functions of them in scope (mutant-name globs).
FILES = ["src/auditor/checks/*", "src/auditor/oracle.py", "src/auditor/policy.py",
         "src/auditor/summary.py", "src/auditor/cli.py", "src/auditor/api.py",
         "src/auditor/model.py"]
SCOPE = [
    "auditor.checks.*",
    "auditor.oracle.*",
    "auditor.policy.*",
    "auditor.summary.*",
    # the exit-code path and what decides the run's cases and check options
    "auditor.cli.x__exit__mutmut_*", "auditor.cli.x__refail__mutmut_*",
    "auditor.cli.x_main__mutmut_*", "auditor.api.x_check_options__mutmut_*",
    "auditor.api.x__cases__mutmut_*",
    # the suite's rules: what must raise, the output shape, which answer is the modal one
    "auditor.model.x_severity_rank__mutmut_*",
    "auditor.model.xǁCaseǁ*", "auditor.model.xǁOutcomeǁ*", "auditor.model.xǁObservationsǁ*",
]
#: The fast, in-process tests of the modules in scope (slow and GPU tests are deselected).
TESTS = ["tests/test_oracle.py", "tests/test_policy.py", "tests/test_checks.py",
         "tests/test_check_api.py", "tests/test_check_consistency.py",
         "tests/test_check_crash.py", "tests/test_check_determinism.py",
         "tests/test_check_precision.py", "tests/test_check_reference.py",
         "tests/test_check_regression.py", "tests/test_cases.py", "tests/test_report_cli.py",
         "tests/test_cli.py", "tests/test_baseline.py", "tests/test_merge.py",
         "tests/test_rules_*.py"]
CONFIG = """
[tool.mutmut]
source_paths = ["src/"]
only_mutate = {files}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not slow and not gpu", "-q"]
pytest_add_cli_args_test_selection = {tests}
"""


def _ignore(folder, names):
    return [n for n in names if n in ("__pycache__", ".hypothesis", ".pytest_cache")]


def stage():
    """Copy the sources into STAGE in the standard layout and write mutmut's configuration."""
    shutil.rmtree(STAGE, ignore_errors=True)
    src = os.path.join(STAGE, "src", "auditor")
    shutil.copytree(os.path.join(ROOT, "auditor"), src, ignore=_ignore)
    for folder in ("checks", "reports"):
        shutil.copytree(os.path.join(ROOT, folder), os.path.join(src, folder), ignore=_ignore)
    shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(STAGE, "tests"), ignore=_ignore)
    tests = sorted({os.path.relpath(p, STAGE) for pattern in TESTS
                    for p in _glob(os.path.join(STAGE, pattern))})
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as handle:
        text = handle.read()
    with open(os.path.join(STAGE, "pyproject.toml"), "w", encoding="utf-8") as handle:
        handle.write(text + CONFIG.format(files=json.dumps(FILES), tests=json.dumps(tests)))
    _unwrap_properties(os.path.join(src, "model.py"))


def _glob(pattern):
    folder, name = os.path.split(pattern)
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if fnmatch.fnmatch(n, name)]


def _unwrap_properties(path):
    """Rewrite each `@property` method of the classes in `path` as `name = property(name)`."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    edits = []
    for node in ast.walk(ast.parse("".join(lines))):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if (isinstance(item, ast.FunctionDef) and len(item.decorator_list) == 1
                    and isinstance(item.decorator_list[0], ast.Name)
                    and item.decorator_list[0].id == "property"):
                indent = " " * item.col_offset
                edits.append((item.end_lineno, f"{indent}{item.name} = property({item.name})\n"))
                edits.append((item.decorator_list[0].lineno - 1, None))
    for line, text in sorted(edits, key=lambda e: -e[0]):
        if text is None:
            del lines[line]
        else:
            lines.insert(line, text)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(lines))


def equivalent():
    """Return {mutant name: why} from tests/mutation-equivalent.txt (`name  # why` per line)."""
    found = {}
    with open(EQUIVALENT, encoding="utf-8") as handle:
        for line in handle:
            name, _, why = line.partition("#")
            if name.strip():
                found[name.strip()] = why.strip()
    return found


def results():
    """Return {mutant name: status} of every mutant in scope, from mutmut's meta files."""
    from mutmut.stats import status_by_exit_code

    found = {}
    for folder, _, names in os.walk(os.path.join(STAGE, "mutants", "src")):
        for name in names:
            if not name.endswith(".meta"):
                continue
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                codes = json.load(handle)["exit_code_by_key"]
            for key, code in codes.items():
                if any(fnmatch.fnmatchcase(key, p) for p in SCOPE):
                    found[key] = status_by_exit_code[code]
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", help="mutant-name globs (default: the whole scope)")
    parser.add_argument("--min", type=float, default=90.0, help="lowest score that passes (%%)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    start = time.monotonic()
    stage()
    mutmut = os.path.join(os.path.dirname(sys.executable), "mutmut")
    done = subprocess.run([mutmut, "run", "--max-children", str(args.jobs),
                           *(args.patterns or SCOPE)], cwd=STAGE)
    if done.returncode not in (0, 1):
        print(f"mutation: mutmut run failed with exit code {done.returncode}", file=sys.stderr)
        return 2
    statuses = {k: s for k, s in results().items()
                if not args.patterns or any(fnmatch.fnmatchcase(k, p) for p in args.patterns)}
    same = equivalent()
    counted = {k: s for k, s in statuses.items() if k not in same and s != "not checked"}
    killed = [k for k, s in counted.items() if s in ("killed", "timeout", "segfault")]
    alive = sorted(k for k in counted if k not in killed)
    for key in alive:
        print(f"  {counted[key]}: {key}   (cd .mutation && mutmut show {key})")
    score = 100.0 * len(killed) / len(counted) if counted else 100.0
    print(f"mutation score: {len(killed)} of {len(counted)} non-equivalent mutants killed "
          f"({score:.1f}%); {len(statuses) - len(counted)} listed as equivalent or not checked; "
          f"{time.monotonic() - start:.0f} s")
    return 0 if score >= args.min else 1


if __name__ == "__main__":
    sys.exit(main())
