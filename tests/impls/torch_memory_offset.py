"""Planted fault for torch, the shape of a real torch.compile bug: for a whole-input reduction
(dim=None) of a permuted (transposed) view it returns the memory offset of the first maximum in
memory order instead of its logical index. Every other call is torch.argmax's."""
import torch


def _dense_permutation(x):
    """True when `x` is a non-contiguous view whose elements fill its memory densely in some
    axis order (a transpose or permutation of a contiguous tensor)."""
    order = sorted(range(x.ndim), key=lambda a: -x.stride(a))
    expected = 1
    for axis in reversed(order):
        if x.stride(axis) != expected:
            return False
        expected *= x.shape[axis]
    return not x.is_contiguous()


def argmax(x, dim=None, keepdim=False):
    if dim is None and x.ndim > 1 and _dense_permutation(x):
        memory = torch.as_strided(x, (x.numel(),), (1,), x.storage_offset())
        index = torch.argmax(memory)  # an offset into memory, not an index into the view
        return index.reshape((1,) * x.ndim) if keepdim else index
    return torch.argmax(x, dim=dim, keepdim=keepdim)
