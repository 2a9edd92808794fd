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


def solve(*equations: str, known: dict | None = None) -> tuple:
    """upstream's `solve("F1 = m * a1 + m * a2", "F2 = m * a2")`: linear equations whose left
    sides and some right-side names are variables of the program (`known`, the values bound where
    it runs); the other names are the unknowns, solved for and given back in name order."""
    sp = _sympy()
    values = {k: number(v) for k, v in (known or {}).items()
              if isinstance(number(v), (int, float)) and not isinstance(number(v), bool)}
    parsed = []
    for text in equations:
        if text.count("=") != 1:
            raise ValueError(f"solve: {text!r} is not one equation `name = expression`")
        lhs, rhs = (sp.sympify(side.replace("^", "**")) for side in text.split("="))
        parsed.append(sp.Eq(lhs, rhs))
    names = sorted({s.name for eq in parsed for s in eq.free_symbols} - set(values))
    unknowns = [sp.Symbol(n) for n in names]
    system = [eq.subs({sp.Symbol(k): v for k, v in values.items()}) for eq in parsed]
    found = sp.solve(system, unknowns, dict=True)
    if len(found) != 1 or set(found[0]) != set(unknowns):
        raise ValueError(f"solve: the equations do not determine {', '.join(names)} exactly once")
    return tuple(torch.tensor(float(found[0][u]), dtype=torch.float32) for u in unknowns)
