"""The live drawing canvas of issue #8 ("Predictions that follow the pen"), as a Gradio 6 ``gr.HTML``.

:func:`DrawingCanvas` builds the component: a white, rounded drawing surface (mouse, pen and touch
through pointer events, ``touch-action: none``, a devicePixelRatio-sized backing store) with real
buttons for pen, eraser, undo and clear (keyboard: Ctrl/Cmd+Z, P, E, Delete). While the pen moves
the page sends the drawing as a small alpha bitmap (see :mod:`cnndemo.data.canvas` for the
format) at most every ``interval_ms`` and once at pen-up, by setting the component's value, which
fires its ``change`` event.

:func:`on_draw` wires a handler to it with always-last semantics, in three layers:

* the page never sends while a payload is unanswered: the handler's answer echoes the payload's
  ``seq`` into the component's ``ack`` prop, and only then does the page send its newest drawing;
* the event has ``trigger_mode="always_last"`` (Gradio defers a trigger that comes while the
  event runs and re-reads the *current* value when it runs it);
* the app keeps each session's newest ``seq`` (:class:`cnndemo.app.canvas_seq.NewestSeq`, one lock): an older
  drawing is skipped, and an answer is dropped if a newer drawing came while it was computed (two events of one
  session can run at once), so the newest answered drawing never goes backwards.

The JS and CSS live in ``static/canvas.js`` and ``static/canvas.css`` (read at import).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.blocks import Block

from cnndemo.app.canvas_seq import NewestSeq
from cnndemo.data.canvas import SIDE, decode_canvas, payload_seq

STATIC = Path(__file__).resolve().parent / "static"
CANVAS_JS = (STATIC / "canvas.js").read_text(encoding="utf-8")
CANVAS_CSS = (STATIC / "canvas.css").read_text(encoding="utf-8")
BRUSH = 0.06  # brush width / canvas side: after framing, close to an MNIST pen stroke
INTERVAL_MS = 90  # at most one payload per this many ms while the pen moves

_ICONS = {
    "pen": '<path d="M4 20l4-1 11-11-3-3L5 16l-1 4z"/><path d="M14 6l3 3"/>',
    "eraser": '<path d="M8 20h12"/><path d="M4.5 14.5l9-9a2 2 0 0 1 2.8 0l2.2 2.2a2 2 0 0 1 0 2.8L11 18H7.5z"/>',
    "undo": '<path d="M9 14L4 9l5-5"/><path d="M4 9h10.5a5.5 5.5 0 0 1 0 11H11"/>',
    "clear": '<path d="M4 7h16"/><path d="M10 11v6M14 11v6"/><path d="M6 7l1 13h10l1-13"/><path d="M9 7V4h6v3"/>',
}
_BUTTONS = [("pen", "Pen", "Pen (P)"), ("eraser", "Eraser", "Eraser (E)"), ("undo", "Undo", "Undo (Ctrl+Z)"),
            ("clear", "Clear", "Clear the canvas (Delete)")]


def _button(action: str, text: str, title: str) -> str:
    icon = (f'<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" '
            f'stroke-linejoin="round" aria-hidden="true">{_ICONS[action]}</svg>')
    pressed = ' aria-pressed="true"' if action == "pen" else ' aria-pressed="false"' if action == "eraser" else ""
    return (f'<button type="button" class="cd-btn" data-action="{action}" aria-label="{title}" title="{title}"'
            f'{pressed}>{icon}<span class="cd-label">{text}</span></button>')


def _template(hint: str) -> str:
    """The component's HTML (no ``${...}`` or ``{{...}}``: it never changes, so updates never touch the DOM)."""
    hint = hint.replace("&", "&amp;").replace("<", "&lt;").replace("$", "&#36;").replace("{", "&#123;")
    buttons = "".join(_button(*b) for b in _BUTTONS)
    return (
        '<div class="cd-wrap">'
        '<div class="cd-surface cd-empty" role="application" tabindex="0" '
        'aria-label="Drawing area: draw with the mouse, a pen or a finger. Ctrl+Z undoes, Delete clears.">'
        '<div class="cd-guide"></div>'
        f'<div class="cd-hint">{hint}</div>'
        '<canvas class="cd-ink"></canvas>'
        '<span class="cd-status" role="status" aria-live="polite"></span>'
        "</div>"
        f'<div class="cd-toolbar" role="toolbar" aria-label="Canvas tools">{buttons}</div>'
        "</div>"
    )


def DrawingCanvas(*, elem_id: str = "canvas", hint: str = "Draw a digit here", side: int = SIDE,
                  brush: float = BRUSH, interval_ms: int = INTERVAL_MS, **kwargs: Any) -> gr.HTML:  # noqa: N802
    """The live canvas: a ``gr.HTML`` whose value is the latest payload (a JSON string, "" at first).

    ``side``: the bitmap sent to the server (``side`` x ``side``); ``brush``: pen width as a fraction
    of the canvas side (the eraser is 2.5x); ``interval_ms``: the least time between two payloads
    while drawing. Other keyword arguments go to ``gr.HTML`` (``elem_classes``, ``visible``, ...).
    Use :func:`on_draw` to attach a handler.
    """
    config = json.dumps({"side": int(side), "brush": float(brush), "interval_ms": int(interval_ms)})
    return gr.HTML(
        value="",
        html_template=_template(hint),
        css_template=CANVAS_CSS,
        js_on_load=CANVAS_JS.replace("__CANVAS_CONFIG__", config),
        elem_id=elem_id,
        ack=0,
        answer="",
        **kwargs,
    )


def on_draw(canvas: gr.HTML, fn: Callable[..., Any], outputs: Sequence[gr.components.Component], *,
            inputs: Sequence[gr.components.Component] = (), concurrency_limit: int | None | str = "default",
            concurrency_id: str | None = None) -> Any:
    """Call ``fn(request, alpha, *inputs)`` for every drawing the canvas sends; its result goes to ``outputs``.

    ``alpha`` is :func:`cnndemo.data.canvas.decode_canvas`'s array (uint8 ``side`` x ``side``, ink
    = 255) or None for a blank canvas; ``fn`` returns one value per output (a tuple for several) or a
    ``{component: value}`` dict of some of ``outputs`` (it may set the canvas's ``answer``, a line shown
    on the canvas, with ``{canvas: gr.update(answer=...)}``). A malformed payload is refused with a clear
    error before anything is decoded and leaves the outputs as they are. This is the canvas's only event
    (private, named ``draw`` so the fault test can reach it over HTTP). Returns it.
    """
    last = gr.State(0)  # kept (the event's inputs stay as they were); a call without a session falls back on it
    seqs = NewestSeq()
    n = len(outputs)

    def handle(payload: str, last_seq: int, request: gr.Request, *extra: Any):
        try:
            seq = payload_seq(payload)
            alpha = decode_canvas(payload)
        except ValueError as exc:  # only a tampered or broken client sends one
            raise gr.Error(f"The drawing could not be read: {exc}") from None
        session = getattr(request, "session_hash", None)
        if seq:  # older than what this session has answered or is answering: skip it
            newest = seqs.claim(session, seq) if session else (last_seq if seq <= (last_seq or 0) else None)
            if newest is not None:
                return {canvas: gr.update(ack=newest)}
        result = fn(request, alpha, *extra)
        if seq and session and not seqs.still_newest(session, seq):  # a newer drawing came meanwhile: its answer
            return {canvas: gr.update(ack=seqs.newest(session))}    # is the one to show, not this one
        if not (isinstance(result, dict) and result and all(isinstance(k, Block) for k in result)):
            result = dict(zip(outputs, result if n > 1 else [result]))  # a Label's value is a dict too
        props = {k: v for k, v in (result.pop(canvas, None) or {}).items() if k != "__type__"}
        return {**result, canvas: gr.update(**props, ack=seq), last: seq}

    return canvas.change(handle, inputs=[canvas, last, *inputs], outputs=[*outputs, canvas, last],
                         trigger_mode="always_last", show_progress="hidden", queue=True,
                         concurrency_limit=concurrency_limit, concurrency_id=concurrency_id,
                         api_name="draw", api_visibility="private")
