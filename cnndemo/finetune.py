"""Live fine-tuning: a thin streaming layer over the shared training loop ``cnndemo.train.train_iter``.

Three layers, no gradio:

1. :class:`FineTuneSpec`: what the user chose (network, dataset, starting point, recipe knobs).
2. :func:`train_stream`, the *device side*: builds the model from a CPU state dict, trains it
   with ``train_iter(keep="last")`` and yields plain-data events (numbers, NumPy arrays, CPU
   tensors). Under Hugging Face ZeroGPU it runs as ``spaces.GPU(duration=...)`` (see
   :mod:`cnndemo.zerogpu`); locally it is called as is.
3. :func:`run_finetune`, the *session side*: waits its turn in the per-device queue, makes
   sure the data is there, copies the starting weights (the pretrained models are never
   touched), relays the device events and finally rebuilds the model, writes the checkpoint
   (``save_checkpoint``, same format as ``checkpoints/``) and records it for the session.

Events are dicts with a ``"type"``: ``waiting``, ``status``, ``start``, ``step``, ``epoch``,
``done`` (device side) and ``finished`` / ``error`` (session side, always the last one).
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnndemo import zerogpu
from cnndemo.checkpoints import save_checkpoint
from cnndemo.data import DATASET_TITLES, MEAN_STD, DataMissingError, PREPARE_HINT, prepare
from cnndemo.device import device_name, pick_device
from cnndemo.finetune_sessions import DeviceQueue, SessionRegistry, StopSignal
from cnndemo.models import ARCHS, DEMO_CONFIGS, ImageClassifier, build_model, count_params, visual_layers
from cnndemo.train import (Epoch, Recipe, Result, Step, TensorData, _autocast, checkpoint_meta, evaluate,
                           load_splits, load_test, to_float, train_iter)

STARTS = ("pretrained", "scratch", "transfer")
START_LABELS = {
    "pretrained": "pretrained checkpoint (same dataset)",
    "scratch": "from scratch (random weights)",
    "transfer": "other dataset's checkpoint, fresh classifier head",
}
OPTIMIZERS = ("sgd", "adam")
EPOCHS_RANGE = (1, 10)
SUBSET_RANGE = (1000, 55000)  # the 60,000 training images minus the 5,000 held out
BATCH_RANGE = (16, 512)
LR_RANGE = (1e-5, 1.0)
FEATURE_CHANNELS = 16  # channels shown of the fixed example's feature maps


@dataclass
class FineTuneSpec:
    """One fine-tuning job, as chosen in the tab or passed to ``/finetune``.

    The defaults finish in well under 30 s on a 2-core CPU (see ``BENCHMARKS.md``)
    and show a network learning from scratch: held-out accuracy goes from ~10% to ~95%.
    """

    arch: str = "residual_net"
    dataset: str = "mnist"
    start: str = "scratch"  # one of STARTS
    epochs: int = 2
    lr: float = 3e-3
    batch_size: int = 64
    optimizer: str = "adam"  # "sgd" (Nesterov momentum 0.9) or "adam" (AdamW)
    subset: int = 5000
    augment: bool = False
    freeze: bool = False  # train only the last block and the classifier head
    seed: int = 0
    eval_size: int = 2000  # held-out images used for before/after accuracy (the first of the 5,000)
    test_eval: bool = True  # also measure the test-set accuracy at the end (stored in the checkpoint)

    def validate(self) -> "FineTuneSpec":
        """Return a normalised copy, or raise ``ValueError`` with a message a student can act on."""
        if self.arch not in ARCHS:
            raise ValueError(f"Unknown network {self.arch!r}: choose one of {', '.join(ARCHS)}.")
        if self.dataset not in MEAN_STD:
            raise ValueError(f"Unknown dataset {self.dataset!r}: 'mnist' or 'fashion_mnist'.")
        if self.start not in STARTS:
            raise ValueError(f"Unknown start {self.start!r}: one of {', '.join(STARTS)}.")
        optimizer = str(self.optimizer).lower()
        if optimizer.startswith("sgd"):
            optimizer = "sgd"
        elif optimizer.startswith("adam"):
            optimizer = "adam"
        else:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}: 'sgd' or 'adam'.")
        checks = [("epochs", int(self.epochs), EPOCHS_RANGE), ("subset", int(self.subset), SUBSET_RANGE),
                  ("batch_size", int(self.batch_size), BATCH_RANGE), ("lr", float(self.lr), LR_RANGE)]
        for name, value, (lo, hi) in checks:
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo:g} and {hi:g} (got {value:g}).")
        if not 100 <= int(self.eval_size) <= 5000:
            raise ValueError("eval_size must be between 100 and 5000.")
        return replace(self, optimizer=optimizer, epochs=int(self.epochs), subset=int(self.subset),
                       batch_size=int(self.batch_size), lr=float(self.lr), augment=bool(self.augment),
                       freeze=bool(self.freeze), eval_size=int(self.eval_size))

    def recipe(self) -> Recipe:
        """The ``cnndemo.train.Recipe`` of this job (one-cycle schedule, like the checkpoints)."""
        return Recipe(optimizer=self.optimizer, lr=self.lr, weight_decay=5e-4 if self.optimizer == "sgd" else 1e-4,
                      epochs=self.epochs, batch_size=self.batch_size, augment=self.augment, seed=self.seed,
                      subset=self.subset)

    def source_dataset(self) -> str | None:
        """The dataset of the starting checkpoint (None = random weights)."""
        if self.start == "pretrained":
            return self.dataset
        if self.start == "transfer":
            return "fashion_mnist" if self.dataset == "mnist" else "mnist"
        return None


@dataclass
class StartPoint:
    """The starting weights as a CPU copy, plus what is needed to rebuild the model anywhere."""

    state: dict[str, torch.Tensor] | None  # None = random initialisation
    config: dict
    normalization: tuple[float, float]
    description: str
    fresh_head: bool = False


@dataclass
class Outcome:
    """A finished run, kept per session: the fine-tuned model and its checkpoint."""

    spec: FineTuneSpec
    model: ImageClassifier  # on the app's device, eval mode
    meta: dict
    checkpoint: str  # path of the .safetensors file
    acc_before: float
    acc_after: float
    confusion_before: np.ndarray
    confusion_after: np.ndarray
    stopped: bool
    epochs_done: int
    seconds: float
    images_per_sec: float

    @property
    def key(self) -> str:
        """The ``session_models`` key the other tabs look up: ``"arch/dataset"``."""
        return f"{self.spec.arch}/{self.spec.dataset}"


PretrainedLookup = Callable[[str, str], tuple[nn.Module, dict]]


def copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model``'s weights and buffers that shares no storage with it."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def start_point(spec: FineTuneSpec, pretrained: PretrainedLookup) -> StartPoint:
    """The starting weights of ``spec`` (copied from the pretrained store; nothing is modified)."""
    source = spec.source_dataset()
    if source is None:
        mean, std = MEAN_STD[spec.dataset]
        return StartPoint(None, DEMO_CONFIGS[spec.arch], (mean, std), "random initialisation")
    try:
        model, meta = pretrained(spec.arch, source)
    except Exception as exc:  # noqa: BLE001 - a missing checkpoint is a normal situation, not a crash
        raise FriendlyError(
            f"No pretrained {spec.arch} for {DATASET_TITLES[source]} is available ({_one_line(str(exc), 160)}). "
            f"Choose \"from scratch\", or train it: `python -m cnndemo.train --arch {spec.arch} --dataset {source}`."
        ) from None
    norm = meta.get("normalization") or {}
    mean, std = norm.get("mean", MEAN_STD[source][0]), norm.get("std", MEAN_STD[source][1])
    desc = f"pretrained {spec.arch} on {DATASET_TITLES[source]}"
    if spec.start == "transfer":
        desc += " with a fresh classifier head"
    return StartPoint(copy_state(model), meta.get("config") or DEMO_CONFIGS[spec.arch], (mean, std), desc,
                      fresh_head=spec.start == "transfer")


def head_module(model: ImageClassifier) -> nn.Linear:
    """The final classifier layer (reset for cross-dataset transfer)."""
    net = model.net
    if hasattr(net, "classifier"):
        return net.classifier[-1]  # VGG
    if hasattr(net, "head"):
        return net.head[-1]  # GoogLeNet
    return net.fc  # ResNet and the two course nets


def last_block(model: ImageClassifier) -> list[nn.Module]:
    """The modules trained when "freeze all but the last block" is on: the last block and the head."""
    net = model.net
    if hasattr(net, "classifier"):  # VGG: the last conv block and the fully connected classifier
        return [net.features[-1], net.classifier]
    if hasattr(net, "head"):  # GoogLeNet: inception 5b and the head
        return [net.inception[-1], net.head]
    if hasattr(net, "layer4"):  # ResNet-18: stage 4 and fc
        return [net.layer4, net.fc]
    if hasattr(net, "incep2"):  # course Inception net
        return [net.incep2, net.fc]
    return [net.rblock2, net.fc]  # course residual net


def freeze_all_but_last(model: ImageClassifier) -> tuple[list[nn.Parameter], Any]:
    """Freeze everything but :func:`last_block`; return (trainable parameters, hook handle to remove).

    Frozen BatchNorm/Dropout layers are kept in eval mode during training (a forward pre-hook),
    so the frozen part is truly unchanged: its running statistics do not drift either.
    """
    trainable = last_block(model)
    keep = {id(p) for m in trainable for p in m.parameters()}
    inside = {id(m) for t in trainable for m in t.modules()}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    stateful = [m for m in model.modules() if id(m) not in inside
                and isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout))]

    def keep_frozen_in_eval(_module, _inputs):
        for m in stateful:
            m.eval()

    handle = model.register_forward_pre_hook(keep_frozen_in_eval)
    return [p for p in model.parameters() if p.requires_grad], handle


def build_start_model(spec: FineTuneSpec, start: StartPoint, device: torch.device | str = "cpu") -> ImageClassifier:
    """A new model holding ``start``'s weights (a fresh head for transfer), on ``device``."""
    torch.manual_seed(spec.seed)
    mean, std = start.normalization
    model = build_model(spec.arch, mean, std, start.config)
    if start.state is not None:
        model.load_state_dict(start.state, strict=True)
    if start.fresh_head:
        torch.manual_seed(spec.seed)
        head_module(model).reset_parameters()
    return model.to(device)


def feature_layer(model: nn.Module) -> str:
    """The layer whose maps are shown each epoch: the first convolution (its filters change the most visibly)."""
    for layer in visual_layers(model):
        if layer.kind == "conv":
            return layer.name
    return visual_layers(model)[0].name


@torch.no_grad()
def feature_maps(model: nn.Module, image: torch.Tensor, layer: str, channels: int = FEATURE_CHANNELS) -> np.ndarray:
    """The first ``channels`` maps of ``layer`` for one uint8 28 x 28 ``image``: float32 C x H x W (CPU)."""
    captured: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: captured.append(out.detach().clone()))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(to_float(image[None].to(device)))
    finally:
        handle.remove()
        model.train(was_training)
    return captured[0][0, :channels].float().cpu().numpy()


@torch.no_grad()
def confusion(model: nn.Module, data: TensorData, batch_size: int = 1000) -> np.ndarray:
    """10 x 10 confusion matrix (rows: true class, columns: predicted) in eval mode, like ``evaluate``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    counts = torch.zeros(10, 10, dtype=torch.int64)
    for i in range(0, len(data), batch_size):
        x = to_float(data.images[i : i + batch_size].to(device))
        with _autocast(device):
            pred = model(x).float().argmax(1).cpu()
        y = data.labels[i : i + batch_size].cpu()
        counts += torch.bincount(y * 10 + pred, minlength=100).view(10, 10)
    model.train(was_training)
    return counts.numpy()


def accuracy_of(matrix: np.ndarray) -> float:
    """Accuracy from a confusion matrix."""
    return float(np.trace(matrix) / max(matrix.sum(), 1))


@functools.lru_cache(maxsize=4)
def cached_splits(dataset: str, subset: int, seed: int, eval_size: int) -> tuple[TensorData, TensorData]:
    """``load_splits`` (the same 5,000 held-out images as the checkpoints), cut to ``eval_size``, cached."""
    train, val = load_splits(dataset, 5000, subset, seed)
    return train, TensorData(val.images[:eval_size].clone(), val.labels[:eval_size].clone())


# Conservative GPU throughput guesses (training images per second) for the ZeroGPU time budget.
GPU_IMAGES_PER_SEC = {"vgg11": 8000, "googlenet": 4000, "resnet18": 6000, "inception_net": 15000, "residual_net": 20000}


def gpu_duration(spec: FineTuneSpec, start: StartPoint | None = None, stop: Any = None, device: Any = None) -> int:
    """Seconds to ask ZeroGPU for: start-up + the chosen epochs at a conservative rate, 30..300."""
    per_epoch = (spec.subset + 2 * spec.eval_size) / GPU_IMAGES_PER_SEC.get(spec.arch, 4000)
    return int(min(300, max(30, 20 + 1.5 * spec.epochs * per_epoch + (10 if spec.test_eval else 0))))


def train_stream(spec: FineTuneSpec, start: StartPoint, stop: StopSignal | None = None,
                 device: str | None = None) -> Iterator[dict]:
    """The device side of a run: train with the shared loop and yield plain-data events.

    Everything yielded is picklable CPU data (floats, NumPy arrays, CPU tensors), so this
    function can run in a ZeroGPU worker process. The ``done`` event carries the kept
    weights (last completed epoch) as a CPU state dict.
    """
    dev = pick_device(device)
    train, val = cached_splits(spec.dataset, spec.subset, spec.seed, spec.eval_size)
    model = build_start_model(spec, start, dev)
    params, hook = freeze_all_but_last(model) if spec.freeze else (None, None)
    layer = feature_layer(model)
    example = val.images[0]
    before = confusion(model, val)
    recipe = spec.recipe()
    steps = -(-len(train) // recipe.batch_size)
    yield {"type": "start", "device": device_name(dev), "train_size": len(train), "val_size": len(val),
           "steps_per_epoch": steps, "total_steps": steps * recipe.epochs,
           "trainable_params": sum(p.numel() for p in (params or model.parameters())), "params": count_params(model),
           "acc_before": accuracy_of(before), "confusion_before": before, "feature_layer": layer,
           "example_label": int(val.labels[0]), "example": example.numpy().copy(),
           "features": feature_maps(model, example, layer)}
    log_every = max(1, min(20, steps // 8))
    events = train_iter(model, train, val, recipe, flip=spec.dataset == "fashion_mnist" and spec.augment,
                        keep="last", stop=stop, log_every=log_every, params=params)
    while True:
        try:
            event = next(events)
        except StopIteration as finished:
            result: Result = finished.value
            break
        if isinstance(event, Step):
            yield {"type": "step", **asdict(event)}
        elif isinstance(event, Epoch):
            yield {"type": "epoch", **asdict(event), "features": feature_maps(model, example, layer)}
    if hook is not None:
        hook.remove()
    for p in model.parameters():
        p.requires_grad_(True)
    after = confusion(model, val)
    test_acc = test_loss = None
    if spec.test_eval and not (stop is not None and stop.is_set()):
        test_acc, test_loss = evaluate(model, load_test(spec.dataset))
    yield {"type": "done", "result": asdict(result), "confusion_after": after, "acc_after": accuracy_of(after),
           "test_accuracy": test_acc, "test_loss": test_loss, "device": device_name(dev),
           "state": copy_state(model)}


# The function the session side calls: under ZeroGPU it runs on a GPU for a duration fitted to the epochs.
train_on_device = zerogpu.gpu(train_stream, duration=gpu_duration)


class FriendlyError(Exception):
    """An error whose message is shown to the user as is (no stack trace)."""


def ensure_data(dataset: str) -> Iterator[dict]:
    """Make sure ``dataset`` is on disk: prepare it if missing, or raise :class:`FriendlyError` saying what to run."""
    from cnndemo.data import load_tensors

    try:
        load_tensors(dataset, train=True)
        return
    except DataMissingError:
        pass
    yield {"type": "status", "message": f"{DATASET_TITLES[dataset]} is not downloaded yet: preparing it (one-off)…"}
    try:
        source = prepare(dataset)
    except DataMissingError as exc:
        raise FriendlyError(f"{exc}\n\nOn the server, run: `python -m cnndemo.data prepare --dataset {dataset}`. "
                            f"{PREPARE_HINT}") from None
    cached_splits.cache_clear()
    yield {"type": "status", "message": f"{DATASET_TITLES[dataset]} prepared ({source})."}


def checkpoint_name(spec: FineTuneSpec) -> str:
    """File name of the downloadable checkpoint."""
    return f"{spec.arch}_{spec.dataset}_finetuned_{spec.start}.safetensors"


def finish(spec: FineTuneSpec, start: StartPoint, first: dict, done: dict, device: torch.device | str,
           out_dir: str | os.PathLike) -> Outcome:
    """Rebuild the trained model from the ``done`` event on ``device`` and write its checkpoint."""
    mean, std = start.normalization
    model = build_model(spec.arch, mean, std, start.config)
    model.load_state_dict(done["state"], strict=True)
    model.to(device).eval()
    result = Result(**done["result"])
    extra = {"finetune": {"start": spec.start, "from": start.description, "frozen_all_but_last_block": spec.freeze,
                          "train_images": first["train_size"], "held_out_images": first["val_size"],
                          "held_out_accuracy_before": first["acc_before"], "held_out_accuracy_after": done["acc_after"],
                          "stopped": result.stopped, "spec": asdict(spec)}}
    meta = checkpoint_meta(spec.arch, spec.dataset, model, spec.recipe(), result, done["test_accuracy"],
                           done["test_loss"], torch.device("cpu"), normalization=(mean, std), config=start.config,
                           **extra)
    meta["trained_on"] = done["device"]
    meta["val_accuracy"] = done["acc_after"]
    path = Path(out_dir) / checkpoint_name(spec)
    save_checkpoint(path, model, meta)
    return Outcome(spec, model, meta, str(path), first["acc_before"], done["acc_after"], first["confusion_before"],
                   done["confusion_after"], result.stopped, result.epochs_done, result.seconds, result.images_per_sec)


def run_finetune(spec: FineTuneSpec, session: str, pretrained: PretrainedLookup, registry: SessionRegistry,
                 queue: DeviceQueue, device: torch.device | str | None = None,
                 out_dir: str | os.PathLike | None = None) -> Iterator[dict]:
    """The session side of a run: queue, data, copy, train on the device, keep the result.

    Yields the device events plus ``waiting`` / ``status`` events, and ends with exactly one
    ``finished`` (carrying the :class:`Outcome`) or ``error`` (a message, no stack trace) event.
    ``device`` is where the finished model is put for the other tabs (the app's device).
    """
    try:
        stop = registry.begin_run(session)
    except RuntimeError as exc:
        yield {"type": "error", "message": str(exc)}
        return
    ticket = None
    try:
        spec = spec.validate()
        train_device = str(pick_device())
        ticket = queue.join(train_device)
        for ahead in queue.wait(ticket, stop):
            yield {"type": "waiting", "ahead": ahead,
                   "message": f"waiting: {ahead} ahead (one training at a time on {train_device})"}
        if stop.is_set():
            yield {"type": "error", "message": "Cancelled while waiting."}
            return
        yield from ensure_data(spec.dataset)
        start = start_point(spec, pretrained)
        first: dict | None = None
        for event in train_on_device(spec, start, stop):
            if event["type"] == "start":
                first = event
            if event["type"] == "done":
                assert first is not None
                folder = out_dir or tempfile.mkdtemp(prefix="cnndemo-finetune-")
                outcome = finish(spec, start, first, event, device or pick_device(), folder)
                registry.set_outcome(session, outcome)
                yield {**{k: v for k, v in event.items() if k != "state"}, "type": "done"}
                yield {"type": "finished", "outcome": outcome}
                return
            yield event
        yield {"type": "error", "message": "Training ended without a result."}
    except FriendlyError as exc:
        yield {"type": "error", "message": str(exc)}
    except (ValueError, FileNotFoundError, DataMissingError) as exc:
        yield {"type": "error", "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - shown as one line, logged in full on the server
        import traceback

        traceback.print_exc(file=sys.stderr)
        yield {"type": "error", "message": f"Fine-tuning failed: {type(exc).__name__}: {_one_line(str(exc))}"}
    finally:
        if ticket is not None:
            queue.leave(ticket)
        registry.end_run(session, stop)


def _one_line(text: str, limit: int = 300) -> str:
    return re.sub(r"\s+", " ", text).strip()[:limit]


__all__ = ["FineTuneSpec", "StartPoint", "Outcome", "StopSignal", "DeviceQueue", "SessionRegistry", "STARTS",
           "START_LABELS", "start_point", "build_start_model", "freeze_all_but_last", "last_block", "head_module",
           "feature_maps", "confusion", "train_stream", "train_on_device", "gpu_duration", "run_finetune",
           "ensure_data", "FriendlyError", "copy_state"]
