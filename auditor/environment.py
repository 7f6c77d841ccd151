"""The environment inventory: host, Python, frameworks, devices and settings that affect argmax."""
import os
import platform
import shutil
import socket
import subprocess
import sys

from . import __version__

#: Environment variables that change how frameworks compute or schedule argmax, besides those
#: each backend records (`Backend.settings_env`).
SETTINGS = ("CUBLAS_WORKSPACE_CONFIG", "CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING",
            "XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "PYTHONHASHSEED", "TORCH_DETERMINISTIC")


def settings_names():
    """Return SETTINGS and every registered backend's recorded variables."""
    from . import registry

    names = list(SETTINGS)
    for backend in registry.backends().values():
        names += [n for n in backend.settings_env if n not in names]
    return names


def _nvidia_driver():
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def inventory(frameworks, unavailable, envs=None):
    """Return the inventory dict; `frameworks` is what each worker described about itself, and
    `envs` the same for each other interpreter audited (--env, --python)."""
    return {
        "tool": {"name": "argmax-audit", "version": __version__},
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "nvidia_driver": _nvidia_driver(),
        "settings": {k: os.environ[k] for k in settings_names() if k in os.environ},
        "frameworks": frameworks,
        "unavailable": unavailable,
        "envs": envs or {},
    }
