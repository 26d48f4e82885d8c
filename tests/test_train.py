"""The training CLI and the batch augmentation, on real data."""

from __future__ import annotations

import subprocess
import sys

import torch

from cnndemo.checkpoints import load_checkpoint
from cnndemo.train import augment_batch, evaluate, load_test


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
