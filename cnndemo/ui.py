"""The Gradio app: one input panel (draw / upload / examples) and a tab per network.

A thin layer: every handler calls a plain function of :mod:`cnndemo.views` and turns input
problems into a warning toast and a message in the input panel (never a stack trace).

Named API endpoints (see the README, "HTTP API"): ``/classify``, ``/feature_maps``,
``/inception_branches``, ``/residual_blocks``.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from cnndemo import inspection, views, viz
from cnndemo.preprocess import MAX_UPLOAD_BYTES, InputError, prepare
from cnndemo.registry import ARCH_TITLES, DATASET_TITLES, ModelZoo
from cnndemo.viz import input_image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATASET_CHOICES = [(DATASET_TITLES[d], d) for d in ("mnist", "fashion_mnist")]
API_ARCHS = ["vgg11", "googlenet", "resnet18", "inception_net", "residual_net"]
# Tab id -> (tab title, [(choice label, arch)], what the tab shows besides feature maps)
TABS: dict[str, tuple[str, list[tuple[str, str]], str]] = {
    "vgg": ("VGG", [("VGG-11", "vgg11")], "plain"),
    "googlenet": ("GoogLeNet", [(ARCH_TITLES["googlenet"], "googlenet"), (ARCH_TITLES["inception_net"], "inception_net")], "inception"),
    "resnet": ("ResNet", [(ARCH_TITLES["resnet18"], "resnet18"), (ARCH_TITLES["residual_net"], "residual_net")], "residual"),
}
BLANK_HINT = "Draw a digit on the canvas, upload a picture, or click an example below."
# Page-load script: make the brush the active canvas tool, so drawing works at once.
SELECT_BRUSH_JS = """
() => {
  let tries = 0;
  const timer = setInterval(() => {
    const brush = document.querySelector('#canvas button[aria-label="Brush"]');
    if (brush) { brush.click(); }
    if (brush || ++tries > 100) clearInterval(timer);
  }, 100);
}
"""

CSS = """
#hero {background: linear-gradient(120deg, #312e81 0%, #4f46e5 55%, #0ea5e9 100%); color: white;
       border-radius: 16px; padding: 18px 24px; margin-bottom: 6px;}
#hero h1 {color: white; margin: 0 0 4px 0; font-size: 1.9em;}
#hero p {color: #e0e7ff; margin: 0;}
#hero .badge {display: inline-block; background: rgba(255,255,255,.16); border: 1px solid rgba(255,255,255,.35);
              border-radius: 999px; padding: 2px 12px; margin-top: 10px; font-size: .9em; color: white;}
.pixelated img, .pixelated canvas {image-rendering: pixelated; image-rendering: crisp-edges;}
#sees img {max-width: 224px; margin: auto;}
#input-panel {position: sticky; top: 8px; align-self: flex-start;}
.model-note {font-size: .95em;}
.explain {background: #f8fafc; border-left: 4px solid #6366f1; border-radius: 8px; padding: 4px 14px;}
.explain h3 {margin-top: 6px;}
footer {display: none !important;}
"""

_ZOO: ModelZoo | None = None


class ImageFile(gr.Image):
    """A ``gr.Image`` that passes the uploaded file's path on untouched.

    ``gr.Image`` would open and convert the file itself (dropping alpha, 16-bit depth and CMYK,
    and failing with a generic error on unreadable files); :mod:`cnndemo.preprocess` does all of
    that with clear messages instead.
    """

    is_template = True  # same front-end component as gr.Image

    def preprocess(self, payload):
        if payload is not None and getattr(payload, "path", None):
            return str(payload.path)
        return super().preprocess(payload)


def get_models() -> ModelZoo:
    """The process-wide :class:`~cnndemo.registry.ModelZoo` (loaded on first call)."""
    global _ZOO
    if _ZOO is None:
        _ZOO = ModelZoo.load()
    return _ZOO


def warm_up(zoo: ModelZoo, delay: float = 2.0) -> threading.Thread:
    """In a daemon thread, after ``delay`` s: import matplotlib, run every model once and build the
    torchinfo summaries, so the first visitor does not pay for them. Start-up itself does not wait."""

    def work() -> None:
        time.sleep(delay)
        try:
            blank = torch.zeros(1, 1, 28, 28)
            blank[0, 0, 8:20, 12:16] = 1
            viz.lut(viz.SEQUENTIAL), viz.lut(viz.DIVERGING)
            for arch, dataset in zoo.available:
                inspection.probabilities(zoo.get(arch, dataset)[0], blank)
            for _title, choices, _kind in TABS.values():
                for _label, arch in choices:
                    views.architecture(zoo, arch)
        except Exception:  # noqa: BLE001 - warming is best effort; real requests report their own errors
            pass

    thread = threading.Thread(target=work, name="cnndemo-warm-up", daemon=True)
    thread.start()
    return thread


def example_files(dataset: str, per_class: int = 3) -> list[str]:
    """Paths of the committed example PNGs of ``dataset``, ``per_class`` per class, round-robin over
    the classes (so each page of ten examples shows every class once)."""
    files = sorted((EXAMPLES / dataset).glob("*.png"))
    by_class: dict[str, list[str]] = {}
    for f in files:
        by_class.setdefault(f.name.split("_", 1)[0], []).append(str(f))
    classes = sorted(by_class, key=int)
    return [by_class[c][k] for k in range(per_class) for c in classes if k < len(by_class[c])]


# --------------------------------------------------------------------------- plain handlers


def current_source(canvas: Any, upload: Any, source: str) -> Any:
    """The input the user means: the upload when ``source == "upload"``, else the canvas."""
    return upload if source == "upload" and upload else canvas


def _is_blank_canvas(value: Any) -> bool:
    """True when the canvas value holds no drawing at all."""
    if value is None:
        return True
    if isinstance(value, dict):
        return value.get("composite") is None and not value.get("layers") and value.get("background") is None
    return False


def show_input(canvas: Any, upload: Any, source: str, dataset: str) -> tuple[Any, str]:
    """(what the network sees, a note) for the shared input panel; input problems become a toast + note."""
    value = current_source(canvas, upload, source)
    if source != "upload" and _is_blank_canvas(value):
        return None, BLANK_HINT
    try:
        prepared = prepare(value, dataset)
    except InputError as exc:
        if source == "upload":
            gr.Warning(str(exc))
        return None, f"⚠️ {exc}" if source == "upload" or "blank" not in str(exc) else BLANK_HINT
    notes = "; ".join(n for n in prepared.notes if source == "upload" or "background" not in n)
    text = f"28 x 28, framed the {'MNIST' if dataset == 'mnist' else 'Fashion-MNIST'} way"
    return input_image(prepared.tensor), text + (f" ({notes})" if notes else "") + "."


def make_tab_refresh(zoo: ModelZoo, tab: str):
    """The handler that fills one network tab: prediction, feature maps and the tab's special view.

    Inputs: canvas, upload, source, dataset, arch, layer, module, session_models, active tab.
    Outputs: label, model note, feature grid, caption, then 4 branch grids + table (GoogLeNet tab)
    or the residual figure + table (ResNet tab). Hidden tabs are skipped.
    """
    kind = TABS[tab][2]

    def refresh(canvas, upload, source, dataset, arch, layer, module, session_models, active):
        if active != tab:
            return [gr.skip()] * n_outputs(tab)
        note = views.model_note(zoo, arch, dataset, session_models)
        value = current_source(canvas, upload, source)
        empty = [None, note, None, ""] + ([None] * 4 + [""] if kind == "inception" else [None, ""] if kind == "residual" else [])
        if source != "upload" and _is_blank_canvas(value):
            return empty
        try:
            pred = views.predict(zoo, value, arch, dataset, session_models)
            grid, caption, _ = views.feature_view(zoo, value, arch, dataset, layer, session_models)
            out = [pred.top, note, grid, caption]
            if kind == "inception":
                grids, table, view = views.branches_view(zoo, value, arch, dataset, module, session_models)
                out += [gr.update(value=g, label=f"{b.label} · {b.channels} ch · {b.energy_share:.0%}")
                        for g, b in zip(grids, view.branches)] + [table]
            elif kind == "residual":
                fig, table, _ = views.residual_view(zoo, value, arch, dataset, session_models)
                out += [fig, table]
            return out
        except (InputError, LookupError):
            return empty  # the input panel / model note already say what is wrong

    return refresh


def n_outputs(tab: str) -> int:
    """How many outputs a tab's refresh handler has."""
    return 4 + {"plain": 0, "inception": 5, "residual": 2}[TABS[tab][2]]


def arch_panels(zoo: ModelZoo, arch: str, dataset: str, session_models: dict | None):
    """Updates when a tab's model changes: layer choices, module choices, explanation, architecture."""
    layers = views.layer_choices(zoo, arch, dataset)
    modules = views.module_choices(zoo, arch, dataset)
    return (
        gr.update(choices=layers, value=layers[0][1] if layers else None),
        gr.update(choices=modules, value=modules[0][1] if modules else None),
        views.explanation(zoo, arch, dataset) if layers else f"⚠️ No checkpoint of {ARCH_TITLES[arch]} is loaded.",
        views.architecture(zoo, arch, dataset, session_models),
    )


# --------------------------------------------------------------------------- API handlers


def _api_errors(fn):
    """Turn input and model problems into gr.Error (a clean message for API clients and the UI)."""

    @functools.wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except (InputError, LookupError) as exc:
            raise gr.Error(str(exc).strip("'\"")) from None

    return wrapped


def api_classify(zoo: ModelZoo):
    @_api_errors
    def classify(image: str, arch: str, dataset: str) -> dict[str, float]:
        """Top-5 classes of the image for the pretrained ``arch`` on ``dataset``."""
        return views.predict(zoo, image, arch, dataset).top

    return classify


def api_feature_maps(zoo: ModelZoo):
    @_api_errors
    def feature_maps(image: str, arch: str, dataset: str, layer: str) -> tuple[Any, dict]:
        """Channel grid (PNG) of ``layer`` and its per-channel max activations, strongest first."""
        grid, _caption, fm = views.feature_view(zoo, image, arch, dataset, layer or None)
        maxes = fm.channel_max
        return grid, {
            "layer": fm.layer.name, "kind": fm.layer.kind, "shape": list(fm.maps.shape),
            "channels": [{"index": i, "max": round(float(maxes[i]), 5)} for i in fm.strongest()],
        }

    return feature_maps


def api_inception_branches(zoo: ModelZoo):
    @_api_errors
    def inception_branches(image: str, arch: str, dataset: str, module: str) -> tuple[list, dict]:
        """The four branch grids (PNG) of an Inception module, with channel counts and energy shares."""
        grids, _table, view = views.branches_view(zoo, image, arch, dataset, module or None)
        return [(g, b.label) for g, b in zip(grids, view.branches)], {
            "module": view.module, "out_channels": view.out_channels,
            "branches": [{"name": b.name, "label": b.label, "channels": b.channels,
                          "energy_share": round(b.energy_share, 5)} for b in view.branches],
        }

    return inception_branches


def api_residual_blocks(zoo: ModelZoo):
    @_api_errors
    def residual_blocks(image: str, arch: str, dataset: str) -> tuple[Any, dict]:
        """x | F(x) | out per residual block (PNG) and ‖F(x)‖/‖x‖ per block."""
        fig, _table, blocks = views.residual_view(zoo, image, arch, dataset)
        return fig, {"blocks": [{"name": b.name, "x_shape": list(b.x.shape), "out_shape": list(b.out.shape),
                                 "ratio": round(b.ratio, 5)} for b in blocks]}

    return residual_blocks


# --------------------------------------------------------------------------- layout


def _header(zoo: ModelZoo) -> str:
    missing = f" · {len(zoo.missing)} checkpoints missing" if zoo.missing else ""
    return (
        "<div id='hero'><h1>cnndemo: look inside a CNN</h1>"
        "<p>Draw a digit or upload a picture of clothing, then watch VGG, GoogLeNet and ResNet classify it: "
        "what each network sees, its feature maps, its Inception branches and residual blocks.</p>"
        f"<span class='badge'>running on {zoo.device_label}{missing}</span></div>"
    )


def _build_network_tab(zoo: ModelZoo, tab: str, inputs: dict, active: gr.State, session_models: gr.State) -> None:
    """One network tab and its events."""
    title, choices, kind = TABS[tab]
    with gr.Tab(title, id=tab) as tab_block:
        arch = gr.Radio(choices, value=choices[0][1], label="Model", visible=len(choices) > 1,
                        info="The course model is the small network of seed 002 (Liu Er's PyTorch course).")
        note = gr.Markdown(views.model_note(zoo, choices[0][1], "mnist"), elem_classes="model-note")
        with gr.Row(equal_height=False):
            label = gr.Label(num_top_classes=5, label="Prediction (top 5)", scale=1, elem_id=f"label-{tab}")
            explain_md = gr.Markdown(views.explanation(zoo, choices[0][1]), elem_classes="explain", container=True,
                                     scale=1)
        layers = views.layer_choices(zoo, choices[0][1])
        modules = views.module_choices(zoo, choices[0][1])
        with gr.Accordion("Feature maps", open=True):
            layer = gr.Dropdown(layers, value=layers[0][1] if layers else None, label="Layer",
                                info="Each square is one channel's activation map (brighter = stronger), strongest first.")
            caption = gr.Markdown()
            fmap = gr.Image(label="Channels", format="png", type="pil", interactive=False, show_label=False,
                            elem_classes="pixelated", elem_id=f"fmap-{tab}", buttons=["download", "fullscreen"])
        module = gr.Dropdown(modules, value=modules[0][1] if modules else None, label="Inception module",
                             visible=kind == "inception", render=False)
        if kind != "inception":
            module.render()  # hidden: the refresh handler takes it as an input on every tab
        extra: list = []
        if kind == "inception":
            with gr.Accordion("Inception branches: four paths side by side", open=True):
                gr.Markdown("Pick a module: each branch's channels for the current input. The branch channel counts "
                            "add up to the module's output channels; the share says how much of the module's "
                            "activation energy (sum of squares) each branch carries.")
                module.render()
                with gr.Row():
                    branch_imgs = [gr.Image(format="png", type="pil", interactive=False, label=name,
                                            elem_classes="pixelated", buttons=["fullscreen"])
                                   for name in ("1x1", "3x3", "5x5", "pool-proj")]
                branch_table = gr.Markdown()
            extra = [*branch_imgs, branch_table]
        elif kind == "residual":
            with gr.Accordion("Residual blocks: x, F(x) and the output", open=True):
                gr.Markdown("For every block: its input **x**, the residual branch **F(x)** (red = positive, "
                            "blue = negative), and the output **relu(F(x) + shortcut(x))**, each averaged over channels. "
                            "A small ‖F(x)‖/‖x‖ means the block makes a small correction to what passes through it.")
                with gr.Row(equal_height=False):
                    res_img = gr.Image(format="png", type="pil", interactive=False, show_label=False, scale=3,
                                       elem_classes="pixelated", buttons=["download", "fullscreen"])
                    res_table = gr.Markdown()
            extra = [res_img, res_table]
        with gr.Accordion("Architecture (torchinfo, 1 x 1 x 28 x 28 input)", open=False):
            # A callable value runs on page load (not at start-up); the summary is cached after the first time.
            arch_code = gr.Code(functools.partial(views.architecture, zoo, choices[0][1]), language=None,
                                show_label=False, lines=12, max_lines=40)

    refresh = make_tab_refresh(zoo, tab)
    ins = [inputs["canvas"], inputs["upload"], inputs["source"], inputs["dataset"], arch, layer, module,
           session_models, active]
    outs = [label, note, fmap, caption, *extra]
    ev = {"fn": refresh, "inputs": ins, "outputs": outs, "show_progress": "hidden", "api_visibility": "private",
          "trigger_mode": "always_last", "concurrency_id": f"tab-{tab}"}
    inputs["after_input"].append(ev)
    gr.on([inputs["dataset"].change, layer.change, module.change], **ev)
    tab_block.select(lambda: tab, None, active, queue=False, api_visibility="private").then(**ev).then(
        lambda a, d, s: views.architecture(zoo, a, d, s), [arch, inputs["dataset"], session_models], arch_code,
        api_visibility="private", show_progress="hidden")
    arch.change(lambda a, d, s: arch_panels(zoo, a, d, s), [arch, inputs["dataset"], session_models],
                [layer, module, explain_md, arch_code], api_visibility="private", show_progress="hidden").then(**ev)


def _build_api(zoo: ModelZoo) -> None:
    """Hidden components and the named API endpoints."""
    with gr.Column(visible=False):
        image = ImageFile(type="filepath", label="image")
        arch = gr.Dropdown(API_ARCHS, value="vgg11", label="arch")
        dataset = gr.Dropdown(["mnist", "fashion_mnist"], value="mnist", label="dataset")
        layer = gr.Textbox(label="layer")
        module = gr.Textbox(label="module")
        label = gr.Label(num_top_classes=10, label="prediction")
        grid = gr.Image(format="png", type="pil", label="feature maps")
        info = gr.JSON(label="info")
        gallery = gr.Gallery(format="png", type="pil", label="branches")
        res_fig = gr.Image(format="png", type="pil", label="residual blocks")
        res_info = gr.JSON(label="blocks")
        buttons = [gr.Button(visible=False) for _ in range(4)]
    buttons[0].click(api_classify(zoo), [image, arch, dataset], label, api_name="classify")
    buttons[1].click(api_feature_maps(zoo), [image, arch, dataset, layer], [grid, info], api_name="feature_maps")
    buttons[2].click(api_inception_branches(zoo), [image, arch, dataset, module], [gallery, info],
                     api_name="inception_branches")
    buttons[3].click(api_residual_blocks(zoo), [image, arch, dataset], [res_fig, res_info], api_name="residual_blocks")


def build_demo(models: ModelZoo | None = None) -> gr.Blocks:
    """The Blocks app. Loads the pretrained models (onto the best device) unless ``models`` is given."""
    MODELS = models or get_models()
    with gr.Blocks(title="cnndemo: look inside a CNN") as demo:
        session_models = gr.State({})  # "arch/dataset" -> (model, meta): this session's fine-tuned models
        active = gr.State("vgg")
        source = gr.State("canvas")
        gr.HTML(_header(MODELS))
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=340, elem_id="input-panel"):
                dataset = gr.Radio(DATASET_CHOICES, value="mnist", label="Dataset", elem_id="dataset")
                with gr.Tabs(selected="draw") as input_tabs:
                    with gr.Tab("Draw", id="draw") as draw_tab:
                        canvas = gr.Sketchpad(
                            type="numpy", image_mode="RGBA", format="png", canvas_size=(336, 336),
                            brush=gr.Brush(default_size=14, colors=["#000000"], color_mode="fixed"),
                            layers=False, transforms=(), label="Draw here (black ink)", elem_id="canvas",
                        )
                    with gr.Tab("Upload", id="upload"):
                        upload = ImageFile(type="filepath", sources=["upload", "clipboard", "webcam"],
                                          label=f"Any photo or image file (up to {MAX_UPLOAD_BYTES // 2**20} MB)",
                                          elem_id="upload", height=336)
                with gr.Row(equal_height=False):
                    sees = gr.Image(label="What the network sees (28 x 28)", format="png", type="pil",
                                    interactive=False, elem_id="sees", elem_classes="pixelated", height=240,
                                    buttons=["download"])
                    input_note = gr.Markdown(BLANK_HINT, elem_id="input-note")
                with gr.Accordion("Examples: real test images", open=True):
                    for ds in ("mnist", "fashion_mnist"):
                        files = example_files(ds)
                        if files:
                            gr.Examples([[f, ds] for f in files], inputs=[upload, dataset], label=DATASET_TITLES[ds],
                                        examples_per_page=10, visible_columns=[0], api_visibility="private")
            with gr.Column(scale=7):
                inputs = {"canvas": canvas, "upload": upload, "source": source, "dataset": dataset, "after_input": []}
                with gr.Tabs(selected="vgg"):
                    for tab in TABS:
                        _build_network_tab(MODELS, tab, inputs, active, session_models)
                    with gr.Tab("Device", id="device"):
                        device_md = gr.Markdown(views.device_report(MODELS))
                        gr.Button("Refresh", size="sm").click(lambda: views.device_report(MODELS), None, device_md,
                                                              api_visibility="private")
                    try:
                        from cnndemo.ui_finetune import build_finetune_tab
                    except ImportError:
                        build_finetune_tab = None
                    if build_finetune_tab is not None:
                        build_finetune_tab(session_models=session_models, models=MODELS)

        # Input events: remember which input is current, refresh the input panel and the visible tab.
        show = {"fn": show_input, "inputs": [canvas, upload, source, dataset], "outputs": [sees, input_note],
                "show_progress": "hidden", "api_visibility": "private", "trigger_mode": "always_last"}
        canvas_ev = canvas.change(lambda: "canvas", None, source, queue=False, api_visibility="private")
        upload_ev = upload.change(lambda u: ("upload" if u else "canvas", gr.Tabs(selected="upload") if u else gr.skip()),
                                  upload, [source, input_tabs], queue=False, api_visibility="private")
        for ev in (canvas_ev, upload_ev):
            ev.then(**show)
            for tab_ev in inputs["after_input"]:
                ev.then(**tab_ev)
        dataset.change(**show)
        draw_tab.select(None, None, None, js=SELECT_BRUSH_JS, api_visibility="private")
        _build_api(MODELS)
    warm_up(MODELS)
    return demo


def launch_kwargs() -> dict:
    """Arguments for ``demo.launch()``: theme, css, host/port (GRADIO_SERVER_NAME / _PORT), upload limit."""
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "server_port": int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        "max_file_size": MAX_UPLOAD_BYTES,
        "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="sky",
                                font=["ui-sans-serif", "system-ui", "sans-serif"],
                                font_mono=["ui-monospace", "DejaVu Sans Mono", "monospace"]),
        "css": CSS,
        "js": SELECT_BRUSH_JS,
        "show_error": False,
    }
