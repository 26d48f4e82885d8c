"""The network tabs' prediction and pictures: ``gr.Label`` and ``gr.Image`` that are cheaper for Gradio to skip.

A canvas update is one event whose outputs are every network tab's views; the hidden tabs' are skipped
(``gr.skip()``). Gradio 6.31 handles a skipped output like a property update: it builds a new instance of the
component and that instance's config, API schema included, and pydantic generates the schema afresh for every new
instance (about 0.5 ms for an image or a label). With 15 outputs skipped, that was 6-7 ms of the ~20 ms each update
spends in Gradio (in-process, Gradio's own ``postprocess_data``; see BENCHMARKS.md). The schema depends on the
component class only, so these compute it once per class.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from cnndemo.app.inputs import GradioFrontend

_SCHEMAS: dict[type, Any] = {}


class SchemaOnce(GradioFrontend):
    """Mixin for a Gradio component: its API schema is computed once per class, not once per instance."""

    def api_info(self) -> Any:
        cls = type(self)
        if cls not in _SCHEMAS:
            _SCHEMAS[cls] = super().api_info()
        return _SCHEMAS[cls]


class Picture(SchemaOnce, gr.Image):
    """A ``gr.Image`` output (feature maps, Inception branches, residual blocks)."""

    FRONTEND = "image"


class Prediction(SchemaOnce, gr.Label):
    """A ``gr.Label`` output (a tab's top-5 prediction)."""

    FRONTEND = "label"
