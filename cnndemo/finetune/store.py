"""The per-session store of fine-tuned models: one typed object per browser session, held in ``gr.State``.

The app creates it as ``gr.State(SessionModels(), time_to_live=SESSION_TTL_S,
delete_callback=SessionModels.release)``: Gradio keeps one per session and calls ``release`` (which deletes
the session's checkpoint folders) when the session's time to live runs out. That time counts from the
state's last *write*, so every event that uses the store also returns it (the input events do): a
session's models live as long as the session is in use. A store that Gradio drops without calling
``release`` (its session evicted for capacity) removes its folders when garbage-collected. No gradio here.
"""

from __future__ import annotations

import shutil
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn


SESSION_TTL_S = 3600.0  # Gradio frees a session's store this long after the session last wrote it (every use does)


def _remove_folders(folders: list[str]) -> None:
    for folder in list(folders):
        shutil.rmtree(folder, ignore_errors=True)
    folders.clear()


@dataclass(eq=False)
class Kept:
    """A model this session put in use directly (a model taught in the labs): model, metadata, optional folder."""

    key: tuple[str, str]  # (arch, dataset)
    model: nn.Module
    meta: dict
    folder: str | None = None  # removed with the session (or when another model replaces it)


@dataclass
class Outcome:
    """A finished fine-tune run: the trained model, its metadata, its checkpoint file and the before/after numbers."""

    spec: Any  # the FineTuneSpec that produced it
    model: nn.Module  # on the app's device, eval mode
    meta: dict
    checkpoint: str  # path of the .safetensors file (inside ``folder``)
    folder: str  # the temporary folder holding the checkpoint; removed with the session
    acc_before: float
    acc_after: float
    confusion_before: np.ndarray
    confusion_after: np.ndarray
    stopped: bool
    epochs_done: int
    seconds: float
    images_per_sec: float

    @property
    def key(self) -> tuple[str, str]:
        """The (arch, dataset) the other tabs look up."""
        return self.spec.arch, self.spec.dataset


class SessionModels:
    """One session's models: the latest finished run, and the runs the other tabs use (by arch and dataset)."""

    def __init__(self) -> None:
        self.latest: Outcome | None = None
        self._in_use: dict[tuple[str, str], Outcome | Kept] = {}
        self._kept: list[Outcome | Kept] = []  # every outcome whose files this session owns
        self._folders: list[str] = []  # their folders (removed on release, or when this store is collected)
        self._lock = threading.Lock()
        weakref.finalize(self, _remove_folders, self._folders)

    def __deepcopy__(self, memo: dict) -> "SessionModels":
        return SessionModels()  # gr.State copies its initial value per session: start empty

    def finished(self, outcome: Outcome) -> None:
        """Record a finished run as this session's latest (the previous one's files go unless in use)."""
        with self._lock:
            old, self.latest = self.latest, outcome
            self._kept.append(outcome)
            self._folders.append(outcome.folder)
        if old is not None and old not in self._in_use.values():
            self._drop(old)

    def use(self) -> Outcome | None:
        """Let the other tabs use the latest run (for its arch and dataset); None when there is none."""
        with self._lock:
            if self.latest is None:
                return None
            previous = self._in_use.get(self.latest.key)
            self._in_use[self.latest.key] = self.latest
        if previous is not None and previous is not self.latest:
            self._drop(previous)
        return self.latest

    def put(self, arch: str, dataset: str, model: nn.Module, meta: dict, folder: str | None = None) -> None:
        """Put ``model`` in use for ``arch`` on ``dataset`` in this session at once (a model taught in the labs).

        It replaces what the session used for that pair; ``forget`` and ``release`` treat it like
        a used run (``folder``, if given, is deleted with it).
        """
        kept = Kept((arch, dataset), model, meta, folder)
        with self._lock:
            previous = self._in_use.get(kept.key)
            self._in_use[kept.key] = kept
            self._kept.append(kept)
            if folder:
                self._folders.append(folder)
        if previous is not None and previous is not self.latest:
            self._drop(previous)

    def forget(self) -> int:
        """The other tabs go back to the pretrained models; returns how many were in use."""
        with self._lock:
            n, self._in_use = len(self._in_use), {}
        return n

    def get(self, arch: str, dataset: str) -> tuple[nn.Module, dict] | None:
        """(model, meta) the other tabs should use for ``arch`` on ``dataset``, or None (the pretrained one)."""
        outcome = self._in_use.get((arch, dataset))
        if outcome is not None:
            return (outcome.model, outcome.meta) if outcome is not None else None

    def __len__(self) -> int:
        return len(self._in_use)

    def _drop(self, outcome: Outcome | Kept) -> None:
        with self._lock:
            if outcome in self._kept:
                self._kept.remove(outcome)
            if outcome.folder in self._folders:
                self._folders.remove(outcome.folder)
        if outcome.folder:
            shutil.rmtree(outcome.folder, ignore_errors=True)

    def release(self) -> None:
        """Free everything: the models and every checkpoint folder (Gradio's ``delete_callback``)."""
        with self._lock:
            self._kept, self._in_use, self.latest = [], {}, None
            _remove_folders(self._folders)
