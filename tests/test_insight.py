"""The "Why?" core on real checkpoints and real test images: attribution, receptive fields, mistakes, compare."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from cnndemo.catalog import CLASSES
from cnndemo.insight.attribution import attribute
from cnndemo.insight.compare import agreement, compare_models
from cnndemo.insight.mistakes import load_mistakes
from cnndemo.insight.receptive_field import GLOBAL, receptive_field, stacked_3x3, theoretical_fields, unit_box
from cnndemo.inspection.analysis import layer_shapes
from cnndemo.models import ARCHS, visual_layers
from cnndemo.train.checkpoints import list_pretrained, load_pretrained

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Three real MNIST test images (committed copies of test-set images), different digits.
DIGITS = [EXAMPLES / "mnist" / name for name in ("0_0_0003.png", "4_4_0004.png", "7_7_0000.png")]


def load_example(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("L"), np.float32) / 255)[None, None]


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    return {a: load_pretrained(a, "mnist", device="cpu")[0] for a in ARCHS if (a, "mnist") in list_pretrained()}


def near_ink(x: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Pixels within ``radius`` of an inked pixel (> 0.2)."""
    ink = (x[0, 0] > 0.2).float()[None, None]
    return F.max_pool2d(ink, 2 * radius + 1, 1, radius)[0, 0] > 0


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_pixel_attribution_sits_on_the_ink(models, method):
    for path in DIGITS[1:]:
        x = load_example(path)
        near = near_ink(x)
        for arch, model in models.items():
            a = attribute(model, x, method, CLASSES["mnist"])
            assert a.target == a.predicted == int(path.name[0]), (arch, path.name)
            pos = a.attribution.clamp(min=0)
            share = float(pos[near].sum() / pos.sum())
            # the ink neighbourhood is 25-45 % of the image but holds (nearly) all the positive evidence
            assert share > 0.9, (arch, method, path.name, share, float(near.float().mean()))


def test_gradcam_leans_towards_the_ink(models):
    for arch in ("googlenet", "resnet18"):
        shares, areas = [], []
        for path in DIGITS:
            x = load_example(path)
            a = attribute(models[arch], x, "gradcam", CLASSES["mnist"])
            pos = a.attribution.clamp(min=0)
            near = near_ink(x)
            shares.append(float(pos[near].sum() / pos.sum()))
            areas.append(float(near.float().mean()))
        assert np.mean(shares) > 1.25 * np.mean(areas), (arch, shares, areas)


def test_attribution_explains_the_class_asked_for(models):
    x = load_example(DIGITS[2])
    a7 = attribute(models["resnet18"], x, "integrated_gradients", CLASSES["mnist"])
    a1 = attribute(models["resnet18"], x, "integrated_gradients", CLASSES["mnist"], target="1")
    assert (a7.target, a1.target, a1.predicted) == (7, 1, 7)
    # integrated gradients add up to the score difference from the black baseline (completeness)
    with torch.no_grad():
        gain = models["resnet18"](x)[0] - models["resnet18"](torch.zeros_like(x))[0]
    for a in (a7, a1):
        assert float(a.attribution.sum()) == pytest.approx(float(gain[a.target]), rel=0.1, abs=0.3)


def test_bad_attribution_requests_say_why(models):
    x = load_example(DIGITS[0])
    with pytest.raises(ValueError, match="Unknown method"):
        attribute(models["vgg11"], x, "lime", CLASSES["mnist"])
    with pytest.raises(ValueError, match="out of range"):
        attribute(models["vgg11"], x, "gradcam", CLASSES["mnist"], target=12)
    with pytest.raises(LookupError, match="Unknown layer"):
        attribute(models["vgg11"], x, "gradcam", CLASSES["mnist"], layer="features.block9")


# Hand-computed: (receptive-field side, stride in input pixels, first input row seen by unit 0).
# VGG pads 28 -> 32 inside the model, so its offsets start 2 px further out.
HAND_RF = {
    "vgg11": {"features.block1.0": (3, 1, -3), "features.block1": (4, 2, -3), "features.block2.0": (8, 2, -5),
              "features.block2": (10, 4, -5), "features.block3.0": (18, 4, -9), "features.block3.1": (26, 4, -13)},
    "googlenet": {"conv1.0": (3, 1, -1), "conv1": (5, 2, -2), "conv2.0": (5, 2, -2), "conv2.1": (9, 2, -4),
                  "inception.inception3a.branch1": (9, 2, -4), "inception.inception3a.branch2": (13, 2, -6),
                  "inception.inception3a.branch3": (17, 2, -8), "inception.inception3a.branch4": (13, 2, -6),
                  "inception.inception3a": (17, 2, -8)},
    "resnet18": {"stem": (3, 1, -1), "layer1.0": (7, 1, -3), "layer1.1": (11, 1, -5), "layer2.0": (17, 2, -8)},
    "inception_net": {"conv1": (5, 1, 0), "incep1.branch1x1": (6, 2, 0), "incep1.branch5x5": (14, 2, -4),
                      "incep1.branch3x3": (14, 2, -4), "incep1.branch_pool": (10, 2, -2), "incep1": (14, 2, -4),
                      "conv2": (22, 2, -4)},
    "residual_net": {"conv1": (5, 1, 0), "rblock1": (14, 2, -4), "conv2": (22, 2, -4), "rblock2": (40, 4, -12)},
}


@pytest.mark.parametrize("arch", list(HAND_RF))
def test_theoretical_receptive_fields_match_hand_values(models, arch):
    fields = theoretical_fields(models[arch])
    for layer, (size, jump, lo) in HAND_RF[arch].items():
        rows, cols = fields[f"net.{layer}"]  # any submodule, not only the listed layers
        assert (rows.size, rows.jump, rows.lo) == (size, jump, lo), layer
        assert rows == cols
    assert fields["net"] == GLOBAL  # the logits see everything


def test_stacked_3x3_convs_see_5x5_then_7x7():
    assert stacked_3x3(4) == [3, 5, 7, 9]


def test_box_is_clipped_to_the_input(models):
    rows, cols = theoretical_fields(models["vgg11"])["net.features.block1.0"]
    assert unit_box((rows, cols), 0, 0) == (0, 0, 0, 0)  # a corner unit of the 32 x 32 map sees only padding
    assert unit_box((rows, cols), 2, 3) == (0, 0, 2, 3)
    assert unit_box((rows, cols), 16, 16) == (13, 13, 16, 16)


@pytest.mark.parametrize("arch", list(HAND_RF))
def test_gradient_never_leaves_the_theoretical_box(models, arch):
    model, x = models[arch], load_example(DIGITS[1])
    for vl in [vl for vl in visual_layers(model) if vl.kind != "branch"]:  # a branch is a part of its module
        h, w = layer_shapes(model)[vl.name][-2:]
        u = receptive_field(model, x, vl.name, h // 2, w // 2)
        top, left, bottom, right = u.box
        outside = u.effective.clone()
        outside[top:bottom, left:right] = 0
        assert float(outside.max()) == 0.0, (vl.name, u.box)
        assert float(u.effective.max()) == pytest.approx(1.0), vl.name  # the unit does depend on the input


def test_bad_receptive_field_requests_say_why(models):
    x = load_example(DIGITS[0])
    with pytest.raises(ValueError, match="outside"):
        receptive_field(models["resnet18"], x, "layer4.1", 0, 4)
    with pytest.raises(ValueError, match="outside"):
        receptive_field(models["resnet18"], x, "stem", -1, 0)
    with pytest.raises(LookupError, match="Unknown layer"):
        receptive_field(models["resnet18"], x, "layer5", 0, 0)


@pytest.mark.parametrize("arch,dataset", [(a, d) for a in ARCHS for d in ("mnist", "fashion_mnist")])
def test_mistakes_agree_with_the_checkpoint(arch, dataset):
    model, meta = load_pretrained(arch, dataset, device="cpu")
    m = load_mistakes(arch, dataset)
    assert m.total == 10_000 and m.total_misclassified == round((1 - meta["test_accuracy"]) * 10_000)
    assert m.test_accuracy == pytest.approx(meta["test_accuracy"], abs=1e-9)
    assert int(m.confusion.sum() - np.trace(m.confusion)) == m.total_misclassified
    assert np.all(m.true != m.pred) and np.all(np.diff(m.confidence) <= 0)
    counts = np.zeros((10, 10), np.int64)
    np.add.at(counts, (m.true, m.pred), 1)
    off = m.confusion.copy()
    np.fill_diagonal(off, 0)
    assert np.array_equal(counts, off)
    # the stored images really are misclassified, the same way, by the model
    x = torch.from_numpy(m.images[:32]).float().div(255)[:, None]
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)
    assert np.array_equal(probs.argmax(1).numpy(), m.pred[:32])
    assert np.allclose(probs.max(1).values.numpy(), m.confidence[:32], atol=1e-4)


def test_mistake_images_are_the_test_images(fashion_ready):
    from cnndemo.data.datasets import load_test

    test = load_test("fashion_mnist")
    m = load_mistakes("residual_net", "fashion_mnist")
    assert np.array_equal(test.images[torch.from_numpy(m.index.astype(np.int64))].numpy(), m.images)
    assert np.array_equal(test.labels[torch.from_numpy(m.index.astype(np.int64))].numpy(), m.true)


def test_compare_agrees_with_each_model():
    files = sorted((EXAMPLES / "fashion_mnist").glob("*.png"))[::17]
    nets = {a: load_pretrained(a, "fashion_mnist", device="cpu")[0] for a in ARCHS}
    for path in files:
        x = load_example(path)
        results = compare_models(nets, x, CLASSES["fashion_mnist"], repeats=1)
        assert [r.arch for r in results] == list(ARCHS)
        for r in results:
            with torch.no_grad():
                probs = torch.softmax(nets[r.arch](x), 1)[0]
            assert r.index == int(probs.argmax()) and r.label == CLASSES["fashion_mnist"][r.index]
            assert r.confidence == pytest.approx(float(probs.max()), abs=1e-5)
            assert r.params == sum(p.numel() for p in nets[r.arch].parameters())
            assert r.macs > 0 and r.ms > 0
        assert agreement(results) == (len({r.index for r in results}) == 1)
    with pytest.raises(ValueError, match="28 x 28"):
        compare_models(nets, torch.zeros(1, 1, 32, 32), CLASSES["fashion_mnist"])
