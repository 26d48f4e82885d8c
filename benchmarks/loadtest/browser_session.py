"""One browser session over raw HTTP: the heartbeat that keeps it open, events run the page's way, tabs opened.

:class:`BrowserSession` speaks what the page speaks (``/gradio_api/queue/join`` + ``/queue/data`` with one
``session_hash``, the heartbeat stream, ``gr.render`` of a tab opened for the first time), so a test can drive
private events of the deferred tabs (a clicked mistake, a teach drawing) and then end the session by closing its
heartbeat, as a closed browser tab does. Loopback only (like :mod:`benchmarks.loadtest.rawhttp`).
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import httpx

from benchmarks.loadtest.rawhttp import TIMEOUT, _loopback


class BrowserSession:
    """A session on the app at ``url``: ``run`` events, ``open_tab`` a deferred tab, ``close`` the heartbeat."""

    def __init__(self, url: str):
        self.url = _loopback(url)
        self.hash = uuid.uuid4().hex[:12]
        self.http = httpx.Client(timeout=TIMEOUT)
        self.config = self.http.get(f"{self.url}/config").json()
        self.components = {c["id"]: c for c in self.config["components"]}
        self.dependencies = list(self.config["dependencies"])
        # The heartbeat over a plain socket: nothing needs to read it, and closing it is the tab going away.
        host = httpx.URL(self.url)
        self._beat = socket.create_connection((host.host, host.port or 80), timeout=10)
        self._beat.sendall(f"GET /gradio_api/heartbeat/{self.hash} HTTP/1.1\r\nHost: {host.host}\r\n"
                           "Accept: text/event-stream\r\n\r\n".encode())

    def close(self) -> None:
        """End the session as a closed tab does: the heartbeat connection goes away."""
        try:
            self._beat.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._beat.close()
        self.http.close()

    def component(self, name: str) -> int:
        """The id of the component whose ``elem_id`` (or, for a tab, ``id``) is ``name``."""
        return next(i for i, c in self.components.items()
                    if name in (c.get("props", {}).get("elem_id"), c.get("props", {}).get("id")))

    def dependency(self, target: int, event: str) -> dict:
        return next(d for d in self.dependencies if [target, event] in [list(t) for t in d["targets"]])

    def default(self, component_id: int) -> Any:
        return self.components[component_id].get("props", {}).get("value")

    def run(self, dep: dict, data: list | None = None, event_data: Any = None, timeout: float = 120) -> dict:
        """Run ``dep`` with ``data`` (default: its inputs' current defaults); the ``process_completed`` message."""
        return self.run_together([(dep, data, event_data)], timeout)[0]

    def join(self, dep: dict, data: list | None = None, event_data: Any = None) -> str:
        """Queue one event of ``dep`` in this session; its event id (read its result with ``run_together``)."""
        data = [self.default(i) for i in dep["inputs"]] if data is None else data
        r = self.http.post(f"{self.url}/gradio_api/queue/join",
                           json={"data": data, "fn_index": dep["id"], "session_hash": self.hash,
                                 "event_data": event_data, "trigger_id": None})
        r.raise_for_status()
        return r.json()["event_id"]

    def run_together(self, events: list[tuple[dict, list | None, Any]], timeout: float = 120,
                     on_message: Any = None, wait_for: list[str] = ()) -> list[dict]:
        """Send several events at once, as a page does, and read the session's one message stream until each has
        completed (two streams of one session would split its messages). Their ``process_completed`` messages.
        ``on_message(msg, ids)`` sees every message first (it may ``join`` more events and add their ids);
        ``wait_for``: ids of events already joined, read first."""
        ids = [*wait_for, *(self.join(dep, data, event_data) for dep, data, event_data in events)]
        wanted = len(ids)
        done: dict[str, dict] = {}
        with httpx.Client(timeout=httpx.Timeout(timeout)) as h, \
                h.stream("GET", f"{self.url}/gradio_api/queue/data", params={"session_hash": self.hash}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if on_message is not None:
                        on_message(msg, ids)
                    if msg.get("event_id") in ids and msg.get("msg") == "process_completed":
                        done[msg["event_id"]] = msg
                        if len(done) == len(ids):
                            return [done[i] for i in ids[:wanted]]
        raise RuntimeError(f"no result for {len(ids) - len(done)} of {len(ids)} events")

    def open_tab(self, name: str) -> None:
        """Open a deferred tab (``build_when_opened``): its select sets a hidden checkbox whose change renders it."""
        select = self.dependency(self.component(name), "select")
        opened = select["outputs"][0]
        render = next(d for d in self.dependencies if d.get("render_id") is not None
                      and [opened, "change"] in [list(t) for t in d["targets"]])
        msg = self.run(render, [True, *(self.default(i) for i in render["inputs"][1:])])
        assert msg.get("success"), msg
        config = msg["output"]["render_config"]
        self.components.update({c["id"]: c for c in config["components"]})
        self.dependencies += config["dependencies"]

    def upload(self, name: str, data: bytes) -> dict:
        """Upload a file the page's way; its ``FileData``."""
        r = self.http.post(f"{self.url}/gradio_api/upload", files={"files": (name, data, "image/png")})
        r.raise_for_status()
        return {"path": r.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}
