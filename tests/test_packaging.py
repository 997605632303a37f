"""A non-editable install carries everything the package reads at run time."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


WHEEL_SOURCES = ("pyproject.toml", "README.md", "xaihls", "boards", "hls_templates")


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel, built from a copy of its sources: setuptools builds in the tree and keeps its build/
    folder, whose leftovers from an earlier build would hide a file the configuration no longer ships."""
    import shutil

    src = tmp_path / "src"
    for name in WHEEL_SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    out = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(out), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return next(out.glob("xaihls-*.whl"))


def test_wheel_ships_boards_models_templates_and_the_resource_model(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    boards = list((ROOT / "boards").glob("*.yaml"))  # top-level folders of the repository, inside the package
    assert len(boards) >= 7
    for board in boards:
        assert f"xaihls/boards/{board.name}" in names
    for data in (ROOT / "xaihls" / "models" / "data").iterdir():
        assert f"xaihls/models/data/{data.name}" in names
    templates = ROOT / "hls_templates"
    shipped = [p for p in templates.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(shipped) > 20
    for path in shipped:
        assert f"xaihls/hls_templates/{path.relative_to(templates).as_posix()}" in names
    for init in (ROOT / "xaihls").rglob("__init__.py"):  # pyproject.toml lists the packages: none forgotten
        assert init.relative_to(ROOT).as_posix() in names
    assert "xaihls/plan/resource_model.json" in names
    assert "xaihls/golden/native.cpp" in names  # the golden model's native kernels, compiled on first use
    assert any(n.endswith("entry_points.txt") for n in names)


def test_non_editable_install_finds_its_files(tmp_path):
    """Installed from the wheel (not editable), xaihls reads its boards, models, templates and
    fitted resource model."""
    wheel = _build_wheel(tmp_path)
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    check = (
        "import xaihls, pathlib\n"
        "assert str(pathlib.Path(xaihls.__file__)).startswith(%r), xaihls.__file__\n"
        "from xaihls.plan.boards import list_boards\n"
        "from xaihls.models.zoo import get_zoo_model\n"
        "from xaihls.backends.hls.templates import read_template\n"
        "assert len(list_boards()) >= 7\n"
        "from xaihls.plan.resources import load\n"
        "assert load().points\n"
        "e = get_zoo_model('digits'); e.build(); e.samples(); e.calibration()\n"
        "assert 'xaihls_top' in read_template('firmware/xaihls_top.cpp')\n"
        "from xaihls.golden import native\n"
        "assert native.SOURCE.is_file() and str(native.SOURCE).startswith(%r)\n"
        "print('ok')\n" % (str(target), str(target))
    )
    # -S: no .pth files, so the development checkout's editable finder stays out of the way;
    # the dependencies come from this environment's site-packages, after the installed copy.
    import sysconfig

    paths = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    proc = subprocess.run([sys.executable, "-S", "-c", check], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": paths, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
