"""Self-describing checkpoints, written and read here only: safetensors weights plus JSON metadata in one file.

The metadata (``arch``, ``config``, ``dataset``, ``classes``, ``normalization``,
``test_accuracy``, ``recipe``, ...) is enough to rebuild the model from the file alone.
safetensors holds only tensors and strings, so loading can never run pickled code.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from cnndemo import catalog
from cnndemo.catalog import Recipe
from cnndemo.device import pick_device
from cnndemo.models import ImageClassifier, build_model, count_params

META_KEY = "cnndemo"
FORMAT_VERSION = 1


def checkpoint_dir() -> Path:
    """``$CNNDEMO_CHECKPOINTS`` or the repository's ``checkpoints/``."""
    return Path(os.environ.get("CNNDEMO_CHECKPOINTS") or Path(__file__).resolve().parent.parent.parent / "checkpoints")


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
    if meta.get("arch") not in catalog.ARCHITECTURES:
        raise ValueError(f"{path}: unknown arch {meta.get('arch')!r}")
    norm = meta["normalization"]
    model = build_model(meta["arch"], norm["mean"], norm["std"], meta["config"])
    model.load_state_dict(load_file(str(path)), strict=True)
    model.to(pick_device(device)).eval()
    return model, meta


def list_pretrained() -> list[tuple[str, str]]:
    """The (arch, dataset) pairs that have a checkpoint, in zoo order."""
    return [(a, d) for a, d in catalog.pairs() if checkpoint_path(a, d).is_file()]


def load_pretrained(arch: str, dataset: str, device: str | torch.device | None = None) -> tuple[ImageClassifier, dict[str, Any]]:
    """The committed checkpoint for ``arch`` on ``dataset``: ``(model in eval mode, meta)``.

    The model takes N x 1 x 28 x 28 floats in [0, 1] (white on black) and returns N x 10 logits.
    ``device=None`` picks CUDA, then MPS, then CPU (``$CNNDEMO_DEVICE`` overrides).
    """
    if arch not in catalog.ARCHITECTURES or dataset not in catalog.DATASETS:
        raise ValueError(f"no pretrained model {arch!r}/{dataset!r}; see list_pretrained()")
    path = checkpoint_path(arch, dataset)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; train it with `python -m cnndemo.train --arch {arch} --dataset {dataset}`")
    return load_checkpoint(path, device)


def checkpoint_meta(arch: str, dataset: str, model: ImageClassifier, recipe: Recipe, result: Any,
                    test_acc: float | None, test_loss: float | None, trained_on: str,
                    normalization: tuple[float, float], config: dict, val_accuracy: float | None = None,
                    **extra: Any) -> dict[str, Any]:
    """The self-describing metadata of a checkpoint (the CLI and fine-tuning both write it with this).

    ``result`` is the loop's :class:`~cnndemo.train.loop.Result`; ``val_accuracy`` defaults to its
    held-out accuracy; ``extra`` keys (e.g. ``finetune`` provenance) follow the standard ones.
    """
    mean, std = normalization
    return {
        "arch": arch,
        "config": config,
        "dataset": dataset,
        "classes": list(catalog.dataset(dataset).classes),
        "normalization": {"mean": mean, "std": std},
        "input": "N x 1 x 28 x 28 float in [0, 1], white on black",
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "val_accuracy": result.val_acc if val_accuracy is None else val_accuracy,
        "params": count_params(model),
        "epochs": result.epochs_done,
        "best_epoch": result.kept_epoch,
        "recipe": asdict(recipe),
        "trained_on": trained_on,
        "train_seconds": round(result.seconds, 1),
        "images_per_sec": round(result.images_per_sec, 1),
        "torch_version": torch.__version__,
        "date": date.today().isoformat(),
        "history": result.history,
        **extra,
    }
