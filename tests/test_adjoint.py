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
3. The seed, trained two epochs on a few images: the same losses and trained weights at both levels.
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
