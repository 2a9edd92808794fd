"""Batching a host loop whose iterations are independent (the seed's evaluation loop).

    for i in lo .. hi independent     if batch_runs(lo, hi) and batch_rows(test_X, 2, lo, hi) and …
      %x = test_X[i]                     %x⟨b2⟩ = test_X[lo:hi]
      %y = f(x)                  ──▶     …f's body, every value with a leading axis b…
      if p == t                          %correct = batch_add_count(correct, reduce add over b
        %correct = correct + 1                                        (select(p[b] == t[b], 1, 0)))
                                         %x = x⟨b2⟩[N - 1]  … (what the last iteration left)
                                       else
                                         the loop, as it was

Every value the loop body computes per iteration becomes one tensor over the iterations: a
tabulation of the inlined bodies with the loop's axis in front (so the vectoriser and the idiom
matchers, which know batch axes, see batched conv/pool/linear nests), `x = T[i]` a slice, a
conditional count `if c: acc += k` the sum of the condition times k. After it, every variable the
loop assigns holds what its last iteration left, and the loop variable is hi - 1.

Only main's top-level loops are considered. Legality (each a named predicate below; any failure
keeps the loop as it is):
- `loop_is_batchable`: the loop is `independent` and reaches no `grad` (`nograd`, or the program
  has none), its body is assignments and conditional integer counts only (no print, store, field
  assignment, grad, nested loop), no call in it may change an argument (`GradContext.may_mutate`),
  and every variable is assigned once, before any read in the same iteration
  (`_reads_nothing_carried`: a running sum of data, `t += x[i]`, refuses — its real sum would
  round in another order);
- `is_straight_line`: every function or method it calls is assignments and one final return, with
  no tracked parameter; calls are inlined (a builtin or constructor call refuses);
- `_count_is_exact`: an accumulation is `acc = acc + k` under a condition (or none) with k an
  integer constant, acc read and written nowhere else; the guard `batch_count_exact` checks at
  run time that acc is a number or a 0-d tensor holding an integer and that |acc| + N·|k| ≤ 2^24, so every
  partial sum is exact in float32 and the order of the additions cannot matter;
- no index reads a per-iteration value (`_index_is_data_free`): the shapes of every iteration are
  the same, so a shape error (the only error such a body can raise: `//`, `%`, `@`, `floor` and
  `int` of data, which could fail in one iteration only, refuse) fails in every iteration at the
  same source place; the batched form raises it there too. Which point the message names may
  differ (docs/design.md);
- the run-time guard (`batch_rows`, `batch_scalar`): the loop runs at least once, every tensor read
  as `T[i]` is a tensor of the rank the body needs with rows lo .. hi, and every loop-invariant
  value used as a number is a number. Where it fails, the loop runs as it was (and raises there).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace

from phc.ir import nodes as n
from phc.ir.analysis import GradContext, classes_of, stmt_reads, stmt_writes, walk_stmts
from phc.ir.simplify import free_syms, map_children, rename_binders, simplify, subst

_MATH = {"neg", "not", "exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "float", "sigmoid"}
_ELEMENTWISE_BIN = {"+", "-", "*", "/", "**", "<", ">", "<=", ">=", "==", "!=", "and", "or", "min", "max"}


class Refused(Exception):
    """A precondition of batching failed: the loop stays as it is."""


def batch_module(module: n.Module) -> n.Module:
    """Every independent host loop of main whose preconditions hold, batched."""
    ctx = GradContext(module)
    body = _batch_stmts(module, ctx, module.main.body)
    return module if body == module.main.body else replace(module, main=replace(module.main, body=body))


def _batch_stmts(module, ctx, stmts) -> tuple[n.Stmt, ...]:
    out = []
    for s in stmts:
        if isinstance(s, n.Loop) and s.mark is n.Mark.INDEPENDENT:
            try:
                out.append(Batcher(module, ctx).batch(s))
                continue
            except Refused:
                pass
        out.append(s)
    return tuple(out)


# ---------------------------------------------------------------- legality

def loop_is_batchable(loop: n.Loop, ctx: GradContext) -> None:
    """The loop-level preconditions (raises Refused with the reason)."""
    if loop.mark is not n.Mark.INDEPENDENT:
        raise Refused("not an independent loop")
    if not (loop.nograd or not _has_grad(ctx.module)):
        raise Refused("a value of the loop may reach a grad")
    assigned: set[str] = set()
    for s in loop.body:
        if isinstance(s, n.Assign) and not _is_count(s):
            if s.leaf or s.fresh_fields:
                raise Refused("a grad target")
            if s.name in assigned or s.name == loop.axis.var:
                raise Refused("a variable assigned twice")
            assigned.add(s.name)
        elif isinstance(s, n.If) and _conditional_count(s) is not None:
            pass
        elif not _is_count(s):
            raise Refused(f"a {type(s).__name__} in the loop")
    for s in walk_stmts(loop.body):
        if any(ctx.may_mutate(e) for e in _exprs(s)):
            raise Refused("a call that may change its arguments")
    _reads_nothing_carried(loop)
    counts = [c for c in map(_count_of, loop.body) if c is not None]
    for acc, _, _ in counts:
        _count_is_exact(acc, loop, counts)


def _reads_nothing_carried(loop: n.Loop) -> None:
    """No statement reads a variable the loop assigns before this iteration has assigned it
    (a running sum `t = t + e` of data included: its real sum would round in another order);
    the counts, whose variables nothing else reads, are checked by `_count_is_exact`."""
    written = set().union(*(stmt_writes(s) for s in walk_stmts(loop.body))) | {loop.axis.var}
    seen = {loop.axis.var}
    for s in loop.body:
        if _count_of(s) is not None:
            continue
        if (stmt_reads(s) & written) - seen:
            raise Refused("a value carried from one iteration to the next")
        seen |= stmt_writes(s)


def _has_grad(module: n.Module) -> bool:
    from phc.ir.analysis import _functions
    return any(isinstance(s, n.Grads) for f in _functions(module) for s in walk_stmts(f.body))


def _exprs(s):
    from phc.ir.analysis import stmt_exprs
    return stmt_exprs(s)


def _is_count(s) -> bool:
    return isinstance(s, n.Assign) and _increment(s) is not None


def _increment(s: n.Assign) -> n.Const | None:
    """k of `acc = acc + k`, k an integer constant (a real one with an integral value too)."""
    v = s.value
    if isinstance(v, n.Bin) and v.op == "+" and v.a == n.Sym(s.name) and isinstance(v.b, n.Const) \
            and not isinstance(v.b.value, bool) and isinstance(v.b.value, (int, float)) \
            and float(v.b.value).is_integer():
        return v.b
    return None


def _conditional_count(s: n.If) -> n.Assign | None:
    if len(s.body) == 1 and not s.orelse and _is_count(s.body[0]):
        return s.body[0]
    return None


def _count_of(s):
    """(acc, k, condition or None) of a count statement, else None."""
    if isinstance(s, n.If) and _conditional_count(s) is not None:
        a = _conditional_count(s)
        return a.name, _increment(a), s.cond
    if isinstance(s, n.Assign) and _is_count(s):
        return s.name, _increment(s), None
    return None


def _count_is_exact(acc: str, loop: n.Loop, counts) -> None:
    """acc is counted by one statement and read or written by no other one."""
    if sum(1 for c in counts if c[0] == acc) != 1:
        raise Refused(f"`{acc}` counted twice")
    for s in loop.body:
        own = _count_of(s)
        if own is not None and own[0] == acc:
            if own[2] is not None and acc in free_syms(own[2]):
                raise Refused(f"`{acc}` read by its condition")
            continue
        if acc in stmt_reads(s) | stmt_writes(s):
            raise Refused(f"`{acc}` read in the loop")


def is_straight_line(f: n.Function) -> bool:
    """Assignments (no grad target) and one final return: the body inlines as values."""
    *init, last = f.body or (None,)
    return (isinstance(last, n.Return) and last.value is not None and not f.tracked_params
            and all(isinstance(s, n.Assign) and not s.leaf and not s.fresh_fields for s in init))


def _index_is_data_free(index, batched: set[str]) -> bool:
    """No index reads a per-iteration value (only shapes of them): no data-dependent gather."""
    return not any(_reads_data(i, batched) for i in index)


def _reads_data(e: n.Expr, batched: set[str]) -> bool:
    """`e` reads the elements of a per-iteration value (its shape does not count)."""
    if isinstance(e, n.Dim):
        return False
    if isinstance(e, n.Sym):
        return e.name in batched
    if isinstance(e, (n.Reduce, n.Tabulate)):
        bound = {a.var for a in e.axes}
        return _reads_data(e.body, batched - bound) or any(
            _reads_data(a.lo, batched) or _reads_data(a.hi, batched) for a in e.axes)
    from phc.ir.simplify import children
    return any(_reads_data(c, batched) for c in children(e))


# ---------------------------------------------------------------- the transformation

@dataclass
class Val:
    """A per-iteration value: its batched tensor (a name) and its per-iteration rank (None: not
    yet known; the first use that fixes it is checked at run time for the loop's sources)."""
    name: str
    rank: int | None
    source: tuple | None = None      # (tensor expr) for `x = T[i]`: its rank is guarded


@dataclass
class Batcher:
    module: n.Module
    ctx: GradContext
    stmts: list = field(default_factory=list)        # the batched statements, in order
    rows: list = field(default_factory=list)         # (tensor, Val or None, rank) for T[i] reads
    scalars: list = field(default_factory=list)      # invariant values used as numbers
    depth: int = 0
    read_vals: list = field(default_factory=list)    # batched tensors the nest being lifted reads

    def batch(self, loop: n.Loop) -> n.Stmt:
        loop_is_batchable(loop, self.ctx)
        self.loop, self.var = loop, loop.axis.var     # the loop index (None inside inlined bodies)
        self.taken = _names_in(self.module.main)
        self.counter = itertools.count(1)
        self.b = self.fresh("b")
        self.n_rows: n.Expr | None = None
        env: dict[str, object] = {}
        counts = []
        for s in loop.body:
            c = _count_of(s)
            if c is not None:
                counts.append(c)
                continue
            env[s.name] = self.assign(rename_binders(s.value, self.fresh), env, s.name, main=True)
        finals = []
        guard_counts = []
        for acc, k, cond in counts:
            total = self.count_sum(k, cond, env)
            finals.append(self.assign_stmt(acc, n.Call("batch_add_count", (n.Sym(acc), total))))
            trips = simplify(n.Bin("-", loop.axis.hi, loop.axis.lo))
            guard_counts.append(n.Call("batch_count_exact", (n.Sym(acc), n.Bin("*", trips, n.Const(abs(int(k.value)))))))
        last = n.Bin("-", self.extent(), n.Const(1))
        for s in loop.body:
            if isinstance(s, n.Assign) and s.name in env and not _is_count(s):
                finals.append(self.assign_stmt(s.name, self.last_of(env[s.name], last)))
        finals.append(self.assign_stmt(self.var, n.Un("floor", n.Bin("-", loop.axis.hi, n.Const(1)))))
        guard = self.guard(loop, guard_counts)
        body = tuple(self.stmts) + tuple(finals)
        return n.If(guard, body, (loop,), loop.span)

    # ---- names and statements

    def fresh(self, base: str) -> str:
        while True:
            name = f"{base}⟨b{next(self.counter)}⟩"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def assign_stmt(self, name: str, value: n.Expr) -> n.Assign:
        return n.Assign(name, value, self.loop.span, nograd=self.loop.nograd)

    def extent(self) -> n.Expr:
        """The number of iterations: the rows of the first source (the idioms then see the batch
        loop cover their input's axis 0), else hi - lo; the guard proves them equal."""
        if self.n_rows is not None:
            return self.n_rows
        a = self.loop.axis
        return simplify(n.Bin("-", a.hi, a.lo))

    def index_var(self) -> n.Expr:
        lo = self.loop.axis.lo
        return n.Sym(self.b) if lo == n.Const(0) else n.Bin("+", n.Sym(self.b), lo)

    def axis(self, read=()) -> n.Axis:
        """The batch axis of a nest: over axis 0 of the first batched tensor it reads, where it
        reads one (all are n long: the idiom matchers then see the batch loop cover the input's
        batch axis), else over the iterations."""
        return n.Axis(self.b, n.Const(0), n.Dim(n.Sym(read[0]), 0) if read else self.extent())

    def last_of(self, v, last: n.Expr) -> n.Expr:
        if isinstance(v, Val):
            return n.Load(n.Sym(v.name), (last,))
        return v            # an invariant value: the expression (a name) itself

    # ---- values

    def assign(self, e: n.Expr, env: dict, name: str, main: bool = False):
        """Bind the per-iteration value of `e` (names from env) and return it: a Val, or an
        invariant expression (Const, Sym or Attr of names the loop does not assign)."""
        e = self.resolve(e, env)
        if self.is_invariant(e, env):
            if isinstance(e, (n.Const, n.Sym)) and not main:
                return e
            if _impure(e):
                raise Refused("a call or a sample in the loop")
            tmp = self.fresh(name)
            self.stmts.append(self.assign_stmt(tmp, e))
            return n.Sym(tmp)
        return self.batched(e, env, name)

    def resolve(self, e: n.Expr, env: dict) -> n.Expr:
        """Invariant names bound in env replaced by their expressions."""
        mapping = {k: v for k, v in env.items() if not isinstance(v, Val)}
        return subst(e, mapping) if mapping else e

    def is_invariant(self, e: n.Expr, env: dict) -> bool:
        vals = {k for k, v in env.items() if isinstance(v, Val)}
        return not (free_syms(e) & (vals | {self.var}))

    def batched(self, e: n.Expr, env: dict, name: str) -> Val:
        vals = {k: v for k, v in env.items() if isinstance(v, Val)}
        match e:
            case n.Sym(x) if x in vals:
                return vals[x]
            case n.Load(n.Sym(t), (n.Sym(i),)) if i == self.var and t not in vals and t != self.var:
                tmp = self.fresh(name)
                a = self.loop.axis
                self.stmts.append(self.assign_stmt(tmp, n.Slice(n.Sym(t), a.lo, a.hi)))
                v = Val(tmp, None, (n.Sym(t),))
                self.rows.append(v)
                if self.n_rows is None:
                    self.n_rows = n.Dim(n.Sym(tmp), 0)
                return v
            case n.Call():
                return self.inline(e, env, name)
            case n.Tabulate(axes, body):
                self.read_vals = []
                inner = self.in_nest(body, vals)
                axes2 = tuple(self.bound(a, vals) for a in axes)
                return self.bind(name, n.Tabulate((self.axis(self.read_vals),) + axes2, inner), len(axes))
            case n.Reshape(value, shape):
                src = self.operand(value, env, name)
                shape2 = tuple(self.bound(n.Axis("_", s, s), vals).lo for s in shape)
                return self.bind(name, n.Reshape(n.Sym(src.name), (self.extent(),) + shape2, e.span), len(shape))
        return self.bind(name, n.Tabulate((self.axis(),), self.scalar(e, vals)), 0)

    def operand(self, e: n.Expr, env: dict, name: str) -> Val:
        v = self.assign(e, env, name)
        if not isinstance(v, Val):
            raise Refused("an invariant operand of a batched shape operation")
        return v

    def bind(self, name: str, value: n.Expr, rank: int) -> Val:
        tmp = self.fresh(name)
        self.stmts.append(self.assign_stmt(tmp, value))
        return Val(tmp, rank)

    def bound(self, a: n.Axis, vals) -> n.Axis:
        """An axis of a per-iteration nest: its bounds may read shapes, never the batch axis."""
        lo, hi = self.in_nest(a.lo, vals, bound=True), self.in_nest(a.hi, vals, bound=True)
        if self.b in free_syms(lo) | free_syms(hi):
            raise Refused("a bound that depends on the iteration")
        return n.Axis(a.var, lo, hi)

    def scalar(self, e: n.Expr, vals) -> n.Expr:
        """A host expression whose per-iteration value is a number, as the body of a
        tabulation over b: invariant names must be numbers (guarded)."""
        match e:
            case n.Const():
                return e
            case n.Sym(x) if x in vals:
                self.fix_rank(vals[x], 0)
                return n.Load(n.Sym(vals[x].name), (n.Sym(self.b),))
            case n.Sym() | n.Attr():
                if free_syms(e) & (set(vals) | {self.var}):
                    raise Refused("a field of a per-iteration value")
                self.scalars.append(e)
                return e
            case n.Dim():
                return self.in_nest(e, vals, bound=True)
            case n.Sym(x) if x == self.var:
                raise Refused("the loop index used as a number")
            case n.Load(t, index) if free_syms(e) & (set(vals) | {self.var}):
                return self.in_nest(e, vals)
            case n.Bin(op, a, c) if op in _ELEMENTWISE_BIN:
                return replace(e, a=self.scalar(a, vals), b=self.scalar(c, vals))
            case n.Un(op, a) if op in _MATH:
                return replace(e, a=self.scalar(a, vals))
            case n.Un("sum", n.Sym(x)) if x in vals and vals[x].rank is not None:
                v = vals[x]            # the sum of every element of a per-iteration tensor
                axes = tuple(n.Axis(self.fresh("k"), n.Const(0), n.Dim(n.Sym(v.name), k + 1)) for k in range(v.rank))
                return n.Reduce(n.ReduceOp.ADD, axes, n.Load(n.Sym(v.name), (n.Sym(self.b),) + tuple(n.Sym(a.var) for a in axes)))
            case n.Select(c, a, b):
                return n.Select(self.scalar(c, vals), self.scalar(a, vals), self.scalar(b, vals))
            case n.Reduce(op, axes, body):
                return n.Reduce(op, tuple(self.bound(a, vals) for a in axes), self.in_nest(body, vals))
        raise Refused(f"no batched form of `{type(e).__name__}` as a number")

    def fix_rank_of_load(self, t: n.Sym, index) -> None:
        """`T[i, …]` of a loop-invariant T inside a nest: T must have exactly these axes, and
        the rows lo .. hi (guarded)."""
        self.rows.append(Val("", len(index) - 1, (t,)))

    def fix_rank(self, v: Val, rank: int) -> None:
        if v.rank is None:
            v.rank = rank
        elif v.rank != rank:
            raise Refused("a value used at two ranks")

    def in_nest(self, e: n.Expr, vals, bound: bool = False) -> n.Expr:
        """`e` (an element inside a nest, or a nest bound) with every per-iteration value read at
        the batch point: `v[idx]` is `V[b, idx]`, `dim(v, k)` is `dim(V, k + 1)`, `i` is b + lo."""
        names = set(vals)

        def go(x):
            match x:
                case n.Sym(s) if s == self.var:
                    return self.index_var()
                case n.Sym(s) if s in vals:
                    if bound:
                        raise Refused("a bound that reads a per-iteration value")
                    self.fix_rank(vals[s], 0)
                    return n.Load(n.Sym(vals[s].name), (n.Sym(self.b),))
                case n.Dim(n.Sym(s), k) if s in vals:
                    return n.Dim(n.Sym(vals[s].name), k + 1)
                case n.Load(n.Sym(s), index) if s in vals:
                    if not _index_is_data_free(index, names):
                        raise Refused("an index that reads a per-iteration value")
                    self.fix_rank(vals[s], len(index))
                    self.read_vals.append(vals[s].name)
                    return replace(x, tensor=n.Sym(vals[s].name),
                                   index=(n.Sym(self.b),) + tuple(go(i) for i in index))
                case n.Load(t, index) if free_syms(x) & (names | {self.var}):
                    if not _index_is_data_free(index, names):
                        raise Refused("an index that reads a per-iteration value")
                    if not (isinstance(t, n.Sym) and index and index[0] == n.Sym(self.var)
                            and not any(self.var in free_syms(i) for i in index[1:])
                            and not (free_syms(t) & (names | {self.var}))):
                        raise Refused("a read of a loop-invariant tensor at a computed index")
                    self.fix_rank_of_load(t, index)
                    return replace(x, index=tuple(go(i) for i in index))
                case n.Bin(op, a, b) if op in ("//", "%", "@") and (_reads_data(a, names) or _reads_data(b, names)):
                    raise Refused(f"`{op}` of per-iteration values")
                case n.Un(op, _) if op not in _MATH and free_syms(x) & (names | {self.var}):
                    raise Refused(f"`{op}` of a per-iteration value")
                case n.Call() | n.Sample() | n.Slice() | n.Subscript() | n.Item() | n.Tabulate() | n.Reshape() \
                        | n.Full() | n.ArrayLit() | n.Attr() if free_syms(x) & (names | {self.var}):
                    raise Refused(f"a {type(x).__name__} of a per-iteration value in a nest")
                case n.Call() | n.Sample():
                    raise Refused("a call inside a batched nest")
            return map_children(x, go)
        return go(e)

    def count_sum(self, k: n.Const, cond, env) -> n.Expr:
        """Σ_b select(cond_b, k, 0): the count the loop adds (exact: see _count_is_exact)."""
        vals = {x: v for x, v in env.items() if isinstance(v, Val)}
        zero = n.Const(0.0 if isinstance(k.value, float) else 0, k.dtype)
        if cond is None:
            body = k
        else:
            body = n.Select(self.scalar(self.resolve(cond, env), vals), k, zero)
        return n.Reduce(n.ReduceOp.ADD, (self.axis(),), body)

    # ---- calls

    def inline(self, call: n.Call, env: dict, name: str) -> Val:
        f, receiver = self.callee(call, env)
        if not is_straight_line(f):
            raise Refused(f"`{f.name}` is not straight-line")
        if self.depth > 16:
            raise Refused("calls nested too deep")
        self.depth += 1
        scope_var, inner = self.var, {}
        if receiver is not None:
            inner["this"] = receiver
        if len(call.args) != len(f.params):
            raise Refused("a call with default arguments")
        for p, a in zip(f.params, call.args):
            v = self.assign(a, env, p.name)
            if isinstance(v, Val):
                r = _declared_rank(p.type)
                if r is not None:
                    self.fix_rank(v, r)
            inner[p.name] = v
        self.var = None                         # the callee's names are its own
        fresh = lambda var: self.fresh(var)     # noqa: E731  every inlined binder unique
        for s in f.body:
            value = rename_binders(s.value, fresh)
            if not _bound_in(value, inner):
                raise Refused(f"`{f.name}` reads a name it does not bind")
            if isinstance(s, n.Assign):
                inner[s.name] = self.assign(value, inner, s.name)
            else:
                out = self.assign(value, inner, name)
        self.var = scope_var
        self.depth -= 1
        if not isinstance(out, Val):
            raise Refused("a call whose result does not depend on the iteration")
        return out

    def callee(self, call: n.Call, env: dict):
        if call.obj is None:
            for f in self.module.functions:
                if f.name == call.func:
                    return f, None
            raise Refused(f"a call of `{call.func}`")
        obj = self.resolve(call.obj, env)
        if not isinstance(obj, (n.Sym, n.Attr)) or not self.is_invariant(obj, env):
            raise Refused("a method of a per-iteration value")
        owner = self.owner_of(obj)
        for c in self.module.classes:
            if c.name == owner:
                for m in c.methods:
                    if m.name == call.func:
                        return m, obj
        raise Refused(f"no method `{call.func}`")

    def owner_of(self, obj) -> str:
        found = classes_of(obj, self.module.main, self.ctx)
        if len(found) != 1:
            raise Refused("a receiver of unknown class")
        return next(iter(found))

    # ---- the guard

    def guard(self, loop: n.Loop, counts) -> n.Expr:
        a = loop.axis
        parts = [n.Call("batch_runs", (a.lo, a.hi))]
        for v in self.rows:
            rank = -1 if v.rank is None else v.rank
            parts.append(n.Call("batch_rows", (v.source[0], n.Const(rank), a.lo, a.hi)))
        for e in self.scalars:
            parts.append(n.Call("batch_scalar", (e,)))
        parts += counts
        out = parts[0]
        for p in parts[1:]:
            out = n.Bin("and", out, p)
        return out


def _declared_rank(type_text: str) -> int | None:
    """The rank of a parameter's printed type (`f32` 0, `f32[H, W]` 2); None for a class."""
    m = re.fullmatch(r"(f32|i64|bool)(\[(.*)\])?", type_text.strip())
    if not m:
        return None
    return 0 if m.group(2) is None else len(m.group(3).split(","))


def _bound_in(e: n.Expr, scope: dict) -> bool:
    """Every name an inlined body reads is one of its parameters, locals or `this`."""
    return free_syms(e) <= set(scope)


def _impure(e: n.Expr) -> bool:
    from phc.ir.analysis import subexprs
    return any(isinstance(x, (n.Call, n.Sample)) for x in subexprs(e))


def _names_in(f: n.Function) -> set[str]:
    from phc.ir.analysis import stmt_exprs, subexprs
    out = {p.name for p in f.params}
    for s in walk_stmts(f.body):
        out |= stmt_writes(s)
        if isinstance(s, n.Loop):
            out.add(s.axis.var)
        for e in stmt_exprs(s):
            for x in subexprs(e):
                if isinstance(x, n.Sym):
                    out.add(x.name)
                elif isinstance(x, (n.Reduce, n.Tabulate)):
                    out |= {a.var for a in x.axes}
    return out
