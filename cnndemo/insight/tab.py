"""The "Why?" tab: compare the networks, what mattered, where a unit looks, the test-set mistakes.

A thin Gradio layer over :mod:`cnndemo.insight.service`. ``build_insight_tab(zoo, current_input=None,
dataset=None)`` must be called inside a ``gr.Blocks``; it builds the tab and registers the named API
endpoints ``/compare``, ``/saliency``, ``/receptive_field`` and ``/misclassified`` on hidden components,
so their signatures do not depend on how the tab's inputs are wired.
"""

from __future__ import annotations

import functools
import tempfile
from typing import Any

import gradio as gr

from cnndemo.checkpoints import DATASET_NAMES
from cnndemo.insight import service
from cnndemo.insight.mistakes import load_mistakes
from cnndemo.insight.render import confusion_image
from cnndemo.insight.attribution import METHOD_TITLES, METHODS, default_gradcam_layer, layer_shapes
from cnndemo.insight.receptive_field import resolve_layer, unit_at
from cnndemo.models import ARCHS, visual_layers
from cnndemo.registry import ARCH_TITLES, DATASET_TITLES, ModelZoo


def _errors(fn):
    """ValueError / LookupError (bad input, missing model or file) -> gr.Error with the message."""

    @functools.wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except (ValueError, LookupError) as exc:
            raise gr.Error(str(exc).strip("'\"")) from None

    return wrapped


def compare_markdown(info: dict) -> str:
    """The compare JSON as a Markdown table plus one line on agreement."""
    lines = ["| network | says | confidence | parameters | multiply-adds | forward ms |", "|---|---|---|---|---|---|"]
    for m in info["models"]:
        lines.append(f"| {ARCH_TITLES.get(m['arch'], m['arch'])} | **{m['label']}** | {m['confidence']:.1%} | "
                     f"{m['params']:,} | {m['macs'] / 1e6:.1f} M | {m['ms']:.2f} |")
    agree = "✅ All networks agree." if info["agree"] else f"⚠️ The networks disagree: {', '.join(info['labels'])}."
    return agree + "\n\n" + "\n".join(lines)


def rf_markdown(info: dict) -> str:
    """Receptive-field sides of every layer, and the seed's point about stacked 3x3 convs."""
    sizes = service.stacked_3x3(3)
    head = (f"**{info['layer']}**, unit ({info['row']}, {info['col']}) of its {info['map_size'][0]} x "
            f"{info['map_size'][1]} map: sees a **{info['rf_size']} x {info['rf_size']}** window of the input "
            f"(box rows {info['box'][0]}–{info['box'][2] - 1}, cols {info['box'][1]}–{info['box'][3] - 1} after "
            f"clipping to 28 x 28); neighbouring units are {info['stride']} px apart.\n\n"
            f"Stacked 3x3 convs: one sees {sizes[0]}x{sizes[0]}, two see {sizes[1]}x{sizes[1]}, "
            f"three see {sizes[2]}x{sizes[2]} (seed 000).\n\n| layer | receptive field | stride |\n|---|---|---|")
    return head + "".join(f"\n| {r['layer']} | {r['rf_size']} x {r['rf_size']} | {r['stride']} |" for r in info["table"])


def _layer_choices(zoo: ModelZoo, arch: str, dataset: str) -> list[tuple[str, str]]:
    if not zoo.has(arch, dataset):
        return []
    model, _ = zoo.get(arch, dataset)
    return [(vl.label, vl.name.removeprefix("net.")) for vl in visual_layers(model)]


def _defaults(zoo: ModelZoo, arch: str, dataset: str):
    """Updates for the layer dropdowns when the network or dataset changes."""
    choices = _layer_choices(zoo, arch, dataset)
    if not choices:
        return gr.update(choices=[], value=None), gr.update(choices=[], value=None)
    model, _ = zoo.get(arch, dataset)
    cam = default_gradcam_layer(model).removeprefix("net.")
    return gr.update(choices=choices, value=cam), gr.update(choices=choices, value=choices[0][1])


def build_insight_tab(zoo: ModelZoo, current_input: gr.components.Component | None = None,
                      dataset: gr.components.Component | None = None) -> gr.Tab:
    """The "Why?" tab (inside a ``gr.Blocks``). ``current_input``: a component holding the current image
    (anything :func:`cnndemo.preprocess.prepare` reads; a new image box when ``None``); ``dataset``: the
    dataset component (a new radio when ``None``)."""
    archs = [(ARCH_TITLES.get(a, a), a) for a in ARCHS]
    with gr.Tab("Why?", id="why") as tab:
        gr.Markdown("### Why did it say that?\nAll networks side by side, what mattered for the answer, "
                    "what one unit can see, and the mistakes each network makes on the test set.")
        with gr.Row():
            if current_input is None:
                current_input = gr.Image(type="filepath", label="Input image", height=200, elem_id="why-input")
            if dataset is None:
                dataset = gr.Radio([(DATASET_TITLES[d], d) for d in DATASET_NAMES], value=DATASET_NAMES[0],
                                   label="Dataset", elem_id="why-dataset")
            arch = gr.Dropdown(archs, value=archs[0][1], label="Network", elem_id="why-arch")
        with gr.Accordion("Compare all networks", open=True):
            compare_btn = gr.Button("Run every network", size="sm", elem_id="why-compare")
            compare_md = gr.Markdown()
        cam_layer0, rf_layer0 = _defaults(zoo, archs[0][1], DATASET_NAMES[0])
        with gr.Accordion("What mattered (attribution)", open=True):
            with gr.Row():
                method = gr.Radio([(METHOD_TITLES[m], m) for m in METHODS], value="gradcam", label="Method")
                target = gr.Textbox("", label="Explain class", placeholder="empty = the predicted class")
                cam_layer = gr.Dropdown(cam_layer0["choices"], value=cam_layer0["value"], label="Grad-CAM layer")
            sal_btn = gr.Button("Explain", size="sm", elem_id="why-explain")
            with gr.Row(equal_height=False):
                sal_img = gr.Image(type="pil", format="png", interactive=False, label="What mattered", height=260,
                                   elem_classes="pixelated")
                sal_md = gr.Markdown("Red: supports the class · blue: speaks against it (Grad-CAM: heat = importance).")
        with gr.Accordion("Where a unit looks (receptive field)", open=False):
            with gr.Row():
                rf_layer = gr.Dropdown(rf_layer0["choices"], value=rf_layer0["value"], label="Layer")
                row = gr.Number(0, precision=0, label="row", minimum=0)
                col = gr.Number(0, precision=0, label="col", minimum=0)
            rf_btn = gr.Button("Show", size="sm", elem_id="why-rf")
            with gr.Row(equal_height=False):
                rf_img = gr.Image(type="pil", format="png", interactive=False, height=260, elem_classes="pixelated",
                                  label="Box: theoretical field · heat: effective field (click to pick a unit)")
                rf_md = gr.Markdown()
        with gr.Accordion("The test-set mistakes", open=False):
            with gr.Row():
                page = gr.Number(1, precision=0, minimum=1, label="Page")
                mis_btn = gr.Button("Show mistakes", size="sm", elem_id="why-mistakes")
            mis_md = gr.Markdown()
            with gr.Row(equal_height=False):
                confusion = gr.Image(type="pil", format="png", interactive=False, label="Confusion matrix", scale=2)
                gallery = gr.Gallery(type="pil", format="png", columns=6, label="Misclassified (click to use)", scale=3,
                                     elem_id="why-gallery")
        mis_state = gr.State(None)

    def ui_compare(image, ds):
        _x, info = service.compare_view(zoo, image, ds)
        return compare_markdown(info)

    def ui_saliency(image, a, ds, m, t, layer):
        im, info = service.saliency_view(zoo, image, a, ds, m, t or None, layer if m == "gradcam" else None)
        where = f" at **{info['layer'].removeprefix('net.')}**" if info["layer"] else ""
        return im, (f"{METHOD_TITLES[m]}{where}: why **{info['target_label']}** "
                    f"(p = {info['target_probability']:.1%}; the network says **{info['predicted_label']}**).")

    def ui_rf(image, a, ds, layer, r, c):
        im, info = service.receptive_field_view(zoo, image, a, ds, layer, r, c)
        return im, rf_markdown(info), info["row"], info["col"]

    def ui_rf_click(image, a, ds, layer, evt: gr.SelectData):
        model, _ = zoo.get(a, ds)
        name = resolve_layer(model, layer)
        y, x = int(evt.index[1]) // 8, int(evt.index[0]) // 8
        r, c = unit_at(model, name, y, x, layer_shapes(model)[name][-2:])
        return ui_rf(image, a, ds, layer, r, c)

    def ui_mistakes(a, ds, p):
        items, info = service.misclassified_view(a, ds, p)
        text = (f"**{ARCH_TITLES.get(a, a)}**: {info['test_accuracy']:.2%} of 10,000 test images right, "
                f"**{info['total_misclassified']}** wrong; page {info['page']} of {info['pages']}, most confident first.")
        return confusion_image(load_mistakes(a, ds).confusion, info["classes"]), items, text, (a, ds, info["items"])

    def ui_pick(state, evt: gr.SelectData):
        if not state:
            return gr.skip()
        a, ds, items = state
        im = service.mistake_image(a, ds, items[evt.index]["rank"])
        path = tempfile.NamedTemporaryFile(suffix=".png", delete=False).name
        im.save(path)
        return path

    private = {"api_visibility": "private"}
    compare_btn.click(_errors(ui_compare), [current_input, dataset], compare_md, **private)
    sal_btn.click(_errors(ui_saliency), [current_input, arch, dataset, method, target, cam_layer], [sal_img, sal_md],
                  **private)
    rf_btn.click(_errors(ui_rf), [current_input, arch, dataset, rf_layer, row, col], [rf_img, rf_md, row, col], **private)
    rf_img.select(_errors(ui_rf_click), [current_input, arch, dataset, rf_layer], [rf_img, rf_md, row, col], **private)
    mis_btn.click(_errors(ui_mistakes), [arch, dataset, page], [confusion, gallery, mis_md, mis_state], **private)
    gallery.select(_errors(ui_pick), [mis_state], current_input, **private)
    gr.on([arch.change, dataset.change], lambda a, ds: _defaults(zoo, a, ds), [arch, dataset], [cam_layer, rf_layer],
          **private)
    _build_api(zoo)
    return tab


def _build_api(zoo: ModelZoo) -> None:
    """Hidden components and the four named endpoints."""
    with gr.Column(visible=False):
        image = gr.Image(type="filepath", label="image")
        arch = gr.Dropdown(list(ARCHS), value=next(iter(ARCHS)), label="arch")
        dataset = gr.Dropdown(list(DATASET_NAMES), value=DATASET_NAMES[0], label="dataset")
        method = gr.Dropdown(list(METHODS), value=METHODS[0], label="method")
        target = gr.Textbox("", label="target")
        layer = gr.Textbox("", label="layer")
        row, col = gr.Number(0, precision=0, label="row"), gr.Number(0, precision=0, label="col")
        page = gr.Number(1, precision=0, label="page")
        info = gr.JSON(label="info")
        picture = gr.Image(type="pil", format="png", label="picture")
        gallery = gr.Gallery(type="pil", format="png", label="gallery")
        buttons = [gr.Button(visible=False) for _ in range(4)]

    def api_compare(image: str, dataset: str) -> dict:
        """Every network of ``dataset`` on the image: top class, confidence, parameters, MACs, forward ms."""
        return service.compare_view(zoo, image, dataset)[1]

    def api_saliency(image: str, arch: str, dataset: str, method: str, target: str = "", layer: str = ""):
        """Overlay PNG and JSON {attribution, input, target, target_label, layer, ...}."""
        return service.saliency_view(zoo, image, arch, dataset, method, target or None, layer or None)

    def api_receptive_field(image: str, arch: str, dataset: str, layer: str, row: int, col: int):
        """Overlay PNG and JSON {layer, rf_size, box [top, left, bottom, right), effective 28x28, ...}."""
        return service.receptive_field_view(zoo, image, arch, dataset, layer, row, col)

    def api_misclassified(arch: str, dataset: str, page: int = 1):
        """Gallery of one page of test-set mistakes and JSON {test_accuracy, confusion, total_misclassified, items}."""
        return service.misclassified_view(arch, dataset, page)

    buttons[0].click(_errors(api_compare), [image, dataset], info, api_name="compare")
    buttons[1].click(_errors(api_saliency), [image, arch, dataset, method, target, layer], [picture, info],
                     api_name="saliency")
    buttons[2].click(_errors(api_receptive_field), [image, arch, dataset, layer, row, col], [picture, info],
                     api_name="receptive_field")
    buttons[3].click(_errors(api_misclassified), [arch, dataset, page], [gallery, info], api_name="misclassified")
