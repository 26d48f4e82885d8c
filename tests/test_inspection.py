"""Hooks: layer listing, feature maps, Inception branch outputs (channel counts add up), residual blocks."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from cnndemo.inspection import analysis as inspection, hooks
from cnndemo.models import ARCHS, build_model, visual_layers
from cnndemo.models.googlenet import Inception
from cnndemo.models.course import CourseInception


def x28(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


class Wrap(nn.Module):
    """Puts a module under ``net.`` as the zoo's models do."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.net = module

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_listed_layer_resolves_and_gives_a_map(arch):
    model = build_model(arch, 0.1, 0.3).eval()
    layers = visual_layers(model)
    assert layers and all(l.name.startswith("net.") for l in layers)
    for layer in layers:
        seen = inspection.analyse(model, x28(), [layer.name])
        fm = seen.features[layer.name]
        assert fm.maps.ndim == 3 and fm.maps.shape[0] >= 1
        assert seen.probs.shape == (10,) and abs(float(seen.probs.sum()) - 1) < 1e-5
        assert fm.strongest()[0] == int(fm.channel_max.argmax())


def test_feature_maps_match_a_manual_forward():
    model = build_model("inception_net", 0.1, 0.3).eval()
    fm = inspection.feature_maps(model, x28(), "net.conv1")
    with torch.no_grad():
        manual = model.net.conv1(model.prep(x28()))[0]
    assert torch.allclose(fm.maps, manual)


def test_hooked_output_is_a_clone():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True))

        def forward(self, x):
            return self.net(x)

    model = InPlace().eval()
    with hooks.capture(model, ["net.0"]) as seen:
        with torch.no_grad():
            model(x28() - 0.5)
    assert seen["net.0"].min() < 0  # the conv output before the in-place ReLU overwrote it


def test_capture_ignores_other_threads():
    model = build_model("residual_net", 0.1, 0.3).eval()
    with hooks.capture(model, ["net.conv1"]) as seen:
        t = threading.Thread(target=lambda: model(x28(1)))
        t.start()
        t.join()
        assert "net.conv1" not in seen
        with torch.no_grad():
            model(x28(2))
    assert "net.conv1" in seen


def test_full_width_inception_3a_branches_add_up_to_256():
    model = Wrap(Inception(192, 64, (96, 128), (16, 32), 32)).eval()
    view = inspection.inception_branches(model, torch.rand(1, 192, 28, 28), "net")
    assert [b.channels for b in view.branches] == [64, 128, 32, 32]
    assert view.out_channels == 256 == sum(b.channels for b in view.branches)
    assert [b.label for b in view.branches] == ["1x1", "3x3", "5x5", "pool-proj"]
    assert abs(sum(b.energy_share for b in view.branches) - 1) < 1e-6
    assert all(b.maps.shape[1:] == (28, 28) for b in view.branches)


def test_course_inception_branches_add_up_to_88():
    model = build_model("inception_net", 0.1, 0.3).eval()
    modules = inspection.inception_modules(model)
    assert [m.name for m in modules] == ["net.incep1", "net.incep2"]
    for m in modules:
        view = inspection.inception_branches(model, x28(), m.name)
        assert [b.channels for b in view.branches] == [16, 24, 24, 24]
        assert view.out_channels == 88 == sum(b.channels for b in view.branches)
        assert isinstance(model.get_submodule(m.name), CourseInception)


def test_energy_share_is_the_sum_of_squares_share():
    model = build_model("googlenet", 0.1, 0.3).eval()
    view = inspection.inception_branches(model, x28(), "net.inception.inception3a")
    assert [b.channels for b in view.branches] == [16, 32, 8, 8] and view.out_channels == 64
    energies = [float(b.maps.pow(2).sum()) for b in view.branches]
    for b, e in zip(view.branches, energies):
        assert abs(b.energy_share - e / sum(energies)) < 1e-5


def test_demo_googlenet_has_nine_modules_and_each_adds_up():
    model = build_model("googlenet", 0.1, 0.3).eval()
    modules = inspection.inception_modules(model)
    assert [m.name.rsplit("inception", 1)[1] for m in modules] == ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    for m in modules:
        view = inspection.inception_branches(model, x28(), m.name)
        assert sum(b.channels for b in view.branches) == view.out_channels == model.get_submodule(m.name).out_channels


def test_unknown_module_is_a_clear_error():
    model = build_model("vgg11", 0.1, 0.3).eval()
    with pytest.raises(LookupError, match="Unknown Inception module"):
        inspection.inception_branches(model, x28(), "net.features.block1")


@pytest.mark.parametrize("arch,count", [("resnet18", 8), ("residual_net", 2)])
def test_residual_blocks_out_is_relu_of_fx_plus_shortcut(arch, count):
    model = build_model(arch, 0.1, 0.3).eval()
    views = inspection.residual_blocks(model, x28())
    assert len(views) == count
    for v in views:
        assert torch.allclose(v.out, torch.relu(v.fx + v.shortcut), atol=1e-5)
        assert v.ratio == pytest.approx(float(v.fx.norm() / v.x.norm()))
        assert v.ratio > 0
    if arch == "residual_net":
        assert all(torch.equal(v.shortcut, v.x) for v in views)  # the course block's shortcut is the identity
    else:
        assert views[2].x.shape[0] * 2 == views[2].out.shape[0]  # layer2.0 doubles the channels (1x1 shortcut)


def test_top_k_is_sorted_and_named():
    probs = torch.softmax(torch.tensor([0.1, 3.0, 0.2, 2.0, 0.0, 1.0, 0.3, 0.4, 0.5, 0.6]), 0)
    top = inspection.top_k(probs, [str(i) for i in range(10)], 5)
    assert list(top) == ["1", "3", "5", "9", "8"]
    assert list(top.values()) == sorted(top.values(), reverse=True)
