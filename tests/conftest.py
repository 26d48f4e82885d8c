"""Shared fixtures: a model zoo with random weights (no checkpoints needed) and helpers for real apps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from cnndemo.checkpoints import list_pretrained
from cnndemo.data import CLASSES, MEAN_STD
from cnndemo.models import ARCHS, build_model
from cnndemo.registry import ModelZoo

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


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
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}: {self.proc.stdout.read()[-3000:]}")
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
