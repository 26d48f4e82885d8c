"""The ASGI middleware in front of Gradio that enforces :mod:`.policy` before any work is done.

For every request: a route the app does not use answers 404; a body over its route's bound answers 413 (from
Content-Length, and again while the body streams in). An event (``queue/join``, ``call``, ``run``) is read whole
(it is small), and refused when it names a file this visitor was never given, comes from a visitor over its
session budget, or is a canvas event over the canvas's bound; a second canvas event of one session cancels the
first through Gradio's own ``/gradio_api/cancel`` (one queued per session, always the newest). An upload is
refused over the visitor's hourly budget or with too many files. Answers are read on the way out: the files in
them (and in upload answers) become the visitor's, and every error message is cut to one line of 300 characters.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request

from cnndemo.app.guard import policy
from cnndemo.app.guard.ledger import Ledger, normal
from cnndemo.app.guard.policy import AppFacts, Limits

PATH_FIELD = re.compile(rb'"path":\s*"((?:[^"\\]|\\.)*)"')


def _header(scope: dict, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


async def _respond(send: Any, status: int, message: str) -> None:
    body = json.dumps({"detail": policy.short(message), "error": policy.short(message)}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _read(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or None when it is over ``limit`` bytes (reading stops there)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Any):
    sent = False

    async def again() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then wait for the disconnect, as Starlette does

    return again


def file_refs(value: Any, depth: int = 0):
    """Every file reference in an event's data: the ``path`` (or, lacking one, the ``url``) of each object."""
    if depth > 32:
        yield "<too deep>"
    elif isinstance(value, dict):
        ref = value.get("path") if value.get("path") is not None else value.get("url")
        if ref is not None:
            yield ref
        for v in value.values():
            if isinstance(v, (dict, list)):
                yield from file_refs(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from file_refs(v, depth + 1)


class Guard:
    """ASGI middleware: the app's bounds and ownership rules in front of Gradio (see the module docstring)."""

    def __init__(self, app: Any, facts: AppFacts | None = None, limits: Limits | None = None) -> None:
        from cnndemo.app.serving import visitor_key

        self.app = app
        self.facts = facts or AppFacts()
        self.limits = limits or Limits.from_env()
        self.ledger = Ledger(self.limits)
        self.visitor_key = visitor_key

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":  # Gradio 6 uses none
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"].removeprefix(scope.get("root_path") or "")
        method = scope["method"]
        if not policy.allowed(method, path):
            return await _respond(send, 404, policy.NOT_FOUND)
        if path.startswith("/gradio_api/file=") and policy.is_url_file(path):
            return await _respond(send, 404, policy.URL_FILE)
        key = self.visitor_key(Request(scope))
        limit = policy.body_limit(method, path, self.limits)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _respond(send, 413, policy.TOO_LARGE.format(length, limit))
        out = self._answers(scope, path, key, send)
        if path == policy.UPLOAD_ROUTE:
            return await self._upload(scope, receive, out, key, length, limit)
        if policy.EVENT_ROUTES.fullmatch(path):
            body = await _read(receive, limit)
            if body is None:
                return await _respond(send, 413, policy.TOO_LARGE.format(f"over {limit}", limit))
            return await self._event(scope, path, body, receive, out, key)
        return await self.app(scope, self._capped(receive, limit), out)

    # ------------------------------------------------------------------ requests
    def _capped(self, receive: Any, limit: int):
        seen = 0

        async def capped() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            return {"type": "http.disconnect"} if seen > limit else message

        return capped

    async def _event(self, scope: dict, path: str, body: bytes, receive: Any, send: Any, key: str) -> None:
        try:
            parsed = json.loads(body)
        except ValueError:  # Gradio answers malformed JSON itself
            parsed = None
        if isinstance(parsed, dict):
            fn = parsed.get("fn_index")
            session = parsed.get("session_hash") if isinstance(parsed.get("session_hash"), str) else None
            canvas = path == "/gradio_api/queue/join" and isinstance(fn, int) and fn in self.facts.canvas_fns
            if canvas and len(body) > self.limits.canvas_body:
                return await _respond(send, 413, policy.TOO_LARGE.format(len(body), self.limits.canvas_body))
            if not all(self._may_open(key, ref) for ref in file_refs(parsed.get("data"))):
                return await _respond(send, 400, policy.NOT_YOURS)
            if not self.ledger.admit(key, session):
                return await _respond(send, 429, policy.TOO_MANY_SESSIONS.format(
                    self.limits.sessions_per_window, self.limits.session_window_s // 60))
            if canvas and session:
                return await self._canvas(scope, body, receive, send, session, fn, _seq(parsed.get("data")))
        await self.app(scope, _replay(body, receive), send)

    def _may_open(self, key: str, ref: Any) -> bool:
        if self.ledger.owns(key, ref):
            return True
        p = normal(ref) if isinstance(ref, str) else None
        if p is None:
            return False
        real = os.path.realpath(p)
        return any(real.startswith(os.path.join(folder, "")) for folder in self.facts.own_folders)

    async def _canvas(self, scope: dict, body: bytes, receive: Any, send: Any, session: str, fn: int,
                      seq: int | None) -> None:
        """Join a canvas event; the session's unanswered one is cancelled first, unless it is a newer drawing
        (then this older one is refused): one waits per session, the newest."""
        previous = self.ledger.canvas.get(session)
        if previous is not None:
            if seq is not None and previous[2] is not None and seq <= previous[2]:
                return await _respond(send, 409, policy.STALE_DRAWING)
            await self._cancel(scope, session, previous[0], previous[1])
        joined: list[bytes] = []

        async def keep(message: dict) -> None:
            if message["type"] == "http.response.body":
                joined.append(message.get("body", b""))
            await send(message)

        await self.app(scope, _replay(body, receive), keep)
        try:
            event_id = json.loads(b"".join(joined)).get("event_id")
        except (ValueError, AttributeError):
            return
        if isinstance(event_id, str):
            self.ledger.canvas_joined(session, event_id, fn, seq)

    async def _cancel(self, scope: dict, session: str, event_id: str, fn: int) -> None:
        body = json.dumps({"session_hash": session, "fn_index": fn, "event_id": event_id}).encode()
        root = scope.get("root_path", "")
        sub = {**{k: v for k, v in scope.items() if k != "raw_path"}, "method": "POST",
               "path": root + "/gradio_api/cancel", "query_string": b"",
               "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}

        async def nothing(message: dict) -> None:
            return None

        async def never() -> dict:
            return {"type": "http.disconnect"}

        await self.app(sub, _replay(body, never), nothing)
        self.ledger.canvas_answered(session, event_id)

    async def _upload(self, scope: dict, receive: Any, send: Any, key: str, length: str | None, limit: int) -> None:
        if length is None:
            return await _respond(send, 411, policy.NEEDS_LENGTH)
        if int(length) > self.ledger.upload_room(key):
            return await _respond(send, 429, policy.UPLOAD_BUDGET.format(self.limits.upload_mb_per_hour))
        self.ledger.uploaded(key, int(length))
        boundary = re.search(r"boundary=\"?([^\";]+)", _header(scope, b"content-type") or "")
        marker = b"--" + boundary.group(1).encode("latin-1") if boundary else None
        state = {"markers": 0, "tail": b"", "seen": 0, "refused": None}

        async def counted() -> dict:
            message = await receive()
            if message["type"] != "http.request" or state["refused"]:
                return message
            chunk = message.get("body", b"")
            state["seen"] += len(chunk)
            if marker is not None:
                data = state["tail"] + chunk
                state["markers"] += data.count(marker)
                state["tail"] = data[-(len(marker) - 1):] if len(marker) > 1 else b""
            if state["markers"] - 1 > self.limits.files_per_upload:
                state["refused"] = (413, policy.TOO_MANY_FILES.format(self.limits.files_per_upload))
            elif state["seen"] > limit:
                state["refused"] = (413, policy.TOO_LARGE.format(f"over {limit}", limit))
            return {"type": "http.disconnect"} if state["refused"] else message

        async def unless_refused(message: dict) -> None:
            if not state["refused"]:
                await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:  # the disconnect we made Gradio see
            if not state["refused"]:
                raise
        if state["refused"]:
            await _respond(send, *state["refused"])

    # ------------------------------------------------------------------ answers
    def _answers(self, scope: dict, path: str, key: str, send: Any):
        """``send`` that reads what goes out: files given to the visitor, canvas events answered, error lines."""
        scan = path == policy.UPLOAD_ROUTE or bool(policy.ANSWER_ROUTES.fullmatch(path))
        session = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", [None])[0]
        state: dict[str, Any] = {"status": 200, "start": None, "held": []}

        async def out(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message.get("status", 200)
                if state["status"] >= 400:  # held back until its message is cut to length
                    state["start"] = message
                    return
                return await send(message)
            if message["type"] != "http.response.body":
                return await send(message)
            body = message.get("body", b"")
            if state["start"] is not None:
                state["held"].append(body)
                if message.get("more_body", False):
                    return
                return await self._error_out(send, state["start"], b"".join(state["held"]))
            if path == policy.UPLOAD_ROUTE and body:  # a JSON list of the stored files' paths
                try:
                    stored = json.loads(body)
                except ValueError:
                    stored = []
                self.ledger.give(key, (p for p in stored if isinstance(p, str)) if isinstance(stored, list) else ())
            elif scan and body:
                self.ledger.give(key, (json.loads(b'"' + m + b'"') for m in PATH_FIELD.findall(body)))
                if session and session in self.ledger.canvas and b"process_completed" in body:
                    for event_id in _completed(body):
                        self.ledger.canvas_answered(session, event_id)
                if b'"success":false' in body.replace(b" ", b"") or b"event: error" in body:
                    body = _cut_stream_errors(body)
                    message = {**message, "body": body}
            await send(message)

        return out

    async def _error_out(self, send: Any, start: dict, body: bytes) -> None:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for field in ("detail", "error"):
                if isinstance(parsed.get(field), str):
                    parsed[field] = policy.short(parsed[field])
                elif isinstance(parsed.get(field), list):  # pydantic's list of problems
                    parsed[field] = policy.short("; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d)
                                                           for d in parsed[field]))
            body = json.dumps(parsed).encode()
        elif len(body) > policy.MAX_MESSAGE:
            body = policy.short(body.decode("utf-8", "replace")).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _seq(data: Any) -> int | None:
    """The drawing number of a canvas event's payload (its first input); None when it has none to read."""
    from cnndemo.data.canvas import payload_seq

    try:
        seq = payload_seq(data[0]) if isinstance(data, list) and data else None
    except (ValueError, TypeError):
        return None
    return seq if isinstance(seq, int) else None


def _completed(body: bytes) -> list[str]:
    """The event ids of the ``process_completed`` messages among these server-sent events."""
    ids = []
    for line in body.split(b"\n"):
        if line.startswith(b"data:") and b"process_completed" in line:
            try:
                msg = json.loads(line[5:])
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("msg") == "process_completed" and isinstance(msg.get("event_id"), str):
                ids.append(msg["event_id"])
    return ids


def _cut_stream_errors(body: bytes) -> bytes:
    """Server-sent events with their error messages cut to one line of 300 characters."""
    lines = body.split(b"\n")
    for i, line in enumerate(lines):
        if not line.startswith(b"data:"):
            continue
        try:
            msg = json.loads(line[5:])
        except ValueError:
            continue
        if isinstance(msg, str):
            msg = policy.short(msg)
        elif isinstance(msg, dict):
            output = msg.get("output") if isinstance(msg.get("output"), dict) else msg
            for field in ("error", "title"):
                if isinstance(output.get(field), str):
                    output[field] = policy.short(output[field])
        else:
            continue
        lines[i] = b"data: " + json.dumps(msg).encode()
    return b"\n".join(lines)
