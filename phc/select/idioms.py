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

from dataclasses import dataclass, field

from phc.ir import nodes as n
from phc.ir.lower import linear_form
from phc.ir.simplify import simplify, free_syms, extent
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


Match = ConvMatch | PoolMatch | LinearMatch


# ---------------------------------------------------------------- conv2d and linear

def match_reduce(r: n.Reduce, outer: tuple[n.Axis, ...]) -> Match | None:
    if r.op is not n.ReduceOp.ADD:
        return None
    if isinstance(r.body, n.Select) and _zero(r.body.b) and isinstance(r.body.a, n.Bin) and r.body.a.op == "*":
        return _match_padded_conv(r, outer)
    if not isinstance(r.body, n.Bin) or r.body.op != "*":
        return None
    a, b = r.body.a, r.body.b
    if not (isinstance(a, n.Load) and isinstance(b, n.Load)):
        return None
    if not all(_zero(ax.lo) for ax in outer + r.axes):
        return None
    for x, w in ((a, b), (b, a)):
        m = _match_conv(x, w, r.axes, outer) or _match_linear(x, w, r.axes, outer)
        if m is not None:
            return m
    return None


def _match_padded_conv(r: n.Reduce, outer) -> ConvMatch | None:
    """Zero padding written as a guard: `select(0 <= s·i+ki-p < H and …, x[…] * w[…], 0)`."""
    prod = r.body.a
    if not (isinstance(prod.a, n.Load) and isinstance(prod.b, n.Load)) or not all(_zero(a.lo) for a in outer + r.axes):
        return None
    guard = set(_conjuncts(r.body.cond))
    for x, w in ((prod.a, prod.b), (prod.b, prod.a)):
        m = _match_conv(x, w, r.axes, outer, allow_pad=True)
        if m is None or m.spec.padding == 0:
            continue
        rank = len(x.index)
        want = set()
        for d, idx in zip((rank - 2, rank - 1), x.index[-2:]):
            want.add(n.Bin(">=", idx, n.Const(0)))
            want.add(n.Bin("<", idx, n.Dim(x.tensor, d)))
        if guard == want:
            return m
    return None


def _conjuncts(e):
    if isinstance(e, n.Bin) and e.op == "and":
        return _conjuncts(e.a) + _conjuncts(e.b)
    return [e]


def _match_conv(x: n.Load, w: n.Load, raxes, outer, allow_pad: bool = False) -> ConvMatch | None:
    rv = [ax.var for ax in raxes]
    ov = [ax.var for ax in outer]
    widx = [_var(i) for i in w.index]
    if None in widx or len(widx) < 2 or len(set(widx)) != len(widx):
        return None
    ki, kj = widx[-2], widx[-1]
    if ki not in rv or kj not in rv:
        return None
    has_out = len(widx) >= 3 and widx[0] in ov
    has_chan = (len(widx) == 4) or (len(widx) == 3 and widx[0] in rv)
    if len(widx) == 4 and not (widx[0] in ov and widx[1] in rv):
        return None
    chan = widx[-3] if has_chan else None
    if sorted(rv) != sorted([v for v in (chan, ki, kj) if v]):
        return None
    xidx = list(x.index)
    if len(xidx) < 2:
        return None
    spatial = xidx[-2:]
    lead = [_var(i) for i in xidx[:-2]]
    if None in lead:
        return None
    has_batch = len(lead) == (2 if has_chan else 1)
    if lead != ([v for v in (lead[0] if has_batch else None, chan) if v]):
        return None
    # spatial indices: s·i + ki and s·j + kj (no padding: padded forms are guarded loads)
    sp, pads = [], []
    for idx, kvar in zip(spatial, (ki, kj)):
        form = linear_form(idx, ov + rv)
        if form is None:
            return None
        const = _int(simplify(form[1]))
        if const is None or const > 0 or (const < 0 and not allow_pad):
            return None
        pads.append(-const)
        coeffs = {k: v for k, v in form[0].items() if not _zero(simplify(v))}
        if set(coeffs) - {kvar} == set() or len(coeffs) != 2 or _int(coeffs.get(kvar)) != 1:
            return None
        (ovar,) = set(coeffs) - {kvar}
        s = _int(coeffs[ovar])
        if ovar not in ov or s is None or s < 1:
            return None
        sp.append((ovar, s))
    (i, si), (j, sj) = sp
    if si != sj or i == j or pads[0] != pads[1]:
        return None
    want = [v for v in ((lead[0] if has_batch else None), (widx[0] if has_out else None), i, j) if v]
    if ov != want:
        return None
    # every reduction axis must run over the whole weight axis
    wt = w.tensor
    ext = {ax.var: simplify(extent(ax)) for ax in raxes}
    if ext[ki] != n.Dim(wt, len(widx) - 2) or ext[kj] != n.Dim(wt, len(widx) - 1):
        return None
    if has_chan and ext[chan] not in (n.Dim(wt, len(widx) - 3), n.Dim(x.tensor, len(xidx) - 3)):
        return None
    return ConvMatch(Conv2dSpec(si, pads[0], False), x.tensor, wt, has_batch, has_out, has_chan,
                     tuple(ax for ax in outer if ax.var in (i, j)))


def _match_linear(x: n.Load, w: n.Load, raxes, outer) -> LinearMatch | None:
    """Σ_k W[o, k]·x[b?, k] (also W[k, o]: transposed, and x[k, b]: a column batch)."""
    if len(raxes) != 1 or len(w.index) != 2 or len(x.index) not in (1, 2):
        return None
    k = raxes[0].var
    wi = [_var(i) for i in w.index]
    xi = [_var(i) for i in x.index]
    if None in wi or None in xi or k not in wi or k not in xi:
        return None
    w_t = wi[0] == k
    o = wi[1] if w_t else wi[0]
    x_t = len(xi) == 2 and xi[0] == k
    b = None if len(xi) == 1 else (xi[1] if x_t else xi[0])
    ov = [ax.var for ax in outer]
    if ov != ([b] if b else []) + [o] or o == k or b in (k, o):
        return None
    ext = simplify(extent(raxes[0]))
    if ext not in (n.Dim(w.tensor, 0 if w_t else 1), n.Dim(x.tensor, xi.index(k))):
        return None
    return LinearMatch(LinearSpec(False), x.tensor, w.tensor, b is not None, outer[-1], w_t, x_t)


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


def _pool_from_loads(loads, kind, outer, ties) -> PoolMatch | None:
    t = loads[0].tensor
    if any(l.tensor != t or len(l.index) != len(loads[0].index) for l in loads):
        return None
    ov = [ax.var for ax in outer]
    rank = len(loads[0].index)
    lead = [_var(i) for i in loads[0].index[:-2]]
    if lead != ov[:-2] or len(ov) != rank:
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
            return (f"conv2d   {m.spec.name}: input {expr(m.x)} [{layout}], weight {expr(m.w)}, "
                    f"stride {m.spec.stride}, padding {m.spec.padding}")
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
    plan = Plan(backend)
    for qual, f in _functions(module):
        from phc.ir.analysis import walk_stmts
        from phc.ir.simplify import contains
        for s in walk_stmts(f.body):
            value = s.value if isinstance(s, (n.Assign, n.Return)) else None
            if value is None or not contains(value, lambda x: isinstance(x, (n.Tabulate, n.Reduce))):
                continue
            name = s.name if isinstance(s, n.Assign) else "return"
            found = list(_find(value, ()))
            for m in found:
                plan.matches.append((qual, name, m))
            if not found:
                plan.universal.append((qual, name))
    return plan


def _find(e: n.Expr, outer):
    from phc.ir.simplify import children
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
