"""Train the bundled digits nets and write their weights, a record and sample images.

    python -m xaihls.models.train_digits                 # all of them
    python -m xaihls.models.train_digits digits_resnet   # only the nets named

Writes, in xaihls/models/data/: digits_cnn.pt, digits_strided_bn.pt, digits_gap.pt,
digits_resnet.pt, digits_mobilenet.pt (state_dicts, loadable with
`torch.load(path, weights_only=True)`), models.json (test accuracy and training settings of
each; a run of some nets keeps the others' records) and, on a run of all, digits_samples.npz
(the first test image of each class) and the calibration batch. Deterministic on a given
torch version and CPU: same seed, same weights. Under a minute a net on two CPU cores.
"""

from __future__ import annotations

import datetime
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xaihls.models.digits import DigitsCNN, DigitsGAP, DigitsStridedBN, load_digits_split
from xaihls.models.edge import DigitsMobileNet, DigitsResNet

DATA_DIR = Path(__file__).parent / "data"
SPLIT_SEED = 0


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on besides the data; recorded in models.json."""

    epochs: int = 60
    lr: float = 3e-3
    batch_size: int = 32
    weight_decay: float = 1e-4
    seed: int = 0
    optimizer: str = "Adam"
    # Random affine jitter of the training images; bounds chosen so a digit stays readable.
    max_shift_px: float = 1.5
    max_rotation_deg: float = 10.0
    max_scale_change: float = 0.08


NETS: dict[str, tuple[Callable[[], nn.Module], TrainConfig]] = {
    "digits_cnn": (DigitsCNN, TrainConfig()),
    "digits_strided_bn": (DigitsStridedBN, TrainConfig()),
    # The smallest net underfits the jittered data in 60 epochs.
    "digits_gap": (DigitsGAP, TrainConfig(epochs=120)),
    # The edge nets (residual, depthwise-separable): fewer epochs keep each under a minute.
    "digits_resnet": (DigitsResNet, TrainConfig(epochs=10)),
    "digits_mobilenet": (DigitsMobileNet, TrainConfig(epochs=10)),
}


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Float top-1 accuracy of `model` in eval mode."""
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def jitter(x: Tensor, cfg: TrainConfig, gen: torch.Generator) -> Tensor:
    """A random small rotation, scaling and shift of each image (zeros fill the border).

    1347 training images are few; without it DigitsCNN stops near 97% test accuracy.
    """
    n, _, h, w = x.shape
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(cfg.max_rotation_deg)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * cfg.max_scale_change
    # affine_grid works in [-1, 1] coordinates: one pixel is 2/size.
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * cfg.max_shift_px * 2 / torch.tensor([w, h])
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def train(factory: Callable[[], nn.Module], cfg: TrainConfig, x: Tensor, y: Tensor) -> nn.Module:
    """Train a fresh net; the result depends only on `cfg` and the data."""
    torch.manual_seed(cfg.seed)
    model = factory()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # Cosine decay lets a short run settle instead of bouncing at the final lr.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            opt.zero_grad()
            loss_fn(model(jitter(x[batch], cfg, gen)), y[batch]).backward()
            opt.step()
        sched.step()
    return model.eval()


def first_of_each_class(x: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The first image of each class 0..9, in class order."""
    idx = [int((y == c).nonzero()[0]) for c in range(10)]
    return x[idx].numpy().astype(np.float32), y[idx].numpy().astype(np.int64)


CALIBRATION_IMAGES = 64


def write_calibration(x_train: Tensor) -> None:
    """The first training images: the calibration batch the CLI and demo use (never test images)."""
    np.savez(DATA_DIR / "digits_calibration.npz", images=x_train[:CALIBRATION_IMAGES].numpy().astype(np.float32))


def main(argv: list[str] | None = None) -> None:
    import sys

    names = list(sys.argv[1:] if argv is None else argv) or list(NETS)
    unknown = [n for n in names if n not in NETS]
    if unknown:
        raise SystemExit(f"unknown net '{unknown[0]}'; nets: {', '.join(NETS)}")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = load_digits_split(SPLIT_SEED)

    records = DATA_DIR / "models.json"
    record: dict[str, dict] = json.loads(records.read_text()) if records.is_file() else {}
    for name in names:
        factory, cfg = NETS[name]
        t0 = time.perf_counter()
        model = train(factory, cfg, x_train, y_train)
        seconds = time.perf_counter() - t0
        acc = accuracy(model, x_test, y_test)
        torch.save(model.state_dict(), DATA_DIR / f"{name}.pt")
        record[name] = {
            "architecture": type(model).__name__,
            "float_test_accuracy": round(acc, 6),
            "train_size": len(y_train),
            "test_size": len(y_test),
            "split_seed": SPLIT_SEED,
            **asdict(cfg),
            "lr_schedule": "cosine",
            "train_seconds": round(seconds, 1),
            "torch_version": torch.__version__,
            "date": datetime.date.today().isoformat(),
        }
        print(f"{name:18s} test accuracy {acc:.4f}  ({seconds:.1f} s)")

    (DATA_DIR / "models.json").write_text(json.dumps({n: record[n] for n in NETS if n in record}, indent=2) + "\n")
    if names != list(NETS):
        print(f"wrote {DATA_DIR}")
        return
    images, labels = first_of_each_class(x_test, y_test)
    np.savez(DATA_DIR / "digits_samples.npz", images=images, labels=labels)
    write_calibration(x_train)
    print(f"wrote {DATA_DIR}")


if __name__ == "__main__":
    main()
