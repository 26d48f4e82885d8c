"""The model zoo: five architectures, each built from configuration data.

``build_net(arch, config)`` builds the bare network; ``build_model(arch, dataset)`` wraps the
demo configuration in :class:`ImageClassifier` (padding and normalisation inside the model)
so it takes N x 1 x 28 x 28 floats in [0, 1].
"""

from __future__ import annotations

from typing import Any

from torch import nn

from cnndemo.models.common import ImageClassifier, VisualLayer, count_params, visual_layers
from cnndemo.models.course import InceptionNet, ResidualNet
from cnndemo.models.googlenet import GoogLeNet, Inception
from cnndemo.models.resnet import RESNET_CONFIGS, BasicBlock, ResNet
from cnndemo.models.vgg import VGG, VGG_CONFIGS, vgg_block

ARCHS: dict[str, type[nn.Module]] = {
    "vgg11": VGG,
    "googlenet": GoogLeNet,
    "resnet18": ResNet,
    "inception_net": InceptionNet,
    "residual_net": ResidualNet,
}

# The pretrained ("demo") configurations for 28 x 28 inputs. ``pad`` is applied inside the model.
DEMO_CONFIGS: dict[str, dict[str, Any]] = {
    # VGG-11 / 4 (the book's ratio) with BatchNorm; 28 -> 32 padding so five 2x2 pools end at 1 x 1.
    "vgg11": {
        "net": {"conv_arch": [list(b) for b in VGG_CONFIGS["vgg11"]], "ratio": 4, "batch_norm": True,
                "hidden": 4096, "final_size": 1, "dropout": 0.5},
        "pad": 2,
    },
    # GoogLeNet / 4 with BatchNorm and a small stem: stages at 14, 7, 4 pixels.
    "googlenet": {"net": {"ratio": 4, "batch_norm": True, "stem": "small", "dropout": 0.4}, "pad": 0},
    # ResNet-18 with width 16 (16-32-64-128) and a 3x3 stem without max-pool: stages at 28, 14, 7, 4.
    "resnet18": {"net": {"layers": list(RESNET_CONFIGS["resnet18"]), "width": 16, "stem": "small"}, "pad": 0},
    # The course nets exactly as in seed 002.
    "inception_net": {"net": {}, "pad": 0},
    "residual_net": {"net": {}, "pad": 0},
}


def build_net(arch: str, config: dict[str, Any] | None = None, num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """The bare network ``arch`` built from ``config`` (keyword arguments of its class)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose from {sorted(ARCHS)}")
    return ARCHS[arch](in_channels=in_channels, num_classes=num_classes, **(config or {}))


def build_model(arch: str, mean: float, std: float, config: dict[str, Any] | None = None) -> ImageClassifier:
    """The demo model: ``config`` defaults to ``DEMO_CONFIGS[arch]`` (``{"net": ..., "pad": ...}``)."""
    config = config if config is not None else DEMO_CONFIGS[arch]
    return ImageClassifier(build_net(arch, config["net"]), mean, std, pad=config.get("pad", 0))


__all__ = [
    "ARCHS", "DEMO_CONFIGS", "VGG", "VGG_CONFIGS", "GoogLeNet", "Inception", "ResNet", "BasicBlock",
    "RESNET_CONFIGS", "InceptionNet", "ResidualNet", "ImageClassifier", "VisualLayer", "build_net",
    "build_model", "count_params", "visual_layers", "vgg_block",
]
