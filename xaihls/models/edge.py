"""Edge CNNs with residual and depthwise-separable blocks: MLPerf Tiny's ResNet-8 and DS-CNN, a
small MobileNetV2, and digits-sized versions of ResNet and MobileNet (trained by ``train_digits``).

The nets that are not digits-sized have deterministic random weights (and BatchNorm statistics)
drawn from a seed, like CifarRefNet: enough for everything but accuracy. The residual nets run on
the golden model only for now (the engine runs chains; issue 15's engine half); DS-CNN is a chain
and runs on every executor.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ResNet8", "DSCNN", "MobileNetV2Tiny", "DigitsResNet", "DigitsMobileNet"]

KWS_INPUT_SHAPE = (1, 49, 10)
"""MLPerf Tiny keyword spotting's input: 49 frames of 10 MFCC features."""


def _randomize_batchnorm(model: nn.Module) -> None:
    """BatchNorm statistics and affine terms away from the identity, as a trained net has them."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.7, 1.3)
            m.bias.data.uniform_(-0.1, 0.1)


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the input (identity) or a stride-2 1x1 conv of it
    (projection), then ReLU: ResNet's basic block as MLPerf Tiny's ResNet-8 has it."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(y + skip)


class ResNet8(nn.Module):
    """MLPerf Tiny image classification's ResNet-8 on 3x32x32: a 16-channel stem, three residual
    blocks of 16, 32 and 64 channels (the last two stride 2 with projection shortcuts), global
    average pooling, 10 logits. 78k parameters."""

    def __init__(self, seed: int | None = 0, channels: tuple[int, int, int] = (16, 32, 64), classes: int = 10,
                 in_channels: int = 3) -> None:
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            super().__init__()
            c1, c2, c3 = channels
            self.stem = nn.Conv2d(in_channels, c1, 3, 1, 1)
            self.bn = nn.BatchNorm2d(c1)
            self.block1 = ResidualBlock(c1, c1, 1)
            self.block2 = ResidualBlock(c1, c2, 2)
            self.block3 = ResidualBlock(c2, c3, 2)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c3, classes)
            if seed is not None:
                _randomize_batchnorm(self)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.block3(self.block2(self.block1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class DSCNN(nn.Module):
    """MLPerf Tiny keyword spotting's DS-CNN on 1x49x10 MFCCs: a 10x4 stride-2 conv of 64 channels,
    four depthwise-separable blocks (3x3 depthwise-BN-ReLU, 1x1 pointwise-BN-ReLU), average pooling
    over the 25x5 map, 12 logits. 23k parameters. The reference pads the first conv as Keras's
    'same' does (4 rows above, 5 below); PyTorch pads symmetrically, so this one takes 5 and 5, which
    gives the same 25x5 map."""

    def __init__(self, seed: int | None = 0, channels: int = 64, blocks: int = 4, classes: int = 12) -> None:
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            super().__init__()
            layers: list[nn.Module] = [nn.Conv2d(1, channels, (10, 4), 2, (5, 1)), nn.BatchNorm2d(channels),
                                       nn.ReLU()]
            for _ in range(blocks):
                layers += [nn.Conv2d(channels, channels, 3, 1, 1, groups=channels), nn.BatchNorm2d(channels),
                           nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU()]
            self.features = nn.Sequential(*layers)
            self.pool = nn.AvgPool2d((25, 5))
            self.fc = nn.Linear(channels, classes)
            if seed is not None:
                _randomize_batchnorm(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion-BN-ReLU6, 3x3 depthwise-BN-ReLU6, 1x1 projection-BN,
    plus the input where the stride is 1 and the channels match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.expand = nn.Sequential(nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                                       nn.BatchNorm2d(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class MobileNetV2Tiny(nn.Module):
    """A small MobileNetV2 on 3x32x32: a 3x3 stem with ReLU6, inverted-residual blocks
    (depthwise 3x3, ReLU6, residual adds), a 1x1 head conv, global average pooling, 10 logits."""

    BLOCKS = ((16, 8, 1, 1), (8, 16, 2, 4), (16, 16, 1, 4), (16, 24, 2, 4), (24, 24, 1, 4))
    """(in channels, out channels, stride, expansion) of each block."""

    def __init__(self, seed: int | None = 0, in_channels: int = 3, classes: int = 10, stem: int = 16,
                 head: int = 64, blocks=BLOCKS) -> None:
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem),
                                      nn.ReLU6())
            self.blocks = nn.Sequential(*(InvertedResidual(*b) for b in blocks))
            last = blocks[-1][1]
            self.head = nn.Sequential(nn.Conv2d(last, head, 1, bias=False), nn.BatchNorm2d(head), nn.ReLU6())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(head, classes)
            if seed is not None:
                _randomize_batchnorm(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


VWW_INPUT_SHAPE = (3, 96, 96)


class MobileNetV1VWW(nn.Module):
    """MLPerf Tiny's Visual Wake Words network: MobileNetV1 at width 0.25 on 3x96x96 RGB, as its
    reference builds it (a 3x3 stride-2 conv of 8 channels, 13 depthwise-separable blocks of 3x3
    depthwise-BN-ReLU and 1x1 pointwise-BN-ReLU, convolutions with biases, an average pool over the
    3x3 map, 2 logits: person or not). 221,794 parameters as Keras counts them (BatchNorm's running
    statistics included)."""

    BLOCKS = ((8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), *[(128, 128, 1)] * 5,
              (128, 256, 2), (256, 256, 1))
    """(in channels, out channels, depthwise stride) of each block."""

    def __init__(self, seed: int | None = 0, classes: int = 2) -> None:
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            super().__init__()
            layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU()]
            for c_in, c_out, stride in self.BLOCKS:
                layers += [nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in), nn.BatchNorm2d(c_in), nn.ReLU(),
                           nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
            self.features = nn.Sequential(*layers)
            self.pool = nn.AvgPool2d(3)
            self.fc = nn.Linear(256, classes)
            if seed is not None:
                _randomize_batchnorm(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class DigitsResNet(nn.Module):
    """A digits-sized ResNet (1x16x16): conv-BN-ReLU stem, ResNet's padded max-pool
    (3, stride 2, padding 1), an identity block, a stride-2 block with a projection shortcut,
    global average pooling, 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, 1, 1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.block1 = ResidualBlock(8, 8, 1)
        self.block2 = ResidualBlock(8, 16, 2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(torch.relu(self.bn(self.stem(x))))
        x = self.block2(self.block1(x))
        return self.fc(torch.flatten(self.gap(x), 1))


class DigitsMobileNet(nn.Module):
    """A digits-sized MobileNetV2 (1x16x16): ReLU6 stem, three inverted-residual blocks (one stride 2,
    one with a residual add), an adaptive average pool to 2x2 (not global), 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.blocks = nn.Sequential(InvertedResidual(8, 12, 2, 2), InvertedResidual(12, 12, 1, 2),
                                    InvertedResidual(12, 16, 2, 2))
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))
