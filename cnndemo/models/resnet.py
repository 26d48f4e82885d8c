"""ResNet (He et al. 2015), the torchvision way: a block class and ``_make_layer``.

A residual block learns F(x) and outputs relu(F(x) + x): when the best thing a block
can do is nothing, F(x) = 0 is easy to learn, and the gradient flows back through the
"+ x" unchanged instead of through a long product of factors below 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnndemo.models.common import ConvBNReLU

RESNET_CONFIGS: dict[str, tuple[int, ...]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
}


class BasicBlock(nn.Module):
    """conv3x3 (stride s) -> BN -> ReLU -> conv3x3 -> BN = F(x); out = relu(F(x) + shortcut(x)).

    The shortcut is the identity, or conv1x1/s + BN where the shape changes.
    """

    visual_kind = "residual"
    residual_branch = "residual"  # the submodule computing F(x)
    shortcut_branch: str | None = "shortcut"  # the submodule computing shortcut(x)
    expansion = 1

    def __init__(self, in_c: int, out_c: int, stride: int = 1):
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_c, out_c, 3, stride=stride, padding=1, bias=False),  # H/s
            nn.BatchNorm2d(out_c),
            nn.ReLU(),
            nn.Conv2d(out_c, out_c, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_c),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_c != out_c:
            self.shortcut = nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False), nn.BatchNorm2d(out_c))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet with ``layers[i]`` blocks in stage i, widths ``width * (1, 2, 4, 8)``.

    ``stem="imagenet"`` is torchvision's (conv7x7/2 + BN + ReLU + maxpool 3x3/2; 224 -> 56).
    ``stem="small"`` is the demo adaptation for 28 x 28 inputs (conv3x3/1 + BN + ReLU, no pool):
    stages run at 28, 14, 7 and 4 pixels.
    """

    def __init__(
        self,
        layers: Sequence[int] = RESNET_CONFIGS["resnet18"],
        in_channels: int = 1,
        num_classes: int = 10,
        width: int = 64,
        stem: str = "imagenet",
        block: type[BasicBlock] = BasicBlock,
    ):
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),  # H/2
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),  # H/4
            )
        elif stem == "small":
            self.stem = ConvBNReLU(in_channels, width, 3, batch_norm=True)  # H kept
        else:
            raise ValueError(f"unknown stem {stem!r}: 'imagenet' or 'small'")
        self.in_c = width
        self.layer1 = self._make_layer(block, width, layers[0], stride=1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)  # H/2
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)  # H/2
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)  # H/2
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # N x 8w x 1 x 1
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block: type[BasicBlock], out_c: int, blocks: int, stride: int) -> nn.Sequential:
        """``blocks`` residual blocks; the first one changes width and stride."""
        layers = [block(self.in_c, out_c, stride)]
        self.in_c = out_c * block.expansion
        layers += [block(self.in_c, out_c) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def trainable_tail(self) -> list[nn.Module]:
        """Stage 4 and fc."""
        return [self.layer4, self.fc]
