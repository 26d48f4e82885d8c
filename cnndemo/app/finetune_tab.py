"""The "Fine-tune" tab: train a network for a few epochs in the browser and watch it learn.

The main app calls :func:`build_finetune_tab` inside its ``gr.Tabs()`` block::

    with gr.Tabs():
        ...
        build_finetune_tab(models)   # models.get(arch, dataset) -> (model, meta); models.device

A run's model goes into this browser session's store (:mod:`cnndemo.app.sessions`, by the request's session).

The tab's contents are built when it is first opened; the streaming endpoint ``/finetune`` (and
``/finetune_stop``, ``/finetune_use``, ``/finetune_forget``) are :func:`build_finetune_api`'s API-only twins
on the app's endpoint page, calling the same functions. All training logic lives in :mod:`cnndemo.finetune` (which calls
:mod:`cnndemo.train`); this module maps its events onto components.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from cnndemo import catalog
from cnndemo.app.api import api_only, published
from cnndemo.app.deferred import build_when_opened
from cnndemo.app.finetune_plots import progress_html
from cnndemo.app.finetune_view import OUTPUT_NAMES, REGISTRY, finetune_events
from cnndemo.app.serving import visitor_key
from cnndemo.app.sessions import check_room, session_id, store_for
from cnndemo.app.setting_inputs import Choice, RadioChoice, SettingNumber, SettingSlider, setting
from cnndemo.finetune.spec import (
    BATCH_RANGE,
    EPOCHS_RANGE,
    LR_RANGE,
    START_LABELS,
    STARTS,
    SUBSET_RANGE,
    FineTuneSpec,
)

INTRO = """### Fine-tune a network, live
Pick a network and a starting point, press **Start**, and watch it learn: the loss falls, the held-out
accuracy rises, and the first layer's feature maps of one fixed image change epoch by epoch.
Your fine-tuned model is yours alone (other visitors never see it) and the pretrained models are never changed.
"""

def _widgets(d: FineTuneSpec) -> dict[str, Any]:
    """Factories of the endpoint's inputs (``INPUT_NAMES``) and outputs (``OUTPUT_NAMES``, then ``use_msg``): the
    tab and the API-only twins on the endpoint page are built from the same ones, so the API does not change."""
    return {
        # Each input checks its value as the API's argument of that name (one line naming it, before any work).
        "arch": lambda **kw: setting(Choice, "arch", [(a.label, a.name) for a in catalog.ARCHITECTURES.values()],
                                     value=d.arch, label="Network", **kw),
        "dataset": lambda **kw: setting(RadioChoice, "dataset",
                                        [(ds.title, ds.name) for ds in catalog.DATASETS.values()], value=d.dataset,
                                        label="Dataset", **kw),
        "start": lambda **kw: setting(RadioChoice, "start", [(START_LABELS[s], s) for s in STARTS], value=d.start,
                                      label="Start from", **kw),
        "epochs": lambda **kw: setting(SettingSlider, "epochs", *EPOCHS_RANGE, value=d.epochs, step=1, label="Epochs",
                                       **kw),
        "lr": lambda **kw: setting(SettingNumber, "lr", value=d.lr, label="Learning rate (peak)", minimum=LR_RANGE[0],
                                   maximum=LR_RANGE[1], step=1e-4, **kw),
        "batch_size": lambda **kw: setting(SettingSlider, "batch_size", *BATCH_RANGE, value=d.batch_size, step=16,
                                           label="Batch size", **kw),
        "optimizer": lambda **kw: setting(RadioChoice, "optimizer", [("SGD + momentum", "sgd"), ("Adam", "adam")],
                                          value=d.optimizer, label="Optimizer", **kw),
        "subset": lambda **kw: setting(SettingSlider, "subset", *SUBSET_RANGE, value=d.subset, step=1000,
                                       label="Training images (subset size)", **kw),
        "augment": lambda **kw: gr.Checkbox(value=d.augment, label="Augment (random shifts; flips for clothing)", **kw),
        "freeze": lambda **kw: gr.Checkbox(value=d.freeze, label="Freeze all but the last block", **kw),
        "status": lambda **kw: gr.Markdown("Choose the settings and press **Start**.", **kw),
        "progress": lambda **kw: gr.HTML(progress_html(0, "not started"), **kw),
        "curves": lambda **kw: gr.Plot(label="Loss and accuracy", show_label=False, format="png", **kw),
        "accuracies": lambda **kw: gr.Markdown(**kw),
        "features": lambda **kw: gr.Gallery(label="Feature maps of one held-out image (first conv layer), per epoch",
                                            columns=3, height=420, format="png", object_fit="contain", **kw),
        "comparison": lambda **kw: gr.Markdown(**kw),
        "confusion": lambda **kw: gr.Plot(label="Confusion matrices (held-out): before and after", show_label=False,
                                          format="png", **kw),
        "checkpoint": lambda **kw: gr.File(label="Checkpoint (.safetensors)", **kw),
        "filters": lambda **kw: gr.Gallery(label="Filters that learn: the first conv's kernels (red > 0 > blue), per epoch",
                                           columns=2, height=420, format="png", object_fit="contain", **kw),
        "metrics": lambda **kw: gr.JSON(**kw),
        "use_msg": lambda **kw: gr.Markdown(**kw),
    }


INPUT_NAMES = ("arch", "dataset", "start", "epochs", "lr", "batch_size", "optimizer", "subset", "augment", "freeze")


def _handlers(models: Any) -> dict[str, Any]:
    """The four endpoint functions (their docstrings are the API's documentation)."""

    def finetune(arch: str, dataset: str, start: str, epochs: float, lr: float, batch_size: float,
                 optimizer: str, subset: float, augment: bool, freeze: bool,
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
        spec = FineTuneSpec(arch=arch, dataset=dataset, start=start, epochs=epochs, lr=lr, batch_size=batch_size,
                            optimizer=optimizer, subset=subset, augment=bool(augment), freeze=bool(freeze))
        check_room(request)
        yield from finetune_events(spec, session_id(request), models, store=store_for(request),
                                   visitor=visitor_key(request))

    def stop(request: gr.Request) -> str:
        """Stop this session's fine-tune after the current step (the last completed epoch is kept)."""
        if REGISTRY.request_stop(session_id(request)):
            return "Stopping… (the weights of the last completed epoch are kept)"
        return "Nothing is training in this session."

    def use(request: gr.Request) -> str:
        """Let the other tabs use this session's latest fine-tuned model (this browser session only)."""
        outcome = store_for(request).use()
        if outcome is None:
            return "Nothing fine-tuned yet in this session (or it expired): press **Start** first."
        return (f"The other tabs now use your fine-tuned **{catalog.arch(outcome.spec.arch).label}** for "
                       f"{catalog.dataset(outcome.spec.dataset).title} ({100 * outcome.acc_after:.2f}% held-out), "
                       "in this browser session only.")

    def forget(request: gr.Request) -> str:
        """The other tabs use the pretrained models again."""
        removed = store_for(request).forget()
        return ("The other tabs use the pretrained models again." if removed
                       else "The other tabs already use the pretrained models.")

    return {"finetune": finetune, "finetune_stop": stop, "finetune_use": use, "finetune_forget": forget}


def _wire(w: dict[str, Any], buttons: dict[str, Any], models: Any, api: bool) -> None:
    """Attach the four functions to ``buttons`` (``start``, ``stop``, ``use``, ``forget``): named endpoints when
    ``api``, private events in the tab."""
    fns = _handlers(models)

    buttons["start"].click(fns["finetune"], [w[n] for n in INPUT_NAMES], [w[n] for n in OUTPUT_NAMES],
                           show_progress="hidden",
                           # Unlimited here: a run never waits in Gradio's queue, where Stop cannot reach it. The
                           # app's own bounded queue (MAX_QUEUED_RUNS) and one run per visitor limit the runs.
                           concurrency_limit=None, **published("finetune", api))
    buttons["stop"].click(fns["finetune_stop"], None, w["status"], concurrency_limit=None, show_progress="hidden",
                          **published("finetune_stop", api))
    buttons["use"].click(fns["finetune_use"], None, w["use_msg"], concurrency_limit=None,
                         **published("finetune_use", api))
    buttons["forget"].click(fns["finetune_forget"], None, w["use_msg"],
                            concurrency_limit=None, **published("finetune_forget", api))


def build_finetune_api(models: Any) -> None:
    """``/finetune``, ``/finetune_stop``, ``/finetune_use``, ``/finetune_forget`` on API-only components (call inside
    the app's endpoint page); the tab calls the same functions."""
    w = {name: api_only(factory) for name, factory in _widgets(FineTuneSpec()).items()}
    buttons = {name: api_only(gr.Button) for name in ("start", "stop", "use", "forget")}
    _wire(w, buttons, models, api=True)


def _panel(models: Any) -> None:
    """The tab's contents (built when the tab is first opened)."""
    make = _widgets(FineTuneSpec())
    w: dict[str, Any] = {}
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            # interactive=True: Gradio infers it only for components built with the page, not in a gr.render
            for name in ("arch", "dataset", "start"):
                w[name] = make[name](interactive=True)
            w["epochs"] = make["epochs"](elem_id="finetune-epochs", interactive=True)
            w["subset"] = make["subset"](elem_id="finetune-subset", interactive=True)
            with gr.Row():
                w["optimizer"], w["lr"] = make["optimizer"](interactive=True), make["lr"](interactive=True)
            w["batch_size"] = make["batch_size"](interactive=True)
            with gr.Row():
                w["augment"], w["freeze"] = make["augment"](interactive=True), make["freeze"](interactive=True)
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="finetune-start")
                stop = gr.Button("Stop", variant="stop", elem_id="finetune-stop")
        with gr.Column(scale=2):
            w["status"] = make["status"](elem_id="finetune-status")
            w["progress"] = make["progress"](elem_id="finetune-progress")
            w["curves"] = make["curves"](elem_id="finetune-curves")
            with gr.Row():
                w["accuracies"] = make["accuracies"](elem_id="finetune-accuracies")
                w["features"] = make["features"](elem_id="finetune-features")
                w["filters"] = make["filters"](elem_id="finetune-filters")
            w["comparison"] = make["comparison"](elem_id="finetune-comparison")
            w["confusion"] = make["confusion"](elem_id="finetune-confusion")
            with gr.Row():
                use = gr.Button("Use in the other tabs", elem_id="finetune-use")
                forget = gr.Button("Back to the pretrained model", elem_id="finetune-forget")
                w["checkpoint"] = make["checkpoint"](elem_id="finetune-checkpoint")
            w["use_msg"] = make["use_msg"](elem_id="finetune-use-msg")
            with gr.Accordion("Raw metrics (what the /finetune API streams)", open=False):
                w["metrics"] = make["metrics"](elem_id="finetune-metrics")
    _wire(w, {"start": start, "stop": stop, "use": use, "forget": forget}, models, api=False)


def build_finetune_tab(models: Any) -> None:
    """Create the "Fine-tune" tab (call inside the app's ``gr.Tabs()``); its contents are built when it is first
    opened (:func:`cnndemo.app.deferred.build_when_opened`). Its endpoints: :func:`build_finetune_api`."""
    with gr.Tab("Fine-tune", id="finetune", elem_id="finetune-tab") as tab:
        build_when_opened(tab, lambda: _panel(models))
