"""Shared fixtures: real data, committed checkpoints, a random-weight zoo, and the real app on a free port."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

import cnndemo  # noqa: F401 - installs the torchvision compatibility shim first
from benchmarks.loadtest.app_control import AppProcess, free_port  # noqa: F401 - free_port: for the tests
from cnndemo.train.checkpoints import list_pretrained
from cnndemo.catalog import CLASSES, MEAN_STD
from cnndemo.data.fetch import verify
from cnndemo.models import ARCHS, build_model
from cnndemo.app.zoo import ModelZoo

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def require_data(name: str) -> None:
    """Skip unless the real dataset files are in the data folder (`python -m cnndemo.data prepare`)."""
    problems = verify(name)
    if problems:
        pytest.skip(f"{name} not prepared: {problems[0]}")


@pytest.fixture(scope="session")
def mnist_ready() -> None:
    require_data("mnist")


@pytest.fixture(scope="session")
def fashion_ready() -> None:
    require_data("fashion_mnist")


@pytest.fixture(scope="session")
def random_zoo() -> ModelZoo:
    """Every (arch, dataset) with seeded random weights on the CPU: enough to test the plumbing."""
    torch.manual_seed(0)
    zoo = ModelZoo(torch.device("cpu"))
    for arch in ARCHS:
        for dataset in ("mnist", "fashion_mnist"):
            model = build_model(arch, *MEAN_STD[dataset]).eval()
            zoo.entries[(arch, dataset)] = (model, {"arch": arch, "dataset": dataset, "classes": CLASSES[dataset],
                                                    "test_accuracy": 0.1})
    return zoo


class RunningApp(AppProcess):
    """``python app.py`` in a subprocess on a free port (the load test's server helper, with the app's own
    defaults: one fine-tune per visitor); ``url``, ``startup_seconds``, ``log_tail()``."""

    def __init__(self, timeout: float | None = None):
        super().__init__("app.py", env={"CNNDEMO_RUNS_PER_VISITOR": None},
                         timeout=timeout or float(os.environ.get("CNNDEMO_TEST_APP_TIMEOUT", "900")))


@pytest.fixture(scope="session")
def running_app():
    """The real app (all checkpoints that exist), served on a free port for the whole session."""
    if not list_pretrained():
        pytest.skip("no checkpoints in checkpoint_dir(): train them with scripts/train_all.sh")
    app = RunningApp()
    yield app
    app.stop()


def wait_until(predicate, what: str, timeout: float, interval: float = 0.05, detail=None):
    """Poll ``predicate`` until it returns something truthy (returned); fail naming ``what`` (and ``detail()``)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f" ({detail()})" if detail else ""))
