"""Shared fixtures: real data, committed checkpoints, a random-weight zoo, and the real app on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import torch

import cnndemo  # noqa: F401 - installs the torchvision compatibility shim first
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    """``python app.py`` in a subprocess on a free port; ``url``, ``startup_seconds``."""

    def __init__(self, timeout: float | None = None):
        timeout = timeout or float(os.environ.get("CNNDEMO_TEST_APP_TIMEOUT", "900"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_SERVER_NAME": "127.0.0.1",
               "GRADIO_ANALYTICS_ENABLED": "False"}
        t0 = time.perf_counter()
        # The app's output goes to a file, not a pipe nobody reads (a full pipe would block the app).
        self.log = tempfile.NamedTemporaryFile("w+", prefix="cnndemo-app-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, text=True)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}: {Path(self.log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - t0 > timeout:
                self.stop()
                raise RuntimeError(f"app did not serve {self.url} within {timeout} s")
            time.sleep(0.1)
        self.startup_seconds = time.perf_counter() - t0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def running_app():
    """The real app (all checkpoints that exist), served on a free port for the whole session."""
    if not list_pretrained():
        pytest.skip("no checkpoints in checkpoint_dir(): train them with scripts/train_all.sh")
    app = RunningApp()
    yield app
    app.stop()
