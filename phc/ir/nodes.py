"""The affine IR: immutable nodes for functions made of host statements around loop nests.

Two forms of loop nest exist:
- `Tabulate(axes, body)`: an expression, the tensor whose element at (i, j, …) is `body` — what a
  comprehension, or a loop nest that fully overwrites a fresh allocation, computes. Pure, so every
  backend can vectorise it without dependence analysis.
- `Loop` / `Store` statements: an imperative nest that writes part of an existing tensor.
Reductions are expressions (`Reduce(op, axes, body)`), so `acc = 0; for k: acc += a[k]*b[k]`
becomes one `Reduce`. Index expressions of loads and stores inside nests are affine in the
loop variables (checked by `phc.ir.verify`), with loop-invariant integer coefficients.
Nodes are frozen dataclasses; passes rewrite them with `dataclasses.replace`.

The expressions that can fail at run time (indexing, binary and unary operations, calls,
reshapes) carry the source span of the `.phk` expression they were lowered from, like statements
do; an inlined body's spans are `Inlined`, which also names the call they came through. Spans
never take part in equality, hashing or `repr`, so matching, caching and the IR text ignore them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Union

from phc.ast import Span, NOSPAN


@dataclass(frozen=True, slots=True)
class Inlined(Span):
    """The span of an expression of `func`'s body inlined at the call `call` (itself `Inlined`
    when that call was inlined in turn): a runtime error names the call it came through."""
    func: str = ""
    call: Span = NOSPAN


class DType(Enum):
    F32 = "f32"
    I64 = "i64"
    BOOL = "bool"


class Mark(Enum):
    """What dependence analysis proved about a loop."""
    PARALLEL = "parallel"
    REDUCTION = "reduction"
    SERIAL = "serial"          # a host loop whose iterations depend on each other
    INDEPENDENT = "independent"  # a host loop whose iterations are independent (but for reductions)


class ReduceOp(Enum):
    ADD = "add"
    MUL = "mul"
    MAX = "max"
    MIN = "min"
    ARGMAX = "argmax"          # the loop index of the first maximum
    ARGMIN = "argmin"


# ---------------------------------------------------------------- expressions

@dataclass(frozen=True, slots=True)
class Const:
    """A constant; its dtype follows the Python value unless given (`Const(0.0)` is f32,
    `Const(2)` i64, `Const(True)` bool)."""
    value: int | float | bool | str
    dtype: DType | None = None

    def __post_init__(self):
        if self.dtype is None:
            v = self.value
            d = DType.BOOL if isinstance(v, bool) else DType.I64 if isinstance(v, int) else DType.F32
            object.__setattr__(self, "dtype", d)


@dataclass(frozen=True, slots=True)
class Sym:
    """A named value: a parameter, a host variable, a loop index or a tensor."""
    name: str


@dataclass(frozen=True, slots=True)
class Dim:
    """The size of axis `axis` of a tensor value (a shape symbol, read at run time)."""
    value: Expr
    axis: int


@dataclass(frozen=True, slots=True)
class Load:
    """`tensor[i0, i1, …]`: with fewer indices than the rank, a sub-tensor."""
    tensor: Expr
    index: tuple[Expr, ...]
    span: Span = field(default=NOSPAN, compare=False, repr=False)   # source place (runtime errors)


@dataclass(frozen=True, slots=True)
class Item:
    """`value[k]` of a list value (a data set's `[[X, y], [X, y]]`), not of a tensor."""
    value: Expr
    index: int
    span: Span = field(default=NOSPAN, compare=False, repr=False)   # source place (runtime errors)


@dataclass(frozen=True, slots=True)
class Slice:
    """`tensor[lo:hi]` on axis 0 (host code only)."""
    tensor: Expr
    lo: Expr | None
    hi: Expr | None
    span: Span = field(default=NOSPAN, compare=False, repr=False)   # source place (runtime errors)


@dataclass(frozen=True, slots=True)
class Range:
    """`lo:hi:step`, one part of a `Subscript` or of a host `Store`'s index (host code only)."""
    lo: Expr | None
    hi: Expr | None
    step: Expr | None = None


@dataclass(frozen=True, slots=True)
class Subscript:
    """`tensor[p0, p1, …]` where each part is an index or a `Range`: Python slicing with steps
    and several axes (`x[:, 0]`, `x[::2]`), host code only."""
    tensor: Expr
    parts: tuple[Expr, ...]
    span: Span = field(default=NOSPAN, compare=False, repr=False)   # source place (runtime errors)


@dataclass(frozen=True, slots=True)
class Bin:
    op: str                    # + - * / // % ** @ < > <= >= == != and or min max
    a: Expr
    b: Expr
    span: Span = field(default=NOSPAN, compare=False, repr=False)   # source place (runtime errors)


@dataclass(frozen=True, slots=True)
class Un:
    op: str                    # neg not exp log sin cos tan tanh sqrt abs floor sum len float int
    a: Expr
    span: Span = field(default=NOSPAN, compare=False, repr=False)   # source place (runtime errors)


@dataclass(frozen=True, slots=True)
class Select:
    cond: Expr
    a: Expr
    b: Expr


@dataclass(frozen=True, slots=True)
class Axis:
    """A loop variable ranging over [lo, hi)."""
    var: str
    lo: Expr
    hi: Expr


@dataclass(frozen=True, slots=True)
class Reduce:
    op: ReduceOp
    axes: tuple[Axis, ...]
    body: Expr


@dataclass(frozen=True, slots=True)
class Tabulate:
    """The tensor `[body for axes[0] for axes[1] …]`; every axis is parallel."""
    axes: tuple[Axis, ...]
    body: Expr


@dataclass(frozen=True, slots=True)
class Reshape:
    """A row-major relinearisation (`r[i*cols + j] = x[i, j]`)."""
    value: Expr
    shape: tuple[Expr, ...]
    span: Span = field(default=NOSPAN, compare=False, repr=False)   # source place (runtime errors)


@dataclass(frozen=True, slots=True)
class Full:
    """A fresh tensor of `shape` filled with `fill` (`zero_2d_array(r, c)`)."""
    shape: tuple[Expr, ...]
    fill: Expr
    dtype: DType = DType.F32


@dataclass(frozen=True, slots=True)
class ArrayLit:
    items: tuple[Expr, ...]
    dtype: DType = DType.F32


@dataclass(frozen=True, slots=True)
class Sample:
    dist: str                  # normal | uniform
    params: tuple[Expr, ...]
    shape: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """A call that stays a call: a user function, a constructor, a method, a runtime builtin."""
    func: str                  # `conv2d`, `ConvNets`, `rt.create_dataset`; methods: `.name`
    args: tuple[Expr, ...]
    obj: Expr | None = None    # receiver of a method call (`this`, an instance)
    span: Span = field(default=NOSPAN, compare=False, repr=False)   # source place (runtime errors)


@dataclass(frozen=True, slots=True)
class Attr:
    obj: Expr
    name: str


Expr = Union[Const, Sym, Dim, Load, Item, Slice, Range, Subscript, Bin, Un, Select, Reduce, Tabulate, Reshape, Full,
             ArrayLit, Sample, Call, Attr]


# ---------------------------------------------------------------- statements

@dataclass(frozen=True, slots=True)
class Assign:
    name: str
    value: Expr
    span: Span = field(default=NOSPAN, compare=False)
    nograd: bool = False       # the value never reaches a `grad`: computed without a graph
    leaf: str = ""             # grad target: "track" (keeps its graph) or "fresh" (a proved cut)
    fresh_fields: tuple[str, ...] = ()  # a constructed instance's fields that start fresh leaves


@dataclass(frozen=True, slots=True)
class SetField:
    """`obj.name = value` (`this.w = …`, `p.w = …`): the instance is changed in place."""
    obj: Expr
    name: str
    value: Expr
    span: Span = field(default=NOSPAN, compare=False)
    leaf: str = ""             # "track" when some `grad` may differentiate this field


@dataclass(frozen=True, slots=True)
class Store:
    tensor: Expr
    index: tuple[Expr, ...]
    value: Expr
    span: Span = field(default=NOSPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Loop:
    axis: Axis
    body: tuple[Stmt, ...]
    mark: Mark = Mark.SERIAL
    span: Span = field(default=NOSPAN, compare=False)
    note: str = ""             # why a host loop stayed a host loop
    nograd: bool = False       # nothing computed inside reaches a `grad`: run without autograd


@dataclass(frozen=True, slots=True)
class If:
    cond: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    span: Span = field(default=NOSPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Return:
    value: Expr | None
    span: Span = field(default=NOSPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Print:
    """`physika_print(v)` or a bare expression statement."""
    value: Expr
    span: Span = field(default=NOSPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Eval:
    """An expression evaluated for its effect (a call whose result is unused)."""
    value: Expr
    span: Span = field(default=NOSPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Grads:
    """`t0 = grad(y, x0); t1 = grad(y, x1); …` grouped: one backward pass for all of them."""
    targets: tuple[str, ...]
    y: Expr
    wrt: tuple[Expr, ...]
    span: Span = field(default=NOSPAN, compare=False)
    free_graph: bool = False   # proved the only backward through y's graph: free it at once
    create_graph: bool = False  # some `grad` differentiates a derivative: results keep a graph


Stmt = Union[Assign, SetField, Store, Loop, If, Return, Print, Eval, Grads]


# ---------------------------------------------------------------- functions and modules

@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str                  # printed type: `f32[H, W]`, `f32`, `ConvNets`


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    params: tuple[Param, ...]
    ret: str
    body: tuple[Stmt, ...]
    owner: str | None = None   # class name for methods
    inlined: bool = False      # small enough that callers inline it (it is kept for callers from Python)
    span: Span = field(default=NOSPAN, compare=False)
    tracked_params: tuple[str, ...] = ()   # parameters some `grad` here differentiates


@dataclass(frozen=True, slots=True)
class ClassIR:
    name: str
    fields: tuple[Param, ...]
    methods: tuple[Function, ...]
    grad_fields: frozenset[str] = frozenset()   # tensor fields some `grad` may differentiate: tracked
    defaults: tuple = ()       # per field: its declared value (an Expr) or None


@dataclass(frozen=True, slots=True)
class Module:
    functions: tuple[Function, ...]
    classes: tuple[ClassIR, ...]
    main: Function
    filename: str = "<string>"
