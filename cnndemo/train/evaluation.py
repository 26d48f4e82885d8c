"""Evaluation, written once: accuracy and loss, per-image predictions and the confusion matrix of a model on a split.

Every pass runs in eval mode on the model's device (bfloat16 autocast on CUDA) and restores the
model's training mode afterwards. With ``all_ranks=True`` each rank evaluates its shard and the
sums are all-reduced (see :mod:`cnndemo.train.distributed`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

from cnndemo.data.datasets import TensorData, to_float
from cnndemo.train import distributed


def autocast(device: torch.device):
    """bfloat16 autocast on CUDA, nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless model)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def batches(model: nn.Module, data: TensorData, batch_size: int = 1000) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(float logits, labels) for every batch of ``data``, in eval mode, on the model's device."""
    device = model_device(model)
    with _eval_mode(model):
        for i in range(0, len(data), batch_size):
            x = to_float(data.images[i : i + batch_size].to(device))
            y = data.labels[i : i + batch_size].to(device)
            with autocast(device):
                logits = model(x)
            yield logits.float(), y


def evaluate(model: nn.Module, data: TensorData, batch_size: int = 1000, all_ranks: bool = False) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``data``; all-reduced over ranks with ``all_ranks``."""
    correct, loss_sum, n = 0.0, 0.0, 0.0
    for logits, y in batches(model, data, batch_size):
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    if all_ranks:
        correct, loss_sum, n = distributed.all_sum(correct, loss_sum, n, device=model_device(model))
    return correct / max(n, 1), loss_sum / max(n, 1)


def predict(model: nn.Module, data: TensorData, batch_size: int = 1000) -> torch.Tensor:
    """Predicted class of every image (CPU int64 tensor)."""
    return torch.cat([logits.argmax(1).cpu() for logits, _ in batches(model, data, batch_size)])


def confusion(model: nn.Module, data: TensorData, batch_size: int = 1000, classes: int = 10) -> torch.Tensor:
    """``classes`` x ``classes`` counts (rows: true class, columns: predicted), CPU int64."""
    counts = torch.zeros(classes, classes, dtype=torch.int64)
    for logits, y in batches(model, data, batch_size):
        counts += confusion_counts(y, logits.argmax(1), classes)
    return counts


def confusion_counts(labels: torch.Tensor, predicted: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """``classes`` x ``classes`` counts of (true, predicted) pairs (rows: true class), CPU int64."""
    flat = labels.long().cpu() * classes + predicted.long().cpu()
    return torch.bincount(flat, minlength=classes * classes).view(classes, classes)


def accuracy_of(matrix) -> float:
    """Accuracy from a confusion matrix (tensor or array)."""
    total = float(matrix.sum())
    return float(matrix.trace()) / total if total else 0.0
