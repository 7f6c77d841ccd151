"""PyTorch on the CPU, every CUDA device and MPS where present."""
import os

import torch

from . import as_indices, cpu_name, layout_base

_DTYPES = {"float32": torch.float32, "float16": torch.float16,
           "bfloat16": torch.bfloat16, "float64": torch.float64}
_SETTINGS_ENV = ("CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "CUDA_VISIBLE_DEVICES", "TORCH_DETERMINISTIC")


class Adapter:
    name = "torch"

    def describe(self):
        devices = [{"id": "cpu", "name": cpu_name(), "dtypes": list(_DTYPES), "unsupported": {}}]
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                devices.append({"id": f"cuda:{i}", "name": props.name,
                                "capability": f"{props.major}.{props.minor}",
                                "memory_gb": round(props.total_memory / 2**30, 1),
                                "dtypes": list(_DTYPES), "unsupported": {}})
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            devices.append({"id": "mps", "name": "Apple MPS",
                            "dtypes": ["float32", "float16", "bfloat16"],
                            "unsupported": {"float64": "MPS has no float64"}})
        return {
            "version": torch.__version__,
            "build": {"cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None),
                      "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
                      "git": getattr(torch.version, "git_version", None)},
            "devices": devices,
            "index_dtype": "int64",
            "settings": {
                "num_threads": torch.get_num_threads(),
                "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                "cudnn_deterministic": torch.backends.cudnn.deterministic,
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
                **{k: os.environ[k] for k in _SETTINGS_ENV if k in os.environ},
            },
        }

    def to_native(self, host, dtype, device, layout):
        """Return `host` (the worker's private array of `dtype`; bfloat16 as bits) in `layout`."""
        base = layout_base(host, layout)
        if dtype == "bfloat16":
            base = torch.from_numpy(base.view("int16")).view(torch.bfloat16)
        else:
            base = torch.from_numpy(base)
        base = base.to(device=device)
        if host.ndim == 0 or layout == "contiguous":
            return base.reshape(host.shape)
        if layout == "transposed":
            return base.permute(*reversed(range(host.ndim)))
        if layout == "strided":
            return base[..., ::2]
        return base.expand(*host.shape)

    def argmax(self, x, dim, keepdim):
        return torch.argmax(x, dim=dim, keepdim=keepdim)

    def synchronize(self, device, result):
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        elif device == "mps":
            torch.mps.synchronize()

    def to_host(self, x):
        return x.detach().cpu().to(torch.float64).numpy()

    def to_numpy(self, result):
        if not isinstance(result, torch.Tensor):
            raise TypeError(f"returned {type(result).__name__}, not a torch.Tensor")
        result = result.detach().cpu()
        name = str(result.dtype).removeprefix("torch.")
        if result.dtype.is_floating_point:
            return as_indices(result.to(torch.float64).numpy(), "Tensor", name)
        if result.dtype in (torch.bool, torch.uint8, torch.int8, torch.int16,
                            torch.int32, torch.int64):
            return result.to(torch.int64).numpy(), name
        raise TypeError(f"returned Tensor of {name}, not integer indices")
