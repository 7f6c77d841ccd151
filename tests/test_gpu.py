"""GPU paths: the same audit on every CUDA/MPS device present; skipped where there is none."""
import json

import pytest

from auditor.cli import cli

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
ACCELERATORS = (["cuda"] if torch.cuda.is_available() else []) + (
    ["mps"] if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else [])


@pytest.mark.skipif(not ACCELERATORS, reason="no CUDA or MPS device")
@pytest.mark.parametrize("device", ACCELERATORS)
def test_audit_on_accelerator(tmp_path, device):
    from click.testing import CliRunner

    out = tmp_path / "bundle"
    result = CliRunner().invoke(cli, ["run", "-q", "--framework", "torch", "--device", device,
                                      "--repeats", "3", "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    document = json.loads((out / "results.json").read_text())
    devices = {t["device"] for t in document["targets"]}
    assert any(d.startswith(device) for d in devices)
    assert all(not f["kind"] == "crash" for f in document["findings"]), result.output
