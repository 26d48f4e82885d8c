"""The input panel's events: one event per input update, for the live canvas, an upload and the dataset switch.

Each update runs one handler that frames the input once (:func:`cnndemo.data.framing.prepare`), shows what the
network sees, and renders the *visible* network tab from that one framed input (one analysis,
:func:`cnndemo.app.views.network_view`): the prediction, the feature maps, the Inception branches or the residual
blocks, returned together as one ``{component: value}`` dict. Hidden tabs compute nothing; selecting one renders
it from the last input (:mod:`cnndemo.app.network_tab`). The canvas sends while the pen moves
(:mod:`cnndemo.app.canvas`); ``source`` remembers whether the drawing or the upload is the current input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from PIL import Image

from cnndemo import catalog
from cnndemo.app.canvas import on_draw
from cnndemo.app.insight_tab import next_tick
from cnndemo.app.lab_panels import filters_image
from cnndemo.app.network_tab import InputPanel, NetworkTab, answer_text, current_source, refresh_values
from cnndemo.app.sessions import with_session
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.canvas import ink_image
from cnndemo.data.decode import BlankInput, InputError
from cnndemo.data.framing import Prepared, prepare
from cnndemo.inspection.render import input_image

BLANK_HINT = "Draw a digit on the canvas, upload a picture, or click an example below."


def show_input(value: Any, source: str, dataset: str) -> tuple[Prepared | None, Image.Image | None, str]:
    """Frame ``value`` once: (the framed input or None, what the network sees, a note for the input panel).

    A blank canvas is not a mistake (the hint); upload problems become a warning toast and a note."""
    if value is None and source != "upload":
        return None, None, BLANK_HINT
    try:
        prepared = prepare(value, dataset)
    except BlankInput as exc:
        return None, None, f"⚠️ {exc}" if source == "upload" else BLANK_HINT
    except InputError as exc:
        if source == "upload":
            gr.Warning(str(exc))
        return None, None, f"⚠️ {exc}"
    # A drawing is always ink on a transparent canvas: notes on background and transparency are for uploads.
    notes = "; ".join(n for n in prepared.notes if source == "upload" or not ("background" in n or "transparen" in n))
    text = f"28 x 28, framed the {catalog.dataset(dataset).short} way"
    return prepared, input_image(prepared.tensor), text + (f" ({notes})" if notes else "") + "."


@dataclass
class InputViews:
    """Where the input panel shows the framed input, and its examples."""

    sees: Any  # gr.Image: the 28 x 28 input, enlarged
    note: Any  # Prose
    shelves: dict[str, Any] = field(default_factory=dict)  # dataset name -> its examples' gr.Dataset (one shown)


def panel_values(zoo: ModelZoo, tabs: Sequence[NetworkTab], shown: InputViews, value: Any, source: str, dataset: str,
                 active: str, session, controls: Sequence[Any]) -> dict:
    """``{component: value}`` for the input panel and the visible tab, from one framing and one analysis.

    ``controls``: every tab's (model, layer, module), in ``tabs`` order (see :attr:`NetworkTab.controls`)."""
    prepared, sees, note = show_input(value, source, dataset)
    out = {shown.sees: sees, shown.note: note}
    for i, t in enumerate(tabs):
        if t.tab.id == active:
            arch, layer, module = controls[3 * i: 3 * i + 3]
            out.update(refresh_values(zoo, t, None, dataset, arch, layer, module, session, prepared))
    return out


def switched_values(zoo: ModelZoo, tabs: Sequence[NetworkTab], shown: InputViews, dataset: str, active: str,
                    session, controls: Sequence[Any]) -> dict:
    """What else a dataset switch changes: the examples shown, and the visible tab's first-layer filters (each
    dataset has its own checkpoints; a hidden tab's follow when it is selected)."""
    out: dict = {shelf: gr.update(visible=name == dataset) for name, shelf in shown.shelves.items()}
    for i, t in enumerate(tabs):
        if t.tab.id == active and t.filters is not None:
            out[t.filters] = filters_image(zoo, controls[3 * i], dataset, session)
    return out


def answer_line(tabs: Sequence[NetworkTab], out: dict, active: str, controls: Sequence[Any]) -> str:
    """The visible tab's answer for the canvas's corner (:func:`~cnndemo.app.network_tab.answer_text`)."""
    for i, t in enumerate(tabs):
        if t.tab.id == active:
            return answer_text(controls[3 * i], out.get(t.label))
    return ""


def wire_inputs(zoo: ModelZoo, panel: InputPanel, tabs: Sequence[NetworkTab], shown: InputViews,
                input_tabs: Any, ticks: dict[str, Any]) -> None:
    """Attach the canvas, upload and dataset events (one each, each the only event of its input).

    ``ticks``: hidden counters that another tab (Why?) follows, ``"input"`` and ``"dataset"``: each event sets its
    own to a new value (:func:`~cnndemo.app.insight_tab.next_tick`) among its outputs, so the follower's events
    start when this one is done, without another event on the page."""
    controls = [c for t in tabs for c in t.controls]
    tab_outputs = [c for t in tabs for c in t.outputs]
    common = [panel.dataset, panel.active, *controls]  # the session's models: cnndemo.app.sessions (each use counts)
    outputs = [panel.source, shown.sees, shown.note, *tab_outputs]
    new_input, new_dataset = ticks["input"], ticks["dataset"]

    @with_session
    def on_canvas(alpha, dataset, active, session, *ctl):
        value = None if alpha is None else ink_image(alpha)
        out = panel_values(zoo, tabs, shown, value, "canvas", dataset, active, session, ctl)
        return {panel.source: "canvas", panel.canvas: gr.update(answer=answer_line(tabs, out, active, ctl)),
                new_input: next_tick(), **out}

    @with_session
    def on_upload(upload, canvas, dataset, active, session, *ctl):
        source = "upload" if upload else "canvas"
        value = current_source(canvas, upload, source)
        out = panel_values(zoo, tabs, shown, value, source, dataset, active, session, ctl)
        answer = "" if upload else answer_line(tabs, out, active, ctl)
        return {panel.source: source, input_tabs: gr.Tabs(selected="upload") if upload else gr.skip(),
                panel.canvas: gr.update(answer=answer), new_input: next_tick(), **out}

    @with_session
    def on_dataset(canvas, upload, source, dataset, active, session, *ctl):
        value = current_source(canvas, upload, source)
        out = panel_values(zoo, tabs, shown, value, source, dataset, active, session, ctl)
        answer = "" if source == "upload" and upload else answer_line(tabs, out, active, ctl)
        return {panel.canvas: gr.update(answer=answer), new_dataset: next_tick(), **out,
                **switched_values(zoo, tabs, shown, dataset, active, session, ctl)}

    on_draw(panel.canvas, on_canvas, [*outputs, new_input], inputs=common)
    events = {"show_progress": "hidden", "api_visibility": "private", "trigger_mode": "always_last"}
    panel.upload.change(on_upload, [panel.upload, panel.canvas, *common],
                        [*outputs, new_input, input_tabs, panel.canvas], **events)
    switched = [*shown.shelves.values(), *(t.filters for t in tabs if t.filters is not None)]
    panel.dataset.change(on_dataset, [panel.canvas, panel.upload, panel.source, *common],
                         [*outputs[1:], new_dataset, panel.canvas, *switched], **events)
