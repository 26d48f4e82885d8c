"""Each tab's plain-Python functions and the UI handlers, without a browser (random-weight models)."""

from __future__ import annotations

import types
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from cnndemo.app import api, input_panel, layout, network_tab, serving, views
from cnndemo.app.zoo import MissingModel, ModelZoo
from cnndemo.catalog import CLASSES, MEAN_STD
from cnndemo.data.canvas import encode_canvas
from cnndemo.finetune.store import Outcome, SessionModels
from cnndemo.models import build_model


def drawing() -> np.ndarray:
    """A canvas value like gr.Sketchpad's: RGBA, black ink only in alpha."""
    im = Image.new("L", (300, 300), 0)
    ImageDraw.Draw(im).line([(80, 60), (220, 60), (120, 250)], fill=255, width=18)
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[..., 3] = np.asarray(im)
    return rgba


def canvas() -> dict:
    rgba = drawing()
    return {"background": None, "layers": [rgba], "composite": rgba}


@pytest.mark.parametrize("arch", ["vgg11", "googlenet", "resnet18", "inception_net", "residual_net"])
@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_predict_gives_top5_of_the_right_classes(random_zoo, arch, dataset):
    pred = views.predict(random_zoo, canvas(), arch, dataset)
    assert len(pred.top) == 5 and set(pred.top) <= set(CLASSES[dataset])
    values = list(pred.top.values())
    assert values == sorted(values, reverse=True) and 0 < sum(values) <= 1 + 1e-6
    model = random_zoo.get(arch, dataset)[0]
    with torch.no_grad():
        expected = torch.softmax(model(pred.prepared.tensor), 1)[0]
    assert pred.label == CLASSES[dataset][int(expected.argmax())]
    assert not pred.from_session


def test_session_model_is_used_when_present(random_zoo):
    torch.manual_seed(123)
    tuned = build_model("residual_net", *MEAN_STD["mnist"]).eval()
    with torch.no_grad():
        tuned.net.fc.bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 50.0, 0]))  # always says "8"
    session = SessionModels()
    spec = types.SimpleNamespace(arch="residual_net", dataset="mnist")
    session.finished(Outcome(spec, tuned, {"classes": CLASSES["mnist"], "test_accuracy": 0.5}, "", "/nonexistent",
                             0.1, 0.5, np.zeros((10, 10)), np.zeros((10, 10)), False, 1, 1.0, 1.0))
    assert not views.predict(random_zoo, canvas(), "residual_net", "mnist", session).from_session, "not used yet"
    session.use()
    pred = views.predict(random_zoo, canvas(), "residual_net", "mnist", session)
    assert pred.from_session and pred.label == "8" and pred.top["8"] > 0.99
    assert "fine-tuned in this session" in views.model_note(random_zoo, "residual_net", "mnist", session)
    # other pairs still use the pretrained model
    assert not views.predict(random_zoo, canvas(), "residual_net", "fashion_mnist", session).from_session


def test_missing_checkpoint_is_a_readable_note_not_a_crash(random_zoo):
    zoo = ModelZoo(torch.device("cpu"), entries={k: v for k, v in random_zoo.entries.items() if k[0] != "vgg11"})
    with pytest.raises(MissingModel, match="vgg11 --dataset mnist"):
        views.predict(zoo, canvas(), "vgg11", "mnist")
    assert views.model_note(zoo, "vgg11", "mnist").startswith("⚠️ No pretrained VGG-11")
    out = network_tab.tab_values(zoo, "plain", canvas(), "mnist", "vgg11", None, None, None)
    assert out["label"] is None and "No pretrained" in out["note"]
    assert "vgg11/mnist" in views.device_report(zoo)  # listed under missing checkpoints


def test_feature_view_every_layer(random_zoo):
    for label, name in views.layer_choices(random_zoo, "googlenet"):
        grid, caption, fm = views.feature_view(random_zoo, canvas(), "googlenet", "mnist", name)
        assert isinstance(grid, Image.Image) and grid.width > 100
        assert fm.layer.name == name and str(fm.maps.shape[0]) in caption
        c, h, w = fm.maps.shape
        assert label == fm.layer.label and f"{c} channels of {h}x{w}" in caption


def test_feature_view_defaults_to_the_first_layer_and_rejects_unknown_ones(random_zoo):
    _, _, fm = views.feature_view(random_zoo, canvas(), "vgg11", "mnist", None)
    assert fm.layer.name == views.default_layer(random_zoo, "vgg11")
    _, _, fm = views.feature_view(random_zoo, canvas(), "vgg11", "mnist", "features.block2")  # without "net."
    assert fm.layer.name == "net.features.block2"
    with pytest.raises(LookupError, match="Unknown layer 'not-a-layer': choose one of features.block1"):
        views.feature_view(random_zoo, canvas(), "vgg11", "mnist", "not-a-layer")
    with pytest.raises(LookupError, match="Unknown Inception module 'nope'"):
        views.branches_view(random_zoo, canvas(), "googlenet", "mnist", "nope")


def test_branches_view_tables_add_up(random_zoo):
    grids, table, view = views.branches_view(random_zoo, canvas(), "inception_net", "mnist", "net.incep1")
    assert len(grids) == 4 and "16 + 24 + 24 + 24 = **88**" in table
    grids, table, view = views.branches_view(random_zoo, canvas(), "googlenet", "mnist", None)
    assert view.module == "net.inception.inception3a" and "16 + 32 + 8 + 8 = **64**" in table
    assert [c[0] for c in views.module_choices(random_zoo, "googlenet")][:2] == ["3a", "3b"]
    with pytest.raises(LookupError):
        views.branches_view(random_zoo, canvas(), "vgg11", "mnist", None)


def test_residual_view(random_zoo):
    fig, table, blocks = views.residual_view(random_zoo, canvas(), "resnet18", "fashion_mnist")
    assert len(blocks) == 8 and table.count("\n") == 1 + 8 and isinstance(fig, Image.Image)
    for b in blocks:
        assert f"{b.ratio:.2f}" in table


def test_architecture_is_the_torchinfo_summary(random_zoo):
    text = views.architecture(random_zoo, "inception_net")
    assert "Output Shape" in text and "Param #" in text and "Mult-Adds" in text
    params = sum(p.numel() for p in random_zoo.get("inception_net", "mnist")[0].parameters())
    assert f"Total params: {params:,}" in text and "Units." not in text


def test_explanations_name_the_ideas(random_zoo):
    assert "two 3x3 convs see 5x5" in views.explanation(random_zoo, "vgg11")
    assert "1x1" in views.explanation(random_zoo, "googlenet") and "1/10" in views.explanation(random_zoo, "googlenet")
    assert "16 + 24 + 24 + 24 = 88" in views.explanation(random_zoo, "inception_net")
    assert "relu(F(x) + x)" in views.explanation(random_zoo, "resnet18")
    assert "out = relu(x + y)" in views.explanation(random_zoo, "residual_net")


def test_device_report(random_zoo):
    text = views.device_report(random_zoo)
    assert f"**Device:** {random_zoo.device_label} (`cpu`)" in text and f"**torch** {torch.__version__}" in text
    assert f"{torch.get_num_threads()} CPU threads" in text
    assert all(f"{a}/{d}" in text.split("**Models loaded**")[1].split("\n")[0] for a, d in random_zoo.available)
    assert "Missing checkpoints" not in text


def test_show_input_handles_blank_and_bad_input(tmp_path):
    prepared, img, note = input_panel.show_input(None, "canvas", "mnist")
    assert prepared is None and img is None and note == input_panel.BLANK_HINT
    prepared, img, note = input_panel.show_input(canvas(), "canvas", "mnist")
    assert img.size == (224, 224) and "MNIST" in note and prepared.tensor.shape == (1, 1, 28, 28)
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    with pytest.warns(UserWarning):  # gr.Warning outside a request is a python warning
        prepared, img, note = input_panel.show_input(str(bad), "upload", "mnist")
    assert img is None and "not an image" in note


@pytest.mark.parametrize("kind,arch", [("plain", "vgg11"), ("inception", "googlenet"), ("inception", "inception_net"),
                                       ("residual", "resnet18"), ("residual", "residual_net")])
def test_tab_values_fill_every_view(random_zoo, kind, arch):
    out = network_tab.tab_values(random_zoo, kind, canvas(), "mnist", arch, views.default_layer(random_zoo, arch),
                                 None, None)
    assert len(out["label"]) == 5 and isinstance(out["fmap"], Image.Image) and out["caption"] and out["note"]
    if kind == "inception":  # four branch grids; the table names each branch with its channel count
        assert len(out["branches"]) == 4 and all(isinstance(img, Image.Image) for img in out["branches"])
        assert "| 1x1 | 16 |" in out["branch_table"]
    if kind == "residual":
        assert isinstance(out["res_img"], Image.Image) and "‖F(x)‖/‖x‖" in out["res_table"]
    blank = network_tab.tab_values(random_zoo, kind, None, "mnist", arch, None, None, None)
    assert blank["label"] is None and blank["fmap"] is None


REQUEST = SimpleNamespace(session_hash="views-test")  # what Gradio passes handlers: the session's models come from it


def test_hidden_tab_computes_nothing(random_zoo):
    demo = layout.build_demo(random_zoo)
    handlers = {fn.fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "refresh"}
    assert len(handlers) == 3  # one per network tab (each wired to several events)
    request = SimpleNamespace(session_hash="hidden-tab-test")  # the session's models come from the request
    refresh = next(h for h in handlers if h(request, canvas(), None, "canvas", "mnist", "vgg11", None, None, "vgg")
                   != gr.skip())
    assert refresh(request, canvas(), None, "canvas", "mnist", "vgg11", None, None, "other-tab") == gr.skip()
    out = refresh(request, canvas(), None, "canvas", "mnist", "vgg11", None, None, "vgg")
    assert len(out) == 5 and any(isinstance(v, dict) and len(v) == 5 for v in out.values())
    answers = [v["answer"] for v in out.values() if isinstance(v, dict) and "answer" in v]
    assert len(answers) == 1 and answers[0].startswith("VGG-11: ")  # the answer on the canvas follows the tab


def test_api_handlers(random_zoo, tmp_path):
    path = tmp_path / "seven.png"
    Image.fromarray(255 - drawing()[..., 3]).save(path)
    top = api.endpoints(random_zoo)["classify"](str(path), "vgg11", "mnist")
    assert len(top) == 5
    grid, info = api.endpoints(random_zoo)["feature_maps"](str(path), "resnet18", "mnist", "net.layer1.0")
    assert info["layer"] == "net.layer1.0" and len(info["channels"]) == 16
    gallery, info = api.endpoints(random_zoo)["inception_branches"](str(path), "googlenet", "fashion_mnist", "")
    assert len(gallery) == 4 and sum(b["channels"] for b in info["branches"]) == info["out_channels"]
    fig, info = api.endpoints(random_zoo)["residual_blocks"](str(path), "residual_net", "mnist")
    assert [b["name"] for b in info["blocks"]] == ["net.rblock1", "net.rblock2"] and isinstance(fig, Image.Image)
    with pytest.raises(gr.Error, match="Unknown layer"):
        api.endpoints(random_zoo)["feature_maps"](str(path), "resnet18", "mnist", "layer9")
    with pytest.raises(gr.Error, match="blank"):
        blank = tmp_path / "blank.png"
        Image.new("L", (50, 50), 255).save(blank)
        api.endpoints(random_zoo)["classify"](str(blank), "vgg11", "mnist")


def test_build_demo_contract(random_zoo, monkeypatch):
    demo = layout.build_demo(random_zoo)
    assert isinstance(demo, gr.Blocks)
    # The session's models are the app's (cnndemo.app.sessions), not in a gr.State that Gradio may evict
    assert not [b for b in demo.blocks.values() if isinstance(b, gr.State)
                and "SessionModels" in type(b.value).__name__]
    assert any(t[1] == "unload" for d in demo.fns.values() for t in d.targets), "a closed page ends its store"
    assert demo._queue.max_size == serving.QUEUE_MAX_SIZE and demo.delete_cache == serving.DELETE_CACHE
    finetune = next(d for d in demo.fns.values() if d.api_name == "finetune")
    assert finetune.concurrency_limit is None  # runs wait in the app's own queue, where Stop reaches them
    names = {d.api_name for d in demo.fns.values() if d.api_visibility == "public"}
    assert {"classify", "feature_maps", "inception_branches", "residual_blocks", "finetune", "finetune_stop",
            "finetune_use", "finetune_forget"} <= names
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    kwargs = layout.launch_kwargs()
    assert kwargs["server_name"] == "127.0.0.1" and kwargs["server_port"] == 7860 and kwargs["max_file_size"]


def _ink(side: int = 112) -> np.ndarray:
    """The drawing's alpha at the live canvas's bitmap size."""
    return np.asarray(Image.fromarray(drawing()[..., 3]).resize((side, side), Image.Resampling.BOX))


def _canvas_event(demo: gr.Blocks):
    """The one event bound to the live canvas (elem_id "canvas")."""
    canvas = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "canvas")
    events = [fn for fn in demo.fns.values() if any(t[0] == canvas._id for t in fn.targets)]
    assert len(events) == 1, "one event per canvas update"
    return canvas, events[0]


@pytest.mark.parametrize("active", ["vgg", "googlenet", "resnet"])
def test_one_canvas_event_renders_the_visible_tab_only(random_zoo, active):
    """A canvas payload -> one handler: what the network sees, the note, and the visible tab's views, nothing else."""
    demo = layout.build_demo(random_zoo)
    canvas, event = _canvas_event(demo)
    payload = encode_canvas(_ink(), seq=5)
    controls = {"vgg": ("vgg11", views.default_layer(random_zoo, "vgg11"), None),
                "googlenet": ("googlenet", views.default_layer(random_zoo, "googlenet"), None),
                "resnet": ("resnet18", views.default_layer(random_zoo, "resnet18"), None)}
    out = event.fn(payload, 0, SimpleNamespace(session_hash=f"views-{active}"), "mnist", active, *[c for tab in ("vgg", "googlenet", "resnet") for c in controls[tab]])
    by_id = {getattr(k, "elem_id", None): v for k, v in out.items()}
    assert out[canvas]["ack"] == 5 and 5 in out.values()  # the seq is echoed and remembered
    assert "canvas" in out.values()  # the drawing is now the current input
    assert by_id["sees"].size == (224, 224) and "MNIST" in by_id["input-note"]
    assert len(by_id[f"label-{active}"]) == 5 and isinstance(by_id[f"fmap-{active}"], Image.Image)
    assert not {f"label-{t}" for t in controls if t != active} & set(by_id), "hidden tabs compute nothing"
    images = [v for v in out.values() if isinstance(v, Image.Image)]
    updates = [v for v in out.values() if isinstance(v, dict) and isinstance(v.get("value"), Image.Image)]
    assert len(images) + len(updates) == 2 + {"vgg": 0, "googlenet": 4, "resnet": 1}[active]
    # An older payload than the one answered is skipped; a blank canvas clears the views.
    stale = event.fn(encode_canvas(_ink(), seq=4), 5, SimpleNamespace(session_hash=f"views-{active}"), "mnist", active, *[None] * 9)
    assert stale == {canvas: {"__type__": "update", "ack": 5}}
    blank = event.fn(encode_canvas(None, seq=6), 5, SimpleNamespace(session_hash=f"views-{active}"), "mnist", active, *controls[active] * 3)
    assert {k.elem_id: v for k, v in blank.items() if getattr(k, "elem_id", None)}["sees"] is None
