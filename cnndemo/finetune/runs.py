"""Who may train when: stop flags, the per-device queue, and the registry of running fine-tunes.

Plain Python (no gradio, no torch). Nothing here is held while a model classifies: the
locks below guard small dictionaries for microseconds, never a training run.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
import time
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

    def cleanup(self) -> None:
        """Remove the flag file (call when the run is over)."""
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


class DeviceQueue:
    """First come, first served: one training at a time per device (``"cpu"``, ``"cuda"``, ...).

    Use::

        ticket = queue.join("cuda")
        try:
            for ahead in queue.wait(ticket, stop):   # yields N while N runs are ahead
                show(f"waiting: {ahead} ahead")
            ...train...
        finally:
            queue.leave(ticket)
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._lines: dict[str, list[int]] = {}
        self._ids = itertools.count(1)
        self._device_of: dict[int, str] = {}

    def join(self, device: str) -> int:
        """Take a ticket at the end of ``device``'s line."""
        with self._cond:
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
    """Which session is training: one run at a time per session, and its stop flag.

    The fine-tuned models themselves are not here: they live in the session's
    :class:`~cnndemo.finetune.store.SessionModels` (Gradio frees it with the session).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, StopSignal] = {}

    def begin_run(self, session: str) -> StopSignal:
        """A fresh stop flag for a new run of ``session``; ``RuntimeError`` if the session is already training."""
        with self._lock:
            if session in self._runs:
                raise RuntimeError("A fine-tune is already running in this session: press Stop first.")
            stop = self._runs[session] = StopSignal()
            return stop

    def end_run(self, session: str, stop: StopSignal) -> None:
        """The run with ``stop`` is over."""
        stop.cleanup()
        with self._lock:
            if self._runs.get(session) is stop:
                del self._runs[session]

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
