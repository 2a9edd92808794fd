"""Glue between matched idioms and their kernels: reshape the program's tensors into the canonical
layouts, call `torch.nn.functional` (impl None) or a rendered Triton wrapper (impl), and give back
exactly what the loop nest computes — including the nest's own extents, which are checked, so a
program whose loops would read outside the input fails as the loop would, never silently.

What the matchers (`phc.select.idioms`) proved is not checked again here: batch, output-channel
and pooled leading loops cover their tensor's whole axis. What they could not prove is handled
here: spatial and output-feature extents (the output is cut to them), and a reduction extent that
covers one operand but maybe not the other (both are cut to it)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_extent(have: int, want: int, axis: int, what: str):
    if want > have:
        raise IndexError(f"the {what} reads past the input: {want} outputs along axis {axis}, "
                         f"but the input allows {have}")


def _cut(t, dim: int, n: int, what: str):
    """t's first n entries along `dim`: the loop reads no more (and raises if there are fewer)."""
    if t.shape[dim] < n:
        raise IndexError(f"the {what} reads index {n - 1} of an axis of size {t.shape[dim]}")
    return t if t.shape[dim] == n else t.narrow(dim, 0, n)


def _as4(t, lead: bool, chan: bool):
    """t with the optional leading axes (batch or output channel; channel) made explicit."""
    if lead and chan:
        return t
    # unsqueeze, not t[None, None]: indexing goes through Python's slow path
    return t.unsqueeze(0).unsqueeze(0) if not (lead or chan) else t.unsqueeze(1) if lead else t.unsqueeze(0)


def conv2d(x, w, stride: int, n_i: int, n_j: int, has_batch: bool, has_out: bool, has_chan: bool,
           impl=None, padding: int = 0, n_c: int | None = None, guarded: bool = False):
    """Σ_{c<n_c,ki,kj} x[b?, c?, s·i+ki-p, s·j+kj-p] · w[o?, c?, ki, kj] for i < n_i, j < n_j.
    guarded: every read is guarded by the input's bounds (zero padding), so outputs beyond the
    padded input are sums of zeros, not out-of-range reads."""
    if impl is None and not (has_batch or has_out or has_chan or guarded) and n_c is None \
            and x.dim() == 2 and w.dim() == 2:
        # one image, one kernel (the seed): the op itself on 4-d views, no layout glue
        out = torch.conv2d(x.reshape((1, 1) + tuple(x.shape)), w.reshape((1, 1) + tuple(w.shape)), None,
                           stride, padding)
        out = out.view(out.shape[2:])
        if out.shape[0] != n_i or out.shape[1] != n_j:
            _check_extent(out.shape[0], n_i, 0, "convolution")
            _check_extent(out.shape[1], n_j, 1, "convolution")
            out = out[:n_i, :n_j]
        return out
    x4, w4 = _as4(x, has_batch, has_chan), _as4(w, has_out, has_chan)
    if x4.dim() != 4 or w4.dim() != 4:
        raise IndexError(f"conv2d: input of rank {x.dim()} and weight of rank {w.dim()} do not fit the loop")
    if n_c is not None:
        x4, w4 = _cut(x4, 1, n_c, "convolution"), _cut(w4, 1, n_c, "convolution")
    if guarded:
        x4 = _pad_for_outputs(x4, w4.shape[2:], stride, padding, n_i, n_j)
    out = F.conv2d(x4, w4, None, stride, padding) if impl is None else impl(x4, w4)
    oh, ow = out.shape[2], out.shape[3]
    if oh != n_i or ow != n_j:
        _check_extent(oh, n_i, 0, "convolution")
        _check_extent(ow, n_j, 1, "convolution")
        out = out[:, :, :n_i, :n_j]
    # squeeze, not indexing: a select's backward allocates a zero tensor and copies into it
    if has_batch and has_out:
        return out
    return out.reshape(out.shape[2:]) if not (has_batch or has_out) else out.squeeze(1) if has_batch else out.squeeze(0)


def _pad_for_outputs(x4, kernel, stride: int, padding: int, n_i: int, n_j: int):
    """x4 with enough zeros below and to the right that a padded conv gives n_i × n_j outputs."""
    extra = [max(0, (n - 1) * stride + k - (size + 2 * padding))
             for n, k, size in zip((n_i, n_j), kernel, x4.shape[2:])]
    return F.pad(x4, (0, extra[1], 0, extra[0])) if any(extra) else x4


def _check_rank(t, rank: int, what: str):
    """The loop reads elements of t, not sub-tensors (the IR carries no ranks: a load with fewer
    indices than t's rank is a sub-tensor, which the idiom would misread)."""
    if t.dim() != rank:
        raise IndexError(f"{what}: the loop indexes a tensor of rank {t.dim()} with {rank} indices")


def pool2d(x, kind: str, k: int, stride: int, n_i: int, n_j: int, ties: str = "first", impl=None,
           rank: int | None = None):
    """max/min/avg over k×k windows at stride s of the last two axes, for i < n_i, j < n_j.
    ties="last": the gradient goes to the last extreme of the window in row-major order (what a
    tree of `if a > b` selects), otherwise to the first (PyTorch's rule)."""
    flip = ties == "last" and kind != "avg"
    x3, _ = pool_input(x, k, stride, n_i, n_j, flip, rank)
    if impl is not None:
        out = impl(x3[:, None])[:, 0]
    elif kind == "avg":
        out = F.avg_pool2d(x3, k, stride)
    elif kind == "max":
        out = torch.max_pool2d(x3, k, stride)   # the op itself: F.max_pool2d is a Python dispatcher
    else:
        out = -torch.max_pool2d(-x3, k, stride)
    return pool_output(out, x, flip)


def pool_input(x, k: int, stride: int, n_i: int, n_j: int, flip: bool, rank: int | None):
    """x's maps as [N, h, w] (the leading axes one), cut to the h×w the n_i×n_j windows read
    (raising if x is too small, as the loop would), reversed where `flip`: the first extreme of
    the reversed window is the last one (exact ties of a window's maximum are rare, but they
    decide where the gradient goes). Also whether it was cut."""
    if rank is not None:
        _check_rank(x, rank, "pooling")
    H, W = x.shape[-2], x.shape[-1]
    h, w = (n_i - 1) * stride + k, (n_j - 1) * stride + k
    if h > H or w > W:
        _check_extent((H - k) // stride + 1, n_i, 0, "pooling")
        _check_extent((W - k) // stride + 1, n_j, 1, "pooling")
    x3 = x[None] if x.dim() == 2 else x.reshape((-1,) + tuple(x.shape[-2:]))
    cut = h != H or w != W
    if cut:
        x3 = x3[..., :h, :w]
    return (x3.flip(-2, -1) if flip else x3), cut


def pool_output(out, x, flip: bool):
    """The pooled [N, n_i, n_j] back in x's order and leading axes."""
    if flip:
        out = out.flip(-2, -1)
    return out.squeeze(0) if x.dim() == 2 else out.reshape(tuple(x.shape[:-2]) + tuple(out.shape[-2:]))


def linear(x, w, n_i: int, has_batch: bool, impl=None, w_transposed: bool = False,
           x_transposed: bool = False, n_k: int | None = None):
    """Σ_{k<n_k} w[i, k] · x[b?, k] for i < n_i (w[k, i] when transposed; x[k, b] likewise)."""
    _check_rank(w, 2, "matrix product")
    _check_rank(x, 2 if has_batch else 1, "matrix product")
    w2 = w.t() if w_transposed else w
    _check_extent(w2.shape[0], n_i, 0, "matrix product")
    if w2.shape[0] != n_i:
        w2 = w2[:n_i]
    if impl is None and not has_batch:     # the vector as it is: no unsqueeze/select round trip
        if n_k is not None:
            w2, x = _cut(w2, 1, n_k, "matrix product"), _cut(x, 0, n_k, "matrix product")
        return torch.mv(w2, x)
    x2 = ((x.t() if x_transposed else x) if has_batch else x.unsqueeze(0))
    if n_k is not None:
        w2, x2 = _cut(w2, 1, n_k, "matrix product"), _cut(x2, 1, n_k, "matrix product")
    out = F.linear(x2, w2) if impl is None else impl(x2.contiguous(), w2.contiguous())
    return out if has_batch else out.squeeze(0)
