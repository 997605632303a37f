"""The module testbenches import tb_util by name, as the simulator does (its folder is on its path)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
