"""Reading user images and calibration batches from files, with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from xaihls.errors import XaiHlsError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz", ".pt")


def _as_batch(array, shape: tuple[int, ...], path: Path) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(array) if not isinstance(array, torch.Tensor) else array)
    if len(shape) == 3 and t.dim() == 2 and shape[0] == 1:
        t = t[None]
    if t.dim() == len(shape):
        t = t[None]
    if t.dim() != len(shape) + 1 or tuple(t.shape[1:]) != tuple(shape):
        raise XaiHlsError(f"{path}: array of shape {tuple(t.shape)}; the model takes (N, {', '.join(map(str, shape))})")
    t = t.to(torch.float32)
    if not torch.isfinite(t).all():
        raise XaiHlsError(f"{path}: contains NaN or infinite values")
    return t


def _read_image(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    if len(shape) != 3:
        raise XaiHlsError(f"{path}: a 1-D model takes arrays (.npy, .npz, .pt) of shape (N, {shape[0]}, {shape[1]}), "
                          "not pictures")
    c, h, w = shape
    if c not in (1, 3):
        raise XaiHlsError(f"{path}: picture files need a 1- or 3-channel model; this one takes {c} channels")
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB")
            if img.size != (w, h):
                raise XaiHlsError(f"{path}: picture is {img.size[0]}x{img.size[1]} pixels; the model takes {w}x{h}")
            a = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise XaiHlsError(f"{path}: not a readable picture ({exc.__class__.__name__})") from None
    a = a[None] if c == 1 else np.transpose(a, (2, 0, 1))
    return torch.from_numpy(np.ascontiguousarray(a))[None]


def _read_array(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    try:
        if path.suffix == ".pt":
            data = torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".npz":
            with np.load(path) as npz:
                keys = list(npz.keys())
                key = "images" if "images" in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise XaiHlsError(f"{path}: an .npz needs an 'images' array (has {', '.join(keys)})")
                data = npz[key]
        else:
            data = np.load(path, allow_pickle=False)
    except XaiHlsError:
        raise
    except Exception as exc:
        raise XaiHlsError(f"{path}: not a readable array file ({exc.__class__.__name__})") from None
    return _as_batch(data, shape, path)


def read_batch(path: str | Path, shape: tuple[int, ...]) -> torch.Tensor:
    """One file (picture or array) as a float32 batch (N, C, H, W)."""
    path = Path(path)
    if not path.is_file():
        raise XaiHlsError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return _read_image(path, shape)
    if suffix in ARRAY_SUFFIXES:
        return _read_array(path, shape)
    raise XaiHlsError(f"{path}: unknown file type; use {', '.join(IMAGE_SUFFIXES + ARRAY_SUFFIXES)}")


def load_images(paths, shape: tuple[int, ...]) -> torch.Tensor:
    """Several files into one batch, in the order given."""
    return torch.cat([read_batch(p, shape) for p in paths])


def load_calibration(path: str | Path, shape: tuple[int, ...]) -> torch.Tensor:
    """A calibration batch: an array file, or every picture in a folder (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + ARRAY_SUFFIXES)
        if not files:
            raise XaiHlsError(f"calibration folder {path} holds no pictures or array files")
        return load_images(files, shape)
    return read_batch(path, shape)
