"""The two small networks of seed 002 (Liu Er's PyTorch course), exactly as written there.

The only change is packaging: each Inception branch is an ``nn.Sequential`` (the seed
calls the same convs one after another in ``forward``), so a hook can see each branch's
output. Convolutions, pooling, ReLU placement and the order of concatenation
(1x1, 5x5, 3x3, pool) are the seed's. Shapes for a 1 x 28 x 28 input are in comments.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CourseInception(nn.Module):
    """The course's Inception module: 16 + 24 + 24 + 24 = 88 output channels, any input channels."""

    visual_kind = "inception"
    branch_names = ("branch1x1", "branch5x5", "branch3x3", "branch_pool")
    branch_labels = ("1x1", "5x5", "3x3 (double)", "pool-proj")

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch1x1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5 = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=1), nn.Conv2d(16, 24, kernel_size=5, padding=2)
        )
        self.branch3x3 = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=1),
            nn.Conv2d(16, 24, kernel_size=3, padding=1),
            nn.Conv2d(24, 24, kernel_size=3, padding=1),
        )
        self.branch_pool = nn.Sequential(
            nn.AvgPool2d(kernel_size=3, stride=1, padding=1), nn.Conv2d(in_channels, 24, kernel_size=1)
        )
        self.out_channels = 88

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.branch1x1(x), self.branch5x5(x), self.branch3x3(x), self.branch_pool(x)]
        return torch.cat(outputs, dim=1)  # N x 88 x H x W


class InceptionNet(nn.Module):
    """conv1 (1->10, k5) -> maxpool -> relu -> Inception(10) -> conv2 (88->20, k5) -> maxpool -> relu
    -> Inception(20) -> flatten (1408) -> Linear(1408, 10)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(88, 20, kernel_size=5)
        self.incep1 = CourseInception(in_channels=10)
        self.incep2 = CourseInception(in_channels=20)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(1408, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_size = x.size(0)
        x = F.relu(self.mp(self.conv1(x)))  # N x 10 x 12 x 12
        x = self.incep1(x)  # N x 88 x 12 x 12
        x = F.relu(self.mp(self.conv2(x)))  # N x 20 x 4 x 4
        x = self.incep2(x)  # N x 88 x 4 x 4
        x = x.view(in_size, -1)  # N x 1408
        return self.fc(x)

    channels_last = False  # ``view`` above needs contiguous NCHW

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def trainable_tail(self) -> list[nn.Module]:
        """The second Inception module and fc."""
        return [self.incep2, self.fc]


class CourseResidualBlock(nn.Module):
    """y = relu(conv3x3(x)); y = conv3x3(y); out = relu(x + y). Channels and size kept."""

    visual_kind = "residual"
    residual_branch = "conv2"  # its output is F(x)
    shortcut_branch = None  # the identity

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """F(x), the branch added to the skip connection."""
        return self.conv2(F.relu(self.conv1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.residual(x))


class ResidualNet(nn.Module):
    """conv1 (1->16, k5) -> relu -> maxpool -> ResBlock(16) -> conv2 (16->32, k5) -> relu -> maxpool
    -> ResBlock(32) -> flatten (512) -> Linear(512, 10)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=5)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5)
        self.mp = nn.MaxPool2d(2)
        self.rblock1 = CourseResidualBlock(16)
        self.rblock2 = CourseResidualBlock(32)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_size = x.size(0)
        x = self.mp(F.relu(self.conv1(x)))  # N x 16 x 12 x 12
        x = self.rblock1(x)  # N x 16 x 12 x 12
        x = self.mp(F.relu(self.conv2(x)))  # N x 32 x 4 x 4
        x = self.rblock2(x)  # N x 32 x 4 x 4
        x = x.view(in_size, -1)  # N x 512
        return self.fc(x)

    channels_last = False  # ``view`` above needs contiguous NCHW

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def trainable_tail(self) -> list[nn.Module]:
        """The second residual block and fc."""
        return [self.rblock2, self.fc]
