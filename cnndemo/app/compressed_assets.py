"""Gradio's frontend files (scripts, stylesheets) compressed once per app instead of once per request.

Gradio's own middleware brotli-compresses every script and stylesheet again on every request. A visitor's
first page load fetches ~80 of them, and on a 2-core machine that compression was most of the server's CPU
per page load (py-spy: ~0.25 s of CPU for this app's page against ~0.1 s for a bare Gradio page). The files
belong to the installed Gradio and never change while the app runs, so :class:`CompressedAssets` keeps each
one's compressed bytes in memory after its first request and answers later requests from there.

It is installed inside Gradio's middleware (``demo.launch(app_kwargs={"middleware": [...]})``, see
:func:`middleware`): a response that already carries ``Content-Encoding`` passes through Gradio's untouched.
Requests it does not handle (other paths, no ``br`` in ``Accept-Encoding``, conditional, ranged or ``HEAD``
requests, anything but a complete 200) go to Gradio exactly as before.
"""

from __future__ import annotations

from typing import Any

# Served by Gradio from its installed build (``/assets/<name>-<hash>.js``) and static folder.
PREFIXES = ("/assets/", "/static/")
# The file types Gradio's middleware compresses (the others are binary or already compressed).
COMPRESSIBLE = (".js", ".css", ".json", ".html", ".svg", ".txt", ".md")
# Compressed once, so a little slower than Gradio's per-request quality 4 buys ~7% fewer bytes
# (650 kB of script: 8 ms at 4, 19 ms at 6, once).
QUALITY = 6
# Gradio's own threshold: smaller bodies are sent as they are.
MINIMUM_SIZE = 400
# The whole frontend compresses to ~15 MB; this bounds memory even if every file were fetched.
MAX_CACHED_BYTES = 64 << 20


def wanted(scope: dict) -> bool:
    """Whether a request is one this cache answers: a plain ``GET`` of a compressible frontend file, ``br`` accepted."""
    if scope.get("type") != "http" or scope.get("method") != "GET":
        return False
    path = scope.get("path", "")
    if not path.startswith(PREFIXES) or not path.lower().endswith(COMPRESSIBLE):
        return False
    headers = {k.lower(): v for k, v in scope.get("headers", ())}
    if any(h in headers for h in (b"range", b"if-none-match", b"if-modified-since")):
        return False
    return b"br" in headers.get(b"accept-encoding", b"")


def compress(body: bytes) -> bytes:
    """``body`` as brotli text at :data:`QUALITY`."""
    import brotli  # Gradio's own dependency

    return brotli.compress(body, quality=QUALITY, mode=brotli.MODE_TEXT)


class CompressedAssets:
    """ASGI middleware: serves :func:`wanted` requests from compressed bytes kept in memory after the first one."""

    def __init__(self, app: Any, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.cached: dict[str, tuple[list, bytes]] = {}  # path -> (response headers, body as sent)
        self.cached_bytes = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if not wanted(scope):
            return await self.app(scope, receive, send)
        path = scope["path"]
        hit = self.cached.get(path)
        if hit is None:
            messages = await self._respond(scope, receive)
            hit = await self._encoded(messages)
            if hit is None:  # not a complete 200: pass Gradio's answer on as it is
                for message in messages:
                    await send(message)
                return
            if self.cached_bytes + len(hit[1]) <= self.max_bytes:
                self.cached[path] = hit
                self.cached_bytes += len(hit[1])
        headers, body = hit
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _respond(self, scope: dict, receive: Any) -> list[dict]:
        """Every message the app sends for this request."""
        messages: list[dict] = []

        async def keep(message: dict) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        return messages

    @staticmethod
    async def _encoded(messages: list[dict]) -> tuple[list, bytes] | None:
        """(headers, body) to send for a complete 200 response, compressed unless it is small; else None."""
        from anyio import to_thread

        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None or start.get("status") != 200:
            return None
        bodies = [m for m in messages if m["type"] == "http.response.body"]
        if not bodies or bodies[-1].get("more_body", False):
            return None
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if any(k.lower() == b"content-encoding" for k, _ in headers):
            return None
        body = b"".join(m.get("body", b"") for m in bodies)
        if len(body) >= MINIMUM_SIZE:
            body = await to_thread.run_sync(compress, body)  # off the event loop: up to ~0.1 s once for the largest
            headers += [(b"content-encoding", b"br"), (b"vary", b"Accept-Encoding")]
        return headers + [(b"content-length", str(len(body)).encode())], body


def middleware() -> list:
    """``app_kwargs["middleware"]`` for ``demo.launch()``: Starlette's wrapper around :class:`CompressedAssets`."""
    from starlette.middleware import Middleware

    return [Middleware(CompressedAssets)]
