"""Loop nests lifted to whole-tensor operations of a tape (`phc.ir.tape`)."""
from __future__ import annotations

from phc.ir import nodes as n
from phc.ir.simplify import extent, free_syms, sigmoid_of, simplify, surely_nonnegative
from phc.ir.tape import BINARY, COMPARE, UNARY, NotDerivable, _broadcast_positions, _text

def size_of(a: n.Axis) -> n.Expr:
    """The number of points of an axis: its extent, clamped at 0 unless surely nonnegative
    (`ℕ(2, 1)` runs no iteration; a view of size -1 would be an error)."""
    e = simplify(extent(a))
    return e if surely_nonnegative(e) else n.Bin("max", e, n.Const(0))


class Lifter:
    """An elementwise nest body over `axes` as whole-tensor ops: a load `x[i, j]` indexed by the
    nest's own variables, in order, over x's whole extent, is `x`; any other affine load is a
    strided view (`rt.nests.view`, bounds-checked as the emitter's); an idiom (conv, pool,
    linear) over exactly these axes is its call; a reduction over more axes reduces the trailing
    axes of its body's tensor; a value of no axis is broadcast."""

    def __init__(self, b, env, scope, axes, guarded: bool = False):     # b: phc.ir.tape.Builder
        self.b, self.env, self.scope, self.guarded = b, env, scope, guarded
        self.shift = {}
        fixed = []
        for a in axes:
            lo = simplify(a.lo)
            if lo != n.Const(0):       # i in lo .. hi is i' + lo with i' in 0 .. hi - lo
                self.shift[a.var] = n.Bin("+", n.Sym(a.var), lo)
                a = n.Axis(a.var, n.Const(0), simplify(n.Bin("-", a.hi, lo)))
            fixed.append(a)
        self.axes = tuple(fixed)
        self.vars = tuple(a.var for a in self.axes)
        self.inner_scope = scope.with_axes(set(self.vars))
        self.whole: set[int] = set()    # ops that read a whole tensor over these axes

    def lift_full(self, e: n.Expr) -> int:
        """`lift(e)` broadcast to the nest's whole extent where it may have unit axes (a body
        that does not vary along an axis, `x[j - j]`): a tabulation has every point, and a
        reduction sums every one."""
        x = self.lift(e)
        if self.full(x):
            return x
        sizes = tuple(self.scope.resolve(size_of(a), self.env, self.b) for a in self.axes)
        return self.b.add("expand", (x,), sizes, len(self.axes))

    def full(self, op_id: int) -> bool:
        """Whether op_id's value, an op of this nest, has the nest's whole shape (no unit axis)."""
        op = self.b.ops[op_id]
        rank = len(self.axes)
        if op_id in self.whole or rank == 0:
            return True
        match op.kind:
            case "conv2d" | "pool2d" | "linear" | "expand":
                return True
            case "view":
                return all(any(c != n.Const(0) for c in row) for row in op.attrs[1])
            case "bview":
                return len(op.attrs[0]) == rank
            case "axis":
                return rank == 1
            case "un" | "sigmoid" | "relu" | "pow" | "rsum" | "rmax" | "rmin":
                return op.rank == rank and self.full(op.args[0])
            case "bin" | "cmp" | "logic" | "where":
                return op.rank == rank and any(self.full(a) for a in op.args)
        return False

    def lift(self, e: n.Expr) -> int:
        from phc.ir.simplify import subst
        if self.shift:
            e = simplify(subst(e, self.shift))
            self.shift = {}
        return self._lift(e)

    def _lift(self, e: n.Expr) -> int:
        b, scope = self.b, self.scope
        rank = len(self.vars)
        span = getattr(e, "span", None)
        if not (free_syms(e) & set(self.vars)):
            return b.lin(e, self.env, scope)
        idiom = self._idiom(e) if not self.shift else None
        if idiom is not None:
            return idiom
        used = tuple(a for a in self.axes if a.var in free_syms(e))
        if len(used) < len(self.axes):
            # computed over the axes it uses, then broadcast: `top` of a row is one value per row
            # (and the same op wherever the row's nests mention it)
            x = Lifter(b, self.env, scope, used, self.guarded)._lift(e)
            positions = tuple(self.axes.index(a) for a in used)
            return b.add("unsqueeze", (x,), (positions, rank), rank, span=span)
        match e:
            case n.Sym(var) if var in self.vars:
                k = self.vars.index(var)        # the loop variable as a value: an arange
                size = self.scope.resolve(size_of(self.axes[k]), self.env, b)
                return b.add("axis", (), (k, len(self.vars), size), rank, False)
            case n.Load(t, index) if tuple(index) == tuple(n.Sym(v) for v in self.vars) and self._covers(t):
                x = b.lin(t, self.env, scope)
                if b.ops[x].rank != rank:
                    raise NotDerivable("an elementwise nest over a tensor of another rank")
                self.whole.add(x)
                return x
            case n.Load(t, index) if not (free_syms(t) & set(self.vars)):
                return self._view(t, index, span)
            case n.Bin("/") if sigmoid_of(e) is not None:
                return b.add("sigmoid", (self._lift(sigmoid_of(e)),), (), rank, span=span)
            case n.Un("sigmoid", a):
                return b.add("sigmoid", (self._lift(a),), (), rank, span=span)
            case n.Bin("max" | "min" as op, x, y):
                lx, ly = self._lift(x), self._lift(y)
                cond = b.add("cmp", (lx, ly), (">" if op == "max" else "<",), rank, False)
                return b.add("where", (cond, lx, ly), (), rank, span=span)
            case n.Bin("and" | "or" as op, x, y):
                return b.add("logic", (self._lift(x), self._lift(y)), (op,), rank, False)
            case n.Un("not", a):
                return b.add("logic", (self._lift(a),), ("not",), rank, False)
            case n.Un(op, a) if op in UNARY:
                return b.add("un", (self._lift(a),), (op,), rank, span=span)
            case n.Bin(op, x, y) if op in BINARY:
                return b.add("bin", (self._lift(x), self._lift(y)), (op,), rank, span=span)
            case n.Bin(op, x, y) if op in COMPARE:
                return b.add("cmp", (self._lift(x), self._lift(y)), (op,), rank, False)
            case n.Bin("**", a, n.Const(c)) if isinstance(c, (int, float)) and not isinstance(c, bool) and c != 0:
                return b.add("pow", (self._lift(a),), (c,), rank)
            case n.Select(c, a, n.Const(0.0)) if c in (n.Bin(">", a, n.Const(0)), n.Bin(">", a, n.Const(0.0))):
                return b.add("relu", (self._lift(a),), (), rank)
            case n.Select(c, a, y):
                cond = self._lift(c)
                # a branch may read out of range where it is not chosen: only whole-tensor reads
                branch = Lifter(b, self.env, scope, self.axes, guarded=True)
                return b.add("where", (cond, branch._lift(a), branch._lift(y)), (), rank)
            case n.Reduce(op, raxes, body) if op in (n.ReduceOp.ADD, n.ReduceOp.MAX, n.ReduceOp.MIN):
                inner = Lifter(b, self.env, scope, self.axes + tuple(raxes), self.guarded)
                x = inner.lift_full(body)
                kind = {n.ReduceOp.ADD: "rsum", n.ReduceOp.MAX: "rmax", n.ReduceOp.MIN: "rmin"}[op]
                return b.add(kind, (x,), (len(raxes),), rank, span=span)
        raise NotDerivable(f"no adjoint rule for the nest body `{_text(e)}`")

    def _covers(self, t: n.Expr) -> bool:
        """The nest covers all of t: each extent is t's own size (`dim(t, k)`)."""
        return all(simplify(extent(a)) == n.Dim(t, k) for k, a in enumerate(self.axes))

    def _view(self, t: n.Expr, index, span) -> int:
        """`t[affine index]` over the nest's axes: `rt.nests.view`'s strided view (a broadcast
        axis where the index does not use the variable)."""
        from phc.ir.lower import linear_form
        b = self.b
        x = b.lin(t, self.env, self.scope)
        if b.ops[x].rank != len(index):
            raise NotDerivable("a read of a sub-tensor inside a nest")
        consts, rows = [], [[] for _ in self.axes]
        for i in index:
            form = linear_form(i, self.vars)
            if form is None:
                raise NotDerivable("a data-dependent index inside a nest")
            coeffs, const = form
            consts.append(self.scope.resolve(simplify(const), self.env, b))
            for k, a in enumerate(self.axes):
                c = coeffs.get(a.var)
                rows[k].append(n.Const(0) if c is None else self.scope.resolve(simplify(c), self.env, b))
        sizes = tuple(self.scope.resolve(size_of(a), self.env, b) if any(c != n.Const(0) for c in rows[k]) else n.Const(1)
                      for k, a in enumerate(self.axes))
        positions = _broadcast_positions(consts, rows)
        if positions is not None and not self.guarded:
            # t[i, j] read over nest axes (…, i, …, j, …): t itself with unit axes put in
            extents = tuple(sizes[a] for a in positions)
            return b.add("bview", (x,), (positions, len(self.axes), extents), len(self.axes), span=span)
        # in a branch a point may read outside t where the branch is not chosen: a guarded view
        # reads a zero there (as the emitter's), and its adjoint sends nothing back
        attrs = (tuple(consts), tuple(tuple(r) for r in rows), sizes, self.guarded)
        return b.add("view", (x,), attrs, len(self.axes), span=span)

    def _idiom(self, e: n.Expr) -> int | None:
        from phc.select import idioms as I
        m = I.match_reduce(e, self.axes) if isinstance(e, n.Reduce) else None
        m = m or I.match_pool(e, self.axes)
        if m is None:
            return None
        b, env, scope = self.b, self.env, self.scope
        res = lambda x: scope.resolve(x, env, b)
        spatial = tuple(self.axes[-2:])
        match m:
            case I.ConvMatch() if tuple(m.out_axes) == spatial:
                # the matcher proved the nest's axes are exactly (b?, o?, i, j)
                x, w = b.lin(m.x, env, scope), b.lin(m.w, env, scope)
                nc = None if m.chan_axis is None else res(extent(m.chan_axis))
                attrs = (m.spec.stride, res(extent(self.axes[-2])), res(extent(self.axes[-1])), m.has_batch,
                         m.has_out, m.has_chan, m.spec.padding, nc, m.guarded, m.spec)
                return b.add("conv2d", (x, w), attrs, len(self.axes))
            case I.PoolMatch() if (tuple(m.out_axes) == spatial and m.lead + 2 == len(self.axes)
                                   and m.spec.kind in ("max", "min") and m.scale == 1):
                x = b.lin(m.x, env, scope)
                attrs = (m.spec.kind, m.spec.k, m.spec.stride, res(extent(self.axes[-2])), res(extent(self.axes[-1])),
                         m.ties, m.lead + 2, m.scale, m.spec)
                return b.add("pool2d", (x,), attrs, len(self.axes))
            case I.LinearMatch() if m.out_axis == self.axes[-1] and len(self.axes) == 1 + m.has_batch:
                x, w = b.lin(m.x, env, scope), b.lin(m.w, env, scope)
                attrs = (res(extent(m.out_axis)), m.has_batch, m.w_transposed, m.x_transposed,
                         res(extent(m.red_axis)) if m.red_axis is not None else None, m.spec)
                return b.add("linear", (x, w), attrs, len(self.axes))
        raise NotDerivable(f"no adjoint rule for this {type(m).__name__[:-5].lower()} (a batch or channel axis, a cut or a guard)")
