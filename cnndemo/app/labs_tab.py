"""The "Labs" tab: the vanishing-gradients lab and "teach it your handwriting".

The app calls :func:`build_labs_tab` inside its ``gr.Tabs()``::

    build_labs_tab(zoo, session)   # zoo: cnndemo.app.zoo.ModelZoo; session: gr.State holding SessionModels

It registers ``/gradient_flow`` (streams; every argument has a default) and ``/teach`` (streams; the taught
model goes into this browser session's ``SessionModels`` only, via ``put``). All computation is in
:mod:`cnndemo.labs` (``gradient_flow``, ``teach``); pictures in :mod:`cnndemo.app.labs_plots`. The bottleneck
calculator and the kernel grid live in the network tabs (:mod:`cnndemo.app.lab_panels`). Errors become
``gr.Error`` with the core's message.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from cnndemo import catalog
from cnndemo.app import labs_plots as render
from cnndemo.app.inputs import BoundedSketchpad, NoRemoteFiles
from cnndemo.app.serving import visitor_key
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.decode import canvas_image
from cnndemo.data.framing import prepare
from cnndemo.finetune.runs import RunRegistry
from cnndemo.finetune.spec import MAX_RUN_SECONDS
from cnndemo.finetune.store import SessionModels
from cnndemo.labs.gradient_flow import DEPTHS, STEPS_RANGE, WIDTH_RANGE, LabSpec, gradient_flow
from cnndemo.labs.teach import DATASET, TeachSpec, load_drawings, teach



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
RESULT_KEYS = ("yours_before", "yours_after", "mnist_before", "mnist_after", "held_out")  # /teach's last JSON
CLASSES = list(catalog.dataset(DATASET).classes)
UPDATE_INTERVAL_S = 0.75  # the streaming labs send a screen update at most this often
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


def _gradient_events(depth: float, width: float, steps: float, lr: float) -> Iterator[tuple]:
    try:
        spec = LabSpec(depth=int(depth), width=int(width), steps=int(steps), lr=float(lr)).validate()
    except (TypeError, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    last = 0.0
    for ev in gradient_flow(spec):
        if ev["type"] == "start":
            status = (f"Training two {ev['layers']}-conv-layer networks of width {spec.width} ({ev['params']:,} parameters "
                      f"each) on {ev['train_size']:,} MNIST images…")
            yield status, gr.skip(), {"phase": "start", **ev}
            continue
        now = time.monotonic()
        if ev["type"] == "step" and now - last < UPDATE_INTERVAL_S:
            continue
        last = now
        if ev["type"] == "step":
            p, r = ev["plain"], ev["residual"]
            status = (f"step {ev['step']}/{ev['steps']} · recent loss: plain {np.mean(p['loss'][-10:]):.3f}, "
                      f"residual {np.mean(r['loss'][-10:]):.3f}")
            yield status, render.gradient_figure(ev, spec.steps), {"phase": "training", "step": ev["step"],
                                                                    "steps": ev["steps"]}
        else:
            p, r = ev["plain"], ev["residual"]
            gap = lambda g: g[-1] / max(g[0], 1e-45)  # noqa: E731
            status = (f"**Done.** Held-out accuracy after {ev['steps']} steps: plain **{p['val_acc_after']:.1%}**, "
                      f"residual **{r['val_acc_after']:.1%}**. In the plain net the last layer's gradient is "
                      f"{gap(p['grad_norms']):.1e} times the first layer's; with skip connections "
                      f"{gap(r['grad_norms']):.1f} times.")
            result = {"depth": ev["depth"], **{k: {"grad_norms": ev[k]["grad_norms"], "loss": ev[k]["loss"]}
                                               for k in ("plain", "residual")}}
            yield status, render.gradient_figure(ev, spec.steps), result


# The labs train too: one lab run at a time per visitor (by IP, like fine-tuning), and the same wall-clock limit.
LAB_RUNS = RunRegistry(per_visitor=int(os.environ.get("CNNDEMO_RUNS_PER_VISITOR", "1")), what="lab run")


def fair(events: Iterator[tuple], request: gr.Request | None) -> Iterator[tuple]:
    """Relay a lab's stream under the per-visitor rule and the wall-clock limit (checked before any work)."""
    visitor = visitor_key(request) if request is not None else "local"
    key = f"lab:{getattr(request, 'session_hash', None) or visitor}"
    try:
        stop = LAB_RUNS.begin_run(key, visitor)
    except RuntimeError as exc:
        raise gr.Error(str(exc)) from None
    t0 = time.monotonic()
    try:
        for out in events:
            yield out
            if time.monotonic() - t0 > MAX_RUN_SECONDS:
                events.close()
                raise gr.Error(f"This lab run took longer than {MAX_RUN_SECONDS} s and was stopped: "
                               "choose fewer steps or a smaller network.")
    finally:
        LAB_RUNS.end_run(key, stop)


def _build_gradient_flow() -> None:
    d = LabSpec()
    gr.Markdown(GRADIENT_INTRO)
    with gr.Row():
        depth = gr.Radio(list(DEPTHS), value=d.depth, label="Depth (conv layers)", elem_id="gradient-depth")
        width = gr.Slider(*WIDTH_RANGE, value=d.width, step=1, label="Width (channels per layer)")
        steps = gr.Slider(*STEPS_RANGE, value=d.steps, step=10, label="Training steps (batch of 32)",
                          elem_id="gradient-steps")
        lr = gr.Number(value=d.lr, label="Learning rate (SGD)", minimum=1e-4, maximum=1.0)
    start = gr.Button("Train both", variant="primary", elem_id="gradient-start")
    status = gr.Markdown("Press **Train both**.", elem_id="gradient-status")
    plot = gr.Plot(show_label=False, format="png", elem_id="gradient-plot")
    with gr.Accordion("The numbers as JSON (what /gradient_flow streams)", open=False):
        result = gr.JSON(elem_id="gradient-json")

    def run(depth: float = d.depth, width: float = d.width, steps: float = d.steps, lr: float = d.lr,
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
        yield from fair(_gradient_events(depth, width, steps, lr), request)

    start.click(run, [depth, width, steps, lr], [status, plot, result], api_name="gradient_flow",
                concurrency_limit=2, concurrency_id="labs_train", show_progress="hidden")


def _parse_labels(labels: Any) -> list[str]:
    if isinstance(labels, list):
        return [str(v) for v in labels]
    text = str(labels or "").strip()
    if not text:
        return []
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        raise gr.Error('labels must be a JSON list of class names, one per image, e.g. ["3", "7", "7"].') from None
    if not isinstance(values, list):
        raise gr.Error('labels must be a JSON list of class names, one per image, e.g. ["3", "7", "7"].')
    return [str(v) for v in values]


def _paths(files: Any) -> list[str]:
    return [f if isinstance(f, str) else getattr(f, "name", None) or f.get("path") for f in (files or [])]


def _result_markdown(r: dict) -> str:
    pts = lambda a, b: f"{100 * (b - a):+.1f} points"  # noqa: E731
    return ("| | before | after | change |\n|---|---|---|---|\n"
            f"| your {r['held_out']} held-out drawings | {r['yours_before']:.0%} | **{r['yours_after']:.0%}** | "
            f"{pts(r['yours_before'], r['yours_after'])} |\n"
            f"| MNIST test images (forgetting check) | {r['mnist_before']:.2%} | **{r['mnist_after']:.2%}** | "
            f"{pts(r['mnist_before'], r['mnist_after'])} |\n\n"
            f"Trained on your other {r['trained_on']} drawings. The other tabs now use the taught model "
            "for MNIST in this browser session only.")


def _teach_events(zoo: ModelZoo, images: Any, labels: Any, arch: str, store: SessionModels | None) -> Iterator[tuple]:
    names = _parse_labels(labels)
    try:
        title = catalog.arch(str(arch)).title
        model, meta = zoo.get(arch, DATASET)  # always from the pretrained model: a clean before / after
        drawings = load_drawings(_paths(images), names, meta.get("classes") or CLASSES)
        events = teach(model, meta, drawings, TeachSpec(arch=arch))
        first = next(events)
    except (ValueError, LookupError) as exc:
        raise gr.Error(str(exc)) from None
    yield (f"Teaching {title} with {first['trained_on']} of your drawings "
           f"(+ MNIST replay; {first['held_out']} kept aside)…", "", {"phase": "start", **first})
    last = 0.0
    for ev in events:
        if ev["type"] == "done":
            if store is not None:
                store.put(arch, DATASET, ev["model"], ev["meta"])  # this browser session only
            r = ev["result"]
            yield (f"**Done:** your held-out drawings {r['yours_before']:.0%} → {r['yours_after']:.0%}.",
                   _result_markdown(r), {k: r[k] for k in RESULT_KEYS})
            return
        now = time.monotonic()
        if ev["type"] == "step" and now - last >= UPDATE_INTERVAL_S:
            last = now
            yield (f"step {ev['step']}/{ev['total_steps']} · loss {ev['loss']:.3f}", gr.skip(),
                   {"phase": "training", "step": ev["step"], "total_steps": ev["total_steps"]})
        elif ev["type"] == "epoch":
            yield (f"epoch {ev['epoch']}/{ev['epochs']} done · MNIST check {ev['mnist_check']:.1%}", gr.skip(),
                   {"phase": "epoch", **ev})


def _save_drawing(value: Any, folder: str) -> str:
    image = canvas_image(value)
    path = Path(tempfile.mkdtemp(dir=folder)) / "drawing.png"
    image.save(path)
    return str(path)


def _collection(files: list[str], labels: list[str]) -> tuple:
    counts = {c: labels.count(c) for c in CLASSES if labels.count(c)}
    summary = (f"{len(files)} drawings: " + ", ".join(f"{c}: {n}" for c, n in counts.items())) if files else "No drawings yet."
    return files or None, json.dumps(labels), [(f, l) for f, l in zip(files, labels)], summary


def _build_teach(zoo: ModelZoo, session: gr.State) -> None:
    folder = tempfile.mkdtemp(prefix="cnndemo-teach-")
    gr.Markdown(TEACH_INTRO)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            digit = gr.Radio(CLASSES, value=CLASSES[0], label="This drawing is a…",
                             elem_id="teach-digit")
            canvas = BoundedSketchpad(type="numpy", image_mode="RGBA", format="png", canvas_size=(280, 280),
                                  brush=gr.Brush(default_size=14, colors=["#000000"], color_mode="fixed"),
                                  layers=False, transforms=(), label="Draw", elem_id="teach-canvas")
            with gr.Row():
                add = gr.Button("Add", variant="secondary", elem_id="teach-add")
                clear = gr.Button("Remove all", elem_id="teach-clear")
            upload = LocalFiles(file_count="multiple", file_types=["image"], label="…or upload images of the selected digit",
                             elem_id="teach-upload")
        with gr.Column(scale=2):
            summary = gr.Markdown("No drawings yet.", elem_id="teach-summary")
            gallery = gr.Gallery(label="Your drawings", columns=10, height=220, object_fit="contain",
                                 elem_id="teach-gallery")
            with gr.Row():
                arch = gr.Dropdown([(a.title, a.name) for a in catalog.ARCHITECTURES.values()], value=TeachSpec().arch,
                                   label="Network", elem_id="teach-arch", scale=3)
                go = gr.Button("Teach", variant="primary", elem_id="teach-go", scale=1)
            status = gr.Markdown(elem_id="teach-status")
            comparison = gr.Markdown(elem_id="teach-comparison")
            with gr.Accordion("What is sent and returned (the /teach API)", open=False):
                files = LocalFiles(file_count="multiple", label="images", elem_id="teach-files")
                labels = gr.Textbox(value="[]", label="labels (JSON list, one class name per image)",
                                    elem_id="teach-labels")
                result = gr.JSON(elem_id="teach-json")

    def add_drawing(value: Any, label: str, current: Any, current_labels: str):
        try:
            prepare(value, DATASET)  # refuse a blank canvas now, with the app's own message
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        paths, names = _paths(current) + [_save_drawing(value, folder)], _parse_labels(current_labels) + [label]
        return (*_collection(paths, names), None)

    def add_uploads(uploaded: Any, label: str, current: Any, current_labels: str):
        new = _paths(uploaded)
        paths, names = _paths(current) + new, _parse_labels(current_labels) + [label] * len(new)
        return (*_collection(paths, names), None)

    collection = [files, labels, gallery, summary]
    add.click(add_drawing, [canvas, digit, files, labels], [*collection, canvas], api_visibility="private")
    upload.upload(add_uploads, [upload, digit, files, labels], [*collection, upload], api_visibility="private")
    clear.click(lambda: _collection([], []), None, collection, api_visibility="private")

    def run(images: list[str] | None, labels: str, arch: str, store: SessionModels | None,
            request: gr.Request = None) -> Iterator[tuple]:
        """
        Fine-tune a copy of a pretrained MNIST network on the student's digits (with MNIST replay) and stream
        progress. The last update is {"yours_before", "yours_after", "mnist_before", "mnist_after", "held_out": n}:
        accuracy on the held-out third of the drawings and on 2,000 MNIST test images, before and after.

        Args:
            images: the drawings, as image files.
            labels: JSON list of class names ("0" .. "9"), one per image.
            arch: the network, one of the catalog's architectures.
        """
        yield from fair(_teach_events(zoo, images, labels, arch, store), request)

    go.click(run, [files, labels, arch, session], [status, comparison, result],
             api_name="teach", concurrency_limit=2, concurrency_id="labs_train", show_progress="hidden")


def build_labs_tab(zoo: ModelZoo, session: gr.State) -> None:
    """Create the "Labs" tab (call inside the app's ``gr.Tabs()``); registers /gradient_flow and /teach."""
    with gr.Tab("Labs", id="labs", elem_id="labs-tab"):
        with gr.Tabs():
            with gr.Tab("Vanishing gradients", id="labs-gradients"):
                _build_gradient_flow()
            with gr.Tab("Teach it your handwriting", id="labs-teach") as teach_tab:
                _build_teach(zoo, session)
            teach_tab.select(None, None, None, js=SELECT_TEACH_BRUSH_JS, api_visibility="private")
