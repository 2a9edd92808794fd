"""Analyses over the IR, recorded on the nodes by `annotate`:

- dependence marks of loops: a nest loop is PARALLEL when its variable appears in the store's
  index (each iteration writes its own elements) and REDUCTION otherwise; a host loop is
  INDEPENDENT when no iteration reads a value that an earlier one wrote (a running sum `x = x + e`
  is allowed: it is a reduction), SERIAL otherwise;
- grad reachability: which classes' fields are `grad` leaves, and which host values can reach a
  `grad` call. Values that cannot (the epoch's running loss, the whole evaluation loop) are
  marked `nograd`: the backend computes them without an autograd graph.
"""
from __future__ import annotations

from dataclasses import replace

from phc.ir import nodes as n
from phc.ir.simplify import free_syms, children


def annotate(module: n.Module) -> n.Module:
    fields = grad_fields(module)
    classes = tuple(replace(c, grad_fields=frozenset(f for f in fields if f in {p.name for p in c.fields}))
                    for c in module.classes)
    module = replace(module, classes=classes)
    main = _annotate_function(module.main, module)
    functions = tuple(_annotate_function(f, module) for f in module.functions)
    classes = tuple(replace(c, methods=tuple(_annotate_function(m, module) for m in c.methods))
                    for c in module.classes)
    return replace(module, functions=functions, classes=classes, main=main)


def _annotate_function(f: n.Function, module: n.Module) -> n.Function:
    body = _mark_loops(f.body)
    if any(isinstance(s, n.Grads) for s in walk_stmts(body)):
        needed = grad_slice(body, module)
        body = _mark_nograd(body, needed)
    return replace(f, body=body)


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
        case n.Store(n.Sym(name), _, _):
            return {name}
    return set()


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


# ---------------------------------------------------------------- grad reachability

def grad_fields(module: n.Module) -> set[str]:
    """Field names that some `grad(y, obj.field)` differentiates."""
    return {w.name for w in _grad_targets(module) if isinstance(w, n.Attr)}


def grad_vars(module: n.Module) -> set[str]:
    """Plain variables that some `grad(y, x)` differentiates: they are made leaves."""
    return {w.name for w in _grad_targets(module) if isinstance(w, n.Sym)}


def _grad_targets(module: n.Module):
    for f in _functions(module):
        for s in walk_stmts(f.body):
            if isinstance(s, n.Grads):
                yield from s.wrt


def _functions(module: n.Module):
    yield module.main
    yield from module.functions
    for c in module.classes:
        yield from c.methods


def grad_slice(body, module: n.Module) -> set[str]:
    """Names whose values some `grad`'s y depends on. Arguments that a constructor turns into
    fresh leaves do not count: the graph is cut there."""
    leaf_positions = {c.name: {k for k, p in enumerate(c.fields) if p.name in c.grad_fields}
                      for c in module.classes}
    deps: dict[str, set[str]] = {}
    for s in walk_stmts(body):
        if isinstance(s, n.Assign):
            deps.setdefault(s.name, set()).update(_value_deps(s.value, leaf_positions))
        elif isinstance(s, n.Store) and isinstance(s.tensor, n.Sym):
            deps.setdefault(s.tensor.name, set()).update(stmt_reads(s) - {s.tensor.name})
    roots = set()
    for s in walk_stmts(body):
        if isinstance(s, n.Grads):
            roots |= free_syms(s.y)
    seen, todo = set(), list(roots)
    while todo:
        x = todo.pop()
        if x in seen:
            continue
        seen.add(x)
        todo += deps.get(x, ())
    return seen


def _value_deps(e: n.Expr, leaf_positions) -> set[str]:
    if isinstance(e, n.Call) and e.obj is None and e.func in leaf_positions:
        cut = leaf_positions[e.func]
        out = set()
        for k, a in enumerate(e.args):
            if k not in cut:
                out |= free_syms(a)
        return out
    return set(free_syms(e))


def _mark_nograd(stmts, needed: set[str]) -> tuple[n.Stmt, ...]:
    out = []
    for s in stmts:
        if isinstance(s, n.Assign) and s.name not in needed:
            out.append(replace(s, nograd=True))
        elif isinstance(s, n.Loop):
            body = _mark_nograd(s.body, needed)
            inner = list(walk_stmts(body))
            free = not any(isinstance(x, n.Grads) for x in inner) and \
                not any(stmt_writes(x) & needed for x in inner)
            out.append(replace(s, body=body, nograd=free))
        elif isinstance(s, n.If):
            out.append(replace(s, body=_mark_nograd(s.body, needed), orelse=_mark_nograd(s.orelse, needed)))
        else:
            out.append(s)
    return tuple(out)
