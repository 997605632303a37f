"""The digits data set (sklearn's bundled 8x8 handwritten digits) and three small CNNs for it.

The nets are sized so that the whole flow — golden model, C-simulation, RTL simulation —
runs in seconds, and together they cover every layer type the frontend supports:
DigitsCNN (conv, ReLU, max-pool, linear), DigitsStridedBN (stride-2 conv, BatchNorm,
average pooling) and DigitsGAP (overlapping max-pool windows, global average pooling,
functional ReLU and flatten).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xaihls.errors import XaiHlsError

DIGITS_INPUT_SHAPE = (1, 16, 16)


def load_digits_split(seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Return x_train, y_train, x_test, y_test of sklearn's digits, as 1x16x16 images in [0, 1].

    The split is stratified 75/25 and depends only on `seed` (1347 train, 450 test images),
    so accuracies recorded in models.json can be reproduced. Images are float32 NCHW,
    labels int64.
    """
    try:
        # Imported here so that sklearn stays an optional (dev) dependency.
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise XaiHlsError(
            f"the digits data set needs scikit-learn ({err}); install it with `pip install scikit-learn`"
        ) from None

    digits = load_digits()
    # Pixel values are 0..16; scale before upsampling so the bilinear result stays in [0, 1].
    images = torch.from_numpy(digits.images).to(torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=DIGITS_INPUT_SHAPE[1:], mode="bilinear", align_corners=False)
    labels = torch.from_numpy(digits.target).to(torch.int64)
    train_idx, test_idx = train_test_split(
        torch.arange(len(labels)).numpy(), test_size=0.25, stratify=labels.numpy(), random_state=seed
    )
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return (
        images[train_idx].contiguous(),
        labels[train_idx].contiguous(),
        images[test_idx].contiguous(),
        labels[test_idx].contiguous(),
    )


class DigitsCNN(nn.Sequential):
    """The bundled default: two conv/ReLU/max-pool stages and two linear layers.

    Uses only Conv2d, ReLU, MaxPool2d, Flatten and Linear, so it runs on every backend.
    Input 1x16x16, output 10 logits.
    """

    def __init__(self) -> None:
        # Named layers so that reports and per-layer configs can say "conv2", not "3".
        super().__init__(
            OrderedDict(
                conv1=nn.Conv2d(1, 8, 3, padding=1),
                relu1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(8, 16, 3, padding=1),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
                flatten=nn.Flatten(),
                fc1=nn.Linear(16 * 4 * 4, 32),
                relu3=nn.ReLU(),
                fc2=nn.Linear(32, 10),
            )
        )


class DigitsStridedBN(nn.Sequential):
    """A net with a stride-2 convolution, BatchNorm after each conv and average pooling.

    Input 1x16x16, output 10 logits. Exercises BatchNorm folding and the strided
    (transposed) backward convolution.
    """

    def __init__(self) -> None:
        super().__init__(
            OrderedDict(
                # No bias: the following BatchNorm's shift makes one redundant.
                conv1=nn.Conv2d(1, 8, 3, padding=1, bias=False),
                bn1=nn.BatchNorm2d(8),
                relu1=nn.ReLU(),
                conv2=nn.Conv2d(8, 16, 3, stride=2, padding=1),
                bn2=nn.BatchNorm2d(16),
                relu2=nn.ReLU(),
                pool=nn.AvgPool2d(2),
                flatten=nn.Flatten(),
                fc=nn.Linear(16 * 4 * 4, 10),
            )
        )


class DigitsGAP(nn.Module):
    """A net with overlapping max-pool windows, an unpadded stride-2 conv and global average pooling.

    Input 1x16x16, output 10 logits. Its forward uses `F.relu` and `torch.flatten` on purpose,
    so the frontend's handling of functional calls is exercised by a bundled model.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(3, stride=2)  # 16 -> 7, windows overlap by one pixel
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 16, 3, stride=2)  # 7 -> 3
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = torch.flatten(self.gap(x), 1)
        return self.fc(x)
