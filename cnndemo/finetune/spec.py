"""What a fine-tune run is: the user's choices (:class:`FineTuneSpec`, validated), its starting weights
(:class:`StartPoint`, copied, never touching the served models) and the model built from them.

No gradio. The recipe, the optimizer choice and the model building come from the training package.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from cnndemo import catalog
from cnndemo.catalog import WEIGHT_DECAY, Recipe
from cnndemo.models import ImageClassifier, build_model
from cnndemo.settings import choice, number, whole
from cnndemo.train.recipes import parse_optimizer

STARTS = ("pretrained", "scratch", "transfer")
START_LABELS = {
    "pretrained": "pretrained checkpoint (same dataset)",
    "scratch": "from scratch (random weights)",
    "transfer": "other dataset's checkpoint, fresh classifier head",
}
EPOCHS_RANGE = (1, 10)
SUBSET_RANGE = (1000, 55000)  # the 60,000 training images minus the 5,000 held out
BATCH_RANGE = (16, 512)
LR_RANGE = (1e-5, 1.0)
# Fairness on a shared server (see the README's Spaces section): one run may not hold the device for long.
CPU_IMAGE_BUDGET = 60_000  # epochs x training images per run on a CPU: 6 x 10,000 or 1 x 55,000 (~1-3 min on 2 cores)
MAX_RUN_SECONDS = 300  # wall clock of one run's training on any device; then it stops, keeping the last epoch
MAX_QUEUED_RUNS = 4  # per device: one training and three waiting; a fifth visitor is told to come back later


class FriendlyError(Exception):
    """An error whose message is shown to the user as is (no stack trace)."""


def check_budget(spec: "FineTuneSpec", device: str) -> None:
    """``ValueError`` when ``spec`` asks more of a CPU than :data:`CPU_IMAGE_BUDGET` (checked before queueing)."""
    work = spec.epochs * spec.subset
    if str(device) == "cpu" and work > CPU_IMAGE_BUDGET:
        raise ValueError(f"On this CPU server one run may train on at most {CPU_IMAGE_BUDGET:,} images in all "
                         f"(epochs x training images); {spec.epochs} x {spec.subset:,} = {work:,}. "
                         "Choose fewer epochs or fewer training images.")


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters (for messages shown to the user)."""
    return re.sub(r"\s+", " ", text).strip()[:limit]


# An absolute path of the server (not a URL's path: no letter, dot, colon or slash just before it) and its file name.
_SERVER_PATH = re.compile(r"(?<![\w.~:/-])/(?:[^\s/'\"`()\[\]]+/)+([^\s/'\"`()\[\]]*)")


def hide_paths(text: str) -> str:
    """``text`` with every absolute server path cut to its file name (``.../vgg11_mnist.safetensors``): messages
    from the core (checkpoints, data files) name full paths for the command line, but visitors see no server path."""
    return _SERVER_PATH.sub(lambda m: ".../" + m.group(1), text)


@dataclass
class FineTuneSpec:
    """One fine-tuning job, as chosen in the tab or passed to ``/finetune``.

    The defaults finish in well under 30 s on a 2-core CPU (see ``BENCHMARKS.md``)
    and show a network learning from scratch: held-out accuracy goes from ~10% to ~95%.
    """

    arch: str = catalog.FINETUNE_DEFAULT[0]
    dataset: str = catalog.FINETUNE_DEFAULT[1]
    start: str = "scratch"  # one of STARTS
    epochs: int = 2
    lr: float = 3e-3
    batch_size: int = 64
    optimizer: str = "adam"  # "sgd" (Nesterov momentum 0.9) or "adam" (AdamW)
    subset: int = 5000
    augment: bool = False
    freeze: bool = False  # train only the last block and the classifier head
    seed: int = 0
    eval_size: int = 2000  # held-out images used for before/after accuracy (the first of the 5,000)
    test_eval: bool = True  # also measure the test-set accuracy at the end (stored in the checkpoint)

    def validate(self) -> "FineTuneSpec":
        """Return a normalised copy, or raise ``ValueError`` (a :class:`cnndemo.settings.SettingError`: one line
        naming the setting) with a message a student can act on."""
        catalog.arch(self.arch), catalog.dataset(self.dataset)  # ValueError naming the choices
        choice("start", self.start, STARTS)
        optimizer = parse_optimizer(self.optimizer)
        epochs, subset = whole("epochs", self.epochs, *EPOCHS_RANGE), whole("subset", self.subset, *SUBSET_RANGE)
        batch_size, lr = whole("batch_size", self.batch_size, *BATCH_RANGE), number("lr", self.lr, *LR_RANGE)
        eval_size = whole("eval_size", self.eval_size, 100, 5000)
        return replace(self, optimizer=optimizer, epochs=epochs, subset=subset, batch_size=batch_size, lr=lr,
                       augment=bool(self.augment), freeze=bool(self.freeze), eval_size=eval_size)

    def recipe(self) -> Recipe:
        """The training recipe of this job (one-cycle schedule, like the checkpoints)."""
        return Recipe(optimizer=self.optimizer, lr=self.lr, weight_decay=WEIGHT_DECAY[self.optimizer],
                      epochs=self.epochs, batch_size=self.batch_size, augment=self.augment, seed=self.seed,
                      subset=self.subset)

    def source_dataset(self) -> str | None:
        """The dataset of the starting checkpoint (None = random weights)."""
        if self.start == "pretrained":
            return self.dataset
        if self.start == "transfer":
            return catalog.other_dataset(self.dataset)
        return None


@dataclass
class StartPoint:
    """The starting weights as a CPU copy, plus what is needed to rebuild the model anywhere."""

    state: dict[str, torch.Tensor] | None  # None = random initialisation
    config: dict
    normalization: tuple[float, float]
    description: str
    fresh_head: bool = False


PretrainedLookup = Callable[[str, str], tuple[nn.Module, dict]]


def copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model``'s weights and buffers that shares no storage with it."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def start_point(spec: FineTuneSpec, pretrained: PretrainedLookup) -> StartPoint:
    """The starting weights of ``spec`` (copied from the pretrained store; nothing is modified)."""
    source = spec.source_dataset()
    if source is None:
        return StartPoint(None, catalog.arch(spec.arch).config, catalog.dataset(spec.dataset).mean_std,
                          "random initialisation")
    try:
        model, meta = pretrained(spec.arch, source)
    except Exception as exc:  # noqa: BLE001 - a missing checkpoint is a normal situation, not a crash
        raise FriendlyError(
            f"No pretrained {spec.arch} for {catalog.dataset(source).title} is available ({one_line(hide_paths(str(exc)), 160)}). "
            f"Choose \"from scratch\", or train it: `python -m cnndemo.train --arch {spec.arch} --dataset {source}`."
        ) from None
    norm = meta.get("normalization") or {}
    mean, std = norm.get("mean", catalog.dataset(source).mean), norm.get("std", catalog.dataset(source).std)
    desc = f"pretrained {spec.arch} on {catalog.dataset(source).title}"
    if spec.start == "transfer":
        desc += " with a fresh classifier head"
    return StartPoint(copy_state(model), meta.get("config") or catalog.arch(spec.arch).config, (mean, std), desc,
                      fresh_head=spec.start == "transfer")


def freeze_all_but_last(model: ImageClassifier) -> tuple[list[nn.Parameter], Any]:
    """Freeze everything but the network's ``trainable_tail()``; return (trainable parameters, hook handle to remove).

    Frozen BatchNorm/Dropout layers are kept in eval mode during training (a forward pre-hook),
    so the frozen part is truly unchanged: its running statistics do not drift either.
    """
    trainable = model.trainable_tail()
    keep = {id(p) for m in trainable for p in m.parameters()}
    inside = {id(m) for t in trainable for m in t.modules()}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    stateful = [m for m in model.modules() if id(m) not in inside
                and isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout))]

    def keep_frozen_in_eval(_module, _inputs):
        for m in stateful:
            m.eval()

    handle = model.register_forward_pre_hook(keep_frozen_in_eval)
    return [p for p in model.parameters() if p.requires_grad], handle


def build_start_model(spec: FineTuneSpec, start: StartPoint, device: torch.device | str = "cpu") -> ImageClassifier:
    """A new model holding ``start``'s weights (a fresh head for transfer), on ``device``."""
    mean, std = start.normalization
    model = build_model(spec.arch, mean, std, start.config, seed=spec.seed)
    if start.state is not None:
        model.load_state_dict(start.state, strict=True)
    if start.fresh_head:
        torch.manual_seed(spec.seed)
        model.get_classifier().reset_parameters()
    return model.to(device)
