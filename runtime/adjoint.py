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
    from .autograd import as_variable
    return as_variable(t)


def sum_to(g, like):
    """g summed over the axes that broadcasting added to `like` (a binary op's adjoint)."""
    if g.shape == like.shape:
        return g
    if like.dim() == 0:
        return g.sum()          # sum_to_size(()) takes three times as long
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
               padding: int, need_x: bool, need_w: bool, n_c: int | None = None, guarded: bool = False):
    """(dx, dw) of `idioms.conv2d(x, w, stride, n_i, n_j, has_batch, has_out, has_chan, None, padding,
    n_c, guarded)`: its layout steps undone around aten's convolution backward."""
    if not (has_batch or has_out or has_chan or guarded) and n_c is None and x.dim() == 2 and w.dim() == 2:
        # one image, one kernel (the seed): aten's backward on 4-d views
        x4, w4 = x.reshape((1, 1) + tuple(x.shape)), w.reshape((1, 1) + tuple(w.shape))
        oh = (x.shape[0] + 2 * padding - w.shape[0]) // stride + 1
        ow = (x.shape[1] + 2 * padding - w.shape[1]) // stride + 1
        g4 = g.reshape(1, 1, n_i, n_j)
        if (oh, ow) != (n_i, n_j):
            g4 = F.pad(g4, (0, ow - n_j, 0, oh - n_i))
        dx4, dw4, _ = _aten.convolution_backward(g4, x4, w4, None, [stride, stride], [padding, padding], [1, 1],
                                                 False, [0, 0], 1, [need_x, need_w, False])
        return (dx4.view(x.shape) if need_x else None), (dw4.view(w.shape) if need_w else None)
    x4, w4 = idioms._as4(x, has_batch, has_chan), idioms._as4(w, has_out, has_chan)
    full_c = (x4.shape[1], w4.shape[1])
    if n_c is not None:
        x4, w4 = idioms._cut(x4, 1, n_c, "convolution"), idioms._cut(w4, 1, n_c, "convolution")
    xin = idioms._pad_for_outputs(x4, w4.shape[2:], stride, padding, n_i, n_j) if guarded else x4
    oh = (xin.shape[2] + 2 * padding - w4.shape[2]) // stride + 1
    ow = (xin.shape[3] + 2 * padding - w4.shape[3]) // stride + 1
    g4 = g.reshape(xin.shape[0], w4.shape[0], n_i, n_j)
    if (oh, ow) != (n_i, n_j):
        g4 = F.pad(g4, (0, ow - n_j, 0, oh - n_i))       # outputs the nest cut off: no gradient
    dx4, dw4, _ = _aten.convolution_backward(g4, xin, w4, None, [stride, stride], [padding, padding], [1, 1],
                                             False, [0, 0], 1, [need_x, need_w, False])
    dx = dw = None
    if need_x:
        dx4 = dx4[..., :x4.shape[2], :x4.shape[3]] if guarded else dx4
        if dx4.shape[1] != full_c[0]:
            dx4 = F.pad(dx4, (0, 0, 0, 0, 0, full_c[0] - dx4.shape[1]))
        dx = dx4.reshape(x.shape)
    if need_w:
        if dw4.shape[1] != full_c[1]:
            dw4 = F.pad(dw4, (0, 0, 0, 0, 0, full_c[1] - dw4.shape[1]))
        dw = dw4.reshape(w.shape)
    return dx, dw


def pool2d(x, kind: str, k: int, stride: int, n_i: int, n_j: int, ties: str, rank: int | None, scale: int):
    """`idioms.pool2d`'s value (times `scale`) and what its adjoint needs: for max and min, the
    element each window chose (the same choice as the forward's, ties included)."""
    if kind not in ("max", "min") or scale != 1:
        raise ValueError(f"pool2d: no adjoint for {kind!r} pooling scaled by {scale}")
    if kind == "max" and x.dim() == 2 and (x.shape[0] - k) // stride + 1 == n_i \
            and (x.shape[1] - k) // stride + 1 == n_j and (n_i - 1) * stride + k == x.shape[0] \
            and (n_j - 1) * stride + k == x.shape[1]:
        # one map, windows covering it exactly (the seed): no cut, no rank glue
        x3 = x.unsqueeze(0)
        flip = ties == "last"
        if flip:
            x3 = x3.flip(-2, -1)
        out, idx = _aten.max_pool2d_with_indices(x3, [k, k], [stride, stride])
        return (out.flip(-2, -1) if flip else out).view(n_i, n_j), (x, x3, idx, k, stride, flip, False)
    flip = ties == "last"
    x3, cut = idioms.pool_input(x, k, stride, n_i, n_j, flip, rank)
    if kind == "min":
        x3 = -x3
    out, idx = _aten.max_pool2d_with_indices(x3, [k, k], [stride, stride])
    return idioms.pool_output(-out if kind == "min" else out, x, flip), (x, x3, idx, k, stride, flip, cut)


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


def linear_vjp(g, x, w, n_i: int, w_transposed: bool, n_k: int | None, need_x: bool, need_w: bool,
               has_batch: bool = False, x_transposed: bool = False):
    """(dx, dw) of `idioms.linear(x, w, n_i, has_batch, None, w_transposed, x_transposed, n_k)`:
    w2 @ x for a vector, x2 @ w2.T for a batch (x2 = x, or x.T when transposed)."""
    w2 = w.t() if w_transposed else w
    rows, cols = w2.shape
    k = cols if n_k is None else n_k
    if not has_batch and n_i == rows and k == cols == x.shape[0]:
        # a whole matrix times a vector (the seed): the two products, nothing else
        dw = (torch.outer(g, x).t() if w_transposed else torch.outer(g, x)) if need_w else None
        return (torch.mv(w2.t(), g) if need_x else None), dw
    w2c = w2[:n_i, :k] if (n_i, k) != (rows, cols) else w2
    x2 = (x.t() if x_transposed else x) if has_batch else x.unsqueeze(0)
    xc = x2[:, :k] if k != x2.shape[1] else x2
    dx = dw = None
    if not has_batch:                           # a vector: the products as they are
        if need_x:
            dx = torch.mv(w2c.t(), g)
            dx = F.pad(dx, (0, x.shape[0] - k)) if k != x.shape[0] else dx
        if need_w:
            dw = torch.outer(g, xc.squeeze(0))
            dw = F.pad(dw, (0, cols - k, 0, rows - n_i)) if (n_i, k) != (rows, cols) else dw
            dw = dw.t() if w_transposed else dw
        return dx, dw
    g2 = g
    if need_x:
        dx2 = g2 @ w2c
        if k != x2.shape[1]:
            dx2 = F.pad(dx2, (0, x2.shape[1] - k))
        dx = (dx2.t() if x_transposed else dx2) if has_batch else dx2.squeeze(0)
    if need_w:
        dw = g2.t() @ xc if has_batch else torch.outer(g, xc.squeeze(0))
        if (n_i, k) != (rows, cols):
            dw = F.pad(dw, (0, cols - k, 0, rows - n_i))
        if w_transposed:
            dw = dw.t()
    return dx, dw


def matmul_vjp(g, a, b, need_a: bool, need_b: bool):
    """(da, db) of `a @ b` (torch.matmul's ranks: vectors, matrices, equal-rank batches)."""
    da = db = None
    if a.dim() == 1 and b.dim() == 1:           # a dot product
        da, db = g * b, g * a
    elif a.dim() == 1:                          # a @ B: (k) @ (…, k, n) -> (…, n)
        da = sum_to((b @ g.unsqueeze(-1)).squeeze(-1), a) if need_a else None
        db = a.unsqueeze(-1) * g.unsqueeze(-2) if need_b else None
    elif b.dim() == 1:                          # A @ b: (…, m, k) @ (k) -> (…, m)
        da = g.unsqueeze(-1) * b if need_a else None
        db = sum_to((a.mT @ g.unsqueeze(-1)).squeeze(-1), b) if need_b else None
    else:
        da = sum_to(g @ b.mT, a) if need_a else None
        db = sum_to(a.mT @ g, b) if need_b else None
    return (da if need_a else None), (db if need_b else None)


def sum_vjp(g, x, k: int):
    """The adjoint of summing x's trailing k axes: g broadcast back over them."""
    return g.reshape(tuple(g.shape) + (1,) * k).expand(x.shape)


def extremum(x, k: int, op: str):
    """`rt.nests.extremum` over x's trailing k axes, and the flat position of the first extreme
    of each (the element a strict `if x > m` scan keeps, which gets the whole gradient)."""
    from .nests import extremum as value_of
    dims = tuple(range(x.dim() - k, x.dim()))
    if x.numel() == 0 or any(x.shape[d] == 0 for d in dims):
        return value_of(x, dims, op), None
    flat = x.flatten(dims[0]) if k else x.unsqueeze(-1)
    found = flat.max(dim=-1) if op == "max" else flat.min(dim=-1)
    return found.values, found.indices


def extremum_vjp(g, x, k: int, at):
    """The whole cotangent of each reduced group to the element `extremum` chose."""
    if at is None:
        return torch.zeros_like(x)
    lead = tuple(x.shape[:x.dim() - k])
    inner = 1
    for s in x.shape[x.dim() - k:]:
        inner *= s
    d = torch.zeros(lead + (inner,), dtype=g.dtype, device=g.device)
    d.scatter_(-1, at.unsqueeze(-1), g.unsqueeze(-1))
    return d.reshape(x.shape)


def view_vjp(g, t, const, coeffs, sizes, guarded: bool = False):
    """The adjoint of `rt.nests.view(t, const, coeffs, sizes, guarded)`: each point's cotangent
    added to the element it read (accumulated: a view may read one element at several points);
    a guarded point outside t read a zero and sends nothing. A view that reads each element at
    most once (no overlap, all in range) is written back through the same strides."""
    from .nests import _ranges, index_tensors
    d = torch.zeros_like(t)
    ranges = _ranges(t.shape, const, coeffs, sizes)
    inside = ranges is None or all(lo >= 0 and hi < t.shape[k] for k, (lo, hi) in enumerate(ranges))
    if inside and all(c >= 0 for row in coeffs for c in row):
        st = d.stride()
        strides = [sum(row[k] * st[k] for k in range(len(st))) for row in coeffs]
        if _no_overlap(sizes, strides):
            offset = sum(c * s for c, s in zip(const, st))
            d.as_strided(sizes, strides, offset).copy_(g.expand(*sizes))
            return d
    idx = [i.expand(*sizes) for i in index_tensors(const, coeffs, sizes, t.device)]
    g = g.expand(*sizes)
    if guarded and not inside:
        ok = torch.ones(tuple(sizes), dtype=torch.bool, device=t.device)
        for k, i in enumerate(idx):
            ok &= (i >= 0) & (i < t.shape[k])
        idx = [i.clamp(0, max(t.shape[k] - 1, 0)) for k, i in enumerate(idx)]
        g = torch.where(ok, g, torch.zeros((), dtype=g.dtype, device=g.device))
    d.index_put_(tuple(idx), g, accumulate=True)
    return d


def _no_overlap(sizes, strides) -> bool:
    """Whether distinct points of a strided view are distinct elements (strides sorted, each
    at least the span of the ones below it)."""
    span = 1
    axes = sorted((st, sz) for sz, st in zip(sizes, strides) if sz > 1)
    for st, sz in axes:
        if st < span:
            return False
        span = st * sz
    return True


def bview(t, positions, rank: int, extents):
    """`t[i, j]` read over a nest of `rank` axes whose axes `positions` are i, j (the others
    broadcast): t's first `extents` entries, unit axes put in. Bounds as `rt.nests.view`'s."""
    for k, n in enumerate(extents):
        if n > t.shape[k] and n > 0:
            raise IndexError(f"index {t.shape[k]} is out of range for axis {k} of size {t.shape[k]}")
    if tuple(t.shape) != tuple(extents):
        t = t[tuple(slice(0, n) for n in extents)]
    shape = [1] * rank
    for p, n in zip(positions, extents):
        shape[p] = n
    return t.reshape(shape)


def bview_vjp(g, t, positions, rank: int, extents):
    d = g.reshape(tuple(extents))
    if tuple(t.shape) != tuple(extents):
        d = F.pad(d, [x for k in reversed(range(t.dim())) for x in (0, t.shape[k] - extents[k])])
    return d


def store(t, const, coeffs, sizes, value):
    """`rt.nests.store(t, …, value)` of a nest that writes each element at most once (proved at
    compile time): through the strided view when the coefficients allow, else index_put."""
    from .nests import _bounds, store as scatter
    if any(c < 0 for row in coeffs for c in row):
        return scatter(t, const, coeffs, sizes, value)
    _bounds(t.shape, const, coeffs, sizes)
    st = t.stride()
    strides = [sum(row[k] * st[k] for k in range(len(st))) for row in coeffs]
    offset = t.storage_offset() + sum(c * s for c, s in zip(const, st))
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value, dtype=t.dtype, device=t.device)
    t.as_strided(sizes, strides, offset).copy_(value.to(t.dtype).expand(*sizes))
    return t


def unstored(g, const, coeffs, sizes):
    """The cotangent of what a store overwrote: g with the written elements zeroed."""
    return store(g.clone(), const, coeffs, sizes, 0.0)


def logic(op: str, *args):
    """`and`/`or`/`not` of a nest's conditions, some of which may be host bools (0-d tensors then)."""
    ts = [a if isinstance(a, torch.Tensor) else torch.as_tensor(bool(a)) for a in args]
    if op == "not":
        return torch.logical_not(ts[0])
    return torch.logical_and(*ts) if op == "and" else torch.logical_or(*ts)


def own(x):
    """A copy of a tensor that a field will own (it is then updated in place, phc.ir.inplace)."""
    return x.clone() if isinstance(x, torch.Tensor) else x


def sub_(t, e):
    """`t - e` written into t (proved dead once replaced); a new tensor where e broadcasts t to
    another shape or dtype."""
    if isinstance(t, torch.Tensor) and isinstance(e, torch.Tensor) and e.shape == t.shape and e.dtype == t.dtype:
        return t.sub_(e)
    return t - e


def sub_scaled_(t, s, g):
    """`t - s * g` written into t: one kernel where s is a number and g has t's shape and dtype."""
    if isinstance(s, (int, float)) and not isinstance(s, bool) and isinstance(t, torch.Tensor) \
            and isinstance(g, torch.Tensor) and g.shape == t.shape and g.dtype == t.dtype:
        return t.sub_(g, alpha=s)
    return sub_(t, s * g)


def ix(i):
    """An index as a Python int where it is a CPU tensor of one integer: `t[3]` and `d[3] = g`
    take the fast path that `t[tensor(3)]` (advanced indexing) does not."""
    if isinstance(i, torch.Tensor) and i.dim() == 0 and not i.is_floating_point() and i.device.type == "cpu":
        return int(i)
    return i
