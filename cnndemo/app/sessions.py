"""Each browser session's models for the Gradio handlers: the app's :class:`SessionRegistry`, not a ``gr.State``.

A handler that uses the session's models is wrapped with :func:`with_session`: it keeps its ``session``
parameter, which now receives this session's :class:`~cnndemo.finetune.store.SessionModels` from :data:`SESSIONS`
(by the request's session hash) instead of an input, and every such call keeps the session alive. Gradio's own
per-session state may be evicted by a flood of new sessions; the models are not there. :func:`watch` ends a
session's store soon after its page closes (``demo.unload``) and sweeps expired ones in the background.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable
from typing import Any

import gradio as gr

from cnndemo.finetune.store import SESSION_TTL_S, SessionRegistry

SESSIONS = SessionRegistry(ttl_s=float(os.environ.get("CNNDEMO_SESSION_TTL_S", SESSION_TTL_S)),
                           grace_s=float(os.environ.get("CNNDEMO_SESSION_GRACE_S", 300)),
                           max_holding=int(os.environ.get("CNNDEMO_SESSIONS_WITH_MODELS", 64)))
SWEEP_EVERY_S = min(30.0, max(0.5, SESSIONS.grace_s / 2))  # often enough for the grace time to hold
FULL = ("The Space keeps the models of {} sessions at once and is full: try again in a while "
        "(a session's models go an hour after its last use).")


def session_id(request: gr.Request | None) -> str:
    """The browser session's id (``"local"`` when called without a request, as in tests)."""
    return getattr(request, "session_hash", None) or "local"


def store_for(request: gr.Request | None):
    """This session's store from :data:`SESSIONS` (created the first time); the session stays alive."""
    return SESSIONS.get(session_id(request))


def check_room(request: gr.Request | None) -> None:
    """``gr.Error`` when this session may not keep a new model because the registry is full."""
    if not SESSIONS.room_for(session_id(request)):
        raise gr.Error(FULL.format(SESSIONS.max_holding))


def with_session(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` for Gradio, its parameter ``session`` filled with this session's store (not an input).

    The wrapper takes Gradio's ``request`` first, then ``fn``'s other parameters in order; generators stay
    generators (Gradio streams them)."""
    params = list(inspect.signature(fn).parameters.values())
    at = [p.name for p in params].index("session")
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
    signature = inspect.Signature([request, *params[:at], *params[at + 1:]])

    def arguments(req: gr.Request, args: tuple) -> list:
        args = list(args)
        args.insert(at, store_for(req))
        return args

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(request: gr.Request, *args: Any, **kwargs: Any):
            yield from fn(*arguments(request, args), **kwargs)
    else:
        @functools.wraps(fn)
        def wrapper(request: gr.Request, *args: Any, **kwargs: Any):
            return fn(*arguments(request, args), **kwargs)

    wrapper.__signature__ = signature  # what Gradio reads: the request first, no ``session`` input
    wrapper.__annotations__ = {**_resolved(fn), "request": gr.Request}
    del wrapper.__wrapped__  # typing.get_type_hints and inspect would otherwise read ``fn``'s
    return wrapper


def _resolved(fn: Callable[..., Any]) -> dict[str, Any]:
    """``fn``'s annotations as objects (each one that can be resolved), less ``session``'s."""
    out = {}
    for name, hint in getattr(fn, "__annotations__", {}).items():
        if isinstance(hint, str):
            try:
                hint = eval(hint, getattr(fn, "__globals__", {}))  # noqa: S307 - the app's own annotations
            except Exception:  # noqa: BLE001 - a name only imported for type checking: Gradio needs none of those
                continue
        if name != "session":
            out[name] = hint
    return out


def _closed(request: gr.Request) -> None:
    SESSIONS.closed(session_id(request))


def _sweep_forever() -> None:
    event = threading.Event()
    while not event.wait(SWEEP_EVERY_S):
        SESSIONS.sweep()


_sweeper: threading.Thread | None = None


def watch(demo: gr.Blocks) -> None:
    """Inside ``demo``'s ``with``: a closed page's store goes after the grace time; expired ones are swept."""
    global _sweeper
    demo.unload(_closed)
    if _sweeper is None:
        _sweeper = threading.Thread(target=_sweep_forever, name="cnndemo-session-sweep", daemon=True)
        _sweeper.start()
