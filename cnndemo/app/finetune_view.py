"""What the Fine-tune tab shows while a run trains: one tuple of output values per event of
:func:`cnndemo.finetune.session.run_finetune` (status, progress, curves, per-epoch feature maps and filters, the
before/after comparison, the checkpoint, the raw metrics), throttled so the browser is not flooded.

No components here (gradio only for ``gr.skip()``, "leave this output as it is"): :mod:`cnndemo.app.finetune_tab` builds the tab and its endpoints over :func:`finetune_events`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
import numpy as np

from cnndemo import catalog
from cnndemo.app.finetune_plots import (
    Curves,
    confusion_figure,
    curves_figure,
    format_seconds,
    progress_html,
)
from cnndemo.finetune.runs import DeviceQueue, RunRegistry
from cnndemo.finetune.session import run_finetune
from cnndemo.finetune.spec import MAX_QUEUED_RUNS, FineTuneSpec
from cnndemo.finetune.store import Outcome, SessionModels
from cnndemo.inspection.render import channel_grid, input_image, kernel_grid
from cnndemo.models import short_name

# Process-wide: one bounded queue per device, one registry of running fine-tunes (the models live in each session's
# store). One run per visitor (by IP, see serving.visitor_key); CNNDEMO_RUNS_PER_VISITOR raises it (the load test
# runs two fine-tunes from one loopback address).
REGISTRY = RunRegistry(per_visitor=int(os.environ.get("CNNDEMO_RUNS_PER_VISITOR", "1")))
QUEUE = DeviceQueue(max_runs=MAX_QUEUED_RUNS)
CURVE_INTERVAL_S = 5.0  # redraw the curves at most this often while an epoch runs (and at every epoch end)
PROGRESS_INTERVAL_S = 0.5  # send progress updates at most twice a second (the loop reports more often)

OUTPUT_NAMES = ("status", "progress", "curves", "accuracies", "features", "comparison", "confusion", "checkpoint",
                "filters", "metrics")  # "filters" sits before "metrics" so the API's earlier indices stay put

class TabView:
    """Turns the events of :func:`cnndemo.finetune.run_finetune` into the tab's output values.

    ``update`` returns one value per name in ``OUTPUT_NAMES`` (``gr.skip()`` where nothing changed),
    or None when the event needs no screen update.
    """

    def __init__(self, spec: FineTuneSpec, curve_interval: float = CURVE_INTERVAL_S):
        self.spec = spec
        self.classes = list(catalog.DATASETS[spec.dataset].classes if spec.dataset in catalog.DATASETS else range(10))
        self.curves = Curves(epochs=spec.epochs)
        self.curve_interval = curve_interval
        self.last_curve = 0.0
        self.last_progress = 0.0
        self.gallery: list[tuple[np.ndarray, str]] = []
        self.kernels: list[tuple[Any, str]] = []  # the first conv's kernel grid before training and after each epoch
        self.epoch_accs: list[tuple[int, float]] = []
        self.total_steps = 1
        self.first: dict[str, Any] = {}

    def _out(self, **values: Any) -> tuple:
        return tuple(values.get(name, gr.skip()) for name in OUTPUT_NAMES)

    def _accuracy_table(self) -> str:
        rows = [f"| {'before training' if e == 0 else f'after epoch {e}'} | {100 * a:.2f}% |" for e, a in self.epoch_accs]
        n = self.first.get("val_size", "?")
        return f"**Held-out accuracy** ({n} images never trained on)\n\n| | accuracy |\n|---|---|\n" + "\n".join(rows)

    def _features(self, maps: np.ndarray, caption: str) -> list:
        self.gallery.append((channel_grid(maps, max_channels=16, cols=4, cell=56, strongest=False), caption))
        return list(self.gallery)

    def _filters(self, kernels: np.ndarray, caption: str) -> list:
        self.kernels.append((kernel_grid(kernels, cell=40, cols=8), caption))
        return list(self.kernels)

    def _curves(self, force: bool) -> Any:
        now = time.monotonic()
        if not force and now - self.last_curve < self.curve_interval:
            return gr.skip()
        self.last_curve = now
        return curves_figure(self.curves)

    def update(self, ev: dict) -> tuple | None:
        kind = ev["type"]
        if kind == "waiting":
            return self._out(status=ev["message"], metrics={"phase": "waiting", "ahead": ev["ahead"]},
                             progress=progress_html(0, ev["message"]))
        if kind == "status":
            return self._out(status=ev["message"], metrics={"phase": "preparing", "message": ev["message"]})
        if kind == "error":
            return self._out(status=f"**Could not fine-tune:** {ev['message']}", metrics={"phase": "error", "message": ev["message"]},
                             progress=progress_html(0, "not running"))
        if kind == "start":
            return self._start(ev)
        if kind == "step":
            return self._step(ev)
        if kind == "epoch":
            return self._epoch(ev)
        if kind == "done":
            return None  # the "finished" event right after it carries everything
        if kind == "finished":
            return self._finished(ev["outcome"], ev.get("timed_out", False))
        return None

    def _start(self, ev: dict) -> tuple:
        self.first = ev
        self.total_steps = ev["total_steps"]
        self.curves.add_epoch(0, ev["acc_before"])
        self.epoch_accs.append((0, ev["acc_before"]))
        label = self.classes[ev["example_label"]]
        example = input_image(ev["example"].astype(np.float32) / 255, factor=4)
        self.gallery.append((example, f"the fixed example: “{label}”"))
        features = self._features(ev["features"], f"{short_name(ev['feature_layer'])}: before training")
        trainable = f"{ev['trainable_params']:,} of {ev['params']:,}" if ev["trainable_params"] != ev["params"] \
            else f"all {ev['params']:,}"
        status = (f"Training **{catalog.arch(self.spec.arch).label}** on {catalog.dataset(self.spec.dataset).title} "
                  f"({ev['train_size']:,} images, {trainable} parameters) on {ev['device']}.")
        return self._out(status=status, progress=progress_html(0, "starting…"), curves=self._curves(True),
                         accuracies=self._accuracy_table(), features=features, comparison="", confusion=None,
                         checkpoint=None, filters=self._filters(ev["kernels"], "before training"),
                         metrics={"phase": "start", "acc_before": ev["acc_before"], "train_size": ev["train_size"],
                                  "val_size": ev["val_size"], "total_steps": ev["total_steps"], "device": ev["device"]})

    def _step(self, ev: dict) -> tuple | None:
        self.curves.add_step(ev["epoch"], ev["step"], ev["steps_per_epoch"], ev["loss"], ev["train_acc"])
        now = time.monotonic()
        if now - self.last_progress < PROGRESS_INTERVAL_S and ev["step"] != ev["steps_per_epoch"]:
            return None  # the point is kept and drawn with the next update
        self.last_progress = now
        frac = ev["global_step"] / max(ev["total_steps"], 1)
        text = (f"epoch {ev['epoch']}/{self.spec.epochs} · step {ev['step']}/{ev['steps_per_epoch']} · "
                f"loss {ev['loss']:.3f} · {ev['images_per_sec']:,.0f} images/s · ETA {format_seconds(ev['eta'])}")
        metrics = {"phase": "training", "epoch": ev["epoch"], "step": ev["step"], "steps_per_epoch": ev["steps_per_epoch"],
                   "progress": round(frac, 4), "loss": ev["loss"], "train_acc": ev["train_acc"],
                   "images_per_sec": ev["images_per_sec"], "eta_s": ev["eta"], "points": self.curves.points}
        return self._out(progress=progress_html(frac, text), curves=self._curves(False), metrics=metrics)

    def _epoch(self, ev: dict) -> tuple:
        self.curves.add_epoch(ev["epoch"], ev["val_acc"], ev["val_loss"])
        self.epoch_accs.append((ev["epoch"], ev["val_acc"]))
        features = self._features(ev["features"], f"after epoch {ev['epoch']}")
        return self._out(curves=self._curves(True), accuracies=self._accuracy_table(), features=features,
                         filters=self._filters(ev["kernels"], f"after epoch {ev['epoch']}"),
                         metrics={"phase": "epoch", "epoch": ev["epoch"], "val_acc": ev["val_acc"],
                                  "val_loss": ev["val_loss"], "train_loss": ev["train_loss"],
                                  "points": self.curves.points})

    def _finished(self, o: Outcome, timed_out: bool = False) -> tuple:
        delta = 100 * (o.acc_after - o.acc_before)
        test = o.meta.get("test_accuracy")
        lines = [f"### Before → after: {100 * o.acc_before:.2f}% → **{100 * o.acc_after:.2f}%** ({delta:+.2f} points)",
                 f"on the same {self.first.get('val_size', '?')} held-out images;"
                 + (f" test set (10,000 images): **{100 * test:.2f}%**." if test is not None else "")]
        if o.stopped:
            lines.append(f"{'Stopped at the time limit' if timed_out else 'Stopped by you'}: kept the weights of the last completed epoch ({o.epochs_done}"
                         f"{' = the starting weights' if o.epochs_done == 0 else ''}).")
        lines.append(f"{o.epochs_done} epoch(s) in {format_seconds(o.seconds)} at {o.images_per_sec:,.0f} images/s. "
                     "Press **Use in the other tabs** to classify and inspect with this model (this browser session only), "
                     "or download the checkpoint (load it with `cnndemo.train.checkpoints.load_checkpoint`).")
        verb = "Stopped" if o.stopped else "Done"
        status = (f"**{verb}:** {catalog.arch(o.spec.arch).label} on {catalog.dataset(o.spec.dataset).title}, "
                  f"{100 * o.acc_after:.2f}% held-out.")
        metrics = {"phase": "done", "acc_before": o.acc_before, "acc_after": o.acc_after, "test_accuracy": test,
                   "epochs_done": o.epochs_done, "stopped": o.stopped, "seconds": round(o.seconds, 2),
                   "images_per_sec": round(o.images_per_sec, 1), "confusion_before": o.confusion_before.tolist(),
                   "confusion_after": o.confusion_after.tolist(), "history": o.meta.get("history", []),
                   "points": self.curves.points, "key": "/".join(o.key), "timed_out": timed_out}
        return self._out(status=status, progress=progress_html(1.0, f"{verb.lower()} · {format_seconds(o.seconds)}"),
                         curves=curves_figure(self.curves), accuracies=self._accuracy_table(),
                         comparison="\n\n".join(lines),
                         confusion=confusion_figure(o.confusion_before, o.confusion_after, self.classes,
                                                    o.acc_before, o.acc_after),
                         checkpoint=o.checkpoint, metrics=metrics)


def finetune_events(spec: FineTuneSpec, session: str, models: Any, curve_interval: float = CURVE_INTERVAL_S,
                    registry: RunRegistry = REGISTRY, queue: DeviceQueue = QUEUE,
                    store: SessionModels | None = None, visitor: str | None = None) -> Iterator[tuple]:
    """The tab's handler body: run a fine-tune for ``session`` (by ``visitor``) and yield output tuples
    (see ``OUTPUT_NAMES``)."""
    view = TabView(spec, curve_interval)
    events = run_finetune(spec, session, models.get, registry, queue, device=getattr(models, "device", None),
                          store=store, visitor=visitor)
    try:
        for event in events:
            out = view.update(event)
            if out is not None:
                yield out
    finally:
        events.close()  # Gradio closes this generator when the visitor disconnects: stop the run at once
