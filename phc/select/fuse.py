"""Fusion of neighbouring nests into one operation (level 3 in docs/design.md).

Softmax: `e = [exp(x[i]) for i]; t = Σ_j e[j]; r = [e[k] / t for k]` (the seed's `softmax`,
written over three statements) is one fused softmax. It computes the same function; it is
evaluated the numerically stable way (subtracting the maximum first), so where the program's
own formula would overflow to inf/inf = nan, the fused one returns the right probabilities.
"""
from __future__ import annotations

from dataclasses import replace

from phc.ir import nodes as n
from phc.ir.analysis import stmt_reads, walk_stmts
from phc.ir.simplify import extent, simplify

FUSED_SOFTMAX = "fused_softmax"


def fuse_module(module: n.Module) -> tuple[n.Module, list[tuple[str, str]]]:
    """The module with fused nests, and (function, description) of each fusion made."""
    done: list[tuple[str, str]] = []

    def go(f: n.Function, qual: str) -> n.Function:
        body, found = _fuse_softmax(f.body)
        done.extend((qual, d) for d in found)
        return replace(f, body=body)

    functions = tuple(go(f, f.name) for f in module.functions)
    classes = tuple(replace(c, methods=tuple(go(m, f"{c.name}.{m.name}") for m in c.methods))
                    for c in module.classes)
    main = go(module.main, "main")
    return replace(module, functions=functions, classes=classes, main=main), done


def _fuse_softmax(body: tuple[n.Stmt, ...]):
    stmts, found = list(body), []
    k = 0
    while k + 2 < len(stmts):
        m = _softmax_at(stmts, k)
        if m is None:
            k += 1
            continue
        x, last = m
        value = n.Call(FUSED_SOFTMAX, (x,))
        new = n.Return(value, last.span) if isinstance(last, n.Return) else n.Assign(last.name, value, last.span, last.nograd)
        stmts[k:k + 3] = [new]
        found.append(f"softmax of {_text(x)} (3 nests → 1)")
    return tuple(stmts), found


def _softmax_at(stmts, k):
    a, b, c = stmts[k:k + 3]
    if not (isinstance(a, n.Assign) and isinstance(b, n.Assign) and isinstance(c, (n.Assign, n.Return))):
        return None
    e, t = a.name, b.name
    # e = [exp(x[i]) for i in 0 .. dim(x, 0)]
    if not (isinstance(a.value, n.Tabulate) and len(a.value.axes) == 1):
        return None
    (ai,) = a.value.axes
    body = a.value.body
    if not (isinstance(body, n.Un) and body.op == "exp" and isinstance(body.a, n.Load)
            and body.a.index == (n.Sym(ai.var),) and _full(ai, body.a.tensor)):
        return None
    x = body.a.tensor
    # t = Σ_j e[j] over all of e
    r = b.value
    if not (isinstance(r, n.Reduce) and r.op is n.ReduceOp.ADD and len(r.axes) == 1
            and r.body == n.Load(n.Sym(e), (n.Sym(r.axes[0].var),))
            and simplify(extent(r.axes[0])) in (n.Dim(n.Sym(e), 0), simplify(extent(ai)))
            and simplify(r.axes[0].lo) == n.Const(0)):
        return None
    # r = [e[i] / t for i in 0 .. dim(x, 0)]
    v = c.value
    if not (isinstance(v, n.Tabulate) and len(v.axes) == 1):
        return None
    (ci,) = v.axes
    if not (v.body == n.Bin("/", n.Load(n.Sym(e), (n.Sym(ci.var),)), n.Sym(t)) and simplify(ci.lo) == n.Const(0)
            and simplify(extent(ci)) in (simplify(extent(ai)), n.Dim(n.Sym(e), 0))):
        return None
    # e and t must be dead afterwards
    rest = stmts[k + 3:]
    if any({e, t} & stmt_reads(s) for st in rest for s in walk_stmts([st])):
        return None
    if isinstance(c, n.Assign) and c.name in (e, t):
        return None
    return x, c


def _full(axis: n.Axis, tensor) -> bool:
    return simplify(axis.lo) == n.Const(0) and simplify(axis.hi) == n.Dim(tensor, 0)


def _text(e) -> str:
    from phc.ir.printer import expr
    return expr(e)
