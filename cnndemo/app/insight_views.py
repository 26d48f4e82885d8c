"""The four "Why?" views as plain functions of the model zoo and an input (no gradio here).

Each returns ``(picture(s), json_dict)`` and is what the HTTP endpoints and the tab call:
:func:`compare_view`, :func:`saliency_view`, :func:`receptive_field_view`, :func:`misclassified_view`.
Bad input raises ValueError / LookupError with a sentence for the user (the tab turns it into gr.Error).
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image
from torch import nn

from cnndemo import catalog
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.framing import prepare
from cnndemo.finetune.store import SessionModels
from cnndemo.insight import render
from cnndemo.insight.attribution import METHODS, attribute
from cnndemo.insight.compare import compare_json, compare_models
from cnndemo.insight.mistakes import PAGE_SIZE, load_mistakes
from cnndemo.insight.receptive_field import receptive_field, rf_table, theoretical_fields
from cnndemo.models import short_name
from cnndemo.settings import whole


def check_names(arch: str | None, dataset: str) -> list[str]:
    """The class names of ``dataset``; ValueError (naming the choices) for an unknown architecture or dataset."""
    if arch is not None:
        catalog.arch(arch)
    return list(catalog.dataset(dataset).classes)


def _input(image: Any, dataset: str) -> torch.Tensor:
    if image is None or image == "":
        raise ValueError("No image: draw something, upload a picture or pick an example first.")
    return prepare(image, dataset).tensor


def compare_view(zoo: ModelZoo, image: Any, dataset: str, archs: list[str] | None = None,
                 session: SessionModels | None = None) -> tuple[torch.Tensor, dict]:
    """Every loaded network of ``dataset`` on the image: (28 x 28 input, compare JSON). A session's
    fine-tuned model stands in for the pretrained one, as in the network tabs."""
    classes = check_names(None, dataset)
    x = _input(image, dataset)
    models: dict[str, nn.Module] = {arch: zoo.resolve(arch, dataset, session)[0]
                                    for arch in archs or catalog.ARCHITECTURES if zoo.has(arch, dataset)}
    results = compare_models(models, x, classes)
    return x[0, 0], compare_json(results)


def saliency_view(zoo: ModelZoo, image: Any, arch: str, dataset: str, method: str, target: Any = None,
                  layer: str | None = None, session: SessionModels | None = None) -> tuple[Image.Image, dict]:
    """(overlay, JSON) explaining ``arch``'s score for ``target`` (default: its prediction) with ``method``."""
    classes = check_names(arch, dataset)
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    model = zoo.resolve(arch, dataset, session)[0]
    x = _input(image, dataset)
    a = attribute(model, x, method, classes, target, layer or None)
    info = {"method": method, "target": a.target, "target_label": a.target_label, "predicted": a.predicted,
            "predicted_label": classes[a.predicted], "target_probability": round(float(a.probs[a.target]), 6),
            "layer": short_name(a.layer) if a.layer else None, "attribution": _grid(a.attribution), "input": _grid(a.input)}
    return render.overlay(a.input, a.attribution, signed=method != "gradcam"), info


def _int(value: Any, what: str) -> int:
    return whole(what, value)  # NaN, infinities, text and fractions: one line naming the setting


def receptive_field_view(zoo: ModelZoo, image: Any, arch: str, dataset: str, layer: str | None, row: Any,
                         col: Any, session: SessionModels | None = None) -> tuple[Image.Image, dict]:
    """(overlay, JSON) of unit (row, col) of ``layer``: theoretical box and effective receptive field."""
    check_names(arch, dataset)
    row, col = _int(row, "row"), _int(col, "col")  # before any work
    model = zoo.resolve(arch, dataset, session)[0]
    x = _input(image, dataset)
    u = receptive_field(model, x, layer or None, row, col)
    rows = theoretical_fields(model)[u.layer][0]
    info = {"layer": short_name(u.layer), "rf_size": u.rf_size, "box": list(u.box),
            "stride": rows.jump, "map_size": list(u.map_size), "row": u.row, "col": u.col,
            "effective": _grid(u.effective),
            "table": [{"layer": short_name(n), "rf_size": s, "stride": j} for n, s, j in rf_table(model)]}
    return render.receptive_field_image(x[0, 0], u.effective, u.box), info


def misclassified_view(arch: str, dataset: str, page: Any = 1) -> tuple[list, dict]:
    """(gallery items ``[(PIL image, caption), ...]``, JSON) of one page of ``arch``'s test-set mistakes."""
    classes = check_names(arch, dataset)
    page = _int(page, "page")
    m = load_mistakes(arch, dataset)
    sl = m.page(page)
    items, gallery = [], []
    for k in range(sl.start, min(sl.stop, m.total_misclassified)):
        t, p, c = int(m.true[k]), int(m.pred[k]), float(m.confidence[k])
        items.append({"rank": k, "test_index": int(m.index[k]), "true": t, "true_label": classes[t],
                      "predicted": p, "predicted_label": classes[p], "confidence": round(c, 6)})
        gallery.append((render.thumbnail(m.images[k]), f"{classes[t]}\u2192{classes[p]} {c:.0%}"))
    info = {"test_accuracy": m.test_accuracy, "confusion": m.confusion.tolist(), "total_misclassified": m.total_misclassified,
            "page": page, "pages": m.pages, "page_size": PAGE_SIZE, "classes": classes, "items": items}
    return gallery, info


def mistake_image(arch: str, dataset: str, rank: int) -> Image.Image:
    """The misclassified test image number ``rank`` (0-based, as in the JSON) at 28 x 28."""
    m = load_mistakes(arch, dataset)
    if not 0 <= rank < m.total_misclassified:
        raise ValueError(f"There is no mistake number {rank}.")
    return Image.fromarray(m.images[rank])


def _grid(t: torch.Tensor) -> list[list[float]]:
    return [[round(float(v), 6) for v in row] for row in t.tolist()]
