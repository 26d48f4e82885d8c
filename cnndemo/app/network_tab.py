"""One network tab (VGG, GoogLeNet, ResNet): the prediction, the feature maps, the tab's own view (Inception
branches or residual blocks), the explanation, the first convolution's kernels ("filters that learn"), the
Inception tab's bottleneck calculator (:mod:`cnndemo.app.lab_panels`) and the torchinfo summary.

The tab's refresh handler is a plain function over :func:`cnndemo.app.views.network_view` (one analysis per
input) that returns ``{component: value}``, so no output count is written down anywhere. Hidden tabs compute
nothing; selecting a tab renders it from the last input.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gradio as gr

from cnndemo import catalog
from cnndemo.app import lab_panels, views
from cnndemo.app.outputs import Picture
from cnndemo.app.prose import Prose
from cnndemo.app.sessions import with_session
from cnndemo.app.setting_inputs import Choice, RadioChoice, setting
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.canvas import canvas_ink
from cnndemo.data.decode import InputError
from cnndemo.data.framing import Prepared

BRANCH_SLOTS = 4  # an Inception module has four branches


@dataclass
class InputPanel:
    """The shared input components every tab reads."""

    canvas: Any  # the live canvas (gr.HTML): its value is the latest payload, a JSON string
    upload: Any
    source: Any  # gr.State: "canvas" or "upload"
    dataset: Any
    active: Any  # gr.State: the visible tab's id (the session's models: cnndemo.app.sessions, not an input)


def current_source(canvas: Any, upload: Any, source: str) -> Any:
    """The input the user means: the upload when ``source == "upload"``, else the drawing (the canvas payload
    decoded to black ink on transparent RGBA, None when blank; other canvas values pass through).
    A malformed payload counts as blank here: the canvas's own event is the one that refuses it, with a message."""
    if source == "upload" and upload:
        return upload
    if not isinstance(canvas, str):
        return canvas
    try:
        return canvas_ink(canvas)
    except InputError:
        return None


@dataclass
class NetworkTab:
    """A built tab: its components and the event (inputs, outputs, handler) that refreshes it."""

    tab: catalog.Tab
    arch: Any
    label: Any
    note: Any
    fmap: Any
    caption: Any
    layer: Any
    module: Any
    branch_imgs: list
    branch_table: Any
    res_img: Any
    res_table: Any
    inputs: list
    outputs: list
    handler: Any
    canvas: Any = None  # the live canvas: the tab's own event also updates the answer shown on it
    filters: Any = None  # the first convolution's kernels ("filters that learn"): follow the model and the dataset

    @property
    def controls(self) -> list:
        """The tab's own inputs, in :func:`refresh_values` order: model, layer, module."""
        return [self.arch, self.layer, self.module]

    @property
    def event(self) -> dict:
        """Keyword arguments for ``.then(**event)`` / ``gr.on(..., **event)``."""
        outputs = [*self.outputs, self.canvas] if self.canvas is not None else self.outputs
        return {"fn": self.handler, "inputs": self.inputs, "outputs": outputs, "show_progress": "hidden",
                "api_visibility": "private", "trigger_mode": "always_last", "concurrency_id": f"tab-{self.tab.id}"}


def tab_values(zoo: ModelZoo, kind: str, value: Any, dataset: str, arch: str, layer: str | None,
               module: str | None, session, prepared: Prepared | None = None) -> dict[str, Any]:
    """What a tab of ``kind`` shows for the current input, by name (one analysis): ``label``, ``note``, ``fmap``,
    ``caption``, then ``branches`` (4 images) + ``branch_table``, or ``res_img`` + ``res_table``.
    ``prepared``: the input already framed (then ``value`` is not read). Input and model problems leave the
    views empty (the input panel and the note say why)."""
    out: dict[str, Any] = {"note": views.model_note(zoo, arch, dataset, session), "label": None, "fmap": None,
                           "caption": ""}
    if kind == "inception":
        out.update(branches=[None] * BRANCH_SLOTS, branch_table="")
    elif kind == "residual":
        out.update(res_img=None, res_table="")
    try:
        view = views.network_view(zoo, value, arch, dataset, layer, module, kind, session, prepared=prepared)
    except (InputError, LookupError):
        return out
    out.update(label=view.top, fmap=view.grid, caption=view.caption)
    if kind == "inception":
        out.update(branches=view.branch_grids, branch_table=view.branch_table)
    elif kind == "residual":
        out.update(res_img=view.residual_figure, res_table=view.residual_table)
    return out


def answer_text(arch: str, top: dict[str, float] | None) -> str:
    """The answer in a few words for the canvas's corner, e.g. ``"VGG-11: 7 · 98%"`` ("" without one): on a phone
    the tab's prediction is a long scroll away from the canvas."""
    if not top:
        return ""
    best = next(iter(top))
    return f"{catalog.arch(arch).label}: {best} · {top[best]:.0%}"


def refresh_values(zoo: ModelZoo, t: NetworkTab, value: Any, dataset: str, arch: str, layer: str | None,
                   module: str | None, session, prepared: Prepared | None = None) -> dict:
    """``{component: value}`` for tab ``t`` from :func:`tab_values`."""
    named = tab_values(zoo, t.tab.kind, value, dataset, arch, layer, module, session, prepared)
    out = {t.label: named["label"], t.note: named["note"], t.fmap: named["fmap"], t.caption: named["caption"]}
    if t.tab.kind == "inception":
        out.update(zip(t.branch_imgs, named["branches"]))
        out[t.branch_table] = named["branch_table"]
    elif t.tab.kind == "residual":
        out.update({t.res_img: named["res_img"], t.res_table: named["res_table"]})
    return out


def arch_panels(zoo: ModelZoo, arch: str, dataset: str, session) -> tuple:
    """Updates when a tab's model changes: layer choices, module choices, explanation, architecture, filters."""
    layers = views.layer_choices(zoo, arch, dataset)
    modules = views.module_choices(zoo, arch, dataset)
    return (
        gr.update(choices=layers, value=layers[0][1] if layers else None),
        gr.update(choices=modules, value=modules[0][1] if modules else None),
        (views.explanation(zoo, arch, dataset) if layers
         else f"⚠️ No checkpoint of {catalog.arch(arch).title} is loaded."),
        views.architecture(zoo, arch, dataset, session),
        lab_panels.filters_image(zoo, arch, dataset, session),
    )


def build_network_tab(zoo: ModelZoo, tab: catalog.Tab, panel: InputPanel) -> NetworkTab:
    """Create one network tab (inside ``gr.Tabs``) and wire its own events; returns it for the input events."""
    archs = tab.archs
    choices = [(catalog.arch(a).title, a) for a in archs]
    first = archs[0]
    with gr.Tab(tab.title, id=tab.id) as tab_block:
        # A tab with one model needs no radio: a State carries its name (a component fewer for the page to load)
        arch = (setting(RadioChoice, "model", choices, value=first, label="Model",
                         info="The course model is the small network of seed 002 (Liu Er's PyTorch course).")
                if len(choices) > 1 else gr.State(first))
        note = Prose(views.model_note(zoo, first, views.DEFAULT_DATASET), elem_classes="model-note")
        with gr.Row(equal_height=False):
            # min_width: on a phone the explanation wraps below the prediction instead of squeezing beside it
            label = gr.Label(num_top_classes=5, label="Prediction (top 5)", scale=1, min_width=300,
                           elem_id=f"label-{tab.id}")
            explain_md = Prose(views.explanation(zoo, first), elem_classes="explain", container=True, scale=1,
                               min_width=300)
        layers = views.layer_choices(zoo, first)
        modules = views.module_choices(zoo, first)
        with gr.Accordion("Feature maps", open=True):
            layer = setting(Choice, "layer", layers, value=layers[0][1] if layers else None, label="Layer",
                                info="Each square is one channel's activation map (brighter = stronger), "
                                     "strongest first.")
            caption = Prose()
            fmap = Picture(label="Channels", format="png", type="pil", interactive=False, show_label=False,
                           elem_classes="pixelated", elem_id=f"fmap-{tab.id}", buttons=["download", "fullscreen"])
        # Only an Inception tab has modules to pick; the others pass None in its place (a State, not a hidden menu)
        module = (setting(Choice, "module", modules, value=modules[0][1] if modules else None,
                          label="Inception module",
                              render=False, elem_id=f"module-{tab.id}")
                  if tab.kind == "inception" else gr.State(None))
        branch_imgs, branch_table, res_img, res_table = [], None, None, None
        if tab.kind == "inception":
            with gr.Accordion("Inception branches: four paths side by side", open=True):
                Prose("Pick a module: each branch's channels for the current input. The branch channel counts "
                      "add up to the module's output channels; the share says how much of the module's "
                      "activation energy (sum of squares) each branch carries.")
                module.render()
                with gr.Row():
                    # show_label=False: the grid's own title names the branch, its channels and share (Gradio's
                    # label badge covered its first row of channels); the table below says the same in text. The
                    # label, for screen readers, is fixed: changing it on every update costs Gradio a new component.
                    branch_imgs = [Picture(format="png", type="pil", interactive=False,
                                           label=f"Inception branch {i + 1} of {BRANCH_SLOTS}",
                                           show_label=False, elem_classes="pixelated", buttons=["fullscreen"])
                                   for i in range(BRANCH_SLOTS)]
                branch_table = Prose()
            lab_panels.build_bottleneck_panel(tab, arch, module)
        if tab.kind == "residual":
            with gr.Accordion("Residual blocks: x, F(x) and the output", open=True):
                Prose("For every block: its input **x**, the residual branch **F(x)** (red = positive, "
                      "blue = negative), and the output **relu(F(x) + shortcut(x))**, each averaged over channels. "
                      "A small ‖F(x)‖/‖x‖ means the block makes a small correction to what passes through it.")
                with gr.Row(equal_height=False):
                    res_img = Picture(format="png", type="pil", interactive=False, show_label=False, scale=3,
                                      elem_classes="pixelated", buttons=["download", "fullscreen"])
                    res_table = Prose()
        filters_acc, filters = lab_panels.build_filters_panel(tab)
        with gr.Accordion("Architecture (torchinfo, 1 x 1 x 28 x 28 input)", open=False) as arch_acc:
            # Filled when opened (a callable value would run torchinfo while the app starts); cached per model.
            # Hidden until then: opening shows it (so no separate event reveals it, see cnndemo.app.deferred).
            arch_code = gr.Code("", language=None, show_label=False, lines=12, max_lines=40, visible=False)

    outputs = [c for c in (label, note, fmap, caption, *branch_imgs, branch_table, res_img, res_table) if c is not None]
    t = NetworkTab(tab, arch, label, note, fmap, caption, layer, module, branch_imgs, branch_table, res_img, res_table,
                   [panel.canvas, panel.upload, panel.source, panel.dataset, arch, layer, module, panel.active],
                   outputs, None, panel.canvas, filters)
    kernels = functools.partial(lab_panels.filters_image, zoo)

    def refresh(canvas, upload, source, dataset, arch_name, layer_name, module_name, session, active):
        if active != tab.id:
            return gr.skip()  # hidden tabs compute nothing (an empty dict would fail Gradio's output count check)
        value = current_source(canvas, upload, source)
        out = refresh_values(zoo, t, value, dataset, arch_name, layer_name, module_name, session)
        drawing = not (source == "upload" and upload)
        return {**out, panel.canvas: gr.update(answer=answer_text(arch_name, out[t.label]) if drawing else "")}

    def selected(canvas, upload, source, dataset, arch_name, layer_name, module_name, session, active):
        """The tab is selected: it shows the current input, and the filters and summary of the model in use (the
        dataset may have changed while it was hidden; a fine-tuned copy's trainable count differs)."""
        if active != tab.id:  # another tab was selected since (Gradio also selects the first tab once it loads)
            return gr.skip()
        out = refresh(canvas, upload, source, dataset, arch_name, layer_name, module_name, session, active)
        return {**out, filters: kernels(arch_name, dataset, session),
                arch_code: views.architecture(zoo, arch_name, dataset, session)}

    def model_changed(canvas, upload, source, dataset, arch_name, _layer, _module, session, active):
        """Another model: its layers, modules, explanation, summary and filters, and the tab drawn again with its first
        layer and module, in one event."""
        layer_update, module_update, *more = arch_panels(zoo, arch_name, dataset, session)
        out = {} if active != tab.id else refresh(canvas, upload, source, dataset, arch_name, layer_update["value"],
                                                    module_update["value"], session, active)
        return {**out, layer: layer_update, module: module_update,
                **dict(zip((explain_md, arch_code, filters), more))}

    def inside(arch_name, dataset, session):
        """Either accordion opened: the filters and the summary (the summary is hidden until then)."""
        return kernels(arch_name, dataset, session), gr.update(value=views.architecture(zoo, arch_name, dataset,
                                                                                         session), visible=True)

    t.handler = with_session(refresh)
    selected, model_changed, inside = with_session(selected), with_session(model_changed), with_session(inside)
    # As few events as will do: the page's browser code walks every event for every component while it loads
    # (61 events -> 38 made the page load ~40 ms sooner). The filters follow the model (below), the dataset
    # (cnndemo.app.input_panel) and the tab being selected, in those events.
    # The visitor's choices only (.input): a new model sets both menus in its own event, below.
    gr.on([layer.input, *([module.input] if tab.kind == "inception" else [])], **t.event)  # dataset: input_panel
    # The visible tab is set at once (unqueued, like the Why? tab's), so a quick switch to another tab cannot be
    # overtaken by this tab's queued refresh.
    tab_block.select(lambda: tab.id, None, panel.active, queue=False, api_visibility="private").then(
        **{**t.event, "fn": selected, "outputs": [*t.event["outputs"], filters, arch_code]})
    gr.on([filters_acc.expand, arch_acc.expand], inside, [arch, panel.dataset], [filters, arch_code],
          api_visibility="private", show_progress="hidden")
    if len(choices) > 1:
        arch.change(**{**t.event, "fn": model_changed,
                       "outputs": [*t.event["outputs"], layer, module, explain_md, arch_code, filters]})
    return t
