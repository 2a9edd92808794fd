"""The constructs of issue 10 (the whole Physika language): types, diagnostics (line, column,
hint) and, where the pipeline runs them, the printed output."""
from __future__ import annotations

import textwrap

import pytest

from phc.parse import parse
from phc.typecheck import TypedProgram, check
from tests.helpers import run_program, same_output


def typed(src: str) -> TypedProgram:
    return check(parse(textwrap.dedent(src).lstrip("\n"), "t.phk"))


def errors(tp: TypedProgram):
    return [d for d in tp.diagnostics if d.is_error]


def clean(src: str) -> TypedProgram:
    tp = typed(src)
    assert not errors(tp), [d.render() for d in tp.diagnostics]
    return tp


def one_error(src: str):
    tp = typed(src)
    errs = errors(tp)
    assert len(errs) == 1, [d.render() for d in tp.diagnostics]
    return errs[0]


def runs(src: str, want: str, opt: int = 2) -> None:
    got = run_program(textwrap.dedent(src).lstrip("\n"), "torch", opt)
    assert same_output(got, textwrap.dedent(want).lstrip("\n")), got


# ---------------------------------------------------------------- grad of a function, Jacobians

JACOBIAN = """
    def sq(x: ℝ): ℝ:
        return x * x
    def pair(x: ℝ[m]): ℝ[n]:
        a: ℝ = x[0]
        b: ℝ = x[1]
        return [a * b, a + b, a]
    x: ℝ[2] = [2.0, 3.0]
    J = grad(pair, x)
    g = grad(sq, 3.0)
    K = grad(pair(x), x)
"""


def test_grad_of_a_function_is_its_derivative_or_jacobian():
    tp = clean(JACOBIAN)
    assert str(tp.globals["J"]) == "ℝ[3,2]"
    assert str(tp.globals["g"]) == "ℝ"
    assert str(tp.globals["K"]) == "ℝ[3,2]"


def test_jacobian_feeds_a_matrix_product():
    clean(textwrap.dedent(JACOBIAN) + "s: ℝ[3] = [1.0, 1.0, 1.0]\nv: ℝ[2] = s @ J\n")


def test_grad_of_a_function_runs():
    runs(textwrap.dedent(JACOBIAN) + "J\ng\n",
         "[[3.0, 2.0], [1.0, 1.0], [1.0, 0.0]] ∈ ℝ[3,2]\n6.0 ∈ ℝ\n")


def test_grad_of_a_function_of_two_arguments_is_an_error():
    d = one_error("""
        def f(a: ℝ, b: ℝ): ℝ:
            return a * b
        g = grad(f, 2.0)
    """)
    assert "needs a function of one argument" in d.message
    assert (d.span.line, d.span.col) == (3, 10)
    assert d.hint == "differentiate a call instead: `grad(f(a, b), a)`"
