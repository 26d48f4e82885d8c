"""GoogLeNet / Inception v1 (seed 004).

An Inception module runs four branches side by side on the same input and concatenates
them on the channel axis: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max-pool -> 1x1 ("pool-proj").
The 1x1 convs in front of the 3x3 and 5x5 kernels cut the channels first, which is what
makes the big kernels affordable. The network is a stem, then stages of Inception
modules separated by max-pools, then global average pooling instead of big FC layers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnndemo.models.common import ConvBNReLU, scale

# (name, in_c, c1, (c2_reduce, c2), (c3_reduce, c3), c4), as printed in seed 004. Stages are
# separated by a 3x3/2 max-pool.
GOOGLENET_STAGES: tuple[tuple[tuple, ...], ...] = (
    (
        ("3a", 192, 64, (96, 128), (16, 32), 32),
        ("3b", 256, 128, (128, 192), (32, 96), 64),
    ),
    (
        ("4a", 480, 192, (96, 208), (16, 48), 64),
        ("4b", 512, 160, (112, 224), (24, 64), 64),
        ("4c", 512, 128, (128, 256), (24, 64), 64),
        ("4d", 512, 112, (144, 288), (32, 64), 64),
        ("4e", 528, 256, (160, 320), (32, 128), 128),
    ),
    (
        ("5a", 832, 256, (160, 320), (32, 128), 128),
        ("5b", 832, 384, (192, 384), (48, 128), 128),
    ),
)


class Inception(nn.Module):
    """``Inception(in_c, c1, c2, c3, c4)``: four branches, concatenated -> c1 + c2[1] + c3[1] + c4 channels.

    H and W are kept by every branch (1x1; 3x3 pad 1; 5x5 pad 2; 3x3/1 max-pool pad 1).
    """

    visual_kind = "inception"
    branch_names = ("branch1", "branch2", "branch3", "branch4")
    branch_labels = ("1x1", "3x3", "5x5", "pool-proj")

    def __init__(
        self,
        in_c: int,
        c1: int,
        c2: Sequence[int],
        c3: Sequence[int],
        c4: int,
        batch_norm: bool = False,
    ):
        super().__init__()
        bn = batch_norm
        self.branch1 = ConvBNReLU(in_c, c1, 1, batch_norm=bn)
        self.branch2 = nn.Sequential(ConvBNReLU(in_c, c2[0], 1, batch_norm=bn), ConvBNReLU(c2[0], c2[1], 3, batch_norm=bn))
        self.branch3 = nn.Sequential(ConvBNReLU(in_c, c3[0], 1, batch_norm=bn), ConvBNReLU(c3[0], c3[1], 5, batch_norm=bn))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), ConvBNReLU(in_c, c4, 1, batch_norm=bn))
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # N x (c1 + c2[1] + c3[1] + c4) x H x W


class GoogLeNet(nn.Module):
    """GoogLeNet from ``GOOGLENET_STAGES``.

    ``stem="imagenet"`` is seed 004 (1 x 224 x 224 input): conv7x7/2 + maxpool -> [N,64,56,56];
    conv1x1 + conv3x3 + maxpool -> [N,192,28,28]; 3a -> [N,256,28,28]; ... 5b -> [N,1024,7,7];
    global average pool, dropout 0.4, Linear(1024, classes).

    ``stem="small"`` is the demo adaptation for 28 x 28 inputs: conv3x3/1 + maxpool -> 14 x 14,
    conv1x1 + conv3x3 without a pool, so stage 3 runs at 14 x 14, stage 4 at 7 x 7 and
    stage 5 at 4 x 4 (instead of 28, 14, 7).

    Args:
        ratio: divides every channel count (``ratio=4``: 3a gives 16 + 32 + 8 + 8 = 64 channels).
        batch_norm: BatchNorm after every conv (the seed has none; it converges slowly).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        ratio: int = 1,
        batch_norm: bool = False,
        stem: str = "imagenet",
        dropout: float = 0.4,
        stages: Sequence[Sequence[Sequence]] = GOOGLENET_STAGES,
    ):
        super().__init__()
        r, bn = ratio, batch_norm
        c64, c192 = scale(64, r), scale(192, r)
        if stem == "imagenet":
            self.conv1 = nn.Sequential(
                ConvBNReLU(in_channels, c64, 7, stride=2, batch_norm=bn),  # H/2
                nn.MaxPool2d(3, stride=2, padding=1),  # H/4
            )
            conv2_pool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)  # H/8
        elif stem == "small":
            self.conv1 = nn.Sequential(
                ConvBNReLU(in_channels, c64, 3, batch_norm=bn),  # 28 x 28
                nn.MaxPool2d(3, stride=2, padding=1),  # 14 x 14
            )
            conv2_pool = nn.Identity()  # stays 14 x 14
        else:
            raise ValueError(f"unknown stem {stem!r}: 'imagenet' or 'small'")
        self.conv2 = nn.Sequential(
            ConvBNReLU(c64, c64, 1, batch_norm=bn), ConvBNReLU(c64, c192, 3, batch_norm=bn), conv2_pool
        )
        c = c192
        stage_modules: list[tuple[str, nn.Module]] = []
        for i, stage in enumerate(stages):
            if i > 0:
                stage_modules.append((f"pool{i + 2}", nn.MaxPool2d(3, stride=2, padding=1)))  # H/2 (ceil)
            for name, in_c, c1, c2, c3, c4 in stage:
                assert scale(in_c, r) == c, f"stage table: {name} expects {in_c} input channels"
                module = Inception(
                    c, scale(c1, r), [scale(v, r) for v in c2], [scale(v, r) for v in c3], scale(c4, r), bn
                )
                stage_modules.append((f"inception{name}", module))
                c = module.out_channels
        self.inception = nn.Sequential(OrderedDict(stage_modules))
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # N x c x 1 x 1 (seed: avgpool 7 on 7 x 7)
            nn.Flatten(),  # N x c
            nn.Dropout(dropout),
            nn.Linear(c, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.inception(self.conv2(self.conv1(x))))

    def get_classifier(self) -> nn.Linear:
        return self.head[-1]

    def trainable_tail(self) -> list[nn.Module]:
        """Inception 5b and the head."""
        return [self.inception[-1], self.head]
