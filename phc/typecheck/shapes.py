"""Shapes: dimensions as numbers, names and formulas; a size read from an expression; a value
fitted where a type is declared; the helpers of the shape rules."""
from __future__ import annotations

from phc import ast
from phc.ast import Scalar, Span
from phc.builtins import as_extent, dim_op, dims_clash, dims_of, fits_kind, join_kind, subst_dim
from phc.diagnostics import error, warning
from phc.types import (SymT, ClassT, Dim, FuncT, NAT, NoneT, ScalarT, TensorT, TupleT, Type, UNKNOWN,
                       UnknownT)
from phc.typecheck.state import COMPARE, Frame, LOGIC, _DIM_OPS


class ShapeRules:
    """Rules of the checker (a mixin of `Checker`): shapes."""

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

    def loop_extent(self, var: str, body) -> Dim:
        for stmt in body:
            size = self.inferred_extent(var, stmt)
            if size is not None:
                return size
        return None

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


def indexes_plainly(var: str, body) -> bool:
    """Whether `var` is an index of some array in `body`, as itself (`x[i]`, `x[k, i]`, `x[k][i]`):
    the only thing a `for i:` or `for i ->` can take its range from (docs/language.md)."""
    nodes = ast.walk(body) if not isinstance(body, tuple) else (x for st in body for x in ast.walk(st))
    return any(isinstance(node, ast.Index) and any(isinstance(ix, ast.Name) and ix.id == var
                                                  for ix in node.indices) for node in nodes)


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
    if isinstance(decl, SymT) or isinstance(val, SymT):
        return None if isinstance(decl, SymT) and isinstance(val, SymT) else "type"
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

__all__ = ["ClassInfo", "FuncInfo", "TypedProgram", "check"]
