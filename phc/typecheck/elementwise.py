"""A function of numbers applied to tensors, as a comprehension (a pure AST → AST rewrite).

`tanh(W1 @ x + b1)`, with `def tanh(x: ℝ): ℝ` and an argument of type ℝ[16,1], becomes a call of
a function phc writes once per (function, tensor positions, rank):

    def tanh⟨map2 0⟩(x: ℝ[d0, d1]): ℝ[d0, d1]:
        return for i0: ℕ(len(x)) -> for i1: ℕ(len(x[0])) -> tanh(x[i0, i1])

so the arguments are evaluated once, each element goes through the function as written (its
`if`s included), and the lowering vectorises the comprehension like any other. Every node written
here carries the call's place, so a diagnostic about it points at the call.
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass, replace

from phc import ast as A

_MARK = "⟨map"     # not a character of any Physika name: no user name can collide


def mapped_function(name: str) -> str | None:
    """f for the name of f's mapping function, else None."""
    return name.split(_MARK, 1)[0] if _MARK in name else None


def map_elementwise(program: A.Program, calls: dict) -> A.Program:
    """The program with each recorded call redirected to its mapping function, those defined
    right after the function they map."""
    made: dict[tuple, A.FuncDef] = {}
    swap: dict[int, A.Call] = {}
    for call, (name, positions, rank) in calls.items():
        key = (name, positions, rank)
        if key not in made:
            made[key] = _mapping_function(_function(program, name), positions, rank, call.span)
        mapped = made[key]
        swap[id(call)] = A.Call(A.Name(mapped.name, call.func.span), call.args, call.span)
    body: list = []
    for s in program.body:
        body.append(_rebuild(s, swap))
        if isinstance(s, A.FuncDef):
            body += [f for (name, _, _), f in made.items() if name == s.name]
    return replace(program, body=tuple(body))


def _function(program: A.Program, name: str) -> A.FuncDef:
    """The last top-level definition of `name` (a later `def` replaces an earlier one)."""
    return [s for s in program.body if isinstance(s, A.FuncDef) and s.name == name][-1]


def _mapping_function(f: A.FuncDef, positions: tuple[int, ...], rank: int, span: A.Span) -> A.FuncDef:
    at = lambda node: replace(node, span=span)      # noqa: E731
    dims = tuple(A.Name(f"d{k}", span) for k in range(rank))
    params = tuple(A.Param(p.name, at(A.TypeExpr(p.type.scalar, dims))) if k in positions else p
                   for k, p in enumerate(f.params))
    ret = A.TypeExpr(f.ret.scalar if isinstance(f.ret, A.TypeExpr) else A.Scalar.REAL, dims, span=span)
    idx = [f"i{k}" for k in range(rank)]
    shaped = f.params[positions[0]].name
    element = A.Call(A.Name(f.name, span), tuple(
        A.Index(A.Name(p.name, span), tuple(A.Name(i, span) for i in idx), span) if k in positions
        else A.Name(p.name, span) for k, p in enumerate(f.params)), span)
    body: A.Expr = element
    for k in reversed(range(rank)):
        axis = A.Name(shaped, span) if k == 0 else \
            A.Index(A.Name(shaped, span), tuple(A.Num(0, span) for _ in range(k)), span)
        size = A.Call(A.Name("len", span), (axis,), span)
        body = A.Comprehension(idx[k], A.Range(None, size, span), body, span)
    name = f"{f.name}{_MARK}{rank} {' '.join(map(str, positions))}⟩"
    return A.FuncDef(name, params, ret, (A.Return(body, span),), span, span)


def _rebuild(node, swap: dict[int, A.Call]):
    """node with the calls in `swap` replaced (new nodes on the path to each, the rest shared)."""
    if id(node) in swap:
        return swap[id(node)]
    if isinstance(node, tuple):
        items = tuple(_rebuild(x, swap) for x in node)
        return node if all(a is b for a, b in zip(items, node)) else items
    if is_dataclass(node) and not isinstance(node, (A.Span, A.TypeExpr)):
        changed = {}
        for fl in fields(node):
            value = getattr(node, fl.name)
            new = _rebuild(value, swap)
            if new is not value:
                changed[fl.name] = new
        return replace(node, **changed) if changed else node
    return node
