"""Building blocks shared by the model families, and the layer listing used for inspection."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


class ConvBNReLU(nn.Sequential):
    """conv(k x k) -> [BatchNorm] -> ReLU; padding keeps H and W when stride is 1.

    Not in-place: a forward hook on a conv output must not be overwritten by the ReLU.
    """

    visual_kind = "conv"

    def __init__(self, in_c: int, out_c: int, kernel_size: int, stride: int = 1, batch_norm: bool = False):
        layers: list[nn.Module] = [
            nn.Conv2d(in_c, out_c, kernel_size, stride=stride, padding=kernel_size // 2, bias=not batch_norm)
        ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_c))
        layers.append(nn.ReLU())
        super().__init__(*layers)


def scale(channels: int, ratio: int) -> int:
    """Width divisor like Dive into Deep Learning's ``ratio``: ``channels // ratio``, at least 1."""
    return max(1, channels // ratio)


class Preprocess(nn.Module):
    """What the data needs before the network: optional zero padding, then normalisation.

    Input: N x C x H x W floats in [0, 1] (white ink on black, as in MNIST).
    Only buffers, no parameters, so parameter counts stay those of the bare network.
    """

    def __init__(self, mean: float, std: float, pad: int = 0):
        super().__init__()
        self.pad = pad
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)  # N x C x (H+2p) x (W+2p), padded with background 0
        return (x - self.mean) / self.std


class ImageClassifier(nn.Module):
    """A pretrained model as the app uses it: ``prep`` (padding, normalisation) then ``net``.

    The network's own declarations are passed through: ``get_classifier()`` (the final Linear),
    ``trainable_tail()`` (what trains when the rest is frozen) and ``channels_last``.
    """

    def __init__(self, net: nn.Module, mean: float, std: float, pad: int = 0):
        super().__init__()
        self.prep = Preprocess(mean, std, pad)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.prep(x))

    def get_classifier(self) -> nn.Linear:
        return self.net.get_classifier()

    def trainable_tail(self) -> list[nn.Module]:
        return self.net.trainable_tail()

    @property
    def channels_last(self) -> bool:
        return getattr(self.net, "channels_last", True)


def short_name(name: str) -> str:
    """A layer's name without the ``net.`` prefix of :class:`ImageClassifier` (``net.layer1.0`` -> ``layer1.0``)."""
    return name.removeprefix("net.")


@dataclass(frozen=True)
class VisualLayer:
    """A layer worth looking at.

    ``name`` is the dotted path for ``model.get_submodule``; ``kind`` is one of
    ``conv`` (a convolution's activation), ``block`` (a VGG block), ``inception``
    (a whole Inception module), ``branch`` (one of its four branches), ``residual``
    (a residual block).
    """

    name: str
    kind: str
    label: str


_LISTINGS: "weakref.WeakKeyDictionary[nn.Module, tuple[VisualLayer, ...]]" = weakref.WeakKeyDictionary()


def visual_layers(model: nn.Module) -> list[VisualLayer]:
    """List, in forward order, the layers whose outputs are worth visualising.

    Modules opt in with a ``visual_kind`` class attribute; a bare ``nn.Conv2d`` counts as
    ``conv``. What sits inside a conv unit, an Inception module or a residual block is left
    out: it is shown through its module (the Inception branches are listed right after
    their module instead). Cached per model (the live canvas asks several times a second;
    walking GoogLeNet's module tree costs milliseconds); the cache never keeps a model alive.
    """
    if model not in _LISTINGS:
        _LISTINGS[model] = tuple(_list_visual_layers(model))
    return list(_LISTINGS[model])


def _list_visual_layers(model: nn.Module) -> list[VisualLayer]:
    out: list[VisualLayer] = []
    containers: list[str] = []
    for name, module in model.named_modules():
        kind = getattr(module, "visual_kind", "conv" if isinstance(module, nn.Conv2d) else None)
        if kind is None or any(name.startswith(c + ".") for c in containers):
            continue
        short = short_name(name)
        out.append(VisualLayer(name, kind, f"{short} ({kind})"))
        if kind in ("inception", "residual", "conv"):
            containers.append(name)
        if kind == "inception":
            for branch, label in zip(module.branch_names, module.branch_labels):
                out.append(VisualLayer(f"{name}.{branch}", "branch", f"{short} / {label} branch"))
    return out


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())
