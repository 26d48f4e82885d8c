"""What a visitor may send: the routes the app uses, the body size of each, and the per-visitor budgets.

Everything here is data; :mod:`.middleware` enforces it before Gradio reads a byte. The numbers are chosen for
a class sharing one Space (30 students, possibly behind one school address) and can be changed with the
environment variables named below. Messages are one line, the same whatever was sent (no oracle).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from cnndemo.data.decode import MAX_UPLOAD_BYTES

KIB, MIB = 1 << 10, 1 << 20

# The routes the page and the documented API use (method, path regex after the root path). Everything else that
# Gradio serves (screen recording, deep links, the URL proxy, streaming, vibe editing, monitoring, run history,
# log-in, the component server, MCP...) answers 404: a route the app never uses is a route nobody checked.
ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", r"/"),
    ("GET", r"/(config|gradio_api/info|gradio_api/openapi\.json)/?"),
    ("GET", r"/(gradio_api/)?theme\.css"),
    ("GET", r"/(assets|static|svelte)/.+"),
    ("GET", r"/(favicon\.ico|robots\.txt|manifest\.json|pwa_icon(/\d+)?)"),
    ("GET", r"/gradio_api/(heartbeat/[^/]+|queue/data|upload_progress|startup-events|app_id/?|login_check/?)"),
    ("GET", r"/gradio_api/file=.+"),  # local files only: a URL is refused (see :func:`is_url_file`)
    ("GET", r"/gradio_api/call/(v2/)?[\w.-]+/[\w-]+"),
    ("POST", r"/gradio_api/(queue/join|cancel|reset/?)"),
    ("POST", r"/gradio_api/(call|call/v2|run|api)/[\w.-]+/?"),
    ("POST", r"/gradio_api/upload"),
)
_COMPILED = tuple((method, re.compile(pattern)) for method, pattern in ROUTES)

EVENT_ROUTES = re.compile(r"/gradio_api/(queue/join|(call|call/v2|run|api)/[\w.-]+/?)")
UPLOAD_ROUTE = "/gradio_api/upload"
# Answers whose file references become the visitor's (the page's initial values are in its config).
ANSWER_ROUTES = re.compile(r"/config/?|/gradio_api/(queue/data|call/(v2/)?[\w.-]+/[\w-]+|(run|api)/[\w.-]+/?)")

NOT_FOUND = "Not found: this app does not serve that."
TOO_LARGE = "The request is too large ({} bytes; this app takes at most {} bytes here)."
NEEDS_LENGTH = "An upload must say its size (Content-Length)."
TOO_MANY_FILES = "At most {} files per upload."
UPLOAD_BUDGET = "Upload budget used up: at most {} MB per visitor per hour. Try again later."
TOO_MANY_SESSIONS = "Too many new sessions from your address: at most {} per {} minutes. Try again later."
NOT_YOURS = "Files must be uploaded first: this app opens only files you uploaded, its examples and its own answers."
URL_FILE = "Links (URLs) are not fetched: this app serves only its own files."
STALE_DRAWING = "An older drawing than the one already waiting: skipped (the newest is drawn)."
MAX_MESSAGE = 300  # characters of any error message a visitor is sent


def _env_int(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, default)))
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    """The bounds, per request and per visitor (environment overrides in brackets)."""

    event_body: int = 512 * KIB  # one event's JSON: 500 teach drawings' file references fit
    canvas_body: int = 128 * KIB  # the live canvas's event: its payload is at most ~87 K characters
    small_body: int = 4 * KIB  # cancel / reset
    files_per_upload: int = 20  # [CNNDEMO_FILES_PER_UPLOAD]
    upload_file_bytes: int = MAX_UPLOAD_BYTES  # Gradio's max_file_size checks each file too
    upload_mb_per_hour: int = 200  # [CNNDEMO_UPLOAD_MB_PER_HOUR]
    sessions_per_window: int = 300  # [CNNDEMO_SESSIONS_PER_VISITOR] new sessions per visitor per window
    session_window_s: int = 600
    owned_paths: int = 5000  # files remembered per visitor (its uploads and the answers it was given)
    owned_ttl_s: int = 3600  # as long as Gradio's cache keeps them
    visitors: int = 10_000  # visitors remembered at once (the oldest are forgotten first)

    @property
    def upload_body(self) -> int:
        """The largest upload request: every file at its limit, plus the multipart framing."""
        return self.files_per_upload * self.upload_file_bytes + 64 * KIB

    @classmethod
    def from_env(cls) -> "Limits":
        return cls(files_per_upload=_env_int("CNNDEMO_FILES_PER_UPLOAD", cls.files_per_upload),
                   upload_mb_per_hour=_env_int("CNNDEMO_UPLOAD_MB_PER_HOUR", cls.upload_mb_per_hour),
                   sessions_per_window=_env_int("CNNDEMO_SESSIONS_PER_VISITOR", cls.sessions_per_window))


@dataclass(frozen=True)
class AppFacts:
    """What the guard knows about the app: the canvas events' ids, where its own files live."""

    canvas_fns: frozenset[int] = frozenset()  # fn_index of the live canvas event(s): one queued per session
    own_folders: tuple[str, ...] = field(default_factory=tuple)  # files any visitor may name (the examples)


def allowed(method: str, path: str) -> bool:
    """Whether ``method path`` is a route the app uses (``HEAD`` counts as ``GET``)."""
    method = "GET" if method == "HEAD" else method
    return any(m == method and rx.fullmatch(path) for m, rx in _COMPILED)


def is_url_file(path: str) -> bool:
    """``/gradio_api/file=<url>``: Gradio would fetch the URL and stream it back."""
    from urllib.parse import unquote

    target = unquote(path.split("file=", 1)[-1]).strip().lower()
    return target.startswith(("http:", "https:", "//", "ftp:", "data:")) or "://" in target


def body_limit(method: str, path: str, limits: Limits) -> int:
    """The most bytes a request to ``path`` may carry (the canvas's own bound is checked once its event is known)."""
    if path == UPLOAD_ROUTE:
        return limits.upload_body
    if EVENT_ROUTES.fullmatch(path):
        return limits.event_body
    return limits.small_body if method == "POST" else 0


def short(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line of at most ``limit`` characters."""
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
