"""The Gradio app (placeholder until the app issue lands: it lists the pretrained models)."""

from __future__ import annotations

import gradio as gr

from cnndemo.checkpoints import list_pretrained


def build_demo() -> gr.Blocks:
    """The Blocks app; tests import and launch it."""
    with gr.Blocks(title="cnndemo") as demo:
        gr.Markdown("# cnndemo\nPretrained models: " + ", ".join(f"{a}/{d}" for a, d in list_pretrained()))
    return demo


def launch_kwargs() -> dict:
    """Arguments for ``demo.launch()``."""
    return {}
