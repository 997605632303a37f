"""Bundled models: the digits nets with trained weights, the CIFAR-10 reference net, and their data."""

from xaihls.models.cifar import CifarRefNet, load_cifar10
from xaihls.models.digits import DigitsCNN, DigitsGAP, DigitsStridedBN, load_digits_split
from xaihls.models.edge import DigitsMobileNet, DigitsResNet, MobileNetV2Tiny, ResNet8
from xaihls.models.zoo import ZOO, ZooEntry, get_zoo_model

__all__ = [
    "ZOO",
    "CifarRefNet",
    "DigitsCNN",
    "DigitsGAP",
    "DigitsMobileNet",
    "DigitsResNet",
    "MobileNetV2Tiny",
    "ResNet8",
    "DigitsStridedBN",
    "ZooEntry",
    "get_zoo_model",
    "load_cifar10",
    "load_digits_split",
]
