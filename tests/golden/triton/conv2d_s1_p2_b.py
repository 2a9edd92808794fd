# ---- _phc_conv2d_s1_p2_b: conv2d, stride 1, padding 2, with bias ----
# x[B, C, H, W] * w[O, C, KH, KW] + b[O] -> y[B, O, OH, OW], each kernel an implicit GEMM.


@triton.autotune(
    configs=_phc_configs(
        gpu=[
            triton.Config({"BLOCK_M": 128, "BLOCK_N": 4, "BLOCK_K": 8, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 8, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 8, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32, "USE_DOT": True}, num_warps=8, num_stages=3),
        ],
        interp=[
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16, "USE_DOT": True}, num_warps=4, num_stages=2),
        ],
    ),
    key=["M", "N", "R"],
    prune_configs_by=_phc_pruner({"BLOCK_M": "M", "BLOCK_N": "N", "BLOCK_K": "R"}),
    cache_results=True,
)
@triton.jit
def _phc_conv2d_s1_p2_b_fwd_kernel(
    x_ptr, w_ptr, b_ptr, y_ptr,
    M, N, R, C, H, W, OH, OW,
    KH: tl.constexpr, KW: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, USE_DOT: tl.constexpr,
):
    """Rows: output pixels m = (b, oh, ow); columns: output channels; reduction over r = (c, kh, kw)."""
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    bi = rm // (OH * OW)
    hw = rm % (OH * OW)
    ih0 = (hw // OW) * 1 - 2
    iw0 = (hw % OW) * 1 - 2
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=y_ptr.dtype.element_ty)
    for r0 in range(0, R, BLOCK_K):
        rk = r0 + tl.arange(0, BLOCK_K)
        ih = ih0[:, None] + ((rk // KW) % KH)[None, :]
        iw = iw0[:, None] + (rk % KW)[None, :]
        x_off = ((bi[:, None] * C + (rk // (KH * KW))[None, :]) * H + ih) * W + iw
        x_mask = (rm[:, None] < M) & (rk[None, :] < R) & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        a = tl.load(x_ptr + x_off, mask=x_mask, other=0.0)
        w_mask = (rk[:, None] < R) & (rn[None, :] < N)
        b = tl.load(w_ptr + rn[None, :] * R + rk[:, None], mask=w_mask, other=0.0)
        acc = _phc_mac(acc, a, b, USE_DOT)
    acc += tl.load(b_ptr + rn, mask=rn < N, other=0.0)[None, :]
    y_off = (bi[:, None] * N + rn[None, :]) * (OH * OW) + hw[:, None]
    tl.store(y_ptr + y_off, acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


@triton.autotune(
    configs=_phc_configs(
        gpu=[
            triton.Config({"BLOCK_M": 128, "BLOCK_N": 4, "BLOCK_K": 8, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 8, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 8, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32, "USE_DOT": True}, num_warps=8, num_stages=3),
        ],
        interp=[
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16, "USE_DOT": True}, num_warps=4, num_stages=2),
        ],
    ),
    key=["M", "N", "R"],
    prune_configs_by=_phc_pruner({"BLOCK_M": "M", "BLOCK_N": "N", "BLOCK_K": "R"}),
    cache_results=True,
)
@triton.jit
def _phc_conv2d_s1_p2_b_bwd_input_kernel(
    g_ptr, w_ptr, dx_ptr,
    M, N, R, O, H, W, OH, OW,
    KH: tl.constexpr, KW: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, USE_DOT: tl.constexpr,
):
    """Rows: input pixels m = (b, ih, iw); columns: input channels; reduction over r = (o, kh, kw)
    of the output pixel (oh, ow) with oh * 1 + kh = ih + 2, where it exists."""
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    bi = rm // (H * W)
    hw = rm % (H * W)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=dx_ptr.dtype.element_ty)
    for r0 in range(0, R, BLOCK_K):
        rk = r0 + tl.arange(0, BLOCK_K)
        th = (hw // W + 2)[:, None] - ((rk // KW) % KH)[None, :]
        tw = (hw % W + 2)[:, None] - (rk % KW)[None, :]
        # Clamp before // and %: C (GPU) and numpy (interpreter) round negatives differently.
        oh = tl.maximum(th, 0) // 1
        ow = tl.maximum(tw, 0) // 1
        g_mask = (rm[:, None] < M) & (rk[None, :] < R) & (th >= 0) & (tw >= 0) & (oh < OH) & (ow < OW)
        g_off = ((bi[:, None] * O + (rk // (KH * KW))[None, :]) * OH + oh) * OW + ow
        a = tl.load(g_ptr + g_off, mask=g_mask, other=0.0)
        w_off = ((rk // (KH * KW))[:, None] * N + rn[None, :]) * (KH * KW) + (rk % (KH * KW))[:, None]
        b = tl.load(w_ptr + w_off, mask=(rk[:, None] < R) & (rn[None, :] < N), other=0.0)
        acc = _phc_mac(acc, a, b, USE_DOT)
    dx_off = (bi[:, None] * N + rn[None, :]) * (H * W) + hw[:, None]
    tl.store(dx_ptr + dx_off, acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


@triton.autotune(
    configs=_phc_configs(
        gpu=[
            triton.Config({"BLOCK_M": 128, "BLOCK_N": 4, "BLOCK_K": 8, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 8, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 8, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "USE_DOT": False}, num_warps=4, num_stages=2),
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32, "USE_DOT": True}, num_warps=4, num_stages=3),
            triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32, "USE_DOT": True}, num_warps=8, num_stages=3),
        ],
        interp=[
            triton.Config({"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16, "USE_DOT": True}, num_warps=4, num_stages=2),
        ],
    ),
    key=["M", "N", "NP"],
    prune_configs_by=_phc_pruner({"BLOCK_M": "M", "BLOCK_N": "N", "BLOCK_K": "NP"}),
    cache_results=True,
)
@triton.jit
def _phc_conv2d_s1_p2_b_bwd_weight_kernel(
    g_ptr, x_ptr, part_ptr,
    M, N, NP, CHUNK, C, H, W, OH, OW,
    KH: tl.constexpr, KW: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, USE_DOT: tl.constexpr,
):
    """Rows: output channels; columns: r = (c, kh, kw); reduction over output pixels p = (b, oh, ow),
    one CHUNK of them per program_id(2), written to its own slice part[split] (no atomics)."""
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    split = tl.program_id(2)
    p_hi = tl.minimum(split * CHUNK + CHUNK, NP)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=part_ptr.dtype.element_ty)
    for p0 in range(0, CHUNK, BLOCK_K):
        rk = split * CHUNK + p0 + tl.arange(0, BLOCK_K)
        bi = rk // (OH * OW)
        hw = rk % (OH * OW)
        g_off = (bi[None, :] * M + rm[:, None]) * (OH * OW) + hw[None, :]
        a = tl.load(g_ptr + g_off, mask=(rm[:, None] < M) & (rk[None, :] < p_hi), other=0.0)
        ih = ((hw // OW) * 1 - 2)[:, None] + ((rn // KW) % KH)[None, :]
        iw = ((hw % OW) * 1 - 2)[:, None] + (rn % KW)[None, :]
        x_off = ((bi[:, None] * C + (rn // (KH * KW))[None, :]) * H + ih) * W + iw
        x_mask = (rk[:, None] < p_hi) & (rn[None, :] < N) & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        b = tl.load(x_ptr + x_off, mask=x_mask, other=0.0)
        acc = _phc_mac(acc, a, b, USE_DOT)
    part_off = split * M * N + rm[:, None] * N + rn[None, :]
    tl.store(part_ptr + part_off, acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


def _phc_conv2d_s1_p2_b_out_size(size, ks):
    return (size + 4 - ks) // 1 + 1


def _phc_conv2d_s1_p2_b_forward(x, w, b):
    B, C, H, W = x.shape
    O, KH, KW = w.shape[0], w.shape[2], w.shape[3]
    OH, OW = _phc_conv2d_s1_p2_b_out_size(H, KH), _phc_conv2d_s1_p2_b_out_size(W, KW)
    y = torch.empty((B, O, OH, OW), device=x.device, dtype=x.dtype)
    M, R = B * OH * OW, C * KH * KW
    if y.numel():
        grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(O, meta["BLOCK_N"]))
        with _phc_device(x):
            _phc_conv2d_s1_p2_b_fwd_kernel[grid](x, w, b, y, M, O, R, C, H, W, OH, OW, KH=KH, KW=KW)
    return y


def _phc_conv2d_s1_p2_b_grad_input(g, w, x_shape):
    B, C, H, W = x_shape
    O, KH, KW = w.shape[0], w.shape[2], w.shape[3]
    dx = torch.empty(x_shape, device=g.device, dtype=g.dtype)
    M, R = B * H * W, O * KH * KW
    if dx.numel():
        grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(C, meta["BLOCK_N"]))
        with _phc_device(g):
            _phc_conv2d_s1_p2_b_bwd_input_kernel[grid](g, w, dx, M, C, R, O, H, W, g.shape[2], g.shape[3], KH=KH, KW=KW)
    return dx


def _phc_conv2d_s1_p2_b_grad_weight(g, x, w_shape):
    B, C, H, W = x.shape
    O, KH, KW = w_shape[0], w_shape[2], w_shape[3]
    OH, OW = g.shape[2], g.shape[3]
    N, NP = C * KH * KW, B * OH * OW
    splits, chunk = _phc_split(NP)
    part = torch.empty((splits, O, N), device=g.device, dtype=g.dtype)
    if part.numel():
        grid = lambda meta: (triton.cdiv(O, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"]), splits)
        with _phc_device(g):
            _phc_conv2d_s1_p2_b_bwd_weight_kernel[grid](g, x, part, O, N, NP, chunk, C, H, W, OH, OW, KH=KH, KW=KW)
    return _phc_sum_splits(part).reshape(w_shape)


class _phc_conv2d_s1_p2_b_Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return _phc_conv2d_s1_p2_b_forward(x, w, b)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        g = g.contiguous()
        dx = _phc_conv2d_s1_p2_b_grad_input(g, w, x.shape) if ctx.needs_input_grad[0] else None
        dw = _phc_conv2d_s1_p2_b_grad_weight(g, x, w.shape) if ctx.needs_input_grad[1] else None
        db = _phc_bias_grad(g, w.shape[0]) if ctx.needs_input_grad[2] else None
        return dx, dw, db


def _phc_conv2d_s1_p2_b(x, w, b):
    """conv2d, stride 1, padding 2: x[B, C, H, W], w[O, C, KH, KW], b[O] -> [B, O, OH, OW]."""
    x, w, b = _phc_prepare(x, w, b)
    _phc_expect(x.dim() == 4 and w.dim() == 4, "_phc_conv2d_s1_p2_b: expects x[B, C, H, W] and w[O, C, KH, KW]")
    _phc_expect(w.shape[1] == x.shape[1], "_phc_conv2d_s1_p2_b: x and w disagree on the input channels")
    _phc_expect(x.shape[2] + 4 >= w.shape[2] and x.shape[3] + 4 >= w.shape[3],
                "_phc_conv2d_s1_p2_b: kernel larger than the padded input")
    _phc_expect(b.shape == (w.shape[0],), "_phc_conv2d_s1_p2_b: b must be [O]")
    if not _phc_use_triton(x):
        return _phc_F.conv2d(x, w, b, stride=1, padding=2)
    return _phc_conv2d_s1_p2_b_Function.apply(x, w, b)
