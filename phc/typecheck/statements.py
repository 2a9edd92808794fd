"""The typing rules of statements: declarations, assignments and stores, loops, `if`,
`return`, unpacking."""
from __future__ import annotations

from phc import ast
from phc.ast import Scalar, Span
from phc.builtins import fits_kind, numeric
from phc.diagnostics import error, warning
from phc.types import (ClassT, NAT, NONE, NoneT, REAL, ScalarT, TensorT, TupleT, Type, UNKNOWN,
                       UnknownT)
from phc.typecheck.shapes import (indexes_plainly, _broadcasts_into, _describe, _kind_hint, _merge, _misfit,
                                  _name_span, _plural, _same_rank, element_kind_of)
from phc.typecheck.state import Frame, Var


class StatementRules:
    """Rules of the checker (a mixin of `Checker`): the typing rules of statements."""

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
            t = _sized_by_value(t, v)
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
                        value.span, "call it on a line of its own, or give the function a `return` "
                        "with a value")
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
        if s.range is None:
            for v in s.vars:
                if not indexes_plainly(v, s.body):
                    self.report(error, f"cannot infer the range of `{v}`: it indexes no array plainly",
                                s.span, f"write `for {v}: ℕ(n):`, or index an array with `{v}` itself")
        if s.range is None and len(s.vars) == 1:
            extent = self.loop_extent(s.vars[0], s.body)
        self.count_loop(s, f, extent)

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


def _sized_by_value(declared: Type, value: Type) -> Type:
    """The declared kind, with the sizes the value has where it has them: a declaration may
    name its sizes loosely (upstream's `results: ℝ[cols, rows] = zero_2d_array(rows, cols)`),
    the value's are computed. Two different numbers were reported already."""
    if not (isinstance(declared, TensorT) and isinstance(value, TensorT)) \
            or declared.rank != value.rank:
        return declared
    return TensorT(declared.kind, tuple(d if v is None else v
                                        for d, v in zip(declared.dims, value.dims)))
