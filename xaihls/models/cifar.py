"""The CIFAR-10-sized reference network and a reader for a CIFAR-10 folder the user provides.

xaihls bundles no CIFAR-10 weights or images and never downloads anything: CifarRefNet has
deterministic random weights, which is enough for everything except accuracy (resources,
latency and bit-exactness do not depend on the weight values).
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from xaihls.errors import XaiHlsError

CIFAR_INPUT_SHAPE = (3, 32, 32)
_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_FILES = ("test_batch",)


class CifarRefNet(nn.Sequential):
    """A representative CIFAR-10 CNN (five 3x3 convs, three max-pools, two linear layers).

    The layer mix follows the "representative CNN" of Bhat et al., VLSI-SoC 2022
    (arXiv 2210.10922). Input 3x32x32, output 10 logits. With an integer `seed` the weights
    are torch's default initialisation drawn from that seed — the same on every call —
    and the global RNG is left untouched; with `seed=None` they come from the global RNG.
    """

    def __init__(self, seed: int | None = 0) -> None:
        # fork_rng restores the global CPU RNG state on exit; devices=[] keeps it off CUDA.
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            super().__init__(
                OrderedDict(
                    conv1=nn.Conv2d(3, 16, 3, padding=1),
                    relu1=nn.ReLU(),
                    conv2=nn.Conv2d(16, 16, 3, padding=1),
                    relu2=nn.ReLU(),
                    pool1=nn.MaxPool2d(2),
                    conv3=nn.Conv2d(16, 32, 3, padding=1),
                    relu3=nn.ReLU(),
                    conv4=nn.Conv2d(32, 32, 3, padding=1),
                    relu4=nn.ReLU(),
                    pool2=nn.MaxPool2d(2),
                    conv5=nn.Conv2d(32, 64, 3, padding=1),
                    relu5=nn.ReLU(),
                    pool3=nn.MaxPool2d(2),
                    flatten=nn.Flatten(),
                    fc1=nn.Linear(64 * 4 * 4, 64),
                    relu6=nn.ReLU(),
                    fc2=nn.Linear(64, 10),
                )
            )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, so a batch file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        # Python 3 pickles (protocol <= 2) spell bytes as _codecs.encode(str, "latin1").
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise XaiHlsError(
            f"CIFAR-10 file '{path}' not found; xaihls never downloads data, "
            "extract cifar-10-python.tar.gz yourself"
        )
    try:
        with path.open("rb") as f:
            # latin1: the official batches were pickled by Python 2 (numpy's recommendation).
            batch = _ArrayUnpickler(f, encoding="latin1").load()
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, *CIFAR_INPUT_SHAPE)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, AttributeError, KeyError, ValueError) as err:
        raise XaiHlsError(
            f"'{path}' is not a CIFAR-10 python batch (a pickled dict with 'data' and 'labels'): {err}"
        ) from None
    if len(data) != len(labels):
        raise XaiHlsError(f"'{path}' has {len(data)} images but {len(labels)} labels")
    return data, labels


def load_cifar10(
    folder: str | Path, split: str = "test", limit: int | None = None
) -> tuple[Tensor, Tensor]:
    """Read CIFAR-10 from the python-pickle folder the user extracted; never downloads.

    `folder` is either `cifar-10-batches-py` itself or its parent. Returns float32 images
    N,3,32,32 in [0, 1] and int64 labels, in file order; `limit` keeps the first `limit`
    images (reading only the files needed). Only numpy arrays and plain containers are
    unpickled.
    """
    root = Path(folder)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not root.is_dir():
        raise XaiHlsError(
            f"CIFAR-10 folder '{folder}' not found; xaihls never downloads data, "
            "extract cifar-10-python.tar.gz there yourself"
        )
    files = {"train": _TRAIN_FILES, "test": _TEST_FILES}.get(split)
    if files is None:
        raise XaiHlsError(f"unknown CIFAR-10 split '{split}'; supported: train, test")
    if limit is not None and limit < 1:
        raise XaiHlsError(f"CIFAR-10 limit must be a positive number of images, got {limit}")

    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    count = 0
    for name in files:
        if limit is not None and count >= limit:
            break
        data, lab = _read_batch(root / name)
        images.append(data)
        labels.append(lab)
        count += len(lab)
    x = torch.from_numpy(np.concatenate(images)[:limit]).to(torch.float32) / 255.0
    y = torch.from_numpy(np.concatenate(labels)[:limit])
    return x, y
