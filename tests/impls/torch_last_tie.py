"""Planted fault for torch: breaks ties towards the LAST maximum."""
import torch


def argmax(x, dim=None, keepdim=False):
    if x.ndim == 0:
        return torch.argmax(x, dim=dim, keepdim=keepdim)
    if dim is None:
        flat = x.reshape(-1).flip(0)
        index = flat.numel() - 1 - torch.argmax(flat)
        return index.reshape((1,) * x.ndim) if keepdim else index
    flipped = x.flip(dim)
    return x.shape[dim] - 1 - torch.argmax(flipped, dim=dim, keepdim=keepdim)
