"""Raw HTTP to a Gradio 6 app (httpx, loopback only): what a hostile or sloppy client can send.

``gradio_client`` validates some things on the client side (file size, JSON-compliant floats), so the
fault test also speaks Gradio's wire protocol directly: ``POST /gradio_api/upload``,
``POST /gradio_api/call/<api>`` + ``GET`` of its event stream, and ``/gradio_api/queue/join`` +
``/gradio_api/queue/data`` (what the browser uses, also for private events such as the canvas).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(30.0)


@dataclass
class Reply:
    """What the app answered: ``ok`` (a result) or not, a ``message`` for errors, the ``value``, the time."""

    ok: bool
    message: str = ""
    value: Any = None
    seconds: float = 0.0


def _loopback(url: str) -> str:
    host = httpx.URL(url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the load test only talks to loopback, not {host}")
    return url.rstrip("/")


def file_data(path: str, url: str | None = None) -> dict:
    """A Gradio ``FileData`` payload pointing at ``path``."""
    out = {"path": path, "meta": {"_type": "gradio.FileData"}}
    if url:
        out["url"] = url
    return out


def upload(base: str, name: str, data: bytes) -> httpx.Response:
    """``POST /gradio_api/upload`` of one file; the response (a JSON list of server paths on success)."""
    with httpx.Client(timeout=TIMEOUT) as h:
        return h.post(f"{_loopback(base)}/gradio_api/upload", files={"files": (name, data, "application/octet-stream")})


def _http_error(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail", r.text)
    except (ValueError, AttributeError):
        return f"HTTP {r.status_code}: {r.text[:300]}"
    if isinstance(detail, list):
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return f"HTTP {r.status_code}: {detail}"


def call(base: str, api: str, body: bytes | dict) -> Reply:
    """``POST /gradio_api/call/<api>`` with ``body`` (raw bytes are sent as they are), then read the
    event stream to its end. Streaming endpoints: ``value`` is the last data sent."""
    base = _loopback(base)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    t0 = time.perf_counter()
    with httpx.Client(timeout=TIMEOUT) as h:
        r = h.post(f"{base}/gradio_api/call/{api}", content=content, headers={"content-type": "application/json"})
        if r.status_code != 200:
            return Reply(False, _http_error(r), None, time.perf_counter() - t0)
        event_id = r.json()["event_id"]
        event, last = None, None
        with h.stream("GET", f"{base}/gradio_api/call/{api}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                    try:
                        last = json.loads(data) if data else None
                    except ValueError:
                        last = data
                    if event in ("complete", "error"):
                        break
    seconds = time.perf_counter() - t0
    if event == "error":
        message = last.get("error") if isinstance(last, dict) else last
        return Reply(False, "" if message is None else str(message), last, seconds)
    return Reply(True, "", last, seconds)


def dependency(base: str, api_name: str) -> dict:
    """The event named ``api_name`` in the app's ``/config`` (its ``id`` is the ``fn_index``)."""
    with httpx.Client(timeout=TIMEOUT) as h:
        config = h.get(f"{_loopback(base)}/config").json()
    for dep in config["dependencies"]:
        if dep.get("api_name") == api_name:
            return dep
    raise LookupError(f"no event named {api_name!r} in the app's config")


def dependency_id(base: str, api_name: str) -> int:
    """The ``fn_index`` of the event named ``api_name`` in the app's ``/config``."""
    return dependency(base, api_name)["id"]


def queue_join(base: str, fn_index: int, data: list) -> Reply:
    """Run event ``fn_index`` the browser's way (``queue/join`` + ``queue/data``) in a fresh session."""
    base = _loopback(base)
    session = uuid.uuid4().hex[:12]
    t0 = time.perf_counter()
    with httpx.Client(timeout=TIMEOUT) as h:
        r = h.post(f"{base}/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                          "event_data": None, "trigger_id": None})
        if r.status_code != 200:
            return Reply(False, _http_error(r), None, time.perf_counter() - t0)
        with h.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    output = msg.get("output") or {}
                    seconds = time.perf_counter() - t0
                    if msg.get("success"):
                        return Reply(True, "", output.get("data"), seconds)
                    error = output.get("error")
                    return Reply(False, "" if error is None else str(error), output, seconds)
    return Reply(False, "the event stream ended without a result", None, time.perf_counter() - t0)
