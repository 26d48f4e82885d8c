"""What the guard remembers per visitor and per session: files it may name, its upload bytes, its sessions.

A visitor (:func:`cnndemo.app.serving.visitor_key`, an address the client cannot choose) may name in a request
only the files it uploaded and the files the app sent it (its answers); everything is forgotten after an hour,
when Gradio's cache sweep deletes the files. Memory is bounded: at most ``limits.visitors`` visitors and
``limits.owned_paths`` files each, the least recently seen dropped first. Used only from the server's event
loop (one thread), so there are no locks.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from cnndemo.app.guard.policy import Limits


def normal(path: str) -> str | None:
    """``path`` as the guard compares it (normalised, absolute); None when it can never be a file we gave out."""
    if not isinstance(path, str) or not path or "\x00" in path or len(path) > 4096:
        return None
    if ".." in path.replace("\\", "/").split("/"):
        return None
    return os.path.normpath(path) if os.path.isabs(path) else None


@dataclass
class Visitor:
    """One visitor's files (path -> when given), upload bytes in the last hour, and new sessions in the window."""

    files: OrderedDict = field(default_factory=OrderedDict)
    uploads: deque = field(default_factory=deque)  # (time, bytes)
    sessions: deque = field(default_factory=deque)  # times of new sessions


class Ledger:
    """Per-visitor files, upload budget and session count; per-session canvas event in flight."""

    def __init__(self, limits: Limits, clock=time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.visitors: OrderedDict[str, Visitor] = OrderedDict()
        self.sessions: OrderedDict[str, str] = OrderedDict()  # session hash -> visitor (the newest last)
        self.canvas: dict[str, tuple[str, int, int | None]] = {}  # session -> (event id, fn_index, seq) unanswered

    def visitor(self, key: str) -> Visitor:
        v = self.visitors.get(key)
        if v is None:
            v = self.visitors[key] = Visitor()
            while len(self.visitors) > self.limits.visitors:
                self.visitors.popitem(last=False)
        self.visitors.move_to_end(key)
        return v

    # ------------------------------------------------------------------ files
    def give(self, key: str, paths) -> None:
        """``key`` was sent (or uploaded) these files: it may name them for an hour."""
        v, now = self.visitor(key), self.clock()
        for path in paths:
            p = normal(path)
            if p is None:
                continue
            v.files[p] = now
            v.files.move_to_end(p)
        while len(v.files) > self.limits.owned_paths:
            v.files.popitem(last=False)

    def owns(self, key: str, path: str) -> bool:
        p = normal(path)
        if p is None:
            return False
        v = self.visitors.get(key)
        given = None if v is None else v.files.get(p)
        return given is not None and self.clock() - given <= self.limits.owned_ttl_s

    # ------------------------------------------------------------------ uploads
    def upload_room(self, key: str) -> int:
        """Bytes ``key`` may still upload this hour."""
        v, now = self.visitor(key), self.clock()
        while v.uploads and now - v.uploads[0][0] > 3600:
            v.uploads.popleft()
        return self.limits.upload_mb_per_hour * (1 << 20) - sum(n for _, n in v.uploads)

    def uploaded(self, key: str, nbytes: int) -> None:
        self.visitor(key).uploads.append((self.clock(), nbytes))

    # ------------------------------------------------------------------ sessions
    def admit(self, key: str, session: str | None) -> bool:
        """Whether ``key`` may use ``session`` (None: a new session per request, as ``/call`` without one)."""
        if session is not None and session in self.sessions:
            self.sessions.move_to_end(session)
            return True
        v, now = self.visitor(key), self.clock()
        while v.sessions and now - v.sessions[0] > self.limits.session_window_s:
            v.sessions.popleft()
        if len(v.sessions) >= self.limits.sessions_per_window:
            return False
        v.sessions.append(now)
        if session is not None:
            self.sessions[session] = key
            while len(self.sessions) > self.limits.visitors * 4:
                old, _ = self.sessions.popitem(last=False)
                self.canvas.pop(old, None)
        return True

    # ------------------------------------------------------------------ the live canvas
    def canvas_joined(self, session: str, event_id: str, fn_index: int, seq: int | None) -> None:
        """A canvas event of ``session`` (drawing ``seq``) joined the queue: the one unanswered until answered."""
        self.canvas[session] = (event_id, fn_index, seq)

    def canvas_answered(self, session: str, event_id: str) -> None:
        if self.canvas.get(session, ("",))[0] == event_id:
            del self.canvas[session]
