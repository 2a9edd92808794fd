"""Run-time support for vectorised loop nests (the torch backend's universal path).

An affine load `t[c_0 + Σ_a k_a0·i_a, c_1 + Σ_a k_a1·i_a, …]` inside a nest with loop axes
`i_0 … i_{A-1}` of sizes `n_a` is one strided view of `t` with an axis per loop: `view` builds it
after checking, with integers only, that no index can leave the tensor (`as_strided` itself
would read any memory). Negative coefficients (a flipped kernel) take an indexed gather instead.
"""
from __future__ import annotations

import torch

from .errors import DataIndexError


def _ranges(shape, const, coeffs, sizes):
    """Per axis of the tensor, the lowest and highest index the nest reads (None: nothing)."""
    if any(n <= 0 for n in sizes):
        return None                 # an empty loop reads nothing
    out = []
    for d in range(len(shape)):
        lo = hi = const[d]
        for a, n in enumerate(sizes):
            c = coeffs[a][d]
            if c > 0:
                hi += c * (n - 1)
            else:
                lo += c * (n - 1)
        out.append((lo, hi))
    return out


def _bounds(shape, const, coeffs, sizes):
    for d, r in enumerate(_ranges(shape, const, coeffs, sizes) or ()):
        lo, hi = r
        if lo < 0 or hi >= shape[d]:
            bad = lo if lo < 0 else hi
            raise IndexError(f"index {bad} is out of range for axis {d} of size {shape[d]}")


def view(t: torch.Tensor, const, coeffs, sizes, guarded: bool = False, trailing: bool = False) -> torch.Tensor:
    """The tensor `v[i_0, …] = t[const + Σ_a coeffs[a]·i_a]`, of shape `sizes`.

    `guarded`: the load sits in a branch of a select that discards out-of-range points (zero
    padding written as a guard), so out-of-range reads see zeros instead of raising."""
    shape = t.shape
    if trailing and len(const) < len(shape):
        # `X[i]` of a rank-3 X inside `[X[i] for i …]`: the sub-tensor's axes come last
        k = len(const)
        if any(c < 0 for row in coeffs for c in row) and not guarded:
            # a reversed gather is a fresh tensor, not a view of `t` (class P): index the
            # leading axes with advanced indexing, which keeps the trailing ones
            _bounds(shape[:k], const, coeffs, sizes)
            idx = index_tensors(const, coeffs, sizes, t.device)
            return t[tuple(i.expand(*sizes) for i in idx)]
        inner = view(t, const + (0,) * (len(shape) - k), tuple(tuple(r) + (0,) * (len(shape) - k) for r in coeffs),
                     sizes, guarded)
        st, rest = t.stride(), tuple(shape[k:])
        return inner.as_strided(tuple(sizes) + rest, inner.stride() + st[k:], inner.storage_offset())
    if len(const) != len(shape):
        raise IndexError(f"{len(const)} indices for a tensor of rank {len(shape)}")
    if guarded:
        t, const = _pad_to(t, const, _ranges(shape, const, coeffs, sizes))
        shape = t.shape
    _bounds(shape, const, coeffs, sizes)
    if any(c < 0 for row in coeffs for c in row):
        return _gather(t, const, coeffs, sizes)
    st = t.stride()
    strides = [sum(row[d] * st[d] for d in range(len(st))) for row in coeffs]
    offset = t.storage_offset() + sum(c * s for c, s in zip(const, st))
    return t.as_strided(sizes, strides, offset)


def _pad_to(t, const, ranges):
    if ranges is None:
        return t, const
    pads, new_const = [], list(const)
    for d, (lo, hi) in enumerate(ranges):
        before, after = max(0, -lo), max(0, hi - t.shape[d] + 1)
        pads.append((before, after))
        new_const[d] = const[d] + before
    if not any(b or a for b, a in pads):
        return t, const
    flat = [x for b, a in reversed(pads) for x in (b, a)]
    return torch.nn.functional.pad(t, flat), tuple(new_const)


def index_tensors(const, coeffs, sizes, device=None):
    """One broadcastable index tensor per axis of the target: `const_d + Σ_a coeffs[a][d]·i_a`."""
    rank = len(sizes)
    out = []
    for d in range(len(const)):
        idx = torch.full((1,) * rank, const[d], dtype=torch.long, device=device)
        for a, n in enumerate(sizes):
            c = coeffs[a][d]
            if c:
                shape = [1] * rank
                shape[a] = n
                idx = idx + c * torch.arange(n, device=device).view(shape)
        out.append(idx)
    return out


def _gather(t, const, coeffs, sizes):
    return t[tuple(index_tensors(const, coeffs, sizes, t.device))].expand(*sizes)


def store(t: torch.Tensor, const, coeffs, sizes, value, accumulate: bool = False) -> torch.Tensor:
    """`t[const + Σ coeffs·i] = value` (or `+= value`, summing repeated elements) for every point
    of the nest, in place (visible through aliases, as in Physika)."""
    _bounds(t.shape, const, coeffs, sizes)
    idx = index_tensors(const, coeffs, sizes, t.device)
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value, dtype=t.dtype, device=t.device)
    value = value.to(t.dtype).expand(*sizes)
    t.index_put_(tuple(i.expand(*sizes) for i in idx), value, accumulate=accumulate)
    return t


def arange(n: int, axis: int, rank: int, lo=0, device=None) -> torch.Tensor:
    """The values of loop index `axis` (lo, lo+1, …) shaped to broadcast over a rank-`rank` nest."""
    shape = [1] * rank
    shape[axis] = n
    return torch.arange(lo, lo + n, device=device).view(shape)


def full(sizes, value, device=None, dtype=torch.float32) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.expand(*sizes).clone()
    return torch.full(tuple(int(s) for s in sizes), value, dtype=dtype, device=device)


def gather(t: torch.Tensor, index, rank: int, trailing: bool = False) -> torch.Tensor:
    """`t[i0, i1, …]` where each index is a value (a Python number or a tensor broadcast over a
    rank-`rank` nest), read as the loop it replaces reads one point (`rt.to_index`, Python's
    indexing): real indices truncate toward zero, a negative index counts from the end, an index
    outside [-size, size) raises — naming the first point in loop order that reads outside."""
    parts = []
    for i in index:
        i = torch.as_tensor(i, device=t.device)
        if i.is_floating_point():
            i = i.trunc()
        i = i.long()
        parts.append(i.reshape((1,) * (rank - i.dim()) + tuple(i.shape)) if i.dim() < rank else i)
    _gather_bounds(t.shape, parts)
    if len(index) < t.dim() and not trailing:
        raise IndexError(f"{len(index)} indices for a tensor of rank {t.dim()}")
    return t[tuple(parts)]


def _gather_bounds(shape, parts) -> None:
    """Raise `DataIndexError` for the first point (row-major: the loop's order) whose index is
    outside its axis, on the first such axis; nothing (one test per axis) when all are inside."""
    outside = [(i < -shape[d]) | (i >= shape[d]) for d, i in enumerate(parts)]
    if not any(bool(o.any()) for o in outside):
        return
    points = torch.broadcast_shapes(*(o.shape for o in outside))
    first = None                    # (flat point, axis)
    for d, o in enumerate(outside):
        hits = o.expand(points).reshape(-1).nonzero()
        if hits.numel() and (first is None or int(hits[0]) < first[0]):
            first = (int(hits[0]), d)
    at, d = first
    bad = int(parts[d].expand(points).reshape(-1)[at])
    raise DataIndexError(f"index {bad} is out of range for axis {d} of size {shape[d]}")


def subscript(t: torch.Tensor, parts) -> torch.Tensor:
    """Python slicing `t[p0, p1, …]`: per axis an index or a `slice` (negative steps too, which
    torch's own slicing refuses); an index outside the axis raises."""
    axis = 0
    for p in parts:
        if isinstance(p, slice):
            if p.step is None or p.step > 0:
                t = t[(slice(None),) * axis + (p,)]
            else:
                idx = list(range(t.shape[axis])[p])
                t = t.index_select(axis, torch.tensor(idx, dtype=torch.long, device=t.device))
            axis += 1
        else:
            size = t.shape[axis]
            if not -size <= p < size:
                raise IndexError(f"index {p} is out of range for axis {axis} of size {size}")
            t = t.select(axis, p)
    return t


def _as_tensors(items):
    """Python numbers and tensors as tensors of one common dtype, on the run's device."""
    from .ops import device
    ts = [v if isinstance(v, torch.Tensor) else torch.as_tensor(v, device=device()) for v in items]
    dtype = ts[0].dtype
    for t in ts[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype == torch.float64:
        dtype = torch.float32
    return [t.to(dtype) for t in ts]


def stack_values(items, sizes) -> torch.Tensor:
    """The tensor of shape `sizes` + (element shape) whose points are `items` (row-major): a
    tabulation evaluated point by point on the host."""
    if not items:
        from .ops import device
        return torch.zeros(tuple(sizes), device=device())
    ts = _as_tensors(items)
    return torch.stack(ts).reshape(tuple(sizes) + tuple(ts[0].shape))


def reduce_values(op: str, items, lo: int = 0):
    """A reduction evaluated point by point: `op` of `items` (row-major over its axes)."""
    if not items:
        return {"add": 0.0, "mul": 1.0, "max": -float("inf"), "min": float("inf")}.get(op, lo)
    t = torch.stack(_as_tensors(items))
    if op == "add":
        return t.sum(dim=0)
    if op == "mul":
        return t.prod(dim=0)
    if op == "max":
        return t.max(dim=0).values
    if op == "min":
        return t.min(dim=0).values
    first = t.argmax(dim=0) if op == "argmax" else t.argmin(dim=0)
    return first + lo


def extremum(body: torch.Tensor, dims, op: str):
    """The maximum/minimum over `dims` (contiguous); over an empty range the identity (-inf / +inf)."""
    if body.numel() == 0 or any(body.shape[d] == 0 for d in dims):
        shape = [s for d, s in enumerate(body.shape) if d not in dims]
        fill = -float("inf") if op == "max" else float("inf")
        return torch.full(shape, fill, dtype=body.dtype, device=body.device)
    # the first extremum gets the whole gradient, as in a strict scan (`amax` splits it)
    flat = body.flatten(dims[0], dims[-1]) if len(dims) > 1 else body
    found = flat.max(dim=dims[0]) if op == "max" else flat.min(dim=dims[0])
    return found.values


def arg_extremum(body: torch.Tensor, dim: int, fn: str, lo):
    """`argmax`/`argmin` over `dim` plus `lo`; over an empty range `lo` (a select discards it)."""
    if body.shape[dim] == 0:
        shape = [s for d, s in enumerate(body.shape) if d != dim]
        return torch.full(shape, lo, dtype=torch.long, device=body.device)
    return getattr(body, fn)(dim=dim) + lo


def host_select(cond, a, b):
    """`torch.where(cond, a, b)` for a host condition: the chosen branch, broadcast against the
    other so that the shape (and dtype promotion) is the same whichever is chosen."""
    if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
        return a if cond else b
    ref = a if isinstance(a, torch.Tensor) else b
    ta = a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=ref.dtype, device=ref.device)
    tb = b if isinstance(b, torch.Tensor) else torch.as_tensor(b, dtype=ref.dtype, device=ref.device)
    shape = torch.broadcast_shapes(ta.shape, tb.shape)
    dtype = torch.promote_types(ta.dtype, tb.dtype)
    return (ta if cond else tb).to(dtype).expand(shape)


def read(v):
    """An indexed read as a value: a view of a tensor is copied (a gather already is a copy);
    anything else as it is."""
    return v.clone() if isinstance(v, torch.Tensor) and v._base is not None else v
