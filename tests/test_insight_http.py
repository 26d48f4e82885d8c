"""The "Why?" tab's four endpoints over HTTP (gradio_client) against a small in-process gr.Blocks."""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr
import pytest
import torch
from PIL import Image

from cnndemo.app.insight_api import build_insight_api
from cnndemo.app.insight_tab import build_insight_tab
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.framing import prepare
from cnndemo.insight.receptive_field import theoretical_fields
from cnndemo.train.checkpoints import checkpoint_path, read_meta

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist" / "7_7_0000.png"


@pytest.fixture(scope="module")
def zoo() -> ModelZoo:
    return ModelZoo.load("cpu")


@pytest.fixture(scope="module")
def client(zoo):
    with gr.Blocks() as demo:
        with gr.Tabs():
            build_insight_tab(zoo)
        build_insight_api(zoo)
    demo.queue()
    _app, url, _share = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield Client(url, verbose=False)
    finally:
        demo.close()


def test_compare_matches_each_model(client, zoo):
    info = client.predict(handle_file(str(EXAMPLE)), "mnist", api_name="/compare")
    x = prepare(str(EXAMPLE), "mnist").tensor
    archs = [m["arch"] for m in info["models"]]
    assert archs == [a for a, d in zoo.available if d == "mnist"] and len(archs) == 5
    for m in info["models"]:
        model, meta = zoo.get(m["arch"], "mnist")
        with torch.no_grad():
            probs = torch.softmax(model(x), 1)[0]
        assert m["label"] == meta["classes"][int(probs.argmax())]
        assert m["confidence"] == pytest.approx(float(probs.max()), abs=1e-4)
        assert m["params"] == sum(p.numel() for p in model.parameters()) and m["macs"] > m["params"] > 0
        assert m["ms"] > 0
    assert info["agree"] == (len({m["label"] for m in info["models"]}) == 1)
    assert info["models"][0]["label"] == "7"  # a clean test-set 7


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients", "occlusion"])
def test_saliency(client, method):
    png, info = client.predict(handle_file(str(EXAMPLE)), "resnet18", "mnist", method, api_name="/saliency")
    assert Image.open(png).size == (224, 224)
    expected = prepare(str(EXAMPLE), "mnist").tensor[0, 0]
    assert torch.allclose(torch.tensor(info["input"]), expected, atol=1e-5)
    attr = torch.tensor(info["attribution"])
    assert attr.shape == (28, 28) and attr.abs().max() > 0
    assert info["target"] == info["predicted"] == 7 and info["target_label"] == "7"
    assert (info["layer"] is not None) == (method == "gradcam")
    png3, info3 = client.predict(handle_file(str(EXAMPLE)), "resnet18", "mnist", method, "3", "",
                                 api_name="/saliency")
    assert info3["target"] == 3 and info3["target_label"] == "3"
    assert not torch.allclose(torch.tensor(info3["attribution"]), attr)


def test_saliency_rejects_a_bad_target(client):
    with pytest.raises(AppError, match="target class"):
        client.predict(handle_file(str(EXAMPLE)), "vgg11", "mnist", "gradcam", "eleven", "", api_name="/saliency")


def test_receptive_field(client, zoo):
    png, info = client.predict(handle_file(str(EXAMPLE)), "vgg11", "mnist", "features.block2.0", 3, 4,
                               api_name="/receptive_field")
    assert Image.open(png).size == (224, 224)
    rows, cols = theoretical_fields(zoo.get("vgg11", "mnist")[0])["net.features.block2.0"]
    assert info["layer"] == "features.block2.0" and info["rf_size"] == rows.size == 8
    # unit 0 sees input rows -5..2 (2 px of VGG's own 28 -> 32 padding, then conv pad 1 twice at strides 1 and 2);
    # units are 2 px apart, so unit 3 sees rows 1..8 and unit 4 cols 3..10
    assert info["box"] == [1, 3, 9, 11]
    eff = torch.tensor(info["effective"])
    assert eff.shape == (28, 28) and float(eff.max()) == pytest.approx(1.0)
    outside = eff.clone()
    outside[1:9, 3:11] = 0
    assert float(outside.max()) == 0.0  # the gradient never leaves the theoretical box


def test_receptive_field_rejects_out_of_range(client):
    with pytest.raises(AppError, match="outside"):
        client.predict(handle_file(str(EXAMPLE)), "resnet18", "mnist", "layer4.0", 4, 0, api_name="/receptive_field")
    with pytest.raises(AppError, match="Unknown layer"):
        client.predict(handle_file(str(EXAMPLE)), "resnet18", "mnist", "layer9", 0, 0, api_name="/receptive_field")


def test_misclassified(client):
    gallery, info = client.predict("inception_net", "fashion_mnist", 2, api_name="/misclassified")
    acc = read_meta(checkpoint_path("inception_net", "fashion_mnist"))["test_accuracy"]
    assert info["total_misclassified"] == round((1 - acc) * 10_000)
    assert info["test_accuracy"] == pytest.approx(acc, abs=1e-9)
    confusion = torch.tensor(info["confusion"])
    assert int(confusion.sum()) == 10_000 and int(confusion.sum() - confusion.trace()) == info["total_misclassified"]
    assert len(gallery) == len(info["items"]) == info["page_size"] and info["page"] == 2
    for g, item in zip(gallery, info["items"]):
        assert item["true"] != item["predicted"]
        assert "\u2192" in g["caption"] and item["predicted_label"] in g["caption"]
    with pytest.raises(AppError, match="does not exist"):
        client.predict("inception_net", "fashion_mnist", 10_000, api_name="/misclassified")


def test_the_why_tab_computes_only_when_visible_and_waits_for_pen_up(random_zoo):
    from cnndemo.app.insight_tab import when_visible, why_values

    def refresh(canvas, upload, source, dataset, active, *rest):  # what the tab's input event runs
        return when_visible(functools.partial(why_values, random_zoo))(active, canvas, upload, source, dataset, *rest)

    args = ("mnist", "vgg11", "gradcam", "", None, "net.features.block1", 8, 8, None)
    assert refresh(None, str(EXAMPLE), "upload", "mnist", "vgg", *args[1:]) == gr.skip()  # another tab is visible
    out = refresh(None, str(EXAMPLE), "upload", "mnist", "why", *args[1:])
    assert len(out) == 7  # the comparison, both attribution outputs, and the receptive field's four
    texts = [v for v in out.values() if isinstance(v, str)]
    assert any("| VGG-11 |" in t for t in texts) and any("sees a **4 x 4** window" in t for t in texts)
    assert sum(isinstance(v, Image.Image) for v in out.values()) == 2
    mid_stroke = '{"v": 1, "seq": 3, "final": false, "w": 112, "h": 112, "x": 0, "y": 0, "cw": 0, "ch": 0, "alpha": ""}'
    out = refresh(mid_stroke, None, "canvas", "mnist", "why", *args[1:])
    assert len(out) == 1  # mid-stroke: only the cheap comparison
