"""``python -m cnndemo.train``: train a checkpoint from its catalog recipe, with a tqdm progress bar.

Runs unchanged under ``torchrun --nproc_per_node N`` (DistributedDataParallel, gloo on CPU, nccl on
CUDA): each rank trains on its shard, rank 0 alone prints and writes the checkpoint, and the
checkpoint's recipe records ``world_size``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from cnndemo import catalog
from cnndemo.catalog import Recipe
from cnndemo.data.datasets import load_splits, load_test
from cnndemo.device import device_name, pick_device
from cnndemo.models import build_model, count_params
from cnndemo.train import distributed
from cnndemo.train.checkpoints import checkpoint_meta, checkpoint_path, save_checkpoint
from cnndemo.train.evaluation import evaluate
from cnndemo.train.loop import Epoch, Result, Step, run, train_iter
from cnndemo.train.recipes import recipe_for


class TqdmProgress:
    """Shows the loop's events with tqdm: one bar per epoch, and a line per finished epoch."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar: tqdm | None = None

    def __call__(self, event: Step | Epoch) -> None:
        if not self.enabled:
            return
        if isinstance(event, Step):
            if self.bar is None:
                self.bar = tqdm(total=event.steps_per_epoch, desc=f"epoch {event.epoch}", unit="step",
                                file=sys.stderr, dynamic_ncols=True, mininterval=1.0)
            self.bar.update(event.step - self.bar.n)
            self.bar.set_postfix({"loss": f"{event.loss:.4f}", "acc": f"{event.train_acc:.3f}",
                                  "img/s": f"{event.images_per_sec:,.0f}"}, refresh=False)
            return
        self.close()
        mark = " *" if event.best else ""
        tqdm.write(f"epoch {event.epoch}: train loss {event.train_loss:.4f} acc {event.train_acc:.4f} | "
                   f"val loss {event.val_loss:.4f} acc {event.val_acc:.4f}{mark} | {event.elapsed:.0f}s", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def train_checkpoint(arch: str, dataset: str, recipe: Recipe, out: str | Path | None = None,
                     device: str | None = None, verbose: bool = True) -> tuple[Path | None, dict]:
    """Train ``arch`` on ``dataset`` from scratch, evaluate on the test set and write the checkpoint (rank 0)."""
    dev = pick_device(device)
    is_distributed = distributed.setup(dev)
    dev = distributed.local_device(dev)
    main = distributed.is_main()
    recipe = replace(recipe, world_size=distributed.world_size())
    ds = catalog.dataset(dataset)
    model = build_model(arch, ds.mean, ds.std, seed=recipe.seed).to(dev)  # same initial weights on every rank
    train, val = load_splits(dataset, recipe.val_size, recipe.subset, recipe.seed)
    if verbose and main:
        print(f"{arch} on {dataset}: {count_params(model):,} parameters, {len(train):,} train / {len(val):,} held-out "
              f"images, {device_name(dev)}" + (f", {recipe.world_size} processes" if is_distributed else ""),
              file=sys.stderr)
    progress = TqdmProgress(verbose and main)
    result: Result = run(train_iter(model, train, val, recipe, flip=ds.flip), progress)
    progress.close()
    path, meta = None, {}
    if main:
        test_acc, test_loss = evaluate(model, load_test(dataset))
        meta = checkpoint_meta(arch, dataset, model, recipe, result, test_acc, test_loss, device_name(dev),
                               normalization=ds.mean_std, config=catalog.arch(arch).config)
        path = save_checkpoint(out or checkpoint_path(arch, dataset), model.cpu(), meta)
        if verbose:
            print(f"test accuracy {test_acc:.4f} (best epoch {result.kept_epoch}, held-out {result.val_acc:.4f}); "
                  f"{result.seconds:.0f}s -> {path}", file=sys.stderr)
    if is_distributed:
        torch.distributed.barrier()
        distributed.teardown()
    return path, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnndemo.train", description="Train a checkpoint.")
    parser.add_argument("--arch", required=True, choices=list(catalog.ARCHITECTURES))
    parser.add_argument("--dataset", required=True, choices=list(catalog.DATASETS))
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
    train_checkpoint(args.arch, args.dataset, replace(recipe_for(args.arch, args.dataset), **overrides),
                     args.out, args.device)
    return 0
