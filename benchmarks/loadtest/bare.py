"""A bare Gradio app under the same load as the real one: an Image input and a do-nothing handler.

``python -m benchmarks.loadtest.bare`` serves ``/noop`` on ``GRADIO_SERVER_NAME:GRADIO_SERVER_PORT``.
It has the same upload path as ``/classify`` (a file input, default concurrency), so the difference
between the two is the app's own work.
"""

from __future__ import annotations

import os

import gradio as gr


def build() -> gr.Blocks:
    with gr.Blocks() as demo:
        image = gr.Image(type="filepath", label="image")
        label = gr.Label(label="prediction")
        gr.Button().click(lambda image: {"0": 1.0}, image, label, api_name="noop")
    return demo


if __name__ == "__main__":
    build().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   server_port=int(os.environ["GRADIO_SERVER_PORT"]), quiet=True)
