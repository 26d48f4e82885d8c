"""How the app serves many anonymous visitors: the queue, the file cache, session capacity, and who a visitor is.

The numbers are chosen for a 2-core CPU Space and for ZeroGPU (where Gradio would otherwise shrink the
queue to one waiting event); ``CNNDEMO_QUEUE_SIZE`` and ``CNNDEMO_CONCURRENCY`` override them.
See the README's "Hosting on Hugging Face Spaces" for the reasoning.
"""

from __future__ import annotations

import base64
import hashlib
import json
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


def app_kwargs() -> dict[str, Any]:
    """``demo.launch(app_kwargs=...)``: FastAPI exception handlers for what Gradio answers with a bare 500, and
    Gradio's frontend files compressed once instead of on every request (:mod:`cnndemo.app.compressed_assets`)."""
    from gradio.route_utils import FnIndexInferError

    from cnndemo.app.compressed_assets import middleware

    return {"exception_handlers": {FnIndexInferError: _unknown_endpoint}, "middleware": middleware()}


def _jwt_claims(token: str) -> dict:
    """The (unverified) claims of a JWT; {} when it is not one."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}


def visitor_key(request: Any) -> str:
    """Who the visitor is, for per-visitor limits: something the client cannot choose.

    On Hugging Face Spaces (``SPACE_ID`` set), the proxy in front of the app adds ``x-ip-token`` (the
    visitor's IP, signed); its IP claim is used; without one, the last ``X-Forwarded-For`` entry (the one
    Spaces' proxy appends; a client can only add entries before it). Elsewhere these headers could be
    sent by anyone, so the TCP peer address is used (behind your own proxy, let uvicorn trust its
    forwarded headers). The session hash is never used: the client picks it. Not verified on real
    Spaces hardware (none in development).
    """
    if request is None:
        return "local"
    headers = getattr(request, "headers", None) or {}
    token = headers.get("x-ip-token") if os.environ.get("SPACE_ID") else None
    if token:
        claims = _jwt_claims(token)
        ip = claims.get("ip") or claims.get("client_ip") or claims.get("sub")
        if ip:
            return f"ip:{ip}"
        stable = {k: v for k, v in claims.items() if k not in ("iat", "exp", "nbf", "jti")}
        return "token:" + hashlib.sha256(json.dumps(stable or token, sort_keys=True, default=str).encode()).hexdigest()[:16]
    forwarded = headers.get("x-forwarded-for") if os.environ.get("SPACE_ID") else None
    if forwarded and forwarded.split(",")[-1].strip():
        return f"ip:{forwarded.split(',')[-1].strip()}"
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return f"ip:{host}" if host else "local"
