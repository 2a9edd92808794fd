"""The compile-time adjoint (phc/ir/adjoint.py, runtime/adjoint.py) computes the right gradients.

1. Every vector-Jacobian product of runtime/adjoint.py against central finite differences of
   ⟨g, f(x)⟩ in float64 (f the same forward code path the generated module runs, g a random
   cotangent), and against torch.autograd on that forward where autograd's rule is phc's. Inputs
   are random floats, so no max/min test depends on a tie, except the deliberate tie tests, which
   use integers and check the rule exactly (the first extreme of a strict scan; the last of the
   seed's `max(a, max(b, max(c, d)))` tree).
2. One small program per nest kind: the adjoint applies (`plan.adjoint.mode == "adjoint"`) and
   prints what level 0 (the literal reference) prints; programs it must not apply to stay on
   autograd and agree too.
3. The seed, trained two epochs on a few images: the same losses and trained weights at both levels;
   every example, shrunk, trained with the adjoint and with autograd (the same module otherwise).
"""
from __future__ import annotations

import contextlib
import io
import itertools

import pytest
import torch

from helpers import run_program, same_output
from phc import pipeline
from phc.loader import load_module
from phc.runtime import adjoint as A
from phc.runtime import idioms, nests

EPS = 1e-6
RTOL = 1e-6
_count = itertools.count()


# ---------------------------------------------------------------- finite differences

def rand(*shape, seed=0):
    """Random float64 values; ties among them have probability zero."""
    g = torch.Generator().manual_seed(seed * 7919 + sum(shape) + len(shape))
    return torch.randn(tuple(shape), generator=g, dtype=torch.float64)


def numeric_vjp(f, inputs, g, k):
    """∂⟨g, f(inputs)⟩/∂inputs[k] by central differences, element by element."""
    x = inputs[k]
    out = torch.zeros_like(x)
    for idx in itertools.product(*map(range, x.shape)):
        vals = []
        for sign in (1, -1):
            moved = x.clone()
            moved[idx] += sign * EPS
            args = list(inputs)
            args[k] = moved
            vals.append((g * f(*args)).sum())
        out[idx] = (vals[0] - vals[1]) / (2 * EPS)
    return out


def assert_close(got, want, rtol=RTOL):
    """Equal to `rtol` relative to the larger of the two gradients (an element that should be
    zero is held to the same absolute error as the rest)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(float(want.abs().max()) if want.numel() else 0.0, 1.0)
    torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * scale)


def check_vjp(f, inputs, vjp, wanted=None, seed=1, autograd=True):
    """The VJP's gradients against finite differences and (autograd=True) torch.autograd.
    f(*inputs) -> tensor; vjp(g, *inputs) -> one gradient (or None) per input."""
    inputs = [x.detach().clone() for x in inputs]
    y = f(*inputs)
    g = rand(*y.shape, seed=seed)
    grads = vjp(g, *inputs)
    wanted = range(len(inputs)) if wanted is None else wanted
    for k in wanted:
        assert grads[k] is not None, f"no gradient for input {k}"
        assert grads[k].dtype == torch.float64
        assert_close(grads[k], numeric_vjp(f, inputs, g, k))
    if autograd:
        leaves = [x.clone().requires_grad_(True) for x in inputs]
        auto = torch.autograd.grad((g * f(*leaves)).sum(), [leaves[k] for k in wanted], allow_unused=True)
        for k, a in zip(wanted, auto):
            assert_close(grads[k], torch.zeros_like(inputs[k]) if a is None else a, rtol=1e-12)
    return grads


# ---------------------------------------------------------------- sum_to, index_vjp, sum_vjp

@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 1), (2, 3, 4)), ((), (5,)), ((4,), (3, 4)),
                                   ((2, 1, 4), (3, 1))])
def test_sum_to_is_the_adjoint_of_a_broadcasting_product(sa, sb):
    check_vjp(lambda a, b: a * b, [rand(*sa), rand(*sb, seed=2)],
              lambda g, a, b: (A.sum_to(g * b, a), A.sum_to(g * a, b)))


def test_sum_to_keeps_a_cotangent_of_the_same_shape():
    g = rand(3, 4)
    assert A.sum_to(g, rand(3, 4)) is g


@pytest.mark.parametrize("shape,ix", [((5,), (1,)), ((5,), (-1,)), ((3, 4), (2, 1)), ((3, 4), (1,)),
                                      ((2, 3, 4), (1, -2))])
def test_index_vjp(shape, ix):
    check_vjp(lambda a: a[ix], [rand(*shape)], lambda g, a: (A.index_vjp(g, a, ix),))


@pytest.mark.parametrize("shape,k", [((5,), 1), ((3, 4), 1), ((3, 4), 2), ((2, 3, 4), 2), ((2, 3, 4), 1)])
def test_sum_vjp(shape, k):
    dims = tuple(range(-k, 0))
    check_vjp(lambda x: x.sum(dim=dims), [rand(*shape)], lambda g, x: (A.sum_vjp(g, x, k),))


# ---------------------------------------------------------------- conv2d

def _conv_shapes(has_batch, has_out, has_chan, K=3):
    x = (2,) * has_batch + (3,) * has_chan + (7, 6)
    w = (2,) * has_out + (3,) * has_chan + (K, K)
    return x, w


@pytest.mark.parametrize("has_batch,has_out,has_chan", list(itertools.product((False, True), repeat=3)))
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 0), (1, 1), (2, 1)])
@pytest.mark.parametrize("cut", [False, True])
def test_conv2d_vjp(has_batch, has_out, has_chan, stride, padding, cut):
    xs, ws = _conv_shapes(has_batch, has_out, has_chan)
    oh, ow = [(s + 2 * padding - 3) // stride + 1 for s in xs[-2:]]
    n_i, n_j = (oh - 1, ow - 2) if cut else (oh, ow)      # a nest may stop short of the input's end

    def f(x, w):
        return idioms.conv2d(x, w, stride, n_i, n_j, has_batch, has_out, has_chan, None, padding)

    def vjp(g, x, w):
        return A.conv2d_vjp(g, x, w, stride, n_i, n_j, has_batch, has_out, has_chan, padding, True, True)
    check_vjp(f, [rand(*xs), rand(*ws, seed=2)], vjp)


def test_conv2d_vjp_gives_only_what_is_needed():
    x, w = rand(6, 6), rand(3, 3, seed=2)
    g = rand(4, 4, seed=3)
    dx, dw = A.conv2d_vjp(g, x, w, 1, 4, 4, False, False, False, 0, False, True)
    assert dx is None and dw.shape == w.shape
    dx, dw = A.conv2d_vjp(g, x, w, 1, 4, 4, False, False, False, 0, True, False)
    assert dw is None and dx.shape == x.shape


@pytest.mark.parametrize("has_batch,has_out", list(itertools.product((False, True), repeat=2)))
@pytest.mark.parametrize("n_c", [None, 2])
@pytest.mark.parametrize("guarded,padding", [(False, 1), (True, 0), (True, 1)])
def test_conv2d_vjp_channel_cut_and_guard(has_batch, has_out, n_c, guarded, padding):
    """n_c: the nest sums over fewer channels than x has; guarded: outputs past the padded input
    read zeros (the nest's guard), so there are more of them than the input allows."""
    xs, ws = _conv_shapes(has_batch, has_out, True)
    oh, ow = [(s + 2 * padding - 3) + 1 for s in xs[-2:]]
    n_i, n_j = (oh + 1, ow + 2) if guarded else (oh, ow - 1)

    def f(x, w):
        return idioms.conv2d(x, w, 1, n_i, n_j, has_batch, has_out, True, None, padding, n_c, guarded)

    def vjp(g, x, w):
        return A.conv2d_vjp(g, x, w, 1, n_i, n_j, has_batch, has_out, True, padding, True, True, n_c, guarded)
    dx, dw = check_vjp(f, [rand(*xs), rand(*ws, seed=2)], vjp)
    if n_c is not None:        # the channels the nest does not read get no gradient
        assert not dx[..., n_c:, :, :].any() and not dw[..., n_c:, :, :].any()


# ---------------------------------------------------------------- pool2d

POOL_CASES = [  # shape, k, stride, n_i, n_j (None: every window the input allows)
    ((8, 8), 2, 2, None, None),
    ((7, 9), 2, 2, None, None),        # odd sizes: the last row and column belong to no window
    ((7, 8), 2, 2, 2, 3),              # a nest that stops short: a cut window region
    ((2, 6, 6), 3, 2, None, None),     # overlapping windows
    ((2, 6, 7), 2, 1, 4, 3),
    ((2, 2, 5, 6), 2, 2, None, None),
    ((2, 3, 7, 7), 3, 2, 2, 1),
]


def _windows(shape, k, stride, n_i, n_j):
    H, W = shape[-2:]
    return ((H - k) // stride + 1 if n_i is None else n_i), ((W - k) // stride + 1 if n_j is None else n_j)


@pytest.mark.parametrize("shape,k,stride,n_i,n_j", POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "min"])
@pytest.mark.parametrize("ties", ["first", "last"])
def test_pool2d_vjp(shape, k, stride, n_i, n_j, kind, ties):
    n_i, n_j = _windows(shape, k, stride, n_i, n_j)
    rank = len(shape)
    x = rand(*shape)
    value, _ = A.pool2d(x, kind, k, stride, n_i, n_j, ties, rank, 1)
    torch.testing.assert_close(value, idioms.pool2d(x, kind, k, stride, n_i, n_j, ties, None, rank), rtol=0, atol=0)
    check_vjp(lambda x: A.pool2d(x, kind, k, stride, n_i, n_j, ties, rank, 1)[0], [x],
              lambda g, x: (A.pool2d_vjp(g, A.pool2d(x, kind, k, stride, n_i, n_j, ties, rank, 1)[1]),),
              autograd=False)
    # autograd through the forward the optimised module runs when it keeps autograd
    leaf = x.clone().requires_grad_(True)
    g = rand(*value.shape, seed=1)
    auto, = torch.autograd.grad((g * idioms.pool2d(leaf, kind, k, stride, n_i, n_j, ties, None, rank)).sum(), leaf)
    assert_close(A.pool2d_vjp(g, A.pool2d(x, kind, k, stride, n_i, n_j, ties, rank, 1)[1]), auto, rtol=1e-12)


def scan_pool_grad(x, g, kind, k, stride, n_i, n_j, ties):
    """The gradient of a literal window scan over a 2-d x: each window's cotangent to the
    element a row-major scan keeps, replacing on `>` (ties first) or `>=` (ties last)."""
    better = {("max", "first"): lambda v, m: v > m, ("max", "last"): lambda v, m: v >= m,
              ("min", "first"): lambda v, m: v < m, ("min", "last"): lambda v, m: v <= m}[kind, ties]
    d = torch.zeros_like(x)
    for i, j in itertools.product(range(n_i), range(n_j)):
        best = None
        for a, b in itertools.product(range(k), range(k)):
            at = (i * stride + a, j * stride + b)
            if best is None or better(x[at], x[best]):
                best = at
        d[best] += g[i, j]
    return d


@pytest.mark.parametrize("kind", ["max", "min"])
@pytest.mark.parametrize("ties", ["first", "last"])
@pytest.mark.parametrize("k,stride", [(2, 2), (3, 2), (2, 1)])
def test_pool2d_ties_go_where_the_scan_keeps(kind, ties, k, stride):
    """Integers 0..2: windows full of ties; the rule is checked exactly."""
    x = torch.randint(0, 3, (7, 8), generator=torch.Generator().manual_seed(5)).double()
    n_i, n_j = _windows(x.shape, k, stride, None, None)
    g = torch.arange(1, n_i * n_j + 1, dtype=torch.float64).reshape(n_i, n_j)
    value, saved = A.pool2d(x, kind, k, stride, n_i, n_j, ties, 2, 1)
    got = A.pool2d_vjp(g, saved)
    torch.testing.assert_close(got, scan_pool_grad(x, g, kind, k, stride, n_i, n_j, ties), rtol=0, atol=0)


def test_pool2d_last_tie_is_the_seeds_select_tree():
    """The seed's `max(a, max(b, max(c, d)))` with `max(x, y) = x if x > y else y`, run by
    autograd element by element, sends each window's gradient where ties="last" does."""
    x = torch.randint(0, 2, (6, 8), generator=torch.Generator().manual_seed(6)).double()
    g = torch.arange(1, 13, dtype=torch.float64).reshape(3, 4)
    pick = lambda p, q: p if p > q else q      # noqa: E731
    leaf = x.clone().requires_grad_(True)
    total = 0
    for i, j in itertools.product(range(3), range(4)):
        a, b, c, d = leaf[2 * i, 2 * j], leaf[2 * i, 2 * j + 1], leaf[2 * i + 1, 2 * j], leaf[2 * i + 1, 2 * j + 1]
        total = total + g[i, j] * pick(a, pick(b, pick(c, d)))
    want, = torch.autograd.grad(total, leaf)
    got = A.pool2d_vjp(g, A.pool2d(x, "max", 2, 2, 3, 4, "last", 2, 1)[1])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert (x.reshape(3, 2, 4, 2) == x.reshape(3, 2, 4, 2).amax(dim=(1, 3), keepdim=True)).sum() > 12   # ties exist


def test_pool2d_has_no_adjoint_for_average_pooling():
    with pytest.raises(ValueError):
        A.pool2d(rand(4, 4), "avg", 2, 2, 2, 2, "first", 2, 1)


def test_pool2d_window_past_the_input_raises():
    with pytest.raises(IndexError):
        A.pool2d(rand(5, 5), "max", 2, 2, 3, 2, "first", 2, 1)


# ---------------------------------------------------------------- linear, matmul

@pytest.mark.parametrize("w_transposed", [False, True])
@pytest.mark.parametrize("n_i,n_k", [(5, None), (5, 7), (3, None), (5, 4), (2, 6)])
def test_linear_vjp(w_transposed, n_i, n_k):
    rows, cols = 5, 7                               # w2 = w (or w.t()) is rows x cols
    x, w = rand(cols), rand(*((cols, rows) if w_transposed else (rows, cols)), seed=2)

    def f(x, w):
        return idioms.linear(x, w, n_i, False, None, w_transposed, False, n_k)
    check_vjp(f, [x, w], lambda g, x, w: A.linear_vjp(g, x, w, n_i, w_transposed, n_k, True, True))


@pytest.mark.parametrize("w_transposed,x_transposed", list(itertools.product((False, True), repeat=2)))
@pytest.mark.parametrize("n_i,n_k", [(5, None), (3, 4)])
def test_linear_vjp_of_a_batch(w_transposed, x_transposed, n_i, n_k):
    rows, cols, batch = 5, 7, 3
    x = rand(*((cols, batch) if x_transposed else (batch, cols)))
    w = rand(*((cols, rows) if w_transposed else (rows, cols)), seed=2)

    def f(x, w):
        return idioms.linear(x, w, n_i, True, None, w_transposed, x_transposed, n_k)

    def vjp(g, x, w):
        return A.linear_vjp(g, x, w, n_i, w_transposed, n_k, True, True, True, x_transposed)
    check_vjp(f, [x, w], vjp)


def test_linear_vjp_gives_only_what_is_needed():
    x, w, g = rand(7), rand(5, 7, seed=2), rand(5, seed=3)
    dx, dw = A.linear_vjp(g, x, w, 5, False, None, True, False)
    assert dw is None and dx.shape == x.shape
    dx, dw = A.linear_vjp(g, x, w, 5, False, None, False, True)
    assert dx is None and dw.shape == w.shape


@pytest.mark.parametrize("sa,sb", [((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((3, 4), (4, 2)),
                                   ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4,)), ((4,), (2, 4, 5)),
                                   ((3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2))])
def test_matmul_vjp(sa, sb):
    check_vjp(lambda a, b: a @ b, [rand(*sa), rand(*sb, seed=2)],
              lambda g, a, b: A.matmul_vjp(g, a, b, True, True))


@pytest.mark.parametrize("need_a,need_b", [(True, False), (False, True)])
@pytest.mark.parametrize("sa,sb", [((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((3, 4), (4, 2))])
def test_matmul_vjp_gives_only_what_is_needed(sa, sb, need_a, need_b):
    a, b = rand(*sa), rand(*sb, seed=2)
    da, db = A.matmul_vjp(rand(*(a @ b).shape, seed=3), a, b, need_a, need_b)
    assert (da is None) != need_a and (db is None) != need_b


# ---------------------------------------------------------------- extremum

@pytest.mark.parametrize("shape,k", [((6,), 1), ((3, 5), 1), ((3, 5), 2), ((2, 3, 4), 1), ((2, 3, 4), 2),
                                     ((2, 3, 4), 3)])
@pytest.mark.parametrize("op", ["max", "min"])
def test_extremum_vjp(shape, k, op):
    x = rand(*shape)
    dims = tuple(range(len(shape) - k, len(shape)))
    value, _ = A.extremum(x, k, op)
    torch.testing.assert_close(value, nests.extremum(x, dims, op), rtol=0, atol=0)
    check_vjp(lambda x: A.extremum(x, k, op)[0], [x], lambda g, x: (A.extremum_vjp(g, x, k, A.extremum(x, k, op)[1]),))


def strict_scan(row, op):
    """`m = x[0]; for i: if x[i] > m: m = x[i]` (`<` for min), element by element."""
    m = row[0]
    for v in row[1:]:
        if (v > m) if op == "max" else (v < m):
            m = v
    return m


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("shape,k", [((8,), 1), ((4, 6), 1), ((3, 2, 4), 2)])
@pytest.mark.parametrize("ties", [False, True])
def test_extremum_gradient_goes_to_the_first_extreme_of_a_strict_scan(op, shape, k, ties):
    """Against the literal scan run by autograd; with ties (integers 0..2), the first one."""
    x = (torch.randint(0, 3, shape, generator=torch.Generator().manual_seed(8)).double() if ties
         else rand(*shape))
    lead = shape[:len(shape) - k]
    g = torch.arange(1, torch.Size(lead).numel() + 1, dtype=torch.float64).reshape(lead)
    leaf = x.clone().requires_grad_(True)
    groups = leaf.reshape(-1, torch.Size(shape[len(shape) - k:]).numel())
    total = sum(g.reshape(-1)[r] * strict_scan(groups[r], op) for r in range(groups.shape[0]))
    want, = torch.autograd.grad(total, leaf)
    got = A.extremum_vjp(g, x, k, A.extremum(x, k, op)[1])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    if ties:      # the case is a real tie test: some group holds its extreme twice
        flat = x.reshape(groups.shape)
        ext = flat.amax(dim=-1, keepdim=True) if op == "max" else flat.amin(dim=-1, keepdim=True)
        assert ((flat == ext).sum(dim=-1) > 1).any()


def test_extremum_of_an_empty_range_has_zero_gradient():
    x = rand(3, 0)
    value, at = A.extremum(x, 1, "max")
    assert at is None and torch.equal(value, torch.full((3,), -float("inf"), dtype=torch.float64))
    assert torch.equal(A.extremum_vjp(rand(3), x, 1, at), torch.zeros_like(x))


# ---------------------------------------------------------------- view

VIEW_CASES = [  # t's shape, const, coeffs (one row per nest axis), sizes
    ((9,), (1,), ((2,),), (4,)),                    # x[2*i + 1]
    ((8,), (0,), ((1,), (1,)), (6, 3)),             # x[i + k]: overlapping reads
    ((8,), (2,), ((1,), (1,)), (4, 3)),             # x[i + k + 2]
    ((5,), (0,), ((0,), (1,)), (1, 5)),             # x[j] in a 2-d nest: a broadcast axis
    ((5,), (0,), ((0,), (1,)), (4, 5)),             # the same element read at every i
    ((6, 7), (0, 1), ((2, 0), (0, 1)), (3, 6)),     # x[2*i, j + 1]
    ((6, 7), (1, 0), ((1, 1), (0, 1)), (4, 3)),     # x[i + 1, i + j]: a diagonal band
    ((6,), (5,), ((-1,),), (6,)),                   # x[5 - i]: reversed (a gather)
    ((5, 5), (3, 0), ((-1, 0), (1, 1)), (3, 2)),    # x[3 - i + j, j]
]


@pytest.mark.parametrize("shape,const,coeffs,sizes", VIEW_CASES)
def test_view_vjp(shape, const, coeffs, sizes):
    check_vjp(lambda t: nests.view(t, const, coeffs, sizes), [rand(*shape)],
              lambda g, t: (A.view_vjp(g, t, const, coeffs, sizes),))


# ---------------------------------------------------------------- programs: the adjoint against level 0

def compile_plan(source: str):
    return pipeline.compile_source(source, "prog.phk", "torch", opt=2)


def tape_kinds(compiled) -> set[str]:
    return {op.kind for step in compiled.plan.adjoint.steps.values() for op in step.ops}


def agree_with_level0(source: str) -> str:
    """Run at opt 2 and opt 0 (the literal reference); the printed gradients agree to 1e-5."""
    got, want = run_program(source, opt=2), run_program(source, opt=0)
    assert want.strip() and same_output(got, want, rel=1e-5), f"opt 2:\n{got}\nopt 0:\n{want}"
    return got


MAP = """\
x: ℝ[4] = [0.5, -1.0, 2.0, 0.25]
w: ℝ[4] = [1.5, 0.5, -0.75, 2.0]
y = for i -> tanh(w[i] * x[i]) + exp(x[i]) * sin(w[i]) - x[i] / w[i] + sqrt(abs(w[i])) * cos(-x[i]) + log(x[i] * x[i] + 1.0)
loss = sum(y * y) + sum(x ** 3) - sum(w ** 0.5 * 0.0 + w * w)
dx = grad(loss, x)
dw = grad(loss, w)
dx
dw
"""

SUM = """\
def rowsum(x: ℝ[m, n]): ℝ[m]:
    r: ℝ[len(x)] = for i: ℕ(len(x)) -> 0
    for i: ℕ(len(x)):
        acc = 0
        for j: ℕ(len(x[0])):
            acc += x[i, j] * x[i, j]
        r[i] = acc
    return r

def total(v: ℝ[m]): ℝ:
    t = 0
    for i:
        t += v[i]
    return t

x: ℝ[2, 3] = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
c: ℝ[2] = [2.0, -3.0]
s = rowsum(x)
loss = total(s * c) + sum(x * x * x)
dx = grad(loss, x)
dc = grad(loss, c)
dx
dc
"""

ROW_MAX = """\
x: ℝ[3, 4] = [[0.5, -1.0, 2.0, 1.0], [1.5, 0.25, -0.75, 3.0], [-2.0, -0.5, -1.5, -3.0]]
c: ℝ[3] = [2.0, -3.0, 0.5]
r = for i: ℕ(3) -> max(x[i])
s = for i: ℕ(3) -> min(x[i])
loss = sum(r * c) + sum(s * s)
dx = grad(loss, x)
dx
"""

WHERE = """\
def pick(a: ℝ, b: ℝ): ℝ:
    if a > b:
        return a * b
    else:
        return b - a

def relu(x: ℝ): ℝ:
    if x > 0:
        return x
    else:
        return 0.0

x: ℝ[5] = [0.5, -1.0, 2.0, 0.25, 3.0]
s: ℝ = 1.5
y = for i -> pick(x[i], s)
z = for i -> relu(x[i] - 0.3)
loss = sum(y * y) + sum(z * x)
dx = grad(loss, x)
ds = grad(loss, s)
dx
ds
"""

HOST_IF = """\
def max(x: ℝ, y: ℝ): ℝ:
    if x > y:
        return x
    else:
        return y

x: ℝ[3] = [0.5, -1.0, 2.0]
w: ℝ[3] = [1.5, 0.25, -0.75]
a = sum(x * x)
b = sum(w)
c = sum(x * w)
loss = max(a, b) * max(b, c)
dx = grad(loss, x)
dw = grad(loss, w)
dx
dw
"""

GATHER = """\
def cross_entropy(probs: ℝ[m], label: ℝ): ℝ:
    p: ℝ = probs[label]
    return -log(p)

z: ℝ[4] = [0.5, 0.25, 2.0, 1.25]
label: ℝ = 2
loss = cross_entropy(z * z, label) + z[1] * z[3]
dz = grad(loss, z)
dz
"""

STRIDED = """\
x: ℝ[7] = [0.5, -1.0, 2.0, 0.25, 3.0, -0.5, 1.5]
w: ℝ[3] = [1.5, -2.0, 0.75]
y = for i: ℕ(3) -> x[2*i + 1] * w[i] + x[i + 2] * x[i + 3] - x[6 - i]
loss = sum(y * y)
dx = grad(loss, x)
dw = grad(loss, w)
dx
dw
"""

CONV = """\
def conv2d(input: ℝ[H, W], kernel: ℝ[K, K], bias: ℝ): ℝ[m, n]:
    out_H: ℝ = len(input) - len(kernel) + 1
    out_W: ℝ = len(input[0]) - len(kernel[0]) + 1
    results: ℝ[out_H, out_W] = for i: ℕ(out_H) -> for j: ℕ(out_W) -> 0
    for i: ℕ(out_H):
        for j: ℕ(out_W):
            acc = 0
            for ki: ℕ(len(kernel)):
                for kj: ℕ(len(kernel[0])):
                    acc += input[i+ki, j+kj] * kernel[ki, kj]
            results[i, j] = acc + bias
    return results

img: ℝ[6, 7] = for i: ℕ(6) -> for j: ℕ(7) -> sin(1.3 * i + 0.7 * j)
kernel: ℝ[3, 3] = [[1, 0, -1], [0.5, 2, -1], [1, -0.25, 0]]
b: ℝ = 0.1
out = conv2d(img, kernel, b)
loss = sum(tanh(out) * out)
dk = grad(loss, kernel)
db = grad(loss, b)
dimg = grad(loss, img)
dk
db
dimg
"""

POOL = """\
def max(x: ℝ, y: ℝ): ℝ:
    if x>y:
        return x
    else:
        return y

def maxpool2d(x: ℝ[m, n]): ℝ[m, n]:
    stride: ℝ = 2
    rows: ℝ = len(x) / 2
    cols: ℝ = len(x[0]) / 2
    results: ℝ[rows, cols] = for i: ℕ(rows) -> for j: ℕ(cols) -> 0
    for i:ℕ(rows):
        for j:ℕ(cols):
            a = x[i*stride, j*stride]
            b = x[i*stride, j*stride + 1]
            c = x[i*2+1, j*2]
            d = x[i*2+1, j*2+1]
            results[i, j] = max(a, max(b, max(c, d)))
    return results

img: ℝ[6, 8] = for i: ℕ(6) -> for j: ℕ(8) -> sin(1.3 * i + 0.7 * j + 0.1 * i * j)
s: ℝ = 1.5
p = maxpool2d(img * s)
loss = sum(p * p)
dimg = grad(loss, img)
ds = grad(loss, s)
dimg
ds
"""

LINEAR = """\
def linear(x: ℝ[n], weight: ℝ[m, n], bias: ℝ[m]): ℝ[m]:
    results: ℝ[len(bias)] = for i: ℕ(len(bias)) -> 0
    for i: ℕ(len(bias)):
        acc = 0
        for j: ℕ(len(x)):
            acc += weight[i, j] * x[j]
        results[i] = acc + bias[i]
    return results

x: ℝ[5] = [0.5, -1.0, 2.0, 0.25, 3.0]
w: ℝ[3, 5] = for i: ℕ(3) -> for j: ℕ(5) -> cos(0.5 * i + 0.3 * j)
b: ℝ[3] = [0.1, -0.2, 0.3]
y = linear(x, w, b)
loss = sum(tanh(y))
dw = grad(loss, w)
db = grad(loss, b)
dx = grad(loss, x)
dw
db
dx
"""

MATMUL = """\
A: ℝ[3, 4] = for i: ℕ(3) -> for j: ℕ(4) -> sin(1.0 + i + 0.5 * j)
B: ℝ[4, 2] = for i: ℕ(4) -> for j: ℕ(2) -> cos(0.3 * i - j)
x: ℝ[2] = [0.5, -1.5]
v: ℝ[3] = [1.0, 2.0, -0.5]
loss = v @ tanh(A @ B @ x) + sum((A @ B) * (A @ B)) + v @ v
dA = grad(loss, A)
dB = grad(loss, B)
dx = grad(loss, x)
dv = grad(loss, v)
dA
dB
dx
dv
"""

SOFTMAX = """\
def get_1d_array_length(x: ℝ[m]): ℝ:
    total: ℝ = 0
    temp: ℝ = 0
    for i:
        temp = x[i]
        total += 1
    return total

def get_sum_of_1d_array(x: ℝ[m]): ℝ:
    total = 0
    for i:
        total += x[i]
    return total

def softmax(x: ℝ[m]): ℝ[m]:
    len_x: ℝ = get_1d_array_length(x)
    exps_array: ℝ[m] = for i:N(len_x) -> exp(x[i])
    total: ℝ = get_sum_of_1d_array(exps_array)
    results: ℝ[len_x] = for i:N(len_x) -> exps_array[i] / total
    return results

def cross_entropy(probs: ℝ[m], label: ℝ): ℝ:
    p: ℝ = probs[label]
    return -log(p)

z: ℝ[4] = [0.5, -1.0, 2.0, 0.25]
w: ℝ[4] = [1.5, 0.5, -0.75, 2.0]
label: ℝ = 1
loss = cross_entropy(softmax(z * w), label)
dz = grad(loss, z)
dw = grad(loss, w)
dz
dw
"""

METHOD = """\
class Net:
    w: ℝ[3, 4]
    b: ℝ[3]
    def hidden(x: ℝ[4]): ℝ[3]:
        return tanh(this.w @ x + this.b)
    def λ(x: ℝ[4]) -> ℝ:
        h: ℝ[3] = this.hidden(x)
        return sum(h * h)

w: ℝ[3, 4] = for i: ℕ(3) -> for j: ℕ(4) -> sin(1.0 + i + 0.5 * j)
b: ℝ[3] = [0.1, -0.2, 0.3]
net: Net = Net(w, b)
x: ℝ[4] = [0.5, -1.0, 2.0, 0.25]
lr: ℝ = 0.1
for step: ℕ(3):
    loss = net(x)
    dw = grad(loss, net.w)
    db = grad(loss, net.b)
    net = Net(net.w - lr * dw, net.b - lr * db)
    physika_print(loss)
net.w
net.b
"""

TWO_GRADS = """\
x: ℝ[3] = [0.5, -1.0, 2.0]
w: ℝ[3] = [1.5, 0.25, -0.75]
loss = sum(exp(x * w) * x)
dx = grad(loss, x)
physika_print(dx)
dw = grad(loss, w)
physika_print(dw)
dx2 = grad(loss, x)
dx2 - dx
"""

# Found by these tests (each failed before its fix: see the test names in the report)
HOST_IF_ON_EXPRESSIONS = """\
def pick(a: ℝ, b: ℝ): ℝ:
    if a > b:
        return a * b
    else:
        return b - a

x: ℝ[3] = [0.5, -1.0, 2.0]
w: ℝ[3] = [1.5, 0.25, -0.75]
loss = pick(sum(x * x), sum(w)) + pick(sum(w), sum(x * w))
dx = grad(loss, x)
dw = grad(loss, w)
dx
dw
"""

ROW_MAX_SCAN = """\
def rowmax(x: ℝ[m, n]): ℝ[m]:
    r: ℝ[len(x)] = for i: ℕ(len(x)) -> 0
    for i: ℕ(len(x)):
        m = -1000.0
        for j: ℕ(len(x[0])):
            if x[i, j] > m:
                m = x[i, j]
        r[i] = m
    return r

x: ℝ[3, 4] = [[0.5, -1.0, 2.0, 1.0], [1.5, 0.25, -0.75, 3.0], [-2.0, -0.5, -1.5, -3.0]]
c: ℝ[3] = [2.0, -3.0, 0.5]
loss = sum(rowmax(x * x) * c)
dx = grad(loss, x)
dx
"""

HOST_IF_NUMBER_BRANCH = """\
def max(x: ℝ, y: ℝ): ℝ:
    if x > y:
        return x
    else:
        return y

x: ℝ[3] = [0.5, -1.0, 2.0]
b = sum(x)
loss = max(b, 1.0) * b + exp(max(b, 5.0))
dx = grad(loss, x)
dx
"""

BROADCAST_AXIS = """\
x: ℝ[3] = [0.5, -1.0, 2.0]
t = for i: ℕ(3) -> for j: ℕ(4) -> x[i] * x[i]
loss = sum(t)
dx = grad(loss, x)
dx
t
"""

REDUCE_UNDER_AN_UNREAD_AXIS = """\
x: ℝ[2, 3] = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
t = for j: ℕ(4) -> min(x[j - j])
loss = sum(t)
dx = grad(loss, x)
dx
t
"""

SIGMOID_AXIS = """\
x: ℝ[5] = [0.5, -1.0, 2.0, 0.25, 3.0]
s = for i -> 1.0 / (1.0 + exp(-x[i]))
u = for i -> x[i] * i + i * i
loss = sum(s * u)
dx = grad(loss, x)
dx
"""

STORE_FRESH = """\
def pad1(x: ℝ[n]): ℝ[m]:
    r: ℝ[len(x) + 2] = zeros(len(x) + 2)
    for i: ℕ(len(x)):
        r[i + 1] = x[i]
    return r

x: ℝ[4] = [0.5, -1.0, 2.0, 0.25]
p = pad1(x * x)
y = for i: ℕ(4) -> p[i] * p[i + 2] + p[i + 1]
loss = sum(y * y)
dx = grad(loss, x)
dx
"""

MIN_POOL_CHANNELS = """\
def min_pool(x: ℝ[C, H, W]): ℝ[C, m, n]:
    rows: ℝ = len(x[0]) // 2
    cols: ℝ = len(x[0][0]) // 2
    r: ℝ[len(x), rows, cols] = zeros(len(x), rows, cols)
    for c: ℕ(len(x)):
        for i: ℕ(rows):
            for j: ℕ(cols):
                low = x[c, 2*i, 2*j]
                for di: ℕ(2):
                    for dj: ℕ(2):
                        if x[c, 2*i + di, 2*j + dj] < low:
                            low = x[c, 2*i + di, 2*j + dj]
                r[c, i, j] = low
    return r

img: ℝ[2, 5, 7] = for c: ℕ(2) -> for i: ℕ(5) -> for j: ℕ(7) -> sin(1.3 * i + 0.7 * j + 0.1 * i * j + c)
p = min_pool(img)
loss = sum(p * p * p)
di = grad(loss, img)
di
"""

BATCH_LINEAR = """\
def dense(x: ℝ[B, n], w: ℝ[m, n], c: ℝ[m]): ℝ[B, m]:
    r: ℝ[len(x), len(w)] = zeros(len(x), len(w))
    for b: ℕ(len(x)):
        for i: ℕ(len(w)):
            acc = 0
            for j: ℕ(len(w[0])):
                acc += w[i, j] * x[b, j]
            r[b, i] = acc + c[i]
    return r

x: ℝ[3, 5] = for b: ℕ(3) -> for j: ℕ(5) -> cos(0.4 * b + 0.3 * j)
w: ℝ[4, 5] = for i: ℕ(4) -> for j: ℕ(5) -> sin(0.5 * i - 0.3 * j)
c: ℝ[4] = [0.1, -0.2, 0.3, 0.0]
y = dense(x, w, c)
loss = sum(tanh(y) * y)
dw = grad(loss, w)
dx = grad(loss, x)
dc = grad(loss, c)
dw
dx
dc
"""

ADJOINT_PROGRAMS = {   # name: (source, op kinds its tape must hold (`a|b`: either): the nest kind is derived)
    "map": (MAP, {"un", "bin", "pow", "view|bview"}),
    "reduction_sum": (SUM, {"rsum", "sum"}),
    "row_max": (ROW_MAX, {"rmax", "rmin"}),
    "select_where": (WHERE, {"where", "relu", "cmp"}),
    "host_if": (HOST_IF, {"hselect", "cmp"}),
    "gather_label": (GATHER, {"index"}),
    "strided_view": (STRIDED, {"view"}),
    "conv2d": (CONV, {"conv2d"}),
    "max_pool": (POOL, {"pool2d"}),
    "linear": (LINEAR, {"linear"}),
    "matmul": (MATMUL, {"matmul"}),
    "softmax": (SOFTMAX, {"softmax", "index"}),
    "method_fields": (METHOD, {"field", "matmul"}),
    "two_grads": (TWO_GRADS, {"un", "sum"}),
    "host_if_on_expressions": (HOST_IF_ON_EXPRESSIONS, {"hselect"}),
    "row_max_scan_from_a_constant": (ROW_MAX_SCAN, {"rmax", "where"}),
    "host_if_with_a_number_branch": (HOST_IF_NUMBER_BRANCH, {"hselect"}),
    "tabulation_with_a_broadcast_axis": (BROADCAST_AXIS, {"view|bview"}),
    "reduction_under_an_unread_axis": (REDUCE_UNDER_AN_UNREAD_AXIS, {"rmin"}),
    "sigmoid_and_loop_variables": (SIGMOID_AXIS, {"sigmoid", "axis"}),
    "store_into_a_fresh_tensor": (STORE_FRESH, {"store"}),
    "min_pool_with_channels_odd_size": (MIN_POOL_CHANNELS, {"pool2d"}),
    "batched_linear": (BATCH_LINEAR, {"linear"}),
}


@pytest.mark.parametrize("name", sorted(ADJOINT_PROGRAMS))
def test_adjoint_applies_and_agrees_with_level0(name):
    source, kinds = ADJOINT_PROGRAMS[name]
    compiled = compile_plan(source)
    assert compiled.plan.adjoint.mode == "adjoint", compiled.plan.adjoint.reasons
    have = tape_kinds(compiled)
    assert all(set(k.split("|")) & have for k in kinds), have
    assert "torch.no_grad()" in compiled.python and "rt.grads(" not in compiled.python
    agree_with_level0(source)


def test_two_grads_of_one_value_are_separate_steps():
    compiled = compile_plan(TWO_GRADS)
    assert len(compiled.plan.adjoint.steps) == 3
    out = agree_with_level0(TWO_GRADS)
    assert out.strip().splitlines()[-1] == "[0.0, 0.0, 0.0] ∈ ℝ[3]"


# ---------------------------------------------------------------- where the adjoint must not apply

AUTOGRAD_PROGRAMS = {
    "grad_in_function": ("""\
def dsq(y: ℝ, x: ℝ): ℝ:
    return grad(y, x)

a: ℝ = 3.0
b: ℝ = 0.5
loss = a * a * b
da = grad(loss, a)
da
dsq(a * a, a)
""", "inside the function"),
    "grad_of_grad": ("""\
x: ℝ = 3.0
g = grad(x * x * x, x)
gg = grad(g, x)
g
gg
""", "a derivative of a derivative"),
    "recurrence": ("""\
w: ℝ = 0.7
h: ℝ = 1.0
for t: ℕ(4):
    h = tanh(w * h + 0.5)
dw = grad(h, w)
dw
""", "`h`"),
}


@pytest.mark.parametrize("name", sorted(AUTOGRAD_PROGRAMS))
def test_adjoint_does_not_apply_and_autograd_agrees(name):
    source, why = AUTOGRAD_PROGRAMS[name]
    compiled = compile_plan(source)
    assert compiled.plan.adjoint.mode == "autograd"
    assert any(why in reason for _, reason in compiled.plan.adjoint.reasons), compiled.plan.adjoint.reasons
    agree_with_level0(source)


def test_an_integer_target_has_no_derivative():
    """`n: ℕ = 3` keeps its integer and gets a zero derivative (level 0's `track`), whether the
    module derives it at compile time or keeps autograd."""
    source = "n: ℕ = 3\ny = n * 2.0\nd = grad(y, n)\nd\nn\n"
    assert same_output(run_program(source, opt=0), "0.0 ∈ ℝ\n3 ∈ ℝ\n")
    agree_with_level0(source)


# ---------------------------------------------------------------- the seed, trained

def run_main(source: str, opt: int):
    from phc import runtime as rt
    compiled = pipeline.compile_source(source, "cnn_seed_short.phk", "torch", opt=opt)
    module, _ = load_module(compiled.python, f"seed_short_o{opt}_{next(_count)}")
    rt.manual_seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = module.main()
    return compiled, out.getvalue(), result


def test_seed_trains_alike_with_the_adjoint_and_at_level0(seed_source):
    """Two epochs on 8 images: the same printed losses and the same trained weights."""
    source = seed_source.replace("epochs: ℕ = 20", "epochs: ℕ = 2").replace("create_dataset(80, 100)",
                                                                            "create_dataset(80, 10)")
    assert source.count("epochs: ℕ = 2\n") == 1 and "create_dataset(80, 10)" in source
    compiled, out2, r2 = run_main(source, 2)
    assert compiled.plan.adjoint.mode == "adjoint", compiled.plan.adjoint.reasons
    assert {"conv2d", "pool2d", "linear", "softmax", "index", "field"} <= tape_kinds(compiled)
    _, out0, r0 = run_main(source, 0)
    assert len(out0.strip().splitlines()) == 2 and same_output(out2, out0, rel=1e-5), (out2, out0)
    for f in ("kernel", "b1", "w", "b2"):
        a, b = getattr(r2["cnn_object"], f), getattr(r0["cnn_object"], f)
        torch.testing.assert_close(torch.as_tensor(a).double(), torch.as_tensor(b).double(), rtol=1e-5, atol=1e-6)
    # the weights moved: the test compares training, not the initial values
    assert not torch.equal(torch.as_tensor(r2["cnn_object"].kernel), torch.tensor([[1.0, 0, -1]] * 3))
    for name in ("accuracy", "correct", "loss"):
        torch.testing.assert_close(torch.as_tensor(r2[name]).double(), torch.as_tensor(r0[name]).double(),
                                   rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- guarded views, bview, store

GUARDED_VIEWS = [  # reads past t's ends: those points read zeros and send nothing back
    ((6,), (-1,), ((1,),), (8,)),                   # x[i - 1], i < 8
    ((6,), (-2,), ((1,), (1,)), (6, 3)),            # x[i + k - 2]
    ((5, 6), (-1, 0), ((1, 0), (0, 1)), (7, 6)),    # x[i - 1, j]
    ((6,), (6,), ((-1,),), (8,)),                   # x[6 - i], reversed and past both ends
]


@pytest.mark.parametrize("shape,const,coeffs,sizes", GUARDED_VIEWS)
def test_guarded_view_vjp(shape, const, coeffs, sizes):
    check_vjp(lambda t: nests.view(t, const, coeffs, sizes, True), [rand(*shape)],
              lambda g, t: (A.view_vjp(g, t, const, coeffs, sizes, True),))


def test_view_vjp_of_a_transposed_read():
    """v[i, j] = t[j, i]: no two points read one element (the strided write-back path)."""
    check_vjp(lambda t: nests.view(t, (0, 0), ((0, 1), (1, 0)), (5, 4)), [rand(4, 5)],
              lambda g, t: (A.view_vjp(g, t, (0, 0), ((0, 1), (1, 0)), (5, 4)),))


BVIEWS = [  # t's shape, positions, rank, extents
    ((3, 4), (0, 2), 3, (3, 4)),        # t[i, k] over (i, j, k)
    ((3, 4), (1, 2), 3, (2, 3)),        # a nest that reads only t's first 2 x 3 entries
    ((5,), (1,), 2, (5,)),              # t[j] over (i, j)
    ((5,), (0,), 2, (4,)),
]


@pytest.mark.parametrize("shape,positions,rank,extents", BVIEWS)
def test_bview_vjp(shape, positions, rank, extents):
    t = rand(*shape)
    v = A.bview(t, positions, rank, extents)
    assert v.dim() == rank
    check_vjp(lambda t: A.bview(t, positions, rank, extents), [t],
              lambda g, t: (A.bview_vjp(g, t, positions, rank, extents),))


STORES = [  # t's shape, const, coeffs, sizes, the stored value's shape
    ((7,), (1,), ((2,),), (3,), (3,)),              # t[2*i + 1] = v[i]
    ((7,), (0,), ((1,),), (4,), ()),                # t[i] = s for i < 4
    ((4, 5), (1, 0), ((1, 0), (0, 1)), (2, 5), (2, 5)),
    ((4, 5), (0, 1), ((0, 1),), (4,), (4,)),        # t[0, i + 1] = v[i]
    ((6,), (5,), ((-1,),), (4,), (4,)),             # t[5 - i] = v[i] (a scatter)
]


@pytest.mark.parametrize("shape,const,coeffs,sizes,vshape", STORES)
def test_store_vjp(shape, const, coeffs, sizes, vshape):
    """The cotangent of the old tensor is g without the written elements (`unstored`), that of
    the stored value is g read where it was written (`dstore_value`: a view, summed to v)."""
    def f(t, v):
        return A.store(t.clone(), const, coeffs, sizes, v)

    def vjp(g, t, v):
        return A.unstored(g, const, coeffs, sizes), A.sum_to(nests.view(g, const, coeffs, sizes), v)
    check_vjp(f, [rand(*shape), rand(*vshape, seed=2)], vjp)


# ---------------------------------------------------------------- every example: adjoint against autograd

def shrunk_example(name: str) -> str:
    """The example with 2 epochs of 3 minibatches of 8 and a small test set."""
    import re
    from pathlib import Path
    src = (Path(__file__).resolve().parents[1] / "examples" / f"{name}.phk").read_text(encoding="utf-8")
    if name == "cnn_seed":
        return src.replace("epochs: ℕ = 20", "epochs: ℕ = 2").replace("create_dataset(80, 100)", "create_dataset(80, 10)")
    small = re.sub(r"epochs: ℕ = \d+", "epochs: ℕ = 2", src)
    small = re.sub(r"batch: ℕ = \d+", "batch: ℕ = 8", small)
    small = small.replace("n_batches: ℕ = n_train // batch", "n_batches: ℕ = 3")
    small = small.replace("X_test = data[1][0]", "X_test = data[1][0][0:16]")
    small = small.replace("y_test = data[1][1]", "y_test = data[1][1][0:16]")
    small = re.sub(r"create_mnist\(4000, 1000", "create_mnist(64, 16", small)
    assert small.count("epochs: ℕ = 2") == 1 and "n_batches: ℕ = 3" in small and "[0:16]" in small
    return small


def values_of(result: dict) -> dict:
    """Every tensor the program left in a variable, fields of instances included."""
    out = {}
    for name, v in result.items():
        if isinstance(v, torch.Tensor):
            out[name] = v
        for f in getattr(v, "_fields", ()):
            if isinstance(getattr(v, f), torch.Tensor):
                out[f"{name}.{f}"] = getattr(v, f)
    return out


@pytest.mark.parametrize("name", ["cnn_seed", "digits_convnet", "lenet5", "mnist_8kernels", "keras_style"])
def test_example_trains_alike_with_the_adjoint_and_with_autograd(name, monkeypatch):
    """The optimised module with compile-time adjoints and the same module on autograd (level 0
    is too slow for the larger networks): the same losses, accuracies and trained weights."""
    from phc.ir.adjoint import Adjoint
    source = shrunk_example(name)
    adjoint, out_adj, r_adj = run_main(source, 2)
    assert adjoint.plan.adjoint.mode == "adjoint", adjoint.plan.adjoint.reasons
    monkeypatch.setattr(pipeline, "differentiate", lambda module: Adjoint())
    autograd, out_auto, r_auto = run_main(source, 2)
    assert autograd.plan.adjoint.mode == "autograd" and "rt.grads(" in autograd.python
    assert out_adj.strip() and same_output(out_adj, out_auto, rel=1e-5), (out_adj, out_auto)
    a, b = values_of(r_adj), values_of(r_auto)
    assert a.keys() == b.keys() and any("." in k for k in a)
    for k in a:
        torch.testing.assert_close(a[k].detach().double(), b[k].detach().double(), rtol=1e-5, atol=1e-6,
                                   msg=lambda m, k=k: f"{k}: {m}")
