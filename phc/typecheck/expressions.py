"""The typing rules of expressions: literals, names, arrays, operators, indexing,
comprehensions and samples."""
from __future__ import annotations

import difflib

from phc import ast
from phc.ast import Scalar, Span
from phc.builtins import (BUILTINS, as_extent, dims_clash, dims_of, join_dim, join_kind, numeric,
                          with_kind)
from phc.diagnostics import error
from phc.types import (SymT, ClassT, Dim, FuncT, INT, NAT, REAL, ScalarT, TensorT, TupleT, Type, UNKNOWN,
                       UnknownT)
from phc.typecheck.shapes import _describe, _is_num, _plural, _result_kind, _slice_len, indexes_plainly
from phc.typecheck.state import Frame, FuncInfo, Var


class ExpressionRules:
    """Rules of the checker (a mixin of `Checker`): the typing rules of expressions."""

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

    def e_array(self, e: ast.ArrayLit, f: Frame, hint) -> Type:
        items = [self.expr(i, f, hint) for i in e.items]
        if not items:
            return TensorT(hint or Scalar.REAL, (0,))
        if any(isinstance(t, SymT) for t in items):
            return SymT("list")            # `lambdify([x, y], expr)`: the symbols in order
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
        if isinstance(t, SymT) and e.op in "-+":
            return SymT("Expr")
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
        if isinstance(a, SymT) or isinstance(b, SymT):
            return self.symbolic_arith(e, a, b)
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

    def symbolic_arith(self, e: ast.BinOp, a: Type, b: Type) -> Type:
        """Arithmetic with a symbol (sympy) and numbers or other symbolic values: an expression."""
        for side, t in ((e.left, a), (e.right, b)):
            if not isinstance(t, (SymT, ScalarT, UnknownT)) or isinstance(side, ast.Str):
                self.report(error, f"`{e.op}` combines a symbolic value with numbers or other "
                            f"symbolic values, not {'a string' if isinstance(side, ast.Str) else t}",
                            side.span, "symbolic expressions hold symbols and numbers, not tensors")
                return UNKNOWN
        if e.op in ("@", "and", "or"):
            self.report(error, f"`{e.op}` has no meaning for symbolic values", e.span)
            return UNKNOWN
        return SymT("Expr")

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
            if not indexes_plainly(e.var, e.body):
                # class V: with no plain index the comprehension has no defined length
                self.report(error, f"cannot infer the range of `{e.var}`: it indexes no array plainly",
                            e.span, f"write `for {e.var}: ℕ(n) -> …`, or index an array with `{e.var}` itself")
                return UNKNOWN
        if isinstance(body, UnknownT):
            return UNKNOWN
        if not _is_num(body):
            self.report(error, f"a comprehension must produce numbers, not {body}", e.body.span)
            return UNKNOWN
        kind = Scalar.REAL if hint is Scalar.REAL else body.kind
        return TensorT(kind, (size,) + dims_of(body))

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
