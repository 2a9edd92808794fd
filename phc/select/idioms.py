"""Idiom matchers over the affine IR: which nests compute a conv2d, a pooling or a linear map.

Matching reads the IR only — never names or source text. A match carries the kernel spec
(`phc.select.plan`) and where its operands sit; the emitter replaces the matched expression by one
call of `runtime.idioms` (which runs `torch.nn.functional` or a rendered Triton kernel). Anything
that does not match exactly stays on the universal (vectorised torch) path, correct and slower.

  conv2d:  Σ_{c,ki,kj} X[b?, c?, s·i+ki, s·j+kj] · W[o?, c?, ki, kj]   over outer axes (b?, o?, i, j)
  pool2d:  max/min over a k×k window X[lead…, s·i+di, s·j+dj], as a `reduce` over (di, dj)
           or as a tree of `select(a > b, a, b)` of the k² loads (the seed's nested `max` calls)
  linear:  Σ_j W[i, j] · x[b?, j]                                      over outer axes (b?, i)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from phc.ir import nodes as n
from phc.ir.lower import linear_form
from phc.ir.simplify import children, contains, extent, simplify
from phc.select.plan import Conv2dSpec, LinearSpec, Pool2dSpec


@dataclass(frozen=True)
class ConvMatch:
    spec: Conv2dSpec
    x: n.Expr
    w: n.Expr
    has_batch: bool
    has_out: bool
    has_chan: bool
    out_axes: tuple[n.Axis, ...]        # (i, j): the spatial output axes
    chan_axis: n.Axis | None = None     # c: both operands are cut to its extent
    guarded: bool = False               # zero padding written as a guard: outputs past the input are 0


@dataclass(frozen=True)
class PoolMatch:
    spec: Pool2dSpec
    x: n.Expr
    lead: int                           # axes before the two spatial ones (channel, batch)
    out_axes: tuple[n.Axis, ...]
    ties: str                           # "first" (reduce form) or "last" (select-tree form)
    scale: int = 1                      # k² for a window sum (average × k²)


@dataclass(frozen=True)
class LinearMatch:
    spec: LinearSpec
    x: n.Expr
    w: n.Expr
    has_batch: bool
    out_axis: n.Axis
    w_transposed: bool = False
    x_transposed: bool = False
    red_axis: n.Axis | None = None      # k: both operands are cut to its extent


Match = ConvMatch | PoolMatch | LinearMatch


# ---------------------------------------------------------------- legality (shared)
#
# A matcher returns a match only when every one of these holds; otherwise it declines, and the
# nest stays on the universal path (correct, slower). The glue in `runtime.idioms` then computes
# exactly what the loops compute: spatial and output-feature extents are passed and checked at
# run time (the output is cut to them; a loop that would read past the input raises, as the loop
# would), reduction extents that cover one operand cut the other one to them.

def _extent_covers_operand(axis: n.Axis, operand: n.Expr, dim: int) -> bool:
    """The loop over `axis` runs over the whole axis `dim` of `operand` (provably, from 0)."""
    return _zero(simplify(axis.lo)) and simplify(extent(axis)) == n.Dim(operand, dim)


def _extent_covers_one_of(axis: n.Axis, operands) -> bool:
    """A reduction axis that covers at least one operand's axis (the glue cuts the others)."""
    return any(_extent_covers_operand(axis, t, d) for t, d in operands)


def _indices_are_axes(load: n.Load, axes: tuple[n.Axis, ...]) -> bool:
    """Every index of `load` is one of the nest's loop variables, each at most once: no index is
    a host value (a host loop's variable picks a sub-tensor that the idiom would not see)."""
    names = {a.var for a in axes}
    vars_ = [_var(i) for i in load.index]
    return None not in vars_ and set(vars_) <= names and len(set(vars_)) == len(vars_)


def _axes_from_zero(axes) -> bool:
    return all(_zero(simplify(a.lo)) for a in axes)


def _axis(axes, var: str) -> n.Axis:
    return next(a for a in axes if a.var == var)


# ---------------------------------------------------------------- conv2d and linear

def match_reduce(r: n.Reduce, outer: tuple[n.Axis, ...]) -> Match | None:
    if r.op is not n.ReduceOp.ADD or not _axes_from_zero(outer + r.axes):
        return None
    if isinstance(r.body, n.Select) and _zero(r.body.b) and isinstance(r.body.a, n.Bin) and r.body.a.op == "*":
        return _match_padded_conv(r, outer)
    if not isinstance(r.body, n.Bin) or r.body.op != "*":
        return None
    a, b = r.body.a, r.body.b
    if not (isinstance(a, n.Load) and isinstance(b, n.Load)):
        return None
    for x, w in ((a, b), (b, a)):
        m = _match_conv(x, w, r.axes, outer) or _match_linear(x, w, r.axes, outer)
        if m is not None:
            return m
    return None


def _match_padded_conv(r: n.Reduce, outer) -> ConvMatch | None:
    """Zero padding written as a guard: `select(0 <= s·i+ki-p < H and …, x[…] * w[…], 0)`."""
    prod = r.body.a
    if not (isinstance(prod.a, n.Load) and isinstance(prod.b, n.Load)):
        return None
    for x, w in ((prod.a, prod.b), (prod.b, prod.a)):
        m = _match_conv(x, w, r.axes, outer, allow_pad=True)
        if m is not None and m.spec.padding > 0 and _guard_is_the_input_bounds(r.body.cond, x):
            return replace(m, guarded=True)
    return None


def _guard_is_the_input_bounds(cond: n.Expr, x: n.Load) -> bool:
    """The guard is exactly `0 <= idx < dim(x, d)` for both spatial indices of x (the reads it
    discards are the zero padding, and only those)."""
    rank = len(x.index)
    want = set()
    for d, idx in zip((rank - 2, rank - 1), x.index[-2:]):
        want.add(n.Bin(">=", idx, n.Const(0)))
        want.add(n.Bin("<", idx, n.Dim(x.tensor, d)))
    return set(_conjuncts(cond)) == want


def _conjuncts(e):
    if isinstance(e, n.Bin) and e.op == "and":
        return _conjuncts(e.a) + _conjuncts(e.b)
    return [e]


def _match_conv(x: n.Load, w: n.Load, raxes, outer, allow_pad: bool = False) -> ConvMatch | None:
    """x[b?, c?, s·i+ki-p, s·j+kj-p] · w[o?, c?, ki, kj], outer axes (b?, o?, i, j), reduction
    axes (c?, ki, kj); see the legality section above for what each axis must cover."""
    rv, ov = [ax.var for ax in raxes], [ax.var for ax in outer]
    if not (_indices_are_axes(w, outer + raxes) and 2 <= len(w.index) <= 4):
        return None
    widx = [_var(i) for i in w.index]
    ki, kj = widx[-2], widx[-1]
    lead_w = widx[:-2]                       # (o?, c?)
    has_out = bool(lead_w) and lead_w[0] in ov
    has_chan = bool(lead_w) and lead_w[-1] in rv
    if len(lead_w) != has_out + has_chan or ki not in rv or kj not in rv:
        return None
    chan = lead_w[-1] if has_chan else None
    if sorted(rv) != sorted(v for v in (chan, ki, kj) if v):
        return None
    if len(x.index) < 2 or not _indices_are_axes(n.Load(x.tensor, x.index[:-2]), outer + raxes):
        return None
    lead = [_var(i) for i in x.index[:-2]]   # (b?, c?)
    has_batch = len(lead) == 1 + has_chan
    if len(lead) != has_batch + has_chan or (has_chan and lead[-1] != chan):
        return None
    spatial = _spatial(x.index[-2:], (ki, kj), ov, rv, allow_pad)
    if spatial is None:
        return None
    (i, j), stride, pad = spatial
    batch = lead[0] if has_batch else None
    if ov != [v for v in (batch, lead_w[0] if has_out else None, i, j) if v]:
        return None
    if not _conv_extents_legal(x, w, raxes, outer, batch, has_out, chan, (ki, kj)):
        return None
    return ConvMatch(Conv2dSpec(stride, pad, False), x.tensor, w.tensor, has_batch, has_out, has_chan,
                     tuple(ax for ax in outer if ax.var in (i, j)),
                     _axis(raxes, chan) if chan else None)


def _spatial(index, kvars, ov, rv, allow_pad):
    """(i, j), stride, padding of the spatial indices s·i + ki - p, s·j + kj - p (one s, one p)."""
    outs, strides, pads = [], [], []
    for idx, kvar in zip(index, kvars):
        form = linear_form(idx, ov + rv)
        if form is None:
            return None
        const = _int(simplify(form[1]))
        if const is None or const > 0 or (const < 0 and not allow_pad):
            return None
        coeffs = {k: v for k, v in form[0].items() if not _zero(simplify(v))}
        if len(coeffs) != 2 or kvar not in coeffs or _int(coeffs[kvar]) != 1:
            return None
        (ovar,) = set(coeffs) - {kvar}
        s = _int(coeffs[ovar])
        if ovar not in ov or s is None or s < 1:
            return None
        outs.append(ovar), strides.append(s), pads.append(-const)
    if outs[0] == outs[1] or strides[0] != strides[1] or pads[0] != pads[1]:
        return None
    return tuple(outs), strides[0], pads[0]


def _conv_extents_legal(x, w, raxes, outer, batch, has_out, chan, kvars) -> bool:
    """Batch and output-channel loops cover x's and w's first axes (the glue computes them
    whole); the kernel loops cover w's kernel axes; the channel loop covers x's or w's
    channel axis (the glue cuts both to it)."""
    wt, xt, wr, xr = w.tensor, x.tensor, len(w.index), len(x.index)
    if batch and not _extent_covers_operand(_axis(outer, batch), xt, 0):
        return False
    if has_out and not _extent_covers_operand(_axis(outer, _var(w.index[0])), wt, 0):
        return False
    if not all(_extent_covers_operand(_axis(raxes, k), wt, wr - 2 + d) for d, k in enumerate(kvars)):
        return False
    return chan is None or _extent_covers_one_of(_axis(raxes, chan), ((wt, wr - 3), (xt, xr - 3)))


def _match_linear(x: n.Load, w: n.Load, raxes, outer) -> LinearMatch | None:
    """Σ_k W[o, k]·x[b?, k] (also W[k, o]: transposed, and x[k, b]: a column batch). The batch
    loop covers x's batch axis; the k loop covers w's or x's k axis (the glue cuts both to it);
    the o loop is cut at run time."""
    if len(raxes) != 1 or len(w.index) != 2 or len(x.index) not in (1, 2):
        return None
    if not (_indices_are_axes(w, outer + raxes) and _indices_are_axes(x, outer + raxes)):
        return None
    k = raxes[0].var
    wi, xi = [_var(i) for i in w.index], [_var(i) for i in x.index]
    if k not in wi or k not in xi:
        return None
    w_t = wi[0] == k
    o = wi[1] if w_t else wi[0]
    x_t = len(xi) == 2 and xi[0] == k
    b = None if len(xi) == 1 else (xi[1] if x_t else xi[0])
    if [ax.var for ax in outer] != ([b] if b else []) + [o] or b == o:
        return None
    if b is not None and not _extent_covers_operand(outer[0], x.tensor, xi.index(b)):
        return None
    if not _extent_covers_one_of(raxes[0], ((w.tensor, wi.index(k)), (x.tensor, xi.index(k)))):
        return None
    return LinearMatch(LinearSpec(False), x.tensor, w.tensor, b is not None, outer[-1], w_t, x_t, raxes[0])


# ---------------------------------------------------------------- pooling

def match_pool(e: n.Expr, outer: tuple[n.Axis, ...]) -> PoolMatch | None:
    if not all(_zero(ax.lo) for ax in outer) or len(outer) < 2:
        return None
    ops = {n.ReduceOp.MAX: "max", n.ReduceOp.MIN: "min", n.ReduceOp.ADD: "sum"}
    if isinstance(e, n.Reduce) and e.op in ops and isinstance(e.body, n.Load):
        if len(e.axes) != 2 or not all(_zero(a.lo) for a in e.axes):
            return None
        k = [_int(simplify(extent(a))) for a in e.axes]
        if k[0] is None or k[0] != k[1]:
            return None
        offsets = [(di, dj) for di in range(k[0]) for dj in range(k[0])]
        loads = [simplify(_subst_window(e.body, e.axes, o)) for o in offsets]
        return _pool_from_loads(loads, ops[e.op], outer, "first")
    for kind, op in (("max", ">"), ("min", "<")):
        leaves = _select_tree(e, op)
        if leaves and len(leaves) >= 4 and all(isinstance(l, n.Load) for l in leaves):
            return _pool_from_loads(leaves, kind, outer, "last")
    return None


def _select_tree(e: n.Expr, op: str) -> list | None:
    """Leaves of `select(a > b, a, b)` trees (`max(a, max(b, …))` inlined), in order."""
    if isinstance(e, n.Select) and isinstance(e.cond, n.Bin) and e.cond.op == op \
            and e.cond.a == e.a and e.cond.b == e.b:
        left, right = _select_tree(e.a, op), _select_tree(e.b, op)
        if left is None or right is None:
            return None
        return left + right
    if isinstance(e, n.Load):
        return [e]
    return None


def _subst_window(body, axes, offs):
    from phc.ir.simplify import subst
    return subst(body, {a.var: n.Const(o) for a, o in zip(axes, offs)})


def _lead_axes_cover_input(lead_axes, x) -> bool:
    """The loops before the window's two (batch, channel) run over x's whole leading axes: the
    glue pools every plane of x."""
    return all(_extent_covers_operand(a, x, d) for d, a in enumerate(lead_axes))


def _pool_from_loads(loads, kind, outer, ties) -> PoolMatch | None:
    """The k² loads are x[lead…, s·i + di, s·j + dj] for every (di, dj) of a k×k window."""
    t = loads[0].tensor
    if any(l.tensor != t or len(l.index) != len(loads[0].index) for l in loads):
        return None
    ov = [ax.var for ax in outer]
    rank = len(loads[0].index)
    lead = [_var(i) for i in loads[0].index[:-2]]
    if lead != ov[:-2] or len(ov) != rank or not _lead_axes_cover_input(outer[:-2], t):
        return None
    i, j = ov[-2], ov[-1]
    window = []
    stride = None
    for l in loads:
        if [_var(x) for x in l.index[:-2]] != lead:
            return None
        pos = []
        for idx, var in zip(l.index[-2:], (i, j)):
            form = linear_form(idx, ov)
            if form is None or set(form[0]) - {var}:
                return None
            s, d = _int(simplify(form[0].get(var, n.Const(0)))), _int(simplify(form[1]))
            if s is None or d is None:
                return None
            if stride is None:
                stride = s
            if s != stride:
                return None
            pos.append(d)
        window.append(tuple(pos))
    k = int(round(len(window) ** 0.5))
    if k * k != len(window) or sorted(window) != [(a, b) for a in range(k) for b in range(k)]:
        return None
    if ties == "last" and window != sorted(window):
        return None     # the tie rule below assumes row-major order of the leaves
    if stride < 1:
        return None
    # a window sum is an average pool times k²: the Triton template computes averages
    spec = Pool2dSpec("avg" if kind == "sum" else kind, k, stride)
    return PoolMatch(spec, t, len(lead), tuple(outer[-2:]), ties, k * k if kind == "sum" else 1)


# ---------------------------------------------------------------- helpers

def _var(e) -> str | None:
    return e.name if isinstance(e, n.Sym) else None


def _int(e) -> int | None:
    from phc.ir.simplify import as_int
    return None if e is None else as_int(e)


def _zero(e) -> bool:
    return isinstance(e, n.Const) and e.value == 0


# ---------------------------------------------------------------- the plan

@dataclass
class Plan:
    """Which nests of which functions matched which idiom (`phc ir --stage kernels`)."""
    backend: str
    matches: list[tuple[str, str, Match]] = field(default_factory=list)
    universal: list[tuple[str, str]] = field(default_factory=list)
    fusions: list[tuple[str, str]] = field(default_factory=list)
    module: object = None           # the fused module the plan is for

    def specs(self) -> list:
        seen, out = set(), []
        for _, _, m in self.matches:
            if m.spec.name not in seen:
                seen.add(m.spec.name)
                out.append(m.spec)
        return out

    def text(self) -> str:
        lines = [f"kernel plan (backend: {self.backend})"]
        for fn, target, m in self.matches:
            lines.append(f"  {fn}: %{target}  {_describe(m)}")
        for fn, what in self.fusions:
            lines.append(f"  {fn}: fused    {what}")
        for fn, target in self.universal:
            lines.append(f"  {fn}: %{target}  universal path (vectorised torch ops)")
        return "\n".join(lines) + "\n"

    def triton_source(self) -> str:
        if not self.matches:
            return ""
        from phc.emit.triton_backend import render_ops
        return render_ops(self.specs())


def _describe(m: Match) -> str:
    from phc.ir.printer import expr
    match m:
        case ConvMatch():
            layout = "".join(c for c, on in (("B", m.has_batch), ("C", m.has_chan)) if on) + "HW"
            guard = " (a guard: zeros past the input)" if m.guarded else ""
            return (f"conv2d   {m.spec.name}: input {expr(m.x)} [{layout}], weight {expr(m.w)}, "
                    f"stride {m.spec.stride}, padding {m.spec.padding}{guard}")
        case PoolMatch():
            what = "sum-pool (avg x k²)" if m.scale != 1 else f"{m.spec.kind}pool2d"
            ties = f", ties to the {m.ties} extreme" if m.spec.kind != "avg" else ""
            return (f"{what} {m.spec.name}: input {expr(m.x)}, window {m.spec.k}x{m.spec.k}, "
                    f"stride {m.spec.stride}{ties}")
        case LinearMatch():
            forms = [f for f, on in (("batched", m.has_batch), ("weight transposed", m.w_transposed),
                                     ("input transposed", m.x_transposed)) if on]
            return f"linear   {m.spec.name}: weight {expr(m.w)}, input {expr(m.x)}{' (' + ', '.join(forms) + ')' if forms else ''}"
    return "?"


def plan_module(module: n.Module, backend: str) -> Plan:
    """Every match the emitter will make: the walk follows `phc.emit` — every expression of every
    statement, with the loop axes of the nest it sits in (a `Tabulate`, a `Reduce`, or an
    imperative nest of parallel/reduction loops around a store), host loops being no axes."""
    plan = Plan(backend)
    for qual, f in _functions(module):
        for target, value, outer in _stmt_values(f.body, ()):
            if not contains(value, lambda x: isinstance(x, (n.Tabulate, n.Reduce))):
                continue
            found = list(_find(value, outer))
            plan.matches.extend((qual, target, m) for m in found)
            if not found:
                plan.universal.append((qual, target))
    return plan


def _stmt_values(stmts, outer):
    """(what the value is for, the value, the nest axes around it) of every statement."""
    for s in stmts:
        match s:
            case n.Assign(name, value):
                yield name, value, outer
            case n.Return(value) if value is not None:
                yield "return", value, outer
            case n.Print(value) | n.Eval(value):
                yield "print" if isinstance(s, n.Print) else "eval", value, outer
            case n.Store(tensor, index, value):
                target = _store_target(tensor)
                yield target, value, outer
                for i in index:
                    yield target, i, outer
            case n.Loop(axis, body) if s.mark in (n.Mark.PARALLEL, n.Mark.REDUCTION):
                yield from _bounds(axis, outer)
                yield from _stmt_values(body, outer + (axis,))
            case n.Loop(axis, body):
                yield from _bounds(axis, outer)
                yield from _stmt_values(body, outer)
            case n.If(cond, body, orelse):
                yield "if", cond, outer
                yield from _stmt_values(body, outer)
                yield from _stmt_values(orelse, outer)
            case n.Grads(_, y, wrt):
                for e in (y, *wrt):
                    yield "grad", e, outer


def _bounds(axis: n.Axis, outer):
    yield axis.var, axis.lo, outer
    yield axis.var, axis.hi, outer


def _store_target(tensor: n.Expr) -> str:
    from phc.ir.printer import expr
    return expr(tensor) + "[…]"


def _find(e: n.Expr, outer):
    if isinstance(e, n.Tabulate):
        yield from _find(e.body, outer + e.axes)
        return
    if isinstance(e, n.Reduce):
        m = match_reduce(e, outer) or match_pool(e, outer)
        if m is not None:
            yield m
            return
        yield from _find(e.body, outer + e.axes)
        return
    m = match_pool(e, outer) if isinstance(e, n.Select) else None
    if m is not None:
        yield m
        return
    for c in children(e):
        yield from _find(c, outer)


def _functions(module: n.Module):
    for f in module.functions:
        yield f.name, f
    for c in module.classes:
        for m in c.methods:
            yield f"{c.name}.{m.name}", m
    yield "main", module.main
