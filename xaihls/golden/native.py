"""The golden model's native kernels (native.cpp): exact 16-bit products fused with requantization.

The C++ source is compiled with the system C++ compiler (``$XAIHLS_CXX``, default g++, the one
the C-simulation needs) on first use (about 5 s), once per source, compiler, flags and CPU, into
the build cache (``xaihls.project.cache_dir()``), and called through ctypes; with OpenMP it runs
on PyTorch's own OpenMP threads (``torch.get_num_threads()`` of them). Every function returns
the same integers as the golden model's PyTorch path (the exactness argument is at the top of
native.cpp); tests check every product kernel against plain int64 references and the whole
model against the PyTorch path.

Product kernels, the fastest one the CPU runs chosen at run time (``KERNELS``, fastest first):
``amx`` where the CPU has AMX-INT8 and the OS grants the tile state; ``avx512_vnni`` (VPDPWSSD)
where it has AVX-512 BW and VNNI; ``avx_vnni`` (the 256-bit VEX VPDPWSSD) where it has AVX2 and
AVX-VNNI; ``avx2`` (VPMADDWD) where it has AVX2; else ``portable`` (int64 sums, any CPU, any
compiler). ``XAIHLS_GOLDEN_KERNEL=<name>`` pins one of those usable here. All but the portable
one are compiled with per-function targets and taken only after a run-time check of the CPU, so
a build without ``-march=native`` has them too. Without a compiler, or with
``XAIHLS_GOLDEN_NATIVE=0``, nothing here is used: the golden model runs on PyTorch alone, and
says so once in the log.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from xaihls.errors import XaiHlsError
from xaihls.numerics import FixedFormat
from xaihls.project import cache_dir

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native.cpp")
CXX_ENV = "XAIHLS_CXX"  # the same variable the C-simulation reads
ENABLE_ENV = "XAIHLS_GOLDEN_NATIVE"  # "0": the PyTorch path only
KERNEL_ENV = "XAIHLS_GOLDEN_KERNEL"  # a name in KERNELS: that product kernel (default: the fastest usable)
VERSION = 2  # xg_version() of a library this module can call
MAX_BITS = 16
"""Widest operand the native kernels take (values are passed as int16)."""

KERNELS = {"amx": 1, "avx512_vnni": 2, "avx_vnni": 4, "avx2": 3, "portable": 0}
"""Product kernels by name, fastest first, with native.cpp's numbers (its ``Kernel``)."""

# int64 parameter blocks, in native.cpp's ConvParam and LinearParam order
CONV_PARAMS = ("n", "h", "w", "c", "o", "kh", "kw", "sh", "sw", "ph", "pw", "oh", "ow",
               "shift", "qmin", "qmax", "relu", "keep_bits",
               "pool", "pkh", "pkw", "psh", "psw", "poh", "pow",
               "mode", "pshift", "pqmin", "pqmax", "stack")
LINEAR_PARAMS = ("n", "i", "o", "shift", "qmin", "qmax", "relu", "keep_bits", "mode")

_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_INT = ctypes.c_int
_SIGNATURES = {
    "xg_version": ([], _INT),
    "xg_kernel_usable": ([_INT], _INT),
    "xg_openmp": ([], _INT),
    "xg_param_counts": ([_P], None),
    "xg_packed_bytes": ([_INT, _I64, _I64, _I64], _I64),
    "xg_pack": ([_INT, _P, _I64, _I64, _I64, _P], None),
    "xg_conv_acc": ([_INT, _INT, _P, _P, _P, _P, _P], _INT),
    "xg_conv_forward": ([_INT, _INT, _P, _P, _P, _P, _P, _P, _P, _P], _INT),
    "xg_conv_backward": ([_INT, _INT, _P, _P, _P, _P, _P, _P, _P], _INT),
    "xg_linear_forward": ([_INT, _INT, _P, _P, _P, _P, _P, _P, _P], _INT),
    "xg_linear_backward": ([_INT, _INT, _P, _P, _P, _P, _P, _P], _INT),
    "xg_matmul_acc": ([_INT, _INT, _I64, _I64, _I64, _P, _P, _P, _P], _INT),
    "xg_ig_points": ([_INT, _I64, _I64, _P, _P, _P, _P, _I64, _I64, _I64, _I64, _P, _P], _INT),
    "xg_ig_accumulate": ([_INT, _I64, _I64, _P, _P, _P, _P], _INT),
    "xg_to_channels_last": ([_INT, _I64, _I64, _I64, _P, _P], _INT),
    "xg_to_channels_first": ([_INT, _I64, _I64, _I64, _P, _P], _INT),
}


@dataclass(frozen=True)
class Library:
    lib: ctypes.CDLL
    path: Path
    kernels: tuple[str, ...]  # the product kernels usable here, fastest first
    openmp: bool  # threads are the process's OpenMP ones (else native.cpp's own pool)


_lock = threading.Lock()
_library: Library | None = None
_reason: str | None = None  # why there is no library, once known
_forced: str | None = None
_off = False


def _compiler() -> str | None:
    return shutil.which(os.environ.get(CXX_ENV, "g++"))


def _cpu_identity() -> str:
    """What a -march=native build depends on: the CPU's model and feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        lines = [line for line in text.splitlines() if line.split(":")[0].strip() in ("model name", "flags")]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


BASE_FLAGS = ("-O3", "-std=c++17", "-fPIC", "-shared", "-pthread", "-fvisibility=hidden", "-fno-gnu-unique")
NATIVE_FLAGS = ("-march=native", "-mprefer-vector-width=512")  # the CPU's own instructions, wide vectors
OPENMP_FLAGS = ("-fopenmp",)  # PyTorch's OpenMP runtime and threads (native.cpp, parallel_for)
FLAG_SETS = (NATIVE_FLAGS + OPENMP_FLAGS, OPENMP_FLAGS, NATIVE_FLAGS, ())
"""Tried in turn until one compiles: a compiler without some of these flags still builds a library."""


def _build(cxx: str, flag_sets=FLAG_SETS, folder: Path | None = None) -> Path:
    """Compile native.cpp once per source, compiler, flags and CPU; the cached library otherwise."""
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    source = SOURCE.read_bytes()
    folder = folder or cache_dir() / "golden"
    errors = []
    for extra in flag_sets:
        key = hashlib.sha256(b"\0".join([cxx.encode(), version.encode(), " ".join(BASE_FLAGS + extra).encode(),
                                         _cpu_identity().encode(), source])).hexdigest()[:16]
        target = folder / f"libxaihls_golden_{key}.so"
        if target.is_file():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        proc = subprocess.run([cxx, *BASE_FLAGS, *extra, str(SOURCE), "-o", str(partial)], capture_output=True,
                              text=True)
        if proc.returncode == 0:
            os.replace(partial, target)  # atomic: a concurrent build of the same key is harmless
            return target
        partial.unlink(missing_ok=True)
        errors.append(next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr[:200]))
    raise OSError(f"{cxx} could not compile {SOURCE.name}: {errors[-1].strip()}")


def _load(path: Path | None = None) -> Library:
    if path is None:
        cxx = _compiler()
        if cxx is None:
            raise OSError(f"no C++ compiler ('{os.environ.get(CXX_ENV, 'g++')}' is not on PATH; set {CXX_ENV})")
        path = _build(cxx)
    lib = ctypes.CDLL(str(path))
    for name, (args, result) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result
    if lib.xg_version() != VERSION:
        raise OSError(f"{path} is version {lib.xg_version()}, not {VERSION}")
    counts = (ctypes.c_int64 * 2)()
    lib.xg_param_counts(counts)
    if tuple(counts) != (len(CONV_PARAMS), len(LINEAR_PARAMS)):  # an edit of one side only: a bug, not a user error
        raise AssertionError(f"native.cpp has {tuple(counts)} parameters, native.py names "
                             f"{(len(CONV_PARAMS), len(LINEAR_PARAMS))}")
    usable = tuple(name for name, number in KERNELS.items() if lib.xg_kernel_usable(number))
    return Library(lib, path, usable, bool(lib.xg_openmp()))


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within the block, no native kernels: the golden model as it ran before them (benchmarks)."""
    global _off
    before, _off = _off, True
    try:
        yield
    finally:
        _off = before


def library() -> Library | None:
    """The loaded native library, built on first use; None (logged once) where it cannot be."""
    global _library, _reason
    if _off:
        return None
    if _library is not None or _reason is not None:
        return _library
    with _lock:
        if _library is None and _reason is None:
            if os.environ.get(ENABLE_ENV, "1") == "0":
                _reason = f"{ENABLE_ENV}=0"
            else:
                try:
                    _library = _load()
                except OSError as e:
                    _reason = str(e)
            if _reason is not None:
                log.warning("golden model: native kernels off (%s); running on PyTorch alone, slower", _reason)
    return _library


def unavailable_reason() -> str | None:
    library()
    return _reason


def kernel_name() -> str | None:
    """The product kernel in use (a name in ``KERNELS``), or None (no native library)."""
    lib = library()
    if lib is None:
        return None
    if _forced is not None:
        return _forced
    chosen = os.environ.get(KERNEL_ENV)
    if chosen:
        if chosen not in available_kernels():
            raise XaiHlsError(f"{KERNEL_ENV}='{chosen}' is not a product kernel usable here; usable: "
                              f"{', '.join(available_kernels())}")
        return chosen
    return lib.kernels[0]


def available_kernels() -> tuple[str, ...]:
    """The product kernels this CPU and build run, fastest first (the portable one always, last)."""
    lib = library()
    if lib is None:
        return ()
    return lib.kernels


@contextlib.contextmanager
def force_kernel(name: str | None) -> Iterator[None]:
    """Within the block, use product kernel ``name`` (tests, benchmarks; one of ``available_kernels()``)."""
    global _forced
    if name is not None and name not in available_kernels():
        raise ValueError(f"kernel {name!r} is not usable here; usable: {', '.join(available_kernels()) or 'none'}")
    before, _forced = _forced, name
    try:
        yield
    finally:
        _forced = before


def _kernel() -> int:
    return KERNELS[kernel_name()]


def _threads() -> int:
    return torch.get_num_threads()


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def fits(*widths: int) -> bool:
    return max(widths) <= MAX_BITS


# ---------------------------------------------------------------- packed weights


def _pack(matrix: torch.Tensor, kernel: int) -> torch.Tensor:
    """An (R, K, N) integer matrix of at most 16 bits in the kernel's layout (native.cpp)."""
    m = matrix.to(torch.int16).contiguous()
    r, k, n = m.shape
    lib = library().lib
    out = torch.empty(lib.xg_packed_bytes(kernel, r, k, n), dtype=torch.uint8)
    lib.xg_pack(kernel, m.data_ptr(), r, k, n, out.data_ptr())
    return out


_packed: dict[tuple, tuple[weakref.ref, torch.Tensor]] = {}


def packed(weight: torch.Tensor, role: tuple, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``make()`` (an (R, K, N) matrix) packed for the current kernel, kept while ``weight`` lives unchanged."""
    kernel = _kernel()
    key = (id(weight), weight._version, role, kernel)
    hit = _packed.get(key)
    if hit is not None and hit[0]() is weight:
        return hit[1]
    out = _pack(make(), kernel)
    _packed[key] = (weakref.ref(weight, lambda _: _packed.pop(key, None)), out)
    return out


def stacks(kh: int, kw: int, cin: int) -> bool:
    """Whether the AMX kernel reads a window in fewer 64-term chunks with the kernel rows stacked into
    channels (a window row is kw * cin terms; stacked, the whole window is one row)."""
    return kernel_name() == "amx" and kh > 1 and -(-kh * kw * cin // 64) < kh * -(-kw * cin // 64)


def conv_matrix(weight: torch.Tensor, stack: bool) -> torch.Tensor:
    """(O, C, kh, kw) to (kh, kw*C, O): a kernel row's terms in the canvas's (kx, c) order; stacked, one
    (1, kw*kh*C, O) row in (kx, ky, c) order."""
    o, c, kh, kw = weight.shape
    if stack:
        return weight.permute(3, 2, 1, 0).reshape(1, kw * kh * c, o)
    return weight.permute(2, 3, 1, 0).reshape(kh, kw * c, o)


def conv_transposed_matrix(weight: torch.Tensor, stack: bool) -> torch.Tensor:
    """The rotated kernel with channel roles swapped, as a (kh, kw*O, C) matrix (stacked: (1, kw*kh*O, C))."""
    o, c, kh, kw = weight.shape
    rotated = weight.flip(2, 3)
    if stack:
        return rotated.permute(3, 2, 0, 1).reshape(1, kw * kh * o, c)
    return rotated.permute(2, 3, 0, 1).reshape(kh, kw * o, c)


def hwc_columns(weight: torch.Tensor, in_shape: tuple[int, int, int] | None) -> torch.Tensor:
    """A linear weight (O, C*H*W) whose input is a (C, H, W) map stored channels last: columns in (H, W, C)
    order (``in_shape`` None: a vector, as it is)."""
    if in_shape is None:
        return weight
    c, h, w = in_shape
    return weight.reshape(weight.shape[0], c, h, w).permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


# ---------------------------------------------------------------- exact sums (kernels.py's native path)


def _params(values) -> torch.Tensor:
    return torch.tensor([int(v) for v in values], dtype=torch.int64)


def conv_acc(x: torch.Tensor, weight: torch.Tensor, transposed: bool, placement: tuple, canvas_hw: tuple[int, int],
             stride: tuple[int, int], out_hw: tuple[int, int], bias: torch.Tensor | None) -> torch.Tensor:
    """int64 (N, OH, OW, cout) sums: x (N, C, H, W) placed on canvases (top, left, step_y, step_x) and
    convolved with ``weight`` (O, C, kh, kw), or with its rotated, channel-swapped kernel if ``transposed``."""
    n, c, h, w = x.shape
    kh, kw = weight.shape[2:]
    cout = weight.shape[1] if transposed else weight.shape[0]
    stack = stacks(kh, kw, c)
    if transposed:
        matrix = packed(weight, ("conv_transposed", stack), lambda: conv_transposed_matrix(weight, stack))
    else:
        matrix = packed(weight, ("conv", stack), lambda: conv_matrix(weight, stack))
    src = x.permute(0, 2, 3, 1).to(torch.int16).contiguous()
    top, left, sy, sx = placement
    p = _params((h, w, top, left, sy, sx, c, *canvas_hw, kh, kw, *stride, *out_hw, cout, n, stack))
    acc = torch.empty((n, *out_hw, cout), dtype=torch.int64)
    b = None if bias is None else bias.to(torch.int64).contiguous()
    library().lib.xg_conv_acc(_kernel(), _threads(), p.data_ptr(), src.data_ptr(), matrix.data_ptr(), _ptr(b),
                              acc.data_ptr())
    return acc


def matmul_acc(a: torch.Tensor, b: torch.Tensor, owner: torch.Tensor, role: tuple,
               bias: torch.Tensor | None) -> torch.Tensor:
    """int64 a (M, K) @ b (K, N) (+ bias), exactly; b's layout is kept with ``owner`` (a layer's weight)."""
    (m, k), n = a.shape, b.shape[1]
    matrix = packed(owner, role, lambda: b[None])
    acc = torch.empty((m, n), dtype=torch.int64)
    src = a.to(torch.int16).contiguous()
    bias = None if bias is None else bias.to(torch.int64).contiguous()
    library().lib.xg_matmul_acc(_kernel(), _threads(), m, k, n, src.data_ptr(), matrix.data_ptr(), _ptr(bias),
                                acc.data_ptr())
    return acc


# ---------------------------------------------------------------- fused layers (model.py's native stages)


@dataclass(frozen=True)
class Requant:
    """A requantization point: the right shift (numerics.round_shift) and the format saturated to."""

    shift: int
    fmt: FixedFormat

    def fields(self) -> tuple[int, int, int]:
        return self.shift, self.fmt.qmin, self.fmt.qmax


NO_REQUANT = (0, 0, 0)


def conv_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, geometry: dict, out: Requant,
                 relu: bool, keep_bits: bool, pool: dict | None) -> tuple:
    """x (N, H, W, C) int16 through a convolution (+ ReLU) (+ max-pool): (y, bits, index, saturated)."""
    n, h, w, c = x.shape
    o, _, kh, kw = weight.shape
    oh, ow = geometry["out_hw"]
    p = dict(n=n, h=h, w=w, c=c, o=o, kh=kh, kw=kw, sh=geometry["stride"][0], sw=geometry["stride"][1],
             ph=geometry["padding"][0], pw=geometry["padding"][1], oh=oh, ow=ow, relu=relu, keep_bits=keep_bits,
             pool=pool is not None, mode=0, pshift=0, pqmin=0, pqmax=0, stack=stacks(kh, kw, c))
    p.update(zip(("shift", "qmin", "qmax"), out.fields()))
    p.update(_pool_fields(pool))
    y = torch.empty((n, p["poh"], p["pow"], o) if pool else (n, oh, ow, o), dtype=torch.int16)
    bits = torch.empty((n, oh, ow, o), dtype=torch.uint8) if relu and keep_bits else None
    index = torch.empty(y.shape, dtype=torch.uint8) if pool else None
    counts = torch.zeros(2, dtype=torch.int64)
    w_packed = packed(weight, ("conv", p["stack"]), lambda: conv_matrix(weight, p["stack"]))
    params, x, bias = _params(p[k] for k in CONV_PARAMS), x.contiguous(), bias.contiguous()  # alive through the call
    library().lib.xg_conv_forward(_kernel(), _threads(), params.data_ptr(), x.data_ptr(), w_packed.data_ptr(),
                                  bias.data_ptr(), y.data_ptr(), _ptr(bits), _ptr(index), counts.data_ptr())
    return y, bits, index, int(counts[0])


def _pool_fields(pool: dict | None) -> dict:
    if pool is None:
        return dict(pkh=0, pkw=0, psh=0, psw=0, poh=0, pow=0)
    (pkh, pkw), (psh, psw), (poh, pow_) = pool["kernel"], pool["stride"], pool["out_hw"]
    return dict(pkh=pkh, pkw=pkw, psh=psh, psw=psw, poh=poh, pow=pow_)


def conv_backward(g: torch.Tensor, weight: torch.Tensor, geometry: dict, in_hw: tuple[int, int], out: Requant,
                  relu: bool, mode: int, bits: torch.Tensor | None, pool: dict | None, index: torch.Tensor | None,
                  pool_out: Requant | None) -> tuple:
    """The gradient at the (pool's, else ReLU's, else convolution's) output, (N, ., ., O) int16, back to the
    convolution's input (N, H, W, C): (g_in, saturated at the convolution, saturated at the pool)."""
    n = g.shape[0]
    o, c, kh, kw = weight.shape
    (h, w), (oh, ow) = in_hw, geometry["out_hw"]
    p = dict(n=n, h=h, w=w, c=c, o=o, kh=kh, kw=kw, sh=geometry["stride"][0], sw=geometry["stride"][1],
             ph=geometry["padding"][0], pw=geometry["padding"][1], oh=oh, ow=ow, relu=relu, keep_bits=0,
             pool=pool is not None, mode=mode, stack=stacks(kh, kw, o))
    p.update(zip(("shift", "qmin", "qmax"), out.fields()))
    p.update(_pool_fields(pool))
    p.update(zip(("pshift", "pqmin", "pqmax"), pool_out.fields() if pool_out else NO_REQUANT))
    g_in = torch.empty((n, h, w, c), dtype=torch.int16)
    counts = torch.zeros(2, dtype=torch.int64)
    w_packed = packed(weight, ("conv_transposed", p["stack"]), lambda: conv_transposed_matrix(weight, p["stack"]))
    params, g = _params(p[k] for k in CONV_PARAMS), g.contiguous()
    index = None if index is None else index.contiguous()
    bits = None if bits is None else bits.contiguous()
    library().lib.xg_conv_backward(_kernel(), _threads(), params.data_ptr(), g.data_ptr(), _ptr(index), _ptr(bits),
                                   w_packed.data_ptr(), g_in.data_ptr(), counts.data_ptr())
    return g_in, int(counts[0]), int(counts[1])


def linear_forward(x: torch.Tensor, weight: torch.Tensor, in_shape: tuple, bias: torch.Tensor, out: Requant,
                   relu: bool, keep_bits: bool) -> tuple:
    """x (N, I) int16 (a channels-last map flattened, if ``in_shape`` is one) through a linear layer (+ ReLU):
    (y, bits, saturated)."""
    n, i = x.shape
    o = weight.shape[0]
    p = dict(n=n, i=i, o=o, relu=relu, keep_bits=keep_bits, mode=0)
    p.update(zip(("shift", "qmin", "qmax"), out.fields()))
    y = torch.empty((n, o), dtype=torch.int16)
    bits = torch.empty((n, o), dtype=torch.uint8) if relu and keep_bits else None
    counts = torch.zeros(2, dtype=torch.int64)
    w_packed = packed(weight, ("linear", in_shape), lambda: hwc_columns(weight, in_shape).T[None])
    params, x, bias = _params(p[k] for k in LINEAR_PARAMS), x.contiguous(), bias.contiguous()
    library().lib.xg_linear_forward(_kernel(), _threads(), params.data_ptr(), x.data_ptr(), w_packed.data_ptr(),
                                    bias.data_ptr(), y.data_ptr(), _ptr(bits), counts.data_ptr())
    return y, bits, int(counts[0])


def linear_backward(g: torch.Tensor, weight: torch.Tensor, in_shape: tuple, out: Requant, relu: bool, mode: int,
                    bits: torch.Tensor | None) -> tuple:
    """The gradient at the (ReLU's, else the layer's) output (N, O) int16 back to the layer's input (N, I):
    (g_in, saturated)."""
    n, o = g.shape
    i = weight.shape[1]
    p = dict(n=n, i=i, o=o, relu=relu, keep_bits=0, mode=mode)
    p.update(zip(("shift", "qmin", "qmax"), out.fields()))
    g_in = torch.empty((n, i), dtype=torch.int16)
    counts = torch.zeros(2, dtype=torch.int64)
    w_packed = packed(weight, ("linear_transposed", in_shape), lambda: hwc_columns(weight, in_shape)[None])
    params, g = _params(p[k] for k in LINEAR_PARAMS), g.contiguous()
    bits = None if bits is None else bits.contiguous()
    library().lib.xg_linear_backward(_kernel(), _threads(), params.data_ptr(), g.data_ptr(), _ptr(bits),
                                     w_packed.data_ptr(), g_in.data_ptr(), counts.data_ptr())
    return g_in, int(counts[0])


# ---------------------------------------------------------------- integrated gradients


def ig_points(x: torch.Tensor, base: torch.Tensor, image_of: torch.Tensor, alpha_of: torch.Tensor, alpha_frac: int,
              out: Requant) -> tuple[torch.Tensor, int]:
    """The path images (paths, ...) int16: image ``image_of[j]`` of x and base (int16, any layout, same for
    both) at alpha ``alpha_of[j]``, requantized; and how many saturated."""
    x, base = x.contiguous(), base.contiguous()
    image_of, alpha_of = image_of.to(torch.int64).contiguous(), alpha_of.to(torch.int64).contiguous()
    paths, e = image_of.shape[0], x[0].numel()
    points = torch.empty((paths, *x.shape[1:]), dtype=torch.int16)
    counts = torch.zeros(1, dtype=torch.int64)
    library().lib.xg_ig_points(_threads(), paths, e, x.data_ptr(), base.data_ptr(), image_of.data_ptr(),
                               alpha_of.data_ptr(), alpha_frac, *out.fields(), points.data_ptr(), counts.data_ptr())
    return points, int(counts[0])


def ig_accumulate(total: torch.Tensor, g: torch.Tensor, image_of: torch.Tensor, weight_of: torch.Tensor) -> None:
    """``total[image_of[j]] += g[j] * weight_of[j]`` in place (total int64 contiguous, g int16, same layout)."""
    g = g.contiguous()
    image_of, weight_of = image_of.to(torch.int64).contiguous(), weight_of.to(torch.int64).contiguous()
    assert total.is_contiguous() and total.dtype == torch.int64
    library().lib.xg_ig_accumulate(_threads(), g.shape[0], g[0].numel(), g.data_ptr(), image_of.data_ptr(),
                                   weight_of.data_ptr(), total.data_ptr())


# ---------------------------------------------------------------- layouts


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """int64 (N, C, H, W) integers of at most 16 bits as int16 (N, H, W, C), in one pass."""
    x = x.to(torch.int64).contiguous()
    n, c, h, w = x.shape
    out = torch.empty((n, h, w, c), dtype=torch.int16)
    library().lib.xg_to_channels_last(_threads(), n, c, h * w, x.data_ptr(), out.data_ptr())
    return out


def to_channels_first(x: torch.Tensor) -> torch.Tensor:
    """int16 (N, H, W, C) as int64 (N, C, H, W), in one pass."""
    x = x.contiguous()
    n, h, w, c = x.shape
    out = torch.empty((n, c, h, w), dtype=torch.int64)
    library().lib.xg_to_channels_first(_threads(), n, c, h * w, x.data_ptr(), out.data_ptr())
    return out
