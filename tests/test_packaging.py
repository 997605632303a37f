"""A non-editable install carries everything the package reads at run time."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_boards_models_and_templates(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("xaihls-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for board in (ROOT / "xaihls" / "boards").glob("*.yaml"):
        assert f"xaihls/boards/{board.name}" in names
    for data in (ROOT / "xaihls" / "models" / "data").iterdir():
        assert f"xaihls/models/data/{data.name}" in names
    templates = ROOT / "xaihls" / "hls_templates"
    for path in templates.rglob("*") if templates.exists() else []:
        if path.is_file() and "__pycache__" not in path.parts:
            assert f"xaihls/hls_templates/{path.relative_to(templates).as_posix()}" in names
    assert any(n.endswith("entry_points.txt") for n in names)
