"""The checker's result (TypedProgram, FuncInfo, ClassInfo) and its working state: the frame
of one body, a callee's signature, the constants of the rules."""
from __future__ import annotations

from dataclasses import dataclass, field

from phc import ast
from phc.diagnostics import Diagnostic
from phc.types import Dim, Type


@dataclass
class FuncInfo:
    name: str
    node: ast.FuncDef
    params: dict[str, Type]          # declared parameter types (symbolic dims as str)
    ret: Type                        # declared return type (NONE if absent and nothing returned)
    locals: dict[str, Type]          # every local variable and loop variable -> its type
    owner: str | None                # class name for methods
    ret_size: Dim = None             # a returned count as a formula of the params (`m`, `n//2`)

@dataclass
class ClassInfo:
    name: str
    node: ast.ClassDef
    fields: dict[str, Type]          # in constructor order (params first, then field decls)
    methods: dict[str, FuncInfo]     # includes "λ" when defined

@dataclass
class TypedProgram:
    program: ast.Program
    expr_types: dict[ast.Expr, Type]     # every expression node (by identity) -> its type
    functions: dict[str, FuncInfo]       # top-level defs
    classes: dict[str, ClassInfo]
    globals: dict[str, Type]             # top-level variables -> type (last assigned)
    diagnostics: list[Diagnostic]        # errors and warnings, in source order

class _Self(dict):
    """The instance bindings of `this`: a class's symbols stand for themselves."""

    def get(self, key, default=None):
        return key

SELF = _Self()

@dataclass
class Var:
    type: Type
    declared: bool

@dataclass
class Frame:
    """One body being checked: a function, a method, or the top-level program."""
    info: FuncInfo | None
    cls: ClassInfo | None
    record: dict[str, Type]                       # FuncInfo.locals, or the globals
    vars: dict[str, Var] = field(default_factory=dict)
    inst: dict[str, dict] = field(default_factory=dict)   # class-typed variable -> bindings
    returns: list[Type] = field(default_factory=list)
    # sizes as formulas: a variable bound once (`out_H = len(input) - len(kernel) + 1`) stands
    # for its formula in shapes; `single` are the names the body binds exactly once
    sizes: dict[str, Dim] = field(default_factory=dict)
    single: frozenset[str] = frozenset()
    counters: frozenset[str] = frozenset()       # `c = 0` then `c += 1` in one top-level loop
    top: frozenset[int] = frozenset()            # ids of the body's top-level statements
    ret_sizes: list[Dim] = field(default_factory=list)

@dataclass(frozen=True)
class Sig:
    """What a call needs of a callee: a function, a method, a λ or a constructor."""
    label: str                                   # "`f`", "`ConvNets.linear`", "`ConvNets`"
    params: tuple[tuple[str, Type], ...]
    required: int
    ret: Type | None                             # None: not declared
    body_ret: Type | None                        # what the body returns, when known
    class_syms: frozenset[str] = frozenset()
    # A function's body may work on another rank (the seed's `get_1d_array_length(train_X)`
    # walks a rank-3 tensor): a rank mismatch is a warning there, an error for a field.
    rank_error: bool = False
    param_word: str = "argument"                 # "field" for a constructor
    ret_size: Dim = None                         # the count a function returns, as a formula

_DIM_OPS = frozenset({"+", "-", "*", "//", "/"})

LEARNABLE = ("learnable_params", "params")   # an instance's learnable fields, as a list

UPDATE = "update"                   # `obj.update(lr, grads)`: a gradient step on them

ARITH = frozenset({"+", "-", "*", "/", "//", "%", "**"})

COMPARE = frozenset({"<", ">", "<=", ">=", "==", "!="})

LOGIC = frozenset({"and", "or"})
