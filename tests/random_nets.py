"""Random small networks from the supported layers, for differential testing (as compiler testers use Csmith).

``random_net(seed)`` gives an eval-mode ``nn.Sequential``, its input shape and a calibration
batch, deterministic in the seed: random kernels, strides and zero padding (per dimension),
pool windows and strides (square or not), Flatten at any position (first included), channel
counts including primes, inputs non-square and as narrow as one column, ReLUs doubled now and
then, BatchNorm with odd statistics, global average pools, Linear heads of 1 to 13 classes.
"""

from __future__ import annotations

import random

import torch
import torch.nn as nn
import torch.nn.functional as F

CHANNELS = (1, 2, 3, 4, 5, 7, 8, 11, 13)


def _conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _batchnorm(c: int, mean: tuple, var: tuple, weight: tuple, bias: tuple) -> nn.BatchNorm2d:
    """A BatchNorm with statistics and affine terms drawn uniformly from these ranges (in this order)."""
    bn = nn.BatchNorm2d(c)
    bn.running_mean.uniform_(*mean)
    bn.running_var.uniform_(*var)
    bn.weight.data.uniform_(*weight)
    bn.bias.data.uniform_(*bias)
    return bn


def random_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c = rng.choice((1, 2, 3, 5))
    h = rng.randint(1, 10)
    w = rng.choice((1, rng.randint(1, 10)))
    shape = (c, h, w)
    layers: list[nn.Module] = []
    flat = rng.random() < 0.12  # Flatten first: an MLP on an image
    if flat:
        layers.append(nn.Flatten())
        features = c * h * w
    for _ in range(rng.randint(1, 5)):
        if flat:
            break
        kind = rng.choice(("conv", "conv", "conv", "maxpool", "avgpool", "relu", "gap", "flatten"))
        if kind == "conv":
            kh, kw = rng.randint(1, 4), rng.randint(1, 4)
            sh, sw = rng.randint(1, 3), rng.randint(1, 3)
            ph, pw = rng.randint(0, min(2, kh - 1)), rng.randint(0, min(2, kw - 1))
            oh, ow = _conv_out(h, kh, sh, ph), _conv_out(w, kw, sw, pw)
            if oh < 1 or ow < 1:
                continue
            o = rng.choice(CHANNELS)
            layers.append(nn.Conv2d(c, o, (kh, kw), (sh, sw), (ph, pw), bias=rng.random() < 0.8))
            if rng.random() < 0.25:
                layers.append(_batchnorm(o, mean=(-1, 1), var=(0.05, 4.0), weight=(-2, 2), bias=(-1, 1)))
            c, h, w = o, oh, ow
            if rng.random() < 0.6:
                layers.append(nn.ReLU())
                if rng.random() < 0.1:
                    layers.append(nn.ReLU())
        elif kind in ("maxpool", "avgpool"):
            kh, kw = rng.randint(1, min(3, h)), rng.randint(1, min(3, w))
            sh, sw = rng.randint(1, 3), rng.randint(1, 3)
            pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            layers.append(pool((kh, kw), (sh, sw)))
            h, w = _conv_out(h, kh, sh, 0), _conv_out(w, kw, sw, 0)
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "gap":
            layers.append(nn.AdaptiveAvgPool2d(1))
            h = w = 1
        else:
            layers.append(nn.Flatten())
            flat = True
            features = c * h * w
    if not flat:
        layers.append(nn.Flatten())
        features = c * h * w
    for _ in range(rng.randint(0, 2)):
        width = rng.choice((1, 3, 5, 8, 13, 17))
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    classes = rng.choice((1, 2, 3, 10, 13))
    layers.append(nn.Linear(features, classes, bias=rng.random() < 0.8))
    model = nn.Sequential(*layers).eval()
    scale = rng.choice((1.0, 1.0, 4.0, 0.25))
    calibration = torch.rand((rng.choice((1, 4, 8)), *shape)) * scale
    return model, shape, calibration


def pool_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A random network whose max-pools are the kind the compiler fuses into the convolution below
    them (square windows of side 2 or 4 equal to their stride, after a conv, strided or not): ReLU
    before the pool, after it (its backward then has no ReLU rule) or none, maps that the windows
    tile or leave a ragged edge, channels across several blocks."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c = rng.choice((1, 3, 5))
    h, w = rng.randint(9, 16), rng.randint(9, 16)
    shape = (c, h, w)
    layers: list[nn.Module] = []
    for i in range(2):
        k = rng.choice((1, 3, 5))
        o = rng.choice((3, 4, 7, 11, 16))
        stride = rng.choice((1, 1, 2)) if i == 0 else 1  # a strided conv's backward is one job per phase
        layers.append(nn.Conv2d(c, o, k, stride, k // 2))
        h, w = _conv_out(h, k, stride, k // 2), _conv_out(w, k, stride, k // 2)
        c = o
        s = rng.choice((2, 2, 4)) if min(h, w) >= 4 else 2
        where = rng.choice(("before", "after", "none"))
        if where == "before":
            layers.append(nn.ReLU())
        layers.append(nn.MaxPool2d(s))
        if where == "after":
            layers.append(nn.ReLU())
        h, w = h // s, w // s
        if min(h, w) < 2:
            break
    layers += [nn.Flatten(), nn.Linear(c * h * w, rng.choice((3, 10)))]
    model = nn.Sequential(*layers).eval()
    calibration = torch.rand((4, *shape)) * rng.choice((1.0, 4.0))
    return model, shape, calibration


class _RandomDag(nn.Module):
    """Blocks over a (C, H, W) map: each a conv branch (maybe depthwise, maybe ReLU6) added to a skip
    (identity, or a strided 1x1 projection), maybe a padded pool, then a GAP/flatten and a Linear."""

    def __init__(self, rng: random.Random, c: int, h: int, w: int):
        super().__init__()
        self.blocks = nn.ModuleList()
        self.kinds = []
        for _ in range(rng.randint(1, 3)):
            o = rng.choice((2, 3, 4, 6))
            stride = rng.choice((1, 1, 2)) if min(h, w) >= 3 else 1
            depthwise = rng.random() < 0.4
            branch = [nn.Conv2d(c, c, 3, stride, 1, groups=c)] if depthwise else [nn.Conv2d(c, o, 3, stride, 1)]
            out = c if depthwise else o
            if rng.random() < 0.5:
                branch.append(nn.BatchNorm2d(out))
            branch.append(nn.ReLU6() if rng.random() < 0.5 else nn.ReLU())
            branch.append(nn.Conv2d(out, out, 1))
            skip = None if (stride == 1 and out == c) else nn.Conv2d(c, out, 1, stride)
            pool = None
            h2, w2 = _conv_out(h, 3, stride, 1), _conv_out(w, 3, stride, 1)
            if rng.random() < 0.4 and min(h2, w2) >= 2:
                pool = (nn.MaxPool2d if rng.random() < 0.5 else nn.AvgPool2d)(3, 2, padding=1,
                                                                               ceil_mode=rng.random() < 0.5)
            self.blocks.append(nn.ModuleList([nn.Sequential(*branch), skip or nn.Identity(), pool or nn.Identity()]))
            c, h, w = out, h2, w2
            if pool is not None:
                h, w = (pool(torch.zeros(1, 1, h, w)).shape[2:])
        self.head = nn.Linear(c, rng.choice((2, 3, 10)))

    def forward(self, x):
        for branch, skip, pool in self.blocks:
            x = pool(torch.relu(branch(x) + skip(x)))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class _ResidualConv(nn.Module):
    """Residual blocks the engines took on late, by ``kind``: a branch of one convolution,
    ``x + conv(x)``, after a ReLU, on the input image, or on a map of more channels than a block; a
    pre-activation block (x read by a BatchNorm that is a per-channel affine, and by the Add); a
    ResNet-D downsampling block (x read by a stride-2 convolution and by an average pool before the
    projection), the pool 2 x 2 or 3 x 3 with padding."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        c = {"image": 3, "wide": 12}.get(kind, 4)
        self.c0 = nn.Conv2d(3, c, 3, padding=1)
        if kind in ("avgpool", "padded_avgpool"):
            self.c1 = nn.Conv2d(c, 2 * c, 3, 2, 1)
            self.pool = nn.AvgPool2d(2) if kind == "avgpool" else nn.AvgPool2d(3, 2, 1)
            self.proj = nn.Conv2d(c, 2 * c, 1)
            c *= 2
        else:
            self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c) if kind == "preact" else nn.Identity()
        self.fc = nn.Linear(c, 3)

    def forward(self, x):
        y = x if self.kind == "image" else torch.relu(self.c0(x))
        if self.kind in ("avgpool", "padded_avgpool"):
            z = torch.relu(self.c1(y) + self.proj(self.pool(y)))
        elif self.kind == "preact":
            z = y + self.c1(torch.relu(self.bn(y)))
        else:
            z = torch.relu(self.c1(y) + y)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(z, 1), 1))


RESIDUAL_KINDS = ("relu", "image", "wide", "preact", "avgpool", "padded_avgpool")


def residual_conv_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """``_ResidualConv`` of kind ``RESIDUAL_KINDS[seed % 6]``, its input shape and a calibration batch,
    deterministic in the seed (a BatchNorm's statistics drawn from it)."""
    torch.manual_seed(seed)
    model = _ResidualConv(RESIDUAL_KINDS[seed % len(RESIDUAL_KINDS)])
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval(), (3, 6, 6), torch.rand((8, 3, 6, 6))


class _Concat(nn.Module):
    """A SqueezeNet fire module (a 1 x 1 squeeze read by a 1 x 1 and a 3 x 3 expand, their outputs
    concatenated along the channels), by ``kind``: rectified operands of 6 and 5 channels; operands
    that are convolutions' outputs, a ReLU after the cat; 13 and 12 channels (several blocks each)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        ca, cb = (13, 12) if kind == "wide" else (6, 5)
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.squeeze = nn.Conv2d(8, 4, 1)
        self.e1 = nn.Conv2d(4, ca, 1)
        self.e3 = nn.Conv2d(4, cb, 3, padding=1)
        self.fc = nn.Linear(ca + cb, 3)

    def forward(self, x):
        s = torch.relu(self.squeeze(torch.relu(self.c(x))))
        if self.kind == "plain":
            x = torch.relu(torch.cat([self.e1(s), self.e3(s)], dim=1))
        else:
            x = torch.cat([torch.relu(self.e1(s)), torch.relu(self.e3(s))], dim=1)
        return self.fc(x.mean((2, 3)))


CONCAT_KINDS = ("fire", "plain", "wide", "dense", "dense_bn")


class _Dense(nn.Module):
    """Two DenseNet steps, x = cat([x, f(x)]): x is read by f and by the cat (``dense_bn``: f begins
    with a BatchNorm that is a per-channel affine and a ReLU, as a pre-activation DenseNet's, and the
    cat is cat([f(x), x]), x at an offset)."""

    def __init__(self, bn: bool):
        super().__init__()
        self.bn = bn
        self.c0 = nn.Conv2d(3, 4, 3, padding=1)
        self.f1 = nn.Sequential(*([nn.BatchNorm2d(4), nn.ReLU()] if bn else []), nn.Conv2d(4, 3, 3, padding=1))
        self.f2 = nn.Sequential(*([nn.BatchNorm2d(7), nn.ReLU()] if bn else []), nn.Conv2d(7, 5, 1))
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        x = torch.relu(self.c0(x))
        for f in (self.f1, self.f2):
            x = torch.cat([f(x), x] if self.bn else [x, f(x)], 1)
        return self.fc(x.mean((2, 3)))


def concat_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A fire module (``_Concat``) or DenseNet steps (``_Dense``) of kind ``CONCAT_KINDS[seed % 5]``, its
    input shape and a calibration batch, deterministic in the seed."""
    torch.manual_seed(seed)
    kind = CONCAT_KINDS[seed % len(CONCAT_KINDS)]
    model = _Dense(kind == "dense_bn") if kind.startswith("dense") else _Concat(kind)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval(), (3, 6, 6), torch.rand((16, 3, 6, 6))


def random_dag_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A random residual network (skip connections, depthwise layers, ReLU6, padded pools), its input
    shape and a calibration batch, deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    shape = (rng.choice((1, 2, 3)), rng.randint(2, 9), rng.randint(2, 9))
    model = _RandomDag(rng, *shape)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval(), shape, torch.rand((8, *shape))


EDGE_GAIN = 16.0
"""edge_net's inputs: 16 times [0, 1] (or [0, 4]), so 12-15 % of the first ReLU6's outputs clamp."""


def edge_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A random chain of the edge layers the engine runs: depthwise and grouped convolutions, ReLU6
    (after a convolution, a pool or on its own), BatchNorm that no convolution takes (a per-channel
    affine), max-pools with padding or ceil mode, zero-padded average pools with whole windows, then a
    Linear head; deterministic in the seed. The calibration batch is scaled up (``EDGE_GAIN``) so the
    first ReLU6 clamps: at PyTorch's default weights and inputs in [0, 1] no value reaches 6.0."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c = rng.choice((1, 2, 3, 4))
    h, w = rng.randint(5, 12), rng.randint(5, 12)
    shape = (c, h, w)
    layers: list[nn.Module] = [nn.Conv2d(c, 8, 3, 1, 1), nn.ReLU6()]
    c = 8
    rectified = True
    for _ in range(rng.randint(2, 5)):
        kind = rng.choice(("depthwise", "depthwise", "grouped", "conv", "maxpool", "avgpool", "bn", "relu6"))
        if kind in ("depthwise", "grouped", "conv"):
            k = rng.choice((1, 3, 3, 5))
            s = rng.choice((1, 1, 2)) if min(h, w) >= 4 else 1
            p = rng.randint(0, k // 2)
            oh, ow = _conv_out(h, k, s, p), _conv_out(w, k, s, p)
            if oh < 1 or ow < 1:
                continue
            if kind == "depthwise":
                o, groups = c * rng.choice((1, 1, 2)), c
            elif kind == "grouped" and c % 2 == 0:
                o, groups = rng.choice((2, 4, 6)), 2
            else:
                o, groups = rng.choice((3, 4, 8, 11)), 1
            layers.append(nn.Conv2d(c, o, k, s, p, groups=groups, bias=rng.random() < 0.7))
            c, h, w = o, oh, ow
            rectified = False
            r = rng.random()
            if r < 0.5:
                layers.append(nn.ReLU6())
                rectified = True
            elif r < 0.7:
                layers.append(nn.ReLU())
                rectified = True
        elif kind in ("maxpool", "avgpool"):
            k = rng.choice((2, 3))
            if min(h, w) < k:
                continue
            s = rng.choice((1, 2))
            p = rng.randint(0, k // 2)
            if kind == "maxpool":
                pool = nn.MaxPool2d(k, s, p, ceil_mode=rng.random() < 0.5)
            else:  # count_include_pad and floor mode: every window's divisor is k * k
                pool = nn.AvgPool2d(k, s, p)
            layers.append(pool)
            h, w = pool(torch.zeros(1, 1, h, w)).shape[2:]
            if rng.random() < 0.3:
                layers.append(nn.ReLU6())
        elif kind == "bn" and not isinstance(layers[-1], (nn.Conv2d, nn.BatchNorm2d)):
            layers.append(_batchnorm(c, mean=(-0.5, 0.5), var=(0.5, 2.0), weight=(-1.5, 1.5), bias=(-0.5, 0.5)))
            if rng.random() < 0.5:
                layers.append(nn.ReLU6() if rng.random() < 0.5 else nn.ReLU())
        elif kind == "relu6" and not rectified:
            layers.append(nn.ReLU6())
            rectified = True
    layers += [nn.Flatten(), nn.Linear(c * h * w, rng.choice((3, 10)))]
    model = nn.Sequential(*layers).eval()
    calibration = torch.rand((4, *shape)) * rng.choice((1.0, 4.0)) * EDGE_GAIN
    return model, shape, calibration


def narrow_net(width: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A map of two rows and ``width`` columns through zero-padded 3 x 3 pools of stride 1: the one
    shape where the walker must not chain a pass to the one before it (docs/engine_v2.md, "Chained
    passes"). With ``width`` equal to the array's Tn the pools' passes keep their weights (w_once),
    skip the row off the map, and would re-read a position sooner than the accumulators allow
    (ow + rows - 1 < Tn + 2 cycles after) if they followed each other without the waiting cycle."""
    torch.manual_seed(width)
    c = width
    model = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.AvgPool2d(3, 1, 1), nn.Conv2d(c, c, 1),
                          nn.MaxPool2d(3, 1, 1), nn.Flatten(), nn.Linear(c * 2 * width, 3)).eval()
    return model, (c, 2, width), torch.rand((4, c, 2, width)) * 2.0


def _batchnorm1d(c: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(c)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.uniform_(-1.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    return bn


def conv1d_net(seed: int) -> tuple[nn.Module, tuple[int, int], torch.Tensor]:
    """A random 1-D CNN (keyword spotting, ECG, sensor streams), input (C, L): Conv1d of any kernel,
    stride, padding and groups (depthwise included), BatchNorm1d after a convolution or on its own,
    ReLU or ReLU6, padded and ceil-mode MaxPool1d and whole-window AvgPool1d, then a global average
    pool or a flatten, and a Linear head with, now and then, a hidden Linear, BatchNorm1d and ReLU;
    deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c, length = rng.choice((1, 2, 3, 6)), rng.randint(8, 40)
    shape = (c, length)
    layers: list[nn.Module] = []
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(("conv", "conv", "depthwise", "maxpool", "avgpool", "bn"))
        if kind in ("conv", "depthwise"):
            k = rng.choice((1, 3, 5, 7))
            s = rng.choice((1, 1, 2)) if length >= 8 else 1
            p = rng.choice((0, k // 2))
            out = _conv_out(length, k, s, p)
            if out < 1:
                continue
            o, groups = (c * rng.choice((1, 2)), c) if kind == "depthwise" else (rng.choice((4, 5, 8, 12)), 1)
            layers.append(nn.Conv1d(c, o, k, s, p, groups=groups, bias=rng.random() < 0.7))
            if rng.random() < 0.5:
                layers.append(_batchnorm1d(o))
            layers.append(rng.choice((nn.ReLU(), nn.ReLU(), nn.ReLU6())))
            c, length = o, out
        elif kind in ("maxpool", "avgpool") and length >= 3:
            k = rng.choice((2, 3))
            s = rng.choice((1, 2, k))
            p = rng.randint(0, k // 2)
            if kind == "maxpool":
                pool = nn.MaxPool1d(k, s, p, ceil_mode=rng.random() < 0.5)
            else:  # count_include_pad and floor mode: every window's divisor is k
                pool = nn.AvgPool1d(k, s, p)
            layers.append(pool)
            length = pool(torch.zeros(1, 1, length)).shape[-1]
        elif kind == "bn" and layers and not isinstance(layers[-1], (nn.Conv1d, nn.BatchNorm1d)):
            layers.append(_batchnorm1d(c))
    if rng.random() < 0.5:
        layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten()]
        features = c
    else:
        layers.append(nn.Flatten())
        features = c * length
    if rng.random() < 0.5:
        hidden = rng.choice((6, 16))
        layers += [nn.Linear(features, hidden), _batchnorm1d(hidden), nn.ReLU()]
        features = hidden
    layers.append(nn.Linear(features, rng.choice((2, 5, 12))))
    model = nn.Sequential(*layers).eval()
    calibration = torch.rand((4, *shape)) * rng.choice((1.0, 4.0))
    return model, shape, calibration


def long_pool_net(length: int) -> tuple[nn.Module, tuple[int, int], torch.Tensor]:
    """A 1-D net whose global average pool is over ``length`` positions (an ECG or sensor trace): past
    225 the summed job reads the row as rows of a divisor of it (docs/engine_v2.md, "Global average
    pools summed")."""
    torch.manual_seed(length)
    model = nn.Sequential(nn.Conv1d(2, 6, 5, padding=2), nn.ReLU(), nn.Conv1d(6, 6, 3, padding=1), nn.ReLU6(),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 4)).eval()
    return model, (2, length), torch.rand((4, 2, length)) * 2.0


# raw_audio_net's nets: (samples, channels, first kernel, its stride, its padding)
RAW_AUDIO = {1: (8000, 1, 80, 16, 0), 2: (4800, 2, 20, 8, 5)}


def raw_audio_net(seed: int) -> tuple[nn.Module, tuple[int, int], torch.Tensor]:
    """A raw-waveform net in M5's shape (a long first kernel of a long stride, max-pools of 4): seed 1 M5's
    own first layer on a second of 8 kHz audio, seed 2 a padding short of a stride on 4,800 samples. Both
    images are longer than a job's map, so they run as the first stride's phases (capabilities.image_phases)."""
    length, channels, kernel, stride, padding = RAW_AUDIO[seed]
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv1d(channels, 8, kernel, stride=stride, padding=padding), nn.BatchNorm1d(8), nn.ReLU(),
                          nn.MaxPool1d(4), nn.Conv1d(8, 8, 3), nn.ReLU(), nn.MaxPool1d(4), nn.Conv1d(8, 8, 3),
                          nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 5)).eval()
    with torch.no_grad():
        bn = model[1]
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
    return model, (channels, length), torch.randn((4, channels, length))


class _Padded(nn.Module):
    """Layers with a zero pad of its own before some of them (``pads[i]``: F.pad's (left, right, top,
    bottom), or None)."""

    def __init__(self, layers: list[nn.Module], pads: list[tuple[int, int, int, int] | None]):
        super().__init__()
        self.body = nn.ModuleList(layers)
        self.pads = pads

    def forward(self, x):
        for layer, pad in zip(self.body, self.pads):
            x = layer(F.pad(x, pad) if pad is not None else x)
        return x


def padded_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """Convolutions with unequal zero padding, as TensorFlow's 'same' and PyTorch's 'same' with even
    kernels make it: F.pad of random sides (0 to 2 each) before dense, depthwise and strided convs,
    ``padding='same'`` with kernels of 2 to 5 taps a side, ReLU or ReLU6, a max-pool now and then,
    then a Linear head; deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c, h, w = rng.choice((1, 2, 3)), rng.randint(5, 12), rng.randint(5, 12)
    shape = (c, h, w)
    layers: list[nn.Module] = []
    pads: list[tuple[int, int, int, int] | None] = []
    for _ in range(rng.randint(2, 4)):
        kind = rng.choice(("pad", "pad", "same", "depthwise", "pool"))
        if kind == "pool" and min(h, w) >= 4 and layers:
            layers.append(nn.MaxPool2d(2))
            pads.append(None)
            h, w = h // 2, w // 2
            continue
        if kind == "same":
            kh, kw = rng.randint(2, 5), rng.randint(2, 5)
            o = rng.choice((3, 4, 8))
            layers.append(nn.Conv2d(c, o, (kh, kw), padding="same"))
            pads.append(None)
        else:
            pad = tuple(rng.randint(0, 2) for _ in range(4))
            k, s = rng.choice((2, 3, 3, 4)), rng.choice((1, 2))
            oh, ow = _conv_out(h + pad[2] + pad[3], k, s, 0), _conv_out(w + pad[0] + pad[1], k, s, 0)
            if oh < 1 or ow < 1:
                continue
            o, groups = (c, c) if kind == "depthwise" else (rng.choice((3, 4, 8)), 1)
            layers.append(nn.Conv2d(c, o, k, s, groups=groups))
            pads.append(pad)
            h, w = oh, ow
        c = o
        layers.append(rng.choice((nn.ReLU(), nn.ReLU6())))
        pads.append(None)
    layers += [nn.Flatten(), nn.Linear(c * h * w, rng.choice((3, 10)))]
    pads += [None, None]
    model = _Padded(layers, pads).eval()
    return model, shape, torch.rand((4, *shape)) * 2.0


class _DenseLayer(nn.Module):
    """torchvision's DenseNet layer: the cat of every feature before it, BN-ReLU-conv 1 x 1, BN-ReLU-conv 3 x 3."""

    def __init__(self, c: int, growth: int):
        super().__init__()
        self.norm1, self.conv1 = _batchnorm(c, (-0.3, 0.3), (0.5, 1.5), (0.5, 1.5), (-0.2, 0.2)), nn.Conv2d(
            c, 2 * growth, 1, bias=False)
        self.norm2 = _batchnorm(2 * growth, (-0.3, 0.3), (0.5, 1.5), (0.5, 1.5), (-0.2, 0.2))
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list):
        x = torch.cat(features, 1)
        return self.conv2(torch.relu(self.norm2(self.conv1(torch.relu(self.norm1(x))))))


class _DenseBlockNet(nn.Module):
    def __init__(self, c: int, growth: int, layers: int, classes: int):
        super().__init__()
        self.stem = nn.Conv2d(c, 8, 3, padding=1, bias=False)
        self.layers = nn.ModuleList(_DenseLayer(8 + k * growth, growth) for k in range(layers))
        out = 8 + layers * growth
        self.norm = _batchnorm(out, (-0.3, 0.3), (0.5, 1.5), (0.5, 1.5), (-0.2, 0.2))
        self.fc = nn.Linear(out, classes)

    def forward(self, x):
        features = [self.stem(x)]
        for layer in self.layers:
            features.append(layer(features))
        x = torch.relu(self.norm(torch.cat(features, 1)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def dense_block_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A torchvision-style DenseNet block (each layer cats every feature before it; the block's output
    cats them all) of 2 to 4 layers and growth 3 to 8, a BN-ReLU and global pool head."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    shape = (rng.choice((1, 3)), rng.randint(5, 9), rng.randint(5, 9))
    model = _DenseBlockNet(shape[0], rng.randint(3, 8), rng.randint(2, 4), rng.choice((3, 10))).eval()
    return model, shape, torch.rand((8, *shape)) * 2.0


class _MeanHead(nn.Module):
    """A body, the global mean of its map (over its last ``dims`` dims) and a Linear of ``classes``."""

    def __init__(self, body: list[nn.Module], c: int, classes: int, dims: int = 2):
        super().__init__()
        self.body, self.fc, self.dims = nn.Sequential(*body), nn.Linear(c, classes), tuple(range(2, 2 + dims))

    def forward(self, x):
        return self.fc(self.body(x).mean(self.dims))


def _channel_shuffle(x, groups: int):
    """torchvision's ShuffleNet channel shuffle, as written there."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, -1, h, w)


class _ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit of stride 1 (torchvision's InvertedResidual): half the channels through a
    1 x 1, depthwise 3 x 3, 1 x 1 branch, the other half passed, the two catted and shuffled."""

    def __init__(self, c: int, split: str):
        super().__init__()
        half = c // 2
        self.split = split
        self.branch = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False), _batchnorm(half, (-0.3, 0.3), (0.5, 1.5), (0.5, 1.5), (-0.2, 0.2)),
            nn.ReLU(), nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False),
            _batchnorm(half, (-0.3, 0.3), (0.5, 1.5), (0.5, 1.5), (-0.2, 0.2)), nn.Conv2d(half, half, 1), nn.ReLU())

    def forward(self, x):
        if self.split == "chunk":
            x1, x2 = x.chunk(2, dim=1)
        else:
            x1, x2 = torch.split(x, x.shape[1] // 2, dim=1)
        return _channel_shuffle(torch.cat((x1, self.branch(x2)), dim=1), 2)


class _ShuffleDown(nn.Module):
    """ShuffleNetV2's downsampling unit (torchvision's InvertedResidual of stride 2): the input read by a
    depthwise 3 x 3 of stride 2 and by a 1 x 1 of stride 1, the two branches catted and shuffled."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        half = c_out // 2

        def bn(c):
            return _batchnorm(c, (-0.3, 0.3), (0.5, 1.5), (0.5, 1.5), (-0.2, 0.2))

        self.branch1 = nn.Sequential(nn.Conv2d(c_in, c_in, 3, 2, 1, groups=c_in, bias=False), bn(c_in),
                                     nn.Conv2d(c_in, half, 1, bias=False), bn(half), nn.ReLU())
        self.branch2 = nn.Sequential(nn.Conv2d(c_in, half, 1, bias=False), bn(half), nn.ReLU(),
                                     nn.Conv2d(half, half, 3, 2, 1, groups=half, bias=False), bn(half),
                                     nn.Conv2d(half, half, 1, bias=False), bn(half), nn.ReLU())

    def forward(self, x):
        return _channel_shuffle(torch.cat((self.branch1(x), self.branch2(x)), dim=1), 2)


def shuffle_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A stem, now and then a ShuffleNetV2 downsampling unit, then 1 to 3 units of stride 1 (chunk or
    split, cat, channel shuffle), a global mean and a Linear head; deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c, shape = rng.choice((8, 12, 16, 24)), (rng.choice((1, 3)), rng.randint(5, 9), rng.randint(5, 9))
    body = [nn.Conv2d(shape[0], c, 3, padding=1), nn.ReLU()]
    if rng.random() < 0.5:
        body.append(_ShuffleDown(c, 2 * c))
        c *= 2
    body += [_ShuffleUnit(c, rng.choice(("chunk", "split"))) for _ in range(rng.randint(1, 3))]

    return _MeanHead(body, c, rng.choice((3, 10))).eval(), shape, torch.rand((8, *shape)) * 2.0


class _LeakyBlock(nn.Module):
    """A convolution (dense, depthwise or strided), BatchNorm now and then, a LeakyReLU or PReLU written
    as a module or a function; with ``residual``, the activation of the block's input plus its output."""

    def __init__(self, conv: nn.Conv2d, bn: nn.Module, act: nn.Module | float, residual: bool):
        super().__init__()
        self.conv, self.bn, self.residual = conv, bn, residual
        self.act = act if isinstance(act, nn.Module) else None
        self.slope = act if not isinstance(act, nn.Module) else None

    def forward(self, x):
        y = self.bn(self.conv(x))
        if self.residual:
            y = y + x
        return self.act(y) if self.act is not None else F.leaky_relu(y, self.slope)


def leaky_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """Darknet-style chains: convolutions with a LeakyReLU (slopes 0.01 to 0.3, module or function) or a
    PReLU (one slope or one a channel, drawn 0.05 to 0.5), now and then after a BatchNorm or a residual
    add, a max-pool now and then, a global mean and a Linear head; deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c, h, w = rng.choice((1, 3)), rng.randint(5, 12), rng.randint(5, 12)
    shape = (c, h, w)
    layers: list[nn.Module] = []
    for _ in range(rng.randint(2, 4)):
        if rng.random() < 0.25 and min(h, w) >= 4 and layers:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
            continue
        kind = rng.choice(("dense", "dense", "depthwise", "strided"))
        o = c if kind == "depthwise" else rng.choice((4, 8, 12))
        stride = 2 if kind == "strided" and min(h, w) >= 4 else 1
        conv = nn.Conv2d(c, o, 3, stride, padding=1, groups=c if kind == "depthwise" else 1)
        h, w = _conv_out(h, 3, stride, 1), _conv_out(w, 3, stride, 1)
        bn = _batchnorm(o, (-0.3, 0.3), (0.5, 2.0), (0.5, 1.5), (-0.3, 0.3)) if rng.random() < 0.5 else nn.Identity()
        act_kind = rng.choice(("module", "function", "prelu", "prelu_channels"))
        if act_kind == "module":
            act = nn.LeakyReLU(rng.choice((0.01, 0.1, 0.2, 0.3)))
        elif act_kind == "function":
            act = rng.choice((0.01, 0.1, 0.2))
        else:
            act = nn.PReLU(o if act_kind == "prelu_channels" else 1)
            act.weight.data.uniform_(0.05, 0.5)
        layers.append(_LeakyBlock(conv, bn, act, residual=o == c and stride == 1 and rng.random() < 0.5))
        c = o

    return _MeanHead(layers, c, rng.choice((3, 10))).eval(), shape, torch.rand((8, *shape)) * 2.0


class _TemporalBlock(nn.Module):
    """A TCN / WaveNet block: a dilated convolution (dense or depthwise) with a ReLU, the block's input
    added where the shapes agree."""

    def __init__(self, conv: nn.Module, residual: bool):
        super().__init__()
        self.conv, self.residual = conv, residual

    def forward(self, x):
        y = F.relu(self.conv(x))
        return x + y if self.residual else y


def dilated_net(seed: int) -> tuple[nn.Module, tuple[int, ...], torch.Tensor]:
    """Dilated convolutions: half the seeds a 1-D temporal CNN (TCN / WaveNet style, input (C, L): kernels
    of 2 to 5 taps at dilations 1 to 8, 'same' or any padding, residual blocks, depthwise ones, a
    strided one and max-pools now and then), half a 2-D net (dilations 1 to 3 a dimension, strides 1 or
    2, padding any); a global mean and a Linear head; deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    one_d = seed % 2 == 0
    c = rng.choice((1, 2, 4))
    size = [rng.randint(24, 64)] if one_d else [rng.randint(9, 16), rng.randint(9, 16)]
    shape = (c, *size)
    conv = nn.Conv1d if one_d else nn.Conv2d
    layers: list[nn.Module] = []
    for _ in range(rng.randint(2, 4)):
        if rng.random() < 0.2 and min(size) >= 6 and layers:
            layers.append(nn.MaxPool1d(2) if one_d else nn.MaxPool2d(2))
            size = [n // 2 for n in size]
            continue
        k = rng.randint(2, 5) if one_d else rng.choice((2, 3))
        dilation = [rng.choice((1, 2, 3, 4, 6, 8)) if one_d else rng.randint(1, 3) for _ in size]
        reach = [(k - 1) * d + 1 for d in dilation]
        stride = 2 if rng.random() < 0.2 and min(size) >= 8 else 1
        depthwise = rng.random() < 0.3
        o = c if depthwise or (c > 1 and rng.random() < 0.4) else rng.choice((4, 8, 12))
        if stride == 1 and rng.random() < 0.5:
            padding, out = "same", size
        else:
            padding = [rng.randint(0, r // 2) for r in reach]
            out = [_conv_out(n, r, stride, p) for n, r, p in zip(size, reach, padding)]
        if min(out) < 1:
            continue
        layer = conv(c, o, k, stride, padding, dilation if not one_d else dilation[0], groups=c if depthwise else 1)
        layers.append(_TemporalBlock(layer, residual=o == c and out == size and rng.random() < 0.6))
        c, size = o, out

    return _MeanHead(layers, c, rng.choice((3, 10)), len(size)).eval(), shape, torch.rand((8, *shape)) * 2.0


class _Branchy(nn.Module):
    """A block whose input many layers read, as Inception modules and hand-written nets have it: 2 to 4
    branches (a 1 x 1 conv; a 1 x 1 then a 3 x 3; a 3 x 3 of dilation 2; a max- or average pool of 3 x 3 at
    stride 1 then a 1 x 1) concatenated, or (``kind`` "self") x + ReLU(x) and x + x, or ("down") a
    stride-2 3 x 3 conv beside a stride-1 3 x 3 conv and a max-pool, concatenated."""

    def __init__(self, rng: random.Random, c: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "inception":
            self.branches = nn.ModuleList()
            for _ in range(rng.randint(2, 4)):
                b, o = rng.choice(("1x1", "3x3", "dilated", "maxpool", "avgpool")), rng.choice((2, 3, 4))
                layers = {"1x1": [nn.Conv2d(c, o, 1)],
                          "3x3": [nn.Conv2d(c, 2, 1), nn.ReLU(), nn.Conv2d(2, o, 3, padding=1)],
                          "dilated": [nn.Conv2d(c, o, 3, padding=2, dilation=2)],
                          "maxpool": [nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, o, 1)],
                          "avgpool": [nn.AvgPool2d(3, 1, 1), nn.Conv2d(c, o, 1)]}[b]
                self.branches.append(nn.Sequential(*layers, nn.ReLU()))
        elif kind == "self":
            self.conv = nn.Conv2d(c, c, 3, padding=1)
        else:
            self.a, self.b = nn.Conv2d(c, 3, 3, 2, 1), nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x):
        if self.kind == "inception":
            return torch.cat([branch(x) for branch in self.branches], 1)
        if self.kind == "self":
            y = self.conv(x)
            return F.relu(y + F.relu(y) + x + x)
        return torch.cat([F.relu(self.a(x)), F.max_pool2d(F.relu(self.b(x)), 2, ceil_mode=True)], 1)


def branchy_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A stem and 1 to 3 ``_Branchy`` blocks (tensors read by three or more layers, by a rectifier or a
    max-pool beside others, by two Adds, by a strided and a stride-1 3 x 3 conv), a global mean and a
    Linear head; deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    shape = (rng.choice((1, 3)), rng.randint(6, 12), rng.randint(6, 12))
    c, h, w = rng.choice((4, 6)), shape[1], shape[2]
    body: list[nn.Module] = [nn.Conv2d(shape[0], c, 3, padding=1), nn.ReLU()]
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(("inception", "inception", "self", "down") if min(h, w) >= 4 else ("inception", "self"))
        block = _Branchy(rng, c, kind)
        out = block(torch.zeros(1, c, h, w))
        body.append(block)
        c, h, w = out.shape[1:]

    return _MeanHead(body, c, rng.choice((3, 10))).eval(), shape, torch.rand((8, *shape)) * 2.0


def leaky_head_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A small conv stem and an MLP head whose hidden Linear ends in a LeakyReLU or PReLU (one slope or one
    a feature), as classifier heads are written; deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c, h, w = rng.choice((1, 3)), rng.randint(4, 8), rng.randint(4, 8)
    o, hidden = rng.choice((4, 8)), rng.choice((6, 12, 20))
    kind = rng.choice(("leaky", "prelu", "prelu_features"))
    act = nn.LeakyReLU(rng.choice((0.01, 0.1, 0.2))) if kind == "leaky" else nn.PReLU(
        hidden if kind == "prelu_features" else 1)
    if isinstance(act, nn.PReLU):
        act.weight.data.uniform_(0.05, 0.5)
    model = nn.Sequential(nn.Conv2d(c, o, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(o * (h // 2) * (w // 2), hidden), act, nn.Linear(hidden, rng.choice((3, 10))))
    return model.eval(), (c, h, w), torch.rand((8, c, h, w)) * 2.0


class _PoolBranch(nn.Module):
    """Inception's pool branch beside a 1 x 1 branch on one input: cat(conv1x1(x), conv1x1(avgpool(x)))
    with a 3 x 3 average pool of stride 1 that counts no padding (Keras' 'same'), or the pooled map
    added to its input (``x + avgpool(x)``)."""

    def __init__(self, c: int, kind: str):
        super().__init__()
        self.kind = kind
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.a, self.b = nn.Conv2d(c, 3, 1), nn.Conv2d(c, 4, 1)

    def forward(self, x):
        if self.kind == "add":
            return x + self.pool(x)
        return torch.cat([F.relu(self.a(x)), F.relu(self.b(self.pool(x)))], 1)


def windowed_pool_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """Average pools whose windows have different divisors: padded ones that count no padding
    (``count_include_pad=False``, as Keras' 'same' average pooling), ceil-mode windows past the map,
    kernels of 2 to 5 and strides of 1 to the kernel, between convolutions with a ReLU or ReLU6 (or
    none); now and then Inception's pool branch beside a 1 x 1 branch, or a map plus its pooled self
    (a pool among a tensor's readers); a Linear or global-mean head; deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    shape = (rng.choice((1, 2, 3)), rng.randint(5, 13), rng.randint(5, 13))
    c, h, w = rng.choice((3, 4, 8)), shape[1], shape[2]
    body: list[nn.Module] = [nn.Conv2d(shape[0], c, 3, padding=1), rng.choice((nn.ReLU(), nn.ReLU6()))]
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("pool", "pool", "conv", "branch"))
        if kind == "pool" and min(h, w) >= 2:
            k = rng.choice((2, 3, 3, 5)) if min(h, w) >= 5 else rng.choice((2, 3))
            k = min(k, h, w)
            s, p = rng.randint(1, k), rng.randint(0, k // 2)
            pool = nn.AvgPool2d(k, s, p, ceil_mode=rng.random() < 0.5, count_include_pad=rng.random() < 0.3)
            body.append(pool)
            if rng.random() < 0.3:
                body.append(rng.choice((nn.ReLU(), nn.ReLU6())))
        elif kind == "branch":
            block = _PoolBranch(c, rng.choice(("cat", "add")))
            body.append(block)
        else:
            o = rng.choice((4, 5, 8))
            body += [nn.Conv2d(c, o, 3, padding=rng.choice((0, 1)) if min(h, w) >= 3 else 1),
                     rng.choice((nn.ReLU(), nn.ReLU6(), nn.Identity()))]
        c, h, w = nn.Sequential(*body)(torch.zeros(1, *shape)).shape[1:]
    classes = rng.choice((3, 10))
    if rng.random() < 0.5:
        model = _MeanHead(body, c, classes)
    else:
        model = nn.Sequential(*body, nn.Flatten(), nn.Linear(c * h * w, classes))
    return model.eval(), shape, torch.rand((8, *shape)) * 2.0


class _Forks(nn.Module):
    """A map read by two layers of different strides or output sizes, block after block: the main path's
    convolution, and an exit (a convolution of another kernel, stride or padding, an average pool, or a
    global pool) whose global mean joins the head, as deep supervision and early exits do."""

    def __init__(self, rng: random.Random, shape: tuple[int, int, int], classes: int):
        super().__init__()
        c, h, w = shape
        width = rng.choice((4, 6, 8))
        self.stem = nn.Conv2d(c, width, 3, padding=1)
        self.main, self.exits = nn.ModuleList(), nn.ModuleList()
        c, joined = width, 0
        for _ in range(rng.randint(1, 3)):
            k = rng.choice((1, 3, 3, 5))
            s = rng.choice((1, 2, 2, 3)) if min(h, w) >= 4 else 1
            p = rng.randint(0, k // 2)
            if _conv_out(h, k, s, p) < 1 or _conv_out(w, k, s, p) < 1:
                k, s, p = 1, 1, 0
            o = rng.choice((4, 6, 8))
            self.main.append(nn.Conv2d(c, o, k, s, p))
            kind = rng.choice(("conv", "conv", "pool", "global"))
            if kind == "conv":
                k2, s2 = rng.choice((1, 3)), rng.choice((1, 2, 4))
                p2 = rng.randint(0, k2 // 2)
                if _conv_out(h, k2, s2, p2) < 1 or _conv_out(w, k2, s2, p2) < 1:
                    k2, p2 = 1, 0
                o2 = rng.choice((3, 5))
                exit_ = nn.Sequential(nn.Conv2d(c, o2, k2, s2, p2), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
            elif kind == "pool" and min(h, w) >= 2:
                o2 = c
                k2 = rng.choice((2, 4)) if min(h, w) >= 4 else 2
                exit_ = nn.Sequential(nn.AvgPool2d(k2), nn.AdaptiveAvgPool2d(1))
            else:
                o2 = c
                exit_ = nn.AdaptiveAvgPool2d(1)
            self.exits.append(exit_)
            joined += o2
            c, h, w = o, _conv_out(h, k, s, p), _conv_out(w, k, s, p)
        self.fc = nn.Linear(joined + c, classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        joined = []
        for conv, exit_ in zip(self.main, self.exits):
            joined.append(exit_(x))
            x = F.relu(conv(x))
        return self.fc(torch.cat(joined + [F.adaptive_avg_pool2d(x, 1)], 1).flatten(1))


def fork_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A stem and 1 to 3 ``_Forks`` blocks (a map read by two layers of different strides or output
    sizes: the main path's convolution and an exit), their global means catted into a Linear head;
    deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    shape = (rng.choice((1, 3)), rng.randint(6, 13), rng.randint(6, 13))
    return _Forks(rng, shape, rng.choice((3, 10))).eval(), shape, torch.rand((8, *shape)) * 2.0


SMALL_MAP_SHAPES = ((2, 48, 16), (3, 48, 24))  # rows of 16 and 24: the 4 x 4 shape's buffers


def small_map_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """Two strided convolutions around a max-pool of 4, so the last conv's map (Grad-CAM's default
    layer) is 1/16 of the input: 3x1 of 48x16 (even seeds), or 3x2 of 3 x 48 x 24 (odd seeds),
    upsampled by 16 rows and 12 columns. Both factors are past one job's output stride, so the
    engines upsample in stages (``capabilities.upsampling_stages``)."""
    torch.manual_seed(seed)
    shape = SMALL_MAP_SHAPES[seed % 2]
    c, h, w = shape
    model = nn.Sequential(nn.Conv2d(c, 4, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(4),
                          nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(6 * -(-h // 16) * -(-w // 16), 3)).eval()
    return model, shape, torch.rand((8, *shape))


def cropped_map_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """Two 'same' convolutions of stride 2 on 1 x 51 x 24: the last conv's 13 x 6 map is upsampled by
    4 x 4, its rows' stage writing 51 of its 52 rows (PyTorch's nearest table from 13 rows to 51 is
    row i // 4, as from 25 to 49 in DS-CNN's is i // 2)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(6 * 13 * 6, 3)).eval()
    return model, (1, 51, 24), torch.rand((8, 1, 51, 24))


def stretched_map_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A last conv whose map PyTorch's nearest table does not upsample by an integer factor, so the
    engines gather it in phases of a stretch P / Q (``capabilities.upsampling``): seed % 3 = 0, a 3 x 5
    map of 1 x 28 x 16 (rows by 4, then 7/3; columns by 2, 2, then 4/5); 1, a 12 x 12 map of 1 x 12 x 6 (a
    1 x 1 conv padded 3 columns a side: columns read every second one, 1/2); 2, a 9 x 10 map of
    3 x 20 x 22 (rows by 4 then 5/9, columns 11/5)."""
    torch.manual_seed(seed)
    kind = seed % 3
    if kind == 0:
        shape = (1, 28, 16)
        body = [nn.Conv2d(1, 4, 3, stride=(3, 1), padding=1), nn.ReLU(), nn.MaxPool2d((3, 2)),
                nn.Conv2d(4, 6, (1, 3), stride=(1, 1), padding=(0, 1)), nn.ReLU(), nn.MaxPool2d((1, 1)),
                nn.Conv2d(6, 5, (1, 4)), nn.ReLU()]
    elif kind == 1:
        shape = (1, 12, 6)
        body = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 1, padding=(0, 3)), nn.ReLU()]
    else:
        shape = (3, 20, 22)
        body = [nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU()]
    probe = nn.Sequential(*body)(torch.zeros((1, *shape)))
    model = nn.Sequential(*body, nn.Flatten(), nn.Linear(probe.numel(), 3)).eval()
    return model, shape, torch.rand((8, *shape)) * 2.0


def long_map_net(seed: int) -> tuple[nn.Module, tuple[int, ...], torch.Tensor]:
    """A last conv whose map's upsampling has a period past a job's strides of 15 along rows, or along
    the columns of a map of one row (``capabilities.LONG_PHASES``), or a 1-D map (its samples as rows
    of one pixel, ``lowering.ONE_ROW_VIEWS``): seed % 4 = 2, a 1-D CNN on 187 samples (an MIT-BIH
    heartbeat) whose 11-sample map is upsampled by 17; 0, a 1-D CNN on 2 x 96 samples, its 12-sample
    map upsampled by 8 (three stages of 2); odd seeds, a 7 x 4 map of 1 x 17 x 8 (rows stretched by
    17/7, columns by 2)."""
    torch.manual_seed(seed)
    if seed % 4 == 2:
        shape: tuple[int, ...] = (1, 187)
        body = [nn.Conv1d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool1d(4), nn.Conv1d(4, 6, 3, padding=1), nn.ReLU(),
                nn.MaxPool1d(4), nn.Conv1d(6, 5, 3, padding=1), nn.ReLU()]
    elif seed % 4 == 0:
        shape = (2, 96)
        body = [nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(4, 6, 3, padding=1), nn.ReLU(),
                nn.MaxPool1d(4), nn.Conv1d(6, 5, 3, padding=1), nn.ReLU()]
    else:
        shape = (1, 17, 8)
        body = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 5, stride=2, padding=(0, 2)), nn.ReLU()]
    probe = nn.Sequential(*body)(torch.zeros((1, *shape)))
    model = nn.Sequential(*body, nn.Flatten(), nn.Linear(probe.numel(), 3)).eval()
    return model, shape, torch.rand((8, *shape)) * 2.0


# stem_net's nets: (image shape, first kernel, stride, padding, its output channels, groups)
STEMS = {1: ((3, 16, 16), 3, 2, 1, 8, 1), 2: ((1, 12, 12), 7, 2, 3, 6, 1), 3: ((2, 12, 18), 4, 3, 0, 6, 2),
         4: ((4, 8, 8), 2, 2, 0, 8, 4), 5: ((1, 13, 10), 3, 2, 1, 8, 1), 6: ((3, 15, 17), 7, 2, 3, 6, 1),
         7: ((2, 13, 14), 4, 3, 0, 6, 2), 8: ((2, 4, 12), 3, 3, 0, 6, 1)}


def stem_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A 2-D net whose first convolution reads the image at a stride of (s, s), a stem that can run as the
    stride's phases (``capabilities.image_phases``): seed 1 a MobileNet's (3 x 3, stride 2, padding 1) on
    3 x 16 x 16, 2 a ResNet's (7 x 7, stride 2, padding 3) and its max-pool of 3, stride 2, padding 1, 3 a grouped
    4 x 4 kernel of stride 3 with no padding, 4 a depthwise 2 x 2 of stride 2; on sides the stride does not divide
    (the view's last row or column partly past the image), 5 a MobileNet's on 13 rows (a DS-CNN's 49 at stride 2),
    6 a ResNet's with its max-pool on 15 x 17, 7 seed 3's on 13 x 14, 8 a 3 x 3 of stride 3 on 4 x 12 (a view of 2
    rows, whose side does not tell the stride); then a BatchNorm, a ReLU6 or ReLU, a 3 x 3
    convolution, a global pool and a Linear."""
    shape, kernel, stride, padding, out, groups = STEMS[seed]
    torch.manual_seed(seed)
    body = [nn.Conv2d(shape[0], out, kernel, stride=stride, padding=padding, groups=groups),
            _batchnorm(out, (-0.2, 0.2), (0.5, 2.0), (0.5, 1.5), (-0.2, 0.2)), nn.ReLU6() if seed % 2 else nn.ReLU()]
    if seed in (2, 6):
        body.append(nn.MaxPool2d(3, stride=2, padding=1))
    body += [nn.Conv2d(out, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)]
    return nn.Sequential(*body).eval(), shape, torch.rand((8, *shape)) * 2.0 - 0.5


def grouped_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A stem, then 2 to 4 grouped convolutions of 2, 4 or 8 groups (1 x 1 or 3 x 3, strided or dilated now and
    then, channels kept or doubled), each after a BatchNorm now and then and a ReLU, a max-pool after some, then a
    global average pool and a Linear head: ResNeXt- and RegNet-like group widths whose cluster jobs fill whole
    tiles at some tilings and not at others; deterministic in the seed."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c, side = rng.choice((8, 16, 32)), 16
    layers = [nn.Conv2d(3, c, 3, padding=1), nn.ReLU()]
    for _ in range(rng.randint(2, 4)):
        o, k = c * rng.choice((1, 2)), rng.choice((1, 3))
        s = rng.choice((1, 1, 2)) if side >= 4 else 1
        d = rng.choice((1, 1, 2)) if k == 3 and s == 1 else 1
        layers.append(nn.Conv2d(c, o, k, s, padding=d * (k // 2), dilation=d, groups=rng.choice((2, 4, 8)),
                                bias=rng.random() < 0.6))
        side = _conv_out(side, d * (k - 1) + 1, s, d * (k // 2))
        if rng.random() < 0.5:
            layers.append(_batchnorm(o, (-0.2, 0.2), (0.5, 2.0), (0.8, 1.2), (-0.1, 0.1)))
        layers.append(nn.ReLU())
        if rng.random() < 0.3 and side >= 4:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        c = o
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, rng.choice((3, 5, 10)))]
    return nn.Sequential(*layers).eval(), (3, 16, 16), torch.rand(16, 3, 16, 16)
