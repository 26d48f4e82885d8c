"""Teach it your handwriting: a short fine-tune on the student's own digits, with MNIST replay against forgetting.

1. The drawings (files, canvases, anything :func:`cnndemo.data.framing.prepare` reads) are framed exactly like
   an upload to the app (``prepare(path, DATASET)``) and split per digit into a training part and a held-out
   part (about a third of each digit's drawings, at least one where the digit has two or more).
2. A copy of the chosen network (the pretrained model is never touched) trains with the shared loop
   :func:`cnndemo.train.loop.train_iter` on the student's training drawings, repeated so that they make about a
   quarter of the set, mixed with a fresh sample of MNIST training images (the replay that keeps it from
   forgetting); random shifts of up to 2 pixels. SGD with momentum at a small learning rate, a few short
   epochs (AdamW forgot more MNIST in trials: its first steps move every weight by about the learning rate).
3. Before and after: accuracy on the held-out drawings, and on a fixed sample of the MNIST test set (the
   forgetting check).

No gradio, no matplotlib. :func:`teach` is a generator of plain-data events; the last one carries the model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from cnndemo import catalog
from cnndemo.catalog import Recipe
from cnndemo.data.datasets import TensorData, load_splits, load_test
from cnndemo.data.framing import prepare
from cnndemo.train.evaluation import evaluate
from cnndemo.train.loop import Epoch, Step, train_iter

ARCH, DATASET = catalog.LABS_DEFAULT  # the network taught by default; digits
MAX_DRAWINGS = 500


@dataclass
class TeachSpec:
    """How to teach. The defaults take a few seconds for 30 drawings on a 2-core CPU (see BENCHMARKS)."""

    arch: str = ARCH
    epochs: int = 4
    lr: float = 0.005
    batch_size: int = 64
    yours_share: int = 128  # the student's training drawings are repeated to about this many images per epoch
    replay: int = 384  # MNIST training images mixed in per epoch
    held_out_fraction: float = 1 / 3
    mnist_eval: int = 2000  # MNIST test images for the forgetting check (a fixed random sample of the 10,000)
    seed: int = 0

    optimizer: str = "sgd"  # Nesterov momentum; Adam's sign-like first steps disturb every weight (more forgetting)

    def recipe(self) -> Recipe:
        return Recipe(optimizer=self.optimizer, lr=self.lr, weight_decay=0.0, schedule="constant", epochs=self.epochs,
                      batch_size=self.batch_size, augment=True, seed=self.seed)


def load_drawings(sources: Sequence[Any], labels: Sequence[str], classes: Sequence[str] | None = None) -> TensorData:
    """Frame every drawing like an upload (``prepare(source, DATASET)``); labels are class names ("0" .. "9").

    Raises ValueError (naming the drawing) for a label that is not a class, a count mismatch, or a blank or
    unreadable image.
    """
    classes = list(classes or catalog.dataset(DATASET).classes)
    if len(sources) != len(labels):
        raise ValueError(f"{len(sources)} drawings but {len(labels)} labels: give one label per drawing.")
    if not sources:
        raise ValueError("No drawings yet: draw (or upload) a few examples of each digit first.")
    if len(sources) > MAX_DRAWINGS:
        raise ValueError(f"{len(sources)} drawings is more than this lab takes ({MAX_DRAWINGS}).")
    images, ys = [], []
    for i, (source, label) in enumerate(zip(sources, labels), 1):
        name = str(label).strip()
        if name not in classes:
            raise ValueError(f"Drawing {i}: {label!r} is not one of the classes {', '.join(classes)}.")
        try:
            prepared = prepare(source, DATASET)
        except ValueError as exc:
            raise ValueError(f"Drawing {i} ({name}): {exc}") from None
        images.append(torch.from_numpy(prepared.image))
        ys.append(classes.index(name))
    return TensorData(torch.stack(images), torch.tensor(ys, dtype=torch.int64))


def split_held_out(labels: torch.Tensor, fraction: float = 1 / 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices): per class, ``round(n * fraction)`` held out, at least 1 when n >= 2,
    never all of them. Raises ValueError when nothing can be held out (no class has two drawings)."""
    g = torch.Generator().manual_seed(seed)
    train_idx, held_idx = [], []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = min(len(idx) - 1, max(1 if len(idx) >= 2 else 0, round(len(idx) * fraction)))
        held_idx.append(idx[:k])
        train_idx.append(idx[k:])
    held, train = torch.cat(held_idx).sort().values, torch.cat(train_idx).sort().values
    if len(held) == 0:
        raise ValueError("Give at least two drawings of a digit: one of them is kept aside to measure the result.")
    return train, held


@lru_cache(maxsize=2)
def _mnist(eval_size: int, seed: int) -> tuple[TensorData, TensorData]:
    """(MNIST training images for replay, a fixed random sample of ``eval_size`` test images), cached."""
    train, _ = load_splits(DATASET, 5000)
    test = load_test(DATASET)
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:eval_size]
    return train, TensorData(test.images[pick].clone(), test.labels[pick].clone())


def subset(data: TensorData, idx: torch.Tensor) -> TensorData:
    return TensorData(data.images[idx], data.labels[idx])


def training_set(yours: TensorData, replay_pool: TensorData, spec: TeachSpec, seed: int) -> TensorData:
    """The student's drawings repeated to about ``yours_share`` images, plus ``replay`` random MNIST images."""
    reps = max(1, math.ceil(spec.yours_share / len(yours)))
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(replay_pool), generator=g)[: spec.replay]
    images = torch.cat([yours.images.repeat(reps, 1, 1), replay_pool.images[pick]])
    labels = torch.cat([yours.labels.repeat(reps), replay_pool.labels[pick]])
    return TensorData(images, labels)


def teach(model: nn.Module, meta: dict[str, Any], drawings: TensorData, spec: TeachSpec | None = None) -> Iterator[dict]:
    """Fine-tune a copy of ``model`` on ``drawings``; yield events, the last one ``{"type": "done", ...}``.

    Events: ``start`` (sizes and the before accuracies), ``step`` (epoch, step, loss), ``epoch`` (MNIST
    accuracy on the replay check so far) and ``done`` with ``result`` = {"yours_before", "yours_after",
    "mnist_before", "mnist_after", "held_out": n, "trained_on": n} plus ``model`` (the taught copy, eval
    mode) and ``meta`` (``meta`` with a ``taught`` record, the new MNIST accuracy and the ``finetune`` marker
    that lets the app's "back to the pretrained model" button forget it).
    """
    spec = spec or TeachSpec()
    train_idx, held_idx = split_held_out(drawings.labels, spec.held_out_fraction, spec.seed)
    yours, held = subset(drawings, train_idx), subset(drawings, held_idx)
    replay_pool, mnist_test = _mnist(spec.mnist_eval, spec.seed)
    device = next(model.parameters()).device
    student = copy.deepcopy(model).to(device)
    yours_before, mnist_before = evaluate(student, held)[0], evaluate(student, mnist_test)[0]
    data = training_set(yours, replay_pool, spec, spec.seed)
    yield {"type": "start", "drawings": len(drawings), "trained_on": len(yours), "held_out": len(held),
           "train_size": len(data), "yours_before": yours_before, "mnist_before": mnist_before,
           "total_steps": spec.epochs * math.ceil(len(data) / spec.batch_size)}
    # Held-out set of the loop (kept weights = last epoch): a slice of the MNIST test sample, for progress only.
    check = TensorData(mnist_test.images[:500], mnist_test.labels[:500])
    iterator = train_iter(student, data, check, spec.recipe(), keep="last", log_every=1)
    while True:
        try:
            event = next(iterator)
        except StopIteration:
            break
        if isinstance(event, Step):
            yield {"type": "step", "epoch": event.epoch, "step": event.global_step, "total_steps": event.total_steps,
                   "loss": event.loss}
        elif isinstance(event, Epoch):
            yield {"type": "epoch", "epoch": event.epoch, "epochs": spec.epochs, "mnist_check": event.val_acc}
    student.eval()
    yours_after, mnist_after = evaluate(student, held)[0], evaluate(student, mnist_test)[0]
    result = {"yours_before": yours_before, "yours_after": yours_after, "mnist_before": mnist_before,
              "mnist_after": mnist_after, "held_out": len(held), "trained_on": len(yours)}
    new_meta = {**meta, "test_accuracy": mnist_after, "taught": {**result, "mnist_test_images": len(mnist_test),
                                                                "spec": asdict(spec)},
                "finetune": {"start": "pretrained", "from": "the student's handwriting (Labs tab)"}}
    yield {"type": "done", "result": result, "model": student, "meta": new_meta}
