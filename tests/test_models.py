"""Facts about the bundled models that users and the other stages rely on."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xaihls.errors import XaiHlsError
from xaihls.models import (
    ZOO,
    CifarRefNet,
    DigitsCNN,
    get_zoo_model,
    load_cifar10,
    load_digits_split,
)
from xaihls.models.zoo import DATA_DIR

BUNDLED = ["cifar_ref", "digits", "digits_gap", "digits_mobilenet", "digits_resnet", "digits_strided_bn", "ds_cnn",
           "mobilenet_v2_tiny", "resnet8", "vww_mobilenet"]


def test_zoo_names() -> None:
    assert sorted(ZOO) == BUNDLED
    assert all(ZOO[name].name == name for name in ZOO)
    assert get_zoo_model("digits").factory is DigitsCNN


CLASSES = {"ds_cnn": 12, "vww_mobilenet": 2}  # keyword spotting: ten words, silence, unknown; person or not;
# every other bundled model 10


@pytest.mark.parametrize("name", BUNDLED)
def test_build_is_eval_mode_with_its_logits(name: str) -> None:
    entry = get_zoo_model(name)
    model = entry.build()
    assert not any(m.training for m in model.modules())
    images, labels = entry.samples()
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert images.shape[1:] == entry.input_shape and len(labels) == len(images)
    assert 0.0 <= images.min() and images.max() <= 1.0
    with torch.no_grad():
        assert model(images).shape == (len(images), CLASSES.get(name, 10))


@pytest.mark.parametrize("name", ["digits", "digits_strided_bn", "digits_gap", "digits_resnet", "digits_mobilenet"])
def test_digits_models_classify_their_samples(name: str) -> None:
    entry = get_zoo_model(name)
    images, labels = entry.samples()
    with torch.no_grad():
        predicted = entry.build()(images).argmax(dim=1)
    assert (predicted == labels).sum() >= 9


def test_build_is_repeatable() -> None:
    a, b = get_zoo_model("digits").build(), get_zoo_model("digits").build()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_digits_cnn_test_accuracy() -> None:
    _, _, x_test, y_test = load_digits_split()
    with torch.no_grad():
        accuracy = (get_zoo_model("digits").build()(x_test).argmax(dim=1) == y_test).float().mean()
    assert accuracy >= 0.97


def test_models_json_matches_weights() -> None:
    record = json.loads((DATA_DIR / "models.json").read_text())
    assert sorted(record) == ["digits_cnn", "digits_gap", "digits_mobilenet", "digits_resnet", "digits_strided_bn"]
    assert record["digits_cnn"]["float_test_accuracy"] >= 0.97
    for entry in record.values():
        assert (entry["train_size"], entry["test_size"]) == (1347, 450)
        assert {"epochs", "optimizer", "lr", "seed", "torch_version", "date"} <= set(entry)
    for name in record:
        torch.load(DATA_DIR / f"{name}.pt", weights_only=True)


def test_digits_split() -> None:
    x_train, y_train, x_test, y_test = load_digits_split(seed=0)
    assert x_train.shape == (1347, 1, 16, 16) and x_test.shape == (450, 1, 16, 16)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert 0.0 <= min(x_train.min(), x_test.min()) and max(x_train.max(), x_test.max()) <= 1.0
    # Stratified: each class keeps its share of the test split within one image.
    counts = torch.bincount(torch.cat([y_train, y_test]), minlength=10)
    assert (torch.bincount(y_test, minlength=10) - counts * 0.25).abs().max() <= 1
    again = load_digits_split(seed=0)
    assert torch.equal(again[2], x_test) and torch.equal(again[3], y_test)
    assert not torch.equal(load_digits_split(seed=1)[3], y_test)


def test_digits_split_without_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(XaiHlsError, match="scikit-learn"):
        load_digits_split()


def test_samples_file_is_first_test_image_of_each_class() -> None:
    with np.load(DATA_DIR / "digits_samples.npz") as npz:
        images, labels = npz["images"], npz["labels"]
    assert images.dtype == np.float32 and images.shape == (10, 1, 16, 16)
    assert labels.dtype == np.int64 and labels.tolist() == list(range(10))
    _, _, x_test, y_test = load_digits_split()
    for c in range(10):
        first = int((y_test == c).nonzero()[0])
        assert np.array_equal(images[c], x_test[first].numpy())


def test_unknown_zoo_model() -> None:
    with pytest.raises(XaiHlsError) as err:
        get_zoo_model("resnet50")
    assert str(err.value) == (
        "unknown zoo model 'resnet50'; bundled models: cifar_ref, digits, digits_gap, digits_mobilenet, "
        "digits_resnet, digits_strided_bn, ds_cnn, mobilenet_v2_tiny, resnet8, vww_mobilenet"
    )


def test_cifar_ref_seed_is_deterministic_and_leaves_global_rng() -> None:
    state = torch.get_rng_state()
    a, b, c = CifarRefNet(seed=0), CifarRefNet(seed=0), CifarRefNet(seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.conv1.weight, b.conv1.weight) and torch.equal(a.fc2.bias, b.fc2.bias)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    assert a(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_cifar_ref_samples_are_repeatable_random_images() -> None:
    entry = get_zoo_model("cifar_ref")
    (x1, y1), (x2, _) = entry.samples(), entry.samples()
    assert x1.shape == (8, 3, 32, 32) and torch.equal(x1, x2)
    assert y1.tolist() == [-1] * 8


def _write_fake_cifar(folder: Path, n_per_file: int) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Batches in the official layout: dict of uint8 (N, 3072) `data` and list `labels`."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_file, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n_per_file).tolist()
        with (folder / name).open("wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data}, f, protocol=2)
        written[name] = (data, labels)
    return written


def test_load_cifar10_fake_folder(tmp_path: Path) -> None:
    written = _write_fake_cifar(tmp_path / "cifar-10-batches-py", n_per_file=4)
    x, y = load_cifar10(tmp_path)  # the parent folder is accepted too
    data, labels = written["test_batch"]
    assert x.dtype == torch.float32 and x.shape == (4, 3, 32, 32)
    assert y.dtype == torch.int64 and y.tolist() == labels
    # Channel-major rows: the first 1024 bytes are the red plane.
    assert torch.equal(x[:, 0].reshape(4, -1), torch.from_numpy(data[:, :1024]).float() / 255)
    assert 0.0 <= x.min() and x.max() <= 1.0

    x, y = load_cifar10(tmp_path / "cifar-10-batches-py", split="train", limit=6)
    assert x.shape == (6, 3, 32, 32)
    assert y.tolist() == written["data_batch_1"][1] + written["data_batch_2"][1][:2]
    assert load_cifar10(tmp_path, split="train")[0].shape == (20, 3, 32, 32)


def test_load_cifar10_missing_folder_and_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(XaiHlsError, match="never downloads") as err:
        load_cifar10(missing)
    assert str(missing) in str(err.value) and "\n" not in str(err.value)

    (tmp_path / "empty").mkdir()
    with pytest.raises(XaiHlsError, match="never downloads") as err:
        load_cifar10(tmp_path / "empty")
    assert str(tmp_path / "empty" / "test_batch") in str(err.value)


def test_load_cifar10_refuses_code_in_pickles(tmp_path: Path) -> None:
    (tmp_path / "test_batch").write_bytes(pickle.dumps({"data": print, "labels": []}))
    with pytest.raises(XaiHlsError, match="not a CIFAR-10 python batch"):
        load_cifar10(tmp_path)


def test_vww_mobilenet_has_the_reference_parameter_count() -> None:
    """221,794 as the MLPerf Tiny reference's Keras summary counts them: weights, biases and BatchNorm's
    four values a channel."""
    model = get_zoo_model("vww_mobilenet").build()
    running = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert sum(p.numel() for p in model.parameters()) + running == 221_794
