"""What the two Labs stream, as output values per event: the vanishing-gradients lab (status, gradient figure,
JSON) and "teach it your handwriting" (status, before/after table, JSON), each under the one-run-per-visitor rule
and the wall-clock limit (:func:`fair`). No components here (gradio for ``gr.Error`` and ``gr.skip()`` only):
:mod:`cnndemo.app.labs_tab` builds the tab and the endpoints over these functions.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
import numpy as np

from cnndemo import catalog
from cnndemo.app import labs_plots as render
from cnndemo.app.serving import visitor_key
from cnndemo.app.zoo import ModelZoo
from cnndemo.finetune.runs import RunRegistry
from cnndemo.finetune.spec import MAX_RUN_SECONDS
from cnndemo.finetune.store import SessionModels
from cnndemo.labs.gradient_flow import LabSpec, gradient_flow
from cnndemo.labs.teach import DATASET, TeachSpec, load_drawings, teach

RESULT_KEYS = ("yours_before", "yours_after", "mnist_before", "mnist_after", "held_out")  # /teach's last JSON
CLASSES = list(catalog.dataset(DATASET).classes)
UPDATE_INTERVAL_S = 0.75  # the streaming labs send a screen update at most this often
def gradient_events(depth: float, width: float, steps: float, lr: float) -> Iterator[tuple]:
    try:
        spec = LabSpec(depth=depth, width=width, steps=steps, lr=lr).validate()  # one line naming a bad setting
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


def parse_labels(labels: Any) -> list[str]:
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


def paths(files: Any) -> list[str]:
    return [f if isinstance(f, str) else getattr(f, "name", None) or f.get("path") for f in (files or [])]


def result_markdown(r: dict) -> str:
    pts = lambda a, b: f"{100 * (b - a):+.1f} points"  # noqa: E731
    return ("| | before | after | change |\n|---|---|---|---|\n"
            f"| your {r['held_out']} held-out drawings | {r['yours_before']:.0%} | **{r['yours_after']:.0%}** | "
            f"{pts(r['yours_before'], r['yours_after'])} |\n"
            f"| MNIST test images (forgetting check) | {r['mnist_before']:.2%} | **{r['mnist_after']:.2%}** | "
            f"{pts(r['mnist_before'], r['mnist_after'])} |\n\n"
            f"Trained on your other {r['trained_on']} drawings. The other tabs now use the taught model "
            "for MNIST in this browser session only.")


def teach_events(zoo: ModelZoo, images: Any, labels: Any, arch: str, store: SessionModels | None) -> Iterator[tuple]:
    names = parse_labels(labels)
    try:
        title = catalog.arch(str(arch)).title
        model, meta = zoo.get(arch, DATASET)  # always from the pretrained model: a clean before / after
        drawings = load_drawings(paths(images), names, meta.get("classes") or CLASSES)
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
                   result_markdown(r), {k: r[k] for k in RESULT_KEYS})
            return
        now = time.monotonic()
        if ev["type"] == "step" and now - last >= UPDATE_INTERVAL_S:
            last = now
            yield (f"step {ev['step']}/{ev['total_steps']} · loss {ev['loss']:.3f}", gr.skip(),
                   {"phase": "training", "step": ev["step"], "total_steps": ev["total_steps"]})
        elif ev["type"] == "epoch":
            yield (f"epoch {ev['epoch']}/{ev['epochs']} done · MNIST check {ev['mnist_check']:.1%}", gr.skip(),
                   {"phase": "epoch", **ev})
