"""The vector-Jacobian products that compile-time adjoint code calls (`phc.ir.adjoint`).

Each function undoes exactly the layout glue of its forward twin in `runtime.idioms` (views to
the canonical 4-d layout, cuts to the nest's extents, flips for the tie rule) around the same
aten backward kernel autograd would have run, so the gradients are autograd's, without a tape.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import idioms

_aten = torch.ops.aten


def param(t):
    """A `grad` target's value in a module that differentiates at compile time: what `rt.leaf`
    makes of it (numbers and integer tensors become float32 tensors), with no `requires_grad`."""
    from .ops import device
    if isinstance(t, complex):
        return torch.tensor(t, dtype=torch.complex64, device=device())
    if not isinstance(t, torch.Tensor):
        return torch.tensor(float(t), dtype=torch.float32, device=device())
    if not (t.is_floating_point() or t.is_complex()):
        return t.to(torch.float32)
    return t


def sum_to(g, like):
    """g summed over the axes that broadcasting added to `like` (a binary op's adjoint)."""
    if g.shape == like.shape:
        return g
    return g.sum_to_size(like.shape)


def index_vjp(g, a, ix):
    """The adjoint of `a[ix]`: g at ix, zeros elsewhere."""
    d = torch.zeros_like(a)
    d[ix] = g
    return d


def zeros_for(y, x):
    """The derivative of y with respect to something it does not depend on (`rt.grads`'s rule)."""
    from .autograd import _zeros
    return _zeros(y, x)


def conv2d_vjp(g, x, w, stride: int, n_i: int, n_j: int, has_batch: bool, has_out: bool, has_chan: bool,
               padding: int, need_x: bool, need_w: bool):
    """(dx, dw) of `idioms.conv2d(x, w, stride, n_i, n_j, …)` without a channel cut or guards."""
    x4, w4 = idioms._as4(x, has_batch, has_chan), idioms._as4(w, has_out, has_chan)
    oh = (x4.shape[2] + 2 * padding - w4.shape[2]) // stride + 1
    ow = (x4.shape[3] + 2 * padding - w4.shape[3]) // stride + 1
    g4 = g.reshape(x4.shape[0], w4.shape[0], n_i, n_j)
    if (oh, ow) != (n_i, n_j):
        g4 = F.pad(g4, (0, ow - n_j, 0, oh - n_i))       # outputs the nest cut off: no gradient
    dx4, dw4, _ = _aten.convolution_backward(g4, x4, w4, None, [stride, stride], [padding, padding], [1, 1],
                                             False, [0, 0], 1, [need_x, need_w, False])
    return (dx4.reshape(x.shape) if need_x else None), (dw4.reshape(w.shape) if need_w else None)


def pool2d(x, kind: str, k: int, stride: int, n_i: int, n_j: int, ties: str, rank: int | None, scale: int):
    """`idioms.pool2d`'s value (times `scale`) and what its adjoint needs: for max and min, the
    element each window chose (the same choice as the forward's, ties included)."""
    if kind not in ("max", "min") or scale != 1:
        raise ValueError(f"pool2d: no adjoint for {kind!r} pooling scaled by {scale}")
    if rank is not None:
        idioms._check_rank(x, rank, "pooling")
    H, W = x.shape[-2], x.shape[-1]
    h, w = (n_i - 1) * stride + k, (n_j - 1) * stride + k
    if h > H or w > W:
        idioms._check_extent((H - k) // stride + 1, n_i, 0, "pooling")
        idioms._check_extent((W - k) // stride + 1, n_j, 1, "pooling")
    x3 = x[None] if x.dim() == 2 else x.reshape((-1,) + tuple(x.shape[-2:]))
    cut = h != H or w != W
    if cut:
        x3 = x3[..., :h, :w]
    flip = ties == "last"
    if flip:
        x3 = x3.flip(-2, -1)
    if kind == "min":
        x3 = -x3
    out, idx = _aten.max_pool2d_with_indices(x3, [k, k], [stride, stride])
    if kind == "min":
        out = -out
    if flip:
        out = out.flip(-2, -1)
    value = out.squeeze(0) if x.dim() == 2 else out.reshape(tuple(x.shape[:-2]) + tuple(out.shape[-2:]))
    return value, (x, x3, idx, k, stride, flip, cut)


def pool2d_vjp(g, saved):
    x, x3, idx, k, stride, flip, cut = saved
    g3 = g.reshape((x3.shape[0],) + tuple(g.shape[-2:]))
    if flip:
        g3 = g3.flip(-2, -1)
    d3 = _aten.max_pool2d_with_indices_backward(g3, x3, [k, k], [stride, stride], [0, 0], [1, 1], False, idx)
    if flip:
        d3 = d3.flip(-2, -1)
    if cut:
        d3 = F.pad(d3, (0, x.shape[-1] - d3.shape[-1], 0, x.shape[-2] - d3.shape[-2]))
    return d3.reshape(x.shape)


def linear_vjp(g, x, w, n_i: int, w_transposed: bool, n_k: int | None, need_x: bool, need_w: bool):
    """(dx, dw) of `idioms.linear(x, w, n_i, False, None, w_transposed, False, n_k)`: w2 @ x."""
    w2 = w.t() if w_transposed else w
    rows, cols = w2.shape
    k = cols if n_k is None else n_k
    w2c = w2[:n_i, :k] if (n_i, k) != (rows, cols) else w2
    xc = x[:k] if k != x.shape[0] else x
    dx = dw = None
    if need_x:
        dx = torch.mv(w2c.t(), g)
        if k != x.shape[0]:
            dx = F.pad(dx, (0, x.shape[0] - k))
    if need_w:
        dw = torch.outer(g, xc)
        if (n_i, k) != (rows, cols):
            dw = F.pad(dw, (0, cols - k, 0, rows - n_i))
        if w_transposed:
            dw = dw.t()
    return dx, dw
