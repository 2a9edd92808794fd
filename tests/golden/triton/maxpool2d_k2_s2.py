# ---- _phc_maxpool2d_k2_s2: max pooling, 2x2 window, stride 2, no padding ----
# x[B, C, H, W] -> y[B, C, OH, OW]; OH = (H - 2) // 2 + 1.
# The pick is the first max in row-major window order, NaN winning (as torch.max_pool2d).


@triton.autotune(
    configs=_phc_configs(
        gpu=[
            triton.Config({"BLOCK": 128}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK": 256}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK": 512}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK": 1024}, num_warps=4, num_stages=2),
        ],
        interp=[
            triton.Config({"BLOCK": 32}, num_warps=4, num_stages=2),
        ],
    ),
    key=["NOUT"],
    prune_configs_by=_phc_pruner({"BLOCK": "NOUT"}),
    cache_results=True,
)
@triton.jit
def _phc_maxpool2d_k2_s2_fwd_kernel(
    x_ptr, y_ptr,
    NOUT, H, W, OH, OW,
    BLOCK: tl.constexpr,
):
    """One lane per output element."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < NOUT
    plane = offs // (OH * OW)
    hw = offs % (OH * OW)
    base = x_ptr + plane * (H * W) + (hw // OW) * 2 * W + (hw % OW) * 2
    best = tl.load(base, mask=live, other=-float("inf"))
    for kk in tl.static_range(1, 4):
        v = tl.load(base + (kk // 2) * W + kk % 2, mask=live, other=-float("inf"))
        best = tl.where((v > best) | (v != v), v, best)
    tl.store(y_ptr + offs, best, mask=live)


@triton.autotune(
    configs=_phc_configs(
        gpu=[
            triton.Config({"BLOCK": 128}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK": 256}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK": 512}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK": 1024}, num_warps=4, num_stages=2),
        ],
        interp=[
            triton.Config({"BLOCK": 32}, num_warps=4, num_stages=2),
        ],
    ),
    key=["NIN"],
    prune_configs_by=_phc_pruner({"BLOCK": "NIN"}),
    cache_results=True,
)
@triton.jit
def _phc_maxpool2d_k2_s2_bwd_kernel(
    x_ptr, g_ptr, dx_ptr,
    NIN, H, W, OH, OW,
    BLOCK: tl.constexpr,
):
    """One lane per input element, gathering from the (at most 1x1) windows that hold it:
    deterministic, no atomics, even where windows overlap."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < NIN
    plane = offs // (H * W)
    ih = (offs % (H * W)) // W
    iw = offs % W
    acc = tl.zeros((BLOCK,), dtype=dx_ptr.dtype.element_ty)
    for dh in tl.static_range(1):
        for dw in tl.static_range(1):
            oh = ih // 2 - dh
            ow = iw // 2 - dw
            kh = ih - oh * 2
            kw = iw - ow * 2
            inside = live & (oh >= 0) & (ow >= 0) & (oh < OH) & (ow < OW) & (kh < 2) & (kw < 2)
            gv = tl.load(g_ptr + (plane * OH + oh) * OW + ow, mask=inside, other=0.0)
            # Recompute the window's pick; this lane gets gv when it is the pick.
            base = x_ptr + plane * (H * W) + oh * 2 * W + ow * 2
            best = tl.load(base, mask=inside, other=0.0)
            pick = tl.zeros((BLOCK,), dtype=tl.int32)
            for kk in tl.static_range(1, 4):
                v = tl.load(base + (kk // 2) * W + kk % 2, mask=inside, other=0.0)
                take = (v > best) | (v != v)
                best = tl.where(take, v, best)
                pick = tl.where(take, kk, pick)
            acc += tl.where(inside & (pick == kh * 2 + kw), gv, 0.0)
    tl.store(dx_ptr + offs, acc, mask=live)


def _phc_maxpool2d_k2_s2_forward(x):
    B, C, H, W = x.shape
    OH, OW = (H - 2) // 2 + 1, (W - 2) // 2 + 1
    y = torch.empty((B, C, OH, OW), device=x.device, dtype=x.dtype)
    if y.numel():
        grid = lambda meta: (triton.cdiv(y.numel(), meta["BLOCK"]),)
        with _phc_device(x):
            _phc_maxpool2d_k2_s2_fwd_kernel[grid](x, y, y.numel(), H, W, OH, OW)
    return y


def _phc_maxpool2d_k2_s2_grad_input(g, x):
    dx = torch.empty_like(x)
    if dx.numel():
        grid = lambda meta: (triton.cdiv(dx.numel(), meta["BLOCK"]),)
        with _phc_device(g):
            _phc_maxpool2d_k2_s2_bwd_kernel[grid](x, g, dx, dx.numel(), *x.shape[2:], *g.shape[2:])
    return dx


class _phc_maxpool2d_k2_s2_Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _phc_maxpool2d_k2_s2_forward(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return _phc_maxpool2d_k2_s2_grad_input(g.contiguous(), x)


def _phc_maxpool2d_k2_s2_reference(x):
    return _phc_F.max_pool2d(x, 2, 2)


def _phc_maxpool2d_k2_s2(x):
    """max pooling, 2x2 window, stride 2: x[B, C, H, W] -> [B, C, OH, OW]."""
    (x,) = _phc_prepare(x)
    _phc_expect(x.dim() == 4, "_phc_maxpool2d_k2_s2: expects x[B, C, H, W]")
    _phc_expect(min(x.shape[2:]) >= 2, "_phc_maxpool2d_k2_s2: input smaller than the 2x2 window")
    if not _phc_use_triton(x):
        return _phc_maxpool2d_k2_s2_reference(x)
    return _phc_maxpool2d_k2_s2_Function.apply(x)
