"""Typed AST → affine IR.

Per function, statements are lowered in order while a small environment remembers the values of
cheap locals (constants, shapes, loads): those are substituted into their uses instead of being
materialised, which is how `rows: ℝ = get_2d_array_num_rows(x)` becomes `dim(x, 0)` and
`results = zero_2d_array(r, c)` stays a pending allocation that a following nest overwrites.
Loops are symbolically executed (`NestExec`): scalar updates become reductions, stores become
tabulations or imperative nests; whatever cannot be made affine raises `NotAffine` and stays a
host loop, with the reason in its note.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from phc import ast as A
from phc.ir import nodes as n
from phc.ir.simplify import (as_int, extent, free_syms, is_integral, rename_binders, simplify, simplify_index,
                             subst, uses, contains, map_children)

MATH = {"exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "sigmoid", "floor"}
RUNTIME = {"create_dataset", "create_mnist", "create_digits", "physika_print", "print", "summary",
           "zeros", "ones", "float", "int", "shuffle_indices", "grad", "len", "sum", "max", "min",
           "argmax", "mean", "sigmoid", "dropout"}
INLINE_LIMIT = 80       # nodes: functions whose whole body is one small expression are inlined


class NotAffine(Exception):
    """A loop that cannot become a nest; the message says why (shown in the IR)."""


# ---------------------------------------------------------------- program level

@dataclass
class Program:
    """What lowering knows about the whole program."""
    ast: A.Program
    functions: dict[str, A.FuncDef]
    classes: dict[str, A.ClassDef]
    types: dict = field(default_factory=dict)          # AST expr -> phc.types.Type (optional)
    lowered: dict[str, n.Function] = field(default_factory=dict)
    inline: dict[str, tuple[tuple[str, ...], n.Expr]] = field(default_factory=dict)
    in_progress: set[str] = field(default_factory=set)


def lower_program(program: A.Program, types: dict | None = None) -> n.Module:
    _require_lowerable(program, types or {})
    funcs = {s.name: s for s in program.body if isinstance(s, A.FuncDef)}
    classes = {s.name: s for s in program.body if isinstance(s, A.ClassDef)}
    prog = Program(program, funcs, classes, types or {})
    functions = tuple(_lower_function(prog, f) for f in funcs.values())
    class_irs = tuple(_lower_class(prog, c) for c in classes.values())
    top = tuple(s for s in program.body if not isinstance(s, (A.FuncDef, A.ClassDef)))
    main_body = FnLowering(prog, None, lazy=False, is_main=True).lower_body(top)
    main = n.Function("main", (), "None", main_body)
    module = n.Module(functions, class_irs, main, program.filename)
    from phc.ir.analysis import annotate
    return annotate(module)


def _require_lowerable(program: A.Program, types: dict) -> None:
    """Precondition of the whole lowering: the program uses none of the constructs it has no
    rule for (complex values, unpacking, tuples, `learnable_params`, `this(x)`); a program
    that does runs at level 0 (the caller's fallback)."""
    from phc.types import ScalarT, SymT, TensorT
    for t in types.values():
        if isinstance(t, (ScalarT, TensorT)) and t.kind is A.Scalar.COMPLEX:
            raise NotAffine("complex values run literally")
        if isinstance(t, SymT):
            raise NotAffine("symbolic values (sympy) run literally")
    for node in A.walk(program):
        if isinstance(node, (A.Unpack, A.TupleExpr)):
            raise NotAffine("several values at once run literally")
        if isinstance(node, A.Attribute) and node.attr in ("learnable_params", "params", "update"):
            raise NotAffine(f"`{node.attr}` runs literally")
        if isinstance(node, A.ClassDef) and node.params and any(d.value is None for d in node.fields):
            raise NotAffine("fields that start at zero run literally")
        if isinstance(node, A.Call) and isinstance(node.func, A.This):
            raise NotAffine("this(x) runs literally")
        if isinstance(node, A.Call) and A.is_name(node.func, "solve") and not any(
                isinstance(s, A.FuncDef) and s.name == "solve" for s in program.body):
            raise NotAffine("`solve` of equations runs literally")


def placed(e: n.Expr, span: A.Span) -> n.Expr:
    """`e` with the source span of the AST expression it was lowered from, where its node keeps
    one and has none yet (an inlined body keeps the places inside the callee)."""
    if isinstance(e, _SPANNED) and e.span.line == 0 and span.line > 0:
        return replace(e, span=span)
    return e


_SPANNED = (n.Load, n.Item, n.Slice, n.Subscript, n.Bin, n.Un, n.Reshape, n.Call)


def inlined_at(body: n.Expr, func: str, call: A.Span) -> n.Expr:
    """An inlined body of `func` whose spans name the call `call` they came through."""
    if call.line == 0:
        return body

    def go(x: n.Expr) -> n.Expr:
        x = map_children(x, go)
        if isinstance(x, _SPANNED) and x.span.line > 0:
            return replace(x, span=_through(x.span, func, call))
        return x
    return go(body)


def _through(span: A.Span, func: str, call: A.Span) -> n.Inlined:
    if isinstance(span, n.Inlined):     # from a call inside `func`'s body: that call came through this one
        return n.Inlined(span.line, span.col, span.end_line, span.end_col, span.func, _through(span.call, func, call))
    return n.Inlined(span.line, span.col, span.end_line, span.end_col, func, call)


def _lower_function(prog: Program, f: A.FuncDef, owner: A.ClassDef | None = None) -> n.Function:
    key = f"{owner.name}.{f.name}" if owner else f.name
    if key in prog.lowered:
        return prog.lowered[key]
    prog.in_progress.add(key)
    body = FnLowering(prog, f, owner=owner, lazy=True).lower_body(f.body)
    prog.in_progress.discard(key)
    params = tuple(n.Param(p.name, type_text(p.type)) for p in f.params)
    fn = n.Function(f.name, params, type_text(f.ret) if f.ret else "None", body,
                    owner.name if owner else None, span=f.span)
    if owner is None and len(body) == 1 and isinstance(body[0], n.Return) and body[0].value is not None \
            and _size(body[0].value) <= INLINE_LIMIT and not _impure(body[0].value):
        prog.inline[f.name] = (tuple(p.name for p in f.params), body[0].value)
        fn = n.Function(fn.name, fn.params, fn.ret, fn.body, None, True, f.span)
    prog.lowered[key] = fn
    return fn


def _lower_class(prog: Program, c: A.ClassDef) -> n.ClassIR:
    fields = tuple(n.Param(p.name, type_text(p.type)) for p in c.params) + \
        tuple(n.Param(d.name, type_text(d.type)) for d in c.fields)
    methods = tuple(_lower_function(prog, m, c) for m in c.methods)
    # a field declared with a value may be left out of the constructor call: its default
    at_class = FnLowering(prog, None, owner=c, lazy=False)
    defaults = tuple(None for _ in c.params) + \
        tuple(None if d.value is None else at_class.lower_decl_value(d.type, d.value) for d in c.fields)
    return n.ClassIR(c.name, fields, methods, defaults=defaults)


def type_text(t: A.TypeExpr | None) -> str:
    if t is None:
        return "None"
    if t.class_name:
        return t.class_name
    kind = {A.Scalar.REAL: "f32", A.Scalar.NAT: "i64", A.Scalar.INT: "i64", A.Scalar.BOOL: "bool",
            A.Scalar.COMPLEX: "c64"}[t.scalar]
    if not t.dims:
        return kind
    return f"{kind}[{', '.join(_dim_text(d) for d in t.dims)}]"


def _dim_text(d) -> str:
    if isinstance(d, A.Num):
        return d.text
    if isinstance(d, A.Name):
        return d.id
    return "?"


def _size(e: n.Expr) -> int:
    from phc.ir.simplify import children
    return 1 + sum(_size(c) for c in children(e))


def _impure(e: n.Expr) -> bool:
    return contains(e, lambda x: isinstance(x, (n.Sample, n.Call)))


# ---------------------------------------------------------------- host code

class FnLowering:
    """Lowers one function body (or the top-level program) to host statements and nests."""

    def __init__(self, prog: Program, fn: A.FuncDef | None, owner: A.ClassDef | None = None,
                 lazy: bool = True, is_main: bool = False):
        self.prog, self.fn, self.owner, self.lazy, self.is_main = prog, fn, owner, lazy, is_main
        self.env: dict[str, n.Expr] = {}
        self.out: list[n.Stmt] = []
        self.locals = set(p.name for p in fn.params) if fn else set()
        self.counter = Counter()
        self.int_syms: set[str] = set()
        self.defined: set[str] = set(self.locals)   # params, then names bound so far
        self.scope_binders: set[str] = set()        # comprehension variables being lowered
        self.in_nest = False                         # inside NestExec's symbolic execution
        # `grad` differentiates with respect to a value by identity: its targets are never
        # substituted into their uses (that would make `grad(y, b)` a derivative by `a * 2`)
        self.grad_names = _grad_target_names(fn.body) if fn else set()
        # declared element kinds (`x: ℝ = …`, parameters): later assignments keep them
        self.declared: dict[str, A.Scalar] = {p.name: p.type.scalar for p in fn.params
                                              if p.type is not None and not p.type.class_name} if fn else {}

    # ---- names

    def fresh(self, base: str) -> str:
        self.counter[base] += 1
        k = self.counter[base]
        return base if k == 1 else f"{base}_{k}"

    # ---- statements

    def read_outside(self, name: str, loop) -> bool:
        """Whether any statement of this body outside `loop` reads `name` (conservatively: a
        read anywhere else counts): only then does its value after the loop matter."""
        body = getattr(self, "body_stmts", None)
        return True if body is None else _reads_outside(body, loop, name)

    def lower_body(self, stmts) -> tuple[n.Stmt, ...]:
        if not hasattr(self, "body_stmts"):
            self.body_stmts = tuple(stmts)
        self.locals |= _assigned_names(stmts)
        self.block(stmts)
        if self.is_main:
            self.flush()
            return tuple(_eliminate_dead_allocs(_group_grads(self.out, self._builtin_grad())))
        return tuple(_fold_return(_dead_code(_eliminate_dead_allocs(_group_grads(self.out, self._builtin_grad())))))

    def _builtin_grad(self) -> bool:
        return "grad" not in self.prog.functions

    def block(self, stmts):
        for s in stmts:
            self.stmt(s)

    def emit(self, s: n.Stmt):
        self.out.append(s)

    def flush(self, names=None):
        """Materialise pending values (all, or those of `names` and what depends on them)."""
        for k in list(self.env):
            if names is None or k in names or free_syms(self.env[k]) & set(names or ()):
                self.emit(n.Assign(k, self.env.pop(k)))

    def flush_before_store(self, tensor: n.Expr):
        """A store is visible through every alias of its array: pending reads of any tensor
        (`a = y[0]` kept as `x[0]` after `y = x`) are materialised before it (class I)."""
        reads = [k for k, v in self.env.items()
                 if contains(v, lambda x: isinstance(x, (n.Load, n.Slice, n.Reshape)))]
        self.flush(reads + [_root_name(tensor)])

    def define(self, name: str, value: n.Expr, span: A.Span):
        value = simplify(value, frozenset(self.int_syms))
        self.defined.add(name)
        # values computed from the old binding of `name` must be materialised first
        self.flush([k for k, v in self.env.items() if k != name and uses(v, name)])
        if self.lazy and _cheap(value) and not uses(value, name) and name not in self.grad_names:
            self.env[name] = value
            return
        self.env.pop(name, None)
        self.emit(n.Assign(name, value, span))

    def stmt(self, s):
        match s:
            case A.Decl(name, t, value):
                if not t.class_name:
                    self.declared[name] = t.scalar
                v = self.lower_decl_value(t, value)
                self.define(name, v, s.span)
            case A.Assign(A.Name(name), value):
                self.define(name, self.declared_kind(name, self.expr(value), value), s.span)
            case A.Assign(A.Attribute(obj, attr) as target, value):
                self.set_field(target, obj, attr, self.expr(value), s.span)
            case A.AugAssign(A.Attribute(obj, attr) as target, op, value):
                old = n.Attr(self.expr(obj), attr)
                self.set_field(target, obj, attr, n.Bin(op, old, self.expr(value)), s.span)
            case A.Assign(target, value):
                tensor, index = self.store_target(target)
                self.flush_before_store(tensor)
                self.emit(n.Store(tensor, index, self.expr(value), s.span))
            case A.AugAssign(A.Name(name), op, value):
                self.define(name, n.Bin(op, self.name(name), self.expr(value), s.span), s.span)
            case A.AugAssign(target, op, value):
                tensor, index = self.store_target(target)
                self.flush_before_store(tensor)
                self.emit(n.Store(tensor, index, n.Bin(op, n.Load(tensor, index), self.expr(value)), s.span))
            case A.ExprStmt(expr):
                self.expr_stmt(expr, s.span)
            case A.Return(value):
                self.emit(n.Return(None if value is None else self.returned(value), s.span))
            case A.If(cond, body, orelse):
                self.host_if(s)
            case A.For():
                self.for_loop(s)
            case A.FuncDef() | A.ClassDef():
                pass    # nested definitions are not part of the numeric core

    def set_field(self, target: A.Attribute, obj, attr: str, value: n.Expr, span):
        """`obj.attr = value`: pending values that read the instance are computed first."""
        from phc.types import TensorT, ScalarT
        instance = self.expr(obj)
        self.flush(list(free_syms(instance)))
        kind = self.prog.types.get(target)
        if isinstance(kind, (TensorT, ScalarT)) and kind.kind is A.Scalar.REAL:
            value = _to_real(value)
        self.emit(n.SetField(instance, attr, simplify(value, frozenset(self.int_syms)), span))

    def lower_decl_value(self, t: A.TypeExpr, value) -> n.Expr:
        if value is None:
            shape = tuple(self.expr(d) for d in t.dims)
            return n.Full(shape, n.Const(0.0)) if shape else n.Const(0.0)
        return self.as_kind(t.scalar, self.expr(value), value)

    # ---- kinds: the declared type decides real vs integer (class F, U)

    def kind_of(self, e) -> A.Scalar | None:
        from phc.types import ScalarT, TensorT
        t = self.prog.types.get(e)
        return t.kind if isinstance(t, (ScalarT, TensorT)) else None

    def as_kind(self, kind: A.Scalar | None, v: n.Expr, ast_value) -> n.Expr:
        """`v` converted to the declared element kind: an integer value declared ℝ is real."""
        if kind is A.Scalar.REAL and (isinstance(v, (n.Const, n.ArrayLit))
                                      or self.kind_of(ast_value) in (A.Scalar.NAT, A.Scalar.INT)
                                      or _integer_valued(v, frozenset(self.int_syms))):
            return _to_real(v)
        return v

    def declared_kind(self, name: str, v: n.Expr, ast_value) -> n.Expr:
        return self.as_kind(self.declared.get(name), v, ast_value)

    def returned(self, value) -> n.Expr:
        ret = self.fn.ret if self.fn is not None else None
        v = self.expr(value)
        if ret is not None and not ret.class_name:
            return self.as_kind(ret.scalar, v, value)
        return v

    def expr_stmt(self, e, span):
        if isinstance(e, A.Call) and isinstance(e.func, A.Name) and e.func.id in ("physika_print", "print") \
                and e.func.id not in self.prog.functions:
            if len(e.args) == 1:
                self.emit(n.Print(self.expr(e.args[0]), span))
            else:       # `print("epoch", e, "loss", x)`: one line, the values separated by spaces
                self.emit(n.Eval(n.Call("print", tuple(self.expr(a) for a in e.args)), span))
            return
        v = self.expr(e)
        if isinstance(v, n.Call) and (v.func in ("summary", "physika_seed", "simulate", "animate") or self._returns_nothing(v)):
            self.emit(n.Eval(v, span))
        else:
            self.emit(n.Print(v, span))

    def _returns_nothing(self, call: n.Call) -> bool:
        f = self.prog.functions.get(call.func)
        return f is not None and f.ret is None and not any(
            isinstance(x, A.Return) and x.value is not None for x in A.walk(f))

    def host_if(self, s: A.If):
        names = _read_names(s) | _assigned_names([s])
        self.flush(names)
        cond = self.expr(s.cond)
        body = self.sub_block(s.body)
        orelse = self.sub_block(s.orelse)
        if _single_return(body) and _single_return(orelse):
            # `if c: return a else: return b` (the seed's `max`, `relu`) is a select
            self.emit(n.Return(simplify(n.Select(cond, body[0].value, orelse[0].value)), s.span))
            return
        self.emit(n.If(cond, body, orelse, s.span))

    def sub_block(self, stmts) -> tuple[n.Stmt, ...]:
        sub = FnLowering(self.prog, self.fn, self.owner, lazy=False)
        sub.locals, sub.counter, sub.int_syms = self.locals, self.counter, self.int_syms
        sub.defined, sub.scope_binders = self.defined, self.scope_binders
        sub.declared = self.declared
        if hasattr(self, "body_stmts"):
            sub.body_stmts = self.body_stmts
        sub.block(stmts)
        sub.flush()
        return tuple(_group_grads(sub.out, self._builtin_grad()))

    def for_loop(self, s: A.For):
        try:
            nest = NestExec(self, s)
            stmts, updates = nest.run()
        except NotAffine as why:
            self.host_loop(s, str(why))
            return
        for st in stmts:
            self.emit(st)
        self.assign_simultaneously(updates, s.span)
        self.bind_after_loop(nest, s.span)

    def bind_after_loop(self, nest: "NestExec", span):
        """The loop variable and the loop's locals after a loop that became a nest: bound when
        the loop ran at least once (as a host loop would leave them)."""
        if not nest.escaping:
            return
        axis = nest.top_axes[0]
        count = as_int(extent(axis))
        if count is not None and count > 0:
            for name, value in nest.escaping.items():
                self.define(name, value, span)
            return
        self.flush(set(nest.escaping))      # they are rebound (what reads their old value first)
        body = tuple(n.Assign(k, simplify(v, frozenset(self.int_syms)), span) for k, v in nest.escaping.items())
        self.defined |= set(nest.escaping)
        self.emit(n.If(simplify(n.Bin(">", axis.hi, axis.lo), frozenset(self.int_syms)), body, (), span))

    def assign_simultaneously(self, updates: dict[str, n.Expr], span):
        """The loop's scalar updates all read the values from before the loop (`bj` compares
        with the old `best`): an old value that another update reads is kept in a temporary
        before any is assigned (class AF)."""
        saved = {}
        for name in updates:
            if any(uses(v, name) for k, v in updates.items() if k != name):
                self.flush([name])
                tmp = self.fresh(f"_{name}_old")
                self.emit(n.Assign(tmp, self.name(name), span))
                saved[name] = n.Sym(tmp)
        for name, value in updates.items():
            self.define(name, subst(value, {k: t for k, t in saved.items() if k != name}), span)

    def host_loop(self, s: A.For, why: str):
        names = _read_names(s) | _assigned_names([s])
        self.flush(names)
        axes = [self.loop_axis(s, v) for v in s.vars]
        body = self.sub_block(s.body)
        for axis in reversed(axes):
            body = (n.Loop(axis, body, n.Mark.SERIAL, s.span, why),)
            why = ""
        self.emit(body[0])

    def loop_axis(self, s: A.For, var: str) -> n.Axis:
        self.int_syms.add(var)
        if s.range is not None:
            lo = n.Const(0) if s.range.lo is None else _floor(self.expr(s.range.lo))
            hi = _floor(self.expr(s.range.hi))
        else:
            lo, hi = n.Const(0), self.inferred_extent(s.body, var, s)
        return n.Axis(var, simplify(lo, frozenset(self.int_syms)), simplify(hi, frozenset(self.int_syms)))

    def inferred_extent(self, body, var: str, where) -> n.Expr:
        """`for i:` ranges over the first axis that `i` indexes plainly (`x[i]`, `x[k, i]`)."""
        for node in (x for s in body for x in A.walk(s)):
            if isinstance(node, A.Index):
                base, idx = _flatten_index(node)
                for k, i in enumerate(idx):
                    if isinstance(i, A.Name) and i.id == var:
                        return n.Dim(self.expr(base), k)
        # the program has no meaning (docs: the range comes from a plain index): a diagnostic,
        # not a NotAffine, which would escape as a traceback (class V)
        from phc.diagnostics import PhcError, error
        raise PhcError([error(f"cannot infer the range of `{var}`: it indexes no array plainly",
                              getattr(where, "span", A.NOSPAN), hint=f"write `for {var}: ℕ(n) -> …`",
                              filename=self.prog.ast.filename)])

    def store_target(self, target) -> tuple[n.Expr, tuple[n.Expr, ...]]:
        if isinstance(target, A.Index):
            base, idx = _flatten_index(target)
            tensor = n.Sym(base.id) if isinstance(base, A.Name) else self.expr(base)
            return tensor, tuple(self.index_expr(i) for i in idx)
        raise NotAffine("unsupported assignment target")

    # ---- expressions

    def name(self, name: str) -> n.Expr:
        if name not in self.env and name not in self.locals and name in self.signature_dims():
            return self.signature_dims()[name]          # `C: ℝ[n, o]` with B: ℝ[n, o] (R02)
        return self.env.get(name, n.Sym(name))

    def signature_dims(self) -> dict[str, n.Expr]:
        """A signature's dimension symbols as shapes of the parameters: `m` in `A: ℝ[m, n]` is
        `dim(A, 0)` (the first parameter that names it)."""
        if not hasattr(self, "_sig_dims"):
            self._sig_dims: dict[str, n.Expr] = {}
            for p in (self.fn.params if self.fn else ()):
                for k, d in enumerate(p.type.dims if p.type is not None else ()):
                    if isinstance(d, A.Name) and d.id not in self._sig_dims:
                        self._sig_dims[d.id] = n.Dim(n.Sym(p.name), k)
        return self._sig_dims

    def part(self, e) -> n.Expr:
        """One subscript: an index, or a slice as a `Range`."""
        if isinstance(e, A.Slice):
            lower = lambda x: None if x is None else self._expr(x)      # noqa: E731
            return n.Range(lower(e.lo), lower(e.hi), lower(e.step))
        return self._expr(e)

    def index_expr(self, e) -> n.Expr:
        if isinstance(e, A.Slice):
            return simplify(self.part(e), frozenset(self.int_syms))      # a host slice store
        return simplify_index(self._expr(e), frozenset(self.int_syms))

    def expr(self, e) -> n.Expr:
        return simplify(self._expr(e), frozenset(self.int_syms))

    def _expr(self, e) -> n.Expr:
        match e:
            case A.Num(value):
                return n.Const(value, n.DType.I64 if isinstance(value, int) else n.DType.F32)
            case A.Str(value):
                return n.Const(value)          # strings only appear in prints
            case A.Name(name):
                return self.name(name)
            case A.This():
                return n.Sym("this")
            case A.ArrayLit(items):
                # integers stay integers (`labels: ℕ[6] = [0, 1, 2, …]`, level 0's values); a
                # declaration ℝ converts them (_real_array)
                elems = tuple(self._expr(i) for i in items)
                ints = elems and all(isinstance(x, n.Const) and x.dtype is n.DType.I64 or
                                     isinstance(x, n.ArrayLit) and x.dtype is n.DType.I64 for x in elems)
                return n.ArrayLit(elems, n.DType.I64 if ints else n.DType.F32)
            case A.BinOp(op, l, r):
                return n.Bin(op, self._expr(l), self._expr(r), e.span)
            case A.UnaryOp("-", x):
                return n.Un("neg", self._expr(x), e.span)
            case A.UnaryOp("+", x):
                return self._expr(x)
            case A.UnaryOp("not", x):
                return n.Un("not", self._expr(x))
            case A.Attribute(obj, attr):
                return n.Attr(self._expr(obj), attr)
            case A.Index():
                return placed(self.index(e), e.span)
            case A.Call():
                return placed(self.call(e), e.span)
            case A.Comprehension():
                return self.comprehension(e)
            case A.Slice():
                raise NotAffine("slices are host code")
            case A.Sample(dist, params, shape):
                return n.Sample(dist, tuple(self._expr(p) for p in params), tuple(_floor(self._expr(d)) for d in shape))
        raise NotAffine(f"unsupported expression {type(e).__name__}")

    def index(self, e: A.Index) -> n.Expr:
        from phc.types import TupleT
        if isinstance(self.prog.types.get(e.value), TupleT) and len(e.indices) == 1 \
                and isinstance(e.indices[0], A.Num) and e.indices[0].is_int:
            return n.Item(self._expr(e.value), e.indices[0].value)     # `dataset[0]`: a list item
        base, idx = _flatten_index(e, self.prog.types)
        t = self._expr(base)
        if any(isinstance(i, A.Slice) for i in idx):
            if len(idx) == 1 and idx[0].step is None:
                s = idx[0]
                return n.Slice(t, None if s.lo is None else self._expr(s.lo), None if s.hi is None else self._expr(s.hi))
            # steps and several axes (`x[::2]`, `x[:, 0]`): Python slicing on the host
            return n.Subscript(t, tuple(self.part(i) for i in idx))
        return n.Load(t, tuple(self._expr(i) for i in idx))

    def comprehension(self, e: A.Comprehension) -> n.Expr:
        var = self.fresh(e.var)
        if e.range is not None:
            lo = n.Const(0) if e.range.lo is None else _floor(self._expr(e.range.lo))
            hi = _floor(self._expr(e.range.hi))
        else:
            lo, hi = n.Const(0), self.inferred_extent([A.ExprStmt(e.body)], e.var, e)
        saved = self.env.get(e.var)
        self.env[e.var] = n.Sym(var)
        self.int_syms.add(var)
        self.scope_binders.add(var)
        try:
            trailing, body = self.point_body(e.body, var)
        finally:
            self.scope_binders.discard(var)
            if saved is None:
                self.env.pop(e.var, None)
            else:
                self.env[e.var] = saved
        return n.Tabulate((n.Axis(var, lo, hi),) + trailing, body)

    def point_body(self, e, var: str) -> tuple[tuple[n.Axis, ...], n.Expr]:
        """A comprehension's body. A sub-tensor computed elementwise (`x[i] * 2.0`) is tabulated
        over its own axes too, element by element (`x[i, e] * 2.0`): a nest computes numbers, and
        a plain sub-tensor load is the only tensor-valued body the emitter vectorises (class C2).
        A sub-tensor body that is not elementwise (`x[i] @ w`) is marked `host_value`: the
        emitter evaluates it point by point on the host."""
        body = self._expr(e)
        rank = self.rank_of(e)
        if not rank or not isinstance(simplify(body), (n.Bin, n.Un, n.Select)):
            return (), body
        idx_vars = [self.fresh("e") for _ in range(rank)]
        self.int_syms.update(idx_vars)
        shapes: list[n.Expr] = []
        try:
            elem = self.element_at(e, tuple(n.Sym(v) for v in idx_vars), shapes)
            axes = tuple(n.Axis(v, n.Const(0), simplify(n.Dim(shapes[0], k), frozenset(self.int_syms)))
                         for k, v in enumerate(idx_vars))
            if any(uses(a.hi, var) for a in axes):
                raise NotAffine("the element shape depends on the comprehension variable")
            return axes, elem
        except (NotAffine, IndexError):
            return (), n.Call("host_value", (body,))

    def element_at(self, e, idx: tuple[n.Expr, ...], shapes: list) -> n.Expr:
        """The element at `idx` of the AST value `e` of rank len(idx); NotAffine where `e` is not
        an elementwise expression of same-rank tensors and numbers."""
        rank = self.rank_of(e)
        if rank == 0:
            return self._expr(e)
        if rank != len(idx):
            raise NotAffine("operands of different ranks")
        match e:
            case A.BinOp(op, l, r) if op in ("+", "-", "*", "/", "**", "//", "%"):
                return n.Bin(op, self.element_at(l, idx, shapes), self.element_at(r, idx, shapes), e.span)
            case A.UnaryOp("-", x):
                return n.Un("neg", self.element_at(x, idx, shapes))
            case A.UnaryOp("+", x):
                return self.element_at(x, idx, shapes)
            case A.Call(A.Name(f), (a,)) if f in MATH and f not in self.prog.functions and f not in self.locals:
                return n.Un(f, self.element_at(a, idx, shapes))
            case A.Index() | A.Name():
                v = self._expr(e)
                shapes.append(v)
                return n.Load(v, idx, e.span)
        raise NotAffine("not an elementwise expression")

    def call(self, e: A.Call) -> n.Expr:
        if A.partial_grad_variable(e) is not None and self.names_builtin("grad"):
            return self.grad_of_call(e)
        return self.call_with(e, tuple(self._expr(a) for a in e.args))

    def names_builtin(self, name: str) -> bool:
        """A call of `name` is the builtin's: no variable or user function shadows it (the order
        in which `call_with` resolves names)."""
        return not (name in self.locals or name in self.env or name in self.prog.functions)

    def grad_of_call(self, e: A.Call) -> n.Expr:
        """`grad(f(a, x), x)`: the derivative of f with respect to the arguments written `x`, the
        others held at their values (docs/language.md, "Gradients"): those arguments become a new
        variable `d` holding x's value, and the derivative is taken with respect to `d`."""
        inner, x = e.args
        point = self.name(x.id)
        if self.in_nest or free_syms(point) & self.scope_binders:
            # the new variable is bound before the statement, where a nest's or a comprehension's
            # index does not exist yet: such a loop runs as a host loop
            raise NotAffine("the derivative of a call inside a loop nest or comprehension")
        d = self.fresh(f"_d_{x.id}")
        self.emit(n.Assign(d, n.Call("partial_point", (point,)), e.span))
        self.defined.add(d)
        args = tuple(n.Sym(d) if A.is_name(a, x.id) else self._expr(a) for a in inner.args)
        return self.call_with(e, (self.call_with(inner, args), n.Sym(d)))

    def call_with(self, e: A.Call, args: tuple) -> n.Expr:
        args = self.arguments_as_declared(e, args)
        match e.func:
            case A.Attribute(obj, method):
                return n.Call(method, args, self._expr(obj))
            case A.Name(name) if name in self.locals or name in self.env:
                return n.Call("λ", args, self.name(name))
            case A.Name(name) if name in self.prog.functions:
                return self.user_call(name, args, e.span)
            case A.Name(name) if name in self.prog.classes:
                return n.Call(name, args)
            case A.Name(name):
                return self.builtin(name, args, e.args)
        raise NotAffine("unsupported call")

    def arguments_as_declared(self, e: A.Call, args: tuple) -> tuple:
        """An integer literal passed where the callee declares ℝ is real (as at level 0, where the
        parameter converts it): integer literals are integer tensors otherwise."""
        kinds = None
        match e.func:
            case A.Name(name) if name in self.prog.functions and not (name in self.locals or name in self.env):
                kinds = [p.type.scalar for p in self.prog.functions[name].params]
            case A.Name(name) if name in self.prog.classes and not (name in self.locals or name in self.env):
                c = self.prog.classes[name]
                kinds = [p.type.scalar for p in c.params] + [d.type.scalar for d in c.fields]
        if kinds is None:
            return args
        def integer(k, a):
            return isinstance(a, n.ArrayLit) or k < len(e.args) and self.kind_of(e.args[k]) in (A.Scalar.NAT, A.Scalar.INT)
        return tuple(_to_real(a) if k < len(kinds) and kinds[k] is A.Scalar.REAL and integer(k, a) else a
                     for k, a in enumerate(args))

    def user_call(self, name: str, args, span: A.Span = A.NOSPAN) -> n.Expr:
        if name not in self.prog.in_progress and name not in self.prog.lowered:
            _lower_function(self.prog, self.prog.functions[name])
        if name in self.prog.inline:
            params, body = self.prog.inline[name]
            args = tuple(self.bind_argument(a, p, body) for a, p in zip(args, params))
            body = inlined_at(rename_binders(body, self.fresh), name, span)
            for v in _bound_vars(body):
                self.int_syms.add(v)
            return subst(body, dict(zip(params, args)))
        return n.Call(name, args)

    def bind_argument(self, arg: n.Expr, param: str, body: n.Expr) -> n.Expr:
        """An expensive argument of an inlined call is computed once, into a temporary, when
        the inlined body uses it several times (or at all, in loop bounds) — unless it depends on
        a comprehension's variable or sits inside a loop nest being vectorised."""
        if _cheap(arg) or self.in_nest or free_syms(arg) & self.scope_binders:
            return arg
        if _count_uses(body, param) <= 1 and not _impure(arg):
            return arg
        tmp = self.fresh(f"_{param}")
        self.emit(n.Assign(tmp, simplify(arg, frozenset(self.int_syms))))
        self.defined.add(tmp)
        return n.Sym(tmp)

    def rank_of(self, e) -> int | None:
        """The rank the checker gave the AST expression `e` (None: not known)."""
        from phc.types import ScalarT, TensorT
        t = self.prog.types.get(e)
        if isinstance(t, TensorT):
            return t.rank
        return 0 if isinstance(t, ScalarT) else None

    def builtin(self, name: str, args, ast_args=()) -> n.Expr:
        if name in _ELEMENT_REDUCTIONS and len(args) == 1 and ast_args:
            red = self.element_reduction(name, args[0], self.rank_of(ast_args[0]))
            if red is not None:
                return red
        if name == "len" and len(args) == 1:
            return n.Dim(args[0], 0)
        if name in MATH and len(args) == 1:
            return n.Un(name, args[0])
        if name in ("zeros", "ones") and args:
            # an allocation, like a comprehension of a constant: a following nest may overwrite it
            return n.Full(tuple(_floor(a) for a in args), n.Const(0.0 if name == "zeros" else 1.0))
        if name == "sum" and len(args) == 1:
            return n.Un("sum", args[0])
        if name in ("max", "min") and len(args) == 2:
            return n.Bin(name, args[0], args[1])
        return n.Call(name, args)


    def element_reduction(self, name: str, a: n.Expr, rank: int | None) -> n.Expr | None:
        """`sum(v)` (`max`, `min`, `argmax`) of a rank-r value as a Reduce over all r of its axes,
        where `_reduces_inside_nest` holds; elsewhere the runtime call (whole-tensor) is kept."""
        if not _reduces_inside_nest(a, rank, self.in_nest, self.scope_binders):
            return None
        op = _ELEMENT_REDUCTIONS[name]
        lead, body = (a.axes, a.body) if isinstance(a, n.Tabulate) else ((), a)
        trailing = rank - len(lead)
        if op is n.ReduceOp.ARGMAX and rank != 1:
            return None             # the flat index of a matrix's maximum stays the runtime's
        axes = []
        for k in range(trailing):
            var = self.fresh("e")
            self.int_syms.add(var)
            axes.append(n.Axis(var, n.Const(0), n.Dim(body, k)))
        if axes:
            body = n.Load(body, tuple(n.Sym(x.var) for x in axes))
        return simplify(n.Reduce(op, tuple(lead) + tuple(axes), body), frozenset(self.int_syms))


_ELEMENT_REDUCTIONS = {"sum": n.ReduceOp.ADD, "max": n.ReduceOp.MAX, "min": n.ReduceOp.MIN,
                       "argmax": n.ReduceOp.ARGMAX}


def _reduces_inside_nest(a: n.Expr, rank: int | None, in_nest: bool, binders) -> bool:
    """Precondition of lowering a whole-value reduction to a Reduce: the value's rank is known
    and it is a comprehension, or it is computed per point of a nest (depends on a nest or
    comprehension variable): there the emitter would otherwise apply the runtime's whole-tensor
    `sum` to the nest's view of every point at once (class C1)."""
    if rank is None or rank < 1 or (isinstance(a, n.Tabulate) and rank < len(a.axes)):
        return False
    return isinstance(a, n.Tabulate) or in_nest or bool(free_syms(a) & set(binders))


# ---------------------------------------------------------------- loop nests

class NestExec:
    """Symbolic execution of a loop nest: returns (statements, updated host scalars).

    Scalars live at the loop's entry are replaced by markers `⟨x⟩`; after executing the body once
    symbolically, each scalar's new value is matched against the reduction patterns
    (`⟨x⟩ + e`, `⟨x⟩ * e`, `select(e > ⟨x⟩, e, ⟨x⟩)` with an optional argmax partner).
    """

    def __init__(self, host: FnLowering, loop: A.For):
        self.host, self.loop = host, loop

    def run(self):
        # a tensor the loop stores into is read as itself, never as its pending value (`r[i] =
        # 1.0; r[i] = r[i] + 2.0` must not read the zeros before the loop): then `finish` sees
        # the read and checks it
        stored = _stored_tensors(self.loop)
        env = {k: v for k, v in self.host.env.items() if k not in stored}
        stores: list[tuple[tuple[n.Axis, ...], n.Store]] = []
        self.top_axes: list[n.Axis] = []
        env = self.exec_for(self.loop, (), env, stores)
        self.escaping = self.last_values(env)
        stmts = self.finish(stores)
        # names first assigned inside the loop are loop-local: their last value does not escape
        # in source order: compilation must not depend on the hash seed (class AF)
        updates = {k: env[k] for k in _assigned_in_order([self.loop]) if k in env
                   and self.host.env.get(k) != env[k] and k in self.host.defined}
        for k, v in updates.items():
            if _impure(v):
                raise NotAffine(f"`{k}` is computed with a call")
            _check_affine_value(v, stored)
            _check_reads_no_stored_tensor(k, v, stored)
        return stmts, updates

    def last_values(self, env) -> dict[str, n.Expr]:
        """Names first bound inside the loop stay visible after it (docs): the loop variable is
        its last value, a local its value in the last iteration (class M). Values that are not
        plain expressions (a call) are left unbound, as before."""
        out = {}
        live = lambda k: self.host.read_outside(k, self.loop)      # noqa: E731 — else dead
        for var, axis in zip(self.loop.vars, self.top_axes):
            if live(var):
                out[var] = simplify(n.Bin("-", axis.hi, n.Const(1)), self._ints())
        for k in _assigned_in_order(self.loop.body):
            if k in env and k not in self.host.defined and k not in out and not _impure(env[k]) \
                    and not any(x.startswith("⟨") for x in free_syms(env[k])) and live(k):
                out[k] = env[k]
        return out

    # ---- statements inside the nest

    def exec_block(self, stmts, loops, env, stores):
        for s in stmts:
            env = self.exec_stmt(s, loops, env, stores)
        return env

    def exec_stmt(self, s, loops, env, stores):
        h = self.host
        match s:
            case A.Decl(name, t, value) if value is not None and not t.dims:
                h.declared[name] = t.scalar
                return {**env, name: h.as_kind(t.scalar, self.value(value, env), value)}
            case A.Assign(A.Name(name), value):
                return {**env, name: h.declared_kind(name, self.value(value, env), value)}
            case A.AugAssign(A.Name(name), op, value):
                old = env.get(name, n.Sym(name))
                return {**env, name: n.Bin(op, old, self.value(value, env), s.span)}
            case A.Assign(A.Index() as target, value) | A.AugAssign(A.Index() as target, _, value):
                base, idx = _flatten_index(target)
                tensor = n.Sym(base.id) if isinstance(base, A.Name) else self.value(base, env)
                if not isinstance(tensor, n.Sym):
                    raise NotAffine("stores into a computed tensor")
                index = tuple(simplify_index(self.value(i, env), self._ints()) for i in idx)
                v = self.value(value, env)
                element_axes, element = self.element_store(value, env)
                if element_axes:
                    # a sub-tensor store (`r[i] = x[i] * 2.0`): one store per element
                    v = element
                    index = index + tuple(n.Sym(a.var) for a in element_axes)
                if isinstance(s, A.AugAssign):
                    v = n.Bin(s.op, n.Load(tensor, index), v)
                stores.append((tuple(loops) + element_axes, n.Store(tensor, index, simplify(v, self._ints()), s.span)))
                return env
            case A.If(cond, body, orelse):
                c = self.value(cond, env)
                n_before = len(stores)
                a = self.exec_block(body, loops, env, stores)
                b = self.exec_block(orelse, loops, env, stores)
                if len(stores) != n_before:
                    raise NotAffine("stores under a condition")
                merged = dict(env)
                for k in set(a) | set(b):
                    va, vb = a.get(k, env.get(k)), b.get(k, env.get(k))
                    if va is None or vb is None:
                        merged[k] = va if vb is None else vb
                    else:
                        merged[k] = va if va == vb else n.Select(c, va, vb)
                return merged
            case A.For():
                return self.exec_for(s, loops, env, stores)
            case A.ExprStmt():
                raise NotAffine("prints or evaluates an expression")
            case A.Return():
                raise NotAffine("returns from inside the loop")
        raise NotAffine(f"contains a {type(s).__name__} statement")

    def value(self, e, env) -> n.Expr:
        h = self.host
        saved, saved_nest = h.env, h.in_nest
        h.env, h.in_nest = env, True
        try:
            v = h.expr(e)
        finally:
            h.env, h.in_nest = saved, saved_nest
        if contains(v, lambda x: isinstance(x, (n.Subscript, n.Range))):
            raise NotAffine("slices are host code")
        if _impure(v):
            call = next(x for x in _walk(v) if isinstance(x, (n.Call, n.Sample)))
            what = f"calls `{call.func}`" if isinstance(call, n.Call) else "samples"
            raise NotAffine(what)
        return v

    def element_store(self, value, env) -> tuple[tuple[n.Axis, ...], n.Expr | None]:
        """For a stored value of rank r > 0: r element axes and the value's element at them
        (`element_at`); NotAffine where it is not elementwise (the loop stays on the host)."""
        h = self.host
        rank = h.rank_of(value)
        if not rank:
            return (), None
        saved, saved_nest = h.env, h.in_nest
        h.env, h.in_nest = env, True
        try:
            names = [h.fresh("e") for _ in range(rank)]
            h.int_syms.update(names)
            shapes: list[n.Expr] = []
            elem = h.element_at(value, tuple(n.Sym(v) for v in names), shapes)
            if not shapes:
                raise NotAffine("a sub-tensor store of a value with no shape to follow")
            axes = tuple(n.Axis(v, n.Const(0), simplify(n.Dim(shapes[0], k), self._ints()))
                         for k, v in enumerate(names))
        finally:
            h.env, h.in_nest = saved, saved_nest
        return axes, simplify(elem, self._ints())

    def exec_for(self, s: A.For, loops, env, stores):
        h = self.host
        axes = []
        inner_env = dict(env)
        for var in s.vars:
            saved = h.env
            # a bound may read the shape of a tensor the loop stores into (its pending value's
            # shape: a store does not change it)
            h.env = {**{k: v for k, v in self.host.env.items() if isinstance(v, n.Full)}, **inner_env}
            try:
                axis = h.loop_axis(s, var)
            finally:
                h.env = saved
            _check_rectangular(axis, var, tuple(loops) + tuple(axes))
            new = h.fresh(var)
            h.int_syms.add(new)
            axis = n.Axis(new, axis.lo, axis.hi)
            inner_env[var] = n.Sym(new)
            axes.append(axis)
        if not loops:
            self.top_axes = list(axes)
        # markers for every scalar the body may update
        updated = [k for k in _assigned_in_order(s.body) if k not in s.vars]
        markers = {k: n.Sym(f"⟨{k}⟩") for k in updated}
        body_env = {**inner_env, **markers}
        out = self.exec_block(s.body, tuple(loops) + tuple(axes), body_env, stores)
        result = dict(env)
        for k in updated:
            result[k] = self.combine(k, out.get(k, markers[k]), markers, env, axes, out, s)
        # the loop's own variables after it: their last value, if the range ran at all (only
        # where something outside the loop reads them; elsewhere the value is dead)
        last = _last_point(axes, self._ints())
        for var, axis in zip(s.vars, axes):
            if self.host.read_outside(var, s):
                result[var] = _after_last_iteration(last[axis.var], env.get(var, n.Sym(var)), axes, self._ints())
        return result

    def combine(self, name, new, markers, env, axes, out, loop=None) -> n.Expr:
        m = markers[name]
        old = env.get(name, n.Sym(name))
        ints = self._ints()
        new = _guarded_update(simplify(new, ints), m)
        if new == m:
            return old
        others = [k for k, mk in markers.items() if k != name and uses(new, mk.name)]
        if not uses(new, m.name) and not others:
            # overwritten each iteration: the value of the last one (dead in practice: `temp = x[i]`)
            # — if there is a last one: an empty range leaves the old value
            value = subst(new, _last_point(axes, ints))
            return _after_last_iteration(value, old, axes, ints) if self.host.read_outside(name, loop) else value
        match new:
            case n.Bin(("+" | "*") as op, a, e) if a == m and not uses(e, m.name) and not others:
                red = n.Reduce(n.ReduceOp.ADD if op == "+" else n.ReduceOp.MUL, tuple(axes), e)
                return simplify(n.Bin(op, old, red), ints)
            case n.Bin("-", a, e) if a == m and not uses(e, m.name) and not others:
                return simplify(n.Bin("-", old, n.Reduce(n.ReduceOp.ADD, tuple(axes), e)), ints)
            case n.Select(n.Bin(">" | "<" as op, e, a), e2, a2) if a == m and a2 == m and e == e2 and not uses(e, m.name):
                kind = n.ReduceOp.MAX if op == ">" else n.ReduceOp.MIN
                red = n.Reduce(kind, tuple(axes), e)
                return simplify(n.Select(n.Bin(op, red, old), red, old), ints)
            case n.Select(n.Bin(">" | "<" as op, e, a), v, a2) if a2 == m and len(axes) == 1 \
                    and _is_index_of(v, axes[0]) and len(others) == 1 and a == markers[others[0]] \
                    and out.get(others[0]) == n.Select(n.Bin(op, e, a), e, a):
                # argmax / argmin: `if e > best: best = e; idx = i`
                partner_old = env.get(others[0], n.Sym(others[0]))
                kind = n.ReduceOp.MAX if op == ">" else n.ReduceOp.MIN
                arg = n.ReduceOp.ARGMAX if op == ">" else n.ReduceOp.ARGMIN
                best = n.Reduce(kind, tuple(axes), e)
                found = n.Reduce(arg, tuple(axes), e)
                if isinstance(v, n.Un):
                    found = n.Un("float", found)        # `idx: ℝ` holds the index as a real
                return simplify(n.Select(n.Bin(op, best, partner_old), found, old), ints)
        raise NotAffine(f"`{name}` carries a value from one iteration to the next")

    def _ints(self):
        return frozenset(self.host.int_syms)

    # ---- stores → tabulations or imperative nests

    def finish(self, stores) -> list[n.Stmt]:
        out: list[n.Stmt] = []
        written = {s.tensor.name for _, s in stores}
        # an alias pending as another name (`y = x`) writes that tensor too
        written |= {self.host.env[w].name for w in list(written) if isinstance(self.host.env.get(w), n.Sym)}
        _check_no_scan(stores)
        _check_fission_legal(stores)
        for loops, st in stores:
            for other in written:
                if uses(st.value, other) and contains(st.value, lambda x: isinstance(x, n.Load) and x.tensor == n.Sym(other)):
                    if not (other == st.tensor.name and _same_point_rmw(st)):  # `r[i] = r[i] + e` is fine
                        raise NotAffine(f"reads `{other}`, which the loop writes")
            _check_affine(st, loops)
            out.append(self.tabulate_or_store(loops, st))
        return out

    def tabulate_or_store(self, loops, st: n.Store) -> n.Stmt:
        h = self.host
        name = st.tensor.name
        pending = h.env.get(name)
        if isinstance(pending, n.Full) and not uses(st.value, name):
            full = covers(loops, st.index, pending.shape, frozenset(h.int_syms))
            if full is not None:
                h.env.pop(name)
                # the tensor keeps the kind it was made with: integers stored into a real tensor
                # are reals (DT02)
                ints = frozenset(h.int_syms)
                elem = _to_real(st.value) if pending.dtype is n.DType.F32 and _surely_integral(st.value, ints) \
                    else st.value
                value = simplify(n.Tabulate(tuple(loops), elem), frozenset(h.int_syms))
                if full != "identity":
                    value = simplify(n.Reshape(value, pending.shape), frozenset(h.int_syms))
                return n.Assign(name, value, st.span)
        _check_injective(st, loops)
        h.flush([name])
        body: tuple[n.Stmt, ...] = (st,)
        for axis in reversed(loops):
            body = (n.Loop(axis, body, n.Mark.PARALLEL, st.span),)
        return body[0]


def covers(loops, index, shape, ints) -> str | None:
    """Whether a store at `index` over `loops` writes every element of a `shape` tensor exactly
    once: "identity" (index i, j over extents equal to the shape), "reshape" (a row-major
    linearisation into a 1-D tensor), or None."""
    extents = [extent(a) for a in loops]
    if all(simplify(a.lo) == n.Const(0) for a in loops):
        if len(index) == len(loops) == len(shape) and all(i == n.Sym(a.var) for i, a in zip(index, loops)):
            if all(_same(e, s, ints) for e, s in zip(extents, shape)):
                return "identity"
        # leading indices are the leading loops; the last one linearises the remaining loops
        p = len(index) - 1
        if len(shape) == len(index) and len(loops) > p and all(
                index[k] == n.Sym(loops[k].var) and _same(extents[k], shape[k], ints) for k in range(p)):
            rest = loops[p:]
            coeffs = _linear(index[-1], [a.var for a in rest])
            if coeffs is not None and not (free_syms(index[-1]) & {a.var for a in loops[:p]}):
                stride = n.Const(1)
                ok = _same(coeffs[1], n.Const(0), ints)
                for a, ext in zip(reversed(rest), reversed(extents[p:])):
                    ok = ok and _same(coeffs[0].get(a.var, n.Const(0)), stride, ints)
                    stride = simplify(n.Bin("*", stride, ext), ints)
                if ok and _same(stride, shape[-1], ints):
                    return "reshape"
    return None


def _same(a: n.Expr, b: n.Expr, ints) -> bool:
    a, b = simplify(a, ints), simplify(b, ints)
    if a == b:
        return True
    return _canon(a) == _canon(b)


def _canon(e):
    """A canonical form for products/sums of shape symbols, enough to compare extents."""
    if isinstance(e, n.Bin) and e.op in ("*", "+"):
        parts = []
        stack = [e]
        while stack:
            x = stack.pop()
            if isinstance(x, n.Bin) and x.op == e.op:
                stack += [x.a, x.b]
            else:
                parts.append(repr(_canon(x)))
        return (e.op, tuple(sorted(parts)))
    return e


def _linear(e: n.Expr, vars) -> tuple[dict[str, n.Expr], n.Expr] | None:
    """`e` as Σ coeff·var + const with loop-invariant coefficients, or None."""
    match e:
        case n.Sym(name) if name in vars:
            return {name: n.Const(1)}, n.Const(0)
        case n.Bin("+" | "-" as op, a, b):
            la, lb = _linear(a, vars), _linear(b, vars)
            if la is None or lb is None:
                return None
            coeffs = dict(la[0])
            for k, v in lb[0].items():
                coeffs[k] = simplify(n.Bin(op, coeffs.get(k, n.Const(0)), v))
            return coeffs, simplify(n.Bin(op, la[1], lb[1]))
        case n.Bin("*", a, b):
            la, lb = _linear(a, vars), _linear(b, vars)
            if la is None or lb is None:
                return None
            if not la[0]:
                return {k: simplify(n.Bin("*", la[1], v)) for k, v in lb[0].items()}, simplify(n.Bin("*", la[1], lb[1]))
            if not lb[0]:
                return {k: simplify(n.Bin("*", v, lb[1])) for k, v in la[0].items()}, simplify(n.Bin("*", la[1], lb[1]))
            return None
        case n.Un("neg", a):
            la = _linear(a, vars)
            if la is None:
                return None
            return {k: simplify(n.Un("neg", v)) for k, v in la[0].items()}, simplify(n.Un("neg", la[1]))
    if free_syms(e) & set(vars):
        return None
    if contains(e, lambda x: isinstance(x, n.Load)):
        return None        # data-dependent: not affine
    return {}, e


def _guarded_update(new: n.Expr, m: n.Sym) -> n.Expr:
    """`select(c, ⟨x⟩ + e, ⟨x⟩)` (an update under a guard) is `⟨x⟩ + select(c, e, 0)`."""
    match new:
        case n.Select(c, n.Bin("+", a, e), b) if a == m and b == m:
            return n.Bin("+", m, n.Select(c, e, n.Const(0.0)))
        case n.Select(c, b, n.Bin("+", a, e)) if a == m and b == m:
            return n.Bin("+", m, n.Select(c, n.Const(0.0), e))
    return new


def linear_form(e: n.Expr, vars):
    return _linear(e, list(vars))


def _check_rectangular(axis: n.Axis, var: str, enclosing) -> None:
    """Precondition of a loop nest: every bound is invariant in the enclosing nest's loops (a
    triangular `for j: ℕ(i + 1)` keeps the outer loop on the host — classes K, K2, R01)."""
    bound = free_syms(axis.lo) | free_syms(axis.hi)
    outer = [a.var for a in enclosing if a.var in bound]
    if outer:
        raise NotAffine(f"the range of `{var}` depends on an enclosing loop variable: not rectangular")


def _check_no_scan(stores):
    """Precondition of vectorising stores: no stored value (or index) reads a scalar that the
    loop carries (`run += v[i]; r[i] = run` is a running scan: it stays a serial host loop)."""
    for _, st in stores:
        for e in (st.value,) + tuple(st.index):
            carried = sorted(x[1:-1] for x in free_syms(e) if x.startswith("⟨"))
            if carried:
                raise NotAffine(f"stores `{carried[0]}`, which the loop carries from one iteration "
                                "to the next (a running scan)")


def _check_fission_legal(stores):
    """Precondition of loop distribution (each store becomes its own nest, all iterations of the
    first before any of the second): two stores into one tensor must write the same element in
    the same iteration (identical, injective indices); otherwise their writes may overlap across
    iterations and the order would change (class X)."""
    by_tensor: dict[str, list] = {}
    for loops, st in stores:
        by_tensor.setdefault(st.tensor.name, []).append((loops, st))
    for name, group in by_tensor.items():
        if len(group) < 2:
            continue
        first_loops, first = group[0]
        for loops, st in group[1:]:
            if st.index != first.index or loops != first_loops:
                raise NotAffine(f"two stores into `{name}` may write the same element in different "
                                "iterations: distributing them would reorder the writes")
        _check_injective(first, first_loops)


def _check_affine(st: n.Store, loops):
    vars = [a.var for a in loops]
    bound = set(vars)
    for i in st.index:
        if _linear(i, vars) is None:
            raise NotAffine("stores at a data-dependent index")
    for load in _loads(st.value):
        inner = bound | _bound_vars(st.value)
        for i in load.index:
            if _linear(i, list(inner)) is None:
                raise NotAffine("loads at a data-dependent index (a gather)")


def _check_affine_value(v: n.Expr, stored=frozenset()):
    """Every load inside a reduction or tabulation reads at an affine index; inside a reduction
    a load may also gather (`p[b, labels[b]]`) where `_gather_legal` holds."""
    for x in _walk(v):
        if isinstance(x, (n.Reduce, n.Tabulate)):
            bound = list(_bound_vars(x))
            for load in _loads(x):
                if any(_linear(i, bound) is None for i in load.index) \
                        and not (isinstance(x, n.Reduce) and _gather_legal(load, bound, stored)):
                    raise NotAffine("loads at a data-dependent index (a gather)")
            if isinstance(x, n.Reduce) and _gathers_under_a_condition(x.body, bound):
                raise NotAffine("loads at a data-dependent index (a gather) under a condition")


def _check_reads_no_stored_tensor(name: str, value: n.Expr, stored) -> None:
    """Precondition of a loop's scalar update as a reduction after the loop's stores: it reads
    no tensor the loop stores into (`t += x[i]; x[i] = 10.0` reads each x[i] before it is
    written; the reduction, emitted after the stores, would read the new values)."""
    written = sorted({x.tensor.name for x in _loads(value) if isinstance(x.tensor, n.Sym)} & set(stored))
    if written:
        raise NotAffine(f"`{name}` reads `{written[0]}`, which the loop writes")


def _gather_legal(load: n.Load, bound, stored) -> bool:
    """Precondition of a gather inside a reduction (one advanced-indexing read for every point,
    `rt.nests.gather`): each index is affine in the nest's variables or is itself a load of an
    index tensor at affine indices; neither tensor is one the loop stores into (each iteration
    would see the writes of the ones before). The index tensor may hold reals: the gather
    truncates toward zero as the loop's `rt.to_index` does, a negative index counts from the
    end and one outside the axis raises, as the loop's read does."""
    def invariant_tensor(t: n.Expr) -> bool:
        return isinstance(t, n.Sym) and t.name not in stored

    def index_read(i: n.Expr) -> bool:
        return isinstance(i, n.Load) and invariant_tensor(i.tensor) \
            and all(_linear(j, bound) is not None for j in i.index)

    return invariant_tensor(load.tensor) and all(
        _linear(i, bound) is not None or index_read(i) for i in load.index)


def _gathers_under_a_condition(e: n.Expr, bound, conditional: bool = False) -> bool:
    """A gather that the loop reads only where a condition holds (a branch of a select, the
    right operand of `and`/`or`): vectorised it would read every point, and a point the
    condition excludes may be out of range (`if labels[b] < n: total += p[b, labels[b]]`)."""
    from phc.ir.simplify import children
    match e:
        case n.Select(c, a, b):
            return _gathers_under_a_condition(c, bound, conditional) or \
                _gathers_under_a_condition(a, bound, True) or _gathers_under_a_condition(b, bound, True)
        case n.Bin("and" | "or", a, b):
            return _gathers_under_a_condition(a, bound, conditional) or _gathers_under_a_condition(b, bound, True)
        case n.Load(_, index) if conditional and any(_linear(i, bound) is None for i in index):
            return True
    return any(_gathers_under_a_condition(c, bound, conditional) for c in children(e))


def _check_injective(st: n.Store, loops):
    """Every iteration of the parallel loops writes its own element; a loop that writes the same
    element repeatedly is allowed only as an accumulation `t[idx] = t[idx] + e`."""
    vars = [a.var for a in loops]
    seen = set()
    for i in st.index:
        coeffs = {k: v for k, v in (linear_form(i, vars) or ({}, None))[0].items() if as_int(simplify(v)) != 0}
        if len(coeffs) > 1:
            raise NotAffine("several loop variables in one store index")
        seen |= set(coeffs)
    if set(vars) - seen and not is_accumulation(st):
        raise NotAffine("writes the same element in several iterations")


def is_accumulation(st: n.Store) -> bool:
    return isinstance(st.value, n.Bin) and st.value.op == "+" and st.value.a == n.Load(st.tensor, st.index) \
        and not uses(st.value.b, st.tensor.name)


def _loads(e):
    return [x for x in _walk(e) if isinstance(x, n.Load)]


def _walk(e):
    from phc.ir.simplify import children
    yield e
    for c in children(e):
        yield from _walk(c)


def _bound_vars(e) -> set[str]:
    return {a.var for x in _walk(e) if isinstance(x, (n.Reduce, n.Tabulate)) for a in x.axes}


def _same_point_rmw(st: n.Store) -> bool:
    """`r[i] = r[i] + e`: reads only the element it writes."""
    return all(l.index == st.index for l in _loads(st.value) if l.tensor == st.tensor)


# ---------------------------------------------------------------- small helpers

def _count_uses(e: n.Expr, name: str) -> int:
    if isinstance(e, n.Sym):
        return int(e.name == name)
    from phc.ir.simplify import children
    return sum(_count_uses(c, name) for c in children(e))


def _floor(e: n.Expr) -> n.Expr:
    return n.Un("floor", e)


def _surely_integral(e: n.Expr, ints) -> bool:
    """`is_integral`, also through selects and reductions of integers (an argmax loop's index,
    a count `acc += 1`); a load's kind is not known here: not proved."""
    match e:
        case n.Select(_, a, b):
            return _surely_integral(a, ints) and _surely_integral(b, ints)
        case n.Bin(op, a, b) if op in ("+", "-", "*", "//", "%", "min", "max"):
            return _surely_integral(a, ints) and _surely_integral(b, ints)
        case n.Reduce(op, axes, body) if op not in (n.ReduceOp.ARGMAX, n.ReduceOp.ARGMIN):
            return _surely_integral(body, ints | {a.var for a in axes})
    return is_integral(e, ints)


def _to_real(v: n.Expr) -> n.Expr:
    if isinstance(v, n.Const) and isinstance(v.value, int) and not isinstance(v.value, bool):
        return n.Const(float(v.value))
    if isinstance(v, n.ArrayLit):
        return _real_array(v)
    from phc.ir.simplify import is_real
    if isinstance(v, n.Const) or is_real(v):
        return v
    return simplify(n.Un("float", v))


def _integer_valued(v: n.Expr, ints) -> bool:
    """Provably an integer (or integer tensor) value: what a declaration of ℝ must convert."""
    from phc.ir.simplify import is_integral
    match v:
        case n.Tabulate(_, body):
            return _integer_valued(body, ints)
        case n.Full(_, _, dtype) | n.ArrayLit(_, dtype):
            return dtype is n.DType.I64
    return is_integral(v, ints)


def _is_index_of(v: n.Expr, axis: n.Axis) -> bool:
    """`i` or `float(i)` (an index stored into a variable declared ℝ)."""
    return v == n.Sym(axis.var) or v == n.Un("float", n.Sym(axis.var))


def _real_array(v: n.ArrayLit) -> n.ArrayLit:
    items = tuple(_real_array(i) if isinstance(i, n.ArrayLit) else _to_real(i) for i in v.items)
    return n.ArrayLit(items, n.DType.F32)


def _cheap(v: n.Expr) -> bool:
    """Values that may be recomputed at each use: constants, shapes, loads, arithmetic on them,
    and pending allocations (which a following nest may overwrite)."""
    if isinstance(v, n.Full):
        return True
    return not contains(v, lambda x: isinstance(x, (n.Reduce, n.Tabulate, n.Call, n.Sample, n.ArrayLit, n.Full, n.Reshape, n.Slice, n.Subscript)))


def _flatten_index(e: A.Index, types=None):
    """`x[i][j]` and `x[i, j]` both give (x, (i, j)) (not through a list: `data[0][1]`)."""
    from phc.types import TupleT
    idx = list(e.indices)
    base = e.value
    while isinstance(base, A.Index) and not any(isinstance(i, A.Slice) for i in base.indices) \
            and not isinstance((types or {}).get(base.value), TupleT):
        idx = list(base.indices) + idx
        base = base.value
    return base, tuple(idx)


def _root_name(e: n.Expr) -> str:
    return e.name if isinstance(e, n.Sym) else ""


def _stored_tensors(loop: A.For) -> set[str]:
    """Names of the tensors a loop stores into (`r[i] = …`, `r[i] += …`)."""
    out = set()
    for x in A.walk(loop):
        if isinstance(x, (A.Assign, A.AugAssign)) and isinstance(x.target, A.Index):
            base, _ = _flatten_index(x.target)
            if isinstance(base, A.Name):
                out.add(base.id)
    return out


def _reads_outside(stmts, loop, name: str) -> bool:
    """A read of `name` in `stmts` outside the subtree `loop` (a plain `name = …` target is not
    a read; every other occurrence is)."""
    def reads(node) -> bool:
        if node is loop:
            return False
        if isinstance(node, A.Assign) and isinstance(node.target, A.Name):
            return reads(node.value)
        # a loop or comprehension that binds `name` itself: its body reads its own binding
        if isinstance(node, A.For) and name in node.vars or isinstance(node, A.Comprehension) and node.var == name:
            return node.range is not None and reads(node.range)
        if isinstance(node, A.Name) and node.id == name:
            return True
        return any(reads(c) for c in A.children(node))
    return any(reads(st) for st in stmts)


def _last_point(axes, ints) -> dict[str, n.Expr]:
    """Each axis variable at the last iteration of a rectangular nest."""
    return {a.var: simplify(n.Bin("-", a.hi, n.Const(1)), ints) for a in axes}


def _runs_at_least_once(axes, ints) -> bool:
    """Precondition of taking the last iteration's value unguarded: every extent is provably > 0."""
    return all((c := as_int(simplify(extent(a), ints))) is not None and c > 0 for a in axes)


def _after_last_iteration(value: n.Expr, old: n.Expr, axes, ints) -> n.Expr:
    """A name's value after a rectangular nest whose last iteration gives it `value`: `old` when
    the nest runs no iteration (an empty range keeps what was there)."""
    if _runs_at_least_once(axes, ints):
        return value
    ran = None
    for a in axes:
        c = n.Bin(">", a.hi, a.lo)
        ran = c if ran is None else n.Bin("and", ran, c)
    return simplify(n.Select(ran, value, old), ints)


def _assigned_in_order(stmts) -> list[str]:
    return A.assigned_in_order(stmts)


def _assigned_names(stmts) -> set[str]:
    return set(A.assigned_in_order(stmts))


def _read_names(s) -> set[str]:
    return {x.id for x in A.walk(s) if isinstance(x, A.Name)}


def _group_grads(stmts: list[n.Stmt], builtin: bool = True) -> list[n.Stmt]:
    """Adjacent `t = grad(y, x)` with the same `y` become one `Grads` (one backward pass);
    not where the program defines its own `grad`."""
    out: list[n.Stmt] = []
    for s in stmts:
        g = _as_grad(s) if builtin else None
        if g is not None and out and isinstance(out[-1], n.Grads) and out[-1].y == g[1] \
                and not any(uses(w, t) for t in out[-1].targets for w in (g[1], g[2])):
            prev = out[-1]
            out[-1] = n.Grads(prev.targets + (g[0],), prev.y, prev.wrt + (g[2],), prev.span)
        elif g is not None:
            out.append(n.Grads((g[0],), g[1], (g[2],), s.span))
        else:
            out.append(s)
    return out


def _as_grad(s):
    if isinstance(s, n.Assign) and isinstance(s.value, n.Call) and s.value.func == "grad" \
            and s.value.obj is None and len(s.value.args) == 2:
        return s.name, s.value.args[0], s.value.args[1]
    return None


def _grad_target_names(stmts) -> set[str]:
    """Names that some `grad(y, name)` in these statements differentiates."""
    return {x.args[1].id for s in stmts for x in A.walk(s)
            if isinstance(x, A.Call) and isinstance(x.func, A.Name) and x.func.id == "grad"
            and len(x.args) == 2 and isinstance(x.args[1], A.Name)}


def _single_return(block) -> bool:
    return len(block) == 1 and isinstance(block[0], n.Return) and block[0].value is not None


def _dead_code(stmts: list[n.Stmt]) -> list[n.Stmt]:
    """Drop top-level assignments of pure values that nothing after them reads."""
    from phc.ir.analysis import stmt_reads, walk_stmts
    out = list(stmts)
    changed = True
    while changed:
        changed = False
        for k, s in enumerate(out):
            if _binds_after_loop(s) or isinstance(s, n.Assign) and not _impure(s.value):
                later = set().union(*(stmt_reads(x) for st in out[k + 1:] for x in walk_stmts([st]))) \
                    if k + 1 < len(out) else set()
                if not (_bound_names(s) & later):
                    del out[k]
                    changed = True
                    break
    return out


def _binds_after_loop(s) -> bool:
    """`if hi > lo: i = hi - 1; t = …` (bind_after_loop): pure assignments under a guard."""
    return isinstance(s, n.If) and not s.orelse and all(
        isinstance(x, n.Assign) and not _impure(x.value) for x in s.body)


def _bound_names(s) -> set[str]:
    return {x.name for x in s.body} if isinstance(s, n.If) else {s.name}


def _fold_return(stmts: list[n.Stmt]) -> list[n.Stmt]:
    """`%x = e; return x` is `return e` when nothing else reads x."""
    from phc.ir.analysis import stmt_reads, walk_stmts
    if len(stmts) >= 2 and isinstance(stmts[-1], n.Return) and stmts[-1].value is not None \
            and isinstance(stmts[-2], n.Assign) and stmts[-1].value == n.Sym(stmts[-2].name):
        name = stmts[-2].name
        if not any(name in stmt_reads(x) for st in stmts[:-2] for x in walk_stmts([st])):
            return stmts[:-2] + [n.Return(stmts[-2].value, stmts[-1].span)]
    return stmts


def _eliminate_dead_allocs(stmts: list[n.Stmt]) -> list[n.Stmt]:
    """`r = full(…)` directly overwritten by `r = …` that does not read r: drop the first."""
    out: list[n.Stmt] = []
    for s in stmts:
        if isinstance(s, n.Assign) and out and isinstance(out[-1], n.Assign) and out[-1].name == s.name \
                and isinstance(out[-1].value, n.Full) and not uses(s.value, s.name):
            out.pop()
        out.append(s)
    return out
