"""The analysis of one input: one forward pass with hooks captures everything the views show.

:func:`analyse` takes a model and a prepared 1 x 1 x 28 x 28 input and returns an :class:`Analysis`:
the class probabilities plus the captured activations (feature maps of the chosen layers, the four
branches of the chosen Inception module, every residual block's x, F(x), shortcut and output). The
views render from it; nothing runs the model again. Plain torch: no gradio, no matplotlib.
"""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cnndemo.device import inference_threads
from cnndemo.inspection.hooks import capture
from cnndemo.models import VisualLayer, short_name, visual_layers
from cnndemo.train.evaluation import model_device


class UnknownLayer(LookupError):
    """A layer or module name that the model does not have; ``str(error)`` lists the valid ones."""

    def __str__(self) -> str:  # KeyError-style quoting would wrap the message in quotes
        return str(self.args[0])


def top_k(probs: torch.Tensor, classes: list[str] | tuple[str, ...], k: int = 5) -> dict[str, float]:
    """The ``k`` most probable classes, best first, as {class name: probability}."""
    values, idx = probs.topk(min(k, len(classes)))
    return {classes[i]: float(v) for v, i in zip(values.tolist(), idx.tolist())}


def find(layers: list[VisualLayer], name: str, what: str = "layer") -> VisualLayer:
    """The layer called ``name`` (its dotted path, with or without ``net.``, or its label)."""
    for layer in layers:
        if name in (layer.name, layer.label, short_name(layer.name)):
            return layer
    choices = ", ".join(short_name(l.name) for l in layers) or "none"
    raise UnknownLayer(f"Unknown {what} {name!r}: choose one of {choices}.")


def inception_modules(model: nn.Module) -> list[VisualLayer]:
    """The Inception modules of ``model`` (empty for networks without any)."""
    return [l for l in visual_layers(model) if l.kind == "inception"]


def residual_modules(model: nn.Module) -> list[VisualLayer]:
    """The residual blocks of ``model`` (empty for networks without any)."""
    return [l for l in visual_layers(model) if l.kind == "residual"]


@dataclass
class FeatureMaps:
    """One layer's activation for one input: ``maps`` is C x H x W (CPU float)."""

    layer: VisualLayer
    maps: torch.Tensor

    @property
    def channel_max(self) -> torch.Tensor:
        """Max activation of each channel (C)."""
        return self.maps.flatten(1).max(1).values

    def strongest(self, k: int | None = None) -> list[int]:
        """Channel indices sorted by max activation, strongest first (the first ``k``)."""
        order = torch.argsort(self.channel_max, descending=True).tolist()
        return order[:k] if k else order


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


@dataclass
class Analysis:
    """Everything the views show for one input, from one forward pass."""

    probs: torch.Tensor  # 10 class probabilities (CPU)
    features: dict[str, FeatureMaps] = field(default_factory=dict)  # by layer name
    inception: InceptionView | None = None
    residual: list[ResidualView] = field(default_factory=list)

    def top(self, classes, k: int = 5) -> dict[str, float]:
        return top_k(self.probs, classes, k)


@torch.no_grad()
def analyse(model: nn.Module, x: torch.Tensor, layers: list[str] = (), module: str | None = None,
            residual: bool = False) -> Analysis:
    """One forward pass of ``x`` (1 x 1 x 28 x 28) capturing the feature maps of ``layers``, the branches
    of Inception ``module`` and, with ``residual``, every residual block. Unknown names raise
    :class:`UnknownLayer` before the model runs."""
    listing = visual_layers(model)
    chosen = [find(listing, name) for name in layers]
    outputs = [l.name for l in chosen]
    incep = None
    if module is not None:
        incep = find([l for l in listing if l.kind == "inception"], module, "Inception module")
        mod = model.get_submodule(incep.name)
        outputs += [incep.name, *(f"{incep.name}.{b}" for b in mod.branch_names)]
    blocks = [l for l in listing if l.kind == "residual"] if residual else []
    block_in = []
    for b in blocks:
        mod = model.get_submodule(b.name)
        outputs += [b.name, f"{b.name}.{mod.residual_branch}"]
        if mod.shortcut_branch:
            outputs.append(f"{b.name}.{mod.shortcut_branch}")
        block_in.append(b.name)
    device = model_device(model)
    with capture(model, outputs, inputs=block_in) as seen, inference_threads(device):
        logits = model(x.to(device))
    result = Analysis(torch.softmax(logits.float(), 1)[0].cpu())
    result.features = {l.name: FeatureMaps(l, seen[l.name][0]) for l in chosen}
    if incep is not None:
        mod = model.get_submodule(incep.name)
        names = [f"{incep.name}.{b}" for b in mod.branch_names]
        energies = [float(seen[n].pow(2).sum()) for n in names]
        total = sum(energies) or 1.0
        branches = [Branch(n, lab, seen[n][0], e / total) for n, lab, e in zip(names, mod.branch_labels, energies)]
        result.inception = InceptionView(incep.name, incep.label, int(seen[incep.name].shape[1]), branches)
    for b in blocks:
        mod = model.get_submodule(b.name)
        xin = seen[b.name + ":in"][0]
        sc = seen[f"{b.name}.{mod.shortcut_branch}"][0] if mod.shortcut_branch else xin
        result.residual.append(ResidualView(b.name, xin, seen[f"{b.name}.{mod.residual_branch}"][0], sc,
                                            seen[b.name][0]))
    return result


def probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities (CPU float, 10) for a 1 x 1 x 28 x 28 input."""
    return analyse(model, x).probs


def feature_maps(model: nn.Module, x: torch.Tensor, layer: str) -> FeatureMaps:
    """The activation of ``layer`` for ``x`` (one analysis)."""
    return next(iter(analyse(model, x, [layer]).features.values()))


def inception_branches(model: nn.Module, x: torch.Tensor, module: str) -> InceptionView:
    """The four branch outputs of Inception ``module`` with channel counts and energy shares."""
    return analyse(model, x, module=module).inception


def residual_blocks(model: nn.Module, x: torch.Tensor) -> list[ResidualView]:
    """Every residual block's x, F(x), shortcut(x) and output, in forward order."""
    return analyse(model, x, residual=True).residual


def first_conv_kernels(model: nn.Module) -> np.ndarray:
    """The weights of the model's first ``nn.Conv2d`` (registration order; every network of the catalog declares
    its first convolution first) as a float32 NumPy copy, ``out_channels x in_channels x k x k``.

    The first convolution looks at the pixels directly, so its kernels are pictures in their own right ("filters
    that learn": noise before training, strokes and edges after). Raises LookupError when there is none.
    """
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise LookupError(f"{type(model).__name__} has no convolution layer.")
    return conv.weight.detach().float().cpu().numpy().copy()


_SHAPES: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()  # never keeps a model alive


def layer_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Output shape (C, H, W) of every visual layer, from one analysis of a blank input (cached per model)."""
    if model not in _SHAPES:
        seen = analyse(model, torch.zeros(1, 1, 28, 28), [l.name for l in visual_layers(model)])
        _SHAPES[model] = {name: tuple(fm.maps.shape) for name, fm in seen.features.items()}
    return _SHAPES[model]


_SUMMARY_LOCK = threading.Lock()
_SUMMARIES: "weakref.WeakKeyDictionary[nn.Module, object]" = weakref.WeakKeyDictionary()


def model_summary(model: nn.Module):
    """torchinfo's ``ModelStatistics`` for one 1 x 1 x 28 x 28 input (layers, shapes, parameters, mult-adds),
    computed on a private deep copy (torchinfo's hooks never touch a served model) and cached per model."""
    with _SUMMARY_LOCK:
        if model not in _SUMMARIES:
            import torchinfo  # on first use: keeps start-up light

            clone = copy.deepcopy(model).cpu().eval()
            _SUMMARIES[model] = torchinfo.summary(clone, input_size=(1, 1, 28, 28), depth=4, verbose=0, device="cpu",
                                                  col_names=("output_size", "num_params", "mult_adds"))
        return _SUMMARIES[model]
