"""The training CLI and the batch augmentation, on real data."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from cnndemo.train.checkpoints import load_checkpoint
from cnndemo.train.loop import augment_batch
from cnndemo.train.evaluation import evaluate
from cnndemo.data.datasets import load_test
from conftest import free_port


def test_augment_shifts_within_two_pixels_and_flips():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 6:12] = 1.0  # a bar well inside the frame: shifts never clip it
    out = augment_batch(x, flip=False, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))
    rows = out[:, 0].amax(dim=2).nonzero()[:, 1].view(64, -1)[:, 0]
    assert rows.min() >= 8 and rows.max() <= 12 and len(set(rows.tolist())) > 1
    flipped = augment_batch(x, flip=True, generator=torch.Generator().manual_seed(0))
    cols = flipped[:, 0].amax(dim=1).nonzero()[:, 1].view(64, -1)[:, 0]
    assert (cols >= 14).any() and (cols <= 8).any()  # some images mirrored, some not


def test_cli_trains_and_writes_a_loadable_checkpoint(mnist_ready, tmp_path):
    out = tmp_path / "r.safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "cnndemo.train", "--arch", "residual_net", "--dataset", "mnist", "--epochs", "2",
         "--subset", "4000", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "img/s" in proc.stderr and "test accuracy" in proc.stderr
    model, meta = load_checkpoint(out, device="cpu")
    assert meta["epochs"] == 2 and meta["recipe"]["subset"] == 4000 and meta["best_epoch"] in (1, 2)
    assert [h["epoch"] for h in meta["history"]] == [1, 2]
    acc, _ = evaluate(model, load_test("mnist"))
    assert acc == meta["test_accuracy"] and acc > 0.9


def test_torchrun_two_cpu_processes_train_with_ddp(mnist_ready, tmp_path):
    """`python -m cnndemo.train` unchanged under torchrun: 2 gloo ranks, rank 0 alone writes, world_size recorded."""
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         "-m", "cnndemo.train", "--arch", "residual_net", "--dataset", "mnist", "--epochs", "1", "--subset", "2000",
         "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("test accuracy") == 1, "only rank 0 reports and writes"
    assert "2 processes" in proc.stderr
    model, meta = load_checkpoint(out)
    assert meta["recipe"]["world_size"] == 2 and meta["recipe"]["subset"] == 2000
    assert meta["test_accuracy"] > 0.5  # one epoch on 2,000 images, shards of 1,000 per rank
    assert list(tmp_path.iterdir()) == [out]
