"""The app's page: the input panel (draw / upload / examples), a tab per network, Device and Fine-tune tabs,
and the hidden API endpoints; plus ``launch_kwargs`` for ``demo.launch()``.

A thin layer: the network tabs are :mod:`cnndemo.app.network_tab`, the endpoints :mod:`cnndemo.app.api`,
the fine-tune tab :mod:`cnndemo.app.finetune_tab`; every handler is a plain function over
:mod:`cnndemo.app.views`; the input events (one per canvas update, upload or dataset switch) are
:mod:`cnndemo.app.input_panel`. Input problems become a warning toast and a note in the input panel.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading

import gradio as gr
import torch

from cnndemo import catalog
from cnndemo.app import views
from cnndemo.app.api import API_PAGE, ImageFile, build_api
from cnndemo.app.canvas import DrawingCanvas
from cnndemo.app.deferred import defer_hidden_parts
from cnndemo.app.examples import build_shelves, example_files  # noqa: F401 - example_files: re-exported
from cnndemo.app.finetune_tab import build_finetune_api, build_finetune_tab
from cnndemo.app.input_panel import BLANK_HINT, InputViews, wire_inputs
from cnndemo.app.insight_api import build_insight_api
from cnndemo.app.insight_tab import build_insight_tab
from cnndemo.app.lab_panels import build_bottleneck_api
from cnndemo.app.labs_tab import build_labs_api, build_labs_tab
from cnndemo.app.network_tab import InputPanel, build_network_tab
from cnndemo.app.outputs import Picture, SkippingBlocks
from cnndemo.app.prose import CSS as PROSE_CSS
from cnndemo.app.prose import Prose
from cnndemo.app.serving import (
    DELETE_CACHE,
    STATE_SESSION_CAPACITY,
    app_kwargs,
    trust_proxies,
    configure_queue,
)
from cnndemo.app.sessions import watch
from cnndemo.app.setting_inputs import RadioChoice, setting
from cnndemo.app.startup import AppOnLaunch
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.decode import MAX_UPLOAD_BYTES
from cnndemo.insight.attribution import captum_attr
from cnndemo.inspection import render
from cnndemo.inspection.analysis import analyse

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
@media (max-width: 640px) {  /* phones: a compact header, so the whole canvas is on the first screen */
  #hero {padding: 10px 14px; border-radius: 12px;}
  #hero h1 {font-size: 1.3em;}
  #hero p {font-size: .85em; line-height: 1.35;}
  #hero .badge {margin-top: 6px; font-size: .8em;}
}
"""

_ZOO: ModelZoo | None = None


def get_models() -> ModelZoo:
    """The process-wide :class:`~cnndemo.app.zoo.ModelZoo` (loaded on first call)."""
    global _ZOO
    if _ZOO is None:
        _ZOO = ModelZoo.load()
    return _ZOO


def warm_up(zoo: ModelZoo, delay: float = 2.0) -> threading.Thread:
    """In a background thread, after ``delay`` s: import matplotlib, run every model once, build the torchinfo
    summaries and import Captum (the Why? tab's attribution), so the first visitor does not pay for them.
    Start-up itself does not wait.

    At interpreter exit the thread is asked to stop and joined (a thread still inside torch when
    Python shuts down aborts the process)."""
    stop = threading.Event()

    def work() -> None:
        if stop.wait(delay):
            return
        try:
            blank = torch.zeros(1, 1, 28, 28)
            blank[0, 0, 8:20, 12:16] = 1
            render.lut(render.SEQUENTIAL), render.lut(render.DIVERGING)
            steps = [functools.partial(analyse, zoo.get(a, d)[0], blank) for a, d in zoo.available]
            steps += [functools.partial(views.architecture, zoo, a) for a in dict.fromkeys(a for a, _ in zoo.available)]
            steps.append(captum_attr)
            for step in steps:
                if stop.is_set():
                    return
                step()
        except Exception:  # noqa: BLE001 - warming is best effort; real requests report their own errors
            pass

    thread = threading.Thread(target=work, name="cnndemo-warm-up", daemon=True)

    def finish() -> None:
        stop.set()
        thread.join(timeout=30)

    atexit.register(finish)
    thread.start()
    return thread


# --------------------------------------------------------------------------- layout


class Page(SkippingBlocks, AppOnLaunch):
    """The app's Blocks: skipped outputs cost nothing (:mod:`cnndemo.app.outputs`) and its web server app is built
    by ``launch()`` only (:mod:`cnndemo.app.startup`)."""


def _header(zoo: ModelZoo) -> str:
    missing = f" · {len(zoo.missing)} checkpoints missing" if zoo.missing else ""
    return (
        "<div id='hero'><h1>cnndemo: look inside a CNN</h1>"
        "<p>Draw a digit or upload a picture of clothing, then watch VGG, GoogLeNet and ResNet classify it: "
        "what each network sees, its feature maps, its Inception branches and residual blocks.</p>"
        f"<span class='badge'>running on {zoo.device_label}{missing}</span></div>"
    )


def build_demo(models: ModelZoo | None = None) -> gr.Blocks:
    """The Blocks app. Loads the pretrained models (onto the best device) unless ``models`` is given."""
    MODELS = models or get_models()
    with Page(title="cnndemo: look inside a CNN", delete_cache=DELETE_CACHE) as demo:
        # Each session's fine-tuned and taught models live in cnndemo.app.sessions' registry, not in a gr.State
        watch(demo)
        active = gr.State(next(iter(catalog.TABS)))
        source = gr.State("canvas")
        gr.HTML(_header(MODELS))
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=340, elem_id="input-panel"):
                dataset = setting(RadioChoice, "dataset", [(d.title, d.name) for d in catalog.DATASETS.values()],
                                  value=views.DEFAULT_DATASET, label="Dataset", elem_id="dataset")
                with gr.Tabs(selected="draw") as input_tabs:
                    with gr.Tab("Draw", id="draw"):
                        canvas = DrawingCanvas(elem_id="canvas", hint="Draw a digit here")
                    with gr.Tab("Upload", id="upload"):
                        upload = ImageFile(type="filepath", sources=["upload", "clipboard", "webcam"],
                                          label=f"Any photo or image file (up to {MAX_UPLOAD_BYTES // 2**20} MB)",
                                          elem_id="upload", height=336)
                with gr.Row(equal_height=False):
                    sees = Picture(label="What the network sees (28 x 28)", format="png", type="pil",
                                   interactive=False, elem_id="sees", elem_classes="pixelated", height=240,
                                   buttons=["download"])
                    input_note = Prose(BLANK_HINT, elem_id="input-note")
                with gr.Accordion("Examples: real test images", open=True):
                    # The selected dataset's examples only: the other's are hidden (their thumbnails load when
                    # the dataset is switched), which halves what the first page fetches and draws.
                    # (The shelf shown is the selected dataset's, so an example no longer needs to set the dataset.)
                    # Thumbnails inline and clicks by index: no server path in /config (cnndemo.app.examples).
                    shelves = build_shelves(upload, views.DEFAULT_DATASET)
            with gr.Column(scale=7):
                panel = InputPanel(canvas, upload, source, dataset, active)
                with gr.Tabs(selected=next(iter(catalog.TABS))):
                    tabs = [build_network_tab(MODELS, tab, panel) for tab in catalog.TABS.values()]
                    why = build_insight_tab(MODELS, panel)  # "Why?": follows the input events (below)
                    with gr.Tab("Device", id="device") as device_tab:
                        device_md = Prose(views.device_report(MODELS))
                    # Up to date whenever it is looked at (memory in use changes), with no button to press
                    device_tab.select(lambda: views.device_report(MODELS), None, device_md, queue=False,
                                      api_visibility="private", show_progress="hidden")
                    build_finetune_tab(MODELS)
                    build_labs_tab(MODELS)

        # One event per input update (canvas payload, upload, dataset): frame once, render the visible tab.
        # (The Why? tab follows them: they set its counters.)
        wire_inputs(MODELS, panel, tabs, InputViews(sees, input_note, shelves),
                    input_tabs, why.ticks)
        # One page for visitors: the endpoint page is for API clients only. "hidden", not False: Gradio hides the
        # navbar when this component reports it, and a component created with visible=False is never started.
        gr.Navbar(visible="hidden")
        defer_hidden_parts(demo)  # what the page does not show at first loads when first shown
    build_endpoints(demo, MODELS)
    warm_up(MODELS)
    return configure_queue(demo)


def build_endpoints(demo: gr.Blocks, zoo: ModelZoo) -> None:
    """The named API endpoints, on their own page (``/endpoints``, blank if opened): Gradio serves a page only the
    components placed on it, so the visitor's page neither lists nor processes their inputs and outputs, while API
    clients see every endpoint (``/config`` and ``/gradio_api/info`` cover all pages)."""
    with demo.route("API", API_PAGE, show_in_navbar=False):
        build_api(zoo)
        build_insight_api(zoo)
        build_bottleneck_api()
        build_finetune_api(zoo)
        build_labs_api(zoo)


def launch_kwargs(demo: gr.Blocks | None = None) -> dict:
    """Arguments for ``demo.launch()``: theme, css, host/port (GRADIO_SERVER_NAME / _PORT), upload limit, and the
    public-safety guard for ``demo`` (which proxies may forward visitors' addresses is set for uvicorn here)."""
    trust_proxies()
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "server_port": int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        "max_file_size": MAX_UPLOAD_BYTES,
        "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="sky",
                                font=["ui-sans-serif", "system-ui", "sans-serif"],
                                font_mono=["ui-monospace", "DejaVu Sans Mono", "monospace"]),
        "css": CSS + PROSE_CSS,
        "show_error": True,  # handlers raise gr.Error with one line; Gradio's own input errors reach clients too
        "state_session_capacity": STATE_SESSION_CAPACITY,
        "app_kwargs": app_kwargs(demo),
    }
