"""Semantic types that the checker assigns and the lowering reads.

A dimension is an `int` (known), a `str` (a symbol: a signature's `m`, or a variable holding a
size, `rows`), or None (unknown). Types print the way Physika prints them: `ℝ[2,3]`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from phc.ast import Scalar



@dataclass(frozen=True, slots=True)
class DimOp:
    """A dimension computed from others: `H-K+1`, `(H+2*p-K)//s+1`, `m//2`. `/` divides
    exactly (an unknown when it leaves a remainder); as a whole dimension it floors, as a
    range does (`ℕ(H/2)` counts floor(H/2))."""
    op: str                         # + - * // /
    a: "Dim"
    b: "Dim"

    def __str__(self) -> str:
        return f"{_operand(self.a, self.op, False)}{self.op}{_operand(self.b, self.op, True)}"


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "//": 2, "/": 2}


def _operand(d, op: str, right: bool) -> str:
    text = str(d)
    if isinstance(d, DimOp) and (_PRECEDENCE[d.op] < _PRECEDENCE[op]
                                 or (right and _PRECEDENCE[d.op] == _PRECEDENCE[op])):
        return f"({text})"
    return text


Dim = Union[int, str, DimOp, None]


@dataclass(frozen=True, slots=True)
class ScalarT:
    kind: Scalar

    def __str__(self) -> str:
        return self.kind.value


@dataclass(frozen=True, slots=True)
class TensorT:
    kind: Scalar
    dims: tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.dims)

    def __str__(self) -> str:
        return f"{self.kind.value}[{','.join('?' if d is None else str(d) for d in self.dims)}]"


@dataclass(frozen=True, slots=True)
class ClassT:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class FuncT:
    params: tuple[Type, ...]
    ret: Type

    def __str__(self) -> str:
        return f"({', '.join(map(str, self.params))}) → {self.ret}"


@dataclass(frozen=True, slots=True)
class TupleT:
    """A fixed list of values of different types: what `create_dataset` returns."""
    items: tuple[Type, ...]

    def __str__(self) -> str:
        return f"[{', '.join(map(str, self.items))}]"


@dataclass(frozen=True, slots=True)
class NoneT:
    def __str__(self) -> str:
        return "None"


@dataclass(frozen=True, slots=True)
class SymT:
    """A symbolic value (sympy): `Symbol`, `Function`, `Equation`, or `Expr` for what arithmetic
    on them, `subs`, `diff` and a call of a `Function` give. Such programs run at level 0."""
    name: str = "Expr"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class UnknownT:
    """The type of an expression whose checking failed: absorbs further errors."""
    def __str__(self) -> str:
        return "?"


Type = Union[ScalarT, TensorT, ClassT, FuncT, TupleT, NoneT, SymT, UnknownT]

REAL = ScalarT(Scalar.REAL)
NAT = ScalarT(Scalar.NAT)
INT = ScalarT(Scalar.INT)
BOOL = ScalarT(Scalar.BOOL)
UNKNOWN = UnknownT()
NONE = NoneT()


def rank(t: Type) -> int:
    return t.rank if isinstance(t, TensorT) else 0


def element_kind(t: Type) -> Scalar | None:
    return t.kind if isinstance(t, (ScalarT, TensorT)) else None


def is_numeric(t: Type) -> bool:
    return isinstance(t, (ScalarT, TensorT))


SYMBOLIC_TYPES = ("Symbol", "Function", "Equation", "Expr")   # type names phc knows (sympy)
