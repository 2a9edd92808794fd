"""A seeded generator of random, valid Physika programs for differential testing.

`generate(seed)` returns the text of one small program (dimensions 1–6, a few statements) that
`phc check` accepts and that prints every result it computes. A program is a few input tensors
followed by a few *snippets*; each snippet writes one idiom of the language in one of several
spellings, or a near-miss of it (an off-by-one window, a partial channel loop, a flipped index,
a kernel indexed by an outer variable), then prints what it computed. The generator knows every
shape, so every index it writes is in bounds; it checks each snippet with `check_source` and drops
(and counts) any the checker rejects.

Values are distinct random decimals in [-2, 2] (no ties for max/argmax, no huge magnitudes);
expressions keep them bounded (`exp` of a scaled value, divisions by `1 + |…|`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from phc.api import check_source


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    real: bool = True
    grad_ok: bool = True        # a real tensor that was never stored into: a valid grad target


@dataclass
class Program:
    text: str
    features: set[str]
    rejected: int               # snippets the checker rejected while building this program
    snippets: list[str] = field(default_factory=list)


def generate(seed: int) -> str:
    return generate_program(seed).text


def generate_program(seed: int, snippets: int | None = None) -> Program:
    rnd = random.Random(seed * 7919 + 17)
    g = Gen(rnd)
    count = snippets if snippets is not None else rnd.randint(2, 4)
    tries = 0
    while len(g.done) < count and tries < count * 6:
        tries += 1
        g.try_snippet(rnd.choice(SNIPPETS))
    if rnd.random() < 0.6:
        g.try_snippet(snip_grad_tail)
    if not g.done:          # never return an empty program
        g.try_snippet(snip_elementwise)
    return Program(g.text(), g.features, g.rejected, list(g.done))


# ---------------------------------------------------------------- the generator's state


class Gen:
    def __init__(self, rnd: random.Random):
        self.r = rnd
        self.blocks: list[str] = []
        self.tensors: list[Tensor] = []
        self.features: set[str] = set()
        self.done: list[str] = []
        self.rejected = 0
        self.names = 0
        self.pending: list[str] = []
        self.pending_tensors: list[Tensor] = []
        self.pending_features: set[str] = set()

    def text(self) -> str:
        return "".join(self.blocks)

    def fresh(self, stem: str) -> str:
        self.names += 1
        return f"{stem}{self.names}"

    # A snippet appends to `pending`; it is kept only if the whole program still checks.
    def try_snippet(self, snippet) -> None:
        self.pending, self.pending_tensors, self.pending_features = [], [], set()
        saved_names = self.names
        snippet(self)
        candidate = self.text() + "".join(self.pending)
        if any(d.is_error for d in check_source(candidate, "gen.phk")):
            self.rejected += 1
            self.names = saved_names
            return
        self.blocks.extend(self.pending)
        self.tensors.extend(self.pending_tensors)
        self.features |= self.pending_features
        self.done.append(snippet.__name__)

    def emit(self, *lines: str) -> None:
        self.pending.append("".join(line + "\n" for line in lines))

    def feat(self, *names: str) -> None:
        self.pending_features.update(names)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def pick(self, *options):
        return self.r.choice(options)

    # ---- values

    def values(self, count: int) -> list[float]:
        """`count` distinct decimals in [-2, 2], none close to 0 (no ties, no kinks at 0)."""
        grid = [v for v in range(-2000, 2001) if abs(v) >= 30]
        return [v / 1000 for v in self.r.sample(grid, count)]

    def literal(self, shape: tuple[int, ...]) -> str:
        vals = iter(self.values(prod(shape)))

        def nest(dims):
            if not dims:
                return fmt(next(vals))
            return "[" + ", ".join(nest(dims[1:]) for _ in range(dims[0])) + "]"
        return nest(shape)

    def declare(self, shape: tuple[int, ...], stem: str = "x") -> Tensor:
        """A new input tensor with distinct values, as a literal or (sometimes) a formula."""
        name = self.fresh(stem)
        dims = ", ".join(map(str, shape))
        if self.chance(0.2) and len(shape) <= 3:
            self.emit(f"{name}: ℝ[{dims}] = {self.formula(shape)}")
            self.feat("formula_input", "comprehension")
        else:
            self.emit(f"{name}: ℝ[{dims}] = {self.literal(shape)}")
        t = Tensor(name, shape)
        self.pending_tensors.append(t)
        return t

    def formula(self, shape: tuple[int, ...]) -> str:
        """A comprehension whose values are distinct: sin of a generic affine form, scaled."""
        vars_ = "ijk"[:len(shape)]
        coefs = [round(self.r.uniform(0.3, 1.3), 3) for _ in shape]
        arg = " + ".join(f"{c} * {v}" for c, v in zip(coefs, vars_))
        head = " ".join(f"for {v}: ℕ({d}) ->" for v, d in zip(vars_, shape))
        off = round(self.r.uniform(-1, 1), 3)
        return f"{head} 1.7 * sin({arg} + {fmt(off)})"

    def tensor(self, shape: tuple[int, ...], stem: str = "x", reuse: float = 0.6) -> Tensor:
        """An existing real tensor of this shape, or a new input."""
        fits = [t for t in self.tensors + self.pending_tensors if t.shape == shape and t.real]
        if fits and self.chance(reuse):
            return self.r.choice(fits)
        return self.declare(shape, stem)

    def some_shape(self, ranks, lo: int = 1, chain: float = 0.5) -> tuple[int, ...]:
        """The shape of an existing real tensor of one of these ranks (so snippets chain: a pool
        of a convolution's output), or a random one; every dimension at least `lo`."""
        fits = [t.shape for t in self.tensors + self.pending_tensors
                if t.real and len(t.shape) in ranks and min(t.shape, default=0) >= lo]
        if fits and self.chance(chain):
            self.feat("chained")
            return self.r.choice(fits)
        return self.shape(self.r.choice(list(ranks)), lo, max(lo, 6))

    def output(self, name: str, shape: tuple[int, ...], real: bool = True, grad_ok: bool = True):
        self.pending_tensors.append(Tensor(name, shape, real, grad_ok and real))

    def dim(self) -> int:
        return self.r.randint(1, 6)

    def shape(self, rank: int, lo: int = 1, hi: int = 6) -> tuple[int, ...]:
        return tuple(self.r.randint(lo, hi) for _ in range(rank))

    # ---- scalar expressions over some reads

    def scalar(self, leaves: list[str], depth: int = 2) -> str:
        """A bounded elementwise expression of the `leaves` (each a scalar expression)."""
        if depth == 0 or self.chance(0.25):
            if self.chance(0.15):
                return self.const()
            return self.r.choice(leaves)
        a = self.scalar(leaves, depth - 1)
        b = self.scalar(leaves, depth - 1)
        form = self.r.randrange(16)
        return [
            f"({a} + {b})", f"({a} - {b})", f"({a} * {b})", f"({a} * {self.const()})",
            f"sin({a})", f"cos({a})", f"tanh({a})", f"sigmoid({a})", f"exp({a} * 0.3)",
            f"abs({a})", f"({a} / (1.0 + abs({b})))", f"({a}) ** 2", f"sqrt(1.0 + {a} * {a})",
            f"log(1.0 + abs({a}))", f"max({a}, {b})", f"-{a}",
        ][form]

    def const(self) -> str:
        v = self.pick(0.5, 1.5, 2.0, 0.25, -0.75, -1.25, 3.0, 0.1)
        return fmt(v) if v >= 0 else f"({fmt(v)})"


def prod(shape) -> int:
    p = 1
    for d in shape:
        p *= d
    return p


def fmt(v: float) -> str:
    text = f"{v:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


IDX = "ijkl"


def index(vars_) -> str:
    return ", ".join(vars_)


def size(name: str, axis: int, value: int, g: Gen) -> str:
    """The extent of axis `axis` of `name`, written as `len(…)` or as the number."""
    if g.chance(0.5):
        return str(value)
    return "len(" + name + "[0]" * axis + ")"


SYMBOLS = {"A": "ABCD", "K": "KLMO", "m": "mnpq", "P": "PQST"}


def symbols(rank: int, first: str = "A") -> str:
    """Dimension symbols for a signature (never `N`, `R`, `Z`: those are type keywords)."""
    return ", ".join(SYMBOLS[first][:rank])


def loop_head(g: Gen, var: str, extent: str, name: str | None = None, axis: int = 0,
              inferable: bool = False) -> str:
    """`for v: ℕ(n):` in one of its spellings; `for v:` only where the range is inferable."""
    if inferable and g.chance(0.2):
        g.feat("inferred_range")
        return f"for {var}:"
    spelling = g.pick("ℕ", "ℕ", "ℕ", "N")
    return f"for {var}: {spelling}({extent}):"


# ---------------------------------------------------------------- snippets


def snip_elementwise(g: Gen) -> None:
    """An elementwise map: an expression of whole tensors, a comprehension, or a loop of stores."""
    shape = g.some_shape((1, 2, 3))
    x = g.tensor(shape, reuse=0.8)
    y = g.tensor(shape) if g.chance(0.5) else x
    vars_ = IDX[:len(shape)]
    form = g.r.randrange(4)
    out = g.fresh("y")
    if form == 0:                                   # whole-tensor expression
        body = g.scalar([x.name, y.name], 2)
        if body in (x.name, y.name):
            body = f"({body} * 2.0 + 1.0)"
        g.emit(f"{out} = {body}")
        g.feat("elementwise_expr")
    elif form == 1:                                 # comprehension
        reads = [f"{x.name}[{index(vars_)}]", f"{y.name}[{index(vars_)}]"]
        body = g.scalar(reads, 2)
        heads = []
        for v, d in zip(vars_, shape):
            heads.append(g.pick(f"for {v}: ℕ({d}) ->", f"for {v} ->", f"for {v}: ℕ(len({x.name}{'[0]' * vars_.index(v)})) ->"))
        if any(h.startswith(f"for {v} ->") for h, v in zip(heads, vars_)) and x.name not in body and y.name not in body:
            body = reads[0]
        if all(v not in body for v in vars_) or not any(r in body for r in reads):
            body = f"{reads[0]} * 0.5"
        g.emit(f"{out} = {' '.join(heads)} {body}")
        g.feat("comprehension", "elementwise_compr")
    elif form == 2:                                 # a function applied in a comprehension
        f = g.fresh("relu")
        leak = g.pick("0.0", "0.1 * v", "v * 0.0")
        g.emit(f"def {f}(v: ℝ): ℝ:",
               "    if v > 0:",
               "        return v",
               "    else:",
               f"        return {leak}")
        heads = " ".join(f"for {v} ->" for v in vars_)
        g.emit(f"{out} = {heads} {f}({x.name}[{index(vars_)}] - {fmt(g.r.choice([0.0, 0.3, -0.2]))})")
        g.feat("function", "comprehension", "relu")
    else:                                           # loop of stores into zeros, inside a function
        f = g.fresh("ew")
        sig = symbols(len(shape))
        dims = [size("x", k, d, g) for k, d in enumerate(shape)]
        reads = [f"x[{index(vars_)}]", f"y[{index(vars_)}]"]
        body = g.scalar(reads, 2)
        lines = [f"def {f}(x: ℝ[{sig}], y: ℝ[{sig}]): ℝ[{sig}]:",
                 f"    r: ℝ[{', '.join(dims)}] = zeros({', '.join(dims)})"]
        ind = "    "
        for k, v in enumerate(vars_):
            lines.append(ind + loop_head(g, v, dims[k]))
            ind += "    "
        lines.append(f"{ind}r[{index(vars_)}] = {body}")
        lines.append("    return r")
        g.emit(*lines)
        g.emit(f"{out} = {f}({x.name}, {y.name})")
        g.feat("function", "loop_store")
    g.emit(out)
    g.output(out, shape)


def snip_reduce(g: Gen) -> None:
    """A reduction over a chosen subset of axes, as loops with `acc op= …`, with several ops."""
    shape = g.some_shape((1, 2, 3))
    rank = len(shape)
    x = g.tensor(shape, reuse=0.8)
    vars_ = list(IDX[:rank])
    keep = [k for k in range(rank) if g.chance(0.4)]
    if len(keep) == rank:
        keep.remove(g.r.choice(keep))
    red = [k for k in range(rank) if k not in keep]
    op = g.pick("sum", "sum", "sum", "prod", "max", "min", "argmax", "count", "sub", "mean")
    f = g.fresh("red")
    sig = symbols(rank)
    dims = [size("x", k, d, g) for k, d in enumerate(shape)]
    ranges = {}
    for k in range(rank):                      # sub-ranges and empty ranges on reduced axes
        lo, hi = 0, shape[k]
        if k in red and g.chance(0.2):
            lo = g.r.randint(0, shape[k])
            hi = g.r.randint(lo, shape[k]) if g.chance(0.8) else max(lo - 1, 0)
            g.feat("subrange")
            if hi <= lo:
                g.feat("empty_range")
        ranges[k] = (lo, hi)
    out_shape = tuple(shape[k] for k in keep)
    read = f"x[{index(vars_)}]"
    body = read if g.chance(0.6) else g.scalar([read], 1)
    if op in ("max", "min", "argmax"):
        body = read                             # distinct inputs: no ties
    lines = [f"def {f}(x: ℝ[{sig}]):" if g.chance(0.3) else f"def {f}(x: ℝ[{sig}]): {'ℝ' if not keep else 'ℝ[' + symbols(len(keep), 'P') + ']'}:"]
    if op == "argmax":
        lines[0] = f"def {f}(x: ℝ[{sig}]):"
    ind = "    "
    if keep:
        odims = [dims[k] for k in keep]
        lines.append(f"{ind}r: ℝ[{', '.join(odims)}] = zeros({', '.join(odims)})")
    for k in keep:
        lines.append(ind + loop_head(g, vars_[k], dims[k], inferable=False))
        ind += "    "
    init = {"sum": "0", "sub": "0", "mean": "0", "count": "0", "prod": "1",
            "max": "-100.0", "min": "100.0", "argmax": "-100.0"}[op]
    if op in ("max", "min") and g.chance(0.5) and all(ranges[k] == (0, shape[k]) for k in red):
        first = ", ".join("0" if k in red else vars_[k] for k in range(rank))
        init = f"x[{first}]"
    lines.append(f"{ind}acc = {init}")
    if op == "argmax":
        lines.append(f"{ind}at = 0")
    for k in red:
        lo, hi = ranges[k]
        ext = f"{lo}, {hi}" if lo else (dims[k] if hi == shape[k] else str(hi))
        lines.append(ind + f"for {vars_[k]}: ℕ({ext}):")
        ind += "    "
    if op == "sum":
        lines.append(f"{ind}acc += {body}")
    elif op == "sub":
        lines.append(f"{ind}acc -= {body}")
    elif op == "mean":
        lines.append(f"{ind}acc = acc + {body}")
    elif op == "count":
        lines.append(f"{ind}acc += 1")
        g.feat("count")
    elif op == "prod":
        lines.append(f"{ind}acc *= (1.0 + 0.2 * {read})")
    elif op == "max":
        lines += [f"{ind}if {read} > acc:", f"{ind}    acc = {read}"]
    elif op == "min":
        lines += [f"{ind}if {read} < acc:", f"{ind}    acc = {read}"]
    elif op == "argmax":
        lines += [f"{ind}if {read} > acc:", f"{ind}    acc = {read}", f"{ind}    at = {vars_[red[-1]]}"]
    ind = "    " + "    " * len(keep)
    result = "at" if op == "argmax" else ("acc / " + str(max(1, prod(shape[k] for k in red))) if op == "mean" else "acc")
    if keep:
        lines.append(f"{ind}r[{index(vars_[k] for k in keep)}] = {result}")
        lines.append("    return r")
    else:
        lines.append(f"    return {result}")
    g.emit(*lines)
    out = g.fresh("s")
    g.emit(f"{out} = {f}({x.name})", out)
    g.feat("reduction", f"reduce_{op}", f"reduce_depth{len(red)}")
    if keep:
        g.feat("partial_reduction")
    g.output(out, out_shape, real=op not in ("argmax", "count"))


def snip_builtin_reduce(g: Gen) -> None:
    """`sum`, `max`, `min`, `argmax` builtins: of tensors, of rows, of comprehensions."""
    shape = g.some_shape((1, 2, 3))
    rank = len(shape)
    x = g.tensor(shape, reuse=0.8)
    n = shape[0]
    form = g.r.randrange(8)
    if form == 0:
        e = f"sum({x.name})"
    elif form == 1:
        e = f"{g.pick('max', 'min')}({x.name})"
    elif form == 2:
        e = f"argmax({x.name})" if rank == 1 else f"sum({x.name}[0])"
    elif form == 3 and rank >= 2:
        e = f"(for i -> sum({x.name}[i]))"               # C1
        g.feat("row_reduce")
    elif form == 4:
        e = f"sum(for i -> {x.name}[i])"                 # C3
        g.feat("comprehension_in_sum")
    elif form == 5 and rank >= 2:
        e = f"(for i -> {g.pick('max', 'min')}({x.name}[i]))"   # C4
        g.feat("row_reduce")
    elif form == 6 and rank >= 2:
        m = shape[1]
        e = f"(for i: ℕ({n}) -> sum(for j: ℕ({m}) -> {x.name}[i, j] * {fmt(g.values(1)[0])}))"
        g.feat("comprehension_in_sum")
    else:
        e = f"sum(for i: ℕ({n}) -> {x.name}[i] * {x.name}[{n - 1} - i])"   # reversed pairing
        g.feat("comprehension_in_sum", "flipped_index")
    out = g.fresh("s")
    g.emit(f"{out} = {e}", out)
    g.feat("builtin_reduce", "reduction")
    real = not e.startswith("argmax")
    if e.startswith("(for i -> sum") or e.startswith("(for i -> m") or e.startswith("(for i: "):
        g.output(out, (n,))
    elif real:
        g.output(out, ())


def snip_conv(g: Gen) -> None:
    """A convolution written as loops (or a comprehension of sums), with optional batch, input and
    output channels, stride, zero padding as a guard, bias; sometimes a near-miss."""
    batch = g.r.randint(1, 2) if g.chance(0.25) else 0
    cin = g.r.randint(1, 3) if g.chance(0.5) else 0
    cout = g.r.randint(1, 3) if g.chance(0.5) else 0
    K = g.r.randint(1, 3)
    L = K if g.chance(0.8) else g.r.randint(1, 3)
    s = g.pick(1, 1, 2)
    p = 1 if g.chance(0.3) else 0
    near = g.pick(None, None, None, "partial_out", "partial_in", "offbyone", "flip", "dilate",
                  "wide_guard", "outer_kernel", "transpose_in")
    if near == "partial_out" and cout < 2:
        near = None
    if near == "outer_kernel" and not cout:
        near = None
    if near == "wide_guard" and not p:
        near = None
    dil = 2 if near == "dilate" else 1
    H = g.r.randint(max(1, dil * (K - 1) + 1 - 2 * p), 6)
    W = g.r.randint(max(1, dil * (L - 1) + 1 - 2 * p), 6)
    if not batch and near != "partial_in" and g.chance(0.5):     # chain: convolve an earlier result
        prev = g.some_shape((3,) if cin else (2,), lo=max(1, dil * (max(K, L) - 1) + 1 - 2 * p), chain=0.7)
        if cin:
            cin, H, W = prev
        else:
            H, W = prev
    if near == "transpose_in":
        W = H = max(H, W)
    off = 1 if near == "offbyone" else 0
    oh = (H + 2 * p - dil * (K - 1) - 1 - off) // s + 1
    ow = (W + 2 * p - dil * (L - 1) - 1) // s + 1
    if oh < 1 or ow < 1:
        near, off, oh = None, 0, (H + 2 * p - dil * (K - 1) - 1) // s + 1
    if near == "wide_guard":
        oh, ow = oh + 1, ow + 1
    xc = cin + 1 if near == "partial_in" and cin else cin
    xshape = ((batch,) if batch else ()) + ((xc,) if cin else ()) + (H, W)
    wshape = ((cout,) if cout else ()) + ((cin,) if cin else ()) + (K, L)
    x = g.tensor(xshape, "x")
    w = g.tensor(wshape, "w")
    bias = g.pick(None, "scalar", "vector") if cout else g.pick(None, "scalar")
    bt = g.tensor((cout,), "b") if bias == "vector" else None
    f = g.fresh("conv")
    outer = (["b"] if batch else []) + (["o"] if cout else [])
    oext = []
    if batch:
        oext.append(size("x", 0, batch, g))
    if cout:
        oext.append(str(cout - 1) if near == "partial_out" else size("w", 0, cout, g))
    ohe, owe = str(oh), str(ow)
    if not near and not p and s == 1 and g.chance(0.5):
        hx, kx = len(xshape) - 2, len(wshape) - 2
        ohe = f"len(x{'[0]' * hx}) - len(w{'[0]' * kx}) + 1"
        owe = f"len(x{'[0]' * (hx + 1)}) - len(w{'[0]' * (kx + 1)}) + 1"
    oshape = ((batch,) if batch else ()) + ((cout - 1 if near == "partial_out" else cout,) if cout else ()) + (oh, ow)
    xp = (["b"] if batch else []) + (["c"] if cin else [])
    wp = (["o"] if cout else []) + (["c"] if cin else [])

    def at(v, a, k):
        base = v if s == 1 else g.pick(f"{v} * {s}", f"{s} * {v}", f"{v}*{s}")
        term = a if dil == 1 else f"{dil} * {a}"
        e = f"{base} + {term}" if g.chance(0.7) else f"{term} + {base}"
        if k:
            e += f" + {k}" if k > 0 else f" - {-k}"
        return e
    ri, rj = at("i", "ki", off - p), at("j", "kj", -p)
    if near == "transpose_in":
        ri, rj = rj, ri
    kidx = ("ki", "kj") if near != "flip" else (f"{K - 1} - ki", "kj")
    xread = f"x[{', '.join(xp + [ri, rj])}]"
    wread = f"w[{', '.join(wp + list(kidx))}]"
    guard = None
    if p:
        guard = (f"{ri} >= 0 and {ri} < {H} and {rj} >= 0 and {rj} < {W}" if g.chance(0.5) else
                 f"{ri} >= 0 and {ri} < len(x{'[0]' * (len(xshape) - 2)}) and {rj} >= 0 and {rj} < len(x{'[0]' * (len(xshape) - 1)})")
    params = [f"x: ℝ[{symbols(len(xshape))}]", f"w: ℝ[{symbols(len(wshape), 'K')}]"]
    if bias == "scalar":
        params.append("bias: ℝ")
    elif bias == "vector":
        params.append("bias: ℝ[K]")
    bterm = {"scalar": " + bias", "vector": " + bias[o]", None: ""}[bias]
    comprehension = (not p and not cin and not batch and not cout and g.chance(0.6)
                     and near in (None, "flip", "offbyone", "dilate", "transpose_in"))
    lines = [f"def {f}({', '.join(params)}): ℝ[{symbols(len(oshape), 'm')}]:"]
    if near == "outer_kernel":
        lines = [f"def nrm{f}(k: ℝ[{symbols(len(wshape) - 1, 'P')}]): ℝ:",
                 "    t = 0.0",
                 "    for u: ℕ(len(k)):",
                 "        t = t * 0.5 + sum(k[u])",
                 "    return t"] + lines
    if comprehension:
        lines.append(f"    return for i: ℕ({ohe}) -> for j: ℕ({owe}) -> sum(for ki: ℕ({K}) -> "
                     f"for kj: ℕ({L}) -> {xread} * {wread}){bterm}")
        g.feat("conv_comprehension")
    else:
        dims = oext + [ohe, owe]
        lines.append(f"    r: ℝ[{', '.join(dims)}] = zeros({', '.join(dims)})")
        ind = "    "
        for v, e in zip(outer, oext):
            lines.append(f"{ind}for {v}: ℕ({e}):")
            ind += "    "
            if v == "o" and near == "outer_kernel":
                lines.append(f"{ind}sc = nrm{f}(w[o])")
        lines.append(f"{ind}for i: ℕ({ohe}):")
        lines.append(f"{ind}    for j: ℕ({owe}):")
        ind += "        "
        lines.append(f"{ind}acc = 0")
        if cin:
            lines.append(f"{ind}for c: ℕ({size('w', 1 if cout else 0, cin, g)}):")
            ind += "    "
        lines.append(f"{ind}for ki: ℕ({size('w', len(wshape) - 2, K, g)}):")
        lines.append(f"{ind}    for kj: ℕ({size('w', len(wshape) - 1, L, g)}):")
        ind += "        "
        if guard:
            lines.append(f"{ind}if {guard}:")
            ind += "    "
        lines.append(f"{ind}acc += {xread} * {wread}")
        ind = "    " * (len(outer) + 3)
        scale = " * sc" if near == "outer_kernel" else ""
        lines.append(f"{ind}r[{', '.join(outer + ['i', 'j'])}] = acc{scale}{bterm}")
        lines.append("    return r")
    g.emit(*lines)
    args = [x.name, w.name] + ([fmt(g.values(1)[0])] if bias == "scalar" else []) + ([bt.name] if bt else [])
    out = g.fresh("c")
    g.emit(f"{out} = {f}({', '.join(args)})", out)
    if g.chance(0.3):                        # the same function, other data of the same shapes
        x2 = g.declare(xshape, "x")
        out2 = g.fresh("c")
        g.emit(f"{out2} = {f}({', '.join([x2.name] + args[1:])})", out2)
        g.feat("called_twice")
    g.feat("conv", f"conv_stride{s}", "function")
    if p:
        g.feat("conv_padding_guard")
    if cin:
        g.feat("conv_channels")
    if near:
        g.feat("near_miss", f"conv_{near}")
    g.output(out, oshape)


def snip_pool(g: Gen) -> None:
    """Max/min/avg pooling: scans with `if`, select trees, `max(a, b)` folds, sums."""
    batch = g.r.randint(1, 2) if g.chance(0.2) else 0
    chans = g.r.randint(1, 3) if g.chance(0.5) else 0
    k = g.pick(2, 2, 3)
    s = g.r.randint(1, k)
    near = g.pick(None, None, None, "partial_chan", "offbyone", "short_window", "ge")
    if near == "partial_chan" and chans < 2:
        near = None
    start = 1 if near == "offbyone" else 0
    kb = k - 1 if near == "short_window" else k
    H = g.r.randint(k + start, 6)
    W = g.r.randint(k, 6)
    prev = g.some_shape((2, 3), lo=k + start, chain=0.6)
    if len(prev) == 3 and not batch:
        chans, H, W = prev
        if near == "partial_chan" and chans < 2:
            near = None
    elif len(prev) == 2:
        H, W = prev
    oh, ow = (H - k - start) // s + 1, (W - k) // s + 1
    lead = ((batch,) if batch else ()) + ((chans,) if chans else ())
    x = g.tensor(lead + (H, W))
    outer = (["b"] if batch else []) + (["c"] if chans else [])
    oext = ([size("x", 0, batch, g)] if batch else []) + ([str(chans - 1) if near == "partial_chan" else size("x", 1 if batch else 0, chans, g)] if chans else [])
    oshape = ((batch,) if batch else ()) + ((chans - 1 if near == "partial_chan" else chans,) if chans else ()) + (oh, ow)
    kind = g.pick("max", "max", "min", "avg")
    form = g.pick("scan", "tree", "fold", "fold_user") if kind != "avg" else "sum"
    cmp = (">=" if near == "ge" else ">") if kind == "max" else ("<=" if near == "ge" else "<")
    f = g.fresh("pool")
    pre = ", ".join(outer)
    pre = pre + ", " if pre else ""

    def rd(a, b):
        ra = f"{s}*i + {a}" if s > 1 else f"i + {a}"
        if start:
            ra += f" + {start}"
        rb = f"{s}*j + {b}" if s > 1 else f"j + {b}"
        return f"x[{pre}{ra}, {rb}]"
    lines = [f"def {f}(x: ℝ[{symbols(len(lead) + 2)}]): ℝ[{symbols(len(oshape), 'm')}]:"]
    if form == "fold_user":
        helper = f"{'mx' if kind == 'max' else 'mn'}{f}"
        lines = [f"def {helper}(a: ℝ, b: ℝ): ℝ:",
                 f"    if a {cmp} b:",
                 "        return a",
                 "    else:",
                 "        return b"] + lines
    dims = oext + [str(oh), str(ow)]
    lines.append(f"    r: ℝ[{', '.join(dims)}] = zeros({', '.join(dims)})")
    ind = "    "
    for v, e in zip(outer, oext):
        lines.append(f"{ind}for {v}: ℕ({e}):")
        ind += "    "
    lines.append(f"{ind}for i: ℕ({oh}):")
    lines.append(f"{ind}    for j: ℕ({ow}):")
    ind += "        "
    if form == "scan":
        lines.append(f"{ind}m = {rd(0, 0)}")
        lines.append(f"{ind}for a: ℕ({kb}):")
        lines.append(f"{ind}    for e: ℕ({k}):")
        lines.append(f"{ind}        if {rd('a', 'e')} {cmp} m:")
        lines.append(f"{ind}            m = {rd('a', 'e')}")
    elif form == "tree":
        reads = [rd(a, e) for a in range(kb) for e in range(k)]
        fn = "max" if kind == "max" else "min"
        tree = reads[-1]
        for rdx in reversed(reads[:-1]):
            tree = f"{fn}({rdx}, {tree})"
        lines.append(f"{ind}m = {tree}")
    elif form in ("fold", "fold_user"):
        fn = ("max" if kind == "max" else "min") if form == "fold" else helper
        lines.append(f"{ind}m = {rd(0, 0)}")
        lines.append(f"{ind}for a: ℕ({kb}):")
        lines.append(f"{ind}    for e: ℕ({k}):")
        lines.append(f"{ind}        m = {fn}(m, {rd('a', 'e')})")
    else:
        lines.append(f"{ind}m = 0")
        lines.append(f"{ind}for a: ℕ({kb}):")
        lines.append(f"{ind}    for e: ℕ({k}):")
        lines.append(f"{ind}        m += {rd('a', 'e')}")
        lines.append(f"{ind}m = m / {kb * k}")
    lines.append(f"{ind}r[{pre}i, j] = m")
    lines.append("    return r")
    g.emit(*lines)
    out = g.fresh("p")
    g.emit(f"{out} = {f}({x.name})", out)
    g.feat("pool", f"pool_{kind}", f"pool_{form}", "function")
    if s < k:
        g.feat("pool_overlap")
    if near:
        g.feat("near_miss", f"pool_{near}")
    g.output(out, oshape)


def snip_linear(g: Gen) -> None:
    """Matrix products: `@` of every rank pairing, loops (mat-vec, mat-mat, transposed, batched
    with bias), comprehensions of sums; near-misses over part of an axis."""
    m, n, q = g.dim(), g.dim(), g.dim()
    form = g.r.randrange(9)
    out = g.fresh("l")
    if form == 0:
        w, x = g.tensor((m, n), "w"), g.tensor((n,))
        g.emit(f"{out} = {w.name} @ {x.name}", out)
        g.output(out, (m,))
        g.feat("matmul_op")
    elif form == 1:
        a, b = g.tensor((m, n), "a"), g.tensor((n, q), "w")
        g.emit(f"{out} = {a.name} @ {b.name}", out)
        g.output(out, (m, q))
        g.feat("matmul_op")
    elif form == 2:
        B = g.r.randint(1, 3)
        a, b = g.tensor((B, m, n), "a"), g.tensor((B, n, q), "w")
        g.emit(f"{out} = {a.name} @ {b.name}", out)
        g.output(out, (B, m, q))
        g.feat("matmul_op", "batched_matmul")
    elif form == 3:
        x, w = g.tensor((n,)), g.tensor((n, q), "w")
        g.emit(f"{out} = {x.name} @ {w.name}", out)
        g.output(out, (q,))
        g.feat("matmul_op")
    elif form == 4:                                   # transposed product as a comprehension
        w, y = g.tensor((m, n), "w"), g.tensor((m,))
        f = g.fresh("tr")
        g.emit(f"def {f}(w: ℝ[m, n], y: ℝ[m]): ℝ[n]:",
               f"    return for j: ℕ(len(w[0])) -> sum(for i: ℕ(len(w)) -> w[i, j] * y[i])")
        g.emit(f"{out} = {f}({w.name}, {y.name})", out)
        g.output(out, (n,))
        g.feat("linear_transposed", "comprehension_in_sum", "function")
    else:                                             # loop forms, batched or not
        batched = form >= 7
        near = g.pick(None, None, "partial_batch", "x_longer", "partial_rows", "flip", "partial_red")
        if near == "partial_batch" and not batched:
            near = None
        B = g.r.randint(2 if near == "partial_batch" else 1, 3)
        if near == "partial_rows" and m < 2:
            near = None
        if near == "partial_red" and n < 2:
            near = None
        xn = n + 1 if near == "x_longer" else n
        w = g.tensor((m, n), "w")
        x = g.tensor((B, xn) if batched else (xn,))
        c = g.tensor((m,), "b") if g.chance(0.4) else None
        transposed = g.chance(0.3)
        if transposed:                                  # w given as [n, m]
            w = g.tensor((n, m), "w")
        f = g.fresh("lin")
        wread = "w[j, i]" if transposed else "w[i, j]"
        xj = f"{xn - 1} - j" if near == "flip" else "j"
        xread = f"x[bb, {xj}]" if batched else f"x[{xj}]"
        rows = (size("w", 1, m, g) if transposed else size("w", 0, m, g))
        if near == "partial_rows":
            rows = str(m - 1)
        red = size("w", 0, n, g) if transposed else size("w", 1, n, g)
        if near == "partial_red":
            red = f"1, {n}"
        bsz = str(B - 1) if near == "partial_batch" else size("x", 0, B, g)
        params = [f"w: ℝ[{'n, m' if transposed else 'm, n'}]", f"x: ℝ[{'B, k' if batched else 'k'}]"] + (["c: ℝ[m]"] if c else [])
        rdims = ([bsz] if batched else []) + [rows]
        lines = [f"def {f}({', '.join(params)}):",
                 f"    r: ℝ[{', '.join(rdims)}] = zeros({', '.join(rdims)})"]
        ind = "    "
        if batched:
            lines.append(f"{ind}for bb: ℕ({bsz}):")
            ind += "    "
        lines += [f"{ind}for i: ℕ({rows}):", f"{ind}    acc = 0", f"{ind}    for j: ℕ({red}):",
                  f"{ind}        acc += {wread} * {xread}",
                  f"{ind}    r[{'bb, ' if batched else ''}i] = acc{' + c[i]' if c else ''}"]
        lines.append("    return r")
        g.emit(*lines)
        args = [w.name, x.name] + ([c.name] if c else [])
        g.emit(f"{out} = {f}({', '.join(args)})", out)
        oshape = ((B - 1 if near == "partial_batch" else B,) if batched else ()) + (m - 1 if near == "partial_rows" else m,)
        g.output(out, oshape)
        g.feat("linear_loop", "function")
        if batched:
            g.feat("linear_batched")
        if transposed:
            g.feat("linear_transposed")
        if near:
            g.feat("near_miss", f"linear_{near}")
    g.feat("linear")


def snip_reshape(g: Gen) -> None:
    """Flatten, unflatten and transpose by stores, and the same as comprehensions."""
    form = g.r.randrange(5)
    f = g.fresh("rs")
    out = g.fresh("f")
    if form == 0:
        shape = g.shape(2)
        x = g.tensor(shape)
        R, C = shape
        cols = g.pick(str(C), "len(x[0])")
        g.emit(f"def {f}(x: ℝ[m, n]): ℝ[k]:",
               f"    rows: ℝ = {g.pick(str(R), 'len(x)')}",
               f"    cols: ℝ = {cols}",
               "    r: ℝ[rows * cols] = zeros(rows * cols)",
               "    for i: ℕ(rows):",
               "        for j: ℕ(cols):",
               "            r[i*cols + j] = x[i, j]",
               "    return r")
        g.output(out, (R * C,))
    elif form == 1:
        shape = g.shape(3, 1, 4)
        x = g.tensor(shape)
        A, B, C = shape
        g.emit(f"def {f}(x: ℝ[p, q, s]): ℝ[k]:",
               f"    r: ℝ[{A * B * C}] = zeros({A * B * C})",
               f"    for c: ℕ({A}):",
               f"        for i: ℕ({B}):",
               f"            for j: ℕ({C}):",
               f"                r[c * {B * C} + i * {C} + j] = x[c, i, j]",
               "    return r")
        g.output(out, (A * B * C,))
    elif form == 2:                                   # batched flatten
        shape = g.shape(3, 1, 4)
        x = g.tensor(shape)
        A, B, C = shape
        g.emit(f"def {f}(x: ℝ[p, q, s]): ℝ[p, k]:",
               f"    r: ℝ[len(x), {B * C}] = zeros(len(x), {B * C})",
               "    for bb: ℕ(len(x)):",
               f"        for i: ℕ({B}):",
               f"            for j: ℕ({C}):",
               f"                r[bb, i * {C} + j] = x[bb, i, j]",
               "    return r")
        g.output(out, (A, B * C))
    elif form == 3:                                   # unflatten
        R, C = g.shape(2)
        x = g.tensor((R * C,))
        g.emit(f"def {f}(v: ℝ[k]): ℝ[m, n]:",
               f"    r: ℝ[{R}, {C}] = zeros({R}, {C})",
               f"    for i: ℕ({R}):",
               f"        for j: ℕ({C}):",
               f"            r[i, j] = v[i * {C} + j]",
               "    return r")
        g.output(out, (R, C))
        g.feat("unflatten")
    else:                                             # transpose
        R, C = g.shape(2)
        x = g.tensor((R, C))
        if g.chance(0.5):
            g.emit(f"def {f}(x: ℝ[m, n]): ℝ[n, m]:",
                   "    r: ℝ[len(x[0]), len(x)] = zeros(len(x[0]), len(x))",
                   "    for i: ℕ(len(x)):",
                   "        for j: ℕ(len(x[0])):",
                   "            r[j, i] = x[i, j]",
                   "    return r")
        else:
            g.emit(f"def {f}(x: ℝ[m, n]): ℝ[n, m]:",
                   "    return for j: ℕ(len(x[0])) -> for i: ℕ(len(x)) -> x[i, j]")
        g.output(out, (C, R))
        g.feat("transpose")
    g.emit(f"{out} = {f}({x.name})", out)
    g.feat("reshape", "function")


def snip_slice(g: Gen) -> None:
    """Slices of one and several axes, with steps; chained indexing."""
    shape = g.some_shape((1, 2, 3), lo=2)
    rank = len(shape)
    x = g.tensor(shape, reuse=0.8)
    n = shape[0]
    a = g.r.randint(0, n - 1)
    b = g.r.randint(a + 1, n)
    forms = [f"{x.name}[{a}:{b}]", f"{x.name}[{a}:]", f"{x.name}[:{b}]", f"{x.name}[::2]",
             f"{x.name}[{a}::2]", f"sum({x.name}[{a}:{b}])", f"{x.name}[{a}:{b}] * 2.0"]
    if rank >= 2:
        c = g.r.randrange(shape[1])
        forms += [f"{x.name}[:, {c}]", f"{x.name}[{a}, :]", f"{x.name}[{a}:{b}, {c}]",
                  f"{x.name}[{a}][{c}]", f"{x.name}[{a}, {c}]", f"{x.name}[{a}]"]
    e = g.r.choice(forms)
    out = g.fresh("v")
    g.emit(f"{out} = {e}", out)
    g.feat("slice")
    if "::" in e:
        g.feat("slice_step")
    if ", " in e and ":" in e:
        g.feat("slice_multiaxis")


def snip_comprehension(g: Gen) -> None:
    """Comprehensions: nested, with ℕ(n), ℕ(a, b), inferred ranges; of rows; reversed; gathers;
    bracketed inside larger expressions; calls of non-inlined functions."""
    form = g.r.randrange(10)
    out = g.fresh("q")
    if form == 0:                                     # rows times a number (C2)
        R, C = g.shape(2)
        x = g.tensor((R, C))
        g.emit(f"{out} = for i: ℕ({R}) -> {x.name}[i] * {g.const()}")
        g.output(out, (R, C))
        g.feat("row_compr")
    elif form == 1:                                   # reversed rows (P)
        R, C = g.shape(2)
        x = g.tensor((R, C))
        g.emit(f"{out} = for i: ℕ(len({x.name})) -> {x.name}[len({x.name}) - 1 - i]")
        g.output(out, (R, C))
        g.feat("row_compr", "flipped_index")
    elif form == 2:                                   # ℕ(a, b) ranges
        n = g.r.randint(2, 6)
        x = g.tensor((n,))
        a = g.r.randint(0, n - 1)
        b = g.r.randint(a, n)
        g.emit(f"{out} = for i: ℕ({a}, {b}) -> {x.name}[i] * 2.0 + 1.0")
        g.output(out, (b - a,))
        g.feat("range_ab")
        if a == b:
            g.feat("empty_range")
    elif form == 3:                                   # gather through an index tensor
        n, m = g.dim(), g.dim()
        x = g.tensor((n,))
        idx = [g.r.randrange(n) for _ in range(m)]
        name = g.fresh("ix")
        g.emit(f"{name}: ℕ[{m}] = [{', '.join(map(str, idx))}]")
        g.emit(f"{out} = for i: ℕ({m}) -> {x.name}[{name}[i]]")
        g.output(out, (m,))
        g.feat("gather")
    elif form == 4:                                   # bracketed, inferred
        n = g.dim()
        x = g.tensor((n,))
        g.emit(f"{out} = (for i -> {x.name}[i] * {x.name}[i]) + {g.const()}")
        g.output(out, (n,))
        g.feat("inferred_range", "bracketed_compr")
    elif form == 5:                                   # a non-inlined function in a comprehension (Q)
        n = g.dim()
        x = g.tensor((n,))
        f = g.fresh("damp")
        steps = g.r.randint(1, 3)
        g.emit(f"def {f}(v: ℝ): ℝ:",
               "    t = v",
               f"    for k: ℕ({steps}):",
               "        t = t * 0.5 + v",
               "    return t")
        g.emit(f"{out} = for i -> {f}({x.name}[i])")
        g.output(out, (n,))
        g.feat("call_in_compr", "function")
    elif form == 6:                                   # integer tabulations and kinds (F, U)
        n = g.dim()
        e = g.pick(f"for i: ℕ({n}) -> i * 1.0", f"for i: ℕ({n}) -> 2.0 * i", f"for i: ℕ({n}) -> i * i",
                   f"for i: ℕ({n}) -> i - 2", f"for i: ℕ({n}) -> i // 2", f"for i: ℕ({n}) -> i % 3")
        real = "1.0" in e or "2.0" in e
        decl = "ℝ" if real or g.chance(0.3) else "ℕ"
        if decl == "ℕ" and ("- 2" in e):
            decl = "ℤ"
        g.emit(f"{out}: {decl}[{n}] = {e}")
        if decl == "ℝ" and g.chance(0.6):
            g.emit(f"{out}[0] = 0.75")
        g.output(out, (n,), real=decl == "ℝ", grad_ok=False)
        g.feat("kinds", "int_tabulation")
    elif form == 7:                                   # len of rows (U)
        R, C = g.shape(2)
        x = g.tensor((R, C))
        g.emit(f"{out} = for i -> len({x.name}[i])")
        g.output(out, (R,), real=False)
        g.feat("kinds")
    elif form == 8:                                   # nested 2-D with mixed spellings
        R, C = g.shape(2)
        x = g.tensor((R, C))
        y = g.tensor((C,))
        g.emit(f"{out} = for i: ℕ({R}) -> for j → {x.name}[i, j] * {y.name}[j] + {g.const()}")
        g.output(out, (R, C))
        g.feat("nested_compr")
    else:                                             # a real range bound ℕ(2.5)
        n = g.r.randint(2, 6)
        x = g.tensor((n,))
        half = n - 0.5
        g.emit(f"{out} = for i: ℕ({half}) -> {x.name}[i] + 0.5")
        g.output(out, (n - 1,))
        g.feat("real_range")
    g.emit(out)
    g.feat("comprehension")


def snip_stores(g: Gen) -> None:
    """Partial and accumulating stores, stores whose writes overlap, copies that must not alias."""
    form = g.r.randrange(7)
    f = g.fresh("st")
    out = g.fresh("z")
    n = g.r.randint(2, 6)
    if form == 0:                                     # diagonal of a fresh matrix
        x = g.tensor((n, n))
        g.emit(f"def {f}(x: ℝ[n, n], v: ℝ): ℝ[n, n]:",
               "    r: ℝ[len(x), len(x)] = zeros(len(x), len(x))",
               "    for i: ℕ(len(x)):",
               "        for j: ℕ(len(x)):",
               "            r[i, j] = x[i, j]",
               "    for i: ℕ(len(x)):",
               "        r[i, i] = v",
               "    return r")
        g.emit(f"{out} = {f}({x.name}, {fmt(g.values(1)[0])})")
        g.output(out, (n, n))
        g.feat("partial_store")
    elif form == 1:                                   # two stores, overlapping writes (X)
        g.emit(f"def {f}(k: ℕ): ℝ[m]:",
               f"    r: ℝ[{n}] = zeros({n})",
               f"    for i: ℕ({n}):",
               "        r[i] = 1.0 + k",
               f"        r[{n - 1} - i] = 2.0 * i",
               "    return r")
        g.emit(f"{out} = {f}({g.r.randint(0, 3)})")
        g.output(out, (n,), grad_ok=False)
        g.feat("overlapping_stores")
    elif form == 2:                                   # r[0] += … with r[i] = x[i] (X)
        x = g.tensor((n,))
        g.emit(f"def {f}(x: ℝ[n]): ℝ[n]:",
               f"    r: ℝ[{n}] = zeros({n})",
               f"    for i: ℕ({n}):",
               "        r[0] += 1.0",
               "        r[i] = x[i]",
               "    return r")
        g.emit(f"{out} = {f}({x.name})")
        g.output(out, (n,))
        g.feat("overlapping_stores", "accumulating_store")
    elif form == 3:                                   # accumulate into buckets r[i // 2]
        x = g.tensor((n,))
        nb = (n + 1) // 2
        g.emit(f"def {f}(x: ℝ[n]): ℝ[m]:",
               f"    r: ℝ[{nb}] = zeros({nb})",
               f"    for i: ℕ({n}):",
               "        r[i // 2] += x[i]",
               "    return r")
        g.emit(f"{out} = {f}({x.name})")
        g.output(out, (nb,))
        g.feat("accumulating_store")
    elif form == 4:                                   # accumulate rows r[i] += x[i, j]
        m = g.dim()
        x = g.tensor((n, m))
        g.emit(f"def {f}(x: ℝ[n, m]): ℝ[n]:",
               "    r: ℝ[len(x)] = zeros(len(x))",
               "    for i: ℕ(len(x)):",
               "        for j: ℕ(len(x[0])):",
               f"            r[i] += x[i, j] * {g.const()}",
               "    return r")
        g.emit(f"{out} = {f}({x.name})")
        g.output(out, (n,))
        g.feat("accumulating_store")
    elif form == 5:                                   # a copy by comprehension, then a store (Y)
        src = g.fresh("t")
        g.emit(f"{src}: ℝ[{n}] = {g.literal((n,))}")
        g.emit(f"{out} = for i -> {src}[i]", f"{out}[0] = 9.5", src)
        g.output(out, (n,), grad_ok=False)
        g.feat("copy_then_store")
    else:                                             # an element read before a store through an alias (I)
        src = g.fresh("t")
        g.emit(f"{src}: ℝ[{n}] = {g.literal((n,))}")
        al = g.fresh("al")
        el = g.fresh("e")
        g.emit(f"{al} = {src}", f"{el} = {al}[0]", f"{al}[0] = 5.5", el, src)
        g.output(out, (n,), grad_ok=False)
        g.emit(f"{out} = {src} * 1.0")
        g.feat("alias_store")
    g.emit(out)
    g.feat("stores")


def snip_scan(g: Gen) -> None:
    """Running scans: a carried scalar, a recurrence through the output, a running max, a
    triangular (non-rectangular) nest."""
    n = g.r.randint(1, 6)
    x = g.tensor((n,))
    f = g.fresh("scan")
    form = g.r.randrange(6)
    if form == 0:
        g.emit(f"def {f}(v: ℝ[n]): ℝ[n]:",
               "    r: ℝ[len(v)] = zeros(len(v))",
               "    run = 0",
               "    for i: ℕ(len(v)):",
               "        run += v[i]",
               "        r[i] = run",
               "    return r")
        g.feat("scan_sum")
    elif form == 1:
        g.emit(f"def {f}(v: ℝ[n]): ℝ[n]:",
               "    r: ℝ[len(v)] = zeros(len(v))",
               "    r[0] = v[0]",
               "    for i: ℕ(1, len(v)):",
               "        r[i] = r[i - 1] * 0.5 + v[i]",
               "    return r")
        g.feat("scan_recurrence")
    elif form == 2:
        g.emit(f"def {f}(v: ℝ[n]): ℝ[n]:",
               "    r: ℝ[len(v)] = zeros(len(v))",
               "    best = v[0]",
               "    for i: ℕ(len(v)):",
               "        if v[i] > best:",
               "            best = v[i]",
               "        r[i] = best",
               "    return r")
        g.feat("scan_max")
    elif form == 3:                                   # triangular reduction (K2)
        g.emit(f"def {f}(v: ℝ[n]): ℝ[n]:",
               "    r: ℝ[len(v)] = zeros(len(v))",
               "    for i: ℕ(len(v)):",
               "        acc = 0",
               f"        for t: ℕ({g.pick('i + 1', 'i')}):",
               "            acc += v[t]",
               "        r[i] = acc",
               "    return r")
        g.feat("nonrect", "triangular_reduce")
    elif form == 4:                                   # triangular store (K)
        g.emit(f"def {f}(v: ℝ[n]):",
               "    r: ℝ[len(v), len(v)] = zeros(len(v), len(v))",
               "    for i: ℕ(len(v)):",
               f"        for j: ℕ({g.pick('i + 1', 'i', 'i, len(v)')}):",
               "            r[i, j] = v[i] - v[j] * 0.5",
               "    return r")
        g.feat("nonrect", "triangular_store")
        out = g.fresh("u")
        g.emit(f"{out} = {f}({x.name})", out)
        g.output(out, (n, n))
        g.feat("scan")
        return
    else:                                             # a running product of a loop-invariant (AB1)
        g.emit(f"def {f}(v: ℝ[n]): ℝ[n]:",
               "    r: ℝ[len(v)] = zeros(len(v))",
               "    for i: ℕ(len(v)):",
               "        p = 1",
               f"        for k: ℕ({g.pick('3', 'i', '2, i')}):",
               "            p *= v[i] * 0.5 + 1.0",
               "        r[i] = p",
               "    return r")
        g.feat("invariant_prod")
    out = g.fresh("u")
    g.emit(f"{out} = {f}({x.name})", out)
    g.output(out, (n,))
    g.feat("scan", "function")


def snip_kinds(g: Gen) -> None:
    """Numbers and kinds: ℕ vs ℝ declarations, integer arithmetic, negative constant powers."""
    form = g.r.randrange(6)
    v = g.fresh("n")
    if form == 0:
        k = g.r.randint(0, 9)
        g.emit(f"{v}: ℕ = {k}", f"{v} // 2", f"{v} % 3", f"{v} - 5", f"{v} * 1.0", f"float({v})")
    elif form == 1:
        g.emit(f"{v}: ℝ = 0", f"{v} = {g.r.randint(1, 5)}", v)
    elif form == 2:
        f = g.fresh("two")
        g.emit(f"def {f}(a: ℝ): ℝ:", f"    return {g.r.randint(0, 4)}", f"{f}(1.5)")
    elif form == 3:
        g.emit("(-0.75) ** 2", "(-2) ** 3", "-2 ** 2", "(0 - 2) ** 2", f"{v} = -3", f"{v} ** 2")
    elif form == 4:
        g.emit(f"int({fmt(g.values(1)[0])})", f"abs({-g.r.randint(1, 5)})", f"7 / 2", f"7 // 2",
               f"2 ** {g.r.randint(0, 4)}")
    else:
        x = g.tensor((g.dim(),))
        g.emit(f"len({x.name})", f"len({x.name}) * 0.5", f"{x.name}[len({x.name}) - 1]")
    g.feat("kinds")


def snip_control(g: Gen) -> None:
    """Conditions on host values and on elements, `and`/`or`/`not`, elif chains (N, O)."""
    n = g.dim()
    x = g.tensor((n,))
    f = g.fresh("sel")
    form = g.r.randrange(3)
    th = fmt(g.r.choice([0.5, -0.3, 0.05, 1.1]))
    if form == 0:
        cond = g.pick(f"s > 0 and x[i] > {th}", f"s > 0 or x[i] > {th}", f"not x[i] > {th}",
                      f"x[i] > {th} and x[i] < 1.5")
        g.emit(f"def {f}(x: ℝ[n], s: ℝ): ℝ[n]:",
               "    r: ℝ[len(x)] = zeros(len(x))",
               "    for i: ℕ(len(x)):",
               "        t = 0.0",
               f"        if {cond}:",
               "            t = x[i]",
               "        r[i] = t",
               "    return r")
        out = g.fresh("k")
        g.emit(f"{out} = {f}({x.name}, {g.pick('1.0', '-1.0')})", out)
        g.feat("and_or")
    elif form == 1:
        g.emit(f"def {f}(x: ℝ[n], k: ℕ): ℝ[n]:",
               "    r: ℝ[len(x)] = zeros(len(x))",
               "    for i: ℕ(len(x)):",
               "        t = x[i]",
               "        if k > 1:",
               "            t = 0.0",
               "        elif k == 1:",
               "            t = x[i] * 2.0",
               "        r[i] = t",
               "    return r")
        out = g.fresh("k")
        kk = g.fresh("kk")
        g.emit(f"for {kk}: ℕ(3):", f"    physika_print({f}({x.name}, {kk}))")
        g.emit(f"{out} = {f}({x.name}, 1)", out)
        g.feat("host_condition", "elif", "top_loop")
    else:
        g.emit(f"def {f}(v: ℝ): ℝ:",
               f"    if v > {th}:",
               "        return v * 2.0",
               "    elif v < -0.5:",
               "        return 0.0 - v",
               "    else:",
               "        return 0.5",
               )
        out = g.fresh("k")
        g.emit(f"{out} = for i -> {f}({x.name}[i])", out)
        g.feat("elif", "function")
    g.output(out, (n,))
    g.feat("control")


def snip_functions(g: Gen) -> None:
    """Functions called several times and returning tensors; loop variables after a loop (M);
    softmax of a vector and of a matrix (B); recursion."""
    form = g.r.randrange(5)
    if form == 0:
        n = g.dim()
        x, y = g.tensor((n,)), g.declare((n,))
        f = g.fresh("aff")
        g.emit(f"def {f}(v: ℝ[n], a: ℝ): ℝ[n]:", "    return for i -> v[i] * a + 1.0")
        out = g.fresh("h")
        g.emit(f"{out} = {f}({f}({x.name}, 0.5), 2.0) + {f}({y.name}, -1.0)", out)
        g.output(out, (n,))
        g.feat("called_twice", "function")
    elif form == 1:
        n = g.dim()
        x = g.tensor((n,))
        g.emit(f"for i: ℕ(len({x.name})):", f"    tt = {x.name}[i] * 2.0", "i", "tt")
        g.feat("loopvar_after", "top_loop")
    elif form == 2:
        shape = (g.dim(),) if g.chance(0.5) else g.shape(2)
        x = g.tensor(shape)
        f = g.fresh("sm")
        sig = "m" if len(shape) == 1 else "m, n"
        g.emit(f"def {f}(x: ℝ[{sig}]): ℝ[{sig}]:",
               f"    e: ℝ[{sig}] = for i -> exp(x[i])",
               "    t = 0",
               "    for i:",
               "        t += e[i]",
               "    return for i: ℕ(len(x)) -> e[i] / t")
        out = g.fresh("h")
        g.emit(f"{out} = {f}({x.name})", out)
        g.output(out, shape)
        g.feat("softmax", "function")
    elif form == 3:
        f = g.fresh("fact")
        g.emit(f"def {f}(n: ℕ): ℕ:",
               "    if n < 2:",
               "        return 1",
               "    else:",
               f"        return n * {f}(n - 1)",
               f"{f}({g.r.randint(0, 5)})")
        g.feat("recursion", "function")
    else:
        n = g.dim()
        x = g.tensor((n,))
        f = g.fresh("nrm")
        g.emit(f"def {f}(v: ℝ[n]): ℝ:",
               "    t = 0.0",
               "    for i: ℕ(len(v)):",
               "        t = t * 0.5 + v[i]",
               "    return t",
               f"{f}({x.name})")
        g.feat("carried_scalar", "function")
    g.feat("functions")


def snip_class(g: Gen) -> None:
    """Classes with fields and λ, methods calling methods, parameter-list classes, default
    fields, field assignment, same-named fields in two classes; grads w.r.t. fields."""
    form = g.r.randrange(5)
    m, n = g.dim(), g.dim()
    C = g.fresh("Lin")
    obj = g.fresh("obj")
    out = g.fresh("o")
    if form in (0, 1):
        w, b, x = g.tensor((m, n), "w"), g.tensor((m,), "b"), g.tensor((n,))
        if form == 0:
            g.emit(f"class {C}:", "    w: ℝ[m, n]", "    b: ℝ[m]",
                   f"    def lin(x: ℝ[n]) -> ℝ[m]:",
                   "        r: ℝ[len(this.w)] = zeros(len(this.w))",
                   "        for i: ℕ(len(this.w)):",
                   "            acc = 0",
                   "            for j: ℕ(len(this.w[0])):",
                   "                acc += this.w[i, j] * x[j]",
                   "            r[i] = acc + this.b[i]",
                   "        return r",
                   f"    def λ(x: ℝ[n]) -> ℝ[m]:",
                   "        return for i -> tanh(this.lin(x)[i])" if g.chance(0.5) else "        return this.lin(x)")
        else:
            g.emit(f"class {C}(w: ℝ[m, n], b: ℝ[m]):",
                   f"    def λ(x: ℝ[n]) -> ℝ[m]:",
                   "        return this.w @ x + this.b")
        g.emit(f"{obj}: {C} = {C}({w.name}, {b.name})", f"{out} = {obj}({x.name})", out)
        loss = g.fresh("loss")
        g.emit(f"{loss} = sum({out} * {out})", loss)
        if g.chance(0.8):
            gw = g.fresh("g")
            g.emit(f"{gw} = grad({loss}, {obj}.w)", gw)
            if g.chance(0.5):
                gb = g.fresh("g")
                g.emit(f"{gb} = grad({loss}, {obj}.b)", gb)
            g.feat("grad", "grad_field")
        g.output(out, (m,))
        g.feat("class_lambda")
    elif form == 2:                                   # a default field (L)
        x = g.tensor((n,))
        g.emit(f"class {C}:", "    w: ℝ[n]", "    s: ℝ = 2.0",
               "    def λ(v: ℝ[n]) -> ℝ[n]:",
               "        return for i -> v[i] * this.w[i] * this.s")
        g.emit(f"{obj}: {C} = {C}({x.name})", f"{out} = {obj}({x.name})", out)
        g.output(out, (n,))
        g.feat("class_default_field")
    elif form == 3:                                   # field assignment (AG, AG2)
        x = g.tensor((n,))
        y = g.declare((n,))
        g.emit(f"class {C}:", f"    w: ℝ[{n}]",
               f"    def bump(v: ℝ[{n}]): ℝ[{n}]:",
               "        this.w = this.w + v",
               "        return this.w")
        g.emit(f"{obj}: {C} = {C}({x.name} * 1.0)", f"{obj}.bump({y.name})", f"{obj}.w = {y.name} * 0.5",
               f"{out} = {obj}.w", out)
        g.output(out, (n,), grad_ok=False)
        g.feat("field_assign")
    else:                                             # same field name in two classes (AA1/AA2)
        x = g.tensor((n,))
        D = g.fresh("Wrap")
        g.emit(f"class {C}:", f"    w: ℝ[{n}]", f"class {D}:", f"    w: ℝ[{n}]",
               f"{obj}: {C} = {C}({x.name})", f"q{obj}: {D} = {D}({obj}.w * 2.0)",
               f"{out} = sum(q{obj}.w * q{obj}.w)", out)
        gw = g.fresh("g")
        g.emit(f"{gw} = grad({out}, {obj}.w)", gw)
        if g.chance(0.5):
            H = g.fresh("Net")
            g.emit(f"class {H}:", f"    w: {C}", f"    s: ℝ[{n}]",
                   f"n{obj}: {H} = {H}({obj}, {x.name})", f"sum(n{obj}.s)")
            g.feat("class_instance_field")
        g.feat("grad", "grad_field", "same_field_name")
    g.feat("class")


def snip_grad_intermediate(g: Gen) -> None:
    """`grad` w.r.t. an input and w.r.t. an intermediate of the same value (J); `grad` inside a
    function w.r.t. its parameter and an intermediate, and inside a method w.r.t. a field."""
    shape = g.shape(g.r.randint(1, 2))
    a = g.tensor(shape)
    if g.chance(0.35):
        f = g.fresh("dfd")
        sig = symbols(len(shape))
        body = g.scalar(["v", "h"], 2)
        g.emit(f"def {f}(v: ℝ[{sig}]): ℝ[{sig}]:",
               "    h = v * 0.5 + 1.0",
               f"    y = sum({body} * h)",
               f"    return grad(y, {g.pick('v', 'h')})")
        out = g.fresh("gp")
        g.emit(f"{out} = {f}({a.name})", out)
        g.feat("grad", "grad_param")
        if g.chance(0.5):
            C, obj = g.fresh("Fit"), g.fresh("fit")
            g.emit(f"class {C}:", f"    w: ℝ[{sig}]",
                   f"    def step(v: ℝ[{sig}]): ℝ[{sig}]:",
                   "        loss = sum((this.w - v) * (this.w - v) * this.w)",
                   "        return grad(loss, this.w)",
                   f"{obj}: {C} = {C}({a.name} * 0.5)", f"{obj}.step({a.name})")
            g.feat("grad_field", "grad_in_method")
        return
    if g.chance(0.25):
        # grad(f, x) of a function: f's derivative at x (upstream's learn-parameter programs)
        f, out = g.fresh("lf"), g.fresh("gf")
        sig = symbols(len(shape))
        g.emit(f"def {f}(v: ℝ[{sig}]): ℝ:", f"    return sum({g.scalar(['v'], 2)} * v)")
        g.emit(f"{out} = grad({f}, {a.name})", out)
        g.feat("grad", "grad_function")
        return
    mid = g.fresh("mid")
    y = g.fresh("y")
    g.emit(f"{mid} = {g.scalar([a.name], 1) if g.chance(0.5) else a.name + ' * 2.0'}")
    g.emit(f"{y} = sum({g.scalar([mid, a.name], 2)} * {mid})")
    ga, gm = g.fresh("g"), g.fresh("g")
    order = [f"{ga} = grad({y}, {a.name})", f"{gm} = grad({y}, {mid})"]
    if g.chance(0.5):
        order.reverse()
    g.emit(*order, ga, gm)
    g.feat("grad", "grad_intermediate")


def snip_grad_tail(g: Gen) -> None:
    """A loss of one or two computed real values, and its gradient w.r.t. inputs and values."""
    outs = [t for t in g.tensors if t.real and t.grad_ok and t.shape != () and not t.name.startswith(("x", "w", "b", "a"))]
    ins = [t for t in g.tensors if t.real and t.grad_ok and t.name.startswith(("x", "w", "b", "a"))]
    if not outs or not ins:
        return
    picked = g.r.sample(outs, min(len(outs), g.r.randint(1, 2)))
    loss = g.fresh("loss")
    terms = [g.pick(f"sum({t.name} * {t.name})", f"sum({t.name})", f"sum(sin({t.name}))",
                    f"sum({t.name} * {t.name} * {t.name})") for t in picked]
    g.emit(f"{loss} = {' + '.join(terms)}", loss)
    for t in g.r.sample(ins, min(len(ins), g.r.randint(1, 3))):
        gn = g.fresh("g")
        g.emit(f"{gn} = grad({loss}, {t.name})", gn)
    if g.chance(0.3):
        gn = g.fresh("g")
        g.emit(f"{gn} = grad({loss}, {picked[0].name})", gn)
        g.feat("grad_intermediate")
    g.feat("grad", "grad_tail")


def snip_train(g: Gen) -> None:
    """Training loops as the seed writes them: grads of fields of the current instance, a new
    instance from the updated tensors, a running loss; or gradient descent on a plain variable."""
    m, n = g.r.randint(1, 4), g.r.randint(1, 4)
    if g.chance(0.35):
        x = g.tensor((n,))
        c = g.tensor((n,))
        w, lv, gw = g.fresh("wd"), g.fresh("l"), g.fresh("gw")
        g.emit(f"{w} = {x.name} * 1.0",
               f"for step: ℕ({g.r.randint(1, 3)}):",
               f"    {lv} = sum(({w} * {c.name} - 0.5) * ({w} * {c.name} - 0.5))",
               f"    {gw} = grad({lv}, {w})",
               f"    {w} = {w} - 0.1 * {gw}",
               w, lv)
        g.feat("train", "grad", "grad_in_loop")
        return
    S = g.r.randint(1, 3)
    w, b = g.tensor((m, n), "w"), g.tensor((m,), "b")
    X, T = g.declare((S, n), "x"), g.declare((S, m), "x")
    C, loss, net = g.fresh("Net"), g.fresh("lossf"), g.fresh("net")
    body = g.pick("this.w @ x + this.b", "for i -> tanh(sum(for j -> this.w[i, j] * x[j]) + this.b[i])")
    g.emit(f"class {C}(w: ℝ[m, n], b: ℝ[m]):",
           "    def λ(x: ℝ[n]) -> ℝ[m]:",
           f"        return {body}",
           f"def {loss}(z: ℝ[m], t: ℝ[m]): ℝ:",
           "    return sum((z - t) * (z - t))",
           f"{net}: {C} = {C}({w.name}, {b.name})",
           f"for ep: ℕ({g.r.randint(1, 2)}):",
           "    tot = 0",
           f"    for sm: ℕ({S}):",
           f"        z = {net}({X.name}[sm])",
           f"        cur = {loss}(z, {T.name}[sm])",
           "        tot += cur",
           f"        dw = grad(cur, {net}.w)",
           f"        db = grad(cur, {net}.b)",
           f"        {net} = {C}({net}.w - 0.1 * dw, {net}.b - 0.1 * db)",
           "    physika_print(tot)",
           f"{net}.w", f"{net}.b")
    g.feat("train", "grad", "grad_field", "class_lambda")


def snip_loops(g: Gen) -> None:
    """Loops whose meaning depends on their order or on the index: an early `return`, in-place
    shifts (forward reads old values, backward reads new ones), a nonlinear use of an inner sum,
    index-dependent conditions, neighbour differences, real and halved indices."""
    n = g.r.randint(2, 6)
    m = g.r.randint(1, 5)
    f = g.fresh("lp")
    out = g.fresh("z")
    form = g.r.randrange(8)
    if form == 0:
        x = g.tensor((n,))
        th = fmt(g.r.uniform(-1.5, 1.5))
        g.emit(f"def {f}(x: ℝ[n]): ℕ:",
               "    for i: ℕ(len(x)):",
               f"        if x[i] > {th}:",
               "            return i",
               "    return len(x)")
        g.emit(f"{out} = {f}({x.name})", out)
        g.feat("early_return")
        return
    if form in (1, 2):
        x = g.tensor((n,))
        body = ("    for i: ℕ(len(c) - 1):", "        c[i] = c[i + 1] * 0.5") if form == 1 else \
               ("    for i: ℕ(1, len(c)):", "        c[i] = c[i - 1] * 0.5 + c[i]")
        g.emit(f"def {f}(x: ℝ[n]): ℝ[n]:", "    c = x * 1.0", *body, "    return c")
        g.emit(f"{out} = {f}({x.name})", out)
        g.output(out, (n,))
        g.feat("inplace_shift", "stores")
        return
    if form == 3:
        x = g.tensor((n, m))
        g.emit(f"def {f}(x: ℝ[n, m]): ℝ:",
               "    total = 0",
               "    for i: ℕ(len(x)):",
               "        s = 0",
               "        for j: ℕ(len(x[0])):",
               "            s += x[i, j]",
               f"        total += {g.pick('s * s', 'tanh(s)', 'abs(s)')}",
               "    return total")
        g.emit(f"{out} = {f}({x.name})", out)
        g.feat("nested_nonlinear_reduce", "reduction")
        return
    if form == 4:
        x = g.tensor((n, n))
        cond = g.pick("i == j", "i < j", "(i + j) % 2 == 0", "i >= j")
        g.emit(f"def {f}(x: ℝ[n, n]): ℝ[n, n]:",
               "    r: ℝ[len(x), len(x)] = zeros(len(x), len(x))",
               "    for i: ℕ(len(x)):",
               "        for j: ℕ(len(x)):",
               f"            if {cond}:",
               "                r[i, j] = x[i, j]",
               "            else:",
               "                r[i, j] = 0.5 * x[j, i]",
               "    return r")
        g.emit(f"{out} = {f}({x.name})", out)
        g.output(out, (n, n))
        g.feat("index_condition", "control")
        return
    if form == 5:
        x = g.tensor((n,))
        g.emit(f"{out} = for i: ℕ(len({x.name}) - 1) -> {x.name}[i + 1] - {x.name}[i]", out)
        g.output(out, (n - 1,))
        g.feat("differences", "comprehension")
        return
    if form == 6:
        x = g.tensor((n,))
        lab = g.fresh("lab")
        g.emit(f"{lab}: ℝ = {g.r.randrange(n) + 0.6}", f"{x.name}[{lab}]", f"{x.name}[{lab}] * 2.0")
        g.feat("real_index")
        return
    x = g.tensor((n,))
    g.emit(f"{out} = for i: ℕ({2 * n}) -> {x.name}[i // 2] * 0.5", out)
    g.output(out, (2 * n,))
    g.feat("halved_index", "comprehension")


SNIPPETS = [snip_elementwise, snip_reduce, snip_builtin_reduce, snip_conv, snip_conv, snip_pool,
            snip_pool, snip_linear, snip_linear, snip_reshape, snip_slice, snip_comprehension,
            snip_stores, snip_scan, snip_kinds, snip_control, snip_functions, snip_class,
            snip_grad_intermediate, snip_train, snip_loops, snip_loops]

# What every set of a few hundred programs must contain (tests/test_differential.py checks it).
REQUIRED_FEATURES = {
    "elementwise_expr", "elementwise_compr", "loop_store", "reduction", "partial_reduction",
    "reduce_sum", "reduce_max", "reduce_argmax", "reduce_prod", "reduce_depth2", "reduce_depth3",
    "comprehension_in_sum", "row_reduce", "conv", "conv_stride2", "conv_padding_guard",
    "conv_channels", "conv_comprehension", "pool_max", "pool_avg", "pool_tree", "pool_scan",
    "pool_fold", "pool_overlap", "linear_loop", "linear_batched", "linear_transposed",
    "matmul_op", "batched_matmul", "reshape", "unflatten", "transpose", "slice", "slice_step",
    "slice_multiaxis", "nested_compr", "range_ab", "inferred_range", "gather", "partial_store",
    "accumulating_store", "overlapping_stores", "scan_sum", "scan_recurrence", "nonrect",
    "empty_range", "kinds", "int_tabulation", "function", "called_twice", "class_lambda",
    "class_default_field", "field_assign", "grad", "grad_intermediate", "grad_field",
    "near_miss", "conv_partial_out", "conv_partial_in", "conv_offbyone", "conv_flip",
    "conv_outer_kernel", "pool_partial_chan", "linear_partial_batch", "linear_x_longer",
    "softmax", "control", "host_condition", "and_or", "call_in_compr", "copy_then_store",
    "alias_store", "loopvar_after", "formula_input", "grad_param", "grad_in_method",
    "train", "grad_in_loop", "chained", "early_return", "inplace_shift", "nested_nonlinear_reduce",
    "index_condition", "differences", "real_index", "halved_index",
}
