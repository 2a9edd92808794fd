# ---- phc Triton prelude: imports, settings and helpers shared by the ops below ----
# TRITON_INTERPRET must be set before this runs: @triton.jit reads it when a kernel is defined.
import contextlib
import math
import os

import torch
import torch.nn.functional as _phc_F
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable


def _phc_interpreting():
    """True when Triton runs kernels with its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def _phc_configs(gpu, interp):
    # Autotuning under the interpreter is slow and measures nothing: one small config there.
    return interp if _phc_interpreting() else gpu


def _phc_pruner(sizes):
    """Drops configs whose blocks exceed their problem size (rounded up to a power of two,
    at least 16); keeps the smallest config when none fits."""
    def fits(config, args):
        return all(config.kwargs[block] <= max(16, triton.next_power_of_2(args[size]))
                   for block, size in sizes.items())

    def prune(configs, named_args, **kwargs):
        kept = [c for c in configs if fits(c, named_args)]
        return kept or [min(configs, key=lambda c: math.prod(c.kwargs[b] for b in sizes))]

    return {"early_config_prune": prune}


def _phc_use_triton(t):
    """Triton kernels run on CUDA tensors, or on any tensor under the interpreter."""
    return t.is_cuda or _phc_interpreting()


def _phc_device(t):
    # Triton launches on the current CUDA device; make it the tensor's.
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _phc_expect(ok, message):
    if not ok:
        raise ValueError(message)


def _phc_prepare(*tensors):
    """Common float dtype (float64 if any input has it, else float32), contiguous."""
    wide = any(t.dtype == torch.float64 for t in tensors)
    dtype = torch.float64 if wide else torch.float32
    for t in tensors:
        _phc_expect(t.numel() < 2**31, "tensor too large for 32-bit indexing in Triton kernels")
    return tuple(t.to(dtype).contiguous() for t in tensors)


def _phc_split(total):
    """Split of a long reduction of `total` terms over programs: (splits, chunk per split).
    Small chunks under the interpreter, so that CPU tests cover more than one split."""
    target = 64 if _phc_interpreting() else 4096
    splits = max(1, min(64, triton.cdiv(total, target)))
    return splits, max(1, triton.cdiv(total, splits))


def _phc_sum_splits(part):
    # Deterministic (no atomics): each split wrote its own slice.
    return part[0] if part.shape[0] == 1 else part.sum(0)


@triton.jit
def _phc_mac(acc, a, b, USE_DOT: tl.constexpr):
    """acc + a @ b. tl.dot needs tiles >= 16 on a GPU and defaults to TF32 there (hence ieee);
    smaller tiles use a broadcast product summed over the middle axis."""
    if USE_DOT:
        acc = tl.dot(a, b, acc, input_precision="ieee")
    else:
        acc += tl.sum(a[:, :, None] * b[None, :, :], axis=1)
    return acc


@triton.autotune(
    configs=_phc_configs(
        gpu=[
            triton.Config({"BLOCK_O": 1, "BLOCK_P": 1024}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_O": 4, "BLOCK_P": 256}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_O": 16, "BLOCK_P": 64}, num_warps=4, num_stages=2),
        ],
        interp=[
            triton.Config({"BLOCK_O": 4, "BLOCK_P": 16}, num_warps=4, num_stages=2),
        ],
    ),
    key=["O", "NP"],
    prune_configs_by=_phc_pruner({"BLOCK_O": "O", "BLOCK_P": "NP"}),
    cache_results=True,
)
@triton.jit
def _phc_bias_grad_kernel(
    g_ptr, part_ptr,
    O, NP, HW, CHUNK,
    BLOCK_O: tl.constexpr, BLOCK_P: tl.constexpr,
):
    """part[split, o] = sum of g[b, o, s] over one CHUNK of p = b * HW + s (g viewed as [B, O, HW])."""
    ro = tl.program_id(0) * BLOCK_O + tl.arange(0, BLOCK_O)
    split = tl.program_id(1)
    p_hi = tl.minimum(split * CHUNK + CHUNK, NP)
    acc = tl.zeros((BLOCK_O,), dtype=part_ptr.dtype.element_ty)
    for p0 in range(0, CHUNK, BLOCK_P):
        rp = split * CHUNK + p0 + tl.arange(0, BLOCK_P)
        offs = ((rp // HW)[None, :] * O + ro[:, None]) * HW + (rp % HW)[None, :]
        mask = (ro[:, None] < O) & (rp[None, :] < p_hi)
        acc += tl.sum(tl.load(g_ptr + offs, mask=mask, other=0.0), axis=1)
    tl.store(part_ptr + split * O + ro, acc, mask=ro < O)


def _phc_bias_grad(g, channels):
    """Sum of g over every axis but axis 1 (the channels): the gradient of a bias."""
    hw = max(1, g.numel() // max(1, g.shape[0] * channels))
    n = g.shape[0] * hw
    splits, chunk = _phc_split(n)
    part = torch.empty((splits, channels), device=g.device, dtype=g.dtype)
    if channels:
        grid = lambda meta: (triton.cdiv(channels, meta["BLOCK_O"]), splits)
        with _phc_device(g):
            _phc_bias_grad_kernel[grid](g, part, channels, n, hw, chunk)
    return _phc_sum_splits(part)
