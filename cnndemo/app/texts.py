"""The short explanations shown in each network's tab (from the seed posts; see /docs or the README)."""

from __future__ import annotations

from torch import nn

from cnndemo.models import count_params


def fc_share(model: nn.Module) -> float:
    """Fraction of the parameters that sit in fully connected (``nn.Linear``) layers."""
    total = count_params(model)
    fc = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())
    return fc / total if total else 0.0


VGG = """\
### VGG: depth from small 3x3 kernels
Every convolution is **3x3, stride 1, padding 1**, so it keeps height and width; every block ends
in a **2x2 max-pool** that halves them. Stacking small kernels grows what a unit can see:
**two 3x3 convs see 5x5, three see 7x7**. Three 3x3 layers with C channels hold 3·9C² = **27C²**
weights against **49C²** for one 7x7 layer (55%), and put three ReLUs in the way instead of one.
VGG-11 is 8 convs in 5 blocks (1, 1, 2, 2, 2 convs) and 3 fully connected layers, which hold most
of the weights: **{fc:.0%}** of this model's {params:,} parameters.

*This demo model:* channels divided by 4 (the book's `ratio`), BatchNorm, and 28x28 padded to
32x32 so the five pools end at 1x1.
"""

GOOGLENET = """\
### GoogLeNet: Inception modules and 1x1 reductions
An **Inception module** runs four branches on the same input and concatenates them on the channel
axis: **1x1**; **1x1 → 3x3**; **1x1 → 5x5**; **3x3 max-pool → 1x1** ("pool-proj"). The **1x1 convs in
front of the big kernels cut the channels first**: in module 3a (192 channels in, 28x28), a 5x5 conv
straight to 32 channels costs 120M multiply-adds; a 1x1 squeeze to 16 channels first costs
2.4M + 10.0M = 12.4M, **about 1/10**. Instead of big fully connected layers the net ends with
**global average pooling** (about 5M parameters at full width: 1/12 of AlexNet, 1/36 of VGG).

*This demo model:* channels divided by 4, BatchNorm, and a small stem for 28x28 inputs, so the
Inception stages run at 14x14, 7x7 and 4x4 ({params:,} parameters).
"""

INCEPTION_NET = """\
### Course Inception net (seed 002)
The Inception idea at toy size. Each module has four branches: **1x1 → 16**, **1x1 → 16 then
5x5 → 24**, **1x1 → 16 then 3x3 → 24 → 3x3 → 24**, and **3x3 average-pool → 1x1 → 24**, concatenated:
**16 + 24 + 24 + 24 = 88 channels** whatever comes in. The 1x1 conv before the big kernel cuts the
multiply count to about 1/10. Model: conv 5x5 (1→10) → max-pool → ReLU → Inception → conv 5x5
(88→20) → max-pool → ReLU → Inception → flatten (1408) → Linear(1408, 10): {params:,} parameters.
As in the course, the branches have no ReLU of their own (so their maps can be negative).
"""

RESNET = """\
### ResNet: the skip connection
A **residual block** computes **F(x)** (3x3 conv → BatchNorm → ReLU → 3x3 conv → BatchNorm) and outputs
**relu(F(x) + x)**. If the best a block can do is nothing, it only has to learn F(x) = 0, and in
back-propagation the gradient reaches early layers **through the "+ x" unchanged** instead of through
a long product of factors below 1 (vanishing gradients). That is why much deeper nets train, where
simply stacking more plain layers makes results worse. Where a stage halves the size and doubles the
channels, the shortcut is a 1x1 conv with stride 2. **‖F(x)‖/‖x‖** below measures how big a
correction each block adds to what flows past it.

*This demo model:* ResNet-18 (2, 2, 2, 2 blocks) with widths 16-32-64-128 and a 3x3 stem without
pooling: stages at 28, 14, 7 and 4 pixels ({params:,} parameters).
"""

RESIDUAL_NET = """\
### Course residual net (seed 002)
The residual block at toy size: **y = relu(conv3x3(x)); y = conv3x3(y); out = relu(x + y)**. Channels
and size are kept, so the shortcut is the identity. Model: conv 5x5 (1→16) → ReLU → max-pool →
ResBlock(16) → conv 5x5 (16→32) → ReLU → max-pool → ResBlock(32) → flatten (512) → Linear(512, 10):
{params:,} parameters. The skip keeps the gradient near 1 through each block. The course's lesson on
training: test accuracy can peak and then fall, so keep the best epoch's weights.
"""

TEXTS = {"vgg11": VGG, "googlenet": GOOGLENET, "resnet18": RESNET, "inception_net": INCEPTION_NET, "residual_net": RESIDUAL_NET}


def explanation(arch: str, model: nn.Module | None = None) -> str:
    """The explanation for ``arch``, with this model's parameter count (and FC share for VGG)."""
    params = count_params(model) if model is not None else 0
    fc = fc_share(model) if model is not None else 0.0
    return TEXTS[arch].format(params=params, fc=fc)


DEVICE_NOTES = """\
**Reading the GPU (seed 003's `nvidia-smi` notes).** *Memory usage* is how much GPU memory is
allocated (weights, activations, PyTorch's cache); *GPU utilisation* is the share of time a kernel
was running. They are different things: a model can hold a lot of memory while the GPU sits idle.
`nvidia-smi` also shows the GPU name, fan, temperature, performance state (P0 = fastest),
power use against its cap, and the processes holding memory.
"""
