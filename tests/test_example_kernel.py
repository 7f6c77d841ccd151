"""The custom C++ kernel example: the correct kernel stays clean, the fast one is caught."""
import os
import shutil

import pytest

pytest.importorskip("torch")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("c++") and shutil.which("ninja")),
                       reason="building a torch C++ extension needs c++ and ninja"),
]
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "examples", "custom_kernel", "argmax_ext.py")


def _blamed(document, target):
    return {f["kind"] for f in document["findings"]
            if target in (f["evidence"].get("blame") or f["targets"])}


def test_a_compiled_kernel_is_audited_against_torch(audit):
    good, fast = f"torch:{EXAMPLE}:argmax", f"torch:{EXAMPLE}:argmax_fast"
    result = audit("run", "-q", "--framework", "torch", "--dtype", "float32", "--repeats", "2",
                   "--processes", "1", "--impl", good, "--impl", fast,
                   "--cases", "ties-short,ties-far-1025,nan-rows,dims-*,scalar*,empty*,layout-*")
    document = result.results
    assert result.code == 1
    assert _blamed(document, f"torch[{EXAMPLE}:argmax]/cpu/float32") == set()
    assert _blamed(document, f"torch[{EXAMPLE}:argmax_fast]/cpu/float32") == {"tie_break", "nan_policy"}
    rows = {r["target"]: r for r in document["summary"]["targets"]}
    assert rows[f"torch[{EXAMPLE}:argmax_fast]/cpu/float32"]["tie_policy"] == "last"
