"""The networks: five architectures built from configuration data (the rows of :mod:`cnndemo.catalog`).

``build_net(arch, config)`` builds the bare network; ``build_model(arch, mean, std)`` wraps the demo
configuration in :class:`ImageClassifier` (padding and normalisation inside the model) so it takes
N x 1 x 28 x 28 floats in [0, 1]. Every network declares its classifier head (``get_classifier``), the
part trained when the rest is frozen (``trainable_tail``), whether it runs channels-last, and its
visual layers (``visual_kind`` on its modules; listed by :func:`visual_layers`).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from cnndemo import catalog
from cnndemo.models.common import ImageClassifier, VisualLayer, count_params, short_name, visual_layers
from cnndemo.models.course import InceptionNet, ResidualNet
from cnndemo.models.googlenet import GoogLeNet, Inception
from cnndemo.models.resnet import RESNET_CONFIGS, BasicBlock, ResNet
from cnndemo.models.vgg import VGG, VGG_CONFIGS, vgg_block


def net_class(arch: str) -> type[nn.Module]:
    """The class that builds ``arch`` (from the catalog's ``builder``, e.g. ``"vgg:VGG"``)."""
    module, cls = catalog.arch(arch).builder.split(":")
    return getattr(importlib.import_module(f"cnndemo.models.{module}"), cls)


ARCHS: dict[str, type[nn.Module]] = {name: net_class(name) for name in catalog.ARCHITECTURES}
DEMO_CONFIGS: dict[str, dict[str, Any]] = {name: a.config for name, a in catalog.ARCHITECTURES.items()}


def build_net(arch: str, config: dict[str, Any] | None = None, num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """The bare network ``arch`` built from ``config`` (keyword arguments of its class)."""
    return net_class(arch)(in_channels=in_channels, num_classes=num_classes, **(config or {}))


def build_model(arch: str, mean: float, std: float, config: dict[str, Any] | None = None,
                seed: int | None = None) -> ImageClassifier:
    """The demo model: ``config`` defaults to the catalog's (``{"net": ..., "pad": ...}``).

    ``seed`` seeds the initial weights, so a recipe reproduces its run.
    """
    config = config if config is not None else catalog.arch(arch).config
    if seed is not None:
        torch.manual_seed(seed)
    return ImageClassifier(build_net(arch, config["net"]), mean, std, pad=config.get("pad", 0))


__all__ = ["ARCHS", "DEMO_CONFIGS", "VGG", "VGG_CONFIGS", "GoogLeNet", "Inception", "ResNet", "BasicBlock",
           "RESNET_CONFIGS", "InceptionNet", "ResidualNet", "vgg_block", "ImageClassifier", "VisualLayer", "build_net", "build_model", "count_params",
           "net_class", "short_name", "visual_layers"]
