"""The newest canvas drawing each session has asked to be answered, kept by the app (not in ``gr.State``).

Two drawings of one session can be answered at once (the draw event serves two events together), and each would
read and write a per-session ``gr.State`` on its own: the older one, finishing last, moved the session's newest
answered drawing backwards. :class:`NewestSeq` decides under one lock instead: a drawing is answered only if its
``seq`` is newer than every drawing of its session seen so far, and its answer is sent only if no newer drawing
came while it was computed. Bounded: the least recently used sessions go beyond ``capacity``, and idle ones after
``idle_s``. No gradio here.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class NewestSeq:
    """session id -> the newest seq claimed, with ``claim`` (before the work) and ``still_newest`` (after it)."""

    def __init__(self, capacity: int = 10_000, idle_s: float = 3600.0):
        self.capacity, self.idle_s = capacity, idle_s
        self._seqs: OrderedDict[str, tuple[int, float]] = OrderedDict()  # session -> (seq, last used)
        self._lock = threading.Lock()

    def claim(self, session: str, seq: int) -> int | None:
        """Claim ``seq`` for ``session`` if it is newer than any claimed before: None when claimed, else the
        newest seq (the drawing is older than one already being answered: skip it)."""
        now = time.monotonic()
        with self._lock:
            newest = self._seqs.get(session, (0, now))[0]
            if seq <= newest:
                self._touch(session, newest, now)
                return newest
            self._touch(session, seq, now)
            return None

    def still_newest(self, session: str, seq: int) -> bool:
        """Whether ``seq`` is still the newest claimed for ``session`` (no newer drawing came meanwhile)."""
        with self._lock:
            return self._seqs.get(session, (seq, 0.0))[0] <= seq

    def newest(self, session: str) -> int:
        with self._lock:
            return self._seqs.get(session, (0, 0.0))[0]

    def __len__(self) -> int:
        return len(self._seqs)

    def _touch(self, session: str, seq: int, now: float) -> None:
        self._seqs[session] = (seq, now)
        self._seqs.move_to_end(session)
        while self._seqs:
            oldest, (_, used) = next(iter(self._seqs.items()))
            if len(self._seqs) <= self.capacity and now - used <= self.idle_s:
                break
            del self._seqs[oldest]
