"""The zoo: the pretrained models the app serves, loaded once at start-up, and which model a session uses (no gradio)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnndemo import catalog
from cnndemo.device import device_name, pick_device
from cnndemo.finetune.spec import hide_paths
from cnndemo.finetune.store import SessionModels
from cnndemo.train.checkpoints import checkpoint_path, list_pretrained, load_pretrained

Entry = tuple[nn.Module, dict[str, Any]]


class MissingModel(LookupError):
    """No checkpoint for an (arch, dataset) pair; ``str(error)`` says how to train it."""


@dataclass
class ModelZoo:
    """Every pretrained model found by ``list_pretrained()``, loaded onto one device.

    Interface used by the app and the fine-tuning tab:

    * ``get(arch, dataset) -> (model, meta)``: the pretrained model (eval mode, on ``device``)
      and its checkpoint metadata; raises :class:`MissingModel` (a ``LookupError``) with a
      readable message when the checkpoint is missing.
    * ``has(arch, dataset) -> bool``; ``available``: the loaded (arch, dataset) pairs, zoo order;
      ``missing``: the pairs without a checkpoint.
    * ``resolve(arch, dataset, session) -> (model, meta, from_session)``: the browser session's
      fine-tuned model (from its :class:`~cnndemo.finetune.store.SessionModels`) when there is one,
      else the pretrained.
    * ``device`` (``torch.device``), ``device_label`` (e.g. ``"CPU: AMD EPYC ... (2 threads)"``),
      ``load_seconds``.
    """

    device: torch.device
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    load_seconds: float = 0.0

    @classmethod
    def load(cls, device: str | torch.device | None = None) -> "ModelZoo":
        """Load every checkpoint in ``checkpoint_dir()`` onto ``device`` (default: the best one)."""
        t0 = time.perf_counter()
        zoo = cls(pick_device(device))
        for arch, dataset in list_pretrained():
            try:
                zoo.entries[(arch, dataset)] = load_pretrained(arch, dataset, zoo.device)
            except Exception as exc:  # noqa: BLE001 - a broken file must not stop the app
                zoo.errors[(arch, dataset)] = hide_paths(f"{type(exc).__name__}: {exc}")  # shown to visitors
        zoo.load_seconds = time.perf_counter() - t0
        return zoo

    @property
    def device_label(self) -> str:
        return device_name(self.device)

    @property
    def available(self) -> list[tuple[str, str]]:
        return list(self.entries)

    @property
    def missing(self) -> list[tuple[str, str]]:
        return [pair for pair in catalog.pairs() if pair not in self.entries]

    def has(self, arch: str, dataset: str) -> bool:
        return (arch, dataset) in self.entries

    def get(self, arch: str, dataset: str) -> Entry:
        """``(model, meta)`` of the pretrained ``arch`` on ``dataset``."""
        if (arch, dataset) in self.entries:
            return self.entries[(arch, dataset)]
        catalog.dataset(dataset)  # ValueError naming the choices
        title = catalog.arch(arch).title
        if (arch, dataset) in self.errors:
            raise MissingModel(f"The {title} checkpoint for {dataset} could not be loaded ({self.errors[(arch, dataset)]}).")
        raise MissingModel(
            f"No pretrained {title} for {dataset} yet ({checkpoint_path(arch, dataset).name} is missing). "
            f"Train it with `python -m cnndemo.train --arch {arch} --dataset {dataset}`."
        )

    def resolve(self, arch: str, dataset: str, session: SessionModels | None = None) -> tuple[nn.Module, dict[str, Any], bool]:
        """The session's fine-tuned model for ``arch`` on ``dataset`` if it uses one, else the pretrained one.

        ``ValueError`` naming the choices for an unknown (or non-text) ``arch`` or ``dataset``."""
        catalog.arch(arch), catalog.dataset(dataset)
        found = session.get(arch, dataset) if session is not None else None
        if found is not None:
            return *found, True
        model, meta = self.get(arch, dataset)
        return model, meta, False
