"""The "Fine-tune" tab: train a network for a few epochs in the browser and watch it learn.

The main app calls :func:`build_finetune_tab` inside its ``gr.Tabs()`` block::

    session = gr.State(SessionModels(), time_to_live=..., delete_callback=SessionModels.release)
    with gr.Tabs():
        ...
        build_finetune_tab(session, models)   # models.get(arch, dataset) -> (model, meta); models.device

It registers the streaming endpoint ``/finetune`` (and ``/finetune_stop``, ``/finetune_use``,
``/finetune_forget``). All training logic lives in :mod:`cnndemo.finetune` (which calls
:mod:`cnndemo.train`); this module maps its events onto components.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
import numpy as np

from cnndemo import catalog
from cnndemo.finetune.runs import DeviceQueue, RunRegistry
from cnndemo.finetune.session import run_finetune
from cnndemo.finetune.spec import BATCH_RANGE, EPOCHS_RANGE, START_LABELS, STARTS, SUBSET_RANGE, FineTuneSpec
from cnndemo.finetune.store import Outcome, SessionModels
from cnndemo.app.finetune_plots import Curves, confusion_figure, curves_figure, format_seconds, progress_html
from cnndemo.inspection.render import channel_grid, input_image
from cnndemo.models import short_name

# Process-wide: one queue per device, one registry of running fine-tunes (the models live in each session's store).
REGISTRY = RunRegistry()
QUEUE = DeviceQueue()
CURVE_INTERVAL_S = 5.0  # redraw the curves at most this often while an epoch runs (and at every epoch end)
PROGRESS_INTERVAL_S = 0.5  # send progress updates at most twice a second (the loop reports more often)

OUTPUT_NAMES = ("status", "progress", "curves", "accuracies", "features", "comparison", "confusion", "checkpoint",
                "metrics")

INTRO = """### Fine-tune a network, live
Pick a network and a starting point, press **Start**, and watch it learn: the loss falls, the held-out
accuracy rises, and the first layer's feature maps of one fixed image change epoch by epoch.
Your fine-tuned model is yours alone (other visitors never see it) and the pretrained models are never changed.
"""


def _session(request: gr.Request | None) -> str:
    """The browser session's id (``"local"`` when called without a request)."""
    return getattr(request, "session_hash", None) or "local"


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
            return self._finished(ev["outcome"])
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
                         checkpoint=None,
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
                         metrics={"phase": "epoch", "epoch": ev["epoch"], "val_acc": ev["val_acc"],
                                  "val_loss": ev["val_loss"], "train_loss": ev["train_loss"],
                                  "points": self.curves.points})

    def _finished(self, o: Outcome) -> tuple:
        delta = 100 * (o.acc_after - o.acc_before)
        test = o.meta.get("test_accuracy")
        lines = [f"### Before → after: {100 * o.acc_before:.2f}% → **{100 * o.acc_after:.2f}%** ({delta:+.2f} points)",
                 f"on the same {self.first.get('val_size', '?')} held-out images;"
                 + (f" test set (10,000 images): **{100 * test:.2f}%**." if test is not None else "")]
        if o.stopped:
            lines.append(f"Stopped by you: kept the weights of the last completed epoch ({o.epochs_done}"
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
                   "points": self.curves.points, "key": "/".join(o.key)}
        return self._out(status=status, progress=progress_html(1.0, f"{verb.lower()} · {format_seconds(o.seconds)}"),
                         curves=curves_figure(self.curves), accuracies=self._accuracy_table(),
                         comparison="\n\n".join(lines),
                         confusion=confusion_figure(o.confusion_before, o.confusion_after, self.classes,
                                                    o.acc_before, o.acc_after),
                         checkpoint=o.checkpoint, metrics=metrics)


def finetune_events(spec: FineTuneSpec, session: str, models: Any, curve_interval: float = CURVE_INTERVAL_S,
                    registry: RunRegistry = REGISTRY, queue: DeviceQueue = QUEUE,
                    store: SessionModels | None = None) -> Iterator[tuple]:
    """The tab's handler body: run a fine-tune for ``session`` and yield output tuples (see ``OUTPUT_NAMES``)."""
    view = TabView(spec, curve_interval)
    for event in run_finetune(spec, session, models.get, registry, queue, device=getattr(models, "device", None),
                              store=store):
        out = view.update(event)
        if out is not None:
            yield out


def build_finetune_tab(session_state: gr.State, models: Any) -> None:
    """Create the "Fine-tune" tab (call inside the app's ``gr.Tabs()``); registers ``/finetune`` and friends."""
    d = FineTuneSpec()
    with gr.Tab("Fine-tune", id="finetune", elem_id="finetune-tab"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                arch = gr.Dropdown([(a.label, a.name) for a in catalog.ARCHITECTURES.values()], value=d.arch,
                                   label="Network")
                dataset = gr.Radio([(ds.title, ds.name) for ds in catalog.DATASETS.values()], value=d.dataset,
                                   label="Dataset")
                start = gr.Radio([(START_LABELS[s], s) for s in STARTS], value=d.start, label="Start from")
                epochs = gr.Slider(*EPOCHS_RANGE, value=d.epochs, step=1, label="Epochs", elem_id="finetune-epochs")
                subset = gr.Slider(*SUBSET_RANGE, value=d.subset, step=1000, label="Training images (subset size)",
                                   elem_id="finetune-subset")
                with gr.Row():
                    optimizer = gr.Radio([("SGD + momentum", "sgd"), ("Adam", "adam")], value=d.optimizer,
                                         label="Optimizer")
                    lr = gr.Number(value=d.lr, label="Learning rate (peak)", minimum=1e-5, maximum=1.0, step=1e-4)
                batch_size = gr.Slider(*BATCH_RANGE, value=d.batch_size, step=16, label="Batch size")
                with gr.Row():
                    augment = gr.Checkbox(value=d.augment, label="Augment (random shifts; flips for clothing)")
                    freeze = gr.Checkbox(value=d.freeze, label="Freeze all but the last block")
                with gr.Row():
                    start_btn = gr.Button("Start", variant="primary", elem_id="finetune-start")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="finetune-stop")
            with gr.Column(scale=2):
                status = gr.Markdown("Choose the settings and press **Start**.", elem_id="finetune-status")
                progress = gr.HTML(progress_html(0, "not started"), elem_id="finetune-progress")
                curves = gr.Plot(label="Loss and accuracy", show_label=False, format="png", elem_id="finetune-curves")
                with gr.Row():
                    accuracies = gr.Markdown(elem_id="finetune-accuracies")
                    features = gr.Gallery(label="Feature maps of one held-out image (first conv layer), per epoch",
                                          columns=3, height=420, format="png", object_fit="contain",
                                          elem_id="finetune-features")
                comparison = gr.Markdown(elem_id="finetune-comparison")
                confusion = gr.Plot(label="Confusion matrices (held-out): before and after", show_label=False, format="png",
                                    elem_id="finetune-confusion")
                with gr.Row():
                    use_btn = gr.Button("Use in the other tabs", elem_id="finetune-use")
                    forget_btn = gr.Button("Back to the pretrained model", elem_id="finetune-forget")
                    checkpoint = gr.File(label="Checkpoint (.safetensors)", elem_id="finetune-checkpoint")
                use_msg = gr.Markdown(elem_id="finetune-use-msg")
                with gr.Accordion("Raw metrics (what the /finetune API streams)", open=False):
                    metrics = gr.JSON(elem_id="finetune-metrics")

        def finetune(arch: str, dataset: str, start: str, epochs: float, lr: float, batch_size: float,
                     optimizer: str, subset: float, augment: bool, freeze: bool, store: SessionModels | None,
                     request: gr.Request) -> Iterator[tuple]:
            """
            Fine-tune a network for a few epochs and stream its progress; the last update has the final metrics
            (JSON, phase "done") and the checkpoint file.

            Args:
                arch: vgg11, googlenet, resnet18, inception_net or residual_net.
                dataset: mnist or fashion_mnist.
                start: pretrained, scratch, or transfer (the other dataset's checkpoint with a fresh head).
                epochs: 1 to 10.
                lr: peak learning rate of the one-cycle schedule (1e-5 to 1).
                batch_size: 16 to 512.
                optimizer: sgd (Nesterov momentum 0.9) or adam (AdamW).
                subset: number of training images, 1000 to 55000.
                augment: random shifts of up to 2 pixels (and flips for fashion_mnist).
                freeze: train only the last block and the classifier head.
            """
            spec = FineTuneSpec(arch=arch, dataset=dataset, start=start, epochs=int(epochs), lr=float(lr or 0),
                                batch_size=int(batch_size), optimizer=optimizer, subset=int(subset),
                                augment=bool(augment), freeze=bool(freeze))
            yield from finetune_events(spec, _session(request), models, store=store)

        def stop(request: gr.Request) -> str:
            """Stop this session's fine-tune after the current step (the last completed epoch is kept)."""
            if REGISTRY.request_stop(_session(request)):
                return "Stopping… (the weights of the last completed epoch are kept)"
            return "Nothing is training in this session."

        def use(store: SessionModels | None) -> tuple[SessionModels | None, str]:
            """Let the other tabs use this session's latest fine-tuned model (this browser session only)."""
            outcome = store.use() if store is not None else None
            if outcome is None:
                return store, "Nothing fine-tuned yet in this session (or it expired): press **Start** first."
            return store, (f"The other tabs now use your fine-tuned **{catalog.arch(outcome.spec.arch).label}** for "
                           f"{catalog.dataset(outcome.spec.dataset).title} ({100 * outcome.acc_after:.2f}% held-out), "
                           "in this browser session only.")

        def forget(store: SessionModels | None) -> tuple[SessionModels | None, str]:
            """The other tabs use the pretrained models again."""
            removed = store.forget() if store is not None else 0
            return store, ("The other tabs use the pretrained models again." if removed
                           else "The other tabs already use the pretrained models.")

        outputs = [status, progress, curves, accuracies, features, comparison, confusion, checkpoint, metrics]
        start_btn.click(finetune, [arch, dataset, start, epochs, lr, batch_size, optimizer, subset, augment, freeze,
                                   session_state],
                        outputs, api_name="finetune", concurrency_limit=8, concurrency_id="finetune",
                        show_progress="hidden")
        stop_btn.click(stop, None, status, api_name="finetune_stop", concurrency_limit=None, show_progress="hidden")
        use_btn.click(use, session_state, [session_state, use_msg], api_name="finetune_use", concurrency_limit=None)
        forget_btn.click(forget, session_state, [session_state, use_msg], api_name="finetune_forget",
                         concurrency_limit=None)
