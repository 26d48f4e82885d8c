"""Self-describing checkpoints: safetensors weights plus JSON metadata in the same file.

The metadata (``arch``, ``config``, ``dataset``, ``classes``, ``normalization``,
``test_accuracy``, ``recipe``, ...) is enough to rebuild the model from the file alone.
safetensors holds only tensors and strings, so loading can never run pickled code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from cnndemo.device import pick_device
from cnndemo.models import ARCHS, ImageClassifier, build_model

META_KEY = "cnndemo"
FORMAT_VERSION = 1
DATASET_NAMES = ("mnist", "fashion_mnist")


def checkpoint_dir() -> Path:
    """``$CNNDEMO_CHECKPOINTS`` or the repository's ``checkpoints/``."""
    return Path(os.environ.get("CNNDEMO_CHECKPOINTS") or Path(__file__).resolve().parent.parent / "checkpoints")


def checkpoint_path(arch: str, dataset: str) -> Path:
    """``checkpoints/{arch}_{dataset}.safetensors``."""
    return checkpoint_dir() / f"{arch}_{dataset}.safetensors"


def save_checkpoint(path: str | os.PathLike, model: ImageClassifier, meta: dict[str, Any]) -> Path:
    """Write ``model``'s weights (fp32, CPU) and ``meta`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {**meta, "format_version": FORMAT_VERSION}
    save_file(state, str(path), metadata={META_KEY: json.dumps(meta)})
    return path


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a checkpoint, without loading its weights."""
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    if META_KEY not in header:
        raise ValueError(f"{path} is not a cnndemo checkpoint (no '{META_KEY}' metadata)")
    return json.loads(header[META_KEY])


def load_checkpoint(path: str | os.PathLike, device: str | torch.device | None = None) -> tuple[ImageClassifier, dict[str, Any]]:
    """Rebuild the model described in ``path``, load its weights, move it to ``device``, eval mode."""
    meta = read_meta(path)
    if meta.get("arch") not in ARCHS:
        raise ValueError(f"{path}: unknown arch {meta.get('arch')!r}")
    norm = meta["normalization"]
    model = build_model(meta["arch"], norm["mean"], norm["std"], meta["config"])
    model.load_state_dict(load_file(str(path)), strict=True)
    model.to(pick_device(device)).eval()
    return model, meta


def list_pretrained() -> list[tuple[str, str]]:
    """The (arch, dataset) pairs that have a checkpoint, in zoo order."""
    return [(a, d) for a in ARCHS for d in DATASET_NAMES if checkpoint_path(a, d).is_file()]


def load_pretrained(arch: str, dataset: str, device: str | torch.device | None = None) -> tuple[ImageClassifier, dict[str, Any]]:
    """The committed checkpoint for ``arch`` on ``dataset``: ``(model in eval mode, meta)``.

    The model takes N x 1 x 28 x 28 floats in [0, 1] (white on black) and returns N x 10 logits.
    ``device=None`` picks CUDA, then MPS, then CPU (``$CNNDEMO_DEVICE`` overrides).
    """
    if arch not in ARCHS or dataset not in DATASET_NAMES:
        raise ValueError(f"no pretrained model {arch!r}/{dataset!r}; see list_pretrained()")
    path = checkpoint_path(arch, dataset)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; train it with `python -m cnndemo.train --arch {arch} --dataset {dataset}`")
    return load_checkpoint(path, device)
