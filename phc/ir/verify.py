"""The IR verifier: checks the invariants of docs/ir.md between stages.

Tests run it on every program they lower; `phc` runs it when `PHC_VERIFY=1`.
"""
from __future__ import annotations

from phc.ir import nodes as n
from phc.ir.analysis import walk_stmts
from phc.ir.lower import linear_form
from phc.ir.simplify import children


class VerifyError(Exception):
    pass



def verify_module(module: n.Module) -> None:
    for f in _functions(module):
        verify_function(f)


def verify_function(f: n.Function) -> None:
    binders: list[str] = []
    for s in walk_stmts(f.body):
        loops = _enclosing_nest(f.body, s)
        for e in _exprs(s):
            _check(e, tuple(loops), binders, f.name)
        if isinstance(s, n.Store) and loops:
            for i in s.index:
                if linear_form(i, loops) is None:
                    raise VerifyError(f"{f.name}: store index {i} is not affine in {loops}")


def _check(e: n.Expr, bound: tuple[str, ...], binders: list, where: str) -> None:
    if isinstance(e, (n.Tabulate, n.Reduce)):
        names = tuple(a.var for a in e.axes)
        shadowed = (set(names) & set(bound)) or len(set(names)) != len(names)
        if shadowed:
            raise VerifyError(f"{where}: loop variable rebound inside its own nest: {sorted(set(names))}")
        for a in e.axes:
            for b in (a.lo, a.hi):
                if _reads_data(b):
                    raise VerifyError(f"{where}: the bound {b} of `{a.var}` reads data")
        _check(e.body, bound + names, binders, where)
        return
    # a load inside a nest may index affinely (a strided view) or by data (a gather, bounds-checked
    # at run time): both are valid; stores in imperative nests are checked in verify_function
    for c in children(e):
        _check(c, bound, binders, where)


def _enclosing_nest(body, target) -> list[str]:
    """Loop variables of the imperative (parallel/reduction) loops around `target`."""
    def go(stmts, acc):
        for s in stmts:
            if s is target:
                return acc
            if isinstance(s, n.Loop):
                inner = acc + [s.axis.var] if s.mark in (n.Mark.PARALLEL, n.Mark.REDUCTION) else acc
                found = go(s.body, inner)
                if found is not None:
                    return found
            elif isinstance(s, n.If):
                found = go(s.body, acc) or go(s.orelse, acc)
                if found is not None:
                    return found
        return None
    return go(body, []) or []


def _exprs(s):
    for attr in ("value", "y", "cond"):
        v = getattr(s, attr, None)
        if v is not None:
            yield v
    if isinstance(s, n.Store):
        yield from s.index
    if isinstance(s, n.Grads):
        yield from s.wrt


def _reads_data(e) -> bool:
    """Whether a value depends on tensor elements (a shape `dim(…)` of anything does not)."""
    if isinstance(e, n.Dim):
        return False
    return isinstance(e, n.Load) or any(_reads_data(c) for c in children(e))


def _walk(e):
    yield e
    for c in children(e):
        yield from _walk(c)


def _uses(e, names) -> bool:
    return any(isinstance(x, n.Sym) and x.name in names for x in _walk(e))


def _functions(module):
    yield module.main
    yield from module.functions
    for c in module.classes:
        yield from c.methods
