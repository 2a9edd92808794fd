"""Typing rules of the builtin functions, and the small shape algebra they share with the checker.

No torch here: `phc check` must start fast. A user definition of the same name shadows a builtin
(the seed defines its own `max` and `argmax`), and so does a parameter or a variable (the seed has
a parameter named `len`): the checker consults this table only after those.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from phc import ast
from phc.ast import Scalar
from phc.types import NAT, NONE, REAL, UNKNOWN, ClassT, SymT, Dim, DimOp, FuncT, ScalarT, TensorT, TupleT, Type, UnknownT

# ---------------------------------------------------------------- shape algebra

_ORDER = {Scalar.BOOL: 0, Scalar.NAT: 0, Scalar.INT: 1, Scalar.REAL: 2, Scalar.COMPLEX: 3}


def join_kind(a: Scalar, b: Scalar) -> Scalar:
    """The kind of an arithmetic result: ℕ ⊂ ℤ ⊂ ℝ ⊂ ℂ (a boolean counts as ℕ)."""
    a, b = _arith(a), _arith(b)
    return a if _ORDER[a] >= _ORDER[b] else b


def _arith(k: Scalar) -> Scalar:
    return Scalar.NAT if k is Scalar.BOOL else k


def fits_kind(declared: Scalar, value: Scalar) -> bool:
    """Whether a value of kind `value` goes where `declared` is expected without losing its
    fraction (ℝ into ℕ/ℤ truncates) or its imaginary part (ℂ into ℝ)."""
    return _ORDER[value] <= max(1, _ORDER[declared])


def join_dim(a: Dim, b: Dim) -> Dim:
    """Two dimensions known to agree: keep the more precise (a number over a name over None)."""
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    return a if a is not None else b


def dim_op(op: str, a: Dim, b: Dim) -> Dim:
    """`a op b` as a dimension: folded when both are numbers, a formula when both are known,
    unknown (None) otherwise or when the value cannot be a size (negative, inexact `/`)."""
    if a is None or b is None:
        return None
    if isinstance(a, int) and isinstance(b, int):
        if op in ("//", "/") and b == 0:
            return None
        value = {"+": a + b, "-": a - b, "*": a * b, "//": a // b if b else 0,
                 "/": a // b if b and a % b == 0 else None}[op]
        return value if value is not None and value >= 0 else None
    if op in ("+", "-") and b == 0 or op in ("*", "//", "/") and b == 1:
        return a
    if op == "+" and a == 0 or op == "*" and a == 1:
        return b
    return DimOp(op, a, b)


def subst_dim(d: Dim, f) -> Dim:
    """`d` with every name n replaced by f(n), folded."""
    if isinstance(d, str):
        return f(d)
    if isinstance(d, DimOp):
        return dim_op(d.op, subst_dim(d.a, f), subst_dim(d.b, f))
    return d


def as_extent(d: Dim) -> Dim:
    """A formula used as a whole dimension or a count: an outer `/` floors."""
    if isinstance(d, DimOp) and d.op == "/":
        return dim_op("//", d.a, d.b)
    return d


def dims_clash(a: Dim, b: Dim) -> bool:
    """Only two different numbers certainly disagree: two names may well be equal."""
    return isinstance(a, int) and isinstance(b, int) and a != b


def with_kind(t: Type, kind: Scalar) -> Type:
    if isinstance(t, TensorT):
        return TensorT(kind, t.dims)
    if isinstance(t, ScalarT):
        return ScalarT(kind)
    return t


def numeric(kind: Scalar, dims: tuple[Dim, ...]) -> Type:
    return TensorT(kind, dims) if dims else ScalarT(kind)


def dims_of(t: Type) -> tuple[Dim, ...]:
    return t.dims if isinstance(t, TensorT) else ()


# ---------------------------------------------------------------- the table

@dataclass(frozen=True, slots=True)
class Args:
    """What a rule sees of a call: argument types, each argument read as a size (a number
    literal, a variable's name, `len(x)`; None otherwise), and the argument expressions."""
    types: tuple[Type, ...]
    sizes: tuple[Dim, ...]
    exprs: tuple[ast.Expr, ...]


class BuiltinError(Exception):
    """A rule's complaint; `arg` is the index of the argument to point at (None: the call)."""

    def __init__(self, message: str, arg: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.arg, self.hint = message, arg, hint


@dataclass(frozen=True, slots=True)
class Builtin:
    name: str
    min_args: int
    max_args: int | None            # None: any number
    rule: Callable[[Args], Type]
    doc: str


def _numeric_arg(name: str, args: Args, i: int) -> Type:
    t = args.types[i]
    if not isinstance(t, (ScalarT, TensorT, UnknownT)):
        raise BuiltinError(f"`{name}` needs a number or a tensor, not {t}", i)
    return t


def _tensor_arg(name: str, args: Args, i: int) -> Type:
    t = args.types[i]
    if isinstance(t, ScalarT):
        raise BuiltinError(f"`{name}` needs a tensor, not the number type {t}", i)
    return _numeric_arg(name, args, i)


def _len(args: Args) -> Type:
    if not isinstance(args.types[0], TupleT):
        _tensor_arg("len", args, 0)
    return NAT


def _sum(args: Args) -> Type:
    t = _numeric_arg("sum", args, 0)
    return ScalarT(_arith(t.kind)) if isinstance(t, (ScalarT, TensorT)) else UNKNOWN


def _math(name: str, keeps_kind: bool = False) -> Callable[[Args], Type]:
    def rule(args: Args) -> Type:
        t = _numeric_arg(name, args, 0)
        if keeps_kind or not isinstance(t, (ScalarT, TensorT)):
            return t
        return with_kind(t, Scalar.REAL)
    return rule


def _extremum(name: str) -> Callable[[Args], Type]:
    """`max(x)` reduces a tensor; `max(a, b)` is elementwise."""
    def rule(args: Args) -> Type:
        ts = [_numeric_arg(name, args, i) for i in range(len(args.types))]
        if any(isinstance(t, UnknownT) for t in ts):
            return UNKNOWN
        if len(ts) == 1:
            return ScalarT(_arith(ts[0].kind))
        return _broadcast2(name, ts[0], ts[1])
    return rule


def _broadcast2(name: str, a: Type, b: Type) -> Type:
    kind = join_kind(a.kind, b.kind)
    da, db = dims_of(a), dims_of(b)
    if da and db and (len(da) != len(db) or any(map(dims_clash, da, db))):
        raise BuiltinError(f"`{name}` needs arguments of the same shape, not {a} and {b}")
    return numeric(kind, tuple(map(join_dim, da, db)) if da and db else da or db)


def _grad(args: Args) -> Type:
    if not isinstance(args.exprs[1], (ast.Name, ast.Attribute)):
        raise BuiltinError("the second argument of `grad` must be a variable or a field",
                           1, "differentiate with respect to `x` or `obj.w`, not an expression")
    y = _numeric_arg("grad", args, 0)
    if isinstance(args.types[1], TupleT):      # `grad(loss, obj.learnable_params)`
        return TupleT(tuple(derivative_type(y, x) for x in args.types[1].items))
    return derivative_type(y, _numeric_arg("grad", args, 1))


def derivative_type(y: Type, x: Type) -> Type:
    """dy/dx: shaped like `x` for a number `y` (or a one-element tensor, as the runtime
    answers), else the Jacobian ℝ[out…, in…]: the axes of `y`, then those of `x`."""
    if isinstance(y, UnknownT) or isinstance(x, UnknownT):
        return UNKNOWN
    # with respect to a complex x, the (Wirtinger) derivative is complex
    kind = Scalar.COMPLEX if Scalar.COMPLEX in (x.kind, y.kind) else Scalar.REAL
    if isinstance(y, ScalarT) or all(d == 1 for d in y.dims):
        return with_kind(x, kind)
    return TensorT(kind, y.dims + dims_of(x))


def _nothing(args: Args) -> Type:
    return NONE


def _dataset(side: int) -> Callable[[Args], Type]:
    """[[X_train, y_train], [X_test, y_test]] with images side×side; sizes stay symbolic."""
    def split(n: str) -> TupleT:
        return TupleT((TensorT(Scalar.REAL, (n, side, side)), TensorT(Scalar.NAT, (n,))))

    def rule(args: Args) -> Type:
        for i in range(len(args.types)):
            _numeric_arg("the data set", args, i)
        return TupleT((split("N_train"), split("N_test")))
    return rule


def _filled(name: str) -> Callable[[Args], Type]:
    def rule(args: Args) -> Type:
        for i, t in enumerate(args.types):
            if isinstance(t, TensorT):
                raise BuiltinError(f"the sizes given to `{name}` must be numbers, not {t}", i)
        return TensorT(Scalar.REAL, args.sizes)
    return rule


def _argmax(args: Args) -> Type:
    _tensor_arg("argmax", args, 0)
    return NAT


def _convert(name: str, kind: Scalar) -> Callable[[Args], Type]:
    def rule(args: Args) -> Type:
        return with_kind(_numeric_arg(name, args, 0), kind)
    return rule


def _real_valued(name: str) -> Callable[[Args], Type]:
    """`abs`, `real`, `imag`: a complex argument gives reals of its shape."""
    def rule(args: Args) -> Type:
        t = _numeric_arg(name, args, 0)
        if isinstance(t, (ScalarT, TensorT)) and t.kind is Scalar.COMPLEX:
            return with_kind(t, Scalar.REAL)
        return t if name == "abs" or isinstance(t, UnknownT) else with_kind(t, Scalar.REAL)
    return rule


def _mean(args: Args) -> Type:
    t = _numeric_arg("mean", args, 0)
    if isinstance(t, UnknownT):
        return t
    return ScalarT(Scalar.COMPLEX if t.kind is Scalar.COMPLEX else Scalar.REAL)


def _roll(args: Args) -> Type:
    t = _numeric_arg("roll", args, 0)
    for i in range(1, len(args.types)):
        if isinstance(args.types[i], TensorT):
            raise BuiltinError("`roll` shifts by a number along one axis", i,
                               "write roll(x, shift) or roll(x, shift, axis)")
    if isinstance(t, TensorT) and len(args.types) == 3 and isinstance(args.sizes[2], int) \
            and args.sizes[2] >= t.rank:
        raise BuiltinError(f"`roll` along axis {args.sizes[2]} of {t}, which has rank {t.rank}", 2)
    return t


def _concat(args: Args) -> Type:
    """One tensor after another along the first axis (a number counts as one element)."""
    ts = [_numeric_arg("concat", args, i) for i in range(len(args.types))]
    if any(isinstance(t, UnknownT) for t in ts):
        return UNKNOWN
    ranks = {max(1, len(dims_of(t))) for t in ts}
    if len(ranks) > 1:
        raise BuiltinError(f"`concat` needs tensors of one rank, not {', '.join(map(str, ts))}")
    kind, length, rest = Scalar.NAT, 0, None
    for t in ts:
        kind = join_kind(kind, t.kind)
        dims = dims_of(t) or (1,)
        length = length + dims[0] if isinstance(length, int) and isinstance(dims[0], int) else None
        if rest is not None and any(map(dims_clash, rest, dims[1:])):
            raise BuiltinError(f"`concat` needs tensors that agree past the first axis, not "
                               f"{', '.join(map(str, ts))}")
        rest = dims[1:] if rest is None else tuple(map(join_dim, rest, dims[1:]))
    return TensorT(kind, (length,) + rest)


def _atan2(args: Args) -> Type:
    t = _broadcast2("atan2", _numeric_arg("atan2", args, 0), _numeric_arg("atan2", args, 1)) \
        if not any(isinstance(a, UnknownT) for a in args.types[:2]) else UNKNOWN
    return with_kind(t, Scalar.REAL)


def _fourier(name: str) -> Callable[[Args], Type]:
    """fft ifft fft2 ifft2 fftn ifftn rfft irfft: complex spectra (irfft: a real signal)."""
    def rule(args: Args) -> Type:
        t = _tensor_arg(name, args, 0)
        for i in range(1, len(args.types)):
            if isinstance(args.types[i], TensorT):
                raise BuiltinError(f"the sizes and axes given to `{name}` must be numbers", i)
        if not isinstance(t, TensorT):
            return UNKNOWN
        kind = Scalar.REAL if name == "irfft" else Scalar.COMPLEX
        if name not in ("fft", "ifft", "rfft", "irfft"):
            return TensorT(kind, t.dims if len(args.types) == 1 else (None,) * t.rank)
        size = args.sizes[1] if len(args.types) > 1 else None
        last = t.dims[-1] if len(args.types) == 1 else size
        if name == "rfft":
            last = last // 2 + 1 if isinstance(last, int) else None
        elif name == "irfft" and len(args.types) == 1:
            last = 2 * (last - 1) if isinstance(last, int) else None
        return TensorT(kind, t.dims[:-1] + (last,))
    return rule


def _simulate(args: Args) -> Type:
    """`simulate(model, x0, nsteps, dt)`: plots a rollout; nothing to print."""
    for i in (2, 3):
        if isinstance(args.types[i], TensorT):
            raise BuiltinError(f"`simulate` takes a number of steps and a step size, not "
                               f"{args.types[i]}", i)
    return NONE


def _animate(args: Args) -> Type:
    """`animate(f, extra…, t_min, t_max[, n])`: plots f over time; nothing to print."""
    if not isinstance(args.types[0], (FuncT, UnknownT)):
        raise BuiltinError(f"`animate` needs a function first, not {args.types[0]}", 0,
                           "write animate(f, a, b, t_min, t_max) with f(a, b, t)")
    return NONE


def _model(name: str):
    """`train(model, X, y, epochs, lr)` gives a trained copy of the model (its class);
    `evaluate(model, X, y)` the mean loss (ℝ)."""
    def rule(args: Args) -> Type:
        if not isinstance(args.types[0], (ClassT, UnknownT)):
            raise BuiltinError(f"`{name}` needs an instance of a class first, not {args.types[0]}", 0,
                               f"write {name}(net, X, y{', epochs, lr' if name == 'train' else ''}) "
                               f"with net = C(…)")
        for i in (1, 2):
            if not isinstance(args.types[i], (TensorT, UnknownT)):
                raise BuiltinError(f"`{name}` takes the samples and their targets as tensors "
                                   f"(one row per sample), not {args.types[i]}", i)
        if name == "train":
            for i in (3, 4):
                if isinstance(args.types[i], TensorT):
                    raise BuiltinError(f"`train` takes a number of epochs and a learning rate, not "
                                       f"{args.types[i]}", i)
            return args.types[0]
        return REAL
    return rule


def _symbolic(result: str, symbolic_args: tuple[int, ...] = (0,)):
    """sympy's operations (`subs`, `diff`, `symbolic_solve`, …): the named arguments must be
    symbolic values; the result is a symbolic value (`Expr`, or `list` for solve's roots)."""
    def rule(args: Args) -> Type:
        for i in symbolic_args:
            if i < len(args.types) and not isinstance(args.types[i], (SymT, UnknownT)):
                raise BuiltinError(f"this argument must be a symbolic value (a Symbol, or an expression "
                                   f"of symbols), not {args.types[i]}", i,
                                   "declare symbols with `x, y: Symbol`")
        return SymT(result)
    return rule


def _solve(args: Args) -> Type:
    """`solve("F = m * a", …)`: how many unknowns there are depends on the variables known where
    it runs, so the result's type is not known here."""
    for i, e in enumerate(args.exprs):
        if isinstance(args.types[i], (TensorT, ClassT)):
            raise BuiltinError(f"`solve` takes equations written as strings, not {args.types[i]}", i,
                               'write solve("F1 = m * a1 + m * a2", "F2 = m * a2")')
    return UNKNOWN


def _lambdify(args: Args) -> Type:
    """`lambdify([x, y], expr)`: a function of as many numbers as symbols, giving a number."""
    symbols = args.exprs[0]
    n = len(symbols.items) if isinstance(symbols, ast.ArrayLit) else 1
    if not isinstance(args.types[1], (SymT, UnknownT)):
        raise BuiltinError(f"`lambdify` turns a symbolic expression into a function, not {args.types[1]}", 1)
    return FuncT(tuple(REAL for _ in range(n)), REAL)


def _random_complex(args: Args) -> Type:
    for i, t in enumerate(args.types):
        if isinstance(t, TensorT):
            raise BuiltinError(f"the sizes given to `random_complex` must be numbers, not {t}", i)
    return TensorT(Scalar.COMPLEX, args.sizes)


def _compl_mul1d(args: Args) -> Type:
    """ℂ[i, x] and ℂ[i, o, x] → ℂ[o, x] (summed over the input channels i)."""
    x, w = _tensor_arg("compl_mul1d", args, 0), _tensor_arg("compl_mul1d", args, 1)
    if isinstance(x, UnknownT) or isinstance(w, UnknownT):
        return UNKNOWN
    if x.rank != 2 or w.rank != 3:
        raise BuiltinError(f"`compl_mul1d` takes ℂ[i, x] and ℂ[i, o, x], not {x} and {w}")
    if dims_clash(x.dims[0], w.dims[0]) or dims_clash(x.dims[1], w.dims[2]):
        raise BuiltinError(f"`compl_mul1d`: the channels or modes of {x} and {w} differ")
    return TensorT(Scalar.COMPLEX, (w.dims[1], join_dim(x.dims[1], w.dims[2])))


def _permutation(args: Args) -> Type:
    for i in range(len(args.types)):
        _numeric_arg("shuffle_indices", args, i)
    return TensorT(Scalar.NAT, args.sizes[:1] if args.sizes else (None,))


def _table() -> dict[str, Builtin]:
    rows = [
        Builtin("len", 1, 1, _len, "ℕ: the size of the first axis"),
        Builtin("sum", 1, 1, _sum, "the sum of all elements"),
        Builtin("grad", 2, 2, _grad, "∂y/∂x: shaped like x, or the Jacobian ℝ[out…, in…]"),
        Builtin("physika_print", 1, 1, _nothing, "prints `value ∈ type`"),
        Builtin("print", 0, None, _nothing, "prints its arguments"),
        Builtin("summary", 1, 1, _nothing, "prints a table of an instance's fields"),
        Builtin("create_dataset", 0, 2, _dataset(28), "MNIST: [[X, y], [X, y]], X ℝ[N,28,28]"),
        Builtin("create_mnist", 0, 4, _dataset(28), "MNIST, shuffled: [[X, y], [X, y]]"),
        Builtin("create_digits", 0, 2, _dataset(8), "8×8 digits: [[X, y], [X, y]], X ℝ[N,8,8]"),
        Builtin("shuffle_indices", 1, 2, _permutation, "ℕ[n]: a permutation of 0..n-1 under a seed"),
        Builtin("zeros", 1, None, _filled("zeros"), "ℝ[d0, d1, …] of zeros"),
        Builtin("ones", 1, None, _filled("ones"), "ℝ[d0, d1, …] of ones"),
        Builtin("argmax", 1, 1, _argmax, "ℕ: the index of the largest element"),
        Builtin("max", 1, 2, _extremum("max"), "largest element, or elementwise maximum"),
        Builtin("min", 1, 2, _extremum("min"), "smallest element, or elementwise minimum"),
        Builtin("float", 1, 1, _convert("float", Scalar.REAL), "to ℝ, same shape"),
        Builtin("int", 1, 1, _convert("int", Scalar.INT), "to ℤ (truncating), same shape"),
        Builtin("abs", 1, 1, _real_valued("abs"), "elementwise |x| (the modulus of a complex x)"),
        Builtin("real", 1, 1, _real_valued("real"), "the real part, elementwise"),
        Builtin("imag", 1, 1, _real_valued("imag"), "the imaginary part, elementwise"),
        Builtin("mean", 1, 1, _mean, "the mean of all elements"),
        Builtin("roll", 2, 3, _roll, "x shifted cyclically by n (along an axis, or flattened)"),
        Builtin("concat", 1, None, _concat, "tensors one after another along the first axis"),
        Builtin("atan2", 2, 2, _atan2, "elementwise angle of the point (x, y): atan2(y, x)"),
        Builtin("gelu", 1, 1, _math("gelu"), "elementwise x·Φ(x)"),
        Builtin("physika_seed", 1, 1, _nothing, "`physika.seed(n)`: seeds the random generator"),
        Builtin("simulate", 4, 4, _simulate, "plots x_{k+1} = model(x_k) from x0 (a PNG file)"),
        Builtin("animate", 3, None, _animate, "plots f(extra…, t) over [t_min, t_max] (a PNG file)"),
        Builtin("train", 5, 5, _model("train"), "a trained copy: full-batch SGD on every real tensor field"),
        Builtin("evaluate", 3, 3, _model("evaluate"), "the mean loss over the samples"),
        Builtin("symbol", 1, 1, lambda args: SymT("Symbol"), "`x: Symbol`: the sympy symbol named x"),
        Builtin("function", 1, 1, lambda args: SymT("Function"), "`u: Function`: an undefined sympy function"),
        Builtin("equation", 2, 2, _symbolic("Equation", ()), "`eq: Equation := lhs = rhs`"),
        Builtin("subs", 3, None, _symbolic("Expr"), "expr with each symbol replaced by its value: subs(e, x, 3.0, y, 4.0)"),
        Builtin("diff", 2, 3, _symbolic("Expr", (0, 1)), "the symbolic derivative d expr / d x"),
        Builtin("lambdify", 2, 2, _lambdify, "a function of numbers computing expr: lambdify([x, y], e)"),
        Builtin("symbolic_solve", 2, 2, _symbolic("list", (0, 1)), "the roots of an equation in x"),
        Builtin("solve", 1, None, _solve, "the unknowns of linear equations given as strings, in name order"),
        Builtin("random_complex", 1, None, _random_complex, "ℂ[d0, …]: normal real and imaginary parts × 0.1"),
        Builtin("compl_mul1d", 2, 2, _compl_mul1d, "ℂ[i,x], ℂ[i,o,x] → ℂ[o,x], summed over i"),
    ]
    rows += [Builtin(n, 1, 3, _fourier(n), f"torch.fft.{n}")
             for n in ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft")]
    rows += [Builtin(n, 1, 1, _math(n), f"elementwise {n}")
             for n in ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "sigmoid")]
    return {b.name: b for b in rows}


BUILTINS: dict[str, Builtin] = _table()

# Calls of these are statements that print by themselves: a bare call prints nothing more.
RETURNS_NOTHING = frozenset(n for n, b in BUILTINS.items()
                            if b.rule in (_nothing, _simulate, _animate))

__all__ = ["Args", "BUILTINS", "Builtin", "BuiltinError", "RETURNS_NOTHING", "as_extent",
           "derivative_type", "dim_op", "dims_clash", "subst_dim",
           "dims_of", "fits_kind", "join_dim", "join_kind", "numeric", "with_kind"]
