"""The training loop, written once: the CLI, distributed runs and the app's fine-tuning all drive :func:`train_iter`.

``train_iter`` is a generator: it yields :class:`Step` events every few steps and an :class:`Epoch`
event after each epoch's validation, and returns a :class:`Result`. The whole (subset of the) dataset
lives on the training device as uint8 tensors; batches are augmented there (random shifts, and flips
where the dataset allows), so there is no worker DataLoader. On CUDA it uses bfloat16 autocast, and
channels-last where the network declares it can. Under torchrun each rank trains on its shard through
DistributedDataParallel and the metrics are all-reduced.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from cnndemo.catalog import Recipe
from cnndemo.data.datasets import TensorData, to_float
from cnndemo.train import distributed
from cnndemo.train.evaluation import autocast, evaluate, model_device
from cnndemo.train.recipes import make_optimizer, make_schedule


@dataclass
class Step:
    """Progress inside an epoch (yielded every ``log_every`` steps and at the epoch's end)."""

    epoch: int  # 1-based
    step: int  # steps done in this epoch
    steps_per_epoch: int
    global_step: int
    total_steps: int
    loss: float  # mean training loss since the last Step event
    train_acc: float  # training accuracy since the last Step event
    images_per_sec: float
    elapsed: float
    eta: float


@dataclass
class Epoch:
    """End of an epoch, after evaluating the held-out set."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    best: bool  # the best held-out accuracy so far
    elapsed: float


@dataclass
class Result:
    """What a run produced; ``model`` holds the kept weights (best or last completed epoch)."""

    epochs_done: int
    kept_epoch: int  # 0 = the weights from before training
    val_acc: float  # held-out accuracy of the kept weights
    initial_val_acc: float
    stopped: bool
    seconds: float
    images_per_sec: float
    history: list[dict] = field(default_factory=list)


def augment_batch(x: torch.Tensor, flip: bool, shift: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation by up to ``shift`` pixels (zero fill) and optional horizontal flips, on x's device."""
    n, _, h, w = x.shape
    padded = F.pad(x, (shift,) * 4)  # N x 1 x (H+2s) x (W+2s)
    dy = torch.randint(0, 2 * shift + 1, (n, 1, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (n, 1, 1), device=x.device, generator=generator)
    rows = torch.arange(h, device=x.device).view(1, h, 1) + dy  # N x H x 1
    cols = torch.arange(w, device=x.device).view(1, 1, w) + dx  # N x 1 x W
    out = padded[torch.arange(n, device=x.device).view(n, 1, 1), 0, rows, cols].unsqueeze(1)  # N x 1 x H x W
    if flip:
        mask = torch.rand(n, 1, 1, 1, device=x.device, generator=generator) < 0.5
        out = torch.where(mask, out.flip(-1), out)
    return out



def train_iter(
    model: nn.Module,
    train: TensorData,
    val: TensorData,
    recipe: Recipe,
    flip: bool = False,
    keep: str = "best",
    stop: threading.Event | None = None,
    log_every: int = 20,
    params: list[nn.Parameter] | None = None,
) -> Iterator[Step | Epoch]:
    """Train ``model`` in place; yield progress; return a :class:`Result` (``StopIteration.value``).

    ``keep="best"`` leaves the weights of the epoch with the best held-out accuracy in the
    model; ``keep="last"`` those of the last completed epoch. When ``stop`` is set, the
    current epoch is abandoned within one step and the kept weights are restored.
    ``params`` restricts training to those parameters (e.g. freezing all but the last block).
    """
    device = model_device(model)
    world, rank = distributed.world_size(), distributed.rank()
    torch.manual_seed(recipe.seed)
    gen = torch.Generator(device=device).manual_seed(recipe.seed + rank)  # each rank its own batches and shifts
    if world > 1:
        train, val = train.shard(rank, world), val.shard(rank, world)
    train, val = train.to(device), val.to(device)
    batch_size = max(1, recipe.batch_size // world)  # the recipe's batch is the global one
    channels_last = getattr(model, "channels_last", True)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total_steps = steps_per_epoch * recipe.epochs
    opt = make_optimizer(params if params is not None else [p for p in model.parameters() if p.requires_grad], recipe)
    sched = make_schedule(opt, recipe, total_steps)
    forward = model
    if world > 1:
        forward = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def validate() -> tuple[float, float]:
        return evaluate(model, val, all_ranks=world > 1)

    start = time.perf_counter()
    initial_acc, _ = validate()
    kept_state, kept_epoch, kept_acc = copy.deepcopy(model.state_dict()), 0, initial_acc
    best_acc = initial_acc if keep == "best" else -1.0
    history: list[dict] = []
    images_seen, global_step, stopped, epochs_done = 0, 0, False, 0
    train_time = 0.0
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        perm = torch.randperm(len(train), device=device, generator=gen)
        ep_loss = ep_correct = ep_n = 0.0
        win_loss = win_correct = win_n = 0.0
        t_epoch = time.perf_counter()
        for step in range(1, steps_per_epoch + 1):
            if stop is not None and stop.is_set():
                stopped = True
                break
            idx = perm[(step - 1) * batch_size : step * batch_size]
            x, y = to_float(train.images[idx]), train.labels[idx]
            if recipe.augment:
                x = augment_batch(x, flip=flip, generator=gen)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits = forward(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            global_step += 1
            n = len(y)
            batch_loss = loss.item() * n  # .item() syncs: the timing below is honest on CUDA too
            batch_correct = (logits.argmax(1) == y).sum().item()
            win_loss += batch_loss
            win_correct += batch_correct
            win_n += n
            images_seen += n
            if step % log_every == 0 or step == steps_per_epoch:
                now = time.perf_counter()
                win_loss, win_correct, win_n = distributed.all_sum(win_loss, win_correct, win_n, device=device)
                ips = world * images_seen / max(train_time + now - t_epoch, 1e-9)
                remaining = (total_steps - global_step) * batch_size * world / max(ips, 1e-9)
                yield Step(epoch, step, steps_per_epoch, global_step, total_steps, win_loss / win_n,
                           win_correct / win_n, ips, now - start, remaining)
                ep_loss, ep_correct, ep_n = ep_loss + win_loss, ep_correct + win_correct, ep_n + win_n
                win_loss = win_correct = win_n = 0.0
        ep_loss, ep_correct, ep_n = ep_loss + win_loss, ep_correct + win_correct, ep_n + win_n
        train_time += time.perf_counter() - t_epoch
        if stopped:
            break
        epochs_done = epoch
        val_acc, val_loss = validate()
        better = val_acc > best_acc
        if keep == "last" or better:
            kept_state, kept_epoch, kept_acc = copy.deepcopy(model.state_dict()), epoch, val_acc
            best_acc = max(best_acc, val_acc)
        record = Epoch(epoch, ep_loss / max(ep_n, 1), ep_correct / max(ep_n, 1), val_loss, val_acc, better,
                       time.perf_counter() - start)
        history.append(asdict(record))
        yield record
    model.load_state_dict(kept_state)
    model.eval()
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    return Result(epochs_done, kept_epoch, kept_acc, initial_acc, stopped, time.perf_counter() - start,
                  world * images_seen / max(train_time, 1e-9), history)


def relay(events: Iterator, convert: Callable[[Step | Epoch], object]) -> Iterator:
    """Re-yield every event of a :func:`train_iter` generator through ``convert``; return its :class:`Result`.

    Use ``result = yield from relay(train_iter(...), convert)`` inside another generator.
    """
    while True:
        try:
            event = next(events)
        except StopIteration as done:
            return done.value
        yield convert(event)


def run(events: Iterator, on_event: Callable | None = None):
    """Drive a :func:`train_iter` generator to the end, passing each event to ``on_event``; return its result."""
    driver = relay(events, on_event or (lambda event: event))
    while True:
        try:
            next(driver)
        except StopIteration as done:
            return done.value
