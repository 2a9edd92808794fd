"""Level 0: the typed AST written out literally as a Python module — the reference semantics.

Every statement becomes the Python statement it reads as: loops are Python loops, a comprehension
is a Python loop whose values are stacked into a new tensor, a real number is a float32 0-d
tensor, autograd runs through everything. The module has the optimised module's interface (the
header mark, functions, classes with `_fields`, `main()` returning the top-level variables, a
`# @LINE:COL-END_LINE:END_COL` tag on every line), so `phc run`, `phc compile` and the tests treat both
alike. The rules are in docs/language.md ("Level 0: the reference semantics"); the runtime side
is `runtime/lit.py`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from phc import ast as A
from phc.ast import Scalar
from phc.emit import literal_grads as G
from phc.emit.module import HEADER_MARK, Names
from phc.emit.places import Places, line_tag, place_text
from phc.types import ScalarT, SymT, TensorT, TupleT

MATH = ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "sigmoid")
RUNTIME_CALLS = {"physika_print": "rt.physika_print", "print": "rt.print", "summary": "rt.summary",
                 "create_dataset": "rt.create_dataset", "create_mnist": "rt.create_mnist",
                 "create_digits": "rt.create_digits", "shuffle_indices": "rt.shuffle_indices",
                 "zeros": "rt.zeros", "ones": "rt.ones", "argmax": "rt.argmax", "sum": "rt.sum",
                 "abs": "rt.abs", "int": "rt.int", "float": "rt.lit.as_real"}
PRINTING = ("physika_print", "print", "summary")


class LiteralError(Exception):
    """A construct the literal emitter cannot write (the message says which, `span` where)."""

    def __init__(self, message: str, span=A.NOSPAN):
        super().__init__(message)
        self.span = span


def emit_literal(typed, source: str, filename: str | None = None) -> str:
    """The level-0 module of a checked program."""
    return LiteralModule(typed).render(source, filename or typed.program.filename)


def _real(t) -> bool:
    return isinstance(t, (ScalarT, TensorT)) and t.kind is Scalar.REAL


def _zero(texpr: A.TypeExpr) -> str:
    """A field declared without a value in `class C(…):`: zeros of its type where the sizes
    are numbers (a symbolic size has no value yet: None, as upstream)."""
    if texpr.scalar is None or not all(isinstance(d, A.Num) for d in texpr.dims):
        return "None"
    real = texpr.scalar is Scalar.REAL
    if not texpr.dims:
        return "rt.lit.r(0.0)" if real else "0"
    return f"rt.lit.zeros([{', '.join(d.text for d in texpr.dims)}], {real})"


def _complex(t) -> bool:
    return isinstance(t, (ScalarT, TensorT)) and t.kind is Scalar.COMPLEX


def _tag(span) -> str:
    t = place_text(span)
    return f"  # {t}" if t else ""


# the expressions that can fail at run time: a line is tagged with the one it computes
_FAILING = (A.BinOp, A.UnaryOp, A.Index, A.Call)


@dataclass
class Scope:
    """What the emitter knows while writing one body."""
    key: str                                     # "main", "f", "C.m" (as literal_grads names them)
    variables: set[str]                          # locals and parameters (all top-level names in main)
    types: dict                                  # variable -> semantic type
    targets: set[str] = field(default_factory=set)   # names some `grad` differentiates here
    stored: set[str] = field(default_factory=set)    # names written in place here
    symbols: dict[str, str] = field(default_factory=dict)   # shape symbol -> Python expression
    ints: set[str] = field(default_factory=set)  # loop and comprehension variables (Python ints)
    owner: str | None = None
    ret: A.TypeExpr | None = None


class Lines:
    def __init__(self, indent: int = 1, places: Places | None = None):
        self.lines: list[str] = []
        self.indent = indent
        self.places = places if places is not None else Places()

    def add(self, text: str, span=None) -> None:
        """A line of the statement at `span`, tagged with the expression it computes where known."""
        line = "    " * self.indent + text
        tag = line_tag(line, self.places.take(text)) or place_text(span)
        self.lines.append(line + (f"  # {tag}" if tag else ""))


class LiteralModule:
    def __init__(self, typed):
        self.typed = typed
        self.types = typed.expr_types
        prog = typed.program
        self.functions = {s.name: s for s in prog.body if isinstance(s, A.FuncDef)}
        self.classes = {s.name: s for s in prog.body if isinstance(s, A.ClassDef)}
        self.names = Names(set(self.functions), set(self.classes))
        self.bodies = G.bodies(prog)
        self.grad_fields = G.grad_fields(self.bodies, self.types)
        scopes = G.grad_targets(self.bodies, self.types)
        self.targets = scopes.targets
        self.grad_fields |= scopes.fields
        fields = {c: tuple(cd.field_names()) for c, cd in self.classes.items()}
        self.create_graph = G.higher_order(self.bodies, self.types, self.grad_fields, fields)
        self.partial_vars = 0          # `grad(f(…, x, …), x)` lambdas: _phc_d1, _phc_d2, …
        self.globals = set(typed.globals) | G.assigned_names(self.bodies[0].stmts)
        self.places = Places()       # the spanned expressions written, not yet on a line

    # ---- the module

    def render(self, source: str, filename: str) -> str:
        functions = [self.function(f) for f in self.functions.values()]
        classes = [self.cls(c) for c in self.classes.values()]
        digest = hashlib.sha256(source.encode("utf-8", "replace")).hexdigest()[:16]
        name = Path(filename).name
        head = [f"{HEADER_MARK} phc 0.1.0 from {name} sha256:{digest} backend:torch opt:0",
                f"# Generated by phc from {name} at level 0 (the literal reference semantics): do not edit.",
                "# Importing this module runs nothing; `main()` runs the top-level program.",
                "import torch", "", "from phc import runtime as rt", "import phc.runtime.lit", "", "",
                "# ---------------------------------------------------------------- functions", ""]
        out = head
        for f in functions:
            out += [f, "", ""]
        out += ["# ---------------------------------------------------------------- classes", ""]
        for c in classes:
            out += [c, "", ""]
        out += ["# ---------------------------------------------------------------- the program",
                self.main(), "", "", 'if __name__ == "__main__":', "    main()", ""]
        return "\n".join(out)

    def py(self, name: str) -> str:
        return self.names.py(name)

    # ---- bodies

    def scope_for(self, key: str, f: A.FuncDef | None, owner: A.ClassDef | None) -> Scope:
        if f is None:
            return Scope("main", set(self.globals), dict(self.typed.globals),
                         self.targets.get("main", set()), G.stored_names(self.bodies[0].stmts))
        info = (self.typed.classes[owner.name].methods if owner else self.typed.functions).get(f.name)
        types = dict(info.locals) if info else {}
        if info:
            types.update(info.params)
        variables = {p.name for p in f.params} | G.assigned_names(f.body)
        sc = Scope(key, variables, types, self.targets.get(key, set()), G.stored_names(f.body),
                   owner=owner.name if owner else None, ret=f.ret)
        for p in f.params:
            self.bind_symbols(sc, self.py(p.name), p.type)
        if owner is not None:
            for name, texpr in _class_members(owner):
                self.bind_symbols(sc, f"this.{self.py(name)}", texpr)
        return sc

    def bind_symbols(self, sc: Scope, holder: str, texpr: A.TypeExpr) -> None:
        """`def f(A: ℝ[m, n])`: the symbols m and n are A's sizes wherever the body writes them."""
        for k, d in enumerate(texpr.dims):
            # a signature's symbol is the size it names, even where a top-level variable has
            # that name too (upstream's for.phyk: `n` global, `u: ℝ[n]` a parameter)
            if isinstance(d, A.Name) and d.id not in sc.variables:
                sc.symbols.setdefault(d.id, f"rt.dim({holder}, {k})")

    def function(self, f: A.FuncDef, owner: A.ClassDef | None = None) -> str:
        key = f"{owner.name}.{f.name}" if owner else f.name
        sc = self.scope_for(key, f, owner)
        params = [self.py(p.name) for p in f.params]
        name = "__call__" if f.is_lambda else self.py(f.name)
        code = Lines(1, self.places)
        for p in f.params:
            self.bind_parameter(code, sc, p)
        self.block(code, sc, f.body)
        if not code.lines:
            code.add("pass")
        head = f"def {name}({', '.join((['this'] if owner else []) + params)}):{_tag(f.span)}"
        doc = f'    """Physika `{f.name}`, written literally."""'
        return "\n".join([head, doc] + code.lines)

    def bind_parameter(self, code: Lines, sc: Scope, p: A.Param) -> None:
        v = self.py(p.name)
        value = v
        if p.type.scalar is Scalar.REAL:
            value = f"rt.lit.as_real({value})"
        if p.name in sc.targets:
            value = self.leafy(value, p.name, sc)
        if value != v:
            code.add(f"{v} = {value}", p.span)

    def leafy(self, value: str, name: str, sc: Scope) -> str:
        return f"rt.lit.leafy({value}, copy=True)" if name in sc.stored else f"rt.lit.leafy({value})"

    def main(self) -> str:
        sc = self.scope_for("main", None, None)
        code = Lines(1, self.places)
        top = sorted(self.globals)
        if top:
            code.add(f"global {', '.join(self.py(n) for n in top)}")
        self.block(code, sc, self.bodies[0].stmts)
        pairs = ", ".join(f"({n!r}, {self.py(n)!r})" for n in top)
        code.add("_g = globals()")
        code.add(f"return {{name: _g[py] for name, py in ({pairs}{',' if len(top) == 1 else ''}) if py in _g}}")
        return "\n".join(["def main():", '    """Run the top-level program; return its variables."""'] + code.lines)

    def cls(self, c: A.ClassDef) -> str:
        members = _class_members(c)
        defaults = {d.name: d.value for d in c.fields if d.value is not None}
        if c.params:        # `class C(a: ℝ):` takes only its parameters: fields start at zero
            defaults.update({d.name: None for d in c.fields if d.value is None})
        params = [self.py(n) + (" = rt.lit.MISSING" if n in defaults else "") for n, _ in members]
        lines = [f"class {self.py(c.name)}:{_tag(c.span)}",
                 f'    """Physika class `{c.name}`, written literally."""',
                 f"    _fields = {tuple(n for n, _ in members)!r}", "",
                 f"    def __init__({', '.join(['this'] + params)}):{_tag(c.span)}"]
        code = Lines(2, self.places)
        sc = Scope(f"{c.name}.__init__", {n for n, _ in members}, {}, owner=c.name)
        for n, texpr in members:
            if n in defaults:
                code.add(f"if {self.py(n)} is rt.lit.MISSING:")
                code.indent += 1
                start = self.expr(defaults[n], sc) if defaults[n] is not None else _zero(texpr)
                code.add(f"{self.py(n)} = {start}", defaults[n].span if defaults[n] is not None else c.span)
                code.indent -= 1
            code.add(f"this.{self.py(n)} = {self.field_value(c.name, n, texpr, self.py(n))}")
        if not code.lines:
            code.add("pass")
        lines += code.lines
        for m in c.methods:
            lines.append("")
            lines += ["    " + x if x else x for x in self.function(m, c).splitlines()]
        return "\n".join(lines)

    def field_value(self, cls: str, name: str, texpr: A.TypeExpr | None, value: str) -> str:
        if (cls, name) in self.grad_fields or (cls, G.ALL_FIELDS) in self.grad_fields:
            return f"rt.lit.field_leaf({value})"
        if texpr is not None and texpr.scalar is Scalar.REAL:
            return f"rt.lit.as_real({value})"
        return value

    # ---- statements

    def block(self, code: Lines, sc: Scope, stmts) -> None:
        before = len(code.lines)
        for s in stmts:
            self.stmt(code, sc, s)
        if len(code.lines) == before:
            code.add("pass")

    def stmt(self, code: Lines, sc: Scope, s) -> None:
        self.places.clear()
        match s:
            case A.Decl(name, texpr, value):
                code.add(f"{self.py(name)} = {self.bind_name(name, self.decl_value(texpr, value, sc), sc, texpr)}", s.span)
            case A.Assign(target, value):
                self.assign(code, sc, target, self.bound(value, sc), s.span)
            case A.AugAssign(target, op, value):
                value = self.places.note(self.binop(op, self.expr(target, sc), self.expr(value, sc)), s.span)
                self.assign(code, sc, target, value, s.span)
            case A.ExprStmt(e):
                code.add(self.expr_stmt(e, sc), s.span)
            case A.Return(A.TupleExpr(items)) if isinstance(sc.ret, A.TupleTypeExpr) \
                    and len(items) == len(sc.ret.items):
                values = [self.convert(self.bound(v, sc), t) for v, t in zip(items, sc.ret.items)]
                code.add(f"return ({', '.join(values)})", s.span)
            case A.Return(value):
                ret = sc.ret if isinstance(sc.ret, A.TypeExpr) else None
                code.add("return" if value is None else f"return {self.convert(self.bound(value, sc), ret)}", s.span)
            case A.Unpack(targets, value):
                self.unpack(code, sc, targets, value, s.span)
            case A.If(cond, body, orelse):
                code.add(f"if {self.expr(cond, sc)}:", s.span)
                self.sub_block(code, sc, body)
                if orelse:
                    code.add("else:")
                    self.sub_block(code, sc, orelse)
            case A.For():
                self.for_loop(code, sc, s)
            case A.FuncDef() | A.ClassDef():
                pass        # nested definitions are not part of the numeric core (as at level 2)
            case _:
                raise LiteralError(f"cannot write a {type(s).__name__} statement", A.span_of(s))

    def unpack(self, code: Lines, sc: Scope, targets, value, span) -> None:
        """`a, b = v`: every item computed first (`a, b = b, a` swaps), then bound in order."""
        tmp = f"_unpacked_{span.line}_{span.col}"
        if isinstance(value, A.Sample):
            items = self.types.get(value)
            summed = isinstance(items, TupleT) and isinstance(items.items[1], ScalarT)
            shape = value.shape or (targets[0].type.dims if targets[0].type is not None else ())
            args = [self.expr(p, sc) for p in value.params] + [self.expr(d, sc) for d in shape]
            code.add(f"{tmp} = rt.draw_with_log_prob({value.dist!r}, {', '.join(args)}, "
                     f"summed={summed})", span)
        else:
            code.add(f"{tmp} = rt.unpack({self.expr(value, sc)}, {len(targets)})", span)
        for k, t in enumerate(targets):
            code.add(f"{self.py(t.name)} = {self.bind_name(t.name, f'{tmp}[{k}]', sc, t.type)}", span)

    def sub_block(self, code: Lines, sc: Scope, stmts) -> None:
        code.indent += 1
        self.block(code, sc, stmts)
        code.indent -= 1

    def decl_value(self, texpr: A.TypeExpr, value, sc: Scope) -> str:
        real = texpr.scalar is Scalar.REAL
        if value is None:
            if texpr.dims:
                return f"rt.lit.zeros([{', '.join(self.expr(d, sc) for d in texpr.dims)}], {real})"
            return "rt.lit.r(0.0)" if real else ("0" if texpr.scalar is not None else "None")
        if isinstance(value, A.Sample) and not value.shape and texpr.dims:
            # `x: ℝ[3] ~ 𝒩(0, 1)` takes the shape of the declaration
            value = A.Sample(value.dist, value.params, texpr.dims, value.span)
        return self.bound(value, sc)

    def bind_name(self, name: str, value: str, sc: Scope, texpr: A.TypeExpr | None = None) -> str:
        """The value a name gets: of its declared (else inferred) kind; a grad target joins a graph."""
        if texpr is not None:
            value = self.convert(value, texpr)
        elif _real(sc.types.get(name)):
            value = f"rt.lit.as_real({value})"
        if name in sc.targets:
            value = self.leafy(value, name, sc)
        return value

    def convert(self, value: str, texpr: A.TypeExpr | None) -> str:
        if texpr is not None and texpr.scalar is Scalar.REAL:
            return f"rt.lit.as_real({value})"
        if texpr is not None and texpr.scalar is Scalar.COMPLEX:
            return f"rt.as_complex({value})"
        return value

    def assign(self, code: Lines, sc: Scope, target, value: str, span) -> None:
        match target:
            case A.Name(name):
                code.add(f"{self.py(name)} = {self.bind_name(name, value, sc)}", span)
            case A.Index():
                code.add(f"{self.index(target, sc, store=True)} = {value}", span)
            case A.Attribute(obj, attr):
                cls = G.class_of(obj, sc.owner, self.types)
                texpr = dict(_class_members(self.classes[cls])).get(attr) if cls in self.classes else None
                code.add(f"{self.expr(obj, sc)}.{self.py(attr)} = {self.field_value(cls, attr, texpr, value)}", span)
            case _:
                raise LiteralError("cannot assign to this target", A.span_of(target))

    def expr_stmt(self, e, sc: Scope) -> str:
        if isinstance(e, A.Call) and isinstance(e.func, A.Name) and e.func.id in PRINTING \
                and not self.user_named(e.func.id, sc):
            return self.expr(e, sc)
        return f"rt.print_expr({self.expr(e, sc)})"

    def for_loop(self, code: Lines, sc: Scope, s: A.For) -> None:
        depth = 0
        for var in s.vars:
            rng = self.loop_range(s.range, s.body, var, sc, s.span)
            sc.ints.add(var)
            code.add(f"for {self.py(var)} in {rng}:", s.span)
            code.indent += 1
            depth += 1
        self.block(code, sc, s.body)
        code.indent -= depth

    def loop_range(self, rng: A.Range | None, body, var: str, sc: Scope, span) -> str:
        if rng is None:
            return f"range({self.inferred_extent(body, var, sc, span)})"
        if rng.lo is None:
            return f"rt.nat_range({self.expr(rng.hi, sc)})"
        return f"rt.nat_range({self.expr(rng.lo, sc)}, {self.expr(rng.hi, sc)})"

    def inferred_extent(self, body, var: str, sc: Scope, span) -> str:
        """`for i:` ranges over the first axis that `i` indexes plainly (`x[i]`, `x[k, i]`)."""
        for node in (x for s in body for x in A.walk(s)):
            if isinstance(node, A.Index):
                base, idx = _flatten_index(node, self.types)
                for k, i in enumerate(idx):
                    if isinstance(i, A.Name) and i.id == var:
                        return f"rt.dim({self.expr(base, sc)}, {k})"
        raise LiteralError(f"cannot infer the range of `{var}`: it indexes no array plainly", span)

    # ---- expressions

    def bound(self, e, sc: Scope) -> str:
        """An expression whose value gets bound: an indexed read is copied (a value, not a view)."""
        if isinstance(e, A.Index) and not isinstance(self.types.get(e.value), TupleT):
            return f"rt.lit.element({self.expr(e, sc)})"
        return self.expr(e, sc)

    def user_named(self, name: str, sc: Scope) -> bool:
        return name in sc.variables or name in self.globals or name in self.functions or name in self.classes

    def expr(self, e, sc: Scope) -> str:
        text = self._expr(e, sc)
        return self.places.note(text, e.span) if isinstance(e, _FAILING) else text

    def _expr(self, e, sc: Scope) -> str:
        match e:
            case A.Num(value) if isinstance(value, complex):
                return f"rt.as_complex({value!r})"
            case A.Num(value):
                if isinstance(value, float) or _real(self.types.get(e)):
                    return f"rt.lit.r({float(value)!r})"
                return repr(value)
            case A.Str(value):
                return repr(value)
            case A.Name(name):
                if name in sc.variables or name in sc.ints:
                    return self.py(name)
                if name in sc.symbols:
                    return sc.symbols[name]
                return self.py(name)
            case A.This():
                return "this"
            case A.ArrayLit(items) if isinstance(self.types.get(e), SymT):
                return f"[{', '.join(self.expr(i, sc) for i in items)}]"     # symbols, in order
            case A.ArrayLit() if _complex(self.types.get(e)):
                return f"rt.complex_array({self.array_items(e, sc)})"
            case A.ArrayLit():
                return f"rt.lit.array({self.array_items(e, sc)}, {_real(self.types.get(e))})"
            case A.TupleExpr(items):
                return f"({''.join(self.bound(i, sc) + ', ' for i in items)})"
            case A.Attribute(obj, attr) if attr in G.LEARNABLE_LISTS and not self.is_field(obj, attr, sc):
                cls = self.classes[G.class_of(obj, sc.owner, self.types)]
                return f"rt.learnable_params({self.expr(obj, sc)}, {cls.learnable_names()!r})"
            case A.BinOp(op, left, right) if isinstance(self.types.get(e), SymT):
                # sympy's own arithmetic, on Python numbers (not float32 tensors)
                return f"({self.symbolic_operand(left, sc)} {op} {self.symbolic_operand(right, sc)})"
            case A.BinOp(op, left, right):
                return self.binop(op, self.expr(left, sc), self.expr(right, sc))
            case A.UnaryOp("-", x):
                return f"(-{self.expr(x, sc)})"
            case A.UnaryOp("+", x):
                return self.expr(x, sc)
            case A.UnaryOp("not", x):
                return f"rt.lit.not_({self.expr(x, sc)})"
            case A.Attribute(obj, attr):
                return f"{self.expr(obj, sc)}.{self.py(attr)}"
            case A.Index():
                return self.index(e, sc)
            case A.Call():
                return self.call(e, sc)
            case A.Comprehension():
                return self.comprehension(e, sc)
            case A.Sample(dist, params, shape):
                args = [self.expr(p, sc) for p in params] + [self.expr(d, sc) for d in shape]
                return f"rt.sample_{dist}({', '.join(args)})"
        raise LiteralError(f"cannot write a {type(e).__name__} expression", A.span_of(e))

    def is_method(self, obj, name: str, sc: Scope) -> bool:
        cls = G.class_of(obj, sc.owner, self.types)
        return cls not in self.classes or any(m.name == name for m in self.classes[cls].methods) \
            or name in self.classes[cls].field_names()

    def is_field(self, obj, attr: str, sc: Scope) -> bool:
        cls = G.class_of(obj, sc.owner, self.types)
        return cls in self.classes and attr in self.classes[cls].field_names()

    def symbolic_operand(self, e, sc: Scope) -> str:
        return _number_literal(e) or f"rt.symbolic.number({self.expr(e, sc)})"

    def binop(self, op: str, a: str, b: str) -> str:
        special = {"/": "rt.lit.div", "**": "rt.lit.pow", "@": "rt.lit.matmul",
                   "and": "rt.lit.and_", "or": "rt.lit.or_"}
        if op in special:
            return f"{special[op]}({a}, {b})"
        return f"({a} {op} {b})"

    def array_items(self, e: A.ArrayLit, sc: Scope) -> str:
        items = [self.array_items(i, sc) if isinstance(i, A.ArrayLit) else self.scalar_item(i, sc) for i in e.items]
        return f"[{', '.join(items)}]"

    def scalar_item(self, e, sc: Scope) -> str:
        return _number_literal(e) or self.expr(e, sc)

    def index(self, e: A.Index, sc: Scope, store: bool = False) -> str:
        base = self.expr(e.value, sc)
        subs = [self.subscript(i, sc) for i in e.indices]
        if not store and any(isinstance(i, A.Slice) and i.step is not None for i in e.indices):
            # a stepped slice may run backwards, which torch's indexing cannot
            items = [f"slice({', '.join(self.slice_parts(i, sc))})" if isinstance(i, A.Slice) else s
                     for i, s in zip(e.indices, subs)]
            return f"rt.lit.getitem({base}, ({', '.join(items)},))"
        return f"{base}[{', '.join(subs)}]"

    def slice_parts(self, i: A.Slice, sc: Scope) -> list[str]:
        return ["None" if p is None else self.int_value(p, sc) for p in (i.lo, i.hi, i.step)]

    def subscript(self, i, sc: Scope) -> str:
        if isinstance(i, A.Slice):
            parts = ["" if p is None else self.int_value(p, sc) for p in (i.lo, i.hi, i.step)]
            return ":".join(parts[:2]) + (f":{parts[2]}" if i.step is not None else "")
        return self.int_value(i, sc)

    def int_value(self, e, sc: Scope) -> str:
        """An index: a real one is truncated toward zero (`probs[label]` with `label: ℝ`)."""
        if isinstance(e, A.Num) and isinstance(e.value, int):
            return repr(e.value)
        if isinstance(e, A.Name) and e.id in sc.ints:
            return self.py(e.id)
        return f"rt.to_index({self.expr(e, sc)})"

    def comprehension(self, e: A.Comprehension, sc: Scope) -> str:
        rng = self.loop_range(e.range, [A.ExprStmt(e.body)], e.var, sc, e.span)
        inner = Scope(sc.key, sc.variables - {e.var}, sc.types, sc.targets - {e.var}, sc.stored,
                      sc.symbols, sc.ints | {e.var}, sc.owner, sc.ret)
        body = self.expr(e.body, inner)
        tail = self.inner_extents(e, sc)
        shape = f", lambda: ({''.join(f'len({r}), ' for r in tail)})" if tail else ""
        return f"rt.lit.tabulate({rng}, lambda {self.py(e.var)}: {body}, {_real(self.types.get(e))}{shape})"

    def inner_extents(self, e: A.Comprehension, sc: Scope) -> list[str]:
        """The ranges of the comprehensions nested in `e`'s body that do not depend on an
        enclosing comprehension's variable: the shape of the rows when `e`'s range is empty."""
        bound, out = {e.var}, []
        body = e.body
        while isinstance(body, A.Comprehension) and body.range is not None:
            if any(isinstance(x, A.Name) and x.id in bound for x in A.walk(body.range)):
                break
            out.append(self.loop_range(body.range, [], body.var, sc, body.span))
            bound.add(body.var)
            body = body.body
        return out

    def call(self, e: A.Call, sc: Scope, args: list[str] | None = None) -> str:
        if args is None and A.partial_grad_variable(e) is not None and not self.user_named("grad", sc):
            return self.grad_of_call(e, sc)
        args = [self.bound(a, sc) for a in e.args] if args is None else args
        f = e.func
        if isinstance(f, A.Attribute) and f.attr == "update" and not self.is_method(f.value, "update", sc):
            cls = self.classes[G.class_of(f.value, sc.owner, self.types)]
            return f"rt.sgd_update({self.expr(f.value, sc)}, {cls.learnable_names()!r}, {', '.join(args)})"
        if isinstance(f, A.Attribute):
            return f"{self.expr(f.value, sc)}.{self.py(f.attr)}({', '.join(args)})"
        if not isinstance(f, A.Name):
            return f"{self.expr(f, sc)}({', '.join(args)})"
        if self.user_named(f.id, sc):
            return f"{self.py(f.id)}({', '.join(args)})"
        return self.builtin(f.id, e, args, sc)

    def grad_of_call(self, e: A.Call, sc: Scope) -> str:
        """`grad(f(a, x), x)`: f's partial derivative in the arguments written `x` — they become
        a new variable holding x's value (rt.partial_point), the others keep theirs."""
        inner, x = e.args
        self.partial_vars += 1
        d = f"_phc_d{self.partial_vars}"
        args = [d if A.is_name(a, x.id) else self.bound(a, sc) for a in inner.args]
        return (f"rt.lit.grad_at(lambda {d}: {self.call(inner, sc, args)}, {self.expr(x, sc)}, "
                f"create_graph={self.create_graph})")

    def builtin(self, name: str, e: A.Call, args: list[str], sc: Scope) -> str:
        if name == "grad":
            return f"rt.lit.grad({args[0]}, {self.expr(e.args[1], sc)}, create_graph={self.create_graph})"
        if name == "len":
            return f"rt.dim({args[0]}, 0)"
        if name == "solve":      # the equations' known names: the variables of the body it runs in
            return f"rt.solve({', '.join(args)}, known={'globals()' if sc.key == 'main' else 'locals()'})"
        if name in MATH:
            return f"torch.{name}(rt.lit.as_real({args[0]}))"
        if name in ("max", "min"):
            return f"rt.{name}({', '.join(args)})"
        return f"{RUNTIME_CALLS.get(name, 'rt.' + name)}({', '.join(args)})"


def _number_literal(e) -> str | None:
    """A number written in the source (`2`, `-1.5`) as Python text; None for anything else."""
    if isinstance(e, A.Num):
        return repr(e.value)
    if isinstance(e, A.UnaryOp) and e.op == "-" and isinstance(e.operand, A.Num):
        return repr(-e.operand.value)
    return None


def _class_members(c: A.ClassDef) -> list[tuple[str, A.TypeExpr]]:
    return [(p.name, p.type) for p in c.params] + [(d.name, d.type) for d in c.fields]


def _flatten_index(e: A.Index, types):
    """`x[i][j]` and `x[i, j]` both give (x, (i, j)) (not through a list: `data[0][1]`)."""
    idx = list(e.indices)
    base = e.value
    while isinstance(base, A.Index) and not any(isinstance(i, A.Slice) for i in base.indices) \
            and not isinstance(types.get(base.value), TupleT):
        idx = list(base.indices) + idx
        base = base.value
    return base, tuple(idx)


__all__ = ["LiteralError", "emit_literal"]
