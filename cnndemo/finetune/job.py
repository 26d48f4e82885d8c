"""The device side of a fine-tune run: train with the shared loop and stream plain-data events.

:func:`train_stream` builds the model from a CPU state dict, trains it with the training package's
``train_iter(keep="last")``, evaluates with its ``evaluate`` / ``confusion``, and yields picklable
CPU data (numbers, NumPy arrays such as the first convolution's kernels, CPU tensors), so under Hugging Face ZeroGPU it can run as
``spaces.GPU(duration=...)`` in a worker process (:data:`train_on_device`). No gradio.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn

from cnndemo import catalog, zerogpu
from cnndemo.data.datasets import TensorData, load_splits, load_test, to_float
from cnndemo.device import device_name, pick_device
from cnndemo.finetune.runs import StopSignal
from cnndemo.finetune.spec import FineTuneSpec, StartPoint, build_start_model, copy_state, freeze_all_but_last
from cnndemo.inspection.analysis import first_conv_kernels
from cnndemo.inspection.hooks import capture
from cnndemo.models import count_params, visual_layers
from cnndemo.train.evaluation import accuracy_of, confusion, evaluate, model_device
from cnndemo.train.loop import Result, Step, relay, train_iter

FEATURE_CHANNELS = 16  # channels shown of the fixed example's feature maps


def feature_layer(model: nn.Module) -> str:
    """The layer whose maps are shown each epoch: the first convolution (its filters change the most visibly)."""
    layers = visual_layers(model)
    return next((l.name for l in layers if l.kind == "conv"), layers[0].name)


@torch.no_grad()
def feature_maps(model: nn.Module, image: torch.Tensor, layer: str, channels: int = FEATURE_CHANNELS) -> np.ndarray:
    """The first ``channels`` maps of ``layer`` for one uint8 28 x 28 ``image``: float32 C x H x W (CPU)."""
    was_training = model.training
    model.eval()
    try:
        with capture(model, [layer]) as seen:
            model(to_float(image[None].to(model_device(model))))
    finally:
        model.train(was_training)
    return seen[layer][0, :channels].numpy()


@functools.lru_cache(maxsize=4)
def cached_splits(dataset: str, subset: int, seed: int, eval_size: int) -> tuple[TensorData, TensorData]:
    """``load_splits`` (the same 5,000 held-out images as the checkpoints), cut to ``eval_size``, cached."""
    train, val = load_splits(dataset, 5000, subset, seed)
    return train, TensorData(val.images[:eval_size].clone(), val.labels[:eval_size].clone())


def gpu_duration(spec: FineTuneSpec, start: StartPoint | None = None, stop: Any = None, device: Any = None) -> int:
    """Seconds to ask ZeroGPU for: start-up + the chosen epochs at a conservative rate, 30..300."""
    per_epoch = (spec.subset + 2 * spec.eval_size) / catalog.arch(spec.arch).gpu_images_per_sec
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
    before = confusion(model, val).numpy()
    recipe = spec.recipe()
    steps = -(-len(train) // recipe.batch_size)
    yield {"type": "start", "device": device_name(dev), "train_size": len(train), "val_size": len(val),
           "steps_per_epoch": steps, "total_steps": steps * recipe.epochs,
           "trainable_params": sum(p.numel() for p in (params or model.parameters())), "params": count_params(model),
           "acc_before": accuracy_of(before), "confusion_before": before, "feature_layer": layer,
           "example_label": int(val.labels[0]), "example": example.numpy().copy(),
           "features": feature_maps(model, example, layer), "kernels": first_conv_kernels(model)}
    log_every = max(1, min(20, steps // 8))
    events = train_iter(model, train, val, recipe, flip=catalog.dataset(spec.dataset).flip and spec.augment,
                        keep="last", stop=stop, log_every=log_every, params=params)
    result: Result = yield from relay(events, lambda event: {"type": "step", **asdict(event)} if isinstance(event, Step)
                                      else {"type": "epoch", **asdict(event), "features": feature_maps(model, example, layer),
                                            "kernels": first_conv_kernels(model)})
    if hook is not None:
        hook.remove()
    for p in model.parameters():
        p.requires_grad_(True)
    after = confusion(model, val).numpy()
    test_acc = test_loss = None
    if spec.test_eval and not (stop is not None and stop.is_set()):
        test_acc, test_loss = evaluate(model, load_test(spec.dataset))
    yield {"type": "done", "result": asdict(result), "confusion_after": after, "acc_after": accuracy_of(after),
           "test_accuracy": test_acc, "test_loss": test_loss, "device": device_name(dev),
           "state": copy_state(model)}


# The function the session side calls: under ZeroGPU it runs on a GPU for a duration fitted to the epochs.
train_on_device = zerogpu.gpu(train_stream, duration=gpu_duration)
