"""AST of Physika programs: frozen dataclasses, each carrying the source span it came from.

The parser (`phc.parse`) builds these; the checker (`phc.typecheck`) annotates them by node
identity (it never mutates them); the lowering (`phc.ir.lower`) reads both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Union


@dataclass(frozen=True, slots=True)
class Span:
    """1-based line and column of the first character, and of the character after the last."""
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


NOSPAN = Span(0, 0, 0, 0)


class Scalar(Enum):
    """The element kinds. ASCII and LaTeX spellings all map to these."""
    REAL = "ℝ"
    NAT = "ℕ"
    INT = "ℤ"
    COMPLEX = "ℂ"
    BOOL = "𝔹"                      # comparisons; never written in source


# ---------------------------------------------------------------- type expressions (syntax)

@dataclass(frozen=True, slots=True, eq=False)
class TypeExpr:
    """`ℝ` (dims == ()), `ℝ[3, n]` (dims are expressions: numbers or names), or a class name."""
    scalar: Scalar | None          # None for a class type
    dims: tuple[Expr, ...] = ()
    class_name: str | None = None
    span: Span = field(default=NOSPAN, compare=False)


@dataclass(frozen=True, slots=True, eq=False)
class TupleTypeExpr:
    """`ℝ, ℝ[3]`: what a function returning several values declares (`def get() → ℝ, ℝ:`)."""
    items: tuple[TypeExpr, ...]
    span: Span = NOSPAN


# ---------------------------------------------------------------- expressions
# eq=False everywhere: nodes are compared and hashed by identity, so the checker can key
# dictionaries on them.

@dataclass(frozen=True, slots=True, eq=False)
class Num:
    value: int | float | complex    # complex: an imaginary literal `3j`
    text: str                       # as written: `1`, `0.5`, `1e-3`, `2.5j`
    span: Span = NOSPAN

    @property
    def is_int(self) -> bool:
        return isinstance(self.value, int)

    @property
    def is_imaginary(self) -> bool:
        return isinstance(self.value, complex)


@dataclass(frozen=True, slots=True, eq=False)
class Str:
    value: str
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Name:
    id: str
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class This:
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class ArrayLit:
    items: tuple[Expr, ...]
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class TupleExpr:
    """`a, b`: several values at once — a `return a, b`, or the right side of `x, y = 1, 2`."""
    items: tuple[Expr, ...]
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class BinOp:
    op: str                         # + - * / // ** @ % < > <= >= == != and or
    left: Expr
    right: Expr
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class UnaryOp:
    op: str                         # - + not
    operand: Expr
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Call:
    func: Expr                      # Name (function, class, builtin) or Attribute (method)
    args: tuple[Expr, ...]
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Slice:
    lo: Expr | None
    hi: Expr | None
    step: Expr | None
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Index:
    value: Expr
    indices: tuple[Expr | Slice, ...]   # `x[i, j]`; chained `x[i][j]` nests Index nodes
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Attribute:
    value: Expr                     # `this.kernel`, `obj.w`, `this.conv2d` (as Call.func)
    attr: str
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Range:
    """`ℕ(n)` or `ℕ(a, b)`: the half-open range [lo, hi). `lo` is None for `ℕ(n)`."""
    lo: Expr | None
    hi: Expr
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Comprehension:
    """`for i: ℕ(n) -> body` (or `→`). `range` is None for `for i -> body` (inferred)."""
    var: str
    range: Range | None
    body: Expr
    span: Span = NOSPAN
    var_span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Sample:
    """`𝒩(μ, σ, d0, d1, …)`: a draw from a distribution, `shape` empty for one number."""
    dist: str                       # "normal" | "uniform" | "beta" | "gamma" | "bernoulli"
    params: tuple[Expr, ...]
    shape: tuple[Expr, ...]
    span: Span = NOSPAN
    mode: str | None = None         # a gradient-estimator hint written last: "score-function"


Expr = Union[Num, Str, Name, This, ArrayLit, BinOp, UnaryOp, Call, Index, Attribute,
             Comprehension, Sample, TupleExpr]


# ---------------------------------------------------------------- statements

@dataclass(frozen=True, slots=True, eq=False)
class Decl:
    """`x: T = value`, `x: T ~ 𝒩(…)` (value is a Sample), or `x: T` (value None: a field,
    or an uninitialised zero tensor in a body)."""
    name: str
    type: TypeExpr
    value: Expr | None
    span: Span = NOSPAN
    name_span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Assign:
    target: Expr                    # Name, Index or Attribute
    value: Expr
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Target:
    """One name on the left of an unpacking, with its declared type (None: untyped)."""
    name: str
    type: TypeExpr | None
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Unpack:
    """`a, b = f()`, `a: ℝ, b: ℝ = p.get()`, `x, y, z = v` (a vector's elements), or
    `a, b = b, a` (value a TupleExpr; every item is computed before any name is bound).
    The parser turns `a, b: ℝ = 1, 2` whose items do not mention the names into plain
    declarations."""
    targets: tuple[Target, ...]
    value: Expr
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Import:
    """`from other import f, g`: the named definitions of `other.phk` (or `.phyk`) beside the
    program. `phc.imports` replaces it by those definitions before checking."""
    module: str                     # `other`, or `pkg.other` for pkg/other.phk
    names: tuple[str, ...]
    span: Span = NOSPAN
    name_spans: tuple[Span, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class AugAssign:
    target: Expr
    op: str                         # + - * /
    value: Expr
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class ExprStmt:
    """A bare expression: printed at run time (`x` prints `… ∈ ℝ[3]`), except calls of
    functions that return nothing (`physika_print(x)`)."""
    expr: Expr
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class If:
    cond: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]        # `elif` parses as a nested If in orelse
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class For:
    """`for i:` / `for i: ℕ(n):` / `for i: ℕ(a, b):` / `for i j k:` (range None: inferred)."""
    vars: tuple[str, ...]
    range: Range | None
    body: tuple[Stmt, ...]
    span: Span = NOSPAN
    var_spans: tuple[Span, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Return:
    value: Expr | None
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class Param:
    name: str
    type: TypeExpr
    span: Span = NOSPAN


@dataclass(frozen=True, slots=True, eq=False)
class FuncDef:
    """`def f(a: T): R:` (`ret` after `:`) or `def λ(x: T) -> R:` (is_lambda: the call operator)."""
    name: str
    params: tuple[Param, ...]
    ret: TypeExpr | TupleTypeExpr | None
    body: tuple[Stmt, ...]
    span: Span = NOSPAN
    name_span: Span = NOSPAN

    @property
    def is_lambda(self) -> bool:
        return self.name == "λ"


@dataclass(frozen=True, slots=True, eq=False)
class ClassDef:
    """`class C:` with field declarations and methods, or `class C(W: ℝ[2,3]):` whose
    parameters are its fields."""
    name: str
    params: tuple[Param, ...]
    fields: tuple[Decl, ...]
    methods: tuple[FuncDef, ...]
    span: Span = NOSPAN
    name_span: Span = NOSPAN

    def field_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params) + tuple(f.name for f in self.fields)

    def learnable_names(self) -> tuple[str, ...]:
        """What `learnable_params` lists: the parameters of `class C(…)` (else the fields)
        that are tensors or real or complex numbers, in order — as upstream."""
        members = self.params or self.fields
        return tuple(m.name for m in members if m.type.scalar is not None and (
            m.type.dims or m.type.scalar in (Scalar.REAL, Scalar.COMPLEX)))


Stmt = Union[Decl, Assign, AugAssign, ExprStmt, If, For, Return, FuncDef, ClassDef, Unpack,
             Import]


@dataclass(frozen=True, slots=True, eq=False)
class Program:
    body: tuple[Stmt, ...]
    filename: str = "<string>"
    source: str = ""
    warnings: tuple = ()            # the parser's warnings (phc.diagnostics.Diagnostic)


# ---------------------------------------------------------------- helpers

def span_of(node) -> Span:
    return getattr(node, "span", NOSPAN)


def children(node) -> tuple:
    """Direct child nodes of any AST node (expressions, statements, ranges, type exprs)."""
    out = []
    for name in node.__dataclass_fields__:
        if name in ("span", "name_span", "var_span", "var_spans", "filename", "source",
                    "name_spans"):
            continue
        value = getattr(node, name)
        if isinstance(value, tuple):
            out.extend(v for v in value if hasattr(v, "__dataclass_fields__"))
        elif hasattr(value, "__dataclass_fields__") and not isinstance(value, Span):
            out.append(value)
    return tuple(out)


def walk(node):
    """Pre-order traversal of a node and everything below it."""
    yield node
    for child in children(node):
        yield from walk(child)


def assigned_in_order(stmts) -> list[str]:
    """The names a body binds (`x = …`, `x += …`, `x: T = …`, loop variables), in source order,
    not looking into nested definitions (a `def` binds its own names, not the body's)."""
    out: dict[str, None] = {}
    stack = list(reversed(tuple(stmts)))
    while stack:
        x = stack.pop()
        if isinstance(x, (FuncDef, ClassDef)):
            continue
        if isinstance(x, (Assign, AugAssign)) and isinstance(x.target, Name):
            out[x.target.id] = None
        elif isinstance(x, Decl):
            out[x.name] = None
        elif isinstance(x, For):
            out.update(dict.fromkeys(x.vars))
        stack.extend(reversed(children(x)))
    return list(out)


def is_name(e, name: str) -> bool:
    return isinstance(e, Name) and e.id == name


def partial_grad_variable(e: Call) -> str | None:
    """x for `grad(f(…, x, …), x)` — the derivative of a call with respect to a variable passed
    to it as an argument, which is f's partial derivative there: the arguments written `x` vary,
    the others are held at their values (upstream Physika's rule; docs/language.md, "Gradients").
    Not for `grad(grad(…), x)`, whose `x` is the inner derivative's variable, not an argument."""
    if not (isinstance(e.func, Name) and e.func.id == "grad" and len(e.args) == 2):
        return None
    inner, x = e.args
    if isinstance(inner, Call) and isinstance(x, Name) and not is_name(inner.func, "grad") \
            and any(is_name(a, x.id) for a in inner.args):
        return x.id
    return None
