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

from cnndemo.checkpoints import checkpoint_dir

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


@torch.no_grad()
def compute_mistakes(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500,
                     num_classes: int = 10) -> Mistakes:
    """Classify every image (uint8 N x 28 x 28) with ``model`` and collect its confusion matrix and mistakes."""
    device = next(model.parameters()).device
    model.eval()
    probs = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device).unsqueeze(1).float().div_(255)  # N x 1 x 28 x 28
        probs.append(torch.softmax(model(x).float(), 1).cpu())
    p = torch.cat(probs)
    conf, pred = p.max(1)
    true = labels.long().cpu()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    confusion.index_put_((true, pred), torch.ones_like(true), accumulate=True)
    wrong = torch.nonzero(pred != true).flatten()
    wrong = wrong[torch.argsort(conf[wrong], descending=True, stable=True)]  # most confident mistakes first
    return Mistakes(confusion.numpy(), wrong.numpy().astype(np.int32), true[wrong].numpy().astype(np.uint8),
                    pred[wrong].numpy().astype(np.uint8), conf[wrong].numpy().astype(np.float32),
                    images[wrong].cpu().numpy().astype(np.uint8))


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
