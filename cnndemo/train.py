"""Training: one loop shared by the CLI and the app's fine-tuning tab.

``train_iter`` is a generator: it yields :class:`Step` events every few steps and an
:class:`Epoch` event after each epoch's validation, and returns a :class:`Result`.
The whole (subset of the) dataset lives on the training device as uint8 tensors; batches
are augmented there (random shifts, and flips for clothing), so there is no worker
DataLoader. On CUDA it uses bfloat16 autocast and channels-last.

CLI::

    python -m cnndemo.train --arch resnet18 --dataset fashion_mnist [--epochs 14 --lr 0.1 ...]
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from cnndemo.data import CLASSES, MEAN_STD, load_tensors, train_val_split
from cnndemo.device import device_name, pick_device
from cnndemo.models import ARCHS, DEMO_CONFIGS, build_model, count_params


@dataclass
class Recipe:
    """How to train. Stored in every checkpoint's metadata."""

    optimizer: str = "sgd"  # "sgd" (Nesterov momentum 0.9) or "adam" (AdamW)
    lr: float = 0.05  # peak learning rate
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # "onecycle" (warm-up then cosine down), "cosine" or "constant"
    epochs: int = 10
    batch_size: int = 128
    augment: bool = True  # random shifts of up to 2 pixels; plus horizontal flips for fashion_mnist
    label_smoothing: float = 0.0
    seed: int = 0
    subset: int | None = None  # train on this many images of the 55,000 (None = all)
    val_size: int = 5000  # held out from the 60,000 training images, for keeping the best epoch


# Recipes of the committed checkpoints (chosen to fit a 2-core CPU: minutes per model).
DEFAULT_RECIPES: dict[tuple[str, str], Recipe] = {
    ("vgg11", "mnist"): Recipe(lr=0.05, epochs=8),
    ("vgg11", "fashion_mnist"): Recipe(lr=0.05, epochs=20, label_smoothing=0.1),
    ("googlenet", "mnist"): Recipe(lr=0.1, epochs=6),
    ("googlenet", "fashion_mnist"): Recipe(lr=0.1, epochs=14, label_smoothing=0.1),
    ("resnet18", "mnist"): Recipe(lr=0.1, epochs=6),
    ("resnet18", "fashion_mnist"): Recipe(lr=0.1, epochs=14, label_smoothing=0.1),
    ("inception_net", "mnist"): Recipe(optimizer="adam", lr=3e-3, weight_decay=1e-4, epochs=10),
    ("inception_net", "fashion_mnist"): Recipe(optimizer="adam", lr=3e-3, weight_decay=1e-4, epochs=40,
                                              label_smoothing=0.1),
    ("residual_net", "mnist"): Recipe(optimizer="adam", lr=3e-3, weight_decay=1e-4, epochs=10),
    ("residual_net", "fashion_mnist"): Recipe(optimizer="adam", lr=3e-3, weight_decay=1e-4, epochs=25),
}


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


@dataclass
class TensorData:
    """A split as tensors: uint8 images N x 28 x 28 and int64 labels, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device) -> "TensorData":
        return TensorData(self.images.to(device), self.labels.to(device))

    def __len__(self) -> int:
        return len(self.labels)


def load_splits(dataset: str, val_size: int = 5000, subset: int | None = None, seed: int = 0) -> tuple[TensorData, TensorData]:
    """(train, held-out validation) from the 60,000 training images; ``subset`` keeps that many train images."""
    x, y = load_tensors(dataset, train=True)
    train_idx, val_idx = train_val_split(len(y), val_size)
    if subset:
        g = torch.Generator().manual_seed(seed)
        train_idx = train_idx[torch.randperm(len(train_idx), generator=g)[:subset]]
    return TensorData(x[train_idx], y[train_idx]), TensorData(x[val_idx], y[val_idx])


def load_test(dataset: str) -> TensorData:
    """The 10,000-image test set."""
    return TensorData(*load_tensors(dataset, train=False))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x 28 x 28 -> float N x 1 x 28 x 28 in [0, 1]."""
    return images.unsqueeze(1).float().div_(255)


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


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorData, batch_size: int = 1000) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``data``, in eval mode, on the model's device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct, loss_sum = 0, 0.0
    for i in range(0, len(data), batch_size):
        x = to_float(data.images[i : i + batch_size].to(device))
        y = data.labels[i : i + batch_size].to(device)
        with _autocast(device):
            logits = model(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    model.train(was_training)
    return correct / len(data), loss_sum / len(data)


@torch.no_grad()
def predict(model: nn.Module, data: TensorData, batch_size: int = 1000) -> torch.Tensor:
    """Predicted class of every image (CPU int64 tensor)."""
    device = next(model.parameters()).device
    model.eval()
    preds = [model(to_float(data.images[i : i + batch_size].to(device))).argmax(1).cpu() for i in range(0, len(data), batch_size)]
    return torch.cat(preds)


def make_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum, or AdamW."""
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}: 'sgd' or 'adam'")


def make_schedule(opt: torch.optim.Optimizer, recipe: Recipe, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule."""
    if recipe.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total_steps, pct_start=0.2)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if recipe.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    raise ValueError(f"unknown schedule {recipe.schedule!r}")


def uses_channels_last(model: nn.Module) -> bool:
    """Channels-last speeds up convs on CPU and GPU; the course nets' ``view`` needs contiguous NCHW."""
    net = getattr(model, "net", model)
    return type(net).__name__ not in ("InceptionNet", "ResidualNet")


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
    device = next(model.parameters()).device
    torch.manual_seed(recipe.seed)
    gen = torch.Generator(device=device).manual_seed(recipe.seed)
    train, val = train.to(device), val.to(device)
    channels_last = uses_channels_last(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(train) / recipe.batch_size)
    total_steps = steps_per_epoch * recipe.epochs
    opt = make_optimizer(params if params is not None else [p for p in model.parameters() if p.requires_grad], recipe)
    sched = make_schedule(opt, recipe, total_steps)

    start = time.perf_counter()
    initial_acc, _ = evaluate(model, val)
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
            idx = perm[(step - 1) * recipe.batch_size : step * recipe.batch_size]
            x, y = to_float(train.images[idx]), train.labels[idx]
            if recipe.augment:
                x = augment_batch(x, flip=flip, generator=gen)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device):
                logits = model(x)
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
                ips = images_seen / max(train_time + now - t_epoch, 1e-9)
                remaining = (total_steps - global_step) * recipe.batch_size / max(ips, 1e-9)
                yield Step(epoch, step, steps_per_epoch, global_step, total_steps, win_loss / win_n,
                           win_correct / win_n, ips, now - start, remaining)
                ep_loss, ep_correct, ep_n = ep_loss + win_loss, ep_correct + win_correct, ep_n + win_n
                win_loss = win_correct = win_n = 0.0
        ep_loss, ep_correct, ep_n = ep_loss + win_loss, ep_correct + win_correct, ep_n + win_n
        train_time += time.perf_counter() - t_epoch
        if stopped:
            break
        epochs_done = epoch
        val_acc, val_loss = evaluate(model, val)
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
                  images_seen / max(train_time, 1e-9), history)


def run(iterator: Iterator, on_event: Callable | None = None):
    """Drive a generator to the end, passing each event to ``on_event``; return its return value."""
    while True:
        try:
            event = next(iterator)
        except StopIteration as done:
            return done.value
        if on_event:
            on_event(event)


class ProgressBar:
    """A one-line text progress bar on stderr (a line per ~10% when stderr is not a terminal)."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last_decile = -1

    def __call__(self, event: Step | Epoch) -> None:
        if isinstance(event, Epoch):
            mark = " *" if event.best else ""
            print(f"\repoch {event.epoch}: train loss {event.train_loss:.4f} acc {event.train_acc:.4f} | "
                  f"val loss {event.val_loss:.4f} acc {event.val_acc:.4f}{mark} | {event.elapsed:.0f}s",
                  file=self.stream, flush=True)
            return
        frac = event.step / event.steps_per_epoch
        decile = int(frac * 10)
        if not self.tty and decile == self.last_decile:
            return
        self.last_decile = decile
        bar = "#" * int(frac * 24)
        line = (f"epoch {event.epoch} [{bar:<24}] {event.step}/{event.steps_per_epoch} loss {event.loss:.4f} "
                f"acc {event.train_acc:.3f} {event.images_per_sec:,.0f} img/s ETA {event.eta:.0f}s")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=self.stream, flush=True)


def checkpoint_meta(arch: str, dataset: str, model: nn.Module, recipe: Recipe, result: Result,
                    test_acc: float | None, test_loss: float | None, device: torch.device,
                    normalization: tuple[float, float], config: dict, **extra) -> dict:
    """The self-describing metadata of a checkpoint (shared by the CLI and the fine-tune tab).

    ``extra`` keys are added after the standard ones (e.g. ``finetune`` provenance).
    """
    mean, std = normalization
    return {
        "arch": arch,
        "config": config,
        "dataset": dataset,
        "classes": CLASSES[dataset],
        "normalization": {"mean": mean, "std": std},
        "input": "N x 1 x 28 x 28 float in [0, 1], white on black",
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "val_accuracy": result.val_acc,
        "params": count_params(model),
        "epochs": result.epochs_done,
        "best_epoch": result.kept_epoch,
        "recipe": asdict(recipe),
        "trained_on": device_name(device),
        "train_seconds": round(result.seconds, 1),
        "images_per_sec": round(result.images_per_sec, 1),
        "torch_version": torch.__version__,
        "date": date.today().isoformat(),
        "history": result.history,
        **extra,
    }


def train_checkpoint(arch: str, dataset: str, recipe: Recipe, out: str | Path | None = None,
                     device: str | None = None, verbose: bool = True) -> tuple[Path, dict]:
    """Train ``arch`` on ``dataset`` from scratch, evaluate on the test set and write the checkpoint."""
    from cnndemo.checkpoints import checkpoint_path, save_checkpoint

    dev = pick_device(device)
    mean, std = MEAN_STD[dataset]
    torch.manual_seed(recipe.seed)  # the initial weights too, so a recipe reproduces its run
    model = build_model(arch, mean, std).to(dev)
    train, val = load_splits(dataset, recipe.val_size, recipe.subset, recipe.seed)
    if verbose:
        print(f"{arch} on {dataset}: {count_params(model):,} parameters, {len(train):,} train / "
              f"{len(val):,} held-out images, {device_name(dev)}", file=sys.stderr)
    result: Result = run(train_iter(model, train, val, recipe, flip=dataset == "fashion_mnist"),
                         ProgressBar() if verbose else None)
    test_acc, test_loss = evaluate(model, load_test(dataset))
    meta = checkpoint_meta(arch, dataset, model, recipe, result, test_acc, test_loss, dev,
                           normalization=(mean, std), config=DEMO_CONFIGS[arch])
    path = save_checkpoint(out or checkpoint_path(arch, dataset), model.cpu(), meta)
    if verbose:
        print(f"test accuracy {test_acc:.4f} (best epoch {result.kept_epoch}, held-out {result.val_acc:.4f}); "
              f"{result.seconds:.0f}s -> {path}", file=sys.stderr)
    return path, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnndemo.train", description="Train a checkpoint.")
    parser.add_argument("--arch", required=True, choices=list(ARCHS))
    parser.add_argument("--dataset", required=True, choices=list(CLASSES))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer", choices=["sgd", "adam"])
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--subset", type=int, help="train on this many images (default all 55,000)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="cpu, cuda, mps (default: best available; $CNNDEMO_DEVICE overrides)")
    parser.add_argument("--out", help="checkpoint path (default checkpoints/ARCH_DATASET.safetensors)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
                                   "optimizer": args.optimizer, "augment": args.augment, "subset": args.subset,
                                   "seed": args.seed}.items() if v is not None}
    recipe = replace(DEFAULT_RECIPES[(args.arch, args.dataset)], **overrides)
    train_checkpoint(args.arch, args.dataset, recipe, args.out, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
