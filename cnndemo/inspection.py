"""Look inside a model with forward hooks: predictions, feature maps, Inception branches, residual blocks.

Plain torch (no gradio, no matplotlib). Hooked outputs are detached, cloned and moved to the
CPU at once, so a later in-place operation cannot overwrite them. Hooks only record calls made
from the thread that installed them, so concurrent requests sharing one model do not mix.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from cnndemo.models import VisualLayer, visual_layers


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless model)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities (CPU float, 10) for a 1 x 1 x 28 x 28 input."""
    logits = model(x.to(model_device(model)))
    return torch.softmax(logits.float(), dim=1)[0].cpu()


def top_k(probs: torch.Tensor, classes: list[str], k: int = 5) -> dict[str, float]:
    """The ``k`` most probable classes, best first, as {class name: probability}."""
    values, idx = probs.topk(min(k, len(classes)))
    return {classes[i]: float(v) for v, i in zip(values.tolist(), idx.tolist())}


@contextmanager
def capture(model: nn.Module, names: Iterable[str], inputs: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs (and with ``inputs=True`` also the inputs, as ``name + ":in"``) of submodules.

    Usage::

        with capture(model, ["net.conv1"]) as seen:
            model(x)
        seen["net.conv1"]  # CPU tensor, a clone
    """
    owner = threading.get_ident()
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        module = model.get_submodule(name)

        def hook(_m, args, output, name=name):
            if threading.get_ident() != owner:
                return
            seen[name] = output.detach().float().cpu().clone()
            if inputs:
                seen[name + ":in"] = args[0].detach().float().cpu().clone()

        handles.append(module.register_forward_hook(hook))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


@dataclass
class FeatureMaps:
    """One layer's activation for one input: ``maps`` is C x H x W (CPU float)."""

    layer: VisualLayer
    maps: torch.Tensor
    probs: torch.Tensor

    @property
    def channel_max(self) -> torch.Tensor:
        """Max activation of each channel (C)."""
        return self.maps.flatten(1).max(1).values

    def strongest(self, k: int | None = None) -> list[int]:
        """Channel indices sorted by max activation, strongest first (the first ``k``)."""
        order = torch.argsort(self.channel_max, descending=True).tolist()
        return order[:k] if k else order


def find_layer(model: nn.Module, name: str) -> VisualLayer:
    """The :class:`VisualLayer` called ``name`` (the dotted path, or its label)."""
    for layer in visual_layers(model):
        if name in (layer.name, layer.label, layer.name.removeprefix("net.")):
            return layer
    raise KeyError(f"no visualisable layer {name!r}; choose from {[l.name for l in visual_layers(model)]}")


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor, layer: str) -> FeatureMaps:
    """The activation of ``layer`` (a name from ``visual_layers``) for input ``x`` (1 x 1 x 28 x 28)."""
    vl = find_layer(model, layer)
    with capture(model, [vl.name]) as seen:
        logits = model(x.to(model_device(model)))
    return FeatureMaps(vl, seen[vl.name][0], torch.softmax(logits.float(), 1)[0].cpu())


@dataclass
class Branch:
    """One Inception branch's output: ``maps`` is C x H x W."""

    name: str
    label: str
    maps: torch.Tensor
    energy_share: float  # this branch's share of the module output's sum of squares

    @property
    def channels(self) -> int:
        return int(self.maps.shape[0])


@dataclass
class InceptionView:
    """All four branches of one Inception module for one input."""

    module: str
    label: str
    out_channels: int
    branches: list[Branch]


def inception_modules(model: nn.Module) -> list[VisualLayer]:
    """The Inception modules of ``model`` (empty for networks without any)."""
    return [l for l in visual_layers(model) if l.kind == "inception"]


def residual_modules(model: nn.Module) -> list[VisualLayer]:
    """The residual blocks of ``model`` (empty for networks without any)."""
    return [l for l in visual_layers(model) if l.kind == "residual"]


@torch.no_grad()
def inception_branches(model: nn.Module, x: torch.Tensor, module: str) -> InceptionView:
    """The four branch outputs of Inception module ``module`` with channel counts and energy shares."""
    candidates = inception_modules(model)
    vl = next((l for l in candidates if module in (l.name, l.label, l.name.removeprefix("net."))), None)
    if vl is None:
        raise KeyError(f"no Inception module {module!r}; choose from {[l.name for l in candidates]}")
    mod = model.get_submodule(vl.name)
    names = [f"{vl.name}.{b}" for b in mod.branch_names]
    with capture(model, [vl.name, *names]) as seen:
        model(x.to(model_device(model)))
    energies = [float(seen[n].pow(2).sum()) for n in names]
    total = sum(energies) or 1.0
    branches = [
        Branch(n, label, seen[n][0], e / total) for n, label, e in zip(names, mod.branch_labels, energies)
    ]
    return InceptionView(vl.name, vl.label, int(seen[vl.name].shape[1]), branches)


@dataclass
class ResidualView:
    """One residual block for one input: x, F(x), shortcut(x) and out = relu(F(x) + shortcut(x))."""

    name: str
    x: torch.Tensor
    fx: torch.Tensor
    shortcut: torch.Tensor
    out: torch.Tensor

    @property
    def ratio(self) -> float:
        """‖F(x)‖ / ‖x‖: how big a change the block adds to what flows past it."""
        nx = float(self.x.norm())
        return float(self.fx.norm()) / nx if nx else float("inf")


@torch.no_grad()
def residual_blocks(model: nn.Module, x: torch.Tensor) -> list[ResidualView]:
    """Every residual block's x, F(x), shortcut(x) and output for input ``x``, in forward order."""
    blocks = residual_modules(model)
    device = model_device(model)
    with capture(model, [b.name for b in blocks], inputs=True) as seen:
        model(x.to(device))
    views = []
    for b in blocks:
        mod = model.get_submodule(b.name)
        xin = seen[b.name + ":in"].to(device)
        fx = mod.residual(xin)
        sc = mod.shortcut(xin) if hasattr(mod, "shortcut") else xin
        views.append(ResidualView(b.name, xin[0].cpu(), fx[0].float().cpu(), sc[0].float().cpu(), seen[b.name][0]))
    return views
