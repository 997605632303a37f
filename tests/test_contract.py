"""The Program v2 contract: one definition, generated C++/SystemVerilog/docs that match it."""

from __future__ import annotations

import random
import re
import subprocess

import pytest

from xaihls.errors import XaiHlsError
from xaihls.plan import contract
from xaihls.plan.contract import DESCRIPTOR, HEADER, RESULT


def test_generated_files_are_what_the_definition_gives():
    """Rewrite with `python -m xaihls.plan.contract` after changing xaihls/plan/contract.py."""
    for key, text in contract.generated().items():
        path = contract.GENERATED[key]
        assert path.read_text() == text, f"{path} differs from xaihls/plan/contract.py; regenerate it"
    assert contract.main(["--check"]) == 0


def _random_values(record, rng):
    return {p.field.name: rng.randint(p.field.lo, p.field.hi) for p in record.placed}


@pytest.mark.parametrize("record", [HEADER, DESCRIPTOR, RESULT], ids=lambda r: r.name)
def test_records_round_trip_and_refuse_what_does_not_fit(record):
    rng = random.Random(record.words)
    for _ in range(50):
        values = _random_values(record, rng)
        data = record.encode(values)
        assert len(data) == record.bytes and record.decode(data) == values
    field = record.placed[-1].field
    with pytest.raises(XaiHlsError, match=f"{record.name}.{field.name} = {field.hi + 1} does not fit"):
        record.encode({field.name: field.hi + 1})


def test_an_operand_shift_above_the_engines_bound_is_refused_though_its_field_holds_it():
    field = DESCRIPTOR.by_name["xs_b2"].field
    assert field.hi == contract.MAX_X_SHIFT < (1 << field.bits) - 1
    DESCRIPTOR.encode({"xs_b2": contract.MAX_X_SHIFT})
    with pytest.raises(XaiHlsError, match=f"descriptor.xs_b2 = {contract.MAX_X_SHIFT + 1} does not fit"):
        DESCRIPTOR.encode({"xs_b2": contract.MAX_X_SHIFT + 1})


def test_the_systemverilog_struct_puts_every_field_where_the_definition_does():
    text = contract.sv_package()
    for record in (HEADER, DESCRIPTOR, RESULT):
        body = text[text.index(f"// {record.name}:"):text.index(f"}} {record.name}_t;")]
        members = re.findall(r"logic(?: signed)? \[(\d+):0\] (\w+);", body)
        position, placed = 32 * record.words, {}
        for width, name in members:  # listed from the most significant bit down
            position -= int(width) + 1
            placed[name] = position
        assert position == 0
        for p in record.placed:
            assert placed[p.field.name] == 32 * p.word + p.lsb, (record.name, p.field.name)


def test_the_cpp_header_encodes_every_field_as_python_does(tmp_path):
    rng = random.Random(7)
    values = _random_values(DESCRIPTOR, rng)
    sets = "\n".join(f"    set_field(w, DESCRIPTOR_{name.upper()}, {v});" for name, v in values.items())
    gets = "\n".join(f"    ok &= get_field(w, DESCRIPTOR_{name.upper()}) == {v};" for name, v in values.items())
    source = tmp_path / "check.cpp"
    source.write_text(f"""#include <cstdio>
#include "xaihls_contract.h"
using namespace xaihls::contract;
int main() {{
    uint32_t w[DESCRIPTOR_WORDS] = {{0}};
{sets}
    bool ok = true;
{gets}
    for (int i = 0; i < DESCRIPTOR_WORDS; i++) std::printf("%08x\\n", w[i]);
    return ok ? 0 : 1;
}}
""")
    exe = tmp_path / "check"
    subprocess.run(["g++", "-std=c++14", f"-I{contract.GENERATED['cpp'].parent}", str(source), "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    assert out.returncode == 0, "get_field disagrees with set_field"
    words = [int(line, 16) for line in out.stdout.split()]
    assert b"".join(w.to_bytes(4, "little") for w in words) == DESCRIPTOR.encode(values)


def test_codes_are_named_constants_in_every_generated_file():
    cpp, sv = contract.cpp_header(), contract.sv_package()
    for group, name, value, _ in contract._codes():
        literal = hex(value) if group == "reg" else str(value)
        assert f"constexpr int {group.upper()}_{name} = {literal};" in cpp
        assert re.search(rf"localparam \S+(?: \[\d+:0\])? {group.upper()}_{name} = ", sv)
    assert contract.METHOD_CODES["predict"] == 0 and sorted(contract.METHOD_CODES.values()) == list(range(9))
