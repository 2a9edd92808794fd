"""Analyses over the IR, recorded on the nodes by `annotate`:

- dependence marks of loops: a nest loop is PARALLEL when its variable appears in the store's
  index (each iteration writes its own elements) and REDUCTION otherwise; a host loop is
  INDEPENDENT when no iteration reads a value that an earlier one wrote (a running sum `x = x + e`
  is allowed: it is a reduction), SERIAL otherwise;
- grad leaves: the values some `grad(y, x)` differentiates (`x` a variable, a parameter, an
  instance's tensor field) are tracked: made to require grad where they have no graph, kept in the
  graph where they have one. A tracked value is cut into a fresh leaf only where
  `fresh_leaf_is_legal` proves that no `grad` can differentiate through the cut;
- grad reachability: which host values can reach a `grad` call. Values that cannot (the epoch's
  running loss, the whole evaluation loop) are marked `nograd` where `nograd_is_legal` holds: the
  backend computes them without an autograd graph;
- the one backward of a program whose graph `free_graph_is_legal` proves unshared is told to
  free the graph at once.
"""
from __future__ import annotations

from dataclasses import replace

from phc.ir import nodes as n
from phc.ir.simplify import free_syms, children


def annotate(module: n.Module) -> n.Module:
    module = _map_functions(module, lambda f: replace(f, body=_mark_loops(f.body)))
    module = mark_grad_leaves(module)
    ctx = GradContext(module)
    module = _map_functions(module, lambda f: _mark_nograd_function(f, ctx))
    module = replace(module, main=_mark_free_graph(module.main, GradContext(module)))
    if differentiates_a_derivative(module, GradContext(module)):
        module = _map_functions(module, lambda f: replace(f, body=_with_create_graph(f.body)))
    return module


def _map_functions(module: n.Module, fn) -> n.Module:
    functions = tuple(fn(f) for f in module.functions)
    classes = tuple(replace(c, methods=tuple(fn(m) for m in c.methods)) for c in module.classes)
    return replace(module, functions=functions, classes=classes, main=fn(module.main))


# ---------------------------------------------------------------- walking

def walk_stmts(stmts):
    for s in stmts:
        yield s
        if isinstance(s, n.Loop):
            yield from walk_stmts(s.body)
        elif isinstance(s, n.If):
            yield from walk_stmts(s.body)
            yield from walk_stmts(s.orelse)


def stmt_reads(s: n.Stmt) -> set[str]:
    match s:
        case n.Assign(_, value) | n.Print(value) | n.Eval(value):
            return set(free_syms(value))
        case n.SetField(obj, _, value):
            return set(free_syms(obj)) | set(free_syms(value))
        case n.Return(value):
            return set() if value is None else set(free_syms(value))
        case n.Store(tensor, index, value):
            out = set(free_syms(tensor)) | set(free_syms(value))
            for i in index:
                out |= free_syms(i)
            return out
        case n.Grads(_, y, wrt):
            out = set(free_syms(y))
            for w in wrt:
                out |= free_syms(w)
            return out
        case n.If(cond, _, _):
            return set(free_syms(cond))
        case n.Loop(axis, _):
            return set(free_syms(axis.lo)) | set(free_syms(axis.hi))
    return set()


def stmt_writes(s: n.Stmt) -> set[str]:
    match s:
        case n.Assign(name, _):
            return {name}
        case n.Grads(targets, _, _):
            return set(targets)
        case n.Store(tensor, _, _) if root_name(tensor):
            return {root_name(tensor)}
        case n.SetField(obj, _, _) if root_name(obj):
            return {root_name(obj)}
    return set()


def root_name(e: n.Expr) -> str | None:
    """The variable a place is part of: `x` for `x`, `x.w`, `x[i]`, `x.w[i:j]`."""
    while isinstance(e, (n.Attr, n.Load, n.Slice, n.Item)):
        e = e.obj if isinstance(e, n.Attr) else (e.value if isinstance(e, n.Item) else e.tensor)
    return e.name if isinstance(e, n.Sym) else None


# ---------------------------------------------------------------- loop marks

def _mark_loops(stmts) -> tuple[n.Stmt, ...]:
    out = []
    for s in stmts:
        if isinstance(s, n.Loop):
            body = _mark_loops(s.body)
            if s.mark in (n.Mark.PARALLEL, n.Mark.REDUCTION):
                mark = nest_mark(s)
            else:
                mark = n.Mark.INDEPENDENT if iterations_independent(s) else n.Mark.SERIAL
            out.append(replace(s, body=body, mark=mark))
        elif isinstance(s, n.If):
            out.append(replace(s, body=_mark_loops(s.body), orelse=_mark_loops(s.orelse)))
        else:
            out.append(s)
    return tuple(out)


def nest_mark(loop: n.Loop) -> n.Mark:
    """PARALLEL when every store below writes an index that contains the loop variable."""
    stores = [s for s in walk_stmts(loop.body) if isinstance(s, n.Store)]
    var = loop.axis.var
    if stores and all(any(var in free_syms(i) for i in s.index) for s in stores):
        return n.Mark.PARALLEL
    return n.Mark.REDUCTION


def iterations_independent(loop: n.Loop) -> bool:
    """No value flows from one iteration to the next, except running sums."""
    body = list(walk_stmts(loop.body))
    written = set()
    for s in body:
        written |= stmt_writes(s)
    reductions = {s.name for s in body if _is_running_sum(s)}
    # a running sum is only a reduction if nothing else in the body reads it
    for s in body:
        if not _is_running_sum(s):
            reductions -= stmt_reads(s)
    seen: set[str] = set()
    for s in _in_order(loop.body):
        if _is_running_sum(s) and s.name in reductions:
            continue
        if (stmt_reads(s) & written) - seen - reductions:
            return False
        seen |= stmt_writes(s)
    return True


def _in_order(stmts):
    """Statements in execution order; the branches of an `if` count as not writing for sure."""
    for s in stmts:
        if isinstance(s, n.If):
            yield n.Eval(s.cond)
            yield from _in_order(s.body)
            yield from _in_order(s.orelse)
        elif isinstance(s, n.Loop):
            yield from _in_order(s.body)
        else:
            yield s


def _is_running_sum(s) -> bool:
    return isinstance(s, n.Assign) and isinstance(s.value, n.Bin) and s.value.op in ("+", "-") \
        and s.value.a == n.Sym(s.name) and s.name not in free_syms(s.value.b)


# ---------------------------------------------------------------- grad sites and calls

def stmt_exprs(s: n.Stmt) -> tuple[n.Expr, ...]:
    """The expressions a statement evaluates itself (not those of its nested statements)."""
    match s:
        case n.Assign(_, value) | n.Print(value) | n.Eval(value):
            return (value,)
        case n.SetField(obj, _, value):
            return (obj, value)
        case n.Return(value):
            return () if value is None else (value,)
        case n.Store(tensor, index, value):
            return (tensor, *index, value)
        case n.Grads(_, y, wrt):
            return (y, *wrt)
        case n.If(cond, _, _):
            return (cond,)
        case n.Loop(axis, _):
            return (axis.lo, axis.hi)
    return ()


def subexprs(e: n.Expr):
    yield e
    for c in children(e):
        yield from subexprs(c)


def _functions(module: n.Module):
    yield module.main
    yield from module.functions
    for c in module.classes:
        yield from c.methods


class GradContext:
    """What the grad analyses need to know about the whole module: which calls are the builtin
    `grad`, which functions may differentiate or change their arguments in place."""

    def __init__(self, module: n.Module):
        self.module = module
        self.function_names = {f.name for f in module.functions}
        self.classes = {c.name: c for c in module.classes}
        self.builtin_grad = "grad" not in self.function_names
        self.differentiating = self._fixpoint(lambda f: bool(self.sites(f.body)))
        self.mutating = self._fixpoint(_changes_its_arguments)

    def is_grad(self, e: n.Expr) -> bool:
        return isinstance(e, n.Call) and e.func == "grad" and e.obj is None and len(e.args) == 2 \
            and self.builtin_grad

    def sites(self, body) -> list[tuple[n.Stmt, n.Expr, n.Expr]]:
        """Every (statement, y, x) of a `grad(y, x)` in these statements: grouped `Grads`, and
        calls anywhere in an expression (a bare statement, an operand, a loop body, a return)."""
        out = []
        for s in walk_stmts(body):
            if isinstance(s, n.Grads):
                out += [(s, s.y, w) for w in s.wrt]
                continue
            for e in stmt_exprs(s):
                out += [(s, x.args[0], x.args[1]) for x in subexprs(e) if self.is_grad(x)]
        return out

    def callees(self, call: n.Call) -> list[n.Function]:
        """The user functions or methods a call may run (a method: every class's of that name)."""
        if call.obj is None:
            return [f for f in self.module.functions if f.name == call.func]
        return [m for c in self.module.classes for m in c.methods if m.name == call.func]

    def calls(self, e: n.Expr):
        return [x for x in subexprs(e) if isinstance(x, n.Call)]

    def may_differentiate(self, e: n.Expr) -> bool:
        """`e` contains a `grad`, or calls a function that runs one."""
        return any(self.is_grad(c) or any(f in self.differentiating for f in map(id, self.callees(c)))
                   for c in self.calls(e))

    def may_mutate(self, e: n.Expr) -> bool:
        """`e` calls a function that may change an argument (or its instance) in place."""
        return any(id(f) in self.mutating for c in self.calls(e) for f in self.callees(c))

    def _fixpoint(self, direct) -> set[int]:
        """ids of the functions for which `direct` holds, or which call one of them."""
        funcs = list(_functions(self.module))
        found = {id(f) for f in funcs if direct(f)}
        changed = True
        while changed:
            changed = False
            for f in funcs:
                if id(f) in found:
                    continue
                if any(id(g) in found for s in walk_stmts(f.body) for e in stmt_exprs(s)
                       for c in self.calls(e) for g in self.callees(c)):
                    found.add(id(f))
                    changed = True
        return found


def _changes_its_arguments(f: n.Function) -> bool:
    """A store or field assignment into a parameter, `this`, or a value that may alias them."""
    aliases = param_aliases(f)
    for s in walk_stmts(f.body):
        if isinstance(s, n.Store) and root_name(s.tensor) in aliases:
            return True
        if isinstance(s, n.SetField) and root_name(s.obj) in aliases:
            return True
    return False


def param_aliases(f: n.Function) -> set[str]:
    """Parameters, `this`, and locals that may hold (part of) one of them: views, fields, or
    what a call returns."""
    out = {p.name for p in f.params} | {"this"}
    changed = True
    while changed:
        changed = False
        for s in walk_stmts(f.body):
            if isinstance(s, n.Assign) and s.name not in out and _may_alias(s.value, out):
                out.add(s.name)
                changed = True
    return out


def _may_alias(v: n.Expr, names: set[str]) -> bool:
    if root_name(v) in names:
        return True
    if isinstance(v, n.Select):
        return _may_alias(v.a, names) or _may_alias(v.b, names)
    return isinstance(v, n.Call) and bool(free_syms(v) & names)


# ---------------------------------------------------------------- dependences of names

def name_deps(body, ctx: GradContext, cut: bool = False) -> dict[str, set[str]]:
    """name → the names its value may be computed from (every assignment, flow-insensitively).
    With `cut`, a fresh leaf depends on nothing (the graph stops there). A call that may change
    its arguments makes each argument depend on everything the call reads."""
    deps: dict[str, set[str]] = {}
    for s in walk_stmts(body):
        match s:
            case n.Assign(name, value):
                deps.setdefault(name, set()).update(_assign_deps(s, cut, ctx))
            case n.Grads(targets, y, wrt):
                for t in targets:
                    deps.setdefault(t, set()).update(stmt_reads(s))
            case n.Store() | n.SetField():
                for w in stmt_writes(s):
                    deps.setdefault(w, set()).update(stmt_reads(s) - {w})
        for e in stmt_exprs(s):
            for c in ctx.calls(e):
                if any(id(f) in ctx.mutating for f in ctx.callees(c)):
                    for a in (*c.args, *(() if c.obj is None else (c.obj,))):
                        if root_name(a):
                            deps.setdefault(root_name(a), set()).update(free_syms(c))
    return deps


def _assign_deps(s: n.Assign, cut: bool, ctx: GradContext) -> set[str]:
    if cut and s.leaf.startswith("fresh"):
        return set()
    if cut and s.fresh_fields and isinstance(s.value, n.Call) and s.value.func in ctx.classes:
        # the constructor starts fresh leaves for these fields: their arguments do not count
        fields = ctx.classes[s.value.func].fields
        return set().union(*(free_syms(a) for k, a in enumerate(s.value.args)
                             if k >= len(fields) or fields[k].name not in s.fresh_fields))
    return set(free_syms(s.value))


def closure(names, deps) -> set[str]:
    seen, todo = set(), list(names)
    while todo:
        x = todo.pop()
        if x in seen:
            continue
        seen.add(x)
        todo += deps.get(x, ())
    return seen


# ---------------------------------------------------------------- grad leaves

def mark_grad_leaves(module: n.Module) -> n.Module:
    """Mark what each `grad` differentiates: tracked variables, parameters and class fields, and
    the assignments and constructions where a fresh leaf is proved legal."""
    ctx = GradContext(module)
    funcs = list(_functions(module))
    tracked_vars = {id(f): set() for f in funcs}
    tracked_fields: dict[str, set[str]] = {c: set() for c in ctx.classes}
    for f in funcs:
        for _, _, w in ctx.sites(f.body):
            if isinstance(w, n.Sym):
                tracked_vars[id(f)].add(w.name)
            elif isinstance(w, n.Attr):
                for c in classes_of(w.obj, f, ctx):
                    if _is_real_field(ctx.classes[c], w.name):
                        tracked_fields[c].add(w.name)
    _track_identity_sources(funcs, tracked_vars, tracked_fields, ctx)
    facts = _LeafFacts(ctx)

    def mark(f: n.Function) -> n.Function:
        tracked = tracked_vars[id(f)]
        deps = name_deps(f.body, ctx)
        stmts = _mark_leaf_stmts(f.body, f, tracked, tracked_fields, deps, facts, ctx)
        params = tuple(p.name for p in f.params if p.name in tracked and p.type.startswith("f32"))
        return replace(f, body=stmts, tracked_params=params)

    classes = tuple(replace(c, grad_fields=frozenset(tracked_fields[c.name])) for c in module.classes)
    return _map_functions(replace(module, classes=classes), mark)


def classes_of(e: n.Expr, f: n.Function, ctx: GradContext) -> set[str]:
    """The classes whose instance `e` may hold (every class where that is not evident)."""
    every = set(ctx.classes)
    match e:
        case n.Sym("this") if f.owner:
            return {f.owner}
        case n.Sym(name):
            for p in f.params:
                if p.name == name:
                    return {p.type} if p.type in ctx.classes else every
            values = [s.value for s in walk_stmts(f.body) if isinstance(s, n.Assign) and s.name == name]
            if values and all(_constructs(v, ctx) for v in values):
                return {v.func for v in values}
            return every
        case n.Attr(obj, field):
            out = set()
            for c in classes_of(obj, f, ctx):
                for p in ctx.classes[c].fields:
                    if p.name == field:
                        out |= {p.type} if p.type in ctx.classes else every
            return out or every
    return every


def _constructs(v: n.Expr, ctx: GradContext) -> bool:
    return isinstance(v, n.Call) and v.obj is None and v.func in ctx.classes


def _is_real_field(c: n.ClassIR, name: str) -> bool:
    """Only real tensor fields can be leaves (an instance or an integer cannot)."""
    return any(p.name == name and p.type.startswith("f32") for p in c.fields)


def _track_identity_sources(funcs, tracked_vars, tracked_fields, ctx: GradContext):
    """A value reaching a tracked place by identity (`x = u`, `C(u)` into a tracked field, `g(u)`
    for a tracked parameter) is tracked where it is made, so that a `y` computed from `u` depends
    on what `grad` differentiates."""
    changed = True
    while changed:
        changed = False
        for f in funcs:
            mine = tracked_vars[id(f)]
            for u in _identity_sources(f, mine, tracked_vars, tracked_fields, ctx) - mine:
                mine.add(u)
                changed = True


def _identity_sources(f, mine, tracked_vars, tracked_fields, ctx) -> set[str]:
    out = set()
    for s in walk_stmts(f.body):
        if isinstance(s, n.Assign) and s.name in mine and isinstance(s.value, n.Sym):
            out.add(s.value.name)
        if isinstance(s, n.SetField) and isinstance(s.value, n.Sym) and any(
                s.name in tracked_fields[c] for c in classes_of(s.obj, f, ctx)):
            out.add(s.value.name)
        for e in stmt_exprs(s):
            for c in ctx.calls(e):
                for k, a in enumerate(c.args):
                    # (a name read only here reaches no other value: tracking the field suffices)
                    if isinstance(a, n.Sym) and _tracked_position(c, k, tracked_vars, tracked_fields, ctx) \
                            and _count_reads(f.body, a.name) > 1:
                        out.add(a.name)
    return out


def _tracked_position(call: n.Call, k: int, tracked_vars, tracked_fields, ctx) -> bool:
    if call.obj is None and call.func in ctx.classes:
        fields = ctx.classes[call.func].fields
        return k < len(fields) and fields[k].name in tracked_fields[call.func]
    return any(k < len(g.params) and g.params[k].name in tracked_vars[id(g)] for g in ctx.callees(call))


class _LeafFacts:
    """Module-wide facts the fresh-leaf predicates read."""

    def __init__(self, ctx: GradContext):
        module = ctx.module
        # a `grad` outside main whose target may be a value from a caller (a parameter, `this`)
        self.escaping_grads = any(
            root_name(w) in param_aliases(f) for f in _functions(module) if f is not module.main
            for _, _, w in ctx.sites(f.body))
        # a method that hands its instance on (returns it, stores it, passes it)
        self.this_escapes = any(_identity_uses(m.body, "this", ctx) for c in module.classes for m in c.methods)


def _mark_leaf_stmts(stmts, f, tracked, tracked_fields, deps, facts, ctx) -> tuple[n.Stmt, ...]:
    out = []
    for s in stmts:
        match s:
            case n.Assign(name, value) if name in tracked:
                legal = fresh_leaf_is_legal(f, s, deps, facts, ctx)
                # a new tensor that is then written in place must not be a leaf: a copy in the graph
                stored = "+stores" if _fresh_value(value) and _stored_into(f.body, name) else ""
                s = replace(s, leaf=("fresh" if legal else "track") + stored)
            case n.Assign(name, value) if _constructs(value, ctx) and tracked_fields[value.func]:
                fresh = tuple(sorted(fl for fl in tracked_fields[value.func]
                                     if fresh_field_is_legal(f, s, fl, deps, facts, ctx)))
                s = replace(s, fresh_fields=fresh)
            case n.SetField(obj, name, _) if any(name in tracked_fields[c] for c in classes_of(obj, f, ctx)):
                s = replace(s, leaf="track")
            case n.Grads(targets) if set(targets) & tracked:
                # a derivative that some `grad` differentiates with respect to
                out.append(s)
                s = [n.Assign(t, n.Sym(t), s.span, leaf="track") for t in targets if t in tracked]
            case n.Loop():
                s = replace(s, body=_mark_leaf_stmts(s.body, f, tracked, tracked_fields, deps, facts, ctx))
            case n.If():
                s = replace(s, body=_mark_leaf_stmts(s.body, f, tracked, tracked_fields, deps, facts, ctx),
                            orelse=_mark_leaf_stmts(s.orelse, f, tracked, tracked_fields, deps, facts, ctx))
        out += s if isinstance(s, list) else [s]
    return tuple(out)


def fresh_leaf_is_legal(f, s: n.Assign, deps, facts, ctx) -> bool:
    """`x = e` with x a `grad` target may cut e's graph (a fresh leaf, so that no graph grows
    across the steps of `x = x - lr * grad(y, x)`) when no `grad` can differentiate through the
    cut or tell the fresh tensor from e's:
    - top level only: a function's values may come from a caller that differentiates them;
    - e computes a new tensor (not a variable, field, view or call result: those are some other
      value by identity);
    - x is never handed on by identity (`z = x`, `g(x)`, `C(x)`, `[x]`, `return x`);
    - no other `grad` target is, or is computed from, anything e is computed from;
    - no `grad` outside main differentiates a value that callers pass in."""
    if f is not ctx.module.main or facts.escaping_grads:
        return False
    if not _fresh_value(s.value) or integer_valued(s.value) or _identity_uses(f.body, s.name, ctx):
        return False
    return _other_targets_apart(f, s.name, free_syms(s.value), deps, ctx)


def fresh_field_is_legal(f, s: n.Assign, field: str, deps, facts, ctx) -> bool:
    """`o = C(…)` may start `field` as a fresh leaf (the seed's `cnn = ConvNets(new_kernel, …)`)
    when, besides the conditions of `fresh_leaf_is_legal` for o:
    - the argument is a new tensor, or a variable that only ever holds new tensors and is read
      nowhere but here (so nothing else sees the tensor the leaf replaces);
    - o is only ever used through its fields and methods (never handed on, never a parameter),
      and no method hands its `this` on."""
    if f is not ctx.module.main or facts.escaping_grads or facts.this_escapes:
        return False
    if _identity_uses(f.body, s.name, ctx):
        return False
    fields = [p.name for p in ctx.classes[s.value.func].fields]
    k = fields.index(field)
    arg = s.value.args[k] if k < len(s.value.args) else None      # None: the field's default
    if isinstance(arg, n.Sym):
        values = [x.value for x in walk_stmts(f.body) if isinstance(x, n.Assign) and x.name == arg.name]
        if not values or not all(map(_fresh_value, values)) or _count_reads(f.body, arg.name) != 1:
            return False
    elif arg is not None and not _fresh_value(arg):
        return False
    return _other_targets_apart(f, s.name, set() if arg is None else free_syms(arg), deps, ctx)


def _other_targets_apart(f, name: str, reads, deps, ctx) -> bool:
    """No `grad` target other than `name` (a variable or an instance) is, or is computed from,
    a name that `reads` may be computed from."""
    mine = closure(reads, deps) | {name}
    roots = {root_name(w) for _, _, w in ctx.sites(f.body)} - {name}
    return not any(({r} | closure([r], deps)) & mine for r in roots)


def integer_valued(v: n.Expr) -> bool:
    """v is an integer constant or literal: it has no derivative (`grad` gives zeros and the
    variable keeps its integers, as `rt.track` keeps them), so it is never a fresh real leaf."""
    if isinstance(v, n.Const):
        return v.dtype in (n.DType.I64, n.DType.BOOL)
    return isinstance(v, n.ArrayLit) and v.dtype is not n.DType.F32


def _fresh_value(v: n.Expr) -> bool:
    """Computing v makes a new tensor (not one that some name already holds)."""
    return isinstance(v, (n.Const, n.ArrayLit, n.Bin, n.Un, n.Reduce, n.Tabulate, n.Full, n.Sample, n.Reshape))


def _identity_uses(body, name: str, ctx: GradContext) -> bool:
    """`name`'s value itself (not a value computed from it) is handed on: assigned, returned,
    stored in a field, passed to a call (other than as `grad`'s arguments), put in a list."""
    sym = n.Sym(name)
    for s in walk_stmts(body):
        if isinstance(s, (n.Assign, n.Return, n.SetField)) and s.value == sym:
            return True
        for e in stmt_exprs(s):
            for x in subexprs(e):
                if isinstance(x, n.Call) and not ctx.is_grad(x) and sym in x.args:
                    return True
                if isinstance(x, n.ArrayLit) and sym in x.items or isinstance(x, n.Select) and sym in (x.a, x.b):
                    return True
    return False


def _stored_into(body, name: str) -> bool:
    return any(isinstance(s, n.Store) and root_name(s.tensor) == name for s in walk_stmts(body))


def _count_reads(body, name: str) -> int:
    return sum(1 for s in walk_stmts(body) for e in stmt_exprs(s) for x in subexprs(e) if x == n.Sym(name))


# ---------------------------------------------------------------- no-grad regions

def _mark_nograd_function(f: n.Function, ctx: GradContext) -> n.Function:
    if not ctx.sites(f.body):
        return f        # nothing here differentiates: values keep their graph for the callers
    needed = grad_slice(f, ctx)
    return replace(f, body=_mark_nograd(f.body, needed, ctx))


def grad_slice(f: n.Function, ctx: GradContext) -> set[str]:
    """Names whose values some `grad`'s y may depend on in f. Also, outside main, whatever f
    returns or changes in place (a caller may differentiate it). A fresh leaf cuts the graph:
    what it was computed from does not count."""
    roots = set()
    for _, y, _ in ctx.sites(f.body):
        roots |= free_syms(y)
    if f is not ctx.module.main:
        for s in walk_stmts(f.body):
            if isinstance(s, (n.Return, n.Store, n.SetField)):
                roots |= stmt_reads(s)
    return closure(roots, name_deps(f.body, ctx, cut=True))


def nograd_is_legal(s: n.Stmt, needed: set[str], ctx: GradContext) -> bool:
    """A statement may run without an autograd graph when nothing it computes or changes can
    reach a `grad`: it writes no needed name (also through a call that changes its arguments),
    runs no `grad` itself (in any expression, or inside a function it calls), and contains no
    statement for which this does not hold."""
    for x in walk_stmts([s]):
        if stmt_writes(x) & needed or isinstance(x, n.Grads):
            return False
        if any(ctx.may_differentiate(e) or ctx.may_mutate(e) for e in stmt_exprs(x)):
            return False
    return True


def _mark_nograd(stmts, needed: set[str], ctx: GradContext) -> tuple[n.Stmt, ...]:
    out = []
    for s in stmts:
        if isinstance(s, n.Assign):
            s = replace(s, nograd=nograd_is_legal(s, needed, ctx))
        elif isinstance(s, n.Loop):
            s = replace(s, body=_mark_nograd(s.body, needed, ctx), nograd=nograd_is_legal(s, needed, ctx))
        elif isinstance(s, n.If):
            s = replace(s, body=_mark_nograd(s.body, needed, ctx), orelse=_mark_nograd(s.orelse, needed, ctx))
        out.append(s)
    return tuple(out)


# ---------------------------------------------------------------- freeing the graph

def _mark_free_graph(main: n.Function, ctx: GradContext) -> n.Function:
    sites = [site for f in _functions(ctx.module) for site in ctx.sites(f.body)]
    grads = [s for s in walk_stmts(main.body) if isinstance(s, n.Grads)]
    if len({id(s) for s, _, _ in sites}) != 1 or len(grads) != 1:
        return main
    if not free_graph_is_legal(main, grads[0], ctx):
        return main
    return replace(main, body=_replace_stmt(main.body, grads[0], replace(grads[0], free_graph=True)))


def free_graph_is_legal(main: n.Function, g: n.Grads, ctx: GradContext) -> bool:
    """The program's only backward may free y's graph as it goes (`retain_graph=False`) when no
    later backward can need that graph again: it is the only `grad` in the program, and, when it
    runs in a loop, every part of y's graph is rebuilt before each run. Each name y may be
    computed from is one of: not computed from anything differentiated; an instance every
    construction of which starts fresh leaves for all its tracked fields; a name assigned only
    at the top of the innermost loop's body, before the `grad`."""
    loop, before = _innermost_loop(main.body, g)
    if loop is None:
        return True
    deps = name_deps(main.body, ctx, cut=True)
    carriers = {s.name for s in walk_stmts(main.body) if isinstance(s, n.Assign) and (s.leaf or (
        _constructs(s.value, ctx) and ctx.classes[s.value.func].grad_fields))}
    rebuilt = {s.name for s in before if isinstance(s, n.Assign)}
    elsewhere = [s for s in walk_stmts(main.body) if not any(s is b for b in before)]
    for u in closure(free_syms(g.y), deps):
        if not (closure([u], deps) & carriers):
            continue
        if _all_fresh_instances(main.body, u, ctx):
            continue
        if u in rebuilt and not any(u in stmt_writes(s) for s in elsewhere):
            continue
        return False
    return True


def _all_fresh_instances(body, name: str, ctx: GradContext) -> bool:
    writes = [s for s in walk_stmts(body) if name in stmt_writes(s)]
    return bool(writes) and all(
        isinstance(s, n.Assign) and _constructs(s.value, ctx)
        and set(ctx.classes[s.value.func].grad_fields) <= set(s.fresh_fields) for s in writes)


def _innermost_loop(stmts, target):
    """(the innermost loop around target, the statements of that loop's body before the one that
    holds target); (None, …) when target is in no loop."""
    def find(stmts, loop):
        for k, s in enumerate(stmts):
            if s is target:
                return loop, tuple(stmts[:k])
            if isinstance(s, n.Loop):
                found = find(s.body, s)
                if found is not None:
                    return found
            elif isinstance(s, n.If):
                for block in (s.body, s.orelse):
                    found = find(block, loop)
                    if found is not None:
                        # what an `if` runs before target may not run: count what precedes the if
                        return (loop, tuple(stmts[:k])) if found[0] is loop else found
        return None
    return find(stmts, None) or (None, ())


def _replace_stmt(stmts, old, new):
    out = []
    for s in stmts:
        if s is old:
            s = new
        elif isinstance(s, n.Loop):
            s = replace(s, body=_replace_stmt(s.body, old, new))
        elif isinstance(s, n.If):
            s = replace(s, body=_replace_stmt(s.body, old, new), orelse=_replace_stmt(s.orelse, old, new))
        out.append(s)
    return tuple(out)


# ---------------------------------------------------------------- derivatives of derivatives

def differentiates_a_derivative(module: n.Module, ctx: GradContext) -> bool:
    """Some `grad`'s y may be computed from the result of a `grad` (a second derivative, a
    gradient step not cut by a fresh leaf): then every `grad` keeps its result's graph. So does
    a program that calls `train`, which differentiates whatever the model computes, derivatives
    included (a Hamiltonian network's `grad(h, x)`)."""
    if any(isinstance(e, n.Call) and e.func == "train" and e.obj is None
           for f in _functions(module) for s in walk_stmts(f.body) for top in stmt_exprs(s)
           for e in subexprs(top)):
        return True
    for f in _functions(module):
        deps = name_deps(f.body, ctx, cut=True)
        results = {t for s in walk_stmts(f.body) if isinstance(s, n.Grads) for t in s.targets} | \
            {s.name for s in walk_stmts(f.body) if isinstance(s, n.Assign) and ctx.may_differentiate(s.value)}
        for _, y, _ in ctx.sites(f.body):
            if ctx.may_differentiate(y) or closure(free_syms(y), deps) & results:
                return True
    return False


GRAD_CREATE_GRAPH = "grad_create_graph"     # the runtime's grad whose result keeps its graph


def _with_create_graph(stmts) -> tuple[n.Stmt, ...]:
    from phc.ir.simplify import map_children

    def call(e):
        e = map_children(e, call)
        if isinstance(e, n.Call) and e.func == "grad" and e.obj is None and len(e.args) == 2:
            return replace(e, func=GRAD_CREATE_GRAPH)
        return e
    out = []
    for s in stmts:
        if isinstance(s, n.Grads):
            s = replace(s, create_graph=True, free_graph=False)
        elif isinstance(s, (n.Loop, n.If)):
            s = replace(s, body=_with_create_graph(s.body))
            if isinstance(s, n.If):
                s = replace(s, orelse=_with_create_graph(s.orelse))
        for attr in ("value", "cond", "y"):
            v = getattr(s, attr, None)
            if v is not None:
                s = replace(s, **{attr: call(v)})
        out.append(s)
    return tuple(out)
