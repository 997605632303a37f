"""Board files: bundled figures, user folders and overrides, and one-line errors for mistakes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xaihls.errors import XaiHlsError
from xaihls.plan.boards import BOARD_PATH_ENV, Board, list_boards, load_board

BUNDLED_PARTS = {
    "pynq-z2": "xc7z020clg400-1",
    "arty-a7-100t": "xc7a100tcsg324-1",
    "ultra96-v2": "xczu3eg-sbva484-1-e",
    "kv260": "xck26-sfvc784-2LV-c",
    "zcu104": "xczu7ev-ffvc1156-2-e",
    "zcu102": "xczu9eg-ffvb1156-2-e",
    "alveo-u250": "xcu250-figd2104-2L-e",
}

GOOD_BOARD = """\
name: {name}
description: A test board
part: xc7z020clg400-1
family: zynq7
yosys_family: xc7
clock_mhz: 125
resources: {{LUT: 1000, FF: 2000, DSP: 10, BRAM_18K: 20, URAM: 0}}
ddr_bandwidth_gbps: 1.5
source: "made up for a test"
"""


@pytest.fixture(autouse=True)
def no_user_board_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own XAIHLS_BOARD_PATH must not leak into what the tests see.
    monkeypatch.delenv(BOARD_PATH_ENV, raising=False)


def write_board(folder: Path, name: str, text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(GOOD_BOARD.format(name=name) if text is None else text)
    return path


def edited(name: str, old: str, new: str) -> str:
    text = GOOD_BOARD.format(name=name)
    assert old in text
    return text.replace(old, new)


def assert_one_line_error(exc: pytest.ExceptionInfo[XaiHlsError], *parts: str) -> str:
    message = str(exc.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


# --- bundled boards -------------------------------------------------------------------


@pytest.mark.parametrize("name, part", sorted(BUNDLED_PARTS.items()))
def test_bundled_board_loads_with_its_part(name: str, part: str) -> None:
    board = load_board(name)
    assert isinstance(board, Board)
    assert board.name == name
    assert board.part == part
    assert board.path.name == f"{name}.yaml"
    assert board.source.strip()
    assert board.clock_mhz > 0 and board.ddr_bandwidth_gbps > 0
    resources = board.resources.as_dict()
    assert list(resources) == ["LUT", "FF", "DSP", "BRAM_18K", "URAM"]
    assert all(count > 0 for key, count in resources.items() if key != "URAM")
    assert board.yosys_family == ("xc7" if board.family in ("zynq7", "artix7") else "xcup")


def test_bundled_figures_for_pynq_z2() -> None:
    board = load_board("pynq-z2")
    assert board.resources.as_dict() == {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280, "URAM": 0}
    assert board.family == "zynq7" and board.yosys_family == "xc7"
    assert board.clock_mhz == 100.0


def test_list_boards_is_the_bundled_set_sorted_by_name() -> None:
    names = [board.name for board in list_boards()]
    assert names == sorted(BUNDLED_PARTS)


def test_names_are_case_insensitive() -> None:
    assert load_board("ZCU104").path == load_board("zcu104").path


def test_bytes_per_cycle_is_bandwidth_over_clock() -> None:
    board = load_board("zcu102")  # 19.2 GB/s at 200 MHz
    assert board.bytes_per_cycle() == pytest.approx(96.0)
    assert board.bytes_per_cycle(100) == pytest.approx(192.0)
    with pytest.raises(XaiHlsError) as exc:
        board.bytes_per_cycle(0)
    assert_one_line_error(exc, "zcu102", "> 0")


# --- user boards ----------------------------------------------------------------------


def test_user_board_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write_board(first, "my-board")
    write_board(second, "other-board")
    monkeypatch.setenv(BOARD_PATH_ENV, os.pathsep.join([str(first), str(second)]))
    assert load_board("my-board").clock_mhz == 125.0
    assert load_board("other-board").path == (second / "other-board.yaml").resolve()
    assert {"my-board", "other-board"} <= {board.name for board in list_boards()}


def test_user_board_from_search_path(tmp_path: Path) -> None:
    write_board(tmp_path, "my-board")
    board = load_board("my-board", search_path=[tmp_path])
    assert board.part == "xc7z020clg400-1"
    assert board.resources.dsp == 10
    assert "my-board" in [b.name for b in list_boards(search_path=[tmp_path])]
    # Without the folder the board is not visible.
    with pytest.raises(XaiHlsError):
        load_board("my-board")


def test_board_by_path(tmp_path: Path) -> None:
    path = write_board(tmp_path, "by-path")
    assert load_board(path).name == "by-path"
    assert load_board(str(path)).name == "by-path"


def test_user_board_overrides_bundled_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_board(tmp_path, "pynq-z2", edited("pynq-z2", "clock_mhz: 125", "clock_mhz: 142"))
    monkeypatch.setenv(BOARD_PATH_ENV, str(tmp_path))
    board = load_board("pynq-z2")
    assert board.clock_mhz == 142.0
    assert board.path == (tmp_path / "pynq-z2.yaml").resolve()
    listed = [b for b in list_boards() if b.name == "pynq-z2"]
    assert len(listed) == 1 and listed[0].clock_mhz == 142.0


def test_search_path_overrides_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_folder, arg_folder = tmp_path / "env", tmp_path / "arg"
    write_board(env_folder, "my-board", edited("my-board", "clock_mhz: 125", "clock_mhz: 111"))
    write_board(arg_folder, "my-board", edited("my-board", "clock_mhz: 125", "clock_mhz: 222"))
    monkeypatch.setenv(BOARD_PATH_ENV, str(env_folder))
    assert load_board("my-board", search_path=[arg_folder]).clock_mhz == 222.0


# --- errors ---------------------------------------------------------------------------


def test_unknown_board_lists_known_boards() -> None:
    with pytest.raises(XaiHlsError) as exc:
        load_board("foo")
    message = assert_one_line_error(exc, "unknown board 'foo'", BOARD_PATH_ENV, "--board-path")
    assert "known boards: " + ", ".join(sorted(BUNDLED_PARTS)) in message


def test_missing_board_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv(BOARD_PATH_ENV, str(missing))
    with pytest.raises(XaiHlsError) as exc:
        load_board("pynq-z2")
    assert_one_line_error(exc, str(missing), BOARD_PATH_ENV)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = edited("bad", "clock_mhz: 125", "clock_mhz: [125")
    path = write_board(tmp_path, "bad", text)
    with pytest.raises(XaiHlsError) as exc:
        load_board(path)
    message = assert_one_line_error(exc, f"board file {path.resolve()}", "YAML syntax error", "line ")
    # The parser notices the unclosed bracket on one of the lines after it opened.
    line = int(message.split("line ")[1].split(",")[0])
    assert 6 <= line <= 10


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write_board(tmp_path, "dup", GOOD_BOARD.format(name="dup") + "clock_mhz: 200\n")
    with pytest.raises(XaiHlsError) as exc:
        load_board(path)
    assert_one_line_error(exc, str(path.resolve()), "duplicate key 'clock_mhz'", "line 10")


def test_missing_field(tmp_path: Path) -> None:
    path = write_board(tmp_path, "nopart", edited("nopart", "part: xc7z020clg400-1\n", ""))
    with pytest.raises(XaiHlsError) as exc:
        load_board(path)
    assert_one_line_error(exc, f"board file {path.resolve()}", "field 'part' is missing", "string")


def test_missing_resource(tmp_path: Path) -> None:
    path = write_board(tmp_path, "nodsp", edited("nodsp", "DSP: 10, ", ""))
    with pytest.raises(XaiHlsError) as exc:
        load_board(path)
    assert_one_line_error(exc, str(path.resolve()), "field 'resources.DSP' is missing")


@pytest.mark.parametrize(
    "old, new, field, expected",
    [
        ("DSP: 10", "DSP: many", "resources.DSP", "must be a positive integer, got 'many'"),
        ("DSP: 10", "DSP: 0", "resources.DSP", "must be a positive integer, got 0"),
        ("LUT: 1000", "LUT: 1000.5", "resources.LUT", "must be a positive integer, got 1000.5"),
        ("URAM: 0", "URAM: -1", "resources.URAM", "must be an integer >= 0, got -1"),
        ("clock_mhz: 125", "clock_mhz: fast", "clock_mhz", "must be a number > 0 (MHz), got 'fast'"),
        ("clock_mhz: 125", "clock_mhz: -5", "clock_mhz", "must be a number > 0 (MHz), got -5"),
        ("clock_mhz: 125", "clock_mhz: yes", "clock_mhz", "must be a number > 0 (MHz), got True"),
        ("ddr_bandwidth_gbps: 1.5", "ddr_bandwidth_gbps: 0", "ddr_bandwidth_gbps", "must be a number > 0"),
        ("family: zynq7", "family: spartan6", "family", "must be one of zynq7, artix7, zynqmp, virtexuplus"),
        ("yosys_family: xc7", "yosys_family: xcup", "yosys_family", "must be 'xc7' for family 'zynq7'"),
        ("part: xc7z020clg400-1", "part: 7020", "part", "must be a non-empty string"),
        ("resources: {LUT", "resources: 5 #", "resources", "must be a mapping with keys LUT, FF, DSP"),
    ],
)
def test_wrong_type_or_range(tmp_path: Path, old: str, new: str, field: str, expected: str) -> None:
    path = write_board(tmp_path, "wrong", edited("wrong", old, new))
    with pytest.raises(XaiHlsError) as exc:
        load_board(path)
    assert_one_line_error(exc, f"board file {path.resolve()}: field '{field}' {expected}")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write_board(tmp_path, "typo", edited("typo", "clock_mhz: 125", "clock_mz: 125"))
    with pytest.raises(XaiHlsError) as exc:
        load_board(path)
    assert_one_line_error(
        exc, f"board file {path.resolve()}", "unknown field 'clock_mz'", "did you mean 'clock_mhz'"
    )


def test_unknown_resource_key_is_named(tmp_path: Path) -> None:
    path = write_board(tmp_path, "typo", edited("typo", "URAM: 0", "URAM: 0, BRAM: 4"))
    with pytest.raises(XaiHlsError) as exc:
        load_board(path)
    assert_one_line_error(exc, str(path.resolve()), "unknown field 'resources.BRAM'")


def test_name_must_match_file_stem(tmp_path: Path) -> None:
    path = write_board(tmp_path, "stem", GOOD_BOARD.format(name="other"))
    with pytest.raises(XaiHlsError) as exc:
        load_board(path)
    assert_one_line_error(
        exc, f"board file {path.resolve()}: field 'name' must be equal to the file name 'stem', got 'other'"
    )


def test_empty_file(tmp_path: Path) -> None:
    path = write_board(tmp_path, "empty", "")
    with pytest.raises(XaiHlsError) as exc:
        load_board(path)
    assert_one_line_error(exc, str(path.resolve()), "must be a mapping", "got nothing")


def test_broken_user_board_is_reported_when_listing(tmp_path: Path) -> None:
    path = write_board(tmp_path, "broken", edited("broken", "DSP: 10", "DSP: many"))
    with pytest.raises(XaiHlsError) as exc:
        list_boards(search_path=[tmp_path])
    assert_one_line_error(exc, str(path.resolve()), "resources.DSP")


def test_each_family_has_its_ddr_port_width_and_a_board_may_set_its_own(tmp_path):
    assert {b.name: b.axi_data_bits for b in list_boards()} == {
        "alveo-u250": 512, "arty-a7-100t": 64, "kv260": 128, "pynq-z2": 64, "ultra96-v2": 128, "zcu102": 128,
        "zcu104": 128}
    text = (Path(load_board("pynq-z2").path)).read_text().replace("name: pynq-z2", "name: mine")
    (tmp_path / "mine.yaml").write_text(text + "axi_data_bits: 128\n")
    assert load_board(tmp_path / "mine.yaml").beat_elems == 8
    (tmp_path / "mine.yaml").write_text(text + "axi_data_bits: 96\n")
    with pytest.raises(XaiHlsError, match="field 'axi_data_bits' must be one of 64, 128, 256, 512"):
        load_board(tmp_path / "mine.yaml")
