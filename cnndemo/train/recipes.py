"""Recipes: which recipe trained a committed checkpoint, and the optimizer and learning-rate schedule a recipe builds.

The recipes themselves are rows of :mod:`cnndemo.catalog` (one per architecture and dataset).
"""

from __future__ import annotations

import torch

from cnndemo import catalog
from cnndemo.catalog import WEIGHT_DECAY, Recipe

OPTIMIZERS = tuple(WEIGHT_DECAY)


def recipe_for(arch: str, dataset: str) -> Recipe:
    """The recipe of the committed checkpoint of ``arch`` on ``dataset``."""
    catalog.dataset(dataset)
    return catalog.arch(arch).recipes[dataset]


def parse_optimizer(name: str) -> str:
    """``"sgd"`` or ``"adam"`` from a user's choice (``"SGD (Nesterov)"``, ``"adam"``, ...); ``ValueError`` otherwise."""
    text = str(name).strip().lower()
    for opt in OPTIMIZERS:
        if text.startswith(opt):
            return opt
    raise ValueError(f"Unknown optimizer {name!r}: 'sgd' or 'adam'.")


def make_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum, or AdamW."""
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}: 'sgd' or 'adam'")


def make_schedule(opt: torch.optim.Optimizer, recipe: Recipe, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule."""
    if recipe.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total_steps, pct_start=0.2)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if recipe.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    raise ValueError(f"unknown schedule {recipe.schedule!r}")
