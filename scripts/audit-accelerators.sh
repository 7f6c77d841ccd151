#!/usr/bin/env bash
# Audit every accelerator present in one go, for a machine with a GPU (CI has none).
#
#   scripts/audit-accelerators.sh OUTDIR [extra audit run options]
#
# Installs this project without touching the frameworks already there (a CUDA torch or jax stays),
# runs `audit run` on the CPU and on each accelerator found (every cuda:N, mps, tpu), each into
# OUTDIR/<device>, and prints every summary. Exit status: the worst of the runs.
set -uo pipefail
out=${1:?usage: scripts/audit-accelerators.sh OUTDIR [audit run options]}
shift
cd "$(dirname "$0")/.."
mkdir -p "$out"

python3 -m pip install -q --no-deps -e . >/dev/null
python3 -m pip install -q 'click>=8.2' 'jinja2>=3.1' 'ml_dtypes>=0.2' >/dev/null

devices=$(python3 - <<'PY'
found = ["cpu"]
try:
    import torch
    found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append("mps")
except Exception:
    pass
try:
    import jax
    for backend in ("gpu", "tpu"):
        try:
            n = len(jax.devices(backend))
        except RuntimeError:
            continue
        if backend == "gpu":
            rocm = "rocm" in jax.devices("gpu")[0].client.platform_version.lower()
            found += [f"{'rocm' if rocm else 'cuda'}:{i}" for i in range(n)]
        else:
            found += [f"tpu:{i}" for i in range(n)]
except Exception:
    pass
print(" ".join(dict.fromkeys(found)))
PY
)
echo "devices: $devices"
worst=0
for device in $devices; do
  echo "== audit run --device $device"
  python3 -m auditor run -q --device "$device" --out "$out/${device/:/-}" "$@"
  rc=$?
  echo "== exit $rc"
  [ $rc -gt $worst ] && worst=$rc
done
exit $worst
