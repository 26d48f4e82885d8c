"""Seed fidelity: built as in the seeds, the models print the seeds' shapes; parity with torchvision."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnndemo.models import (
    DEMO_CONFIGS, VGG, VGG_CONFIGS, GoogLeNet, Inception, InceptionNet, ResidualNet, ResNet, build_model,
    count_params, visual_layers,
)
from cnndemo.models.course import CourseInception


def child_shapes(module: nn.Module, x: torch.Tensor) -> list[tuple[str, list[int]]]:
    """Seed 004's debugging habit: push a tensor through named_children() and record each output shape."""
    out = []
    for name, child in module.named_children():
        x = child(x)
        out.append((name, list(x.shape)))
    return out


@torch.no_grad()
def test_vgg11_seed_shapes():
    net = VGG(VGG_CONFIGS["vgg11"], in_channels=1, num_classes=10).eval()
    shapes = [s for _, s in child_shapes(net.features, torch.zeros(1, 1, 224, 224))]
    assert shapes == [[1, 64, 112, 112], [1, 128, 56, 56], [1, 256, 28, 28], [1, 512, 14, 14], [1, 512, 7, 7]]
    x = torch.zeros(1, 512, 7, 7)
    classifier_shapes = [s for _, s in child_shapes(net.classifier, x)]
    assert classifier_shapes[0] == [1, 25088]
    linear_outs = [s for (_, s), m in zip(child_shapes(net.classifier, x), net.classifier) if isinstance(m, nn.Linear)]
    assert linear_outs == [[1, 4096], [1, 4096], [1, 10]]
    assert list(net(torch.zeros(1, 1, 224, 224)).shape) == [1, 10]


def test_vgg_depths_from_conv_arch():
    for name, n_convs in (("vgg11", 8), ("vgg13", 10), ("vgg16", 13), ("vgg19", 16)):
        net = VGG(VGG_CONFIGS[name])
        assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == n_convs
        assert sum(isinstance(m, nn.Linear) for m in net.modules()) == 3


@torch.no_grad()
def test_googlenet_seed_shapes():
    net = GoogLeNet(in_channels=1, num_classes=10).eval()
    x = torch.zeros(1, 1, 224, 224)
    x = net.conv1(x)
    assert list(x.shape) == [1, 64, 56, 56]
    x = net.conv2(x)
    assert list(x.shape) == [1, 192, 28, 28]
    assert list(net.inception.inception3a(x).shape) == [1, 256, 28, 28]
    stages = dict(child_shapes(net.inception, x))
    assert stages["inception5b"] == [1, 1024, 7, 7]
    assert list(net(torch.zeros(1, 1, 224, 224)).shape) == [1, 10]
    # "About 5M parameters", of which the convs are about 6M in the ImageNet original; here 1 -> 10 classes.
    assert 5.5e6 < count_params(net) < 6.2e6


@torch.no_grad()
def test_inception_branches_seed_004():
    module = Inception(192, 64, (96, 128), (16, 32), 32).eval()
    x = torch.zeros(1, 192, 28, 28)
    channels = [module.get_submodule(b)(x).shape[1] for b in module.branch_names]
    assert channels == [64, 128, 32, 32]
    assert list(module(x).shape) == [1, 256, 28, 28]
    kernel_sizes = [[m.kernel_size for m in module.get_submodule(b).modules() if isinstance(m, nn.Conv2d)]
                    for b in module.branch_names]
    assert kernel_sizes == [[(1, 1)], [(1, 1), (3, 3)], [(1, 1), (5, 5)], [(1, 1)]]


@torch.no_grad()
def test_course_inception_net_seed_002():
    module = CourseInception(10)
    assert module(torch.zeros(1, 10, 12, 12)).shape[1] == 16 + 24 + 24 + 24 == 88
    net = InceptionNet().eval()
    assert net.fc.in_features == 1408
    x = torch.zeros(2, 1, 28, 28)
    feats = net.incep2(torch.relu(net.mp(net.conv2(net.incep1(torch.relu(net.mp(net.conv1(x))))))))
    assert feats.flatten(1).shape[1] == 1408
    assert list(net(x).shape) == [2, 10]


@torch.no_grad()
def test_course_residual_net_seed_002():
    net = ResidualNet().eval()
    x = torch.zeros(2, 1, 28, 28)
    h = net.mp(torch.relu(net.conv1(x)))
    assert list(net.rblock1(h).shape) == [2, 16, 12, 12]
    h = net.mp(torch.relu(net.conv2(net.rblock1(h))))
    assert net.rblock2(h).flatten(1).shape[1] == 512 == net.fc.in_features
    assert list(net(x).shape) == [2, 10]


def test_parameter_parity_with_torchvision():
    import torchvision

    ours_vgg = VGG(VGG_CONFIGS["vgg11"], in_channels=3, num_classes=1000, pool_to=7)
    ours_resnet = ResNet(in_channels=3, num_classes=1000)
    assert count_params(ours_vgg) == count_params(torchvision.models.vgg11()) == 132_863_336
    assert count_params(ours_resnet) == count_params(torchvision.models.resnet18()) == 11_689_512
    assert count_params(ResNet((3, 4, 6, 3), in_channels=3, num_classes=1000)) == count_params(torchvision.models.resnet34())
    # With BatchNorm our convs drop their bias (BN's shift makes it redundant); torchvision's vgg11_bn keeps it.
    bn = VGG(VGG_CONFIGS["vgg11"], in_channels=3, num_classes=1000, pool_to=7, batch_norm=True)
    conv_biases = sum(c for n, c in VGG_CONFIGS["vgg11"] for _ in range(n))
    assert count_params(bn) + conv_biases == count_params(torchvision.models.vgg11_bn())


@pytest.mark.parametrize("arch", list(DEMO_CONFIGS))
@torch.no_grad()
def test_demo_models_take_28x28_and_list_layers(arch):
    model = build_model(arch, 0.5, 0.25).eval()
    assert list(model(torch.rand(3, 1, 28, 28)).shape) == [3, 10]
    layers = visual_layers(model)
    kinds = {layer.kind for layer in layers}
    assert "conv" in kinds
    for layer in layers:
        model.get_submodule(layer.name)  # every listed name resolves
    if arch in ("googlenet", "inception_net"):
        modules = [layer for layer in layers if layer.kind == "inception"]
        assert len(modules) == (9 if arch == "googlenet" else 2)
        assert sum(layer.kind == "branch" for layer in layers) == 4 * len(modules)
    if arch in ("resnet18", "residual_net"):
        assert sum(layer.kind == "residual" for layer in layers) == (8 if arch == "resnet18" else 2)
    if arch == "vgg11":
        assert sum(layer.kind == "block" for layer in layers) == 5
        assert sum(layer.kind == "conv" for layer in layers) == 8


def test_no_inplace_relu_anywhere():
    """Forward hooks on conv outputs must not be overwritten by an in-place ReLU."""
    for arch in DEMO_CONFIGS:
        model = build_model(arch, 0.5, 0.25)
        assert not any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules()), arch


def test_normalisation_and_padding_live_inside_the_model():
    model = build_model("vgg11", 0.1307, 0.3081)
    x = torch.zeros(1, 1, 28, 28)
    prepped = model.prep(x)
    assert list(prepped.shape) == [1, 1, 32, 32]
    assert torch.allclose(prepped, torch.full_like(prepped, -0.1307 / 0.3081))
    assert count_params(model.prep) == 0
