"""The "Why?" tab: compare the networks, what mattered, where a unit looks, the test-set mistakes.

A thin Gradio layer over :mod:`cnndemo.app.insight_views`. ``build_insight_tab(zoo, panel)`` (inside the app's
``gr.Tabs``) builds the tab from the shared :class:`~cnndemo.app.network_tab.InputPanel` and returns an
:class:`InsightTab`, whose hidden counters the input events set when they are done (it refreshes on their change). Without a
panel it makes its own upload box and dataset choice (a standalone test app). Its named API endpoints
(``/compare``, ``/saliency``, ``/receptive_field``, ``/misclassified``) are :mod:`cnndemo.app.insight_api`, on the
app's endpoint page.

Live: every input change redraws the comparison; Grad-CAM, integrated gradients, occlusion and the receptive
field wait for pen-up (a live-canvas payload with ``"final": false`` only redraws the comparison). A hidden tab
computes nothing; selecting it renders everything from the last input. Clicking a mistake loads it as the input.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
import inspect
from typing import Any

import gradio as gr

from cnndemo import catalog
from cnndemo.app import insight_views as iv
from cnndemo.app import views
from cnndemo.app.api import ImageFile
from cnndemo.app.deferred import build_when_opened
from cnndemo.app.network_tab import InputPanel, current_source
from cnndemo.app.outputs import Picture, write_once
from cnndemo.app.prose import Prose
from cnndemo.app.sessions import with_session
from cnndemo.app.setting_inputs import Choice, RadioChoice, SettingNumber, setting
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.decode import BlankInput, InputError
from cnndemo.insight.attribution import METHOD_TITLES, METHODS, default_gradcam_layer
from cnndemo.insight.mistakes import load_mistakes
from cnndemo.insight.receptive_field import (
    prepare_fields,
    resolve_layer,
    stacked_3x3,
    unit_at,
)
from cnndemo.insight.render import SCALE, confusion_image
from cnndemo.inspection.analysis import layer_shapes

TAB_ID = "why"
HINT = "Draw something, upload a picture or click an example: this view follows the current input."
LIVE_ERRORS = (InputError, LookupError, ValueError)  # shown as a note in the view, never a stack trace


def _note(exc: Exception, value: Any) -> str:
    """What a live view says instead of a picture: the hint for no input, else the problem."""
    return HINT if value is None or isinstance(exc, BlankInput) else f"⚠️ {exc}"


def panel_input(canvas: Any, upload: Any, source: str) -> Any:
    """The one adapter between the input panel and these views: what :func:`cnndemo.data.framing.prepare` reads."""
    return current_source(canvas, upload, source)


def pen_up(canvas: Any) -> bool:
    """False only while a live-canvas stroke is under way (its JSON payload says ``"final": false``)."""
    if isinstance(canvas, str):
        try:
            return bool(json.loads(canvas).get("final", True))
        except (ValueError, AttributeError):
            return True
    return True


def compare_markdown(info: dict) -> str:
    """The compare JSON as a Markdown table plus one line on agreement."""
    lines = ["| network | says | conf. | params | MACs | ms |", "|---|---|---|---|---|---|"]
    for m in info["models"]:
        lines.append(f"| {catalog.arch(m['arch']).label} | **{m['label']}** | {m['confidence']:.1%} | "
                     f"{m['params']:,} | {m['macs'] / 1e6:.1f} M | {m['ms']:.2f} |")
    n = len(info["models"])
    agree = (f"**All {n} networks agree: {info['labels'][0]}.**" if info["agree"] else
             f"**The networks disagree:** {', '.join(info['labels'])}.")
    return agree + " Parameters and multiply-adds (MACs) from torchinfo; ms: one forward pass, measured now.\n\n" + \
        "\n".join(lines)


def rf_markdown(info: dict) -> str:
    """Receptive-field sides of every layer, and the seed's point about stacked 3x3 convs."""
    s = stacked_3x3(3)
    top, left, bottom, right = info["box"]
    head = (f"**{info['layer']}**, unit ({info['row']}, {info['col']}) of its {info['map_size'][0]} x "
            f"{info['map_size'][1]} map, sees a **{info['rf_size']} x {info['rf_size']}** window of the input "
            f"(rows {top}–{bottom - 1}, columns {left}–{right - 1} after clipping to 28 x 28); neighbouring units "
            f"are {info['stride']} px apart. The blue box is the theoretical field, the heat the effective one "
            f"(how much each input pixel moves the unit). Click the picture to pick another unit.\n\n"
            f"Stacked 3x3 convs: one sees {s[0]}x{s[0]}, two see {s[1]}x{s[1]}, three see {s[2]}x{s[2]}.\n\n"
            "Every layer's field (side, stride): ")
    return head + " · ".join(f"{r['layer']} **{r['rf_size']}** ({r['stride']})" for r in info["table"])


def saliency_caption(info: dict) -> str:
    where = f" at **{info['layer']}**" if info["layer"] else ""
    legend = ("Brighter = the layer's evidence for the class sits there." if info["method"] == "gradcam" else
              "Red pixels support the class, blue ones speak against it.")
    return (f"{METHOD_TITLES[info['method']]}{where}: why **{info['target_label']}** (p = {info['target_probability']:.1%}; "
            f"the network says **{info['predicted_label']}**). {legend}")


def layer_centre(zoo: ModelZoo, arch: str, dataset: str, layer: str | None) -> tuple[int, int]:
    """The middle unit (row, col) of ``layer``'s map ((0, 0) when there is no such model or layer)."""
    try:
        model = zoo.get(arch, dataset)[0]
        h, w = layer_shapes(model)[resolve_layer(model, layer)][-2:]
    except LIVE_ERRORS:
        return 0, 0
    return h // 2, w // 2


def control_updates(zoo: ModelZoo, arch: str, dataset: str) -> tuple:
    """Grad-CAM layer, receptive-field layer and target choices for a network and dataset."""
    choices = views.layer_choices(zoo, arch, dataset)
    targets = [("the predicted class", "")] + [(c, c) for c in catalog.dataset(dataset).classes]
    if not choices:
        return gr.update(choices=[], value=None), gr.update(choices=[], value=None), gr.update(choices=targets, value="")
    model = next(zoo.get(arch, d)[0] for d in (dataset, *catalog.DATASETS) if zoo.has(arch, d))
    return (gr.update(choices=choices, value=default_gradcam_layer(model)),
            gr.update(choices=choices, value=choices[0][1]), gr.update(choices=targets, value=""))


def _standalone_panel() -> InputPanel:
    """An upload box and a dataset choice, for a Blocks that has no input panel of its own."""
    upload = ImageFile(type="filepath", label="Input image", height=200, elem_id="why-input")
    dataset = setting(RadioChoice, "dataset", [(d.title, d.name) for d in catalog.DATASETS.values()],
                      value=views.DEFAULT_DATASET,
                       label="Dataset", elem_id="why-dataset")
    return InputPanel(gr.State(None), upload, gr.State("upload"), dataset, gr.State(TAB_ID))


def saliency(zoo: ModelZoo, value, ds, a, m, t, layer, session):
    try:
        im, info = iv.saliency_view(zoo, value, a, ds, m, t or None, layer if m == "gradcam" else None, session)
    except LIVE_ERRORS as exc:
        return None, _note(exc, value)
    return im, saliency_caption(info)


def receptive(zoo: ModelZoo, value, ds, a, layer, r, c, session):
    try:
        im, info = iv.receptive_field_view(zoo, value, a, ds, layer, r, c, session)
    except LIVE_ERRORS as exc:
        return None, _note(exc, value), gr.skip(), gr.skip()
    return im, rf_markdown(info), info["row"], info["col"]


def compare(zoo: ModelZoo, value, ds, session):
    try:
        return compare_markdown(iv.compare_view(zoo, value, ds, session=session)[1])
    except LIVE_ERRORS as exc:
        return _note(exc, value)


def mistakes(a, ds, p):
    try:
        items, info = iv.misclassified_view(a, ds, p)
    except LIVE_ERRORS as exc:
        return None, [], f"⚠️ {exc}", None
    text = (f"**{catalog.arch(a).title}** (pretrained): {info['test_accuracy']:.2%} of 10,000 test images right, "
            f"**{info['total_misclassified']}** wrong; page {info['page']} of {info['pages']}, most confident first.")
    return confusion_image(load_mistakes(a, ds).confusion, info["classes"]), items, text, (a, ds, info["items"])


def why_values(zoo: ModelZoo, canvas, upload, source, ds, a, m, t, cam, rfl, r, c, session) -> dict[str, Any]:
    """What the tab shows for the current input, by output name: the comparison always; the attribution and the
    receptive field only at pen-up or for an upload (mid-stroke only the cheap comparison)."""
    value = panel_input(canvas, upload, source)
    out = {"compare_md": compare(zoo, value, ds, session)}
    if source == "upload" or pen_up(canvas):
        out.update(zip(("sal_img", "sal_md"), saliency(zoo, value, ds, a, m, t, cam, session)))
        out.update(zip(("rf_img", "rf_md", "row", "col"), receptive(zoo, value, ds, a, rfl, r, c, session)))
    return out


def when_visible(fn):
    """``fn`` behind a first argument, the visible tab's id: it runs only while this tab is visible (a hidden tab
    computes nothing)."""
    if "request" in inspect.signature(fn).parameters:  # cnndemo.app.sessions.with_session: the request comes first
        def run(request: gr.Request, active, *args):
            return fn(request, *args) if active == TAB_ID else gr.skip()
    else:
        def run(active, *args):
            return fn(*args) if active == TAB_ID else gr.skip()
    return run


TICK = "(n) => (n || 0) + 1"  # a browser-only event that bumps a hidden counter (no server round trip)


def _bump(listener: Any, tick: Any) -> None:
    """Attach the browser-only bump of ``tick`` to ``listener`` (``event.then`` or a component's trigger)."""
    listener(None, tick, tick, js=TICK, api_visibility="private", show_progress="hidden")


_TICKS = itertools.count(1)


def next_tick() -> int:
    """A new value for a hidden counter: each one differs from every earlier one, so the counter's change event
    fires in the browser."""
    return next(_TICKS)


@dataclass
class InsightTab:
    """The built tab's hidden counters: ``"input"`` (the input changed) and ``"dataset"`` (the dataset was switched).
    The input events set them (to :func:`next_tick`) in their own outputs, and the tab refreshes on their change."""

    ticks: dict[str, Any]


def build_insight_tab(zoo: ModelZoo, panel: InputPanel | None = None) -> InsightTab:
    """The "Why?" tab (inside ``gr.Tabs``) over ``panel``'s current input, built the first time it is opened
    (:func:`cnndemo.app.deferred.build_when_opened`) from the input of that moment; after that it follows the
    changes of its counters (:class:`InsightTab`). Its endpoints are :mod:`cnndemo.app.insight_api`'s.

    The tab's own events listen to hidden counters, never to the input panel's components: the browser keeps one
    list of events per trigger and a rendered tab's list would replace the page's (the canvas would stop)."""
    prepare_fields(model for model, _meta in zoo.entries.values())  # torch.fx tracing: before any request
    own_panel = panel is None
    with gr.Tab("Why?", id=TAB_ID) as tab:
        panel = _standalone_panel() if own_panel else panel
        ticks = {kind: gr.Number(0, visible=False) for kind in ("input", "dataset", "shown")}
        current = [panel.canvas, panel.upload, panel.source, panel.dataset]
        # One event when the tab is selected: it becomes the visible tab, is built if it is the first time, and
        # refreshes (from the input, which may have changed while it was hidden) otherwise.
        # (Built with the pretrained models: the refresh that selecting it also starts uses the session's.)
        build_when_opened(tab, lambda *values: _contents(zoo, panel, ticks, *values, None), inputs=current,
                          on_select=lambda: {panel.active: TAB_ID, ticks["shown"]: next_tick()})
    if own_panel:  # its own upload box and dataset choice have no other events to follow
        _bump(panel.upload.change, ticks["input"])
        _bump(panel.dataset.change, ticks["dataset"])
    return InsightTab(ticks)


def _contents(zoo: ModelZoo, panel: InputPanel, ticks: dict[str, Any], canvas0: Any, upload0: Any, source0: str,
              ds0: str, session0: Any) -> None:
    """The tab's components, filled from the input of the moment it is opened, and their events."""
    archs = [(a.title, a.name) for a in catalog.ARCHITECTURES.values()]
    a0, ds0 = archs[0][1], ds0 or views.DEFAULT_DATASET
    value0 = panel_input(canvas0, upload0, source0)

    cam0, rf0, tgt0 = control_updates(zoo, a0, ds0)
    r0, c0 = layer_centre(zoo, a0, ds0, rf0["value"])
    sal0 = saliency(zoo, value0, ds0, a0, "gradcam", "", cam0["value"], session0)
    rfv0 = receptive(zoo, value0, ds0, a0, rf0["value"], r0, c0, session0)
    r0, c0 = rfv0[2:] if isinstance(rfv0[2], int) else (r0, c0)  # the unit actually shown (skip: no input yet)
    mis0 = mistakes(a0, ds0, 1)

    Prose("### Why did it say that?\nAll networks side by side, what mattered for the answer, what one unit "
                "can see, and the mistakes each network makes on the 10,000 test images.")
    # interactive=True: Gradio infers it only for components built with the page, not in a gr.render
    arch = setting(Choice, "arch", archs, value=a0, label="Network (attribution, receptive field, mistakes)",
                   elem_id="why-arch",
                       interactive=True)
    with gr.Accordion("Compare all networks", open=True):
        compare_md = Prose(compare(zoo, value0, ds0, session0), elem_id="why-compare")
    with gr.Accordion("What mattered (attribution, with Captum)", open=True):
        with gr.Row():
            method = setting(RadioChoice, "method", [(METHOD_TITLES[m], m) for m in METHODS], value="gradcam",
                             label="Method",
                              interactive=True)
            target = setting(Choice, "target", tgt0["choices"], value="", label="Explain the class", interactive=True)
            cam_layer = setting(Choice, "layer", cam0["choices"], value=cam0["value"], label="Grad-CAM layer",
                                interactive=True)
        with gr.Row(equal_height=False):
            sal_img = Picture(sal0[0], type="pil", format="png", interactive=False, label="What mattered", height=260,
                              elem_classes="pixelated", elem_id="why-saliency", buttons=["download"])
            sal_md = Prose(sal0[1], elem_id="why-saliency-note")
    with gr.Accordion("Where a unit looks (receptive field)", open=True):
        with gr.Row():
            rf_layer = setting(Choice, "layer", rf0["choices"], value=rf0["value"], label="Layer", interactive=True)
            row = setting(SettingNumber, "row", r0, precision=0, label="row", minimum=0, interactive=True)
            col = setting(SettingNumber, "col", c0, precision=0, label="column", minimum=0, interactive=True)
        with gr.Row(equal_height=False):
            rf_img = Picture(rfv0[0], type="pil", format="png", interactive=False, height=260, elem_classes="pixelated",
                             label="Receptive field", elem_id="why-rf")
            rf_md = Prose(rfv0[1], elem_id="why-rf-note")
    with gr.Accordion("The test-set mistakes", open=True):
        with gr.Row():
            page = setting(SettingNumber, "page", 1, precision=0, minimum=1, label="Page", scale=0, min_width=120,
                           interactive=True)
            mis_md = Prose(mis0[2], elem_id="why-mistakes-note")
        with gr.Row(equal_height=False):
            confusion = Picture(mis0[0], type="pil", format="png", interactive=False, label="Confusion matrix",
                                scale=1, elem_id="why-confusion", buttons=["download", "fullscreen"])
            gallery = gr.Gallery(mis0[1], type="pil", format="png", columns=3,
                                 label="Misclassified (click one to use it)", scale=1, min_width=0, height="auto",
                                 object_fit="contain", elem_id="why-gallery", allow_preview=False)
    mis_state = gr.State(mis0[3])

    named = {"compare_md": compare_md, "sal_img": sal_img, "sal_md": sal_md, "rf_img": rf_img, "rf_md": rf_md,
             "row": row, "col": col}

    @with_session
    def refresh(canvas, upload, source, ds, a, m, t, cam, rfl, r, c, session):
        return {named[k]: v for k, v in why_values(zoo, canvas, upload, source, ds, a, m, t, cam, rfl, r, c,
                                                   session).items()}

    @with_session
    def saliency_ui(canvas, upload, source, ds, a, m, t, layer, session):
        return saliency(zoo, panel_input(canvas, upload, source), ds, a, m, t, layer, session)

    @with_session
    def receptive_ui(canvas, upload, source, ds, a, layer, r, c, session):
        return receptive(zoo, panel_input(canvas, upload, source), ds, a, layer, r, c, session)

    @with_session
    def rf_click(canvas, upload, source, ds, a, layer, session, evt: gr.SelectData):
        model = zoo.resolve(a, ds, session)[0]
        name = resolve_layer(model, layer)
        y, x = int(evt.index[1]) // SCALE, int(evt.index[0]) // SCALE
        r, c = unit_at(model, name, y, x, layer_shapes(model)[name][-2:])
        return receptive(zoo, panel_input(canvas, upload, source), ds, a, layer, r, c, session)

    def pick(state, evt: gr.SelectData):
        if not state:
            return gr.skip()
        a, ds, items = state
        # Into Gradio's cache (swept with the rest of it), where the upload would have put it: no file of our own
        return write_once(iv.mistake_image(a, ds, items[evt.index]["rank"]), panel.upload.GRADIO_CACHE, "png")

    base = [panel.canvas, panel.upload, panel.source, panel.dataset]
    controls = [arch, method, target, cam_layer, rf_layer, row, col]
    outputs = [compare_md, sal_img, sal_md, rf_img, rf_md, row, col]
    private = {"api_visibility": "private", "show_progress": "hidden", "trigger_mode": "always_last",
               "concurrency_id": f"tab-{TAB_ID}"}
    ticks["input"].change(when_visible(refresh), [panel.active, *base, *controls], outputs, **private)
    ticks["shown"].change(refresh, [*base, *controls], outputs, **private)  # shown again: the input may have changed
    ticks["shown"].change(mistakes, [arch, panel.dataset, page], [confusion, gallery, mis_md, mis_state], **private)
    gr.on([method.change, target.change, cam_layer.change], when_visible(saliency_ui),
          [panel.active, *base, arch, method, target, cam_layer], [sal_img, sal_md], **private)
    gr.on([row.submit, col.submit], when_visible(receptive_ui),
          [panel.active, *base, arch, rf_layer, row, col], [rf_img, rf_md, row, col], **private)
    rf_layer.change(lambda a, ds, layer: layer_centre(zoo, a, ds, layer), [arch, panel.dataset, rf_layer], [row, col],
                    **private).then(when_visible(receptive_ui), [panel.active, *base, arch, rf_layer, row, col],
                                                        [rf_img, rf_md, row, col], **private)
    rf_img.select(rf_click, [*base, arch, rf_layer], [rf_img, rf_md, row, col], **private)
    gr.on([arch.change, ticks["dataset"].change], lambda a, ds: control_updates(zoo, a, ds), [arch, panel.dataset],
          [cam_layer, rf_layer, target], **private).then(when_visible(refresh), [panel.active, *base, *controls],
                                                        outputs, **private)
    gr.on([arch.change, ticks["dataset"].change, page.submit], when_visible(mistakes),
          [panel.active, arch, panel.dataset, page], [confusion, gallery, mis_md, mis_state], **private)
    gallery.select(pick, [mis_state], panel.upload, api_visibility="private")
