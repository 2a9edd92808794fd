"""Runtime errors land on the `.phk` expression that failed, also inside inlined functions: the
line and column of the expression, a caret under exactly it, a note naming the call it was
reached through, on every backend and at level 0 (docs/cli.md, "Runtime errors")."""
import json
import textwrap

import pytest

from phc.cli import main

OOB = """\
def pick(v: ℝ[n], k: ℕ): ℝ:
    return v[k]

def total(v: ℝ[n]): ℝ:
    s: ℝ = 0
    for i:ℕ(4):
        s += pick(v, i + 1)
    return s

x: ℝ[4] = [1, 2, 3, 4]
t: ℝ = total(x)
print(t)
"""

MATMUL = """\
def apply(m: ℝ[a, b], v: ℝ[c]): ℝ[a]:
    return m @ v

A: ℝ[10, 5] = for i:ℕ(10) -> for j:ℕ(5) -> i + j
n: ℕ = 8
v: ℝ[n] = for i:ℕ(n) -> i
y = apply(A, v)
print(y)
"""

METHOD = """\
class Net:
    w: ℝ[3]
    def score(k: ℕ): ℝ:
        return this.w[k] * 2.0
net: Net = Net([1.0, 2.0, 3.0])
s: ℝ = net.score(5)
print(s)
"""

TABULATED = """\
def shift(v: ℝ[4]): ℝ[4]:
    return for i:ℕ(4) -> v[i + 1]

x: ℝ[4] = [1, 2, 3, 4]
y: ℝ[4] = shift(x)
print(y)
"""

MODES = [("torch", "2"), ("torch", "0"), ("triton", "2")]


def _run(tmp_path, capsys, source: str, backend: str, opt: str, *extra) -> tuple[int, str, str]:
    f = tmp_path / "prog.phk"
    f.write_text(source)
    code = main(["run", str(f), "--device", "cpu", "--backend", backend, "--opt", opt, *extra])
    out = capsys.readouterr()
    return code, out.out, out.err.replace(str(f), "prog.phk")


def _first_lines(err: str, k: int) -> list[str]:
    return err.splitlines()[:k]


@pytest.mark.parametrize("backend, opt", MODES)
def test_index_out_of_range_inside_inlined_functions(tmp_path, capsys, backend, opt):
    code, _, err = _run(tmp_path, capsys, OOB, backend, opt)
    assert code == 1
    assert _first_lines(err, 4) == [
        "prog.phk:2:12: runtime error: index 4 is out of range for axis 0 of size 4",
        "        return v[k]",
        "               ^^^^",
        "  note: in `pick`, called at prog.phk:7:14",
    ]


@pytest.mark.parametrize("backend, opt", MODES)
def test_matmul_shapes_at_the_matmul(tmp_path, capsys, backend, opt):
    code, _, err = _run(tmp_path, capsys, MATMUL, backend, opt)
    assert code == 1
    assert _first_lines(err, 4) == [
        "prog.phk:2:12: runtime error: `@` shapes do not fit: ℝ[10,5] @ ℝ[8] (5 ≠ 8)",
        "        return m @ v",
        "               ^^^^^",
        "  note: in `apply`, called at prog.phk:7:5",
    ]


@pytest.mark.parametrize("backend, opt", MODES)
def test_method_of_a_class_the_index_not_the_product(tmp_path, capsys, backend, opt):
    # the line computes `this.w[k] * 2.0`: the failing instruction picks the index inside it
    code, _, err = _run(tmp_path, capsys, METHOD, backend, opt)
    assert code == 1
    assert _first_lines(err, 4) == [
        "prog.phk:4:16: runtime error: index 5 is out of range for axis 0 of size 3",
        "            return this.w[k] * 2.0",
        "                   ^^^^^^^^^",
        "  note: in `score`, called at prog.phk:6:8",
    ]


@pytest.mark.parametrize("backend, opt", MODES)
def test_tabulated_read_out_of_range_in_an_inlined_function(tmp_path, capsys, backend, opt):
    code, _, err = _run(tmp_path, capsys, TABULATED, backend, opt)
    assert code == 1
    assert _first_lines(err, 4) == [
        "prog.phk:2:26: runtime error: index 4 is out of range for axis 0 of size 4",
        "        return for i:ℕ(4) -> v[i + 1]",
        "                             ^^^^^^^^",
        "  note: in `shift`, called at prog.phk:5:11",
    ]


@pytest.mark.parametrize("opt", ["2", "0"])
def test_json_has_the_expression_end_and_the_calls(tmp_path, capsys, opt):
    code, _, err = _run(tmp_path, capsys, OOB, "torch", opt, "--format", "json")
    assert code == 1
    obj = json.loads(err.strip().splitlines()[-1])
    assert (obj["line"], obj["col"], obj["end_line"], obj["end_col"]) == (2, 12, 2, 16)
    assert obj["calls"][0] == {"func": "pick", "line": 7, "col": 14}


def test_spans_do_not_change_the_generated_code():
    """The tags are the only difference spans make: the same program with its expressions
    moved (other spans) compiles to the same code but for the `# @` tags."""
    import re
    from phc.pipeline import compile_source
    moved = textwrap.indent(OOB, "").replace("    return v[k]", "    return   v[k]")
    strip = lambda py: re.sub(r"  # @[^\n]*", "", py)      # noqa: E731
    a, b = compile_source(OOB, "a.phk").python, compile_source(moved, "a.phk").python
    assert a != b and strip(a).split("\n", 1)[1] == strip(b).split("\n", 1)[1]
