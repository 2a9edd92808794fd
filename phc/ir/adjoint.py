"""Reverse-mode differentiation at compile time: a `grad` becomes explicit adjoint code.

For each `Grads` statement of `main`, `derive_module` builds its tape (`phc.ir.tape`: the
statements that compute y, as straight-line tensor operations) and the tape's adjoint, written
backwards (`adjoint`): one vector-Jacobian rule per operation (`RULES`), the cotangents of an
operation's uses summed before its own rule runs. The emitter (`phc.emit.adjoint_code`) writes
the tape where the original statements stood and the adjoint where the `Grads` stood; the module
then records no autograd tape. A precondition failing anywhere (`NotDerivable`) keeps the whole
module on autograd (`Adjoint.mode == "autograd"`, with the reasons): a different gradient is
never the price of a faster one. `format_adjoint` is the text of `phc ir --stage grad`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from phc.ir import nodes as n
from phc.ir.analysis import GradContext, name_deps, stmt_exprs, subexprs, walk_stmts
from phc.ir.tape import Builder, NotDerivable, Op, _text

@dataclass(frozen=True)
class Back:
    """One adjoint statement: `out = kind(args)`, names `g5` (cotangent of op 5), `v5` (its value),
    `c5.0` (op 5's contribution to its first argument's cotangent)."""
    out: tuple[str, ...]
    kind: str
    args: tuple = ()


@dataclass
class Step:
    grads: n.Grads
    ops: list[Op]
    segments: dict[int, tuple[int, int, str]]   # id(Assign) -> (first op, last op, variable)
    y: int | None                                # the op of y (None: y reaches no target)
    wrt: list[int | None]                        # per target: its op, None when y does not reach it
    back: list[Back]
    tail: int = 0                                # ops from here on compute y at the `Grads` itself

    @staticmethod
    def of(g: n.Grads, tape) -> "Step":
        targets = [w for w in tape.wrt if w is not None]
        back = adjoint(tape.ops, tape.y, targets) if tape.y is not None else []
        return Step(g, tape.ops, tape.segments, tape.y, tape.wrt, back, tape.tail)


@dataclass
class Adjoint:
    """What the emitter needs: `mode` is "adjoint" when every `grad` of the module was derived."""
    mode: str = "autograd"
    steps: dict[int, Step] = field(default_factory=dict)     # id(Grads) -> its step
    reasons: list[tuple[int, str]] = field(default_factory=list)   # (line, why autograd stays)

    def step_of(self, g: n.Grads) -> tuple[int, "Step"]:
        for k, (key, step) in enumerate(self.steps.items()):
            if key == id(g):
                return k, step
        raise KeyError("a `grad` with no derived step")

    def segments_of(self, s: n.Stmt) -> list:
        """(step number, step, segment) of every step whose tape holds the assignment `s`."""
        return [(k, step, step.segments[id(s)]) for k, step in enumerate(self.steps.values())
                if id(s) in step.segments]


def derive_module(module: n.Module) -> Adjoint:
    """The adjoint of every `grad` of the module, or the reasons why autograd stays."""
    ctx = GradContext(module)
    out = Adjoint()
    sites = ctx.sites(module.main.body)
    grads = [s for s in walk_stmts(module.main.body) if isinstance(s, n.Grads)]
    if not grads:
        return out
    why = _module_excluded(module, ctx, grads, sites)
    if why:
        out.reasons.append((_line(grads[0]), why))
        return out
    deps = name_deps(module.main.body, ctx, cut=True)
    for g in grads:
        try:
            block, k = _block_of(module.main.body, g)
            out.steps[id(g)] = Step.of(g, Builder(module, ctx, deps, block, k).step())
        except NotDerivable as e:
            out.reasons.append((_line(g), str(e)))
    if not out.reasons:
        out.mode = "adjoint"
    return out


def _line(s) -> int:
    return getattr(getattr(s, "span", None), "line", 0) or 0


# builtins that run autograd themselves: a module calling one keeps autograd everywhere
_ON_AUTOGRAD = ("grad", "grad_create_graph", "partial_point", "train", "evaluate")


def _module_excluded(module: n.Module, ctx: GradContext, grads, sites) -> str:
    if len(sites) != sum(len(g.wrt) for g in grads):
        return "a `grad` inside an expression (not a statement of its own)"
    for f in (*module.functions, *(m for c in module.classes for m in c.methods)):
        if ctx.sites(f.body) or f.tracked_params:
            return f"`grad` inside the function `{f.name}`"
    # `create_graph` (a grad's y may be computed from a grad's result) needs no exclusion: a
    # tape that reads a gradient computed from one of its own targets fails
    # `_external_is_constant` (name_deps makes a grad's results depend on its y and targets),
    # and the gradients' values are the same with or without the graph kept.
    functions = {f.name for f in module.functions}
    assigned = {s.name for s in walk_stmts(module.main.body) if isinstance(s, n.Assign)}
    for g in grads:
        if isinstance(g.y, n.Sym) and g.y.name in functions and g.y.name not in assigned:
            return f"`grad({g.y.name}, …)` differentiates a function (at the point), on autograd"
    for f in (module.main, *module.functions, *(m for c in module.classes for m in c.methods)):
        for s in walk_stmts(f.body):
            for e in stmt_exprs(s):
                for x in subexprs(e):
                    if isinstance(x, n.Call) and x.func in _ON_AUTOGRAD:
                        return f"`{x.func}` runs on autograd" + ("" if f is module.main else f" (in `{f.name}`)")
    return ""


def _block_of(body, target):
    """The statement list that holds `target` directly, and its position there."""
    for k, s in enumerate(body):
        if s is target:
            return body, k
        for inner in _blocks(s):
            try:
                return _block_of(inner, target)
            except LookupError:
                pass
    raise LookupError


def _blocks(s):
    if isinstance(s, n.Loop):
        return (s.body,)
    if isinstance(s, n.If):
        return (s.body, s.orelse)
    return ()


# ---------------------------------------------------------------- the adjoint

# kind -> which arguments get a contribution, per argument the rule's name
RULES = {
    "un": lambda op: ((0, f"d_{op.attrs[0]}"),),
    "bin": lambda op: ((0, f"d{_BIN_NAME[op.attrs[0]]}_a"), (1, f"d{_BIN_NAME[op.attrs[0]]}_b")),
    "pow": lambda op: ((0, "dpow"),),
    "relu": lambda op: ((0, "drelu"),),
    "sigmoid": lambda op: ((0, "dsigmoid"),),
    "where": lambda op: ((1, "dwhere_a"), (2, "dwhere_b")),
    "hselect": lambda op: ((1, "dselect_a"), (2, "dselect_b")),
    "index": lambda op: ((0, "dindex"),),
    "reshape": lambda op: ((0, "dreshape"),),
    "name": lambda op: ((0, "dname"),),
    "expand": lambda op: ((0, "dexpand"),),
    "sum": lambda op: ((0, "dsum"),),
    "rsum": lambda op: ((0, "drsum"),),
    "rmax": lambda op: ((0, "drext"),),
    "rmin": lambda op: ((0, "drext"),),
    "view": lambda op: ((0, "dview"),),
    "store": lambda op: ((0, "dstore_old"), (1, "dstore_value")),
    "bview": lambda op: ((0, "dbview"),),
    "unsqueeze": lambda op: ((0, "dunsqueeze"),),
    "softmax": lambda op: ((0, "dsoftmax"),),
    "conv2d": lambda op: ((0, "dconv2d_x"), (1, "dconv2d_w")),
    "pool2d": lambda op: ((0, "dpool2d"),),
    "linear": lambda op: ((0, "dlinear_x"), (1, "dlinear_w")),
    "matmul": lambda op: ((0, "dmatmul_a"), (1, "dmatmul_b")),
}
_BIN_NAME = {"+": "add", "-": "sub", "*": "mul", "/": "div"}


def adjoint(ops: list[Op], y: int, targets: list[int]) -> list[Back]:
    """The reverse sweep from y: for each op on a path from a target to y, latest first, its
    cotangent is the sum of its uses' contributions; its rule sends contributions to its args."""
    live = _on_paths(ops, y, set(targets))
    contribs: dict[int, list[str]] = {k: [] for k in live}
    out = [Back((f"g{y}",), "seed", (f"v{y}",))]
    for op in sorted((ops[k] for k in live), key=lambda o: -o.id):
        if op.id != y:
            parts = contribs[op.id]
            out.append(Back((f"g{op.id}",), "acc", tuple(parts)))
        if op.kind in ("field", "var", "leaf", "host", "cmp", "logic", "axis"):
            continue
        rules = [(k, r) for k, r in RULES[op.kind](op) if op.args[k] in live]
        if not rules:
            continue
        names = tuple(f"c{op.id}.{k}" for k, _ in rules)
        out.append(Back(names, op.kind, tuple(r for _, r in rules)))
        for (k, _), name in zip(rules, names):
            contribs[op.args[k]].append(name)
    return out


def _on_paths(ops, y, targets) -> set[int]:
    """Ops that a target reaches and that reach y through differentiable arguments (a
    comparison, a condition, an index carries no derivative)."""
    reaches_y = {y}
    for op in sorted(ops[:y + 1], key=lambda o: -o.id):
        if op.id in reaches_y:
            reaches_y.update(op.args[k] for k in _differentiable_args(op))
    from_t = set()
    for op in ops:
        if op.id in targets or any(op.args[k] in from_t for k in _differentiable_args(op)):
            from_t.add(op.id)
    return reaches_y & from_t


def _differentiable_args(op: Op) -> tuple[int, ...]:
    rules = RULES.get(op.kind)
    return tuple(k for k, _ in rules(op)) if rules else ()


# ---------------------------------------------------------------- text (`phc ir --stage grad`)

def format_adjoint(adj: Adjoint, module: n.Module) -> str:
    lines = [f"adjoint: {adj.mode}"]
    for line, why in adj.reasons:
        lines.append(f"  note: line {line}: `grad` keeps autograd: {why}")
    for k, step in enumerate(adj.steps.values()):
        g = step.grads
        lines.append("")
        lines.append(f"step {k}: {', '.join('%' + t for t in g.targets)} = grad {_text(g.y)} wrt "
                     f"{', '.join(_text(w) for w in g.wrt)}  # line {_line(g)}")
        lines.append("  forward")
        starts = {first: var for first, last, var in step.segments.values()}
        ends = {last: var for first, last, var in step.segments.values()}
        for op in step.ops:
            if op.id in starts:
                lines.append(f"    # %{starts[op.id]}")
            lines.append(f"    {format_op(op)}" + (f"  -> %{ends[op.id]}" if op.id in ends else ""))
        lines.append("  backward")
        for b in step.back:
            lines.append(f"    {format_back(b, step)}")
        for t, w in zip(g.targets, step.wrt):
            lines.append(f"  %{t} = " + (f"g{w}" if w is not None and w in _live(step) else "zeros"))
    return "\n".join(lines) + "\n"


def _live(step: Step) -> set[int]:
    return {int(b.out[0][1:]) for b in step.back if b.kind in ("seed", "acc")}


def format_back(b: Back, step: Step) -> str:
    """`g5 = acc(c7.0, c9.1)`; a rule: `c4.0, c4.1 = dmul_a, dmul_b(g4; v4 = mul(v2, v3))`."""
    outs = ", ".join(b.out)
    if b.kind in ("seed", "acc"):
        return f"{outs} = {b.kind}({', '.join(b.args)})"
    op = step.ops[int(b.out[0][1:].split(".")[0])]
    args = ", ".join(f"v{a}" for a in op.args)
    return f"{outs} = {', '.join(b.args)}(g{op.id}; v{op.id} = {op.kind}({args}))"


def format_op(op: Op) -> str:
    def attr(a):
        if isinstance(a, tuple):
            return "(" + ", ".join(attr(x) for x in a) + ("," if len(a) == 1 else "") + ")"
        if a is None or isinstance(a, (int, float, str, bool)):
            return repr(a)
        if hasattr(a, "symbol"):
            return a.symbol
        return _text(a)
    args = ", ".join(f"v{a}" for a in op.args)
    attrs = ", ".join(attr(a) for a in op.attrs)
    body = ", ".join(x for x in (args, attrs) if x)
    rank = "" if op.rank is None else f" : rank {op.rank}"
    text = f"v{op.id} = {op.kind}({body}){rank}{'' if op.tainted else '  # constant'}"
    return re.sub(r"%(\d+)", r"v\1", text)
