"""The Why? tab's named HTTP endpoints: ``/compare``, ``/saliency``, ``/receptive_field``, ``/misclassified``.

Each is a plain function over :mod:`cnndemo.app.insight_views` on the pretrained models, wired to hidden
components so its signature does not depend on the tab's widgets; bad input becomes ``gr.Error`` with the
view's message (:func:`cnndemo.app.api.api_errors`).
"""

from __future__ import annotations

import gradio as gr

from cnndemo import catalog
from cnndemo.app import insight_views as iv
from cnndemo.app import views
from cnndemo.app.api import ImageFile, api_errors, api_only
from cnndemo.app.setting_inputs import Choice, SettingNumber, SettingText
from cnndemo.app.zoo import ModelZoo
from cnndemo.insight.attribution import METHODS


def build_insight_api(zoo: ModelZoo) -> None:
    """API-only components and the four named endpoints (call inside the app's endpoint page)."""
    image = api_only(ImageFile, type="filepath", label="image")
    arch = api_only(Choice, list(catalog.ARCHITECTURES), value=next(iter(catalog.ARCHITECTURES)), label="arch")
    dataset = api_only(Choice, list(catalog.DATASETS), value=views.DEFAULT_DATASET, label="dataset")
    method = api_only(Choice, list(METHODS), value=METHODS[0], label="method")
    target = api_only(SettingText, "", label="target")
    layer = api_only(SettingText, "", label="layer")
    row = api_only(SettingNumber, 0, precision=0, label="row")
    col = api_only(SettingNumber, 0, precision=0, label="col")
    page = api_only(SettingNumber, 1, precision=0, label="page")
    info = api_only(gr.JSON, label="info")
    picture = api_only(gr.Image, type="pil", format="png", label="picture")
    gallery = api_only(gr.Gallery, type="pil", format="png", label="gallery")
    buttons = [api_only(gr.Button) for _ in range(4)]

    def api_compare(image: str, dataset: str) -> dict:
        """Every network of ``dataset`` on the image: top class, confidence, parameters, MACs, forward ms."""
        return iv.compare_view(zoo, image, dataset)[1]

    def api_saliency(image: str, arch: str, dataset: str, method: str, target: str = "", layer: str = ""):
        """Overlay PNG and JSON {attribution, input, target, target_label, layer, ...}."""
        return iv.saliency_view(zoo, image, arch, dataset, method, target or None, layer or None)

    def api_receptive_field(image: str, arch: str, dataset: str, layer: str, row: int, col: int):
        """Overlay PNG and JSON {layer, rf_size, box [top, left, bottom, right), effective 28x28, ...}."""
        return iv.receptive_field_view(zoo, image, arch, dataset, layer, row, col)

    def api_misclassified(arch: str, dataset: str, page: int = 1):
        """Gallery of one page of test-set mistakes and JSON {test_accuracy, confusion, total_misclassified, items}."""
        return iv.misclassified_view(arch, dataset, page)

    buttons[0].click(api_errors(api_compare), [image, dataset], info, api_name="compare")
    buttons[1].click(api_errors(api_saliency), [image, arch, dataset, method, target, layer], [picture, info],
                     api_name="saliency")
    buttons[2].click(api_errors(api_receptive_field), [image, arch, dataset, layer, row, col], [picture, info],
                     api_name="receptive_field")
    buttons[3].click(api_errors(api_misclassified), [arch, dataset, page], [gallery, info], api_name="misclassified")
