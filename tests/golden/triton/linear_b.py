# ---- _phc_linear_b: linear, with bias ----
# x[B, N] @ w[M, N].T + b[M] -> y[B, M]; one strided matmul kernel serves
# the forward, dx = g @ w and dw = g.T @ x.


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
    key=["M", "N", "K"],
    prune_configs_by=_phc_pruner({"BLOCK_M": "M", "BLOCK_N": "N", "BLOCK_K": "K"}),
    cache_results=True,
)
@triton.jit
def _phc_linear_b_mm_kernel(
    a_ptr, b_ptr, bias_ptr, c_ptr,
    M, N, K, CHUNK,
    stride_am, stride_ak, stride_bk, stride_bn,
    ADD_BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, USE_DOT: tl.constexpr,
):
    """c[split] = a[:, ks] @ b[ks, :] (+ bias[None, :]) for the K-chunk ks of program_id(2);
    strides make the transposes free; c is [splits, M, N], contiguous."""
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    split = tl.program_id(2)
    k_hi = tl.minimum(split * CHUNK + CHUNK, K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=c_ptr.dtype.element_ty)
    for k0 in range(0, CHUNK, BLOCK_K):
        rk = split * CHUNK + k0 + tl.arange(0, BLOCK_K)
        a_off = rm[:, None] * stride_am + rk[None, :] * stride_ak
        a = tl.load(a_ptr + a_off, mask=(rm[:, None] < M) & (rk[None, :] < k_hi), other=0.0)
        b_off = rk[:, None] * stride_bk + rn[None, :] * stride_bn
        b = tl.load(b_ptr + b_off, mask=(rk[:, None] < k_hi) & (rn[None, :] < N), other=0.0)
        acc = _phc_mac(acc, a, b, USE_DOT)
    if ADD_BIAS:
        acc += tl.load(bias_ptr + rn, mask=rn < N, other=0.0)[None, :]
    c_off = split * M * N + rm[:, None] * N + rn[None, :]
    tl.store(c_ptr + c_off, acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


def _phc_linear_b_mm(a, a_strides, b, b_strides, M, N, K, bias=None, split=False):
    """a @ b with a [M, K] and b [K, N] given by strides; K split over programs when `split`."""
    splits, chunk = _phc_split(K) if split else (1, max(1, K))
    part = torch.empty((splits, M, N), device=a.device, dtype=a.dtype)
    if part.numel():
        grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"]), splits)
        extra = (a if bias is None else bias,)  # unused pointer when ADD_BIAS is off
        with _phc_device(a):
            _phc_linear_b_mm_kernel[grid](
                a, b, *extra, part, M, N, K, chunk, *a_strides, *b_strides,
                ADD_BIAS=bias is not None,
            )
    return _phc_sum_splits(part)


class _phc_linear_b_Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        (B, N), M = x.shape, w.shape[0]
        return _phc_linear_b_mm(x, (N, 1), w, (1, N), B, M, N, bias=b)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        g = g.contiguous()
        (B, N), M = x.shape, w.shape[0]
        dx = _phc_linear_b_mm(g, (M, 1), w, (N, 1), B, N, M) if ctx.needs_input_grad[0] else None
        dw = _phc_linear_b_mm(g, (1, M), x, (N, 1), M, N, B, split=True) if ctx.needs_input_grad[1] else None
        db = _phc_bias_grad(g, M) if ctx.needs_input_grad[2] else None
        return dx, dw, db


def _phc_linear_b(x, w, b):
    """linear: x[B, N], w[M, N], b[M] -> x @ w.T + b, [B, M]."""
    x, w, b = _phc_prepare(x, w, b)
    _phc_expect(x.dim() == 2 and w.dim() == 2, "_phc_linear_b: expects x[B, N] and w[M, N]")
    _phc_expect(x.shape[1] == w.shape[1], "_phc_linear_b: x and w disagree on the input features")
    _phc_expect(b.shape == (w.shape[0],), "_phc_linear_b: b must be [M]")
    if not _phc_use_triton(x):
        return _phc_F.linear(x, w, b)
    return _phc_linear_b_Function.apply(x, w, b)
