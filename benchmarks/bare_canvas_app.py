"""The floor for benchmarks/bench_canvas.py: a bare Gradio app with the same live canvas and a handler that does nothing.

It imports torch (as any app serving a model must) and serves on $GRADIO_SERVER_PORT like ``python app.py``:
``GRADIO_SERVER_PORT=7861 python benchmarks/bare_canvas_app.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr  # noqa: E402
import torch  # noqa: E402,F401  - the floor includes importing torch

from cnndemo.app.canvas import DrawingCanvas, on_draw  # noqa: E402


def build() -> gr.Blocks:
    """The canvas, a Label with the real app's element id, and a no-op handler through the same on_draw."""
    with gr.Blocks(title="bare canvas") as demo:
        with gr.Row():
            canvas = DrawingCanvas(elem_id="canvas")
            label = gr.Label(num_top_classes=5, elem_id="label-vgg")
        on_draw(canvas, lambda alpha: None, [label])
    return demo


if __name__ == "__main__":
    build().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7861")), quiet=True)
