"""xaihls: a PyTorch CNN to a 16-bit FPGA accelerator for prediction and attribution."""

from xaihls.accelerator import Accelerator, compile
from xaihls.errors import XaiHlsError
from xaihls.methods import METHODS

__version__ = "0.1.0"
__all__ = ["Accelerator", "compile", "XaiHlsError", "METHODS", "__version__"]
