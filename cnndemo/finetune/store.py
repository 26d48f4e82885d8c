"""The per-session store of fine-tuned and taught models, and the app's registry of them by session hash.

:class:`SessionModels` is one browser session's models and files; :class:`SessionRegistry` keeps one per session
hash for the app (not in Gradio's per-session state, whose capacity evicts the least recently used session
without notice): a store lives while its session uses it and goes an hour after its last use, or soon after its
page closes, deleting its checkpoint folders. A store dropped any other way removes its folders when
garbage-collected. No gradio here.
"""

from __future__ import annotations

import shutil
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn


SESSION_TTL_S = 3600.0  # a session's store is freed this long after the session last used it


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

    def holds(self) -> bool:
        """Whether this store holds anything worth keeping: a finished run or a model in use."""
        return self.latest is not None or bool(self._in_use) or bool(self._folders)

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


class SessionRegistry:
    """Every browser session's :class:`SessionModels`, by session hash, owned by the app (not by Gradio's state).

    The policy (README, "Hosting"): a session's store lives while the session is used (every event that uses its
    models calls :meth:`get`, which restarts its time) and goes ``ttl_s`` after its last use, or ``grace_s`` after
    its page was closed (:meth:`closed`; a page that reconnects in time keeps it). It is never dropped to make room:
    a flood of new sessions cannot evict one that holds a model. Instead at most ``max_holding`` sessions may hold
    models at once (:meth:`room_for` says no to a new one beyond that), and empty stores, which cost nothing, are
    forgotten first when there are more than ``max_sessions``. Thread-safe.
    """

    def __init__(self, ttl_s: float = SESSION_TTL_S, grace_s: float = 300.0, max_holding: int = 64,
                 max_sessions: int = 20_000, clock=None) -> None:
        self.ttl_s, self.grace_s = ttl_s, grace_s
        self.max_holding, self.max_sessions = max_holding, max_sessions
        self.clock = clock or time.monotonic
        self._stores: dict[str, SessionModels] = {}
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, session: str) -> SessionModels:
        """``session``'s store (a new empty one the first time); its time to live starts again."""
        with self._lock:
            store = self._stores.get(session)
            if store is None:
                store = self._stores[session] = SessionModels()
                self._forget_empty()
            self._expires[session] = self.clock() + self.ttl_s
            return store

    def closed(self, session: str) -> None:
        """The session's page went away: its store goes after ``grace_s`` unless the session is used again."""
        with self._lock:
            if session in self._stores:
                self._expires[session] = min(self._expires[session], self.clock() + self.grace_s)

    def release(self, session: str) -> None:
        """Free ``session``'s models and files now."""
        with self._lock:
            store = self._stores.pop(session, None)
            self._expires.pop(session, None)
        if store is not None:
            store.release()

    def sweep(self) -> int:
        """Release every store whose time is up; returns how many."""
        now = self.clock()
        with self._lock:
            due = [s for s, t in self._expires.items() if t <= now]
        for session in due:
            self.release(session)
        return len(due)

    def holding(self) -> int:
        """How many sessions hold a model or a finished run."""
        with self._lock:
            return self._holding()

    def room_for(self, session: str) -> bool:
        """Whether ``session`` may keep a (new) model: it holds one already, or fewer than ``max_holding`` do."""
        with self._lock:
            store = self._stores.get(session)
            return (store is not None and store.holds()) or self._holding() < self.max_holding

    def _holding(self) -> int:  # under the lock
        return sum(1 for s in self._stores.values() if s.holds())

    def __contains__(self, session: str) -> bool:
        return session in self._stores

    def __len__(self) -> int:
        return len(self._stores)

    def _forget_empty(self) -> None:
        """Over ``max_sessions``: forget the empty stores that expire first (under the lock)."""
        extra = len(self._stores) - self.max_sessions
        if extra <= 0:
            return
        empty = sorted((t, s) for s, t in self._expires.items() if not self._stores[s].holds())
        for _, session in empty[:extra]:
            self._stores.pop(session, None)
            self._expires.pop(session, None)
