"""The "Labs" tab: the vanishing-gradients lab and "teach it your handwriting".

The app calls :func:`build_labs_tab` inside its ``gr.Tabs()`` and :func:`build_labs_api` on its endpoint page::

    build_labs_tab(zoo)   # zoo: cnndemo.app.zoo.ModelZoo (a taught model goes to cnndemo.app.sessions' store)

The tab's contents are built when it is first opened (:func:`cnndemo.app.deferred.build_when_opened`). The
endpoints ``/gradient_flow`` (streams; every argument has a default) and ``/teach`` (streams; the taught model
goes into this browser session's ``SessionModels`` only, via ``put``) are API-only twins built from the same
widget factories and functions. What the labs stream: :mod:`cnndemo.app.labs_streams`; all computation is in
:mod:`cnndemo.labs`. The bottleneck calculator and the kernel grid live in the network tabs
(:mod:`cnndemo.app.lab_panels`). Errors become ``gr.Error`` with the core's message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import gradio as gr

from cnndemo import catalog
from cnndemo.app.api import api_only, published
from cnndemo.app.deferred import build_when_opened
from cnndemo.app.inputs import BoundedSketchpad, NoRemoteFiles
from cnndemo.app.labs_streams import (
    CLASSES,
    fair,
    gradient_events,
    parse_labels,
    paths,
    teach_events,
)
from cnndemo.app.outputs import write_once
from cnndemo.app.sessions import check_room, store_for
from cnndemo.app.setting_inputs import (
    FREE_TEXT,
    Choice,
    RadioChoice,
    SettingNumber,
    SettingSlider,
    SettingText,
    setting,
)
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.decode import canvas_image
from cnndemo.data.framing import prepare
from cnndemo.labs.gradient_flow import DEPTHS, STEPS_RANGE, WIDTH_RANGE, LabSpec
from cnndemo.labs.teach import DATASET, TeachSpec


class LocalFiles(NoRemoteFiles, gr.File):
    """A ``gr.File`` that never downloads a URL a client names (like the app's other inputs)."""

    FRONTEND = "file"


# Make the brush the teach canvas's active tool when its tab opens, as the main canvas does on page load.
SELECT_TEACH_BRUSH_JS = """
() => {
  let tries = 0;
  const timer = setInterval(() => {
    const brush = document.querySelector('#teach-canvas button[aria-label="Brush"]');
    if (brush) { brush.click(); }
    if (brush || ++tries > 50) clearInterval(timer);
  }, 100);
}
"""
GRADIENT_INTRO = """### Vanishing gradients: a plain deep CNN against the same CNN with skip connections
Two networks with the same layers and the same starting weights train side by side on MNIST: a plain stack of
3x3 convolutions, and the same stack with the course's residual blocks (`out = relu(x + F(x))`). As in the
course code they use **PyTorch's default initialisation and no normalisation layers** (no BatchNorm), trained
with SGD + momentum. Watch the gradient bars: in the plain net each layer passes back a smaller gradient than
it receives, so the first layers get almost nothing (note the log scale) and the loss stays at chance, while the
skip connections carry the gradient straight through.
"""
TEACH_INTRO = """### Teach it your handwriting
Draw a few examples of each digit (pick the digit, draw, **Add**; or upload images of the selected digit). About a
third of each digit's drawings are kept aside to measure the result. **Teach** fine-tunes a copy of the network on
the rest, mixed with real MNIST training images so that it does not forget MNIST, and compares before and after:
on your held-out drawings, and on 2,000 MNIST test images. The taught model is yours alone (this browser session).
"""




def _widgets() -> dict[str, Any]:
    """Factories of the two endpoints' inputs and outputs: the tab and the API-only twins on the endpoint page are
    built from the same ones, so the API does not change."""
    d = LabSpec()
    return {
        "depth": lambda **kw: setting(RadioChoice, "depth", list(DEPTHS), value=d.depth, label="Depth (conv layers)",
                                      **kw),
        "width": lambda **kw: setting(SettingSlider, "width", *WIDTH_RANGE, value=d.width, step=1,
                                      label="Width (channels per layer)", **kw),
        "steps": lambda **kw: setting(SettingSlider, "steps", *STEPS_RANGE, value=d.steps, step=10,
                                      label="Training steps (batch of 32)", **kw),
        "lr": lambda **kw: setting(SettingNumber, "lr", value=d.lr, label="Learning rate (SGD)", minimum=1e-4,
                                   maximum=1.0, **kw),
        "gradient_status": lambda **kw: gr.Markdown("Press **Train both**.", **kw),
        "plot": lambda **kw: gr.Plot(show_label=False, format="png", **kw),
        "gradient_json": lambda **kw: gr.JSON(**kw),
        "files": lambda **kw: LocalFiles(file_count="multiple", label="images", **kw),
        "labels": lambda **kw: setting(SettingText, "labels", value="[]",
                                       label="labels (JSON list, one class name per image)", **FREE_TEXT, **kw),
        "arch": lambda **kw: setting(Choice, "arch", [(a.title, a.name) for a in catalog.ARCHITECTURES.values()],
                                     value=TeachSpec().arch, label="Network", **kw),
        "teach_status": lambda **kw: gr.Markdown(**kw),
        "comparison": lambda **kw: gr.Markdown(**kw),
        "teach_json": lambda **kw: gr.JSON(**kw),
    }


def _handlers(zoo: ModelZoo) -> dict[str, Any]:
    """The two endpoint functions (their docstrings are the API's documentation)."""
    d = LabSpec()

    def gradient_run(depth: float = d.depth, width: float = d.width, steps: float = d.steps, lr: float = d.lr,
                     request: gr.Request = None):
        """
        Train a plain deep CNN and the same CNN with skip connections side by side on MNIST; stream progress. The last
        update is {"depth", "plain": {"grad_norms": [first .. last conv layer], "loss": [one per step]},
        "residual": {...}}.

        Args:
            depth: number of conv layers (even, 4 to 110; 8, 20, 32 or 56 in the tab).
            width: channels per layer, 4 to 32.
            steps: training steps of 32 images, 10 to 400.
            lr: learning rate of SGD with Nesterov momentum 0.9.
        """
        yield from fair(gradient_events(depth, width, steps, lr), request)

    def teach_run(images: list[str] | None, labels: str, arch: str, request: gr.Request = None) -> Iterator[tuple]:
        """
        Fine-tune a copy of a pretrained MNIST network on the student's digits (with MNIST replay) and stream
        progress. The last update is {"yours_before", "yours_after", "mnist_before", "mnist_after", "held_out": n}:
        accuracy on the held-out third of the drawings and on 2,000 MNIST test images, before and after.

        Args:
            images: the drawings, as image files.
            labels: JSON list of class names ("0" .. "9"), one per image.
            arch: the network, one of the catalog's architectures.
        """
        check_room(request)
        yield from fair(teach_events(zoo, images, labels, arch, store_for(request)), request)

    return {"gradient_flow": gradient_run, "teach": teach_run}


def _wire(w: dict[str, Any], buttons: dict[str, Any], zoo: ModelZoo, api: bool) -> None:
    """Attach the two functions to ``buttons`` (``gradient``, ``teach``): named endpoints when ``api``, private
    events in the tab."""
    fns = _handlers(zoo)

    buttons["gradient"].click(fns["gradient_flow"], [w["depth"], w["width"], w["steps"], w["lr"]],
                              [w["gradient_status"], w["plot"], w["gradient_json"]], concurrency_limit=2,
                              concurrency_id="labs_train", show_progress="hidden", **published("gradient_flow", api))
    buttons["teach"].click(fns["teach"], [w["files"], w["labels"], w["arch"]],
                           [w["teach_status"], w["comparison"], w["teach_json"]], concurrency_limit=2,
                           concurrency_id="labs_train", show_progress="hidden", **published("teach", api))


def build_labs_api(zoo: ModelZoo) -> None:
    """``/gradient_flow`` and ``/teach`` on API-only components (call inside the app's endpoint page)."""
    w = {name: api_only(factory) for name, factory in _widgets().items()}
    _wire(w, {"gradient": api_only(gr.Button), "teach": api_only(gr.Button)}, zoo, api=True)


def _gradient_panel(make: dict[str, Any], w: dict[str, Any]) -> Any:
    """The vanishing-gradients lab's widgets; returns its start button. (interactive=True: Gradio infers it only
    for components built with the page, not in a gr.render.)"""
    gr.Markdown(GRADIENT_INTRO)
    with gr.Row():
        w["depth"] = make["depth"](elem_id="gradient-depth", interactive=True)
        w["width"] = make["width"](interactive=True)
        w["steps"] = make["steps"](elem_id="gradient-steps", interactive=True)
        w["lr"] = make["lr"](interactive=True)
    start = gr.Button("Train both", variant="primary", elem_id="gradient-start")
    w["gradient_status"] = make["gradient_status"](elem_id="gradient-status")
    w["plot"] = make["plot"](elem_id="gradient-plot")
    with gr.Accordion("The numbers as JSON (what /gradient_flow streams)", open=False):
        w["gradient_json"] = make["gradient_json"](elem_id="gradient-json")
    return start


def _save_drawing(value: Any, folder: str) -> str:
    """The drawing as a PNG in Gradio's cache ``folder`` (swept with the rest of it), named by its bytes."""
    return write_once(canvas_image(value), folder, "png")


def _collection(files: list[str], labels: list[str]) -> tuple:
    counts = {c: labels.count(c) for c in CLASSES if labels.count(c)}
    summary = (f"{len(files)} drawings: " + ", ".join(f"{c}: {n}" for c, n in counts.items())) if files else "No drawings yet."
    return files or None, json.dumps(labels), [(f, l) for f, l in zip(files, labels)], summary


def _teach_panel(make: dict[str, Any], w: dict[str, Any]) -> Any:
    """The teach lab's widgets and its private drawing events (drawings saved in Gradio's cache); returns its Teach
    button."""
    gr.Markdown(TEACH_INTRO)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            digit = gr.Radio(CLASSES, value=CLASSES[0], label="This drawing is a…", elem_id="teach-digit",
                             interactive=True)
            canvas = BoundedSketchpad(type="numpy", image_mode="RGBA", format="png", canvas_size=(280, 280),
                                      brush=gr.Brush(default_size=14, colors=["#000000"], color_mode="fixed"),
                                      layers=False, transforms=(), label="Draw", elem_id="teach-canvas",
                                      interactive=True)
            with gr.Row():
                add = gr.Button("Add", variant="secondary", elem_id="teach-add")
                clear = gr.Button("Remove all", elem_id="teach-clear")
            upload = LocalFiles(file_count="multiple", file_types=["image"], label="…or upload images of the selected digit",
                                elem_id="teach-upload", interactive=True)
        with gr.Column(scale=2):
            summary = gr.Markdown("No drawings yet.", elem_id="teach-summary")
            gallery = gr.Gallery(label="Your drawings", columns=10, height=220, object_fit="contain",
                                 elem_id="teach-gallery")
            with gr.Row():
                w["arch"] = make["arch"](elem_id="teach-arch", scale=3, interactive=True)
                go = gr.Button("Teach", variant="primary", elem_id="teach-go", scale=1)
            w["teach_status"] = make["teach_status"](elem_id="teach-status")
            w["comparison"] = make["comparison"](elem_id="teach-comparison")
            with gr.Accordion("What is sent and returned (the /teach API)", open=False):
                w["files"] = make["files"](elem_id="teach-files", interactive=True)
                w["labels"] = make["labels"](elem_id="teach-labels", interactive=True)
                w["teach_json"] = make["teach_json"](elem_id="teach-json")
    files, labels = w["files"], w["labels"]

    def add_drawing(value: Any, label: str, current: Any, current_labels: str):
        try:
            prepare(value, DATASET)  # refuse a blank canvas now, with the app's own message
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        files_now = paths(current) + [_save_drawing(value, files.GRADIO_CACHE)]
        return (*_collection(files_now, parse_labels(current_labels) + [label]), None)

    def add_uploads(uploaded: Any, label: str, current: Any, current_labels: str):
        new = paths(uploaded)
        return (*_collection(paths(current) + new, parse_labels(current_labels) + [label] * len(new)), None)

    collection = [files, labels, gallery, summary]
    add.click(add_drawing, [canvas, digit, files, labels], [*collection, canvas], api_visibility="private")
    upload.upload(add_uploads, [upload, digit, files, labels], [*collection, upload], api_visibility="private")
    clear.click(lambda: _collection([], []), None, collection, api_visibility="private")
    return go


def _panel(zoo: ModelZoo) -> None:
    """The tab's contents (built when the tab is first opened)."""
    make, w = _widgets(), {}
    with gr.Tabs():
        with gr.Tab("Vanishing gradients", id="labs-gradients"):
            gradient = _gradient_panel(make, w)
        with gr.Tab("Teach it your handwriting", id="labs-teach") as teach_tab:
            teach = _teach_panel(make, w)
        teach_tab.select(None, None, None, js=SELECT_TEACH_BRUSH_JS, api_visibility="private")
    _wire(w, {"gradient": gradient, "teach": teach}, zoo, api=False)


def build_labs_tab(zoo: ModelZoo) -> None:
    """Create the "Labs" tab (call inside the app's ``gr.Tabs()``); its contents are built when it is first opened.
    Its endpoints: :func:`build_labs_api`."""
    with gr.Tab("Labs", id="labs", elem_id="labs-tab") as tab:
        build_when_opened(tab, lambda: _panel(zoo))
