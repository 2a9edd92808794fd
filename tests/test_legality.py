"""Near misses of each transformation's precondition (docs/ir.md, "Preconditions of each
transformation"): for a program on each side of the line, the decision (the affine IR, or the
host loop's reason) and the printed value."""
import os
import subprocess
import sys
from pathlib import Path

from phc import pipeline
from phc.ir import nodes as n
from phc.ir.printer import format_module
from phc.ir.simplify import simplify, simplify_index

from helpers import run_program

ROOT = Path(__file__).resolve().parents[1]


def ir(source: str, name: str = "legal") -> str:
    _, typed = pipeline.frontend(source, f"{name}.phk")
    return format_module(pipeline.lower(typed))


def check(source: str, must_print: str, *in_ir: str, not_in_ir: tuple[str, ...] = ()):
    text = ir(source)
    for part in in_ir:
        assert part in text, f"IR lacks {part!r}:\n{text}"
    for part in not_in_ir:
        assert part not in text, f"IR has {part!r}:\n{text}"
    assert run_program(source) == must_print


# ---------------------------------------------------------------- loop distribution (fission)

FISSION = """def f(n: ℕ): ℝ[m]:
    r: ℝ[3] = zeros(3)
    for i: ℕ(3):
        r[i] = 1.0
        r[{second}] = {value}
    return r
f(3)
"""


def test_two_stores_that_overlap_across_iterations_stay_serial():
    check(FISSION.format(second="2 - i", value="2.0"), "[2.0, 2.0, 1.0] ∈ ℝ[3]\n",
          "serial  # two stores into `r` may write the same element in different iterations")


def test_two_stores_to_the_same_point_are_distributed():
    check(FISSION.format(second="i", value="r[i] + 2.0"), "[3.0, 3.0, 3.0] ∈ ℝ[3]\n",
          not_in_ir=("serial",))


# ---------------------------------------------------------------- scans

SCAN = """v: ℝ[4] = [1.0, 2.0, 3.0, 4.0]
def f(v: ℝ[n]): ℝ[n]:
    r: ℝ[len(v)] = zeros(len(v))
    run = 0.0
    for i: ℕ(len(v)):
        run += v[i]
        r[i] = {stored}
    return r
f(v)
"""


def test_a_running_scan_stays_a_serial_host_loop():
    check(SCAN.format(stored="run"), "[1.0, 3.0, 6.0, 10.0] ∈ ℝ[4]\n",
          "serial  # stores `run`, which the loop carries")


def test_a_store_that_does_not_read_the_carried_value_is_vectorised():
    check(SCAN.format(stored="v[i] * 2.0"), "[2.0, 4.0, 6.0, 8.0] ∈ ℝ[4]\n", not_in_ir=("serial",))


# ---------------------------------------------------------------- rectangular nests

TRI = """def f(n: ℕ): ℝ[3, 3]:
    r: ℝ[3, 3] = zeros(3, 3)
    for i: ℕ(3):
        for j: ℕ({bound}):
            r[i, j] = 1.0 + i
    return r
f(0)
"""


def test_a_bound_on_the_outer_variable_keeps_the_outer_loop_on_the_host():
    check(TRI.format(bound="i + 1"), "[[1.0, 0.0, 0.0], [2.0, 2.0, 0.0], [3.0, 3.0, 3.0]] ∈ ℝ[3,3]\n",
          "serial  # the range of `j` depends on an enclosing loop variable")


def test_a_rectangular_bound_is_one_nest():
    check(TRI.format(bound="3"), "[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]] ∈ ℝ[3,3]\n",
          not_in_ir=("serial",))


def test_a_triangular_reduction_in_a_comprehension_runs_point_by_point():
    src = "x: ℝ[3] = [1.0, 2.0, 3.0]\n(for i: ℕ(3) -> sum(for t: ℕ(i + 1) -> x[t]))\n"
    assert run_program(src) == "[1.0, 3.0, 6.0] ∈ ℝ[3]\n"


# ---------------------------------------------------------------- kinds

def test_no_rule_changes_a_kind_outside_an_index():
    ints = frozenset({"i"})
    times_one = n.Bin("*", n.Sym("i"), n.Const(1.0))
    assert simplify(times_one, ints) == times_one
    assert simplify_index(times_one, ints) == n.Sym("i")
    assert simplify(n.Bin("*", n.Sym("i"), n.Const(1)), ints) == n.Sym("i")
    assert simplify(n.Bin("*", n.Sym("i"), n.Const(2.0)), ints) == n.Bin("*", n.Sym("i"), n.Const(2.0))
    assert simplify(n.Bin("/", n.Sym("i"), n.Const(1)), ints) != n.Sym("i")


def test_a_declared_real_tabulation_of_integers_is_real():
    check("B: ℝ[3] = for i: ℕ(3) -> i * 1\nB[0] = 0.25\nB\n", "[0.25, 1.0, 2.0] ∈ ℝ[3]\n", "float(i)")


def test_an_undeclared_tabulation_of_integers_stays_integer():
    assert run_program("(for i: ℕ(3) -> i * 1)\n") == "[0, 1, 2] ∈ ℝ[3]\n"


# ---------------------------------------------------------------- scalar evolution

COUNT = """def count(n: ℕ): ℝ:
    t = 0
    for i: ℕ({lo}, {hi}):
        t += 1
    return t
count(0)
"""


def test_the_trip_count_of_an_empty_range_is_zero():
    check(COUNT.format(lo=5, hi=3), "0.0 ∈ ℝ\n")


def test_the_trip_count_of_a_range():
    check(COUNT.format(lo=3, hi=5), "2.0 ∈ ℝ\n")


def test_a_symbolic_trip_count_is_clamped():
    src = "def count(a: ℕ, b: ℕ): ℕ:\n    t = 0\n    for i: ℕ(a, b):\n        t += 1\n    return t\ncount(5, 3)\ncount(3, 5)\n"
    check(src, "0 ∈ ℝ\n2 ∈ ℝ\n", "max(")


# ---------------------------------------------------------------- simultaneous updates

ARGMAX = """x: ℝ[2, 2] = [[1, 5], [3, 2]]
def argcol(x: ℝ[m, n]): ℕ:
    best = -100.0
    bj = 0
    for i: ℕ(len(x)):
        for j: ℕ(len(x[0])):
            if x[i, j] > best:
                best = x[i, j]
                bj = j
    return bj
argcol(x)
"""


def test_updates_read_the_old_values_and_compilation_ignores_the_hash_seed():
    check(ARGMAX, "1 ∈ ℝ\n", "_best_old")
    code = ("import sys; sys.path.insert(0, 'tests'); from phc import pipeline; "
            f"print(pipeline.compile_source({ARGMAX!r}, 'af.phk').python)")
    texts = set()
    for seed in ("0", "9"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        texts.add(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                                 capture_output=True, text=True).stdout)
    assert len(texts) == 1


# ---------------------------------------------------------------- whole-value reductions

def test_sum_of_a_row_inside_a_nest_is_a_reduce():
    check("x: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]\n(for i -> sum(x[i]))\n", "[6.0, 15.0] ∈ ℝ[2]\n",
          "reduce add over e in 0 .. dim(x, 1)")


def test_sum_of_a_whole_tensor_on_the_host_stays_the_runtime_call():
    check("x: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]\nsum(x)\n", "21.0 ∈ ℝ\n", "print sum(x)")


# ---------------------------------------------------------------- copies and aliases

def test_an_identity_comprehension_is_a_copy():
    check("x: ℝ[3] = [1.0, 2.0, 3.0]\nc = for i -> x[i]\nc[0] = 9.0\nx\nc\n",
          "[1.0, 2.0, 3.0] ∈ ℝ[3]\n[9.0, 2.0, 3.0] ∈ ℝ[3]\n", "reshape(x,")


def test_an_array_alias_sees_the_store_an_element_read_does_not():
    src = "x: ℝ[3] = [1.0, 2.0, 3.0]\ny = x\na = y[0]\ny[0] = 5.0\na\nx\n"
    assert run_program(src) == "1.0 ∈ ℝ\n[5.0, 2.0, 3.0] ∈ ℝ[3]\n"


# ---------------------------------------------------------------- host fallbacks

def test_a_comprehension_calling_a_function_runs_point_by_point():
    src = ("def damp(v: ℝ): ℝ:\n    t = v\n    for k: ℕ(2):\n        t = t * 0.5 + v\n    return t\n"
           "x: ℝ[3] = [1.0, 2.0, 3.0]\n(for i -> damp(x[i]))\n")
    python = pipeline.compile_source(src, "q.phk").python
    assert "not vectorised (cannot vectorise Call)" in python
    assert run_program(src) == "[1.75, 3.5, 5.25] ∈ ℝ[3]\n"


def test_a_row_times_a_matrix_in_a_comprehension_is_a_host_value():
    src = "x: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]\nw: ℝ[3, 2] = [[1, 0], [0, 1], [1, 1]]\n(for i -> x[i] @ w)\n"
    check(src, "[[4.0, 5.0], [10.0, 11.0]] ∈ ℝ[2,2]\n", "host_value(")


def test_an_elementwise_row_body_is_tabulated_per_element():
    check("x: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]\n(for i -> x[i] * 2.0)\n",
          "[[2.0, 4.0, 6.0], [8.0, 10.0, 12.0]] ∈ ℝ[2,3]\n", "x[i, e] * 2.0")


# ---------------------------------------------------------------- empty ranges of max/argmax

ARGMAX1 = """def argmax(v: ℝ[m]): ℝ:
    idx: ℝ = 0
    best: ℝ = v[0]
    for i: ℕ(1, len(v)):
        if v[i] > best:
            best = v[i]
            idx = i
    return idx
v: ℝ[{n}] = {v}
argmax(v)
"""


def test_argmax_over_an_empty_range_keeps_the_old_value():
    assert run_program(ARGMAX1.format(n=1, v="[0.5]")) == "0.0 ∈ ℝ\n"


def test_argmax_over_a_range():
    assert run_program(ARGMAX1.format(n=3, v="[0.5, 2.0, 1.0]")) == "1.0 ∈ ℝ\n"


# ---------------------------------------------------------------- after a nest

def test_the_loop_variable_and_locals_survive_a_nest():
    check("u: ℝ[3] = [1, 2, 3]\nfor i: ℕ(len(u)):\n    t = u[i]\ni\nt\n", "2 ∈ ℝ\n3.0 ∈ ℝ\n",
          "if dim(u, 0) > 0")


# ---------------------------------------------------------------- slices

def test_slices_with_steps_and_several_axes():
    src = "x: ℝ[3, 2] = [[1, 2], [3, 4], [5, 6]]\nx[::2]\nx[::-1, 1]\nx[1:, :]\n"
    check(src, "[[1.0, 2.0], [5.0, 6.0]] ∈ ℝ[2,2]\n[6.0, 4.0, 2.0] ∈ ℝ[3]\n[[3.0, 4.0], [5.0, 6.0]] ∈ ℝ[2,2]\n",
          "x[::2]")


# ---------------------------------------------------------------- host conditions in a nest

def test_a_host_condition_selects_on_the_host():
    src = ("x: ℝ[3] = [1.0, -2.0, 3.0]\ndef f(x: ℝ[n], k: ℕ): ℝ[n]:\n    r: ℝ[len(x)] = zeros(len(x))\n"
           "    for i: ℕ(len(x)):\n        t = x[i]\n        if k > 1 and x[i] > 0:\n            t = 0.0\n"
           "        r[i] = t\n    return r\nf(x, 1)\nf(x, 2)\n")
    assert run_program(src) == "[1.0, -2.0, 3.0] ∈ ℝ[3]\n[0.0, -2.0, 0.0] ∈ ℝ[3]\n"


# ---------------------------------------------------------------- ranges that cannot be inferred

def test_a_range_that_cannot_be_inferred_is_a_diagnostic():
    import pytest
    from phc.diagnostics import PhcError
    with pytest.raises(PhcError, match="cannot infer the range of `i`: it indexes no array plainly"):
        pipeline.compile_source("y: ℝ[4] = [1, 2, 3, 4]\nz = for i -> y[i // 2]\nz\n", "v.phk")
    assert run_program("y: ℝ[4] = [1, 2, 3, 4]\nz = for i -> y[i]\nz\n") == "[1.0, 2.0, 3.0, 4.0] ∈ ℝ[4]\n"


def test_a_declared_real_assigned_an_index_in_a_host_loop_stays_real():
    src = (
        "v: ℝ[3] = [0.5, 2.0, 1.0]\ndef f(v: ℝ[m]): ℝ:\n    idx: ℝ = 0\n    best: ℝ = v[0]\n"
        "    for i: ℕ(len(v)):\n        physika_print(i)\n        if v[i] > best:\n"
        "            best = v[i]\n            idx = i\n    return idx\nf(v)\n")
    check(src, "0 ∈ ℝ\n1 ∈ ℝ\n2 ∈ ℝ\n1.0 ∈ ℝ\n", "serial  # prints or evaluates an expression")


def test_a_row_store_in_a_loop_is_one_store_per_element():
    src = ("x: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]\ndef f(x: ℝ[m, n]): ℝ[m, n]:\n    r: ℝ[2, 3] = zeros(2, 3)\n"
           "    for i: ℕ(2):\n        r[i] = x[1 - i] * 2.0\n    return r\nf(x)\n")
    check(src, "[[8.0, 10.0, 12.0], [2.0, 4.0, 6.0]] ∈ ℝ[2,3]\n", "x[1 - i, e] * 2.0")


def test_a_row_store_of_a_matrix_product_stays_on_the_host():
    src = ("x: ℝ[2, 2] = [[1, 2], [3, 4]]\nw: ℝ[2, 2] = [[0, 1], [1, 0]]\ndef f(x: ℝ[m, n], w: ℝ[n, n]): ℝ[m, n]:\n"
           "    r: ℝ[2, 2] = zeros(2, 2)\n    for i: ℕ(2):\n        r[i] = x[i] @ w\n    return r\nf(x, w)\n")
    check(src, "[[2.0, 1.0], [4.0, 3.0]] ∈ ℝ[2,2]\n", "serial  # not an elementwise expression")
