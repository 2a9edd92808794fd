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
