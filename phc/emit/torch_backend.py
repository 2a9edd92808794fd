"""The universal vectoriser: IR expressions → torch code, with no list of patterns.

Inside a nest with loop axes (i_0, …, i_{K-1}) every value is a rank-K tensor whose axis k has the
extent of i_k, or 1 where the value does not depend on i_k (so plain broadcasting combines
values). An affine load is one strided view (`runtime.nests.view`), a loop index is an `arange`,
a reduction appends its axes and sums (`amax`, `argmax`, …) them away, a sum of products of two
loads is one `einsum`, a select is `torch.where`. Values that depend on no loop axis are host
values (Python numbers or tensors) and broadcast as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from phc.emit.places import Places, line_tag
from phc.ir import nodes as n
from phc.ir.lower import linear_form
from phc.ir.simplify import extent, free_syms, simplify, as_int, subst, sigmoid_of, surely_nonnegative

_BIN = {"+": "+", "-": "-", "*": "*", "/": "/", "//": "//", "%": "%", "**": "**", "@": "@",
        "<": "<", ">": ">", "<=": "<=", ">=": ">=", "==": "==", "!=": "!="}
MATH_FNS = {"exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "sigmoid", "floor"}


class EmitError(Exception):
    pass


@dataclass
class Code:
    """Lines of Python being built for one function, with fresh temporaries."""
    lines: list[str] = field(default_factory=list)
    indent: int = 1
    counter: int = 0

    def tmp(self, base: str = "_t") -> str:
        self.counter += 1
        return f"{base}{self.counter}"

    tag: str = ""           # the `.phk` place of the statement being emitted
    places: Places = field(default_factory=Places)   # its spanned expressions not yet on a line

    def line(self, text: str, tag: str = ""):
        # the expression this line computes, where known; else the statement
        line = "    " * self.indent + text
        tag = line_tag(line, self.places.take(text)) or tag or self.tag
        self.lines.append(line + (f"  # {tag}" if tag else ""))


class Host:
    """Host expressions (outside any nest)."""

    def __init__(self, code: Code, names: "Names", backend: str = "torch"):
        self.code, self.names, self.backend = code, names, backend
        self.shapes: dict[str, tuple] = {}      # known extents of tensors (by name)

    def expr(self, e: n.Expr) -> str:
        return self.code.places.note(self._expr(e), getattr(e, "span", None))

    def _expr(self, e: n.Expr) -> str:
        match e:
            case n.Const(value, dtype):
                if dtype is n.DType.F32 and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                # a negative constant is parenthesised: `(-0.75) ** 2`, never `-0.75 ** 2` (class W)
                negative = isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0
                return f"({value!r})" if negative else repr(value)
            case n.Sym(name):
                return self.names.py(name)
            case n.Dim(value, axis):
                return f"{self.expr(value)}.shape[{axis}]"
            case n.Load(tensor, index):
                # an indexed read is a value, not a view: a later store must not change it
                # (class I); the copy is only observable if something stores into a tensor
                return self.read(f"{self.expr(tensor)}[{', '.join(self.index(i) for i in index)}]")
            case n.Item(value, index):
                return f"{self.expr(value)}[{index}]"
            case n.Slice(tensor, lo, hi):
                lo_s = "" if lo is None else f"rt.to_index({self.expr(lo)})"
                hi_s = "" if hi is None else f"rt.to_index({self.expr(hi)})"
                return self.read(f"{self.expr(tensor)}[{lo_s}:{hi_s}]")     # a read is a value (class I)
            case n.Subscript(tensor, parts):
                return self.read(f"rt.nests.subscript({self.expr(tensor)}, ({''.join(self.part(p) + ', ' for p in parts)}))")
            case n.Bin("and" | "or" as op, a, b):
                return f"({self.expr(a)} {op} {self.expr(b)})"
            case n.Bin("min" | "max" as op, a, b):
                return f"rt.{op}imum({self.expr(a)}, {self.expr(b)})"
            case n.Bin(op, a, b):
                return f"({self.expr(a)} {_BIN[op]} {self.expr(b)})"
            case n.Un("neg", a):
                return f"(-{self.expr(a)})"
            case n.Un("not", a):
                return f"(not {self.expr(a)})"
            case n.Un("floor", a):
                return f"rt.floor_int({self.expr(a)})"
            case n.Un(op, a):
                return f"rt.{op}({self.expr(a)})"      # math on tensors and numbers alike
            case n.Select(c, a, b):
                return f"({self.expr(a)} if {self.expr(c)} else {self.expr(b)})"
            case n.Reduce() | n.Tabulate():
                return Nest(self, ()).value(e)
            case n.Reshape(value, shape):
                v = self.expr(value)
                # a fresh array in Physika; the copy is only observable if something stores into it
                clone = ".clone()" if self.names.stores else ""
                return f"{v}.reshape({_tuple(self.int_expr(s) for s in shape)}){clone}"
            case n.Full(shape, fill, dtype):
                dt = {"f32": "torch.float32", "i64": "torch.long", "bool": "torch.bool"}[dtype.value]
                return f"rt.full({_tuple(self.int_expr(s) for s in shape)}, {self.expr(fill)}, dtype={dt})"
            case n.ArrayLit():
                return self.array(e)
            case n.Sample(dist, params, shape):
                args = ", ".join([self.expr(p) for p in params] + [self.int_expr(s) for s in shape])
                return f"rt.sample_{dist}({args})"
            case n.Call(func, args, None):
                return f"{self.names.func(func)}({', '.join(self.expr(a) for a in args)})"
            case n.Call("λ", args, obj):
                return f"{self.expr(obj)}({', '.join(self.expr(a) for a in args)})"
            case n.Call(func, args, obj):
                return f"{self.expr(obj)}.{func}({', '.join(self.expr(a) for a in args)})"
            case n.Attr(obj, name):
                return f"{self.expr(obj)}.{name}"
        raise EmitError(f"cannot emit {type(e).__name__}")

    def read(self, code: str) -> str:
        """An indexed read as a value: a copy, where the program stores into some tensor (else
        no store can change it and the view is free); lists (data sets) are read as they are."""
        return f"rt.nests.read({code})" if self.names.stores else code

    def part(self, p: n.Expr) -> str:
        """A `Range` as a Python `slice(…)` object, an index as an int."""
        if isinstance(p, n.Range):
            return f"slice({', '.join('None' if x is None else self.index(x) for x in (p.lo, p.hi, p.step))})"
        return self.index(p)

    def index(self, i: n.Expr) -> str:
        if isinstance(i, n.Range):          # a host store into a slice: `B[i, :2] = …`
            return ":".join("" if x is None else self.index(x) for x in (i.lo, i.hi, i.step))
        while isinstance(i, n.Un) and i.op == "float":
            i = i.a             # to_index(float(v)) is to_index(v): truncation either way
        s = self.expr(i)
        return s if _is_int_expr(i, self.names.ints) else f"rt.to_index({s})"

    def int_expr(self, e: n.Expr) -> str:
        s = self.expr(e)
        return s if _is_int_expr(e, self.names.ints) else f"rt.floor_int({s})"

    def array(self, e: n.ArrayLit) -> str:
        if _all_const(e):
            dt = "torch.float32" if e.dtype is n.DType.F32 or _has_float(e) else "torch.long"
            return f"rt.tensor({_py_list(e)}, {dt})"
        items = ", ".join(self.expr(i) for i in e.items)
        return f"rt.stack([{items}])"


def _tuple(items) -> str:
    items = list(items)
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _all_const(e) -> bool:
    if isinstance(e, n.ArrayLit):
        return all(_all_const(i) for i in e.items)
    if isinstance(e, n.Un) and e.op == "neg":
        return _all_const(e.a)
    return isinstance(e, n.Const)


def _has_float(e) -> bool:
    if isinstance(e, n.ArrayLit):
        return any(_has_float(i) for i in e.items)
    if isinstance(e, n.Un):
        return _has_float(e.a)
    return isinstance(e.value, float)


def _py_list(e) -> str:
    if isinstance(e, n.ArrayLit):
        return "[" + ", ".join(_py_list(i) for i in e.items) + "]"
    if isinstance(e, n.Un):
        return f"-{_py_list(e.a)}"
    return repr(e.value)


def _nonempty(a: n.Axis) -> bool:
    """An axis that surely runs: a positive constant extent, or a whole tensor axis."""
    ext = extent(a)
    k = as_int(ext)
    return (k is not None and k > 0) or isinstance(ext, n.Dim)


def _is_int_expr(e: n.Expr, ints=frozenset()) -> bool:
    """Expressions that are Python ints at run time: shapes, integer constants, host loop
    variables, and integer arithmetic on them."""
    match e:
        case n.Const(v, _):
            return isinstance(v, int) and not isinstance(v, bool)
        case n.Dim():
            return True
        case n.Bin("+" | "-" | "*" | "//" | "%", a, b):
            return _is_int_expr(a, ints) and _is_int_expr(b, ints)
        case n.Un("floor", _):
            return True
        case n.Sym(name):
            return name in ints
    return False


def _effective_vars(e: n.Expr, vars) -> set[str]:
    """The loop variables e's value varies with: in an affine index only those with a nonzero
    coefficient (`x[j - j]` is `x[0]` at every j: its view does not span j)."""
    from phc.ir.simplify import children
    match e:
        case n.Load(t, index):
            out = _effective_vars(t, vars)
            for i in index:
                form = linear_form(i, vars)
                if form is None:
                    out |= _effective_vars(i, vars)
                else:
                    out |= {v for v, c in form[0].items() if simplify(c) != n.Const(0)}
                    out |= _effective_vars(form[1], vars)
            return out
        case n.Sym(name):
            return {name} & set(vars)
        case n.Reduce(_, axes, body) | n.Tabulate(axes, body):
            inner = [v for v in vars if v not in {a.var for a in axes}]
            out = _effective_vars(body, inner)
            for a in axes:
                out |= (free_syms(a.lo) | free_syms(a.hi)) & set(inner)
            return out
    out = set()
    for c in children(e):
        out |= _effective_vars(c, vars)
    return out


class Nest:
    """Vectorises one expression over the loop axes `axes` (outermost first)."""

    def __init__(self, host: Host, axes: tuple[n.Axis, ...]):
        self.host, self.axes = host, axes
        self.code = host.code
        self.sizes: dict[str, str] = {}
        self.cache: dict = {}
        self.guarded = 0

    # ---- entry points

    def value(self, e: n.Expr) -> str:
        """A host-level Reduce or Tabulate: the finished tensor (or scalar). Where the nest
        cannot be vectorised (`EmitError`: a call, a nested tabulation, …) it is evaluated point
        by point on the host instead: slower, the same value."""
        mark, cache = len(self.code.lines), dict(self.cache)
        try:
            if isinstance(e, n.Tabulate):
                return self.tabulate(e)
            return self.vec(e)
        except EmitError as why:
            if self.axes:
                raise
            del self.code.lines[mark:]
            self.cache.clear()
            self.cache.update(cache)
            return self.host_points(e, str(why))

    def host_points(self, e: n.Tabulate | n.Reduce, why: str) -> str:
        """`e` by a Python loop over its points, each point's body a host value; the values are
        stacked (a tabulation) or reduced (`rt.nests.reduce_values`)."""
        c, h = self.code, self.host
        c.line(f"# not vectorised ({why}): a host loop over the points")
        # fresh point variables, free in no part of the body; written as the module writes every
        # name (`Names.py`), so the loop and the body's reads agree
        taken = free_syms(e.body)
        names = {}
        for a in e.axes:
            while (v := c.tmp("_p")) in taken:
                pass
            names[a.var] = v
        h.names.ints.update(names.values())
        rename = {k: n.Sym(v) for k, v in names.items()}
        sizes = []
        for a in e.axes:
            sizes.append(c.tmp("_n"))
            c.line(f"{sizes[-1]} = max({h.int_expr(subst(extent(a), rename))}, 0)")
        acc = c.tmp("_pts")
        c.line(f"{acc} = []")
        indent = c.indent
        for a, size in zip(e.axes, sizes):
            lo = h.int_expr(subst(a.lo, rename))
            c.line(f"for {h.names.py(names[a.var])} in range({lo}, {lo} + {size}):")
            c.indent += 1
        c.line(f"{acc}.append({h.expr(subst(e.body, rename))})")
        c.indent = indent
        out = c.tmp("_v")
        if isinstance(e, n.Tabulate):
            c.line(f"{out} = rt.nests.stack_values({acc}, {_tuple(sizes)})")
        else:
            lo = h.int_expr(subst(e.axes[0].lo, rename))
            c.line(f"{out} = rt.nests.reduce_values({e.op.value!r}, {acc}, {lo})")
        return out

    def tabulate(self, t: n.Tabulate) -> str:
        nest = Nest(self.host, self.axes + t.axes)
        nest.sizes = dict(self.sizes)
        nest.cache = self.cache
        for a in t.axes:
            nest.size_of(a)
        if isinstance(t.body, n.Load) and nest.depends(t.body):
            # the body may be a sub-tensor (`X[2*t + b]`): its trailing axes follow the nest's
            view = nest.load(t.body.tensor, t.body.index, nest.axes, trailing=True)
            return f"{self.code.places.note(view, t.body.span)}.clone()"
        body = nest.vec(t.body)
        sizes = ", ".join(nest.sizes[a.var] for a in nest.axes)
        if not nest.depends(t.body):
            # the body's kind decides the tensor's (`[len(x[i]) for i]` is an integer tensor)
            dt = ", dtype=torch.long" if _is_int_expr(t.body, self.host.names.ints) else ""
            return f"rt.full(({sizes},), {body}{dt})"
        return f"{body}.expand({sizes})" if not self._uses_all(nest, t.body) else body

    def _uses_all(self, nest, body) -> bool:
        fs = _effective_vars(body, [a.var for a in nest.axes])
        return all(a.var in fs for a in nest.axes)

    # ---- helpers

    def size_of(self, a: n.Axis) -> str:
        if any(self.axis_index(v) is not None and v != a.var for v in free_syms(a.lo) | free_syms(a.hi)):
            # precondition of a vectorised nest: a rectangular box of points
            raise EmitError(f"the range of `{a.var}` depends on an enclosing loop variable")
        if a.var not in self.sizes:
            name = self.code.tmp("_n")
            size = self.host.int_expr(extent(a))
            # ℕ(a, b) with b < a runs no iteration: an extent that may be negative is clamped (DT01)
            self.code.line(f"{name} = {size if surely_nonnegative(extent(a)) else f'max({size}, 0)'}")
            self.sizes[a.var] = name
        return self.sizes[a.var]

    def rank(self) -> int:
        return len(self.axes)

    def axis_index(self, var: str) -> int | None:
        for k, a in enumerate(self.axes):
            if a.var == var:
                return k
        return None

    def depends(self, e: n.Expr) -> bool:
        fs = free_syms(e)
        return any(a.var in fs for a in self.axes)

    def vec(self, e: n.Expr) -> str:
        """Code of a rank-K tensor (or a host value when `e` depends on no axis)."""
        if not self.depends(e) and not isinstance(e, (n.Reduce, n.Tabulate)):
            return self.host.expr(e)
        key = (e, self.guarded > 0)     # a guarded load may not stand in for a checked one
        cached = self.cache.get(key)
        if cached is not None:
            code, axes = cached
            k = len(axes)
            if axes == self.axes[:k]:
                # computed in an enclosing nest: broadcast it over the axes added since
                return code if k == self.rank() else f"{code}[..., {', '.join(['None'] * (self.rank() - k))}]"
        code = self.code.places.note(self._vec(e), getattr(e, "span", None))
        if isinstance(e, (n.Load, n.Reduce)) and not code.isidentifier():
            name = self.code.tmp("_v")
            self.code.line(f"{name} = {code}")
            code = name
        self.cache[key] = (code, self.axes)
        return code

    def _vec(self, e: n.Expr) -> str:
        match e:
            case n.Sym(var) if self.axis_index(var) is not None:
                k = self.axis_index(var)
                a = self.axes[k]
                lo = self.host.int_expr(a.lo)
                return f"rt.nests.arange({self.sizes[var]}, {k}, {self.rank()}, {lo}, device=rt.device())"
            case n.Load(tensor, index):
                return self.load(tensor, index, self.axes)
            case n.Bin("and" | "or" as op, a, b) if not (self.depends(a) and self.depends(b)):
                # one side is a host bool (class N): it decides on the host, the other is per point
                host, point = (a, b) if not self.depends(a) else (b, a)
                h, p = self.host.expr(host), self.vec(point)
                if op == "and":
                    return f"({p} if {h} else torch.zeros_like(torch.as_tensor({p}), dtype=torch.bool))"
                return f"(torch.ones_like(torch.as_tensor({p}), dtype=torch.bool) if {h} else {p})"
            case n.Bin("and", a, b):
                return f"torch.logical_and({self.vec(a)}, {self.vec(b)})"
            case n.Bin("or", a, b):
                return f"torch.logical_or({self.vec(a)}, {self.vec(b)})"
            case n.Bin("min" | "max" as op, a, b):
                return f"rt.{op}imum({self.vec(a)}, {self.vec(b)})"
            case n.Bin("/") if sigmoid_of(e) is not None:
                return f"torch.sigmoid({self.vec(sigmoid_of(e))})"   # 1 / (1 + exp(-x)): one pass
            case n.Bin(op, a, b):
                return f"({self.vec(a)} {_BIN[op]} {self.vec(b)})"
            case n.Un("neg", a):
                return f"(-{self.vec(a)})"
            case n.Un("not", a):
                return f"torch.logical_not({self.vec(a)})"
            case n.Un("floor", a):
                return f"torch.floor({self.vec(a)})"
            case n.Un(op, a) if op in MATH_FNS and self.depends(a):
                return f"torch.{op}({self.vec(a)})"      # a tensor inside a nest: no dispatch
            case n.Un(op, a):
                return f"rt.{op}({self.vec(a)})"
            case n.Select(c, a, b):
                idiom = self.idiom(e)
                if idiom:
                    return idiom
                if c == n.Bin(">", a, n.Const(0)) and b == n.Const(0.0) or c == n.Bin(">", a, n.Const(0.0)) and b == n.Const(0.0):
                    return f"torch.relu({self.vec(a)})"     # `if x > 0: x else 0.0` (same gradient at 0)
                if not self.depends(c):
                    # a host condition selects on the host (class O); both branches are values
                    # of the nest, broadcast to each other as torch.where would
                    cond = self.host.expr(c)
                    self.guarded += 1
                    try:
                        va, vb = self.vec(a), self.vec(b)
                    finally:
                        self.guarded -= 1
                    return f"rt.nests.host_select({cond}, {va}, {vb})"
                cond = self.vec(c)
                self.guarded += 1       # a branch may read out of range where it is not selected
                try:
                    return f"torch.where({cond}, {self.vec(a)}, {self.vec(b)})"
                finally:
                    self.guarded -= 1
            case n.Reduce():
                return self.reduce(e)
            case n.Tabulate():
                raise EmitError("a tabulation nested inside a nest body")
        raise EmitError(f"cannot vectorise {type(e).__name__}")

    def load(self, tensor: n.Expr, index, axes, trailing: bool = False) -> str:
        if self._identity(tensor, index, axes) and not trailing:
            return self.host.expr(tensor)
        if any(linear_form(i, [a.var for a in axes]) is None for i in index):
            return self.gather(tensor, index, trailing)
        opts = (", guarded=True" if self.guarded else "") + (", trailing=True" if trailing else "")
        spec = self.index_spec(tensor, index, axes, all_axes=trailing)
        return f"rt.nests.view({spec}{opts})"

    def gather(self, tensor: n.Expr, index, trailing: bool) -> str:
        """A load at a data-dependent index (`X[order[b]]`): advanced indexing with one
        broadcast index tensor per axis, bounds-checked."""
        t = self.host.expr(tensor)
        idx = ", ".join(self.vec(i) for i in index)
        return f"rt.nests.gather({t}, ({idx}{',' if len(index) == 1 else ''}), {self.rank()}, trailing={trailing})"

    def index_spec(self, tensor: n.Expr, index, axes, all_axes: bool = False) -> str:
        """`t, const, coeffs, sizes`: the arguments of `rt.nests.view` and `rt.nests.store`."""
        t = self.host.expr(tensor) if not self.depends(tensor) else None
        if t is None:
            raise EmitError("a load from a computed tensor inside a nest")
        vars = [a.var for a in axes]
        consts, rows = [], [[] for _ in axes]
        for i in index:
            form = linear_form(i, vars)
            if form is None:
                raise EmitError("a data-dependent index inside a nest")
            coeffs, const = form
            # loop variables run from lo: index = Σ c·(lo + i') + const
            for a in axes:
                c = coeffs.get(a.var)
                if c is not None and not (isinstance(a.lo, n.Const) and a.lo.value == 0):
                    const = n.Bin("+", const, n.Bin("*", c, a.lo))
            consts.append(self.host.int_expr(simplify(const)))
            for k, a in enumerate(axes):
                c = coeffs.get(a.var)
                rows[k].append("0" if c is None else self.host.int_expr(simplify(c)))
        sizes = [self.sizes[a.var] if all_axes or any(r != "0" for r in rows[k]) else "1"
                 for k, a in enumerate(axes)]
        const_t = _tuple(consts) if consts else "()"
        coeff_t = _tuple(_tuple(r) if r else "()" for r in rows) if rows else "()"
        return f"{t}, {const_t}, {coeff_t}, {_tuple(sizes) if sizes else '()'}"

    def _identity(self, tensor, index, axes) -> bool:
        """`x[i, j]` over i in 0..dim(x,0), j in 0..dim(x,1), with no other axes: x itself."""
        if len(index) != len(axes):
            return False
        known = self.host.shapes.get(tensor.name) if isinstance(tensor, n.Sym) else None
        for k, (i, a) in enumerate(zip(index, axes)):
            if i != n.Sym(a.var) or a.lo != n.Const(0):
                return False
            hi = simplify(a.hi)
            if hi != n.Dim(tensor, k) and not (known and len(known) == len(index) and hi == known[k]):
                return False
        return True

    def reduce(self, r: n.Reduce) -> str:
        inner = Nest(self.host, self.axes + r.axes)
        inner.sizes = dict(self.sizes)
        inner.cache = self.cache
        inner.guarded = self.guarded
        for a in r.axes:
            inner.size_of(a)
        k0 = self.rank()
        dims = tuple(range(k0, k0 + len(r.axes)))
        idiom = self.idiom(r)
        if idiom is not None:
            return idiom
        if r.op is n.ReduceOp.ADD:
            es = inner.einsum(r.body, k0)
            if es is not None:
                return es
        body = inner.vec(r.body)
        if not inner.depends(r.body):
            raise EmitError("a reduction of an invariant value (should have been simplified)")
        if not self._uses_all(inner, r.body):
            # the reduction axes at full size (a sum counts them); an outer axis the body does
            # not use stays 1 and broadcasts: expanding it would reduce once per outer point
            # (all pairs: `max_k z[b, k]` inside a nest over (b, i) cost B·n·n)
            full = ", ".join(["-1"] * k0 + [inner.sizes[a.var] for a in r.axes])
            body = f"{body}.expand({full})"
        dims_s = _tuple(str(d) for d in dims)
        # max/min of an empty range has no value in torch: `_nonempty` axes use torch directly,
        # the others a runtime helper that gives the identity (-inf/+inf; for argmax `lo`, which
        # the select around it discards) — class H
        nonempty = all(_nonempty(a) for a in r.axes)
        match r.op:
            case n.ReduceOp.ADD:
                return f"{body}.sum(dim={dims_s})"
            case n.ReduceOp.MAX | n.ReduceOp.MIN if nonempty:
                # a strict scan `if e > m: m = e` keeps the first extremum: `max(dim)` sends the
                # whole gradient to the index it returns, the first (`amax` splits it between ties)
                fn = "max" if r.op is n.ReduceOp.MAX else "min"
                flat = body if len(dims) == 1 else f"{body}.flatten({dims[0]})"
                return f"{flat}.{fn}(dim={dims[0]}).values"
            case n.ReduceOp.MAX | n.ReduceOp.MIN:
                return f"rt.nests.extremum({body}, {dims_s}, {r.op.value!r})"
            case n.ReduceOp.MUL:
                # several axes: flattened into one (torch's prod takes one dim) — class A
                return f"{body}.flatten({k0}).prod(dim={k0})" if len(dims) > 1 else f"{body}.prod(dim={k0})"
            case n.ReduceOp.ARGMAX | n.ReduceOp.ARGMIN if len(dims) == 1:
                fn = "argmax" if r.op is n.ReduceOp.ARGMAX else "argmin"
                lo = self.host.int_expr(r.axes[0].lo)
                if not nonempty:
                    return f"rt.nests.arg_extremum({body}, {dims[0]}, {fn!r}, {lo})"
                return f"({body}.{fn}(dim={dims[0]}) + {lo})"
        raise EmitError(f"reduction {r.op.value} over several axes")

    def idiom(self, e: n.Expr) -> str | None:
        """A recognised conv2d / pooling / linear: one call of `runtime.idioms`."""
        from phc.select import idioms as I
        if self.host.backend == "universal":
            return None         # testing: every nest on the universal path
        m = I.match_reduce(e, self.axes) if isinstance(e, n.Reduce) else None
        m = m or I.match_pool(e, self.axes)
        if m is None:
            return None
        h = self.host
        x = h.expr(m.x)
        impl = self.impl(m.spec, x)
        match m:
            case I.ConvMatch():
                ni, nj = (self.sizes[a.var] for a in m.out_axes)
                nc = "None" if m.chan_axis is None else h.int_expr(extent(m.chan_axis))
                return (f"rt.idioms.conv2d({x}, {h.expr(m.w)}, {m.spec.stride}, {ni}, {nj}, "
                        f"{m.has_batch}, {m.has_out}, {m.has_chan}, {impl}, {m.spec.padding}, {nc}, {m.guarded})")
            case I.PoolMatch():
                ni, nj = (self.sizes[a.var] for a in m.out_axes)
                call = (f"rt.idioms.pool2d({x}, {m.spec.kind!r}, {m.spec.k}, {m.spec.stride}, {ni}, {nj}, "
                        f"{m.ties!r}, {impl}, {m.lead + 2})")
                return call if m.scale == 1 else f"({call} * {m.scale})"
            case I.LinearMatch():
                nk = h.int_expr(extent(m.red_axis))
                return (f"rt.idioms.linear({x}, {h.expr(m.w)}, {self.sizes[m.out_axis.var]}, {m.has_batch}, "
                        f"{impl}, {m.w_transposed}, {m.x_transposed}, {nk})")
        return None

    def impl(self, spec, x: str) -> str:
        backend = self.host.backend
        if backend in ("triton", "auto"):
            # the module renders a kernel for every spec called, also one the plan missed
            self.host.names.kernel_specs.setdefault(spec.symbol, spec)
        if backend == "triton":
            return spec.symbol
        if backend == "auto":
            return f"({spec.symbol} if {x}.is_cuda else None)"
        return "None"

    def einsum(self, body: n.Expr, k0: int) -> str | None:
        """Σ a·b of two loads as one einsum over compact views (no broadcast temporaries)."""
        if not (isinstance(body, n.Bin) and body.op == "*" and isinstance(body.a, n.Load)
                and isinstance(body.b, n.Load)):
            return None
        vars = [a.var for a in self.axes]
        if any(linear_form(i, vars) is None for load in (body.a, body.b) for i in load.index):
            return None     # a gather is indexed over the whole nest, not a compact view
        letters = "abcdefghijklmnopqrstuvwxyz"
        ops, specs = [], []
        for load in (body.a, body.b):
            used = [a for a in self.axes if a.var in set().union(*(free_syms(i) for i in load.index))]
            if not used:
                return None
            ops.append(self.code.places.note(self.load(load.tensor, load.index, tuple(used)), load.span))
            specs.append("".join(letters[self.axes.index(a)] for a in used))
        outer = [a for a in self.axes[:k0] if any(letters[self.axes.index(a)] in s for s in specs)]
        out = "".join(letters[self.axes.index(a)] for a in outer)
        code = f"torch.einsum('{','.join(specs)}->{out}', {', '.join(ops)})"
        if len(outer) != k0:
            shape = ", ".join(self.sizes[a.var] if a in outer else "1" for a in self.axes[:k0])
            code = f"{code}.reshape({shape}{',' if k0 == 1 else ''})" if k0 else code
        return code
