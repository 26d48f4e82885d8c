"""Who may train when: stop flags, the per-device queue, and the registry of running fine-tunes.

Plain Python (no gradio, no torch). Nothing here is held while a model classifies: the
locks below guard small dictionaries for microseconds, never a training run.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class StopSignal:
    """A stop flag that works in this process *and* in a ZeroGPU worker process.

    ``train_iter`` only calls ``is_set()``. Locally the ``threading.Event`` answers; under
    ZeroGPU the training runs in another process that receives a pickled copy, so ``set()``
    also creates a small flag file that the copy checks (one ``stat`` per training step).
    """

    def __init__(self, folder: str | os.PathLike | None = None):
        self._event = threading.Event()
        folder = Path(folder or tempfile.gettempdir())
        self.path = str(folder / f"cnndemo-stop-{uuid.uuid4().hex}")

    def set(self) -> None:
        """Ask the run to stop (idempotent)."""
        self._event.set()
        try:
            Path(self.path).touch()
        except OSError:
            pass

    def is_set(self) -> bool:
        """Whether :meth:`set` was called here or in the process that created the flag."""
        return self._event.is_set() or os.path.exists(self.path)

    def cleanup(self, after: float = 0.0) -> None:
        """Remove the flag file (call when the run is over); ``after`` > 0 removes it that many seconds
        later, in a daemon timer, so a worker process still training sees the flag before it goes."""
        if after > 0:
            timer = threading.Timer(after, self.cleanup)
            timer.daemon = True
            timer.start()
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "was_set": self.is_set()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._event = threading.Event()
        self.path = state["path"]
        if state["was_set"]:
            self._event.set()


class QueueFull(RuntimeError):
    """The training queue of a device is full; ``str(error)`` is a message for the visitor."""


class DeviceQueue:
    """First come, first served: one training at a time per device (``"cpu"``, ``"cuda"``, ...),
    at most ``max_runs`` training or waiting per device (``None``: unbounded).

    Use::

        ticket = queue.join("cuda")
        try:
            for ahead in queue.wait(ticket, stop):   # yields N while N runs are ahead
                show(f"waiting: {ahead} ahead")
            ...train...
        finally:
            queue.leave(ticket)
    """

    def __init__(self, max_runs: int | None = None) -> None:
        self._cond = threading.Condition()
        self._lines: dict[str, list[int]] = {}
        self._ids = itertools.count(1)
        self._device_of: dict[int, str] = {}
        self.max_runs = max_runs

    def join(self, device: str) -> int:
        """Take a ticket at the end of ``device``'s line; :class:`QueueFull` when ``max_runs`` are there already."""
        with self._cond:
            line = self._lines.get(device, [])
            if self.max_runs is not None and len(line) >= self.max_runs:
                raise QueueFull(f"Fine-tuning is busy: {len(line)} runs are training or waiting on {device} "
                                f"(the most there can be). Please try again in a few minutes.")
            ticket = next(self._ids)
            self._lines.setdefault(device, []).append(ticket)
            self._device_of[ticket] = device
            return ticket

    def ahead(self, ticket: int) -> int:
        """How many tickets are ahead of this one (0 = its turn)."""
        with self._cond:
            device = self._device_of.get(ticket)
            if device is None:
                return 0
            return self._lines[device].index(ticket)

    def wait(self, ticket: int, stop: StopSignal | None = None, poll: float = 0.5) -> Iterator[int]:
        """Yield the number ahead (whenever it is > 0, at least every ``poll`` s) until it is this ticket's turn.

        Returns early (leaving the line) when ``stop`` is set; check ``stop.is_set()`` afterwards.
        """
        while True:
            n = self.ahead(ticket)
            if n == 0:
                return
            if stop is not None and stop.is_set():
                self.leave(ticket)
                return
            yield n
            with self._cond:
                self._cond.wait(timeout=poll)

    def leave(self, ticket: int) -> None:
        """Give up the turn or the place in line (idempotent); wakes the others."""
        with self._cond:
            device = self._device_of.pop(ticket, None)
            if device is not None:
                self._lines[device].remove(ticket)
            self._cond.notify_all()

    def length(self, device: str) -> int:
        """Runs training or waiting on ``device``."""
        with self._cond:
            return len(self._lines.get(device, []))


class RunRegistry:
    """Who is training: one run at a time per session, at most ``per_visitor`` per visitor, and their stop flags.

    The visitor is who the server says it is (the request's IP, see ``cnndemo.app.serving.visitor_key``),
    not the session hash, which the client chooses. The fine-tuned models themselves are not here: they
    live in the session's :class:`~cnndemo.finetune.store.SessionModels` (Gradio frees it with the session).
    """

    def __init__(self, per_visitor: int = 1, what: str = "fine-tune") -> None:
        self.what = what  # how messages name a run ("fine-tune", "lab run")
        self._lock = threading.Lock()
        self._runs: dict[str, StopSignal] = {}
        self._visitor_of: dict[str, str] = {}
        self.per_visitor = per_visitor

    def begin_run(self, session: str, visitor: str | None = None) -> StopSignal:
        """A fresh stop flag for a new run of ``session`` by ``visitor``; ``RuntimeError`` (a message for the
        visitor) if the session is already training or the visitor has ``per_visitor`` runs already."""
        with self._lock:
            if session in self._runs:
                raise RuntimeError(f"A {self.what} is already running in this session: wait for it, or press Stop.")
            if visitor is not None and sum(v == visitor for v in self._visitor_of.values()) >= self.per_visitor:
                raise RuntimeError(f"You already have a {self.what} running or waiting (one at a time per visitor): "
                                   "wait for it to finish, or press Stop in its tab.")
            stop = self._runs[session] = StopSignal()
            if visitor is not None:
                self._visitor_of[session] = visitor
            return stop

    def end_run(self, session: str, stop: StopSignal, linger: float = 0.0) -> None:
        """The run with ``stop`` is over; its flag file is removed ``linger`` seconds later (see StopSignal.cleanup)."""
        stop.cleanup(linger)
        with self._lock:
            if self._runs.get(session) is stop:
                del self._runs[session]
                self._visitor_of.pop(session, None)

    def request_stop(self, session: str) -> bool:
        """Set the session's stop flag; False when it has no run."""
        with self._lock:
            stop = self._runs.get(session)
        if stop is None:
            return False
        stop.set()
        return True

    def running(self) -> list[str]:
        """Ids of the sessions training or waiting to train."""
        with self._lock:
            return list(self._runs)
