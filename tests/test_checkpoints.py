"""The committed checkpoints: present, small, self-describing, and as accurate as they claim on the real test sets."""

from __future__ import annotations

import math

import pytest
import torch

from cnndemo import list_pretrained, load_pretrained
from cnndemo.train.checkpoints import checkpoint_dir, checkpoint_path, load_checkpoint, read_meta, save_checkpoint
from cnndemo.catalog import CLASSES, MEAN_STD
from cnndemo.train.scores import ACCURACY_BARS, batch1_latency_ms
from cnndemo.models import ARCHS, build_model, count_params
from cnndemo.train.evaluation import evaluate
from cnndemo.data.datasets import load_test

PAIRS = [(a, d) for a in ARCHS for d in ("mnist", "fashion_mnist")]
META_KEYS = {"arch", "dataset", "classes", "test_accuracy", "params", "epochs", "recipe", "trained_on", "config",
             "normalization", "train_seconds"}


def test_all_ten_pairs_are_listed():
    assert list_pretrained() == PAIRS


@pytest.mark.parametrize("arch,dataset", PAIRS)
def test_checkpoint_describes_itself(arch, dataset):
    path = checkpoint_path(arch, dataset)
    assert path.stat().st_size <= 10 * 2**20
    meta = read_meta(path)
    assert META_KEYS <= meta.keys()
    assert (meta["arch"], meta["dataset"]) == (arch, dataset)
    assert meta["classes"] == CLASSES[dataset]
    assert (meta["normalization"]["mean"], meta["normalization"]["std"]) == MEAN_STD[dataset]
    assert {"optimizer", "lr", "schedule", "augment", "batch_size", "epochs"} <= meta["recipe"].keys()


def test_checkpoints_folder_under_40_mb():
    assert sum(p.stat().st_size for p in checkpoint_dir().glob("*.safetensors")) <= 40 * 2**20


@pytest.fixture(scope="module")
def test_sets():
    return {}


@pytest.mark.parametrize("arch,dataset", PAIRS)
def test_accuracy_on_full_test_set(arch, dataset, test_sets, request):
    request.getfixturevalue("mnist_ready" if dataset == "mnist" else "fashion_ready")
    model, meta = load_pretrained(arch, dataset, device="cpu")
    assert not model.training
    assert count_params(model) == meta["params"]
    if dataset not in test_sets:
        test_sets[dataset] = load_test(dataset)
    acc, _ = evaluate(model, test_sets[dataset])
    assert acc >= ACCURACY_BARS[(arch, dataset)], f"{arch}/{dataset}: {acc:.4f}"
    assert abs(acc - meta["test_accuracy"]) <= 0.001, f"measured {acc:.4f}, metadata says {meta['test_accuracy']:.4f}"


@pytest.mark.parametrize("arch", list(ARCHS))
def test_batch1_forward_runs_on_cpu(arch):
    """Smoke check of the latency helper (the 10 ms target is checked by `python -m cnndemo.evaluate`)."""
    model, _ = load_pretrained(arch, "mnist", device="cpu")
    calls = []
    handle = model.register_forward_hook(lambda _m, args, _out: calls.append(tuple(args[0].shape)))
    ms = batch1_latency_ms(model, runs=3, warmup=1)
    handle.remove()
    assert calls == [(1, 1, 28, 28)] * 4, "warm-up + timed runs, each a single 28 x 28 image"
    assert math.isfinite(ms) and ms > 0  # the figure itself is a benchmark (python -m cnndemo.train.scores), not a test


def test_save_load_round_trip_reproduces_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_model("googlenet", *MEAN_STD["mnist"]).eval()
    meta = {"arch": "googlenet", "config": {"net": {"ratio": 4, "batch_norm": True, "stem": "small", "dropout": 0.4},
                                            "pad": 0},
            "normalization": {"mean": MEAN_STD["mnist"][0], "std": MEAN_STD["mnist"][1]}, "dataset": "mnist"}
    path = save_checkpoint(tmp_path / "g.safetensors", model, meta)
    loaded, loaded_meta = load_checkpoint(path, device="cpu")
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert loaded_meta["arch"] == "googlenet" and loaded_meta["format_version"] == 1


def test_loader_refuses_foreign_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ValueError, match="not a cnndemo checkpoint"):
        load_checkpoint(tmp_path / "x.safetensors")
    with pytest.raises(ValueError):
        load_pretrained("alexnet", "mnist")


def test_device_env_override(monkeypatch):
    monkeypatch.setenv("CNNDEMO_DEVICE", "cpu")
    model, _ = load_pretrained("residual_net", "mnist")
    assert next(model.parameters()).device.type == "cpu"
