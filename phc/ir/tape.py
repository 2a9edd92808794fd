"""The tape of a `grad`: the statements that compute its value, as straight-line tensor operations.

`Builder(module, ctx, deps, block, k).step()` linearises the statements of `block` before its
`Grads` at position k that y's value comes from: user functions and methods inlined (parameters
bound to ops, `this` to the receiving object), loop nests lifted to whole-tensor operations
(`phc.ir.lift`), every value an `Op` of a kind, argument ops and constant attributes. The adjoint
pass (`phc.ir.adjoint`) differentiates the result. Each precondition is a named check raising
`NotDerivable(reason)`:
- `_block_is_straight`: between the tape's first statement and the `Grads`, only assignments,
  prints, other `grad`s, and loops or branches of them; no store, field assignment or call that
  changes its arguments (an object whose fields the tape read is not reassigned either);
- `_external_is_constant`: a variable the tape reads but does not compute (assigned before the
  block, or in an earlier iteration) depends on no `grad` target (flow-insensitive dependences
  over `main`, cut at proved fresh leaves), so it is a constant of the step;
- `_field_is_root`: a field read `obj.f` is a variable of its own: every assignment of `obj` is a
  construction of one class, a tracked field's argument depends on no target, nothing assigns a
  field in place, no other name holds the object, no method changes it;
- `_inlinable`: a function on the path is assignments, vectorised store nests
  (`_store_is_injective`) and branches on the call's constants, each path ending in a return;
- y is a scalar by the declared ranks (a Jacobian keeps autograd), and every operation on the
  path has a rule (`phc.ir.adjoint.RULES`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from phc.ir import nodes as n
from phc.ir.analysis import GradContext, closure, root_name, stmt_exprs, stmt_writes, walk_stmts
from phc.ir.simplify import children, free_syms, sigmoid_of, simplify

UNARY = {"neg", "exp", "log", "sin", "cos", "tanh", "sqrt", "abs"}
BINARY = {"+", "-", "*", "/"}
COMPARE = {">", "<", ">=", "<=", "==", "!="}


class NotDerivable(Exception):
    """A precondition of the adjoint pass failed; the message says which, for the notes."""


@dataclass(frozen=True)
class Op:
    """One tensor operation of the tape. `args` are earlier ops' ids; `attrs` are the operation's
    constants (IR expressions for host values, extents and indices, rendered by the emitter)."""
    id: int
    kind: str
    args: tuple[int, ...] = ()
    attrs: tuple = ()
    rank: int | None = None
    tainted: bool = False      # depends on a `grad` target (only these get cotangents)
    span: object = field(default=None, compare=False)


@dataclass
class Tape:
    ops: list[Op]
    segments: dict[int, tuple[int, int, str]]   # id(Assign) -> (first op, last op, variable)
    y: int | None                                # the op of y (None: y reaches no target)
    wrt: list[int | None]                        # per target: its op, None when y does not reach it
    tail: int = 0                                # ops from here on compute y at the `Grads` itself


def rank_of(type_text: str) -> int | None:
    """The rank of a printed IR type (`f32` 0, `f32[H, W]` 2); None for a class or a list."""
    m = re.fullmatch(r"(f32|i64|bool)(\[(.*)\])?", type_text.strip())
    if not m:
        return None
    return 0 if m.group(2) is None else len(m.group(3).split(","))


# ---------------------------------------------------------------- building a step

class Builder:
    def __init__(self, module, ctx, deps, block, k):
        self.module, self.ctx, self.deps = module, ctx, deps
        self.block, self.k = block, k
        self.g: n.Grads = block[k]
        self.ops: list[Op] = []
        self.roots = {root_name(w) for w in self.g.wrt}
        if None in self.roots:
            raise NotDerivable("a `grad` target that is not a variable or a field")
        self.objects = {root_name(w) for w in self.g.wrt if not isinstance(w, n.Sym)}
        self.field_ops: dict[tuple[str, str], int] = {}
        self.var_ops: dict[str, int] = {}
        self.reassigned: set[str] = set()
        self.known: dict = {}
        self.tail = 0

    # ---- the statements

    def step(self) -> "Tape":
        g = self.g
        needed = self._needed_statements()
        first = min(needed, default=self.k)
        _block_is_straight(self.block[first:self.k], self.ctx)
        env: dict[str, int] = {}
        segments = {}
        for j in range(first, self.k):
            s = self.block[j]
            if j in needed and not self._constructs(s.value):
                start = len(self.ops)
                top = self._assigned(s, env)
                self.ops[top] = _with(self.ops[top], span=s.span)
                env[s.name] = top
                self.reassigned.discard(s.name)
                segments[id(s)] = (start, top, s.name)
            else:
                read = {obj for obj, _ in self.field_ops}
                for name in {w for x in walk_stmts([s]) for w in stmt_writes(x)}:
                    if name in read:
                        raise NotDerivable(f"`{name}` is assigned between the forward computation and `grad`")
                    env.pop(name, None)       # reassigned by a statement outside the tape
                    self.reassigned.add(name)
        self.tail = len(self.ops)
        y = self._y(env)
        wrt = [self._target(w, env) for w in g.wrt]
        if y is not None and not self.ops[y].tainted:
            y = None        # y reads no target: every gradient is zeros
        if y is not None and self.ops[y].rank != 0:
            raise NotDerivable("the differentiated value is not known to be a scalar")
        return Tape(self.ops, segments, y, wrt, self.tail)

    def _assigned(self, s: n.Assign, env) -> int:
        """The op of an assignment of the tape; a `grad` target given a value that reads no other
        target starts a variable of its own (what its fresh leaf is at level 0)."""
        from phc.ir.analysis import integer_valued
        top = self.lin(s.value, env, Scope())
        if (s.name in self.roots and s.name not in self.objects and not self.ops[top].tainted
                and not integer_valued(s.value)):       # an integer has no derivative (level 0)
            top = self.add("leaf", (top,), (), self.ops[top].rank, True)
        elif s.name in self.roots and s.name not in self.objects and not isinstance(s.value, (n.Sym, n.Attr)):
            # a target computed here is a tensor of its own: `grad(y, mid)` counts the uses of mid
            # only, not those of an equal expression written elsewhere (which the op would share);
            # `mid = x` names x's tensor itself, whose uses are all x's
            top = self.add("name", (top,), (s.name, len(self.ops)), self.ops[top].rank)
        return top

    def _constructs(self, e: n.Expr) -> bool:
        """A construction of an instance: emitted as it is (its fields are read through it)."""
        return isinstance(e, n.Call) and e.obj is None and e.func in {c.name for c in self.module.classes}

    def _needed_statements(self) -> set[int]:
        """Positions of the block's assignments before the `Grads` that y's value comes from."""
        want = set(free_syms(self.g.y)) if not isinstance(self.g.y, n.Sym) else {self.g.y.name}
        needed = set()
        for j in range(self.k - 1, -1, -1):
            s = self.block[j]
            if isinstance(s, n.Assign) and s.name in want:
                want.discard(s.name)
                needed.add(j)
                want |= set(free_syms(s.value))
        return needed

    def _y(self, env) -> int | None:
        y = self.g.y
        if isinstance(y, n.Sym) and y.name in env:
            return env[y.name]
        top = self.lin(y, env, Scope())
        return top

    def _target(self, w: n.Expr, env) -> int | None:
        if isinstance(w, n.Attr) and isinstance(w.obj, n.Sym):
            return self.field_ops.get((w.obj.name, w.name))
        if isinstance(w, n.Sym):
            if w.name in env:
                return env[w.name]
            return None if w.name in self.reassigned else self.var_ops.get(w.name)
        raise NotDerivable("a `grad` target that is not a variable or a field")

    # ---- expressions

    def add(self, kind, args=(), attrs=(), rank=None, tainted=None, span=None) -> int:
        if tainted is None:
            tainted = any(self.ops[a].tainted for a in args)
        # the same operation of the same values is computed once (a host expression is not: it
        # reads variables whose values may differ between the statements that mention it)
        key = (kind, tuple(args), tuple(attrs)) if kind not in ("host", "var", "field", "leaf") else None
        if key is not None and key in self.known:
            return self.known[key]
        self.ops.append(Op(len(self.ops), kind, tuple(args), tuple(attrs), rank, tainted, span))
        if key is not None:
            self.known[key] = len(self.ops) - 1
        return len(self.ops) - 1

    def host(self, e: n.Expr, rank=None) -> int:
        if isinstance(e, n.Const):
            rank = 0
        return self.add("host", (), (e,), rank, False)

    def lin(self, e: n.Expr, env: dict, scope: "Scope") -> int:
        """The op computing `e` (a host value where `e` reads no `grad` target)."""
        if not self._tainted(e, env, scope):
            resolved = scope.resolve(e, env, self)
            if isinstance(resolved, n.Sym) and resolved.name.startswith("%"):
                return int(resolved.name[1:])       # an op's value under another name
            return self.host(resolved, self.static_rank(e, env, scope))
        span = getattr(e, "span", None)
        match e:
            case n.Sym(name):
                if name in scope.vars:
                    return scope.vars[name]
                if name in env:
                    return env[name]
                return self._root_var(name)
            case n.Attr(n.Sym(obj), name):
                return self._field(scope.object(obj), name)
            case n.Bin("/") if sigmoid_of(e) is not None:
                x = self.lin(sigmoid_of(e), env, scope)
                return self.add("sigmoid", (x,), (), self.ops[x].rank, span=span)
            case n.Un("sigmoid", a):
                x = self.lin(a, env, scope)
                return self.add("sigmoid", (x,), (), self.ops[x].rank, span=span)
            case n.Bin("max" | "min" as op, a, b):
                # rt.maximum: `a if a > b else b`, elementwise (torch.where) on tensors
                x, y = self.lin(a, env, scope), self.lin(b, env, scope)
                cond = self.add("cmp", (x, y), (">" if op == "max" else "<",),
                                _broadcast_rank(self.ops[x].rank, self.ops[y].rank), False)
                if self.ops[x].rank == 0 and self.ops[y].rank == 0:
                    return self.add("hselect", (cond, x, y), (), 0, span=span)
                rank = _broadcast_rank(self.ops[x].rank, self.ops[y].rank)
                if rank is None:
                    raise NotDerivable("max/min of values of unknown rank")
                return self.add("where", (cond, x, y), (), rank, span=span)
            case n.Un(op, a) if op in UNARY:
                x = self.lin(a, env, scope)
                return self.add("un", (x,), (op,), self.ops[x].rank, span=span)
            case n.Bin(op, a, b) if op in BINARY:
                x, y = self.lin(a, env, scope), self.lin(b, env, scope)
                return self.add("bin", (x, y), (op,), _broadcast_rank(self.ops[x].rank, self.ops[y].rank), span=span)
            case n.Bin("**", a, n.Const(c)) if isinstance(c, (int, float)) and not isinstance(c, bool) and c != 0:
                x = self.lin(a, env, scope)
                return self.add("pow", (x,), (c,), self.ops[x].rank, span=span)
            case n.Bin("@", a, b):
                x, y = self.lin(a, env, scope), self.lin(b, env, scope)
                rx, ry = self.ops[x].rank, self.ops[y].rank
                if rx is None or ry is None or rx == 0 or ry == 0 or (rx > 2 or ry > 2) and rx != ry:
                    raise NotDerivable("a matrix product of operands of unknown or mixed rank")
                rank = max(rx, ry) if min(rx, ry) > 1 else rx + ry - 2
                return self.add("matmul", (x, y), (), rank, span=span)
            case n.Select(c, a, b):
                cond = self.lin(c, env, scope)
                x, y = self.lin(a, env, scope), self.lin(b, env, scope)
                if self.ops[cond].rank != 0 or self.ops[x].rank != 0 or self.ops[y].rank != 0:
                    raise NotDerivable("a host `if` between values that are not known to be scalars")
                return self.add("hselect", (cond, x, y), (), 0, span=span)
            case n.Bin(op, a, b) if op in COMPARE:
                x, y = self.lin(a, env, scope), self.lin(b, env, scope)
                return self.add("cmp", (x, y), (op,), _broadcast_rank(self.ops[x].rank, self.ops[y].rank), False, span)
            case n.Load(t, index) if not any(self._tainted(i, env, scope) for i in index):
                x = self.lin(t, env, scope)
                r = self.ops[x].rank
                if r is None or r < len(index):
                    raise NotDerivable("an indexed read of a value of unknown rank")
                idx = tuple(scope.resolve(i, env, self) for i in index)
                return self.add("index", (x,), idx, r - len(index), span=span)
            case n.Reshape(value, shape):
                x = self.lin(value, env, scope)
                return self.add("reshape", (x,), tuple(scope.resolve(s, env, self) for s in shape), len(shape), span=span)
            case n.Call("fused_softmax", (a,), None):
                x = self.lin(a, env, scope)
                return self.add("softmax", (x,), (), self.ops[x].rank, span=span)
            case n.Call():
                return self.call(e, env, scope)
            case n.Un("sum", a):
                x = self.lin(a, env, scope)
                return self.add("sum", (x,), (), 0, span=span)
            case n.Tabulate(axes, body):
                if not (free_syms(body) & {a.var for a in axes}):
                    raise NotDerivable("a tabulation of one value")
                from phc.ir.lift import Lifter
                return Lifter(self, env, scope, axes).lift_full(body)
            case n.Reduce(op, axes, body) if op in (n.ReduceOp.ADD, n.ReduceOp.MAX, n.ReduceOp.MIN):
                from phc.ir.lift import Lifter
                x = Lifter(self, env, scope, axes).lift_full(body)
                kind = {n.ReduceOp.ADD: "rsum", n.ReduceOp.MAX: "rmax", n.ReduceOp.MIN: "rmin"}[op]
                return self.add(kind, (x,), (len(axes),), 0, span=span)
        raise NotDerivable(f"no adjoint rule for `{_text(e)}`")

    def static_rank(self, e: n.Expr, env, scope, seen=frozenset()) -> int | None:
        """The rank of `e`'s value where the program's declarations fix it, else None."""
        r = lambda x: self.static_rank(x, env, scope, seen)
        match e:
            case n.Const() | n.Dim():
                return 0
            case n.Sym(name):
                if name in scope.axes:
                    return 0
                if name in scope.vars:
                    return self.ops[scope.vars[name]].rank
                if name in scope.ranks:
                    return scope.ranks[name]
                if name in env:
                    return self.ops[env[name]].rank
                return self._var_rank(name, seen) if scope.top else None
            case n.ArrayLit(items):
                ranks = {r(x) for x in items}
                return 1 + ranks.pop() if len(ranks) == 1 and None not in ranks else (1 if not items else None)
            case n.Tabulate(axes, body):
                inner = self.static_rank(body, env, scope.with_axes({a.var for a in axes}), seen)
                return None if inner is None else len(axes) + inner
            case n.Reduce(_, axes, body):
                return self.static_rank(body, env, scope.with_axes({a.var for a in axes}), seen)
            case n.Full(shape) | n.Sample(_, _, shape):
                return len(shape)
            case n.Reshape(_, shape):
                return len(shape)
            case n.Load(t, index):
                rt_ = r(t)
                return None if rt_ is None or rt_ < len(index) else rt_ - len(index)
            case n.Bin(op, a, b) if op in BINARY or op in COMPARE or op in ("**", "min", "max", "and", "or"):
                return _broadcast_rank(r(a), r(b))
            case n.Un("sum" | "len", _):
                return 0
            case n.Un(_, a):
                return r(a)
            case n.Select(_, a, b):
                ra, rb = r(a), r(b)
                return ra if ra == rb else None
            case n.Call(func, _, None) if func in self._user_functions():
                f = next(f for f in self.module.functions if f.name == func)
                return rank_of(f.ret)
        return None

    def _var_rank(self, name: str, seen) -> int | None:
        """A variable of main: the rank every one of its assignments gives it."""
        if name in seen:
            return None
        ranks = set()
        for s in walk_stmts(self.module.main.body):
            if isinstance(s, n.Assign) and s.name == name:
                ranks.add(self.static_rank(s.value, {}, Scope(), seen | {name}))
            elif isinstance(s, n.Loop) and s.axis.var == name:
                ranks.add(0)
            elif name in stmt_writes(s):
                return None
        return ranks.pop() if len(ranks) == 1 else None

    def _tainted(self, e: n.Expr, env, scope) -> bool:
        """Whether `e` may read a `grad` target (shapes never do: `dim(x, 0)` is a constant)."""
        match e:
            case n.Dim():
                return False
            case n.Sym(name):
                if name in scope.axes:
                    return False
                if name in scope.vars:
                    return self.ops[scope.vars[name]].tainted
                if name in scope.objects:
                    return True
                if name in env:
                    return self.ops[env[name]].tainted
                if name in self.roots:
                    return True
                if not scope.top:
                    raise NotDerivable(f"`{name}` is read inside a function without being its parameter")
                _external_is_constant(name, self.deps, self.roots)
                return False
            case n.Attr():
                return True
            case n.Call(func, _, obj) if obj is not None or func in self._user_functions():
                return True         # inlined: its body decides (conservatively a tape node)
            case n.Tabulate() | n.Reduce():
                bound = {a.var for a in e.axes}
                inner = scope.with_axes(bound)
                return any(self._tainted(x, env, inner) for x in children(e))
        if isinstance(e, n.Sym):
            return False
        return any(self._tainted(c, env, scope) for c in children(e))

    def _user_functions(self):
        return {f.name for f in self.module.functions}

    def _root_var(self, name: str) -> int:
        """A `grad` target variable read as it stood before the tape: a variable of its own."""
        if name not in self.roots or name in self.objects:
            raise NotDerivable(f"`{name}` is read as a value before the tape assigns it")
        deps_of = closure({name}, self.deps) - {name}
        if deps_of & self.roots:
            raise NotDerivable(f"the target `{name}` itself depends on another target")
        if name not in self.var_ops:
            self.var_ops[name] = self.add("var", (), (name,), None, True)
        return self.var_ops[name]

    def _field(self, obj: str, name: str) -> int:
        _field_is_root(self.module, self.ctx, obj, name, self.deps, self.roots)
        key = (obj, name)
        if key not in self.field_ops:
            cls = class_of(self.module, obj)
            rank = rank_of(next((p.type for p in cls.fields if p.name == name), "")) if cls else None
            self.field_ops[key] = self.add("field", (), (obj, name), rank, True)
        return self.field_ops[key]

    def call(self, e: n.Call, env, scope) -> int:
        f, this = self._callee(e, scope)
        _inlinable(f)
        args = [self.lin(a, env, scope) for a in e.args]
        inner = Scope(top=False)
        inner.objects = dict(scope.objects)
        if this is not None:
            inner.objects["this"] = this
        for p, a in zip(f.params, args):
            inner.vars[p.name] = a
            inner.ranks[p.name] = rank_of(p.type)
            if self.ops[a].rank is None and rank_of(p.type) is not None:
                self.ops[a] = _with(self.ops[a], rank=rank_of(p.type))
        top = self.body(f.body, inner)
        if top is None:
            raise NotDerivable(f"`{f.name}` may return no value")
        if self.ops[top].rank is None:
            self.ops[top] = _with(self.ops[top], rank=rank_of(f.ret))
        return top

    def body(self, stmts, scope: "Scope") -> int | None:
        """The op an inlined body returns (None: it falls off its end)."""
        for s in stmts:
            if isinstance(s, n.Assign):
                scope.vars[s.name] = self.lin(s.value, {}, scope)
            elif isinstance(s, n.Loop):
                self.store_nest(s, scope)
            elif isinstance(s, n.If):
                # a branch on a constant of this call (`dropout(h, 0.2, 1)`): the branch it takes
                taken = self._constant_truth(s.cond, scope)
                top = self.body(s.body if taken else s.orelse, scope)
                if top is not None:
                    return top
            elif isinstance(s, n.Return):
                return self.lin(s.value, {}, scope)
            else:
                raise NotDerivable(f"a {type(s).__name__.lower()} statement in an inlined body")
        return None

    def _constant_truth(self, cond: n.Expr, scope: "Scope") -> bool:
        from phc.ir.simplify import subst
        e = scope.resolve(cond, {}, self)
        consts = {}
        for name in free_syms(e):
            op = self.ops[int(name[1:])] if name.startswith("%") else None
            if op is None or op.kind != "host" or not isinstance(op.attrs[0], n.Const):
                raise NotDerivable("a branch on a value that is not a constant of the call")
            consts[name] = op.attrs[0]
        value = simplify(subst(e, consts))
        if not (isinstance(value, n.Const) and isinstance(value.value, bool)):
            raise NotDerivable("a branch whose condition does not fold to a constant")
        return value.value

    def store_nest(self, loop: n.Loop, scope: "Scope"):
        """`for i, j, …: r[affine] = value` into a local r (`pad`, `one_channel`): a new value of
        r with the nest's points written, each element at most once (`_store_is_injective`)."""
        axes, body = [], (loop,)
        while len(body) == 1 and isinstance(body[0], n.Loop) and body[0].mark is n.Mark.PARALLEL:
            axes.append(body[0].axis)
            body = body[0].body
        if len(body) != 1 or not isinstance(body[0], n.Store) or not axes:
            raise NotDerivable("a loop that is not one vectorised store")
        st = body[0]
        if not (isinstance(st.tensor, n.Sym) and st.tensor.name in scope.vars):
            raise NotDerivable("a store into a tensor the function did not make")
        from phc.ir.lift import Lifter
        lifter = Lifter(self, {}, scope, tuple(axes))
        if lifter.shift:
            raise NotDerivable("a store nest that does not start at 0")
        value = lifter.lift(st.value)
        from phc.ir.lower import linear_form
        consts, rows = [], [[] for _ in axes]
        for i in st.index:
            form = linear_form(i, lifter.vars)
            if form is None:
                raise NotDerivable("a store at a data-dependent index")
            coeffs, const = form
            consts.append(scope.resolve(simplify(const), {}, self))
            for k, a in enumerate(axes):
                c = coeffs.get(a.var)
                rows[k].append(n.Const(0) if c is None else simplify(c))
        if not _store_is_injective(rows):
            raise NotDerivable("a store nest that may write one element twice")
        from phc.ir.lift import size_of
        sizes = tuple(scope.resolve(size_of(a), {}, self) for a in axes)
        old = scope.vars[st.tensor.name]
        fresh = self.ops[old].kind == "host" and isinstance(self.ops[old].attrs[0], n.Full)
        attrs = (tuple(consts), tuple(tuple(r) for r in rows), sizes, fresh)
        scope.vars[st.tensor.name] = self.add("store", (old, value), attrs, self.ops[old].rank, span=st.span)

    def _callee(self, e: n.Call, scope):
        if e.obj is None:
            fs = [f for f in self.module.functions if f.name == e.func]
            if len(fs) != 1:
                raise NotDerivable(f"`{e.func}` is not a user function")
            return fs[0], None
        if not isinstance(e.obj, n.Sym):
            raise NotDerivable("a method called on a computed object")
        obj = scope.object(e.obj.name)
        cls = class_of(self.module, obj)
        ms = [m for m in (cls.methods if cls else ()) if m.name == e.func]
        if len(ms) != 1:
            raise NotDerivable(f"cannot tell which `{e.func}` is called")
        return ms[0], obj


@dataclass
class Scope:
    """Names inside an inlined body: parameters and locals as ops, `this` as its object."""
    top: bool = True
    vars: dict = field(default_factory=dict)
    ranks: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)
    axes: frozenset = frozenset()

    def object(self, name: str) -> str:
        if name in self.objects:
            return self.objects[name]
        if not self.top:
            raise NotDerivable(f"`{name}` is not an object the tape knows")
        return name

    def with_axes(self, bound) -> "Scope":
        s = Scope(self.top, self.vars, self.ranks, self.objects, self.axes | frozenset(bound))
        return s

    def resolve(self, e: n.Expr, env, builder) -> n.Expr:
        """`e` with the inlined body's names replaced by the ops holding them (`Sym('%5')`)."""
        from phc.ir.simplify import subst
        mapping = {v: n.Sym(f"%{op}") for v, op in env.items()}
        mapping.update({v: n.Sym(f"%{op}") for v, op in self.vars.items()})
        mapping.update({v: n.Sym(obj) for v, obj in self.objects.items() if v != obj})
        return subst(e, mapping)


def _broadcast_positions(consts, rows):
    """For a view whose tensor axis d is read by nest axis positions[d] alone (coefficient 1,
    offset 0, the positions increasing), the positions; else None."""
    if any(c != n.Const(0) for c in consts):
        return None
    positions = []
    for d in range(len(consts)):
        using = [a for a, row in enumerate(rows) if row[d] != n.Const(0)]
        if len(using) != 1 or rows[using[0]][d] != n.Const(1):
            return None
        positions.append(using[0])
    if any(sum(row[d] != n.Const(0) for d in range(len(consts))) > 1 for row in rows):
        return None
    if positions != sorted(set(positions)):
        return None
    return tuple(positions)


def _with(op: Op, **kw) -> Op:
    from dataclasses import replace
    return replace(op, **kw)


def _broadcast_rank(a, b):
    return None if a is None or b is None else max(a, b)


def _text(e) -> str:
    from phc.ir.printer import expr
    return expr(e)


def class_of(module: n.Module, obj: str, strict: bool = False):
    """The class of the object variable `obj`: the one its constructions in main name. With
    `strict`, also every assignment of obj is such a construction."""
    assigns = [s for s in walk_stmts(module.main.body) if isinstance(s, n.Assign) and s.name == obj]
    built = [s for s in assigns if isinstance(s.value, n.Call) and s.value.obj is None]
    if strict and len(built) != len(assigns):
        return None
    names = {s.value.func for s in built}
    classes = [c for c in module.classes if c.name in names]
    return classes[0] if len(classes) == 1 and len(names) == 1 else None


# ---------------------------------------------------------------- preconditions

def _block_is_straight(stmts, ctx: GradContext):
    """Between the tape's first statement and the `Grads`, nothing that could change a value the
    adjoint reads: assignments, prints, loops and branches of them; no store, no field
    assignment, no other `grad`, no call that changes its arguments in place."""
    for s in walk_stmts(stmts):
        if not isinstance(s, (n.Assign, n.Print, n.Eval, n.Loop, n.If, n.Grads)):
            raise NotDerivable(f"a {type(s).__name__.lower()} statement between the forward computation and `grad`")
        for e in stmt_exprs(s):
            if ctx.may_mutate(e) or ctx.may_differentiate(e):
                raise NotDerivable("a call that may change its arguments between the forward computation and `grad`")


def _external_is_constant(name: str, deps, roots: set[str]):
    """A value computed outside the tape: it must not depend on any `grad` target."""
    reach = closure({name}, deps)
    if reach & roots:
        raise NotDerivable(f"`{name}` is computed outside the tape from a `grad` target "
                           "(a derivative of a derivative, a value carried from an earlier iteration)")


def _field_is_root(module: n.Module, ctx: GradContext, obj: str, name: str, deps, roots):
    """`obj.name` is a variable of its own: every construction of `obj` starts that field fresh,
    no statement assigns it in place, no other name holds the object, no method changes it."""
    cls = class_of(module, obj)
    if cls is None:
        raise NotDerivable(f"`{obj}` is not always an instance of one class")
    fields = [p.name for p in cls.fields]
    for s in walk_stmts(module.main.body):
        if isinstance(s, n.Assign) and s.name == obj:
            if not (isinstance(s.value, n.Call) and s.value.func == cls.name and s.value.obj is None):
                raise NotDerivable(f"`{obj}` is assigned something other than a `{cls.name}`")
            if name not in s.fresh_fields:
                # a tracked field keeps its argument's graph: no other target may be on it
                k = fields.index(name)
                if k < len(s.value.args):
                    for v in free_syms(s.value.args[k]):
                        if closure({v}, deps) & roots:
                            raise NotDerivable(f"a construction of `{obj}` gives `{name}` a value computed from a `grad` target")
        if isinstance(s, n.Assign) and isinstance(s.value, n.Sym) and s.value.name == obj:
            raise NotDerivable(f"`{obj}` has another name (`{s.name}`)")
        if isinstance(s, n.SetField) and root_name(s.obj) == obj:
            raise NotDerivable(f"a field of `{obj}` is assigned in place")
    for m in cls.methods:
        if any(isinstance(s, (n.SetField, n.Store)) for s in walk_stmts(m.body)):
            raise NotDerivable(f"the method `{m.name}` changes its instance")


def _inlinable(f: n.Function):
    """A body of assignments, vectorised store nests and branches on the call's constants,
    each path ending with a return."""
    def check(stmts):
        for s in stmts:
            if isinstance(s, n.Loop) and s.mark is n.Mark.PARALLEL:
                continue
            if isinstance(s, n.If):
                check(s.body)
                check(s.orelse)
                continue
            if isinstance(s, n.Return) and s.value is not None:
                continue
            if not isinstance(s, n.Assign) or s.leaf or s.fresh_fields:
                raise NotDerivable(f"`{f.name}` has a {type(s).__name__.lower()} statement (not straight-line)")
    check(f.body)


def _store_is_injective(rows) -> bool:
    """Each nest axis moves exactly one index, by a nonzero constant, and no index moves with
    two axes: distinct points write distinct elements."""
    moved = set()
    for row in rows:
        used = [(d, c) for d, c in enumerate(row) if c != n.Const(0)]
        if len(used) != 1 or not isinstance(used[0][1], n.Const) or used[0][1].value == 0:
            return False
        if used[0][0] in moved:
            return False
        moved.add(used[0][0])
    return True
