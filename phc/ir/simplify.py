"""Algebra on IR expressions: substitution, free variables, and a simplifier.

The simplifier is what makes the seed's helpers disappear: scalar evolution of counting loops
(`Reduce(add, i in 0..n, 1)` is `n`), `floor` of integral values, shapes of constructed values
(`dim(x[0], 0)` is `dim(x, 1)`), identity tabulations (`[x[i] for i in 0..dim(x, 0)]` is `x`),
constant tabulations (`[0 for …]` is an allocation) and merging of nested loops.
"""
from __future__ import annotations

from dataclasses import fields, replace
from functools import reduce as _fold

from phc.ir import nodes as n

_INT_OPS = {"+", "-", "*", "//", "%", "min", "max"}


def children(e: n.Expr) -> tuple[n.Expr, ...]:
    out = []
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, tuple):
            for item in v:
                if isinstance(item, n.Axis):
                    out += [item.lo, item.hi]
                elif _is_expr(item):
                    out.append(item)
        elif _is_expr(v):
            out.append(v)
    return tuple(out)


def _is_expr(v) -> bool:
    return isinstance(v, (n.Const, n.Sym, n.Dim, n.Load, n.Item, n.Slice, n.Range, n.Subscript, n.Bin, n.Un, n.Select, n.Reduce,
                          n.Tabulate, n.Reshape, n.Full, n.ArrayLit, n.Sample, n.Call, n.Attr))


def map_children(e: n.Expr, fn) -> n.Expr:
    """Rebuild `e` with `fn` applied to each direct sub-expression (and to axis bounds)."""
    changes = {}
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, tuple):
            new = tuple(_map_item(item, fn) for item in v)
            if any(a is not b for a, b in zip(new, v)):
                changes[f.name] = new
        elif _is_expr(v):
            new = fn(v)
            if new is not v:
                changes[f.name] = new
    return replace(e, **changes) if changes else e


def _map_item(item, fn):
    if isinstance(item, n.Axis):
        lo, hi = fn(item.lo), fn(item.hi)
        return item if (lo is item.lo and hi is item.hi) else n.Axis(item.var, lo, hi)
    return fn(item) if _is_expr(item) else item


def binders(e: n.Expr) -> tuple[str, ...]:
    return tuple(a.var for a in e.axes) if isinstance(e, (n.Reduce, n.Tabulate)) else ()


def free_syms(e: n.Expr) -> frozenset[str]:
    if isinstance(e, n.Sym):
        return frozenset((e.name,))
    if isinstance(e, (n.Reduce, n.Tabulate)):
        bound = set(binders(e))
        out = set(free_syms(e.body))
        for a in e.axes:
            out |= free_syms(a.lo) | free_syms(a.hi)
        return frozenset(out - bound)
    out = set()
    for c in children(e):
        out |= free_syms(c)
    return frozenset(out)


def subst(e: n.Expr, mapping: dict[str, n.Expr]) -> n.Expr:
    """Replace free symbols. Binder names are unique per function (the lowering renames them),
    so no capture can happen; a binder that shadows a mapped name hides it."""
    if not mapping:
        return e
    if isinstance(e, n.Sym):
        return mapping.get(e.name, e)
    if isinstance(e, (n.Reduce, n.Tabulate)):
        inner = {k: v for k, v in mapping.items() if k not in binders(e)}
        incoming = set().union(*(free_syms(v) for v in inner.values())) if inner else set()
        if incoming & set(binders(e)):
            e = _rename_away(e, incoming | set(inner))      # a binder would capture a substituted name
        axes = tuple(n.Axis(a.var, subst(a.lo, mapping), subst(a.hi, mapping)) for a in e.axes)
        return replace(e, axes=axes, body=subst(e.body, inner))
    return map_children(e, lambda c: subst(c, mapping))


def _rename_away(e: n.Expr, avoid: set[str]) -> n.Expr:
    """`e` with its own binders renamed to names outside `avoid` and outside `e`."""
    taken = set(avoid) | _all_names(e)
    mapping = {}
    for a in e.axes:
        k, new = 1, a.var
        while new in taken:
            k += 1
            new = f"{a.var}_r{k}"
        taken.add(new)
        mapping[a.var] = n.Sym(new)
    axes = tuple(n.Axis(mapping[a.var].name, a.lo, a.hi) for a in e.axes)
    return replace(e, axes=axes, body=subst(e.body, mapping))


def _all_names(e: n.Expr) -> set[str]:
    out = set(free_syms(e))
    stack = [e]
    while stack:
        x = stack.pop()
        out |= set(binders(x))
        stack.extend(children(x))
    return out


def rename_binders(e: n.Expr, fresh) -> n.Expr:
    """Give every loop variable bound inside `e` a fresh name (before inlining a body); a fresh
    name never equals a name already in `e`, so renaming the outer binders first cannot capture."""
    taken = _all_names(e)

    def new_name(var):
        name = fresh(var)
        while name in taken:
            name = fresh(var)
        taken.add(name)
        return name

    def go(x):
        x = map_children(x, go) if not isinstance(x, (n.Reduce, n.Tabulate)) else x
        if isinstance(x, (n.Reduce, n.Tabulate)):
            mapping = {a.var: n.Sym(new_name(a.var)) for a in x.axes}
            axes = tuple(n.Axis(mapping[a.var].name, go(a.lo), go(a.hi)) for a in x.axes)
            return replace(x, axes=axes, body=go(subst(x.body, mapping)))
        return x
    return go(e)


def contains(e: n.Expr, pred) -> bool:
    return pred(e) or any(contains(c, pred) for c in children(e))


def uses(e: n.Expr, name: str) -> bool:
    return name in free_syms(e)


# ---------------------------------------------------------------- integrality

def is_integral(e: n.Expr, int_syms: frozenset[str] = frozenset(), scalar: bool = False) -> bool:
    """True where `e` certainly holds an integer: loop indices, shapes, integer constants. With
    `scalar`, only numbers: not `floor`/`int`/`len` or an argmax, which may be of a tensor."""
    match e:
        case n.Const(v, _):
            return isinstance(v, int) and not isinstance(v, bool)
        case n.Dim():
            return True
        case n.Sym(name):
            return name in int_syms
        case n.Bin(op, a, b) if op in _INT_OPS:
            return is_integral(a, int_syms, scalar) and is_integral(b, int_syms, scalar)
        case n.Un("floor", _) | n.Un("len", _) | n.Un("int", _):
            return not scalar
        case n.Reduce(n.ReduceOp.ARGMAX | n.ReduceOp.ARGMIN, _, _):
            return not scalar
    return False


def as_int(e: n.Expr) -> int | None:
    """The integer value of a constant (reals with an integral value count: `stride: ℝ = 2`)."""
    if isinstance(e, n.Const) and not isinstance(e.value, bool):
        v = e.value
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
    return None


# ---------------------------------------------------------------- the simplifier

def simplify(e: n.Expr, int_syms: frozenset[str] = frozenset(), in_index: bool = False) -> n.Expr:
    """Bottom-up rewriting to a fixed point of the local rules below. `in_index`: `e` is an
    index (truncated to an integer where it is used), the one place a rule may change a value's
    kind; everywhere else every rule keeps the kind (ℝ stays ℝ: `i * 1.0` is not `i`)."""
    e = _simplify_children(e, int_syms, in_index)
    for _ in range(8):
        new = _rule(e, int_syms, in_index)
        if new is e or new == e:
            return e
        e = _simplify_children(new, int_syms, in_index)
    return e


def simplify_index(e: n.Expr, int_syms: frozenset[str] = frozenset()) -> n.Expr:
    """An index expression: simplified where kinds do not matter, and an integer-valued real
    (`i * cols` with `cols: ℝ` a count) computed as an integer."""
    e = simplify(e, int_syms, True)
    iv = integer_value(e, int_syms)
    return e if iv is None else iv


def _simplify_children(e: n.Expr, int_syms, in_index: bool) -> n.Expr:
    if isinstance(e, n.Load):
        t = simplify(e.tensor, int_syms, in_index)
        idx = tuple(simplify_index(i, int_syms) for i in e.index)
        return e if t is e.tensor and all(a is b for a, b in zip(idx, e.index)) else replace(e, tensor=t, index=idx)
    return map_children(e, lambda c: simplify(c, int_syms, in_index))


def _const(v) -> n.Const:
    if isinstance(v, bool):
        return n.Const(v, n.DType.BOOL)
    return n.Const(v, n.DType.I64 if isinstance(v, int) else n.DType.F32)


_FOLD = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
         "//": lambda a, b: a // b if b else None, "%": lambda a, b: a % b if b else None,
         "/": lambda a, b: a / b if b else None, "min": min, "max": max,
         "<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
         ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def _rule(e: n.Expr, int_syms, in_index: bool = False) -> n.Expr:
    match e:
        case n.Bin(op, n.Const(a), n.Const(b)) if op in _FOLD and not isinstance(a, bool) and not isinstance(b, bool):
            v = _FOLD[op](a, b)
            if v is None:
                return e
            if isinstance(v, float) and op != "/" and isinstance(a, int) and isinstance(b, int):
                v = int(v)
            return _const(v)
        case n.Bin("+" | "-" | "*" as op, x, n.Const(v)) if in_index and isinstance(v, float) \
                and v.is_integer() and is_integral(x, int_syms):
            return n.Bin(op, x, n.Const(int(v)))          # `x[i * stride]` with `stride: ℝ = 2`
        case n.Bin("+" | "*" as op, n.Const(v), x) if in_index and isinstance(v, float) \
                and v.is_integer() and is_integral(x, int_syms):
            return n.Bin(op, n.Const(int(v)), x)
        case n.Bin("+", x, c) if _is_zero(c) and not in_index and is_real(c) and is_integral(x, int_syms):
            return n.Un("float", x)         # `dim(x, 0) + 0.0`: the count as a real
        case n.Bin("+", c, x) if _is_zero(c) and not in_index and is_real(c) and is_integral(x, int_syms):
            return n.Un("float", x)
        case n.Bin("+", x, c) if _is_zero(c) and _identity_keeps_kind(x, c, in_index):
            return x
        case n.Bin("+", c, x) if _is_zero(c) and _identity_keeps_kind(x, c, in_index):
            return x
        case n.Bin("-", x, c) if _is_zero(c) and _identity_keeps_kind(x, c, in_index):
            return x
        case n.Bin("*", x, c) if _is_one(c) and _identity_keeps_kind(x, c, in_index):
            return x
        case n.Bin("*", c, x) if _is_one(c) and _identity_keeps_kind(x, c, in_index):
            return x
        case n.Bin("*", x, c) if _is_zero(c) and is_integral(x, int_syms):
            return c
        case n.Bin("*", c, x) if _is_zero(c) and is_integral(x, int_syms):
            return c
        case n.Bin("/", x, c) if _is_one(c) and (in_index or is_real(x)):
            return x        # `/` is real division: `n / 1` of an integer n is real
        case n.Bin("-", n.Bin("+", x, y), z) if y == z and _cancels_exactly(x, y, int_syms, in_index):
            return x
        case n.Bin("+", n.Bin("-", x, y), z) if y == z and _cancels_exactly(x, y, int_syms, in_index):
            return x
        case n.Un("float", n.Const(v)) if isinstance(v, (int, float)) and not isinstance(v, bool):
            return n.Const(float(v))
        case n.Un("float", x) if is_real(x):
            return x
        case n.Un("float", n.Tabulate(axes, body)):
            return n.Tabulate(axes, n.Un("float", body))
        case n.Un("float", n.Full(shape, fill, _)):
            return n.Full(shape, n.Un("float", fill), n.DType.F32)
        case n.Un("floor", x) if not is_integral(x, int_syms) and integer_value(x, int_syms) is not None:
            return integer_value(x, int_syms)     # `ℕ(total)` of a count held as a real
        case n.Un("floor", x) if is_integral(x, int_syms):
            return x
        case n.Un("floor", n.Const(v)) if isinstance(v, float):
            import math
            return _const(math.floor(v))
        case n.Un("floor", n.Bin("/", a, b)) if integer_value(a, int_syms) is not None \
                and integer_value(b, int_syms) is not None:
            return n.Bin("//", integer_value(a, int_syms), integer_value(b, int_syms))
        case n.Un("floor", n.Bin("/", a, b)) if is_integral(a, int_syms) and as_int(b) is not None:
            return n.Bin("//", a, _const(as_int(b)))
        case n.Un("neg", n.Const(v)) if not isinstance(v, bool):
            return _const(-v)
        case n.Dim(n.Load(t, idx), axis):
            return n.Dim(t, axis + len(idx))
        case n.Load(n.Load(t, a), b):
            return replace(e, tensor=t, index=a + b)       # `x[i][j]` is `x[i, j]`
        case n.Tabulate(axes, n.Reshape(n.Load(t, idx), shape)) if _is_identity(axes, t, idx):
            # a per-row reshape of every row is one reshape of the whole
            return n.Reshape(t, tuple(_extent(a) for a in axes) + shape)
        case n.Dim(n.Tabulate(axes, body), axis):
            if axis < len(axes):
                return _extent(axes[axis])
            return n.Dim(body, axis - len(axes)) if not _uses_any(body, axes) else e
        case n.Dim(n.Full(shape, _, _), axis) if axis < len(shape):
            return shape[axis]
        case n.Reshape(n.Reshape(t, _), shape):
            return n.Reshape(t, shape)          # both are copies of the same elements
        case n.Dim(n.Reshape(_, shape), axis) if axis < len(shape):
            return shape[axis]
        case n.Dim(n.Un(op, x), axis) if op in _ELEMENTWISE:
            return n.Dim(x, axis)
        case n.Reduce(n.ReduceOp.ADD, axes, body) if not _uses_any(body, axes) \
                and not any(_uses_any(a.lo, axes) or _uses_any(a.hi, axes) for a in axes):
            # scalar evolution: a sum of a loop-invariant value is that value times the trip
            # count; a count is never negative (ℕ(5, 3) runs no iteration: `_trip_count`)
            count = _fold(lambda acc, a: n.Bin("*", acc, a), [_trip_count(a) for a in axes])
            return count if _is_int_one(body) else n.Bin("*", body, count)
        case n.Reduce(n.ReduceOp.MUL, axes, body) if not _uses_any(body, axes) \
                and not any(_uses_any(a.lo, axes) or _uses_any(a.hi, axes) for a in axes):
            # a product of a loop-invariant value is its power of the trip count (class AB1)
            count = _fold(lambda acc, a: n.Bin("*", acc, a), [_trip_count(a) for a in axes])
            return n.Bin("**", body, count)
        case n.Reduce(n.ReduceOp.MAX | n.ReduceOp.MIN, axes, body) if not _uses_any(body, axes) \
                and all(_positive_count(a) for a in axes):
            return body     # the max of one value over a range that surely runs (class AB2)
        case n.Reduce(op, outer, n.Reduce(op2, inner, body)) if op == op2 and op in _ASSOC \
                and not any(_uses_any(a.lo, outer) or _uses_any(a.hi, outer) for a in inner):
            return n.Reduce(op, outer + inner, body)
        case n.Tabulate(outer, n.Tabulate(inner, body)) \
                if not any(_uses_any(a.lo, outer) or _uses_any(a.hi, outer) for a in inner):
            return n.Tabulate(outer + inner, body)
        case n.Tabulate(axes, body) if not _uses_any(body, axes) and _is_scalar_const(body):
            return n.Full(tuple(_extent(a) for a in axes), body)
        case n.Tabulate(axes, n.Full(shape, fill, dtype)) if not _uses_any(n.Full(shape, fill, dtype), axes):
            return n.Full(tuple(_extent(a) for a in axes) + shape, fill, dtype)
        case n.Tabulate(axes, n.Load(t, idx)) if _is_identity(axes, t, idx):
            # a comprehension is a new array: the same elements, never the source itself (class
            # Y); a reshape to its own shape is that copy (the emitter copies where stores exist)
            return n.Reshape(t, tuple(_extent(a) for a in axes))
        case n.Bin("and", n.Const(True), x) | n.Bin("and", x, n.Const(True)) if _is_bool_kind(x):
            return x
        case n.Bin("or", n.Const(False), x) | n.Bin("or", x, n.Const(False)) if _is_bool_kind(x):
            return x
        case n.Select(n.Const(c), a, b) if isinstance(c, bool):
            return a if c else b
        case n.Select(n.Bin(">" | ">=", r, x), r2, x2) if r == r2 and x == x2 and _in_window(r, x, n.ReduceOp.MAX):
            return r        # max(x, max over a window that contains x) is the window's max
        case n.Select(n.Bin("<" | "<=", r, x), r2, x2) if r == r2 and x == x2 and _in_window(r, x, n.ReduceOp.MIN):
            return r
    return e


_ELEMENTWISE = {"neg", "exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "sigmoid"}
_ASSOC = {n.ReduceOp.ADD, n.ReduceOp.MUL, n.ReduceOp.MAX, n.ReduceOp.MIN}


def _in_window(r: n.Expr, x: n.Expr, op: n.ReduceOp) -> bool:
    """Whether `x` is the body of the reduction `r` at one point of its (small, constant) range."""
    if not isinstance(r, n.Reduce) or r.op is not op:
        return False
    ranges = []
    for a in r.axes:
        lo, hi = as_int(a.lo), as_int(a.hi)
        if lo is None or hi is None or hi - lo > 8:
            return False
        ranges.append(range(lo, hi))
    import itertools
    for point in itertools.product(*ranges):
        if simplify(subst(r.body, {a.var: _const(v) for a, v in zip(r.axes, point)})) == x:
            return True
    return False


def _trip_count(a: n.Axis) -> n.Expr:
    """How many iterations an axis runs: its extent, clamped at 0 unless provably non-negative."""
    ext = _extent(a)
    if _nonnegative(ext):
        return ext
    return n.Bin("max", ext, n.Const(0))


def _is_bool_kind(e: n.Expr) -> bool:
    """A comparison or a logical operation (`True and e` is `e` only when `e` is a bool)."""
    return isinstance(e, n.Bin) and e.op in ("<", ">", "<=", ">=", "==", "!=", "and", "or") \
        or isinstance(e, n.Un) and e.op == "not" or isinstance(e, n.Const) and isinstance(e.value, bool)


def _positive_count(a: n.Axis) -> bool:
    """Precondition of max/min of an invariant value being that value: the axis surely runs."""
    k = as_int(simplify(_extent(a)))
    return k is not None and k > 0


def _nonnegative(e: n.Expr) -> bool:
    """Provably ≥ 0: shapes, non-negative constants, and sums/products/floors of those."""
    match e:
        case n.Const(v, _):
            return not isinstance(v, bool) and isinstance(v, (int, float)) and v >= 0
        case n.Dim():
            return True
        case n.Bin("+" | "*" | "//", a, b):
            return _nonnegative(a) and _nonnegative(b)
        case n.Bin("max", a, b):
            return _nonnegative(a) or _nonnegative(b)
        case n.Un("floor", a):
            return _nonnegative(a)
    return False


def is_real(e: n.Expr) -> bool:
    """Provably of kind ℝ (a float value): real constants, `/`, real math, conversions, and
    arithmetic with a real operand. Unknown (a variable, a load) counts as not proved."""
    match e:
        case n.Const(v, dtype):
            return dtype is n.DType.F32
        case n.Bin("/", _, _):
            return True
        case n.Bin("+" | "-" | "*" | "**" | "min" | "max", a, b):
            return is_real(a) or is_real(b)
        case n.Un("float" | "exp" | "log" | "sin" | "cos" | "tan" | "tanh" | "sqrt" | "sigmoid", _):
            return True
        case n.Un("neg" | "abs", a):
            return is_real(a)
        case n.Reduce(n.ReduceOp.ADD | n.ReduceOp.MUL | n.ReduceOp.MAX | n.ReduceOp.MIN, _, body):
            return is_real(body)
        case n.Select(_, a, b):
            return is_real(a) and is_real(b)
        case n.Full(_, _, dtype):
            return dtype is n.DType.F32
    return False


def integer_value(e: n.Expr, int_syms=frozenset()) -> n.Expr | None:
    """An integer-kind expression with the value of `e`, where `e` is an integer computed as a
    real (`0.0 + dim(x, 0)`, `float(i) * 2.0`); None where that is not proved."""
    match e:
        case n.Const(v, _) if not isinstance(v, bool) and isinstance(v, (int, float)) and float(v).is_integer():
            return _const(int(v))
        case n.Un("float", x):
            return integer_value(x, int_syms)
        case n.Bin("+" | "-" | "*" as op, a, b):
            ia, ib = integer_value(a, int_syms), integer_value(b, int_syms)
            if ia is None or ib is None:
                return None
            return simplify(n.Bin(op, ia, ib), int_syms)
    return e if is_integral(e, int_syms) else None


def _identity_keeps_kind(x: n.Expr, c: n.Expr, in_index: bool) -> bool:
    """Precondition of dropping `+ c`, `* c` (c = 0 or 1): the result `x` has
    the kind of the whole — `c` is an integer, or `x` is itself real, or the value is an index."""
    return in_index or is_real(x) or _is_int_kind(c)


def _cancels_exactly(x: n.Expr, y: n.Expr, int_syms, in_index: bool) -> bool:
    """Precondition of `(x + y) - y → x` (and `(x - y) + y`): the same value and shape — an index,
    or integers with `y` a scalar. In reals the sum rounds (`(3.0 + v) - v` is not 3.0 exactly),
    and a tensor `y` would turn a vector into the scalar `x`."""
    return in_index or (is_integral(x, int_syms) and _integer_scalar(y, int_syms))


def _integer_scalar(e: n.Expr, int_syms) -> bool:
    """A number that is surely an integer: an integer constant, a shape, a loop index, integer
    arithmetic on them (not `floor`, which may be of a tensor)."""
    return is_integral(e, int_syms, scalar=True)


def _is_int_kind(c: n.Expr) -> bool:
    return isinstance(c, n.Const) and c.dtype is n.DType.I64 or isinstance(c, n.Dim)


def _is_int_one(e) -> bool:
    return _is_one(e) and e.dtype is n.DType.I64


def _extent(a: n.Axis) -> n.Expr:
    return a.hi if _is_zero(a.lo) else n.Bin("-", a.hi, a.lo)


def extent(a: n.Axis) -> n.Expr:
    return simplify(_extent(a))


def _uses_any(e: n.Expr, axes) -> bool:
    fs = free_syms(e)
    return any(a.var in fs for a in axes)


def _is_zero(e) -> bool:
    return isinstance(e, n.Const) and not isinstance(e.value, bool) and e.value == 0


def _is_one(e) -> bool:
    return isinstance(e, n.Const) and not isinstance(e.value, bool) and e.value == 1


def _is_scalar_const(e) -> bool:
    return isinstance(e, n.Const)


def _is_identity(axes, t, idx) -> bool:
    """`t[i, j]` over i in 0..dim(t,0), j in 0..dim(t,1): all of `t` (or, for a sub-tensor
    index, every sub-tensor of `t` in order)."""
    if len(idx) != len(axes):
        return False
    for k, (a, i) in enumerate(zip(axes, idx)):
        if i != n.Sym(a.var) or not _is_zero(a.lo) or a.hi != n.Dim(t, k):
            return False
    return not any(a.var in free_syms(t) for a in axes)


def surely_nonnegative(e: n.Expr) -> bool:
    """An extent that cannot be negative: a constant ≥ 0, a size, or a sum/product of those."""
    match e:
        case n.Const(v, _):
            return not isinstance(v, bool) and v >= 0
        case n.Dim():
            return True
        case n.Bin("+" | "*" | "//", a, b):
            return surely_nonnegative(a) and surely_nonnegative(b)
    return False


def sigmoid_of(e: n.Expr):
    """x where `e` is `1 / (1 + exp(-x))`, the logistic function (one torch call, the same
    value to rounding and the same derivative)."""
    match e:
        case n.Bin("/", n.Const(1 | 1.0, n.DType.F32 | n.DType.I64),
                   n.Bin("+", n.Const(1 | 1.0, n.DType.F32 | n.DType.I64), n.Un("exp", n.Un("neg", x)))):
            return x
    return None
