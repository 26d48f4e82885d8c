"""The public-safety guard: one ASGI middleware in front of Gradio, the rules it enforces, and what it remembers.

* :mod:`.policy`: the routes the app uses, each route's body bound, the per-visitor budgets and the messages;
* :mod:`.ledger`: per visitor, the files it may name (its uploads and answers), its upload bytes and sessions;
* :mod:`.middleware`: :class:`~.middleware.Guard`, installed by :func:`installed` through
  ``demo.launch(app_kwargs={"middleware": [...]})`` (Starlette's public middleware hook, no Gradio internals).

The README's "Hosting" section says what it promises and what it leaves to Hugging Face Spaces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnndemo.app.guard.policy import AppFacts, Limits

CANVAS_EVENT = "draw"  # the live canvas's event (cnndemo.app.canvas.on_draw)
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def facts(demo: Any | None) -> AppFacts:
    """What the guard needs to know of a built app: its canvas events' ids (from its public config)."""
    deps = (getattr(demo, "config", None) or {}).get("dependencies", []) if demo is not None else []
    return AppFacts(canvas_fns=frozenset(d["id"] for d in deps if d.get("api_name") == CANVAS_EVENT),
                    own_folders=(str(EXAMPLES),))


def installed(demo: Any | None = None, limits: Limits | None = None) -> list:
    """``app_kwargs["middleware"]`` entries: the :class:`~.middleware.Guard` for ``demo``."""
    from starlette.middleware import Middleware

    from cnndemo.app.guard.middleware import Guard

    return [Middleware(Guard, facts=facts(demo), limits=limits)]
