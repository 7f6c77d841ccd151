"""Planted fault: replaces NaN in its input, in place, then answers correctly for what is left."""
import torch


def argmax(x, dim=None, keepdim=False):
    x.nan_to_num_(nan=-1e30)
    return torch.argmax(x, dim=dim, keepdim=keepdim)
