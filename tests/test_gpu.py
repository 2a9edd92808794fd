"""Every Triton template compiled for a real CUDA GPU (TRITON_INTERPRET=0), forward and backward,
against torch.nn.functional: float32 with TF32 off on both sides, odd sizes, strides, padding,
channel counts, batch 1 and 256, and each GPU launch config forced in turn (autotuning alone
would test only the configs it happens to pick).

Run on a CUDA machine with `TRITON_INTERPRET=0 python -m pytest -m gpu tests/test_gpu.py`
(benchmarks/gpu_suite.py does). Where there is no CUDA device, conftest marks these tests skipped
with that reason: the `gpu` marker is the only one that may skip. On a CUDA machine under the
interpreter (the suite's default) they fail, saying how to run them, rather than skip.

Accuracy: a float32 sum of n products a_i b_i is off by at most about n·u·Σ|a_i b_i| (u = 2^-24);
blocked accumulation keeps the error near √n·u·Σ|a_i b_i|. Each result is checked against float64
within RTOL·Σ|a_i b_i| (the same op applied to |inputs|, computed in float64) — a tolerance that
scales with the data — and against torch's float32 result within twice that.
"""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from phc.select.plan import Conv2dSpec, LinearSpec, Pool2dSpec

pytestmark = pytest.mark.gpu

RTOL = 3e-5          # of the absolute-value bound Σ|a_i b_i|; a wrong index is off by O(1)
ATOL = 1e-6

CONV_SPECS = [Conv2dSpec(1, 0, True), Conv2dSpec(2, 1, False), Conv2dSpec(1, 2, True),
              Conv2dSpec(2, 2, True), Conv2dSpec(3, 1, True), Conv2dSpec(1, 1, True)]
POOL_SPECS = [Pool2dSpec("max", 2, 2), Pool2dSpec("min", 2, 2), Pool2dSpec("avg", 2, 2),
              Pool2dSpec("max", 3, 2), Pool2dSpec("min", 3, 1), Pool2dSpec("avg", 3, 2),
              Pool2dSpec("max", 2, 3)]
LINEAR_SPECS = [LinearSpec(True), LinearSpec(False)]
SPECS = CONV_SPECS + POOL_SPECS + LINEAR_SPECS


def _require_compiled_cuda() -> None:
    if not torch.cuda.is_available():      # conftest skip-marks these tests first; belt and braces
        pytest.skip("gpu marker: no CUDA device on this machine")
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.fail("TRITON_INTERPRET=1: the gpu tests need kernels compiled for the GPU; run "
                    "`TRITON_INTERPRET=0 python -m pytest -m gpu tests/test_gpu.py` "
                    "(or python benchmarks/gpu_suite.py)")


@pytest.fixture(scope="module", autouse=True)
def exact_float32():
    """TF32 off for cuDNN and cuBLAS: the reference is IEEE float32, as phc's kernels are."""
    _require_compiled_cuda()
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(scope="module")
def ops():
    """The rendered ops, imported by phc's loader (@triton.jit reads its source from the
    module's file), compiled."""
    from phc.emit.triton_backend import render_ops
    from phc.loader import load_module
    return vars(load_module(render_ops(SPECS), "phc_gpu_ops")[0])


def _autotuners(namespace: dict) -> dict:
    import triton
    return {k: v for k, v in namespace.items() if isinstance(v, triton.runtime.Autotuner)}


def _randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype, device="cuda")


# ---- the comparison ----

def _results(fn, inputs, g):
    """fn's output and the gradient of <fn(inputs), g> with respect to every input."""
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    y = fn(*leaves)
    y.backward(g.to(y.dtype))
    return [y.detach()] + [t.grad for t in leaves]


def _compare(fn, ref, inputs, linear=True, rtol=RTOL, atol=ATOL):
    """fn (phc) against ref (torch) in float32, and both against ref in float64. For ops linear
    in each input (conv, linear, average pooling) the tolerance is RTOL·(ref on |inputs|); for
    max/min pooling, which only select and add, it is RTOL·|value| (near-exact)."""
    y = fn(*[t.detach() for t in inputs])
    assert y.dtype == inputs[0].dtype and y.is_cuda
    g = torch.randn_like(y)
    ours = _results(fn, inputs, g)
    theirs32 = _results(ref, inputs, g)
    exact = _results(ref, [t.double() for t in inputs], g.double())
    if linear:
        bound = _results(ref, [t.double().abs() for t in inputs], g.double().abs())
    else:
        bound = [e.abs() for e in exact]
    what = ["output"] + [f"gradient of input {i}" for i in range(len(inputs))]
    for name, o, t, e, b in zip(what, ours, theirs32, exact, bound):
        assert o.shape == e.shape, name
        tol = rtol * b + atol
        err = (o.double() - e).abs()
        assert bool((err <= tol).all()), (
            f"{name}: phc vs float64 off by {float(err.max()):.3e} (tolerance {float(tol.max()):.3e})")
        torch_err = (o.double() - t.double()).abs()
        assert bool((torch_err <= 2 * tol).all()), (
            f"{name}: phc vs torch float32 off by {float(torch_err.max()):.3e}")


# ---- the kernels are compiled, for this GPU ----

def test_kernels_are_compiled_not_interpreted(ops):
    from triton.runtime.jit import JITFunction
    tuners = _autotuners(ops)
    assert tuners, "no autotuned kernel in the rendered ops"
    kinds = {type(t.fn) for t in tuners.values()}
    assert kinds == {JITFunction}, f"kernels are {kinds}, not compiled JIT functions"


# ---- convolution ----

CONV_CASES = [  # spec, B, C, H, W, O, K
    (Conv2dSpec(1, 0, True), 1, 1, 28, 28, 1, 3),       # the seed
    (Conv2dSpec(1, 0, True), 256, 1, 28, 28, 1, 3),
    (Conv2dSpec(1, 2, True), 1, 1, 28, 28, 6, 5),       # LeNet conv1
    (Conv2dSpec(1, 2, True), 256, 1, 28, 28, 6, 5),
    (Conv2dSpec(1, 0, True), 256, 6, 14, 14, 16, 5),    # LeNet conv2
    (Conv2dSpec(1, 0, True), 256, 4, 13, 13, 8, 3),     # keras_style conv2
    (Conv2dSpec(2, 1, False), 5, 3, 17, 13, 7, 3),      # odd sizes, stride 2
    (Conv2dSpec(2, 2, True), 3, 2, 9, 11, 5, 5),
    (Conv2dSpec(3, 1, True), 2, 5, 23, 19, 3, 3),       # stride 3 leaves gaps in dx
    (Conv2dSpec(1, 1, True), 7, 32, 15, 15, 64, 3),     # channels wide enough for tl.dot
    (Conv2dSpec(1, 0, True), 1, 3, 5, 7, 33, 5),        # kernel as tall as the input
]


def _conv_ref(spec):
    return lambda x, w, b=None: F.conv2d(x, w, b, stride=spec.stride, padding=spec.padding)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0].name}-{'x'.join(map(str, c[1:]))}")
def test_conv2d(ops, case):
    spec, B, C, H, W, O, K = case
    x = _randn(B, W, C, H).permute(0, 2, 3, 1)     # not contiguous: the wrapper must cope
    inputs = [x, _randn(O, C, K, K)] + ([_randn(O)] if spec.bias else [])
    _compare(ops[spec.symbol], _conv_ref(spec), inputs)


# ---- pooling ----

POOL_SHAPES = [(1, 1, 26, 26), (256, 6, 28, 28), (256, 16, 10, 10), (5, 3, 7, 9), (2, 4, 31, 17)]
POOL_CASES = [(spec, shape) for spec in POOL_SPECS for shape in POOL_SHAPES]


def _pool_ref(spec):
    if spec.kind == "avg":
        return lambda x: F.avg_pool2d(x, spec.k, spec.stride)
    sign = 1 if spec.kind == "max" else -1
    return lambda x: sign * F.max_pool2d(sign * x, spec.k, spec.stride)


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0].name}-{'x'.join(map(str, c[1]))}")
def test_pool2d(ops, case):
    spec, shape = case
    if spec.kind == "avg":
        x = _randn(*shape)
    else:   # distinct values: which element a window picks is then not a matter of rounding
        x = torch.randperm(torch.Size(shape).numel(), device="cuda").float().reshape(shape)
    _compare(ops[spec.symbol], _pool_ref(spec), [x], linear=spec.kind == "avg")


def test_maxpool_ties_go_to_the_first_maximum(ops):
    x = torch.ones(1, 1, 2, 2, device="cuda", requires_grad=True)
    ops["_phc_maxpool2d_k2_s2"](x).sum().backward()
    assert x.grad.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("spec", [Pool2dSpec("max", 3, 2), Pool2dSpec("min", 3, 1)], ids=lambda s: s.name)
def test_pool2d_nan_is_picked_like_torch(ops, spec):
    x = _randn(1, 2, 7, 7)
    x[0, 0, 2, 3] = x[0, 1, 4, 4] = x[0, 1, 4, 5] = float("nan")
    y, y_ref = ops[spec.symbol](x), _pool_ref(spec)(x)
    torch.testing.assert_close(y, y_ref, equal_nan=True, atol=0, rtol=0)


# ---- linear ----

LINEAR_CASES = [  # spec, B, N, M
    (LinearSpec(True), 1, 169, 10),        # the seed
    (LinearSpec(True), 256, 169, 10),
    (LinearSpec(True), 1, 400, 120),       # LeNet fc1..fc3
    (LinearSpec(True), 256, 400, 120),
    (LinearSpec(True), 256, 120, 84),
    (LinearSpec(True), 256, 84, 10),
    (LinearSpec(True), 1000, 968, 10),     # keras_style's evaluation batch
    (LinearSpec(False), 5, 20, 6),
    (LinearSpec(True), 70, 37, 19),
    (LinearSpec(False), 4099, 33, 65),     # dw's reduction split over several programs
]


@pytest.mark.parametrize("case", LINEAR_CASES, ids=lambda c: f"{c[0].name}-{'x'.join(map(str, c[1:]))}")
def test_linear(ops, case):
    spec, B, N, M = case
    inputs = [_randn(B, N), _randn(M, N)] + ([_randn(M)] if spec.bias else [])
    _compare(ops[spec.symbol], F.linear, inputs)


# ---- float64, mixed and empty inputs ----

def test_float64_agrees_to_1e_12(ops):
    d = torch.float64
    x, w, b = _randn(3, 3, 19, 17, dtype=d), _randn(20, 3, 5, 5, dtype=d), _randn(20, dtype=d)
    _compare(ops["_phc_conv2d_s2_p2_b"], _conv_ref(Conv2dSpec(2, 2, True)), [x, w, b], rtol=1e-12, atol=1e-12)
    linear_inputs = [_randn(70, 130, dtype=d), _randn(40, 130, dtype=d), _randn(40, dtype=d)]
    _compare(ops["_phc_linear_b"], F.linear, linear_inputs, rtol=1e-12, atol=1e-12)


def test_mixed_dtypes_promote_to_float64(ops):
    assert ops["_phc_linear"](_randn(2, 3), _randn(4, 3, dtype=torch.float64)).dtype == torch.float64


def test_empty_batch(ops):
    assert ops["_phc_conv2d_s2_p1"](_randn(0, 2, 5, 5), _randn(3, 2, 3, 3)).shape == (0, 3, 3, 3)
    assert ops["_phc_maxpool2d_k2_s2"](_randn(0, 2, 5, 5)).shape == (0, 2, 2, 2)
    assert ops["_phc_linear_b"](_randn(0, 3), _randn(4, 3), _randn(4)).shape == (0, 4)


# ---- each GPU config, forced ----

def _gpu_configs():
    from phc.emit.triton_backend import all_tiles
    by_blocks: dict[tuple, list] = {}
    for tiles in all_tiles(SPECS):
        key = tuple(b for b, _ in tiles.sizes)
        for cfg in tiles.gpu:
            if cfg not in by_blocks.setdefault(key, []):
                by_blocks[key].append(cfg)
    return [(key, cfg) for key, cfgs in by_blocks.items() for cfg in cfgs]


GPU_CONFIGS = _gpu_configs()


@pytest.fixture
def forced(ops, request):
    """Every kernel whose blocks are `blocks` runs with exactly `cfg` (no autotuning)."""
    import triton
    blocks, cfg = request.param
    family = lambda t: set(t.configs[0].kwargs) - {"USE_DOT"} == set(blocks)
    saved = [(t, t.configs) for t in _autotuners(ops).values() if family(t)]
    assert saved, f"no kernel has the blocks {blocks}"
    for t, _ in saved:
        t.configs = [triton.Config(cfg.kwargs(), num_warps=cfg.num_warps, num_stages=cfg.num_stages)]
    yield blocks
    for t, configs in saved:
        t.configs = configs


def _config_id(item) -> str:
    _, cfg = item
    return "-".join(f"{k}{v}" for k, v in cfg.kwargs().items()) + f"-w{cfg.num_warps}-s{cfg.num_stages}"


@pytest.mark.parametrize("forced", GPU_CONFIGS, ids=[_config_id(c) for c in GPU_CONFIGS], indirect=True)
def test_every_gpu_config(ops, forced):
    """One case per op family that the forced config serves, with sizes that leave ragged tiles."""
    if forced == ("BLOCK",):
        for spec in (Pool2dSpec("max", 3, 2), Pool2dSpec("avg", 2, 2)):
            x = torch.randperm(3 * 5 * 29 * 31, device="cuda").float().reshape(3, 5, 29, 31)
            _compare(ops[spec.symbol], _pool_ref(spec), [x], linear=spec.kind == "avg")
    elif forced == ("BLOCK_O", "BLOCK_P"):      # the bias gradient (through a conv)
        spec = Conv2dSpec(1, 0, True)
        _compare(ops[spec.symbol], _conv_ref(spec), [_randn(67, 3, 9, 9), _randn(21, 3, 3, 3), _randn(21)])
    else:
        spec = Conv2dSpec(2, 1, True)
        inputs = [_randn(9, 19, 15, 13), _randn(37, 19, 3, 3), _randn(37)]
        _compare(ops[spec.symbol], _conv_ref(spec), inputs)
        _compare(ops["_phc_linear_b"], F.linear, [_randn(133, 71), _randn(45, 71), _randn(45)])
