"""The HLS backend: a Vitis HLS project of the engine (writer) and its g++ C-simulation (csim).

The engine's C++ lives in ``xaihls/hls_templates`` (fixed library + templates with holes);
the writer fills in only parameters.h, the Program image, test vectors and the scripts.
"""

from xaihls.backends.hls.writer import read_project, write_project

__all__ = ["write_project", "read_project"]
