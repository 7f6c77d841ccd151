"""Every finding of a real run comes with a script that shows the same answer with the framework alone."""
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
SAW = re.compile(r"# the audit saw (.+?)(;| \(|$)")


def test_reproducers_of_a_real_run_print_what_the_audit_saw(audit, tmp_path):
    result = audit("run", "-q", "--repeats", "1", "--processes", "1",
                   "--cases", "subnormal,near-tie,inf-rows,ties-short,large-index-*")
    assert result.code in (0, 1), result.err
    checked, tried = 0, set()
    for finding in result.results["findings"]:
        if finding["severity"] == "info" or not finding["reproducer"]:
            continue
        key = (finding["kind"], finding["targets"][0])  # one script per kind and target: each
        if key in tried:                                # starts a framework, which takes seconds
            continue
        tried.add(key)
        last = finding["reproducer"].splitlines()[-1]
        expected = SAW.search(last)
        if not expected:
            continue
        run = subprocess.run([sys.executable, "-c", finding["reproducer"]], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == expected.group(1), finding["message"]
        checked += 1
    assert checked >= 6, "the run found too little to reproduce"  # jax's FTZ errors, drift warnings
