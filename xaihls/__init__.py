"""xaihls: a PyTorch CNN to a 16-bit FPGA accelerator for prediction and attribution.

``compile`` and ``Accelerator`` load on first use, so the host side (``xaihls.driver``, which a
board without PyTorch runs) imports no torch.
"""

from xaihls.errors import XaiHlsError
from xaihls.methods import METHODS
from xaihls.version import __version__

__all__ = ["Accelerator", "compile", "XaiHlsError", "METHODS", "__version__"]


def __getattr__(name: str):
    if name in ("Accelerator", "compile"):
        from xaihls import accelerator

        return getattr(accelerator, name)
    raise AttributeError(f"module 'xaihls' has no attribute {name!r}")
