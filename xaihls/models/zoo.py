"""The registry of bundled models: everything the CLI and the examples can run without user files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from xaihls.errors import XaiHlsError
from xaihls.models.cifar import CIFAR_INPUT_SHAPE, CifarRefNet
from xaihls.models.digits import DIGITS_INPUT_SHAPE, DigitsCNN, DigitsGAP, DigitsStridedBN
from xaihls.models.edge import (KWS_INPUT_SHAPE, VWW_INPUT_SHAPE, DSCNN, DigitsMobileNet, DigitsResNet,
                                MobileNetV1VWW, MobileNetV2Tiny, ResNet8)

DATA_DIR = Path(__file__).parent / "data"
DIGITS_SAMPLES = "digits_samples.npz"
DIGITS_CALIBRATION = "digits_calibration.npz"
RANDOM_SAMPLES = 8


@dataclass(frozen=True)
class ZooEntry:
    """A bundled model: how to build it, its trained weights (if any) and its sample images."""

    name: str
    description: str
    input_shape: tuple[int, int, int]
    factory: Callable[[], nn.Module]
    weights: str | None = None  # file name in data/; None keeps the factory's weights
    samples_file: str | None = None  # .npz in data/ with `images` and `labels`; None: random
    calibration_file: str | None = None  # .npz in data/ with `images` from the training split; None: random

    def build(self) -> nn.Module:
        """A fresh module in eval mode, with the bundled weights loaded; same weights every call."""
        model = self.factory()
        if self.weights is not None:
            path = _data_file(self.weights)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()

    def samples(self) -> tuple[Tensor, Tensor]:
        """A few float32 NCHW images with int64 labels; the same on every call.

        Without a samples file: 8 random images in [0, 1] with label -1 (no ground truth).
        """
        if self.samples_file is None:
            gen = torch.Generator().manual_seed(0)
            images = torch.rand((RANDOM_SAMPLES, *self.input_shape), generator=gen)
            return images, torch.full((RANDOM_SAMPLES,), -1, dtype=torch.int64)
        with np.load(_data_file(self.samples_file)) as npz:
            return torch.from_numpy(npz["images"]), torch.from_numpy(npz["labels"])


    def calibration(self) -> Tensor:
        """A calibration batch disjoint from the samples (training images, or 32 random ones)."""
        if self.calibration_file is None:
            gen = torch.Generator().manual_seed(1)
            return torch.rand((32, *self.input_shape), generator=gen)
        with np.load(_data_file(self.calibration_file)) as npz:
            return torch.from_numpy(npz["images"])


def _data_file(name: str) -> Path:
    path = DATA_DIR / name
    if not path.is_file():
        raise XaiHlsError(
            f"bundled model file '{path}' is missing; regenerate it with `python -m xaihls.models.train_digits`"
        )
    return path


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "digits",
            "default: 2 conv + 2 linear, trained on sklearn digits (16x16)",
            DIGITS_INPUT_SHAPE,
            DigitsCNN,
            "digits_cnn.pt",
            DIGITS_SAMPLES,
            DIGITS_CALIBRATION,
        ),
        ZooEntry(
            "digits_strided_bn",
            "stride-2 conv, BatchNorm, average pooling; trained on sklearn digits (16x16)",
            DIGITS_INPUT_SHAPE,
            DigitsStridedBN,
            "digits_strided_bn.pt",
            DIGITS_SAMPLES,
            DIGITS_CALIBRATION,
        ),
        ZooEntry(
            "digits_gap",
            "overlapping max-pool, global average pooling, functional ReLU/flatten; trained on sklearn digits (16x16)",
            DIGITS_INPUT_SHAPE,
            DigitsGAP,
            "digits_gap.pt",
            DIGITS_SAMPLES,
            DIGITS_CALIBRATION,
        ),
        ZooEntry(
            "cifar_ref",
            "representative CIFAR-10 CNN (Bhat et al. 2022), deterministic random weights (3x32x32)",
            CIFAR_INPUT_SHAPE,
            CifarRefNet,
        ),
        ZooEntry(
            "resnet8",
            "MLPerf Tiny image classification ResNet-8 (residual adds, stride-2 1x1 projection shortcuts), "
            "deterministic random weights (3x32x32)",
            CIFAR_INPUT_SHAPE,
            ResNet8,
        ),
        ZooEntry(
            "ds_cnn",
            "MLPerf Tiny keyword spotting DS-CNN (depthwise-separable blocks), deterministic random weights "
            "(1x49x10 MFCCs)",
            KWS_INPUT_SHAPE,
            DSCNN,
        ),
        ZooEntry(
            "vww_mobilenet",
            "MLPerf Tiny visual wake words MobileNetV1 (width 0.25, 13 depthwise-separable blocks), deterministic "
            "random weights (3x96x96)",
            VWW_INPUT_SHAPE,
            MobileNetV1VWW,
        ),
        ZooEntry(
            "mobilenet_v2_tiny",
            "small MobileNetV2 (depthwise-separable inverted residuals, ReLU6), deterministic random weights "
            "(3x32x32)",
            CIFAR_INPUT_SHAPE,
            MobileNetV2Tiny,
        ),
        ZooEntry(
            "digits_resnet",
            "ResNet with a padded max-pool stem, an identity and a projection block; trained on sklearn digits "
            "(16x16)",
            DIGITS_INPUT_SHAPE,
            DigitsResNet,
            "digits_resnet.pt",
            DIGITS_SAMPLES,
            DIGITS_CALIBRATION,
        ),
        ZooEntry(
            "digits_mobilenet",
            "MobileNetV2 blocks (depthwise, ReLU6, a residual add), adaptive average pool to 2x2; trained on "
            "sklearn digits (16x16)",
            DIGITS_INPUT_SHAPE,
            DigitsMobileNet,
            "digits_mobilenet.pt",
            DIGITS_SAMPLES,
            DIGITS_CALIBRATION,
        ),
    )
}


def get_zoo_model(name: str) -> ZooEntry:
    """The bundled model called `name`; an unknown name is a user error listing the bundled ones."""
    try:
        return ZOO[name]
    except KeyError:
        raise XaiHlsError(f"unknown zoo model '{name}'; bundled models: {', '.join(sorted(ZOO))}") from None
