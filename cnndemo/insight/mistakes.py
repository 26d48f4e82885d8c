"""The test-set mistakes of a pretrained model: confusion matrix and the misclassified images.

Computed once by ``scripts/make_mistakes.py`` over the full 10,000-image test set and stored as a
small compressed ``.npz`` per checkpoint (``checkpoints/mistakes/{arch}_{dataset}.npz``), holding the
misclassified images themselves (uint8), so the app needs neither the dataset nor a pass over it.
Plain torch + numpy: no gradio, no matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnndemo.data.datasets import TensorData
from cnndemo.train.checkpoints import checkpoint_dir
from cnndemo.train.evaluation import batches, confusion_counts

PAGE_SIZE = 24  # gallery items per page


def mistakes_dir() -> Path:
    """``checkpoints/mistakes/`` (follows ``$CNNDEMO_CHECKPOINTS``)."""
    return checkpoint_dir() / "mistakes"


def mistakes_path(arch: str, dataset: str) -> Path:
    """``checkpoints/mistakes/{arch}_{dataset}.npz``."""
    return mistakes_dir() / f"{arch}_{dataset}.npz"


@dataclass
class Mistakes:
    """One model's test-set results: ``confusion`` is 10 x 10 (rows = true class, columns = predicted);
    ``index``, ``true``, ``pred``, ``confidence`` and ``images`` (N x 28 x 28 uint8) describe the
    misclassified test images, most confident mistakes first."""

    confusion: np.ndarray
    index: np.ndarray
    true: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    images: np.ndarray

    @property
    def total(self) -> int:
        """Number of test images."""
        return int(self.confusion.sum())

    @property
    def test_accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(1, self.total))

    @property
    def total_misclassified(self) -> int:
        return int(len(self.index))

    @property
    def pages(self) -> int:
        return max(1, -(-self.total_misclassified // PAGE_SIZE))

    def page(self, page: int) -> slice:
        """The slice of the misclassified items on 1-based ``page``; ValueError when out of range."""
        try:
            page = int(page)
        except (TypeError, ValueError):
            raise ValueError(f"Page must be a whole number, not {page!r}.") from None
        if not 1 <= page <= self.pages:
            raise ValueError(f"Page {page} does not exist: there are {self.pages} pages of {PAGE_SIZE} mistakes.")
        return slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE)


def compute_mistakes(model: nn.Module, data: TensorData, batch_size: int = 1000, num_classes: int = 10) -> Mistakes:
    """Classify every image of ``data`` (one evaluation pass) and collect the confusion matrix and the mistakes."""
    probs = torch.cat([torch.softmax(logits, 1).cpu() for logits, _ in batches(model, data, batch_size)])
    conf, pred = probs.max(1)
    true = data.labels.long().cpu()
    wrong = torch.nonzero(pred != true).flatten()
    wrong = wrong[torch.argsort(conf[wrong], descending=True, stable=True)]  # most confident mistakes first
    return Mistakes(confusion_counts(true, pred, num_classes).numpy(), wrong.numpy().astype(np.int32),
                    true[wrong].numpy().astype(np.uint8), pred[wrong].numpy().astype(np.uint8),
                    conf[wrong].numpy().astype(np.float32), data.images[wrong].cpu().numpy().astype(np.uint8))


def save_mistakes(path: str | Path, m: Mistakes) -> Path:
    """Write ``m`` as a compressed ``.npz``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, confusion=m.confusion.astype(np.int32), index=m.index, true=m.true, pred=m.pred,
                        confidence=m.confidence, images=m.images)
    return path


@lru_cache(maxsize=16)
def _load(path: str, mtime: float) -> Mistakes:
    with np.load(path) as f:
        return Mistakes(f["confusion"].astype(np.int64), f["index"], f["true"], f["pred"], f["confidence"], f["images"])


def load_mistakes(arch: str, dataset: str) -> Mistakes:
    """The stored mistakes of the pretrained ``arch`` on ``dataset``; LookupError (with the command to
    make them) when the file is missing."""
    path = mistakes_path(arch, dataset)
    if not path.is_file():
        raise LookupError(f"The test-set mistakes of {arch} on {dataset} have not been computed yet "
                          f"({path.name} is missing). Run `python scripts/make_mistakes.py --arch {arch} --dataset {dataset}`.")
    return _load(str(path), path.stat().st_mtime)
