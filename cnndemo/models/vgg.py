"""VGG (seeds 000 and 003): five blocks of 3x3 convs, each ending in a 2x2 max-pool, then three FC layers.

The depth is data: a ``conv_arch`` tuple of ``(num_convs, out_channels)`` per block.
Two stacked 3x3 convs see 5x5 and three see 7x7, with fewer weights (27C^2 vs 49C^2)
and more non-linearities than one big kernel.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from cnndemo.models.common import ConvBNReLU, scale

ConvArch = Sequence[Sequence[int]]

VGG_CONFIGS: dict[str, tuple[tuple[int, int], ...]] = {
    "vgg11": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    "vgg13": ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    "vgg16": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "vgg19": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}


class VGGBlock(nn.Sequential):
    """``num_convs`` x (conv3x3 pad 1 [+BN] + ReLU) keep H x W; MaxPool 2x2/2 halves them."""

    visual_kind = "block"


def vgg_block(num_convs: int, in_channels: int, out_channels: int, batch_norm: bool = False) -> VGGBlock:
    """The seed's ``vgg_block(num_convs, in_channels, out_channels)``."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers.append(ConvBNReLU(in_channels, out_channels, 3, batch_norm=batch_norm))
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return VGGBlock(*layers)


class VGG(nn.Module):
    """VGG built from ``conv_arch``.

    Defaults are seed 003's VGG-11 for 1 x 224 x 224 inputs and 10 classes:
    features -> [N, 512, 7, 7], flatten 25088 -> 4096 -> 4096 -> 10.

    Args:
        conv_arch: ``(num_convs, out_channels)`` per block (see ``VGG_CONFIGS``).
        in_channels, num_classes: input channels and number of outputs.
        ratio: width divisor (the book trains VGG-11 with ``ratio = 4``); also divides ``hidden``.
        batch_norm: BatchNorm after every conv (torchvision's ``vgg11_bn``).
        hidden: width of the two hidden FC layers before ``ratio``.
        pool_to: adaptive average pool to ``pool_to x pool_to`` before the classifier
            (torchvision uses 7; ``None`` = no pool, as in the book).
        dropout: dropout probability in the classifier.
        final_size: spatial side after the last block when ``pool_to`` is ``None``
            (7 for 224 inputs; 1 for the 32 x 32 padded demo input).
    """

    def __init__(
        self,
        conv_arch: ConvArch = VGG_CONFIGS["vgg11"],
        in_channels: int = 1,
        num_classes: int = 10,
        ratio: int = 1,
        batch_norm: bool = False,
        hidden: int = 4096,
        pool_to: int | None = None,
        dropout: float = 0.5,
        final_size: int = 7,
    ):
        super().__init__()
        blocks: list[tuple[str, nn.Module]] = []
        c = in_channels
        for i, (num_convs, out_c) in enumerate(conv_arch, start=1):
            out_c = scale(out_c, ratio)
            blocks.append((f"block{i}", vgg_block(num_convs, c, out_c, batch_norm)))  # H, W halved
            c = out_c
        self.features = nn.Sequential(OrderedDict(blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(pool_to) if pool_to else nn.Identity()
        side = pool_to or final_size  # spatial side after the last block (224 / 2**5 = 7)
        hidden = scale(hidden, ratio)
        self.classifier = nn.Sequential(
            nn.Flatten(),  # N x (c * side * side)
            nn.Linear(c * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))

    def get_classifier(self) -> nn.Linear:
        return self.classifier[-1]

    def trainable_tail(self) -> list[nn.Module]:
        """The last conv block and the fully connected classifier."""
        return [self.features[-1], self.classifier]
