"""What the literal emitter must know about `grad` before it writes a line.

- `grad_fields`: the (class, field) pairs some `grad(y, obj.f)` differentiates: those fields are
  fresh leaves at every construction and field assignment.
- `Scopes`: per body (a function, a method, the top level), the names some `grad(y, x)` takes as
  `x`; each binding of such a name makes its value take part in a graph.
- `higher_order`: whether some `grad`'s `y` may depend on the result of a `grad`; then every
  `grad` keeps the graph of its result (`create_graph`), else none does (cheaper, same values).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from phc import ast as A
from phc.types import ClassT


def _is_grad(e) -> bool:
    return isinstance(e, A.Call) and isinstance(e.func, A.Name) and e.func.id == "grad" and len(e.args) == 2


@dataclass
class Body:
    """One body: its statements, its parameters, the class it belongs to."""
    key: str                          # "main", "f", "C.m"
    stmts: tuple
    params: tuple[str, ...] = ()
    owner: str | None = None


def bodies(program: A.Program) -> list[Body]:
    out = [Body("main", tuple(s for s in program.body if not isinstance(s, (A.FuncDef, A.ClassDef))))]
    for s in program.body:
        if isinstance(s, A.FuncDef):
            out.append(Body(s.name, s.body, tuple(p.name for p in s.params)))
        elif isinstance(s, A.ClassDef):
            for m in s.methods:
                out.append(Body(f"{s.name}.{m.name}", m.body, tuple(p.name for p in m.params), s.name))
    return out


def nodes(b: Body):
    """Every node of a body, not descending into nested definitions."""
    stack = list(reversed(b.stmts))
    while stack:
        x = stack.pop()
        if isinstance(x, (A.FuncDef, A.ClassDef)):
            continue
        yield x
        stack.extend(reversed(A.children(x)))


def class_of(e, owner: str | None, types: dict) -> str | None:
    if isinstance(e, A.This):
        return owner
    t = types.get(e)
    return t.name if isinstance(t, ClassT) else None


ALL_FIELDS = "learnable_params"     # `grad(y, obj.learnable_params)`: every numeric field
LEARNABLE_LISTS = ("learnable_params", "params")   # upstream's two names of that list


def grad_fields(all_bodies: list[Body], types: dict) -> set[tuple[str, str]]:
    """(class, field) pairs; (class, ALL_FIELDS) stands for all of the class's fields."""
    out = set()
    for b in all_bodies:
        for x in nodes(b):
            if _is_grad(x) and isinstance(x.args[1], A.Attribute):
                c = class_of(x.args[1].value, b.owner, types)
                if c is not None:
                    attr = x.args[1].attr
                    out.add((c, ALL_FIELDS if attr in LEARNABLE_LISTS else attr))
    return out


def assigned_names(stmts) -> set[str]:
    return set(A.assigned_in_order(stmts))


def stored_names(stmts) -> set[str]:
    """Names an indexed store writes into (`t[i] = …`, `t[i][j] += …`)."""
    out = set()
    for x in nodes(Body("", tuple(stmts))):
        if isinstance(x, (A.Assign, A.AugAssign)) and isinstance(x.target, A.Index):
            base = x.target
            while isinstance(base, A.Index):
                base = base.value
            if isinstance(base, A.Name):
                out.add(base.id)
    return out


@dataclass
class Scopes:
    """Per body key, the grad-target names that are its own locals; `main` also holds the
    top-level names that a function differentiates with respect to."""
    targets: dict[str, set[str]] = field(default_factory=dict)
    fields: set[tuple[str, str]] = field(default_factory=set)   # (class, field) passed to one


def grad_targets(all_bodies: list[Body], types: dict | None = None) -> Scopes:
    """The names of each body that some `grad` differentiates, directly (`grad(y, x)`) or through
    a callee's parameter: for `f(a * a, a)` with `f` returning `grad(y, x)`, the caller's `a` must
    take part in a graph from its binding, or `y` would not depend on the value `x` receives."""
    scopes = Scopes({b.key: set() for b in all_bodies})
    local = {b.key: set(b.params) | assigned_names(b.stmts) for b in all_bodies}

    def add(b: Body, name: str) -> bool:
        where = b.key if (b.key == "main" or name in local[b.key]) else "main"
        new = name not in scopes.targets[where]
        scopes.targets[where].add(name)
        return new

    for b in all_bodies:
        for x in nodes(b):
            if _is_grad(x) and isinstance(x.args[1], A.Name):
                add(b, x.args[1].id)
    changed = True
    while changed:
        changed = False
        for b in all_bodies:
            for x in nodes(b):
                if isinstance(x, A.Call):
                    for arg in differentiated_arguments(x, all_bodies, scopes):
                        for name in (n.id for n in A.walk(arg) if isinstance(n, A.Name)):
                            changed |= add(b, name)
                        if isinstance(arg, A.Attribute):      # `f(y, net.w)`: that field too
                            c = class_of(arg.value, b.owner, types or {})
                            if c is not None:
                                scopes.fields.add((c, arg.attr))
    return scopes


def differentiated_arguments(call: A.Call, all_bodies: list[Body], scopes: Scopes) -> list:
    """The arguments of `call` bound to a parameter that the callee differentiates (a method or
    an instance call: that of any class with the name, a safe over-approximation)."""
    f = call.func
    if isinstance(f, A.Name):
        keys = {f.id} | {b.key for b in all_bodies if b.key.endswith(".λ")}
    elif isinstance(f, A.Attribute):
        keys = {b.key for b in all_bodies if b.key.endswith(f".{f.attr}")}
    else:
        return []
    out = []
    for b in all_bodies:
        if b.key in keys:
            out += [a for p, a in zip(b.params, call.args) if p in scopes.targets[b.key]]
    return out


# ---------------------------------------------------------------- higher order

class _Taint:
    """Which values may carry the result of a `grad` (names and fields by name, over every body:
    a safe over-approximation). A grad field is cut at every construction, so it carries none."""

    def __init__(self, all_bodies, types, fields, classes):
        self.bodies, self.types, self.grad_fields = all_bodies, types, fields
        self.classes = classes                     # class name -> field names in order
        self.params = {b.key.split(".")[-1]: b.params for b in all_bodies if b.key != "main"}
        self.names: set[str] = set()
        self.fields: set[str] = set()
        self.callables: set[str] = set()           # functions and methods returning a derivative
        self.changed = False

    def add(self, where: set, item) -> None:
        if item not in where:
            where.add(item)
            self.changed = True

    def run(self) -> bool:
        self.changed = True
        while self.changed:
            self.changed = False
            for b in self.bodies:
                for x in nodes(b):
                    self.stmt(x, b)
        return any(_is_grad(x) and self.tainted(x.args[0], b) for b in self.bodies for x in nodes(b))

    def stmt(self, x, b: Body) -> None:
        if isinstance(x, A.Decl) and x.value is not None and self.tainted(x.value, b):
            self.add(self.names, x.name)
        elif isinstance(x, (A.Assign, A.AugAssign)) and self.tainted(x.value, b):
            t = x.target
            while isinstance(t, A.Index):
                t = t.value
            if isinstance(t, A.Name):
                self.add(self.names, t.id)
            elif isinstance(t, A.Attribute):
                c = class_of(t.value, b.owner, self.types)
                if (c, t.attr) not in self.grad_fields:
                    self.add(self.fields, t.attr)
        elif isinstance(x, A.Return) and x.value is not None and self.tainted(x.value, b):
            self.add(self.callables, b.key.split(".")[-1])
        elif isinstance(x, A.Call):
            self.call_args(x, b)

    def call_args(self, x: A.Call, b: Body) -> None:
        """A derivative passed as an argument taints the parameter (a field, for a class)."""
        name = x.func.id if isinstance(x.func, A.Name) else x.func.attr if isinstance(x.func, A.Attribute) else None
        if name in self.classes:
            for f, a in zip(self.classes[name], x.args):
                if (name, f) not in self.grad_fields and self.tainted(a, b):
                    self.add(self.fields, f)
            return
        params = self.params.get(name, self.params.get("λ", ()))
        for p, a in zip(params, x.args):
            if self.tainted(a, b):
                self.add(self.names, p)

    def tainted(self, e, b: Body) -> bool:
        if _is_grad(e):
            return True
        if isinstance(e, A.Name):
            return e.id in self.names
        if isinstance(e, A.Attribute):
            if (class_of(e.value, b.owner, self.types), e.attr) in self.grad_fields:
                return False            # a grad field is a fresh leaf
            return e.attr in self.fields or self.tainted(e.value, b)
        if isinstance(e, A.Call):
            return self.call_tainted(e, b)
        return any(self.tainted(c, b) for c in A.children(e))

    def call_tainted(self, e: A.Call, b: Body) -> bool:
        f = e.func
        name = f.id if isinstance(f, A.Name) else f.attr if isinstance(f, A.Attribute) else None
        if name in self.classes:
            return any(self.tainted(a, b) for k, a in zip(self.classes[name], e.args)
                       if (name, k) not in self.grad_fields)
        if name in self.callables or (isinstance(f, A.Name) and f.id in self.names):
            return True
        if isinstance(f, A.Attribute) and self.tainted(f.value, b):
            return True
        return any(self.tainted(a, b) for a in e.args)


def higher_order(all_bodies: list[Body], types: dict, fields: set, classes: dict[str, tuple]) -> bool:
    """Whether every `grad` keeps its result's graph: some `grad` may differentiate a derivative,
    or the program calls `train`, which differentiates whatever the model computes."""
    calls_train = any(isinstance(x, A.Call) and A.is_name(x.func, "train") for b in all_bodies for x in nodes(b))
    return calls_train or _Taint(all_bodies, types, fields, classes).run()
