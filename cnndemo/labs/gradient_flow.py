"""Vanishing-gradients lab (seed 002): a plain deep CNN and the same CNN with skip connections, trained side by side.

Both networks are stacks of 3x3 convolutions of one small width (so they train on a CPU):

    stem conv 1 -> width (3x3) -> ReLU -> 2x2 max-pool (28 -> 14)
    (depth - 2) / 2 blocks of two 3x3 convs: y = conv2(relu(conv1(x)))
        plain:    out = relu(y)          residual (the course's block): out = relu(x + y)
    last conv width -> width (3x3) -> 2x2 max-pool (14 -> 7) -> flatten -> Linear(49 width, 10)

so ``depth`` counts every conv layer (the classifier is a Linear layer, as in the course's nets). As in the course code, there is no normalisation layer and
PyTorch's default initialisation is kept: nothing rescales the signal, which is exactly when a plain
stack's gradients fade layer by layer on the way back and the skip connections keep them alive.

Training reuses the shared loop :func:`cnndemo.train.loop.train_iter` unchanged: it is a generator, so the
two runs are interleaved one optimizer step at a time (``log_every=1``). ``train_iter`` yields its
``Step`` right after ``opt.step()`` and clears the gradients only at the next step, so every conv's
``weight.grad`` still holds the gradient of the step just taken when the ``Step`` arrives: the lab
reads the norms there, with no hooks and no second loop. Plain SGD with momentum (not Adam, whose
per-parameter scaling would hide how small the gradients are) at a constant learning rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cnndemo import catalog
from cnndemo.catalog import Recipe
from cnndemo.data.datasets import TensorData, load_splits
from cnndemo.models import ImageClassifier
from cnndemo.settings import SettingError, number, whole
from cnndemo.train.loop import Step, train_iter

DATASET = catalog.LABS_DEFAULT[1]  # digits

DEPTHS = (8, 20, 32, 56)
WIDTH_RANGE = (4, 32)
STEPS_RANGE = (10, 400)
GRAD_WINDOW = 10  # gradient norms shown = mean over the last this many steps


class ConvBlock(nn.Module):
    """Two 3x3 convs, as the course's residual block; ``skip=False`` drops the ``x +``."""

    def __init__(self, width: int, skip: bool):
        super().__init__()
        self.skip = skip
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(x + y) if self.skip else F.relu(y)


class DeepNet(nn.Module):
    """``depth`` conv layers (stem, ``(depth - 2) / 2`` two-conv blocks, last conv) and a Linear classifier."""

    def __init__(self, depth: int = 20, width: int = 8, skip: bool = False, num_classes: int = 10,
                 in_channels: int = 1):
        super().__init__()
        if depth < 4 or depth % 2:
            raise ValueError(f"depth must be an even number of conv layers, at least 4 (got {depth}).")
        self.depth, self.width, self.skip = depth, width, skip
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.blocks = nn.Sequential(*[ConvBlock(width, skip) for _ in range((depth - 2) // 2)])
        self.last = nn.Conv2d(width, width, 3, padding=1)
        self.fc = nn.Linear(width * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 2)  # N x width x 14 x 14
        x = self.blocks(x)  # N x width x 14 x 14
        x = F.max_pool2d(self.last(x), 2)  # N x width x 7 x 7 (no ReLU: a dead ReLU here would stop every gradient)
        return self.fc(x.flatten(1))  # N x classes


def conv_layers(model: nn.Module) -> list[nn.Conv2d]:
    """The conv layers of ``model`` in forward order (first .. last)."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def make_pair(depth: int, width: int, seed: int = 0) -> tuple[ImageClassifier, ImageClassifier]:
    """(plain, residual) digit models with the same layers, each initialised from ``seed`` (PyTorch's default init)."""
    mean, std = catalog.dataset(DATASET).mean_std
    torch.manual_seed(seed)
    plain = ImageClassifier(DeepNet(depth, width, skip=False), mean, std)
    torch.manual_seed(seed)
    residual = ImageClassifier(DeepNet(depth, width, skip=True), mean, std)
    residual.load_state_dict(plain.state_dict())  # the very same starting weights: only the skips differ
    return plain, residual


@dataclass
class LabSpec:
    """One run of the lab; the defaults take well under a minute on a 2-core CPU (see BENCHMARKS)."""

    depth: int = 20
    width: int = 8
    steps: int = 200
    batch_size: int = 32
    lr: float = 0.01  # SGD, Nesterov momentum 0.9; 0.02 already lets the 32-layer residual net blow up
    seed: int = 0
    val_size: int = 500

    def validate(self) -> "LabSpec":
        """A checked copy (whole numbers as ``int``), or :class:`~cnndemo.settings.SettingError` naming the setting."""
        depth = whole("depth", self.depth, 4, 110)
        if depth % 2:
            raise SettingError(f"depth must be an even number of conv layers from 4 to 110, not {depth}.")
        return replace(self, depth=depth, width=whole("width", self.width, *WIDTH_RANGE),
                       steps=whole("steps", self.steps, *STEPS_RANGE), lr=number("lr", self.lr, 0, 1, above=True),
                       batch_size=whole("batch_size", self.batch_size, 8, 256))

    def recipe(self) -> Recipe:
        return Recipe(optimizer="sgd", lr=self.lr, weight_decay=0.0, schedule="constant", epochs=1,
                      batch_size=self.batch_size, augment=False, seed=self.seed)


def lab_data(spec: LabSpec) -> tuple[TensorData, TensorData]:
    """``steps * batch_size`` MNIST training images (one epoch) and ``val_size`` held-out ones."""
    train, val = load_splits(DATASET, 5000, spec.steps * spec.batch_size, spec.seed)
    return train, TensorData(val.images[: spec.val_size], val.labels[: spec.val_size])


class Track:
    """One network's record: loss per step and the recent gradient norm of every conv layer."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.convs = conv_layers(model)
        self.loss: list[float] = []
        self.recent: list[list[float]] = []
        self.val_acc: dict[str, float] = {}

    def record(self, step: Step) -> None:
        self.loss.append(step.loss)
        norms = [c.weight.grad.norm().item() if c.weight.grad is not None else 0.0 for c in self.convs]
        self.recent = (self.recent + [norms])[-GRAD_WINDOW:]

    @property
    def grad_norms(self) -> list[float]:
        """Mean gradient norm of each conv layer's weights over the last ``GRAD_WINDOW`` steps, first .. last."""
        if not self.recent:
            return [0.0] * len(self.convs)
        return [sum(col) / len(col) for col in zip(*self.recent)]

    def summary(self) -> dict[str, Any]:
        return {"grad_norms": self.grad_norms, "loss": list(self.loss), **self.val_acc}


def gradient_flow(spec: LabSpec | None = None) -> Iterator[dict[str, Any]]:
    """Train the plain and the residual net side by side; yield an event after every pair of steps.

    Events: ``{"type": "start", "depth", "width", "steps", "layers", "params", "train_size"}``, then
    ``{"type": "step", "step", "steps", "plain": {...}, "residual": {...}}`` and finally
    ``{"type": "done", "depth", "width", "steps", "plain": {"grad_norms", "loss", "val_acc_before",
    "val_acc_after"}, "residual": {...}}``. ``grad_norms`` run from the first conv layer to the last.
    """
    spec = (spec or LabSpec()).validate()
    train, val = lab_data(spec)
    plain, residual = make_pair(spec.depth, spec.width, spec.seed)
    tracks = {"plain": Track(plain), "residual": Track(residual)}
    yield {"type": "start", "depth": spec.depth, "width": spec.width, "steps": spec.steps, "layers": len(tracks["plain"].convs),
           "params": sum(p.numel() for p in plain.parameters()), "train_size": len(train)}
    runs = {name: train_iter(t.model, train, val, spec.recipe(), keep="last", log_every=1) for name, t in tracks.items()}
    active = dict(runs)
    n = 0
    while active:
        stepped = False
        for name in list(active):
            try:
                event = next(active[name])
            except StopIteration as finished:  # the loop's Result: held-out accuracy before and after
                del active[name]
                tracks[name].val_acc = {"val_acc_before": finished.value.initial_val_acc,
                                        "val_acc_after": finished.value.val_acc}
                continue
            if isinstance(event, Step):
                tracks[name].record(event)
                stepped = True
        n = min(len(t.loss) for t in tracks.values())
        if stepped and all(len(t.loss) == n for t in tracks.values()):
            yield {"type": "step", "step": n, "steps": spec.steps,
                   **{name: {"grad_norms": t.grad_norms, "loss": list(t.loss)} for name, t in tracks.items()}}
    yield {"type": "done", "depth": spec.depth, "width": spec.width, "steps": n,
           **{name: t.summary() for name, t in tracks.items()}}
