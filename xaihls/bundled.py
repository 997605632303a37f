"""Where the files xaihls ships beside its code are: the board files and the hardware templates.

In the repository they are the top-level folders ``boards/`` and ``hls_templates/``; a wheel
carries them inside the package (``xaihls/boards``, ``xaihls/hls_templates``: pyproject.toml's
package-dir mapping). The installed place is looked at first, then the repository's, so a wheel,
an editable install and a checkout on PYTHONPATH find the same files.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _folder(name: str) -> Path:
    installed = _PACKAGE / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


BOARDS_DIR = _folder("boards")
TEMPLATES_DIR = _folder("hls_templates")
