"""Shapes and types of a Physika program.

`check(program)` gives every expression a type (`phc.types`), every function its parameter,
local and return types, and collects every error and warning of the file in one run: a failed
expression gets `UnknownT`, which absorbs the follow-up complaints.

Dimensions are numbers, names (a signature's symbol `m`, or a variable holding a size, `rows`)
or None. Only two different numbers certainly disagree: two names may well be equal, so a name
never causes a diagnostic. Declarations are trusted where they bind a callee's symbols; the
checker refines what they leave open from the callee's body (`zero_2d_array(rows, cols)` is
`ℝ[rows, cols]` although it declares `ℝ[m, n]`).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from phc import ast
from phc.ast import Scalar, Span
from phc.builtins import (BUILTINS, Args, BuiltinError, as_extent, derivative_type, dim_op,
                          dims_clash, subst_dim, dims_of, fits_kind,
                          join_dim, join_kind, numeric, with_kind)
from phc.diagnostics import Diagnostic, error, warning
from phc.types import (INT, NAT, NONE, REAL, UNKNOWN, ClassT, Dim, DimOp, FuncT, NoneT, ScalarT, TensorT,
                       TupleT, Type, UnknownT)


# ---------------------------------------------------------------- the result

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


def check(program: ast.Program) -> TypedProgram:
    """Type the whole program; never raises (an internal failure becomes a diagnostic)."""
    checker = Checker(program)
    try:
        checker.run()
    except RecursionError:
        checker.report(error, "the program is nested too deeply to check", ast.NOSPAN)
    except Exception as exc:  # noqa: BLE001 — the contract is: never raise
        checker.report(error, f"internal error in the type checker ({type(exc).__name__}: {exc})",
                       ast.NOSPAN, "please report this program to the phc developers")
    return checker.result()


# ---------------------------------------------------------------- internal state

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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _is_num(t: Type) -> bool:
    return isinstance(t, (ScalarT, TensorT))


def _str_dims(t: Type) -> set[str]:
    return {d for d in dims_of(t) if isinstance(d, str)}


def _subst(t: Type, f) -> Type:
    """`t` with every named dimension d replaced by f(d)."""
    if isinstance(t, TensorT):
        return TensorT(t.kind, tuple(subst_dim(d, f) for d in t.dims))
    if isinstance(t, TupleT):
        return TupleT(tuple(_subst(i, f) for i in t.items))
    return t


def _merge(a: Type, b: Type) -> Type:
    """One type for a variable that holds `a` and then `b` (same rank assumed)."""
    if isinstance(a, TensorT) and isinstance(b, TensorT):
        return TensorT(join_kind(a.kind, b.kind),
                       tuple(x if x == y else None for x, y in zip(a.dims, b.dims)))
    if isinstance(a, ScalarT) and isinstance(b, ScalarT):
        return ScalarT(join_kind(a.kind, b.kind)) if a != b else a
    return b


def _same_rank(a: Type, b: Type) -> bool:
    if isinstance(a, UnknownT) or isinstance(b, UnknownT):
        return True
    if _is_num(a) and _is_num(b):
        return len(dims_of(a)) == len(dims_of(b))
    return type(a) is type(b) and (not isinstance(a, ClassT) or a == b)


def _describe(e: ast.Expr) -> str:
    if isinstance(e, ast.Name):
        return f"`{e.id}`"
    if isinstance(e, ast.Attribute) and isinstance(e.value, (ast.Name, ast.This)):
        owner = "this" if isinstance(e.value, ast.This) else e.value.id
        return f"`{owner}.{e.attr}`"
    return "the value"


# ---------------------------------------------------------------- the checker

class Checker:
    def __init__(self, program: ast.Program):
        self.program = program
        self.expr_types: dict[ast.Expr, Type] = {}
        self.functions: dict[str, FuncInfo] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.globals: dict[str, Type] = {}
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple] = set()
        self.top_names: dict[str, Type] = {}     # top-level variables, as functions see them
        self.inst_of: dict[ast.Expr, dict] = {}  # class-typed expression -> symbol bindings
        self._body_ret: dict[int, Type | None] = {}
        self._busy: set[int] = set()
        self._done: set[int] = set()
        self.replaced: list[FuncInfo] = []       # functions a later `def` of the name replaced
        self.call_sizes: dict[ast.Call, Dim] = {}   # a call returning a count -> its formula
        self.call_shapes: dict[ast.Call, str] = {}  # a call's shape, explained (for hints)

    # ---- driver

    def run(self) -> None:
        self.collect()
        self.top_names = _top_level_names(self.program.body, self)
        for s in self.program.body:
            self.guarded(self.check_definition, s)
        for info in self.replaced:              # still typed: the emitter writes them out
            self.guarded(self.ensure_checked, info)
        top = Frame(None, None, self.globals)
        self.size_tracking(top, self.program.body)
        for s in self.program.body:
            if not isinstance(s, (ast.FuncDef, ast.ClassDef)):
                self.guarded(self.stmt, s, top)

    def guarded(self, fn, *args) -> None:
        """A bug in the checker must not hide the rest of the file's diagnostics."""
        try:
            fn(*args)
        except RecursionError:
            raise
        except Exception as exc:  # noqa: BLE001 — the contract is: never raise
            self.report(error, f"internal error in the type checker ({type(exc).__name__}: {exc})",
                        ast.span_of(args[0]), "please report this program to the phc developers")

    def result(self) -> TypedProgram:
        diags = sorted(self.diagnostics, key=lambda d: (d.span.line, d.span.col))
        return TypedProgram(self.program, self.expr_types, self.functions, self.classes,
                            self.globals, diags)

    def report(self, make, message: str, span: Span, hint: str | None = None) -> None:
        key = (make, message, span)
        if key not in self._seen:          # loop bodies are checked more than once
            self._seen.add(key)
            self.diagnostics.append(make(message, span, hint, self.program.filename))

    # ---- collecting definitions (all of them first: a def may follow the code that uses it)

    def collect(self) -> None:
        for s in self.program.body:
            if isinstance(s, ast.ClassDef) and self.fresh_name(s.name, s):
                self.classes[s.name] = ClassInfo(s.name, s, {}, {})
        for s in self.program.body:
            if isinstance(s, ast.FuncDef):
                self.collect_function(s)
            elif isinstance(s, ast.ClassDef) and self.classes.get(s.name, None) is not None \
                    and self.classes[s.name].node is s:
                self.collect_class(self.classes[s.name])

    def fresh_name(self, name: str, node) -> bool:
        taken = name in self.functions or name in self.classes
        if taken:
            self.report(error, f"`{name}` is defined twice", _name_span(node),
                        "rename one of the definitions")
        return not taken

    def collect_function(self, s: ast.FuncDef) -> None:
        if s.is_lambda:
            self.report(error, "`λ` can only be defined inside a class", _name_span(s),
                        "`def λ(x: …) -> …:` makes a class's instances callable")
            return
        earlier = self.functions.get(s.name)
        if earlier is not None:         # upstream allows it: the later definition wins
            self.report(warning, f"`{s.name}` is defined again: this definition replaces the "
                        f"one on line {earlier.node.span.line}", _name_span(s),
                        "every call, also those before this line, uses this definition")
            self.replaced.append(earlier)
            self.functions[s.name] = self.func_info(s, None)
        elif self.fresh_name(s.name, s):
            self.functions[s.name] = self.func_info(s, None)

    def func_info(self, s: ast.FuncDef, owner: str | None) -> FuncInfo:
        params: dict[str, Type] = {}
        for p in s.params:
            if p.name in params:
                self.report(error, f"parameter `{p.name}` appears twice", p.span)
            params[p.name] = self.resolve(p.type)
        ret = self.resolve(s.ret) if s.ret is not None else NONE
        return FuncInfo(s.name, s, params, ret, {}, owner)

    def collect_class(self, info: ClassInfo) -> None:
        members = [(p.name, p.type, p.span) for p in info.node.params]
        members += [(d.name, d.type, _name_span(d)) for d in info.node.fields]
        for name, texpr, span in members:
            if name in info.fields:
                self.report(error, f"class `{info.name}` has two fields named `{name}`", span)
            info.fields[name] = self.resolve(texpr)
        for m in info.node.methods:
            if m.name in info.methods:
                self.report(error, f"class `{info.name}` defines `{m.name}` twice",
                            _name_span(m))
            info.methods[m.name] = self.func_info(m, info.name)

    def resolve(self, texpr: ast.TypeExpr, f: Frame | None = None) -> Type:
        """A written type as a semantic type; a dimension is a number, a name, or None. In a
        body (`f`), a dimension may be an expression such as `len(x[0])`."""
        if isinstance(texpr, ast.TupleTypeExpr):
            return TupleT(tuple(self.resolve(t, f) for t in texpr.items))
        if texpr.scalar is not None and texpr.dims:
            return TensorT(texpr.scalar, tuple(as_extent(self.written_dim(d, f)) for d in texpr.dims))
        if texpr.scalar is None:
            if texpr.class_name in self.classes:
                return ClassT(texpr.class_name)
            self.report(error, f"unknown type `{texpr.class_name}`", texpr.span,
                        self.suggest(texpr.class_name, self.classes))
            return UNKNOWN
        return ScalarT(texpr.scalar)

    def written_dim(self, d: ast.Expr, f: Frame | None) -> Dim:
        """A number, a name (a symbol, or a variable: its formula where it has one), `+ - * //
        /` of those (a formula, folded when both sides are numbers), or in a body an
        expression read as a size (`len(x[0])`)."""
        if isinstance(d, ast.BinOp) and d.op in _DIM_OPS:
            self.expr_types[d] = NAT
            return dim_op(d.op, self.written_dim(d.left, f), self.written_dim(d.right, f))
        if f is not None and isinstance(d, ast.Name) and d.id in f.vars:
            self.expr(d, f)
            return self.size_of(d, f)
        if f is not None and not isinstance(d, (ast.Num, ast.Name)):
            self.expr(d, f)
            return self.size_of(d, f)
        for e in ast.walk(d):
            self.expr_types[e] = NAT
        return _written_dim(d)

    # ---- bodies

    def check_definition(self, s) -> None:
        if isinstance(s, ast.FuncDef) and s.name in self.functions \
                and self.functions[s.name].node is s:
            self.ensure_checked(self.functions[s.name])
        elif isinstance(s, ast.ClassDef) and s.name in self.classes \
                and self.classes[s.name].node is s:
            self.check_class(self.classes[s.name])

    def check_class(self, info: ClassInfo) -> None:
        frame = Frame(None, None, {})
        for d in info.node.fields:
            if d.value is not None:
                t = self.expr(d.value, frame, element_kind_of(info.fields[d.name]))
                self.conform(info.fields[d.name], t, d.value.span, f"field `{d.name}` is declared",
                             "its value has type")
        for m in info.methods.values():
            self.ensure_checked(m)

    def ensure_checked(self, info: FuncInfo) -> None:
        """Check a body once, callees before callers (a call refines its type from the body)."""
        key = id(info)
        if key in self._done or key in self._busy:
            return
        self._busy.add(key)
        try:
            self.check_body(info)
        finally:
            self._busy.discard(key)
            self._done.add(key)

    def check_body(self, info: FuncInfo) -> None:
        cls = self.classes.get(info.owner) if info.owner else None
        frame = Frame(info, cls, info.locals)
        self.size_tracking(frame, info.node.body)
        for name, t in info.params.items():
            frame.vars[name] = Var(t, True)
            if isinstance(t, ClassT):
                frame.inst[name] = {}
        self.block(info.node.body, frame)
        body_ret = self.joined_returns(frame.returns)
        self._body_ret[id(info)] = body_ret
        if frame.ret_sizes and all(r == frame.ret_sizes[0] for r in frame.ret_sizes):
            info.ret_size = frame.ret_sizes[0]
        if info.node.ret is None and body_ret is not None:
            info.ret = body_ret

    def size_tracking(self, f: Frame, body) -> None:
        """Which names of a body may stand for a formula: those bound exactly once, and the
        counters (`c = 0`, then `c += 1` once in a loop at the body's top level)."""
        counts: dict[str, int] = {}
        for name in _bindings(body):
            counts[name] = counts.get(name, 0) + 1
        f.single = frozenset(n for n, k in counts.items() if k == 1)
        f.top = frozenset(id(s) for s in body)
        f.counters = frozenset(n for s in body if isinstance(s, ast.For) and len(s.vars) == 1
                               for n in _increments(s.body) if counts.get(n) == 2)

    def note_size(self, f: Frame, name: str, value: ast.Expr | None) -> None:
        """`name` is bound to `value`: remember its formula where the name is bound once."""
        if value is not None and (name in f.single or name in f.counters) \
                and isinstance(self.expr_types.get(value), ScalarT):
            size = self.size_of(value, f)
            if size is not None:
                f.sizes[name] = size
                return
        f.sizes.pop(name, None)

    def count_loop(self, s: ast.For, f: Frame, extent: Dim) -> None:
        """After `for i: …` holding `c += 1` once (c a counter starting at 0): c is the count."""
        if id(s) not in f.top:
            return
        for name in _increments(s.body):
            if name in f.counters and f.sizes.get(name) == 0 and extent is not None:
                f.sizes[name] = extent

    def joined_returns(self, returns: list[Type]) -> Type | None:
        if not returns:
            return None
        t = returns[0]
        for r in returns[1:]:
            t = _merge(t, r) if _same_rank(t, r) else UNKNOWN
        return t

    # ---- statements

    def block(self, stmts, f: Frame) -> None:
        for s in stmts:
            self.stmt(s, f)

    def stmt(self, s, f: Frame) -> None:
        handler = self._STMT.get(type(s))
        if handler is not None:
            handler(self, s, f)

    def s_decl(self, s: ast.Decl, f: Frame) -> None:
        t = self.resolve(s.type, f)
        if isinstance(s.value, ast.Sample) and not s.value.shape and isinstance(t, TensorT):
            self.sample(s.value, f)                     # `x: ℝ[3] ~ 𝒩(0, 1)`: shaped by x
            self.expr_types[s.value] = TensorT(Scalar.REAL, t.dims)
        elif s.value is not None:
            v = self.expr(s.value, f, element_kind_of(t))
            self.conform(t, v, s.value.span, f"`{s.name}` is declared", "its value has type",
                         hint=self.call_shapes.get(s.value))
        self.bind_var(f, s.name, t, True, s.value)
        if isinstance(t, ScalarT):
            self.note_size(f, s.name, s.value)

    def bind_var(self, f: Frame, name: str, t: Type, declared: bool, value) -> None:
        f.vars[name] = Var(t, declared)
        if f.info is None or name not in f.info.params:
            f.record[name] = t
        if isinstance(t, ClassT):
            f.inst[name] = self.inst_of.get(value, {}) if value is not None else {}
        else:
            f.inst.pop(name, None)

    def s_assign(self, s: ast.Assign, f: Frame) -> None:
        target = s.target
        if isinstance(target, ast.Name):
            self.assign_name(target, s.value, f)
        elif isinstance(target, (ast.Index, ast.Attribute)):
            slot = self.expr(target, f)
            v = self.expr(s.value, f, element_kind_of(slot))
            self.store(slot, v, target, s.value.span)
        else:
            self.expr(s.value, f)
            self.report(error, "cannot assign to this expression", ast.span_of(target),
                        "assign to a variable, an element `x[i]` or a field `obj.w`")

    def assign_name(self, target: ast.Name, value: ast.Expr, f: Frame) -> None:
        var = f.vars.get(target.id)
        declared = var is not None and var.declared
        v = self.expr(value, f, element_kind_of(var.type) if declared else None)
        self.expr_types[target] = var.type if declared else v
        if isinstance(v, NoneT):
            self.report(error, f"`{target.id}` is assigned nothing: the call returns no value",
                        value.span)
            v = UNKNOWN
        self.set_var(f, target, v, value, value.span)
        self.note_size(f, target.id, value)

    def set_var(self, f: Frame, target: ast.Name, v: Type, value, span: Span) -> None:
        """The value `v` (of the expression `value`, if one) now in `target`: a declared
        variable keeps its type; another one takes the value's (its kind widens; a change of
        rank is worth a warning)."""
        name = target.id
        var = f.vars.get(name)
        if var is not None and var.declared:
            if _misfit(var.type, v) == "shape":
                # a declared array that grows (upstream's `a: ℝ[1] = [0.0]`, then
                # `a = append(a, x)` in a loop): it runs, so it is a warning, and the size
                # that changed is unknown from here on
                self.report(warning, f"`{name}` is declared {var.type} but it is assigned {v}",
                            span, "the declaration's size no longer holds after this assignment")
                self.bind_var(f, name, _merge(var.type, v), True, value)
                return
            self.conform(var.type, v, span, f"`{name}` is declared", "it is assigned",
                         rank_error=False)
            if isinstance(var.type, ClassT):
                f.inst[name] = self.inst_of.get(value, {})
            return
        if var is None or isinstance(var.type, UnknownT):
            new = v
        elif isinstance(v, UnknownT):
            new = var.type
        elif _same_rank(var.type, v):
            new = _merge(var.type, v)
        else:
            self.report(warning, f"`{name}` held {var.type} and is now assigned {v}", target.span,
                        "a variable keeps one shape: use a new name for the new value")
            new = v
        self.bind_var(f, name, new, False, value)

    def store(self, slot: Type, v: Type, target, span: Span) -> None:
        """`x[i] = v` or `obj.w = v`: a value broadcasts into a slice the way arrays broadcast
        (`z[:, :, 0] = [10, 20]` with z[:, :, 0] ℝ[2,2]: axes matched from the right, a
        missing one or a 1 repeats); anything else must fit."""
        if isinstance(slot, TensorT) and isinstance(v, (ScalarT, TensorT)) \
                and isinstance(target, ast.Index) and _broadcasts_into(v, slot):
            if not fits_kind(slot.kind, v.kind):
                self.report(warning, f"the elements have type {slot} but it is assigned {v}",
                            span, _kind_hint(v))
            return
        strict = isinstance(target, ast.Index)
        self.conform(slot, v, span, f"{_describe(target)} has type" if not strict else
                     "the element has type", "it is assigned", rank_error=strict)

    def s_augassign(self, s: ast.AugAssign, f: Frame) -> None:
        target = s.target
        if isinstance(target, ast.Name):
            old = self.expr(target, f)
            v = self.expr(s.value, f)
            if target.id in f.vars:
                self.set_var(f, target, self.arith(s.op, old, v, s), None, s.value.span)
            return
        slot = self.expr(target, f)
        v = self.expr(s.value, f)
        if isinstance(target, (ast.Index, ast.Attribute)):
            self.store(slot, self.arith(s.op, slot, v, s), target, s.value.span)
        else:
            self.report(error, "cannot assign to this expression", ast.span_of(target))

    def s_exprstmt(self, s: ast.ExprStmt, f: Frame) -> None:
        self.expr(s.expr, f)

    def s_if(self, s: ast.If, f: Frame) -> None:
        self.condition(s.cond, f)
        self.block(s.body, f)
        self.block(s.orelse, f)

    def condition(self, e: ast.Expr, f: Frame, what: str = "a condition") -> None:
        t = self.expr(e, f)
        if isinstance(t, TensorT) and any(isinstance(d, int) and d != 1 for d in t.dims):
            self.report(error, f"{what} must be a single value, not {t}", e.span,
                        "compare single elements, or reduce the tensor first (`sum(x)`)")
        elif isinstance(t, TensorT) and t.dims:
            self.report(warning, f"{what} should be a single value, not {t}", e.span)
        elif not isinstance(t, (ScalarT, TensorT, UnknownT)):
            self.report(error, f"{what} must be a number, not {t}", e.span)

    def s_for(self, s: ast.For, f: Frame) -> None:
        extent = self.range_(s.range, f) if s.range is not None else None
        for v in s.vars:
            self.bind_var(f, v, NAT, False, None)
        self.loop_body(s.body, f)
        if s.range is None and len(s.vars) == 1:
            extent = self.loop_extent(s.vars[0], s.body)
        self.count_loop(s, f, extent)

    def loop_extent(self, var: str, body) -> Dim:
        for stmt in body:
            size = self.inferred_extent(var, stmt)
            if size is not None:
                return size
        return None

    def loop_body(self, body, f: Frame) -> None:
        """Check until the types that flow around the loop settle (`acc = 0; acc += x[i]` makes
        `acc` real on the second trip); a few passes suffice, kinds only ever widen."""
        for _ in range(3):
            before = {k: v.type for k, v in f.vars.items()}
            self.block(body, f)
            changed = [k for k, t in before.items()
                       if k in f.vars and f.vars[k].type != t and _same_rank(t, f.vars[k].type)]
            if not changed:
                return

    def s_return(self, s: ast.Return, f: Frame) -> None:
        if f.info is None:
            if s.value is not None:
                self.expr(s.value, f)
            self.report(error, "`return` outside a function", s.span)
            return
        declared = f.info.ret if f.info.node.ret is not None else None
        if s.value is None:
            if declared is not None and not isinstance(declared, NoneT):
                self.report(error, f"`{f.info.name}` must return {declared}", s.span)
            f.returns.append(NONE)
            return
        v = self.expr(s.value, f, element_kind_of(declared))
        if declared is not None:
            self.conform(declared, v, s.value.span, f"`{f.info.name}` is declared to return",
                         "it returns", rank_error=False)
        f.returns.append(v)
        f.ret_sizes.append(self.size_of(s.value, f) if isinstance(v, ScalarT) else None)

    def s_unpack(self, s: ast.Unpack, f: Frame) -> None:
        """`a, b = f()` / `a: ℝ, b: ℝ = v`: one value per name, from a tuple (a call of a
        function returning several values, or `x, y` written out) or a vector's elements."""
        if isinstance(s.value, ast.Sample):
            items = self.draw_with_log_prob(s, f)
        else:
            v = self.expr(s.value, f)
            items = self.unpacked_items(v, len(s.targets), s.value)
        for target, t in zip(s.targets, items):
            name = ast.Name(target.name, target.span)
            if target.type is not None:
                declared = self.resolve(target.type, f)
                self.conform(declared, t, s.value.span, f"`{target.name}` is declared",
                             "it gets")
                self.bind_var(f, target.name, declared, True, None)
            else:
                self.expr_types[name] = t
                self.set_var(f, name, t, None, s.value.span)

    def draw_with_log_prob(self, s: ast.Unpack, f: Frame) -> list[Type]:
        """`b: ℝ[n], lp: ℝ[n] ~ D(…)`: the draw (shaped by its sizes, else by b's declared
        type) and its log-probability, per element or (lp declared a number) summed."""
        draw = self.sample(s.value, f)
        first, second = s.targets
        if not s.value.shape and first.type is not None and first.type.dims:
            draw = self.resolve(first.type, f)
            draw = TensorT(Scalar.REAL, draw.dims) if isinstance(draw, TensorT) else draw
        summed = second.type is not None and not second.type.dims
        log_p = REAL if summed or not isinstance(draw, TensorT) else draw
        self.expr_types[s.value] = TupleT((draw, log_p))
        return [draw, log_p]

    def unpacked_items(self, v: Type, n: int, value: ast.Expr) -> list[Type]:
        if isinstance(v, TupleT):
            if len(v.items) != n:
                self.report(error, f"{_plural(n, 'name')} but the value holds "
                            f"{_plural(len(v.items), 'item')} ({v})", value.span,
                            "give one name per value")
                return [UNKNOWN] * n
            return list(v.items)
        if isinstance(v, TensorT):
            if isinstance(v.dims[0], int) and v.dims[0] != n:
                self.report(error, f"{_plural(n, 'name')} but the value is {v}", value.span,
                            "a vector unpacks into one name per element")
            return [numeric(v.kind, v.dims[1:])] * n
        if not isinstance(v, UnknownT):
            self.report(error, f"cannot unpack {v} into {_plural(n, 'name')}", value.span,
                        "unpack what a function returns with `return a, b`, or a vector")
        return [UNKNOWN] * n

    def s_import(self, s: ast.Import, f: Frame) -> None:
        self.report(error, f"`from {s.module} import …` was not resolved", s.span,
                    "imports are read by `phc check`/`phc run` from the file beside the program")

    def s_nested_def(self, s, f: Frame) -> None:
        what = "a class" if isinstance(s, ast.ClassDef) else "a function"
        self.report(error, f"{what} can only be defined at the top level", _name_span(s))

    _STMT = {
        ast.Decl: s_decl, ast.Assign: s_assign, ast.AugAssign: s_augassign,
        ast.ExprStmt: s_exprstmt, ast.If: s_if, ast.For: s_for, ast.Return: s_return,
        ast.FuncDef: s_nested_def, ast.ClassDef: s_nested_def, ast.Unpack: s_unpack,
        ast.Import: s_import,
    }

    # ---- fitting a value where a type is declared

    def conform(self, decl: Type, val: Type, span: Span, subject: str, verb: str,
                rank_error: bool = True, hint: str | None = None) -> None:
        """Report `val` where `decl` is declared: a certain disagreement is an error (a change
        of rank only a warning when `rank_error` is off), real into integer a warning."""
        if isinstance(decl, TupleT) and isinstance(val, TupleT) \
                and len(decl.items) == len(val.items):
            for d, v in zip(decl.items, val.items):
                self.conform(d, v, span, subject, verb, rank_error)
            return
        problem = _misfit(decl, val)
        if problem is None:
            return
        message = f"{subject} {decl} but {verb} {val}"
        if problem == "kind":
            self.report(warning, message, span, _kind_hint(val))
        elif problem == "rank" and not rank_error:
            self.report(warning, message, span)
        else:
            self.report(error, message, span, _misfit_hint(problem, val) or hint)

    # ---- expressions

    def expr(self, e: ast.Expr, f: Frame, hint: Scalar | None = None) -> Type:
        """The type of `e`, recorded for it; `hint` is ℝ where a real is expected, which turns
        integer literals (and tensors built from them) real."""
        handler = self._EXPR.get(type(e))
        t = handler(self, e, f, hint) if handler is not None else UNKNOWN
        self.expr_types[e] = t
        return t

    def e_num(self, e: ast.Num, f: Frame, hint) -> Type:
        if e.is_imaginary:
            return ScalarT(Scalar.COMPLEX)
        if not e.is_int or hint is Scalar.REAL:
            return REAL
        return NAT if e.value >= 0 else INT

    def e_str(self, e: ast.Str, f: Frame, hint) -> Type:
        return UNKNOWN

    def e_name(self, e: ast.Name, f: Frame, hint) -> Type:
        var = f.vars.get(e.id)
        if var is not None:
            if e.id in f.inst:
                self.inst_of[e] = f.inst[e.id]
            return var.type
        if e.id in self.functions:
            return self.func_type(self.functions[e.id])
        if e.id in self.classes:
            info = self.classes[e.id]
            return FuncT(tuple(info.fields.values()), ClassT(info.name))
        if f.info is not None and e.id in self.top_names:
            return self.top_names[e.id]
        if e.id in BUILTINS:
            return UNKNOWN
        self.unknown_name(e.id, e.span, f)
        return UNKNOWN

    def func_type(self, info: FuncInfo) -> FuncT:
        return FuncT(tuple(info.params.values()), info.ret)

    def unknown_name(self, name: str, span: Span, f: Frame) -> None:
        known = set(f.vars) | set(self.functions) | set(self.classes) | set(BUILTINS)
        if f.info is not None:
            known |= set(self.top_names)
        self.report(error, f"unknown name `{name}`", span, self.suggest(name, known))
        f.vars[name] = Var(UNKNOWN, False)       # said once: later uses are absorbed

    @staticmethod
    def suggest(name: str, known) -> str | None:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        return f"did you mean '{close[0]}'?" if close else None

    def e_this(self, e: ast.This, f: Frame, hint) -> Type:
        if f.cls is None:
            self.report(error, "`this` outside a class", e.span,
                        "`this` names the instance inside a class's methods")
            return UNKNOWN
        self.inst_of[e] = SELF
        return ClassT(f.cls.name)

    def e_array(self, e: ast.ArrayLit, f: Frame, hint) -> Type:
        items = [self.expr(i, f, hint) for i in e.items]
        if not items:
            return TensorT(hint or Scalar.REAL, (0,))
        for item, t in zip(e.items, items):
            if not isinstance(t, (ScalarT, TensorT, UnknownT)):
                self.report(error, f"an array holds numbers, not {t}", item.span)
                return UNKNOWN
        known = [(i, t) for i, t in enumerate(items) if not isinstance(t, UnknownT)]
        if not known:
            return UNKNOWN
        first_i, first = known[0]
        dims = dims_of(first)
        for i, t in known[1:]:
            if len(dims_of(t)) != len(dims) or any(map(dims_clash, dims, dims_of(t))):
                self.report(error, f"the array is not rectangular: item {i + 1} has type {t} "
                            f"but item {first_i + 1} has type {first}", e.items[i].span,
                            "every row of an array must have the same length")
                return UNKNOWN
            dims = tuple(map(join_dim, dims, dims_of(t)))
        kind = Scalar.NAT
        for _, t in known:
            kind = join_kind(kind, t.kind)
        if hint is Scalar.REAL:
            kind = Scalar.REAL
        return TensorT(kind, (len(items),) + dims)

    def e_unary(self, e: ast.UnaryOp, f: Frame, hint) -> Type:
        t = self.expr(e.operand, f, hint)
        if isinstance(t, UnknownT):
            return t
        if not _is_num(t):
            self.report(error, f"`{e.op}` needs a number, not {t}", e.span)
            return UNKNOWN
        if e.op == "not":
            return with_kind(t, Scalar.BOOL)
        if e.op == "-" and t.kind in (Scalar.NAT, Scalar.BOOL):
            return with_kind(t, Scalar.INT)
        return t

    def e_binop(self, e: ast.BinOp, f: Frame, hint) -> Type:
        a = self.expr(e.left, f)
        b = self.expr(e.right, f)
        for side, t in ((e.left, a), (e.right, b)):
            if isinstance(side, ast.Str) or not isinstance(t, (ScalarT, TensorT, UnknownT)):
                what = "a string" if isinstance(side, ast.Str) else str(t)
                self.report(error, f"`{e.op}` needs numbers, not {what}", side.span)
                return UNKNOWN
        if isinstance(a, UnknownT) or isinstance(b, UnknownT):
            return UNKNOWN
        if e.op == "@":
            return self.matmul(e, a, b)
        return self.arith(e.op, a, b, e)

    def arith(self, op: str, a: Type, b: Type, node) -> Type:
        """An elementwise operation: a number broadcasts over a tensor; two tensors need the
        same rank and agreeing dimensions."""
        if isinstance(a, UnknownT) or isinstance(b, UnknownT):
            return UNKNOWN
        if not (_is_num(a) and _is_num(b)):
            self.report(error, f"`{op}` needs numbers, not {a if not _is_num(a) else b}",
                        node.span)
            return UNKNOWN
        dims = self.broadcast(op, a, b, node)
        if dims is None:
            return UNKNOWN
        return numeric(_result_kind(op, a.kind, b.kind), dims)

    def broadcast(self, op: str, a: Type, b: Type, node) -> tuple[Dim, ...] | None:
        da, db = dims_of(a), dims_of(b)
        if not da or not db:
            return da or db
        if len(da) != len(db):
            self.report(error, f"`{op}` needs operands of the same rank, not {a} and {b}",
                        node.span, "a number combines with any tensor; two tensors must have "
                        "the same number of dimensions")
            return None
        if any(map(dims_clash, da, db)):
            self.report(error, f"`{op}` operands have different shapes: {a} and {b}", node.span)
            return None
        return tuple(map(join_dim, da, db))

    def matmul(self, e: ast.BinOp, a: Type, b: Type) -> Type:
        """Matrix·matrix, matrix·vector, vector·matrix, vector·vector; leading axes batch."""
        da, db = dims_of(a), dims_of(b)
        if not da or not db:
            self.report(error, f"`@` needs tensors on both sides, not {a} and {b}", e.span,
                        "use `*` to scale by a number")
            return UNKNOWN
        inner_a = da[-1]
        inner_b = db[0] if len(db) == 1 else db[-2]
        if dims_clash(inner_a, inner_b):
            self.report(error, f"`@` inner dimensions differ: {a} @ {b} ({inner_a} ≠ {inner_b})",
                        e.span, "the last axis of the left operand must match the first axis "
                        "(for a matrix, the rows) of the right one")
            return UNKNOWN
        left = da[:-1]
        right = () if len(db) == 1 else db[-1:]
        batch_a, batch_b = left[:-1], db[:-2]
        batch = batch_a if len(batch_a) >= len(batch_b) else batch_b
        dims = batch + left[-1:] + right
        return numeric(join_kind(a.kind, b.kind), dims)

    # ---- indexing

    def e_index(self, e: ast.Index, f: Frame, hint) -> Type:
        base = self.expr(e.value, f)
        index_types = [self.index_expr(i, f) for i in e.indices]
        if isinstance(base, TupleT):
            return self.tuple_item(e, base)
        if isinstance(base, UnknownT):
            return UNKNOWN
        if not _is_num(base):
            self.report(error, f"{_describe(e.value)} cannot be indexed: it has type {base}",
                        e.span)
            return UNKNOWN
        dims = dims_of(base)
        if len(e.indices) > len(dims):
            self.report(error, f"too many subscripts: {_describe(e.value)} has type {base} "
                        f"(rank {len(dims)}) but is indexed with {len(e.indices)}", e.span)
            return UNKNOWN
        out: list[Dim] = []
        gathered = False
        for k, (ix, t) in enumerate(zip(e.indices, index_types)):
            if isinstance(ix, ast.Slice):
                out.append(_slice_len(ix, dims[k]))
            elif isinstance(t, TensorT):
                if t.kind is Scalar.REAL or gathered:
                    self.report(error, f"an index must be a number or a tensor of whole "
                                f"numbers, not {t}", ix.span,
                                None if gathered else "index with `ℕ` values")
                    return UNKNOWN
                gathered = True                 # `x[idx]`: one axis becomes idx's shape
                out.extend(t.dims)
        return numeric(base.kind, tuple(out) + dims[len(e.indices):])

    def index_expr(self, ix, f: Frame) -> Type | None:
        if isinstance(ix, ast.Slice):
            for part in (ix.lo, ix.hi, ix.step):
                if part is not None:
                    self.scalar_operand(part, f, "a slice bound")
            return None
        t = self.expr(ix, f)
        if not isinstance(t, (ScalarT, TensorT, UnknownT)):
            self.report(error, f"an index must be a number, not {t}", ix.span)
        return t

    def scalar_operand(self, e: ast.Expr, f: Frame, what: str) -> Type:
        t = self.expr(e, f)
        if not isinstance(t, (ScalarT, UnknownT)):
            self.report(error, f"{what} must be a number, not {t}", e.span)
        return t

    def tuple_item(self, e: ast.Index, base: TupleT) -> Type:
        ix = e.indices[0]
        if len(e.indices) == 1 and isinstance(ix, ast.Num) and ix.is_int:
            k = ix.value
            if -len(base.items) <= k < len(base.items):
                return base.items[k]
            self.report(error, f"index {k} is out of range for a list of "
                        f"{_plural(len(base.items), 'item')}", ix.span)
            return UNKNOWN
        if len(e.indices) == 1 and len(set(base.items)) == 1:
            return base.items[0]
        self.report(error, f"a list of items of different types ({base}) must be indexed by one "
                    "number literal", e.span, "write `dataset[0]`, then index the item")
        return UNKNOWN

    # ---- fields and methods

    def e_attribute(self, e: ast.Attribute, f: Frame, hint) -> Type:
        t = self.expr(e.value, f)
        info = self.class_of(t, e)
        if info is None:
            return UNKNOWN
        inst = self.inst_of.get(e.value, {})
        if e.attr in info.fields:
            ft = _subst(info.fields[e.attr], inst.get)
            if isinstance(ft, ClassT):
                self.inst_of[e] = {}
            return ft
        if e.attr in info.methods:
            return self.func_type(info.methods[e.attr])
        if e.attr in LEARNABLE:
            return self.learnable(info, inst)
        self.report(error, f"class `{info.name}` has no field `{e.attr}`", e.span,
                    self.suggest(e.attr, info.fields))
        return UNKNOWN

    def learnable(self, info: ClassInfo, inst) -> Type:
        """`obj.learnable_params`: the instance's learnable fields (`ClassDef.learnable_names`),
        in order, as one list (what `grad(loss, obj.learnable_params)` differentiates)."""
        fields = [_subst(info.fields[n], inst.get) for n in info.node.learnable_names()]
        return TupleT(tuple(with_kind(t, Scalar.REAL) if t.kind is not Scalar.COMPLEX else t
                            for t in fields if _is_num(t)))

    def class_of(self, t: Type, e: ast.Attribute) -> ClassInfo | None:
        if isinstance(t, ClassT) and t.name in self.classes:
            return self.classes[t.name]
        if not isinstance(t, UnknownT):
            self.report(error, f"`.{e.attr}` needs a class instance, but "
                        f"{_describe(e.value)} has type {t}", e.span)
        return None

    # ---- calls

    def e_call(self, e: ast.Call, f: Frame, hint) -> Type:
        fn = e.func
        if isinstance(fn, ast.Attribute):
            return self.method_call(e, fn, f)
        if isinstance(fn, ast.Name):
            return self.named_call(e, fn, f)
        if isinstance(fn, ast.This):                 # `this(x)`: the instance's own λ
            return self.call_value(e, self.expr(fn, f), f, SELF)
        t = self.expr(fn, f)
        self.check_args(e, f)
        if not isinstance(t, UnknownT):
            self.report(error, f"this is not a function or class: it has type {t}", fn.span)
        return UNKNOWN

    def check_args(self, e: ast.Call, f: Frame) -> None:
        for a in e.args:
            self.expr(a, f)

    def named_call(self, e: ast.Call, fn: ast.Name, f: Frame) -> Type:
        """Variables shadow functions, user definitions shadow builtins."""
        name = fn.id
        if name in f.vars:
            return self.call_value(e, self.expr(fn, f), f, self.inst_of.get(fn, {}))
        if name in self.functions:
            info = self.functions[name]
            self.expr_types[fn] = self.func_type(info)
            return self.apply(self.func_sig(info, f"`{name}`"), e, f, None)
        if name in self.classes:
            return self.construct(e, self.classes[name], f)
        if f.info is not None and name in self.top_names:
            return self.call_value(e, self.expr(fn, f), f, {})
        if name == "grad" and len(e.args) == 2 and self.names_function(e.args[0], f):
            return self.grad_of_function(e, f)
        if name in BUILTINS:
            return self.builtin_call(e, name, f)
        self.expr(fn, f)                       # reports the unknown name
        self.check_args(e, f)
        return UNKNOWN

    def names_function(self, e: ast.Expr, f: Frame) -> bool:
        """`e` is the bare name of a top-level function (not shadowed by a variable)."""
        return isinstance(e, ast.Name) and e.id in self.functions and e.id not in f.vars

    def grad_of_function(self, e: ast.Call, f: Frame) -> Type:
        """`grad(f, x)`: the derivative of the one-argument function `f` at `x` — shaped like
        `x` where `f` returns a number, else the Jacobian `ℝ[out…, in…]`."""
        fn, x = e.args
        info = self.functions[fn.id]
        self.expr_types[e.func] = UNKNOWN
        self.expr_types[fn] = self.func_type(info)
        if len(info.params) != 1:
            self.expr(x, f)
            self.report(error, f"`grad({fn.id}, …)` needs a function of one argument, but "
                        f"`{fn.id}` takes {_plural(len(info.params), 'argument')}", fn.span,
                        f"differentiate a call instead: `grad({fn.id}(a, b), a)`")
            return UNKNOWN
        out = self.apply(self.func_sig(info, f"`{fn.id}`"), ast.Call(fn, (x,), e.span), f, None)
        xt = self.expr_types.get(x, UNKNOWN)
        for t in (out, xt):
            if not isinstance(t, (ScalarT, TensorT, UnknownT)):
                self.report(error, f"`grad` needs numbers or tensors, not {t}", e.span)
                return UNKNOWN
        return derivative_type(out, xt)

    def call_value(self, e: ast.Call, t: Type, f: Frame, inst) -> Type:
        """Calling a variable: an instance whose class defines `λ`."""
        if isinstance(t, ClassT) and t.name in self.classes:
            info = self.classes[t.name]
            lam = info.methods.get("λ")
            if lam is not None:
                return self.apply(self.func_sig(lam, f"`{info.name}`'s λ"), e, f, inst)
            self.check_args(e, f)
            self.report(error, f"{_describe(e.func)} is not callable: class `{info.name}` "
                        "defines no `λ`", e.func.span,
                        "add `def λ(x: …) -> …:` to the class to make its instances callable")
            return UNKNOWN
        self.check_args(e, f)
        if isinstance(t, FuncT):
            return t.ret
        if not isinstance(t, UnknownT):
            self.report(error, f"{_describe(e.func)} is not a function or class: it has type {t}",
                        e.func.span)
        return UNKNOWN

    def method_call(self, e: ast.Call, fn: ast.Attribute, f: Frame) -> Type:
        t = self.expr(fn.value, f)
        info = self.class_of(t, fn)
        if info is None:
            self.check_args(e, f)
            return UNKNOWN
        inst = self.inst_of.get(fn.value, {})
        method = info.methods.get(fn.attr)
        if method is not None:
            self.expr_types[fn] = self.func_type(method)
            return self.apply(self.func_sig(method, f"`{info.name}.{fn.attr}`"), e, f, inst)
        if fn.attr in info.fields:                 # a field holding a callable instance
            return self.call_value(e, self.expr(fn, f), f, self.inst_of.get(fn, {}))
        if fn.attr == UPDATE:
            return self.sgd_update(e, info, inst, f)
        self.expr_types[fn] = UNKNOWN
        self.check_args(e, f)
        self.report(error, f"class `{info.name}` has no method `{fn.attr}`", fn.span,
                    self.suggest(fn.attr, info.methods))
        return UNKNOWN

    def sgd_update(self, e: ast.Call, info: ClassInfo, inst, f: Frame) -> Type:
        """`obj.update(lr, grads)`: upstream's gradient step on the learnable parameters,
        `p -= lr * g` for each (grads as `grad(loss, obj.params)` gives them)."""
        self.expr_types[e.func] = UNKNOWN
        types = [self.expr(a, f) for a in e.args]
        if len(types) != 2:
            self.report(error, f"`{info.name}.update` takes 2 arguments (a rate and the "
                        f"gradients) but {len(types)} were given", e.span)
            return NONE
        want = self.learnable(info, inst)
        if not isinstance(types[0], (ScalarT, UnknownT)):
            self.report(error, f"the rate of `update` must be a number, not {types[0]}",
                        e.args[0].span)
        if isinstance(types[1], TupleT):
            self.conform(want, types[1], e.args[1].span, "the parameters have types",
                         "the gradients are")
        elif not isinstance(types[1], UnknownT):
            self.report(error, f"`update` needs the list of gradients {want}, not {types[1]}",
                        e.args[1].span, f"write `{info.name.lower()}.update(lr, grad(loss, "
                        f"{info.name.lower()}.params))`")
        return NONE

    def func_sig(self, info: FuncInfo, label: str) -> Sig:
        self.ensure_checked(info)
        cls = self.classes.get(info.owner) if info.owner else None
        syms = frozenset().union(*(_str_dims(t) for t in cls.fields.values())) if cls else frozenset()
        return Sig(label, tuple(info.params.items()), len(info.params),
                   info.ret if info.node.ret is not None else None,
                   self._body_ret.get(id(info)), syms, ret_size=info.ret_size)

    def construct(self, e: ast.Call, info: ClassInfo, f: Frame) -> Type:
        """`C(f0, f1, …)`: the fields in order; the binding of the class's symbols is kept with
        the instance, so `obj.w` has the size it was built with."""
        # `class C(a: ℝ):` takes its parameters; its fields start at their values (zeros where
        # none is written), as upstream; `class C:` takes the fields that have no value
        params = info.node.params
        required = len(params) if params else sum(d.value is None for d in info.node.fields)
        sig = Sig(f"`{info.name}`", tuple(info.fields.items()), required, ClassT(info.name), None,
                  rank_error=True, param_word="field")
        self.expr_types[e.func] = FuncT(tuple(info.fields.values()), ClassT(info.name))
        bindings: dict[str, Dim] = {}
        self.apply(sig, e, f, None, bindings)
        for (name, _), arg in zip(sig.params, e.args):   # a size field: `n: ℕ` then `w: ℝ[n]`
            size = self.size_of(arg, f)
            if size is not None:
                bindings.setdefault(name, size)
        self.inst_of[e] = bindings
        return ClassT(info.name)

    def apply(self, sig: Sig, e: ast.Call, f: Frame, inst, bindings=None) -> Type:
        """Check a call against a signature: bind the callee's symbols to the argument dims and
        substitute them into its return type."""
        n, most = len(e.args), len(sig.params)
        fits = sig.required <= n <= most
        if not fits:
            count = str(most) if sig.required == most else f"{sig.required} to {most}"
            self.report(error, f"{sig.label} takes {count} argument{'s' * (most != 1)} but "
                        f"{n} {'was' if n == 1 else 'were'} given", e.span)
        types = [self.expr(a, f, element_kind_of(sig.params[i][1]) if i < most else None)
                 for i, a in enumerate(e.args)]
        sizes = {p: self.size_of(a, f) for (p, _), a in zip(sig.params, e.args)}
        bindings = {} if bindings is None else bindings
        if fits:
            for (p, pt), a, t in zip(sig.params, e.args, types):
                self.bind_arg(sig, p, pt, t, a, bindings, sizes)
        return self.call_result(sig, bindings, sizes, inst, e)

    def bind_arg(self, sig: Sig, p: str, pt: Type, t: Type, a: ast.Expr,
                 bindings: dict, sizes: dict) -> None:
        subject = f"{sig.param_word} `{p}` of {sig.label} is declared"
        problem = _misfit(pt, t)
        if problem == "rank" and isinstance(t, TensorT) and isinstance(pt, TensorT) \
                and not sig.rank_error:
            self.report(warning, f"{subject} {pt} but it gets {t}", a.span,
                        f"the body may still accept it, but the declared rank is {pt.rank}")
            return
        if problem is not None:
            self.conform(pt, t, a.span, subject, "it gets")
            if problem != "kind":
                return
        if not (isinstance(pt, TensorT) and isinstance(t, TensorT)):
            return
        for pd, ad in zip(pt.dims, t.dims):
            if not isinstance(pd, str):
                continue
            known = sizes.get(pd) if pd in sizes else bindings.get(pd)
            if dims_clash(known, ad):
                self.report(error, f"{sig.param_word} `{p}` of {sig.label} gets {t}, but `{pd}` is "
                            f"{known} from the other arguments", a.span)
            elif pd not in sizes:
                bindings[pd] = join_dim(known, ad) if pd in bindings else ad

    def call_result(self, sig: Sig, bindings: dict, sizes: dict, inst, e: ast.Call) -> Type:
        """The type of a call: what the callee's body returns, its formulas written in the
        caller's terms (`maxpool2d(x: ℝ[m, n]): ℝ[m, n]` whose body returns ℝ[m//2, n//2] gives
        ℝ[13, 13] for a ℝ[26, 26]); where the body's shape cannot be said in the caller's
        terms (it depends on the callee's own locals), the declared one."""
        def caller_dim(d: Dim) -> Dim:
            if isinstance(d, DimOp):
                return subst_dim(d, caller_dim)
            if not isinstance(d, str):
                return d
            if d in bindings:
                return bindings[d]
            if d in sizes:
                return sizes[d]
            if d in sig.class_syms and inst is not None:
                return inst.get(d)
            return None                      # a name of the callee's own (a local)

        body = sig.body_ret
        if sig.ret is None or _rank_differs(sig.ret, body):
            # undeclared, or declared with another rank than the body returns (the value is
            # the body's: upstream's `def f(x: ℝ): ℝ:` returning a Jacobian ℝ[6])
            ret = _subst(body, caller_dim) if body is not None else UNKNOWN
        elif isinstance(sig.ret, TensorT) and isinstance(body, TensorT):
            dims = []
            for d, b in zip(sig.ret.dims, body.dims):
                from_body = caller_dim(b)
                dims.append(from_body if from_body is not None else caller_dim(d))
            ret = TensorT(sig.ret.kind, tuple(dims))
            if ret.dims != _subst(sig.ret, caller_dim).dims and any(isinstance(x, int) for x in ret.dims):
                self.call_shapes[e] = (f"{sig.label} is declared to return {sig.ret} but its body "
                                       f"returns {body}, here {ret}")
        else:
            ret = _subst(sig.ret, caller_dim)
        if sig.ret_size is not None:
            size = caller_dim(sig.ret_size)
            if size is not None:
                self.call_sizes[e] = size
        if isinstance(ret, ClassT):
            self.inst_of[e] = {}
        return ret

    def builtin_call(self, e: ast.Call, name: str, f: Frame) -> Type:
        b = BUILTINS[name]
        types = tuple(self.expr(a, f) for a in e.args)
        self.expr_types[e.func] = UNKNOWN
        n = len(e.args)
        if n < b.min_args or (b.max_args is not None and n > b.max_args):
            self.report(error, f"`{name}` takes {_arity(b.min_args, b.max_args)} but {n} "
                        f"{'was' if n == 1 else 'were'} given", e.span)
            return UNKNOWN
        args = Args(types, tuple(as_extent(self.size_of(a, f)) for a in e.args), tuple(e.args))
        try:
            t = b.rule(args)
        except BuiltinError as err:
            span = e.args[err.arg].span if err.arg is not None else e.span
            self.report(error, err.message, span, err.hint)
            return UNKNOWN
        self.expr_types[e.func] = FuncT(types, t)
        return t

    def size_of(self, e: ast.Expr, f: Frame) -> Dim:
        """An (already checked) expression read as a size: a literal, a variable (its formula
        where it is bound once, else its name), `len(x)`, `+ - * // /` of sizes, or a call of
        a function that returns a count (`get_2d_array_num_rows(x)`: x's first dimension)."""
        if isinstance(e, ast.Num):
            return None if e.is_imaginary or e.value < 0 else int(e.value)
        if isinstance(e, ast.Name) and isinstance(self.expr_types.get(e), ScalarT):
            return f.sizes.get(e.id, e.id)
        if isinstance(e, ast.BinOp) and e.op in _DIM_OPS:
            return dim_op(e.op, self.size_of(e.left, f), self.size_of(e.right, f))
        if isinstance(e, ast.Call) and e in self.call_sizes:
            return self.call_sizes[e]
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id == "len" \
                and "len" not in f.vars and "len" not in self.functions and len(e.args) == 1:
            arg = self.expr_types.get(e.args[0])
            return arg.dims[0] if isinstance(arg, TensorT) else None
        return None

    # ---- comprehensions, ranges, samples

    def e_comprehension(self, e: ast.Comprehension, f: Frame, hint) -> Type:
        size: Dim = None
        if e.range is not None:
            size = self.range_(e.range, f)
        if e.var not in f.record and (f.info is None or e.var not in f.info.params):
            f.record[e.var] = NAT
        saved = f.vars.get(e.var)
        f.vars[e.var] = Var(NAT, False)
        try:
            body = self.expr(e.body, f, hint)
        finally:
            if saved is None:
                del f.vars[e.var]
            else:
                f.vars[e.var] = saved
        if e.range is None:
            size = self.inferred_extent(e.var, e.body)
        if isinstance(body, UnknownT):
            return UNKNOWN
        if not _is_num(body):
            self.report(error, f"a comprehension must produce numbers, not {body}", e.body.span)
            return UNKNOWN
        kind = Scalar.REAL if hint is Scalar.REAL else body.kind
        return TensorT(kind, (size,) + dims_of(body))

    def range_(self, r: ast.Range, f: Frame) -> Dim:
        """Check `ℕ(n)` / `ℕ(a, b)` and return its length as a dimension."""
        for bound in (r.lo, r.hi):
            if bound is not None:
                self.bound_number(bound, f)
        hi = as_extent(self.size_of(r.hi, f))
        if r.lo is None or (isinstance(r.lo, ast.Num) and r.lo.value == 0):
            return hi
        lo = as_extent(self.size_of(r.lo, f))
        if isinstance(lo, int) and isinstance(hi, int):
            return max(0, hi - lo)
        return dim_op("-", hi, lo) if lo is not None else None

    def bound_number(self, e: ast.Expr, f: Frame) -> None:
        t = self.expr(e, f)
        if isinstance(t, TensorT):
            self.report(error, f"a range bound must be a number, not {t}", e.span,
                        "`ℕ(len(x))` counts the first axis of x")
        elif not isinstance(t, (ScalarT, UnknownT)):
            self.report(error, f"a range bound must be a number, not {t}", e.span)

    def inferred_extent(self, var: str, body: ast.Expr) -> Dim:
        """`for i -> e`: the length of the first axis that `i` indexes directly."""
        for node in ast.walk(body):
            if not isinstance(node, ast.Index):
                continue
            base = self.expr_types.get(node.value)
            for k, ix in enumerate(node.indices):
                if isinstance(ix, ast.Name) and ix.id == var and isinstance(base, TensorT) \
                        and k < base.rank:
                    return base.dims[k]
        return None

    def e_tuple(self, e: ast.TupleExpr, f: Frame, hint) -> Type:
        return TupleT(tuple(self.expr(i, f, hint) for i in e.items))

    def e_sample(self, e: ast.Sample, f: Frame, hint) -> Type:
        return self.sample(e, f)

    def sample(self, e: ast.Sample, f: Frame) -> Type:
        params = [self.expr(p, f) for p in e.params]
        for p, t in zip(e.params, params):
            if not isinstance(t, (ScalarT, TensorT, UnknownT)):
                self.report(error, f"a distribution's parameters are numbers, not {t}", p.span)
        for s in e.shape:
            self.bound_number(s, f)
        if e.shape:
            return TensorT(Scalar.REAL, tuple(as_extent(self.size_of(s, f)) for s in e.shape))
        shaped = [t for t in params if isinstance(t, TensorT)]
        return TensorT(Scalar.REAL, shaped[0].dims) if shaped else REAL

    _EXPR = {
        ast.Num: e_num, ast.Str: e_str, ast.Name: e_name, ast.This: e_this,
        ast.ArrayLit: e_array, ast.UnaryOp: e_unary, ast.BinOp: e_binop, ast.Call: e_call,
        ast.Index: e_index, ast.Attribute: e_attribute, ast.Comprehension: e_comprehension,
        ast.Sample: e_sample, ast.TupleExpr: e_tuple,
    }


# ---------------------------------------------------------------- helpers

def element_kind_of(t: Type | None) -> Scalar | None:
    """The hint for a value going where `t` is declared: ℝ when a real is expected."""
    if isinstance(t, (ScalarT, TensorT)) and t.kind is Scalar.REAL:
        return Scalar.REAL
    return None


def _name_span(node) -> Span:
    name_span = getattr(node, "name_span", ast.NOSPAN)
    return name_span if name_span != ast.NOSPAN else node.span


def _written_dim(d: ast.Expr) -> Dim:
    if isinstance(d, ast.Num) and d.is_int and d.value >= 0:
        return d.value
    if isinstance(d, ast.Name):
        return d.id
    return None


def _result_kind(op: str, a: Scalar, b: Scalar) -> Scalar:
    if op in COMPARE or op in LOGIC:
        return Scalar.BOOL
    if op == "/":
        return join_kind(join_kind(a, b), Scalar.REAL)      # real, or complex
    kind = join_kind(a, b)
    if op == "-" and kind is Scalar.NAT:
        return Scalar.INT                     # ℕ - ℕ may be negative
    return kind


def _misfit(decl: Type, val: Type) -> str | None:
    """What is wrong with a value of type `val` where `decl` is declared: None, "kind" (real
    into integer), "rank", "shape" (two different numbers), or "type"."""
    if isinstance(decl, UnknownT) or isinstance(val, UnknownT):
        return None
    if isinstance(decl, TensorT) and decl.rank == 1 and isinstance(val, TupleT) \
            and val.items and all(map(_is_num, val.items)):
        return None          # a list of tensors (`learnable_params`' gradients) as a vector
    if isinstance(decl, ClassT) or isinstance(val, (ClassT, TupleT, NoneT, FuncT)):
        return None if decl == val else "type"
    if not _is_num(decl):
        return "type"
    if len(dims_of(decl)) != len(dims_of(val)):
        return "rank"
    if any(map(dims_clash, dims_of(decl), dims_of(val))):
        return "shape"
    if not fits_kind(decl.kind, val.kind):
        return "kind"
    return None


def _rank_differs(declared: Type, body: Type | None) -> bool:
    return _is_num(declared) and body is not None and _is_num(body) \
        and len(dims_of(declared)) != len(dims_of(body))


def _broadcasts_into(v: Type, slot: TensorT) -> bool:
    """`v` fills `slot` by broadcasting: a lower rank, every axis (from the right) equal, 1 or
    not certainly different. Equal ranks are left to the ordinary rules."""
    vd = dims_of(v)
    if len(vd) >= slot.rank:
        return False
    return not any(dims_clash(a, b) and a != 1 for a, b in zip(reversed(vd), reversed(slot.dims)))


def _kind_hint(val: Type) -> str:
    if isinstance(val, (ScalarT, TensorT)) and val.kind is Scalar.COMPLEX:
        return "a real has no imaginary part: take `real(z)` or `abs(z)`"
    return "ℕ and ℤ hold whole numbers"


def _misfit_hint(problem: str, val: Type) -> str | None:
    if isinstance(val, NoneT):
        return "the call returns nothing"
    if isinstance(val, TupleT) and problem == "type":
        return "several values: declare each, `def f() → ℝ, ℝ:`, and unpack with `a, b = f()`"
    if problem == "rank" and isinstance(val, ScalarT):
        return "a number is not a tensor: build one with a comprehension or an array literal"
    return None


def _slice_len(s: ast.Slice, dim: Dim) -> Dim:
    """The length of `x[lo:hi:step]` when the bounds are literals, else unknown."""
    bounds = [_literal_int(p) for p in (s.lo, s.hi, s.step)]
    if any(b is False for b in bounds):
        return None
    lo, hi, step = bounds
    if step == 0:
        return None
    if isinstance(dim, int):
        return len(range(dim)[slice(lo, hi, step)])
    if lo is None and hi is None and step in (None, 1):
        return dim
    if hi is not None and hi >= 0 and (lo or 0) >= 0 and (step or 1) > 0:
        return len(range(lo or 0, hi, step or 1))    # the size is unknown: assume in range
    return None


def _literal_int(e) -> int | None | bool:
    """None for an absent bound, the number for a literal, False for anything else."""
    if e is None:
        return None
    if isinstance(e, ast.Num) and e.is_int:
        return e.value
    if isinstance(e, ast.UnaryOp) and e.op == "-" and isinstance(e.operand, ast.Num) \
            and e.operand.is_int:
        return -e.operand.value
    return False


def _arity(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"at least {_plural(lo, 'argument')}"
    if lo == hi:
        return _plural(lo, "argument")
    return f"{lo} to {hi} arguments"


def _bindings(body):
    """Every binding of a name in a body (not descending into definitions), one per binding."""
    for s in body:
        if isinstance(s, ast.Decl):
            yield s.name
        elif isinstance(s, (ast.Assign, ast.AugAssign)) and isinstance(s.target, ast.Name):
            yield s.target.id
        elif isinstance(s, ast.Unpack):
            yield from (t.name for t in s.targets)
        elif isinstance(s, ast.For):
            yield from s.vars
            yield from _bindings(s.body)
        elif isinstance(s, ast.If):
            yield from _bindings(s.body)
            yield from _bindings(s.orelse)


def _increments(body) -> list[str]:
    """Names that a loop body's own statements (not nested blocks) increase by exactly 1."""
    return [s.target.id for s in body
            if isinstance(s, ast.AugAssign) and s.op == "+" and isinstance(s.target, ast.Name)
            and isinstance(s.value, ast.Num) and s.value.value == 1]


def _top_level_names(body, checker: Checker) -> dict[str, Type]:
    """The top-level variables, as a function body sees them: declared types where written,
    else unknown (a function is checked before the top-level code that assigns them)."""
    names: dict[str, Type] = {}
    for s in body:
        if isinstance(s, ast.Decl):
            names[s.name] = _quiet_resolve(s.type, checker)
        elif isinstance(s, (ast.Assign, ast.AugAssign)) and isinstance(s.target, ast.Name):
            names.setdefault(s.target.id, UNKNOWN)
        elif isinstance(s, ast.For):
            for v in s.vars:
                names.setdefault(v, NAT)
            names.update({k: v for k, v in _top_level_names(s.body, checker).items()
                          if k not in names})
        elif isinstance(s, ast.If):
            for part in (s.body, s.orelse):
                names.update({k: v for k, v in _top_level_names(part, checker).items()
                              if k not in names})
    return names


def _quiet_resolve(texpr: ast.TypeExpr, checker: Checker) -> Type:
    if texpr.scalar is None:
        return ClassT(texpr.class_name) if texpr.class_name in checker.classes else UNKNOWN
    if not texpr.dims:
        return ScalarT(texpr.scalar)
    return TensorT(texpr.scalar, tuple(_written_dim(d) for d in texpr.dims))


__all__ = ["ClassInfo", "FuncInfo", "TypedProgram", "check"]
