"""A custom C++ argmax for torch, built with torch.utils.cpp_extension, to audit with --impl.

Two kernels share one loop over rows of the last dim:
- `argmax` keeps the first maximum and lets the first NaN win, as torch.argmax does;
- `argmax_fast` is the version a kernel author might write first: `>=` instead of `>`, and NaN
  never compares greater, so it returns the last of tied maxima and skips NaN.

    audit run --framework torch --dtype float32 \\
        --impl torch:examples/custom_kernel/argmax_ext.py:argmax \\
        --impl torch:examples/custom_kernel/argmax_ext.py:argmax_fast

The extension is compiled on first import (a C++ compiler and ninja are needed; torch caches the
build under ~/.cache/torch_extensions).
"""
import torch
from torch.utils.cpp_extension import load_inline

SOURCE = r"""
#include <torch/extension.h>
#include <cmath>

template <bool Fast>
torch::Tensor rows_argmax(torch::Tensor x) {
  auto rows = x.contiguous().to(torch::kFloat64).view({-1, x.size(-1)});
  auto out = torch::empty({rows.size(0)}, torch::kInt64);
  auto v = rows.accessor<double, 2>();
  auto o = out.accessor<int64_t, 1>();
  for (int64_t r = 0; r < rows.size(0); ++r) {
    int64_t best = 0;
    for (int64_t i = 1; i < rows.size(1); ++i) {
      if (Fast) {
        if (v[r][i] >= v[r][best]) best = i;
      } else {
        if (std::isnan(v[r][best])) break;
        if (std::isnan(v[r][i]) || v[r][i] > v[r][best]) best = i;
      }
    }
    o[r] = best;
  }
  return out;
}

torch::Tensor argmax_rows(torch::Tensor x) { return rows_argmax<false>(x); }
torch::Tensor argmax_rows_fast(torch::Tensor x) { return rows_argmax<true>(x); }
"""

_ext = load_inline(name="argmax_audit_example_ext", cpp_sources=SOURCE,
                   functions=["argmax_rows", "argmax_rows_fast"], verbose=False)


def _call(kernel, x, dim, keepdim):
    if x.numel() == 0 and (dim is None or x.shape[dim] == 0):
        raise IndexError("argmax of an empty reduction")
    moved = x.reshape(-1) if dim is None else x.movedim(dim, -1)
    if moved.ndim == 0:
        moved = moved.reshape(1)
    if moved.shape[-1] == 0 or moved.numel() == 0:
        out = torch.empty(moved.shape[:-1], dtype=torch.int64)
    else:
        out = kernel(moved.cpu()).reshape(moved.shape[:-1]).to(x.device)
    if dim is None:
        return out.reshape((1,) * x.ndim) if keepdim else out.reshape(())
    return out.unsqueeze(dim) if keepdim else out


def argmax(x, dim=None, keepdim=False):
    """The correct kernel: first maximum, first NaN."""
    return _call(_ext.argmax_rows, x, dim, keepdim)


def argmax_fast(x, dim=None, keepdim=False):
    """The planted faults: last of tied maxima, NaN skipped."""
    return _call(_ext.argmax_rows_fast, x, dim, keepdim)
