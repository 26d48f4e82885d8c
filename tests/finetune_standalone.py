"""A Blocks holding only the Fine-tune tab, with a stand-in for the app's model store.

Used by the fine-tune tests and benchmark, and for development without the full app::

    CNNDEMO_DATA=... python tests/finetune_standalone.py      # http://127.0.0.1:7861
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnndemo.catalog import MEAN_STD  # noqa: E402
from cnndemo.models import DEMO_CONFIGS, build_model  # noqa: E402


class StubModels:
    """Minimal stand-in for the app's pretrained store: ``get(arch, dataset) -> (model, meta)`` and ``device``.

    Uses the real checkpoint when one exists (``use_checkpoints``), else a randomly initialised model
    (seeded, so it is the same every time) with checkpoint-like metadata. Models are built once and
    shared, like the app's store, so tests can check they are never modified.
    """

    def __init__(self, use_checkpoints: bool = False, device: str = "cpu"):
        self.device = torch.device(device)
        self.use_checkpoints = use_checkpoints
        self._models: dict[tuple[str, str], tuple] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def get(self, arch: str, dataset: str):
        with self._lock:
            self.calls += 1
            if (arch, dataset) not in self._models:
                self._models[(arch, dataset)] = self._load(arch, dataset)
            return self._models[(arch, dataset)]

    def _load(self, arch: str, dataset: str):
        if self.use_checkpoints:
            from cnndemo.train.checkpoints import checkpoint_path, load_checkpoint

            if checkpoint_path(arch, dataset).is_file():
                return load_checkpoint(checkpoint_path(arch, dataset), self.device)
        torch.manual_seed(1234)
        mean, std = MEAN_STD[dataset]
        model = build_model(arch, mean, std).to(self.device).eval()
        meta = {"arch": arch, "dataset": dataset, "config": DEMO_CONFIGS[arch],
                "normalization": {"mean": mean, "std": std}, "test_accuracy": None, "stand_in": True}
        return model, meta


def free_port() -> int:
    """A TCP port nothing listens on now (tests must not collide with a running app on 7860)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_standalone(models: StubModels | None = None):
    """``(demo, None, models)``: a Blocks with only the Fine-tune tab (each session's models: cnndemo.app.sessions)."""
    import gradio as gr

    from cnndemo.app.finetune_tab import build_finetune_api, build_finetune_tab
    from cnndemo.app.sessions import with_session

    models = models or StubModels(use_checkpoints=True)
    with gr.Blocks(title="cnndemo fine-tune (standalone)") as demo:
        with gr.Tabs():
            build_finetune_tab(models)
        build_finetune_api(models)
        # A stand-in for the app's /classify: a forward pass of a pretrained model (tests check it stays served).
        classify_out = gr.Textbox(visible=False)
        gr.Button("classify (stand-in)", visible=False).click(
            with_session(lambda session: classify_stub(models, session)), None, classify_out,
            api_name="classify_stub")
    return demo, None, models


def serve_standalone(models: StubModels | None = None):
    """Generator for a pytest fixture: serve the standalone tab on a free port, yield ``(url, models)``.

    Torch runs one thread meanwhile, so the training and the server share the 2 cores predictably.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    demo, _, models = build_standalone(models)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    yield url, models
    demo.close()
    torch.set_num_threads(old)


def classify_stub(models: StubModels, store) -> str:
    """Classify one fixed image with this session's model for residual_net/mnist (fine-tuned if in use)."""
    model, meta = (store.get("residual_net", "mnist") if store is not None else None) or models.get("residual_net", "mnist")
    with torch.no_grad():
        pred = model(torch.zeros(1, 1, 28, 28).to(next(model.parameters()).device)).argmax(1).item()
    return f"{pred} ({'fine-tuned' if 'finetune' in meta else 'pretrained'})"


if __name__ == "__main__":
    demo, _, _ = build_standalone()
    demo.launch(server_port=int(os.environ.get("GRADIO_SERVER_PORT", 7861)))
