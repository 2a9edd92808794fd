"""Symbolic values, as upstream Physika has them: sympy objects (`x, y: Symbol`, `u: Function`,
`eq: Equation := lhs = rhs`) and upstream's helpers on them. sympy comes with torch; it is
imported only by a program that declares a symbol."""
from __future__ import annotations

from typing import Any

import torch


def _sympy():
    import sympy
    return sympy


def number(v: Any) -> Any:
    """An operand of symbolic arithmetic: a one-element tensor as a Python number."""
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return v.item()
    return v


def symbol(name: str):
    return _sympy().Symbol(name)


def function(name: str):
    return _sympy().Function(name)


def equation(lhs: Any, rhs: Any):
    return _sympy().Eq(number(lhs), number(rhs))


def subs(expr: Any, *pairs: Any):
    """`subs(e, x, 3.0, y, 4.0)`: e with each symbol replaced by the value after it, evaluated."""
    if len(pairs) % 2:
        raise ValueError("subs takes symbols and values in pairs: subs(e, x, 3.0, y, 4.0)")
    values = {pairs[k]: number(pairs[k + 1]) for k in range(0, len(pairs), 2)}
    return _sympy().sympify(expr).subs(values).evalf()


def diff(expr: Any, x: Any, n: Any = 1):
    return _sympy().diff(expr, x, int(number(n)))


def lambdify(symbols: Any, expr: Any):
    """A Python function of numbers computing expr (torch's math on tensors)."""
    f = _sympy().lambdify(list(symbols) if isinstance(symbols, (list, tuple)) else [symbols], expr, "math")
    return lambda *args: torch.tensor(float(f(*(float(number(a)) for a in args))), dtype=torch.float32)


def symbolic_solve(eq: Any, x: Any) -> list:
    """The roots of an equation (or of expr = 0) in x, as sympy numbers or expressions."""
    return [r.evalf() if r.is_number else r for r in _sympy().solve(eq, x)]


def is_symbolic(v: Any) -> bool:
    """A sympy object (without importing sympy for programs that have none)."""
    return any((getattr(c, "__module__", None) or "").startswith("sympy.") for c in type(v).__mro__)
