"""How the app serves many anonymous visitors: the queue, the file cache, session capacity, and who a visitor is.

The numbers are chosen for a 2-core CPU Space and for ZeroGPU (where Gradio would otherwise shrink the
queue to one waiting event); ``CNNDEMO_QUEUE_SIZE`` and ``CNNDEMO_CONCURRENCY`` override them.
See the README's "Hosting on Hugging Face Spaces" for the reasoning.
"""

from __future__ import annotations

import os
from typing import Any

# Waiting events, all endpoints together. 50 visitors each waiting for one answer fit with room for the
# fine-tune tab; beyond that a visitor is told at once that the app is busy (Gradio answers 503, the page
# shows "This application is currently busy. Please try again.") instead of waiting minutes.
QUEUE_MAX_SIZE = 100
# Events of one kind (say /classify) served at once. A classification takes ~10-50 ms of CPU and torch already
# uses both cores, so 2 keeps a slow request from blocking a fast one without thrashing; different endpoints
# have their own limits, so classification keeps being served while a fine-tune trains (it has its own).
DEFAULT_CONCURRENCY = 2
# Uploaded files and generated PNGs in Gradio's cache: every 15 minutes, delete those older than an hour.
DELETE_CACHE = (900, 3600)
# Gradio keeps a small record for every session, and every API call without a session is a new session
# (~0.3 MB each). 500 bounds that to ~150 MB; the least recently used session goes first, and a browser tab in
# use is never the least recently used one.
STATE_SESSION_CAPACITY = 500


def queue_settings() -> dict[str, Any]:
    """Arguments for ``demo.queue()`` (the same on CPU and ZeroGPU; environment overrides)."""
    return {"max_size": int(os.environ.get("CNNDEMO_QUEUE_SIZE", QUEUE_MAX_SIZE)),
            "default_concurrency_limit": int(os.environ.get("CNNDEMO_CONCURRENCY", DEFAULT_CONCURRENCY))}


def configure_queue(demo: Any) -> Any:
    """Call ``demo.queue(...)`` explicitly: without it, ZeroGPU Spaces get a queue of one waiting event."""
    return demo.queue(**queue_settings())


async def _unknown_endpoint(request: Any, exc: Exception) -> Any:
    """404 with a one-line message for ``/gradio_api/call/<name>`` of an endpoint that does not exist (Gradio: 500)."""
    from fastapi.responses import JSONResponse

    name = str(getattr(request, "path_params", {}).get("api_name", "")).strip("/")[:60]
    return JSONResponse({"detail": f"Unknown endpoint {name!r}: see /gradio_api/info for this app's endpoints."},
                        status_code=404)


def app_kwargs(demo: Any | None = None) -> dict[str, Any]:
    """``demo.launch(app_kwargs=...)``: FastAPI exception handlers for what Gradio answers with a bare 500; the
    public-safety guard (:mod:`cnndemo.app.guard`) in front of everything; and Gradio's frontend files compressed
    once instead of on every request (:mod:`cnndemo.app.compressed_assets`)."""
    from gradio.route_utils import FnIndexInferError

    from cnndemo.app import guard
    from cnndemo.app.compressed_assets import middleware

    return {"exception_handlers": {FnIndexInferError: _unknown_endpoint},
            "middleware": [*guard.installed(demo), *middleware()]}


def trust_proxies() -> str:
    """Tell uvicorn which proxies' forwarded headers to trust, before it starts: ``CNNDEMO_TRUSTED_PROXIES`` (a
    comma-separated list of addresses, as uvicorn's ``--forwarded-allow-ips``), default none.

    uvicorn's own default trusts ``X-Forwarded-For`` from 127.0.0.1, so any local client (or a proxy on the
    same host that passes the header on) could choose its address. On Spaces none is needed: the key is the
    entry Spaces' proxy appends (:func:`visitor_key`)."""
    trusted = os.environ.get("CNNDEMO_TRUSTED_PROXIES", "").strip()
    os.environ["FORWARDED_ALLOW_IPS"] = trusted
    return trusted


def visitor_key(request: Any) -> str:
    """Who the visitor is, for per-visitor limits: an address the client cannot choose.

    On Hugging Face Spaces (``SPACE_ID`` set) the proxy in front of the app appends the visitor's address to
    ``X-Forwarded-For``: its last entry is used (a client can only add entries before it). Elsewhere the TCP
    peer address, which uvicorn replaces by a forwarded one only from the proxies ``CNNDEMO_TRUSTED_PROXIES``
    names (:func:`trust_proxies`; none by default). Headers a client sets itself (``X-Forwarded-For`` off Spaces,
    ``x-ip-token``, whose signature cannot be checked here) and the session hash (the client picks it) are never
    used. Not verified on real Spaces hardware (none in development).
    """
    if request is None:
        return "local"
    headers = getattr(request, "headers", None) or {}
    forwarded = headers.get("x-forwarded-for") if os.environ.get("SPACE_ID") else None
    if forwarded and forwarded.split(",")[-1].strip():
        return f"ip:{forwarded.split(',')[-1].strip()[:64]}"
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return f"ip:{host}" if host else "local"
