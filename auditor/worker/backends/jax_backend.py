"""JAX on every device it reports: cpu, gpu (as cuda:N or rocm:N) and tpu (as tpu:N)."""
import os

import jax
import jax.numpy as jnp
import numpy as np

from . import as_indices, cpu_name, layout_base

_SETTINGS_ENV = ("XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64", "TF_CPP_MIN_LOG_LEVEL")


def _x64():
    return bool(jax.config.read("jax_enable_x64"))


def _devices():
    """Return {audit device id: jax device}, cpu first."""
    found = {}
    for backend in ("cpu", "gpu", "tpu"):
        try:
            devices = jax.devices(backend)
        except RuntimeError:
            continue
        for i, device in enumerate(devices):
            if backend == "cpu":
                if i == 0:
                    found["cpu"] = device
            elif backend == "gpu":
                kind = "rocm" if "rocm" in device.client.platform_version.lower() else "cuda"
                found[f"{kind}:{i}"] = device
            else:
                found[f"tpu:{i}"] = device
    return found


class Adapter:
    name = "jax"

    def __init__(self):
        self.devices = _devices()

    def describe(self):
        dtypes = ["float32", "float16", "bfloat16"] + (["float64"] if _x64() else [])
        unsupported = {} if _x64() else {"float64": "jax_enable_x64 is off (JAX_ENABLE_X64=1)"}
        devices = []
        for key, device in self.devices.items():
            name = cpu_name() if key == "cpu" else getattr(device, "device_kind", str(device))
            devices.append({"id": key, "name": name,
                            "platform_version": device.client.platform_version,
                            "dtypes": dtypes, "unsupported": unsupported})
        import jaxlib
        return {
            "version": jax.__version__,
            "build": {"jaxlib": getattr(jaxlib, "__version__", None)},
            "devices": devices,
            "index_dtype": "int64" if _x64() else "int32",
            "settings": {"x64": _x64(),
                         **{k: os.environ[k] for k in _SETTINGS_ENV if k in os.environ}},
        }

    def to_native(self, host, dtype, device, layout):
        """Return `host` (the worker's private array of `dtype`; bfloat16 as bits) in `layout`."""
        base = layout_base(host, layout)
        if dtype == "bfloat16":
            base = base.view(jnp.bfloat16)
        base = jax.device_put(base, self.devices[device])  # a numpy dtype: no convert op compiled
        if host.ndim == 0 or layout == "contiguous":
            return base.reshape(host.shape)
        if layout == "transposed":
            return jnp.transpose(base)
        if layout == "strided":
            return base[..., ::2]
        return jnp.broadcast_to(base, host.shape)

    def argmax(self, x, dim, keepdim):
        return jnp.argmax(x, axis=dim, keepdims=keepdim)

    def synchronize(self, device, result):
        if hasattr(result, "block_until_ready"):
            result.block_until_ready()

    def to_host(self, x):
        return None  # jax arrays are immutable: nothing to check

    def to_numpy(self, result):
        if not isinstance(result, jax.Array):
            raise TypeError(f"returned {type(result).__name__}, not a jax.Array")
        return as_indices(np.asarray(result), "jax.Array")
