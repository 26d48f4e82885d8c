"""Filters that learn: the kernels of a network's first convolution, as a tensor (no gradio, no matplotlib).

The first convolution looks at the pixels directly, so its kernels are the only weights that are
pictures in their own right (edge, stroke and blob detectors once trained; noise before). The
renderer is :func:`cnndemo.labs.render.filter_grid`.
"""

from __future__ import annotations

import torch
from torch import nn


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """``(name, layer)`` of the first ``nn.Conv2d`` of ``model`` in registration order.

    Every network of the zoo registers its first convolution first (the course nets declare
    ``conv1`` before the Inception / residual blocks). Raises LookupError when there is none.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise LookupError(f"{type(model).__name__} has no convolution layer.")


def first_conv_kernels(model: nn.Module) -> torch.Tensor:
    """The first convolution's weights as a CPU float tensor ``out_channels x in_channels x k x k`` (a copy)."""
    _, conv = first_conv(model)
    return conv.weight.detach().float().cpu().clone()
