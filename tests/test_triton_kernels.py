"""Triton templates (level 2 of code generation): rendered kernels against torch.nn.functional.

The kernels run under Triton's CPU interpreter: TRITON_INTERPRET=1 is set below, before any kernel
is defined (Triton 3 reads it when @triton.jit runs, and the rendered source is exec'd only here;
`_check_interpreted` fails loudly if the kernels came out compiled anyway). With TRITON_INTERPRET=0
on a CUDA machine the same tests run on the GPU instead.
What the interpreter cannot see is checked statically: tile_check over the rendered configs, and
an offline compile of the kernels for sm_90 (no GPU needed: Triton ships ptxas).
Refresh the golden sources with PHC_UPDATE_GOLDEN=1.
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from phc.emit import tile_check  # noqa: E402
from phc.emit.tile_check import KernelTiles, TileConfig  # noqa: E402
from phc.emit.triton_backend import all_tiles, render_op, render_ops, render_prelude  # noqa: E402
from phc.select.plan import SYMBOL_PREFIX, Conv2dSpec, LinearSpec, Pool2dSpec  # noqa: E402

INTERPRET = os.environ["TRITON_INTERPRET"] == "1"
if not INTERPRET and not torch.cuda.is_available():
    raise RuntimeError("TRITON_INTERPRET is not 1 and there is no CUDA device: the Triton kernels "
                       "cannot run; unset TRITON_INTERPRET or set it to 1")
DEVICE = "cpu" if INTERPRET else "cuda"
GOLDEN = Path(__file__).parent / "golden" / "triton"

CONV_SPECS = [Conv2dSpec(1, 0, True), Conv2dSpec(2, 1, False), Conv2dSpec(1, 2, True),
              Conv2dSpec(2, 2, True)]
POOL_SPECS = [Pool2dSpec("max", 2, 2), Pool2dSpec("min", 2, 2), Pool2dSpec("avg", 2, 2),
              Pool2dSpec("max", 3, 2), Pool2dSpec("min", 3, 1), Pool2dSpec("avg", 3, 2),
              Pool2dSpec("max", 2, 3)]
LINEAR_SPECS = [LinearSpec(True), LinearSpec(False)]
SPECS = CONV_SPECS + POOL_SPECS + LINEAR_SPECS

# The tl.sum path of the GEMM kernels, forced in place of the interpreter's tl.dot config.
FMA_CONFIG = TileConfig((("BLOCK_M", 32), ("BLOCK_N", 4), ("BLOCK_K", 8)), use_dot=False)


def _load(source: str, name: str) -> dict:
    """The source's namespace, imported by phc's loader (@triton.jit reads its source from the
    module's file)."""
    from phc.loader import load_module
    return vars(load_module(source, name)[0])


def _autotuners(namespace: dict) -> dict:
    import triton
    return {k: v for k, v in namespace.items() if isinstance(v, triton.runtime.Autotuner)}


def _check_interpreted(namespace: dict) -> None:
    from triton.runtime.interpreter import InterpretedFunction
    kinds = {type(t.fn) for t in _autotuners(namespace).values()}
    if INTERPRET and kinds != {InterpretedFunction}:
        pytest.fail(f"kernels were compiled as {kinds}, not interpreted: triton (imported from "
                    f"{sys.modules['triton'].__file__}) ignored TRITON_INTERPRET=1")


@pytest.fixture(scope="module", params=["dot", "fma"])
def ops(request):
    """The rendered ops; 'fma' forces every GEMM kernel onto its tl.sum path."""
    namespace = _load(render_ops(SPECS), f"phc_triton_ops_{request.param}")
    _check_interpreted(namespace)
    if request.param == "fma":
        import triton
        for tuner in _autotuners(namespace).values():
            if "USE_DOT" in tuner.configs[0].kwargs:
                tuner.configs = [triton.Config(FMA_CONFIG.kwargs())]
    return namespace


@pytest.fixture(scope="module")
def ops_dot():
    namespace = _load(render_ops(SPECS), "phc_triton_ops")
    _check_interpreted(namespace)
    return namespace


def _compare(fn, ref, inputs, tol=1e-5):
    """Forward and every input gradient of fn against ref, ref taken in float64."""
    ours = [t.detach().clone().requires_grad_() for t in inputs]
    theirs = [t.detach().double().clone().requires_grad_() for t in inputs]
    y, y_ref = fn(*ours), ref(*theirs)
    assert y.dtype == inputs[0].dtype and y.shape == y_ref.shape
    torch.testing.assert_close(y.double(), y_ref, atol=tol, rtol=tol, equal_nan=True)
    g = torch.randn_like(y_ref)
    y.backward(g.to(y.dtype))
    y_ref.backward(g)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.grad.double(), b.grad, atol=tol, rtol=tol)


def _randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype, device=DEVICE)


# ---- numerical agreement with torch.nn.functional ----

CONV_CASES = [  # spec, B, C, H, W, O, KH, KW
    (Conv2dSpec(1, 0, True), 1, 1, 7, 7, 1, 3, 3),
    (Conv2dSpec(2, 1, False), 5, 3, 9, 8, 6, 3, 3),
    (Conv2dSpec(1, 2, True), 2, 3, 7, 6, 6, 5, 5),
    (Conv2dSpec(2, 2, True), 5, 1, 8, 9, 6, 3, 3),
    (Conv2dSpec(1, 0, True), 2, 2, 6, 5, 3, 2, 3),      # non-square kernels
    (Conv2dSpec(2, 1, False), 1, 3, 7, 8, 2, 4, 1),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0].name}-{'x'.join(map(str, c[1:]))}")
def test_conv2d_matches_torch(ops, case):
    spec, B, C, H, W, O, KH, KW = case
    x = _randn(B, W, C, H).permute(0, 2, 3, 1)  # not contiguous: the wrapper must cope
    inputs = [x, _randn(O, C, KH, KW)] + ([_randn(O)] if spec.bias else [])
    ref = lambda x, w, b=None: F.conv2d(x, w, b, stride=spec.stride, padding=spec.padding)
    _compare(ops[spec.symbol], ref, inputs)


def test_seed_shapes(ops_dot):
    """The seed's one 3x3 kernel on 28x28, its 2x2 pool on 26x26, its 169 -> 10 linear."""
    conv = lambda x, w, b: F.conv2d(x, w, b)
    _compare(ops_dot["_phc_conv2d_s1_p0_b"], conv, [_randn(1, 1, 28, 28), _randn(1, 1, 3, 3), _randn(1)])
    _compare(ops_dot["_phc_maxpool2d_k2_s2"], lambda x: F.max_pool2d(x, 2, 2), [_randn(1, 1, 26, 26)])
    _compare(ops_dot["_phc_linear_b"], F.linear, [_randn(1, 169), _randn(10, 169), _randn(10)])


POOL_CASES = [(spec, shape) for spec in POOL_SPECS for shape in [(5, 3, 7, 9), (1, 1, 6, 5)]]


def _pool_reference(spec):
    if spec.kind == "avg":
        return lambda x: F.avg_pool2d(x, spec.k, spec.stride)
    sign = 1 if spec.kind == "max" else -1
    return lambda x: sign * F.max_pool2d(sign * x, spec.k, spec.stride)


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0].name}-{'x'.join(map(str, c[1]))}")
def test_pool2d_matches_torch(ops_dot, case):
    spec, shape = case
    # Small integers: many ties, so the first-pick rule of the backward is exercised.
    x = torch.randint(-2, 3, shape, device=DEVICE).float()
    if spec.kind == "avg":
        x = x + _randn(*shape)
    _compare(ops_dot[spec.symbol], _pool_reference(spec), [x])


def test_maxpool_ties_go_to_the_first_maximum(ops_dot):
    x = torch.ones(1, 1, 2, 2, device=DEVICE, requires_grad=True)
    ops_dot["_phc_maxpool2d_k2_s2"](x).sum().backward()
    assert x.grad.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("spec", [Pool2dSpec("max", 3, 2), Pool2dSpec("min", 3, 1)], ids=lambda s: s.name)
def test_pool2d_nan_is_picked_like_torch(ops_dot, spec):
    x = _randn(1, 2, 7, 7)
    x[0, 0, 2, 3] = x[0, 1, 4, 4] = x[0, 1, 4, 5] = float("nan")
    _compare(ops_dot[spec.symbol], _pool_reference(spec), [x])


LINEAR_CASES = [  # spec, B, N, M; B = 70 > 64 splits dw's reduction under the interpreter
    (LinearSpec(True), 1, 7, 5),
    (LinearSpec(False), 5, 20, 6),
    (LinearSpec(True), 70, 37, 19),
]


@pytest.mark.parametrize("case", LINEAR_CASES, ids=lambda c: f"{c[0].name}-{'x'.join(map(str, c[1:]))}")
def test_linear_matches_torch(ops, case):
    spec, B, N, M = case
    inputs = [_randn(B, N), _randn(M, N)] + ([_randn(M)] if spec.bias else [])
    _compare(ops[spec.symbol], F.linear, inputs)


def test_float64_agrees_to_1e_12(ops_dot):
    d = torch.float64
    x, w, b = _randn(2, 3, 9, 7, dtype=d), _randn(6, 3, 5, 5, dtype=d), _randn(6, dtype=d)
    ref = lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=2)
    _compare(ops_dot["_phc_conv2d_s2_p2_b"], ref, [x, w, b], tol=1e-12)
    linear_inputs = [_randn(5, 33, dtype=d), _randn(4, 33, dtype=d), _randn(4, dtype=d)]
    _compare(ops_dot["_phc_linear_b"], F.linear, linear_inputs, tol=1e-12)


def test_mixed_dtypes_promote_to_float64(ops_dot):
    y = ops_dot["_phc_linear"](_randn(2, 3), _randn(4, 3, dtype=torch.float64))
    assert y.dtype == torch.float64


def test_only_requested_gradients_are_computed(ops_dot):
    x, w, b = _randn(2, 3, 6, 6), _randn(4, 3, 3, 3).requires_grad_(), _randn(4)
    ops_dot["_phc_conv2d_s1_p0_b"](x, w, b).sum().backward()
    w_ref = w.detach().double().requires_grad_()
    F.conv2d(x.double(), w_ref, b.double()).sum().backward()
    assert x.grad is None and b.grad is None
    torch.testing.assert_close(w.grad.double(), w_ref.grad, atol=1e-5, rtol=1e-5)


GRADCHECK_CASES = [
    ("conv2d_s1_p0_b", [(1, 2, 5, 4), (3, 2, 3, 3), (3,)]),
    ("conv2d_s2_p1", [(2, 1, 5, 6), (2, 1, 3, 3)]),
    ("conv2d_s1_p2_b", [(1, 1, 4, 5), (2, 1, 5, 5), (2,)]),
    ("conv2d_s2_p2_b", [(1, 2, 5, 5), (2, 2, 3, 3), (2,)]),
    ("conv2d_s2_p1", [(1, 2, 6, 5), (3, 2, 2, 3)]),             # non-square kernel
    *[(s.name, [(2, 2, 6, 5)]) for s in POOL_SPECS],
    ("linear_b", [(3, 5), (4, 5), (4,)]),
    ("linear", [(3, 5), (4, 5)]),
]


def _distinct(shape):
    """float64 values far apart (a scaled permutation): no pooling window has a near-tie that
    gradcheck's finite differences could flip."""
    n = torch.Size(shape).numel()
    return (torch.randperm(n, device=DEVICE).double().reshape(shape) / 7 - n / 14).requires_grad_()


@pytest.mark.parametrize("name, shapes", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck_float64(ops_dot, name, shapes):
    # fast_mode: a random J·v per input instead of the full Jacobian (the interpreter is slow);
    # the full Jacobian is checked once per kind in test_gradcheck_full_jacobian.
    assert torch.autograd.gradcheck(ops_dot[SYMBOL_PREFIX + name], [_distinct(s) for s in shapes], fast_mode=True)


@pytest.mark.parametrize("name, shapes", [
    ("conv2d_s2_p1", [(1, 1, 4, 3), (2, 1, 3, 3)]),
    ("maxpool2d_k3_s2", [(1, 1, 5, 4)]),
    ("linear_b", [(2, 3), (2, 3), (2,)]),
])
def test_gradcheck_full_jacobian(ops_dot, name, shapes):
    assert torch.autograd.gradcheck(ops_dot[SYMBOL_PREFIX + name], [_distinct(s) for s in shapes])


# ---- bad input is a ValueError, never an out-of-bounds kernel ----

@pytest.mark.parametrize("name, shapes", [
    ("conv2d_s1_p0_b", [(1, 2, 5, 5), (3, 1, 3, 3), (3,)]),       # channel mismatch
    ("conv2d_s1_p0_b", [(1, 1, 2, 5), (3, 1, 3, 3), (3,)]),       # kernel taller than the input
    ("conv2d_s1_p0_b", [(1, 1, 5, 2), (3, 1, 2, 3), (3,)]),       # kernel wider than the input
    ("conv2d_s2_p1", [(5, 5), (2, 1, 3, 3)]),                     # not 4-d
    ("maxpool2d_k3_s2", [(1, 1, 2, 8)]),                          # smaller than the window
    ("linear_b", [(3, 5), (4, 6), (4,)]),                         # feature mismatch
    ("linear_b", [(3, 5), (4, 5), (3,)]),                         # bias size
])
def test_bad_shapes_raise_value_error(ops_dot, name, shapes):
    with pytest.raises(ValueError, match=name):
        ops_dot[SYMBOL_PREFIX + name](*[_randn(*s) for s in shapes])


def test_empty_batch(ops_dot):
    assert ops_dot["_phc_conv2d_s2_p1"](_randn(0, 2, 5, 5), _randn(3, 2, 3, 3)).shape == (0, 3, 3, 3)
    assert ops_dot["_phc_maxpool2d_k2_s2"](_randn(0, 2, 5, 5)).shape == (0, 2, 2, 2)
    assert ops_dot["_phc_linear_b"](_randn(0, 3), _randn(4, 3), _randn(4)).shape == (0, 4)


# ---- rendering ----

def test_render_ops_keeps_first_occurrence_order_once():
    specs = [LinearSpec(True), Conv2dSpec(), LinearSpec(True), Pool2dSpec()]
    source = render_ops(specs)
    assert source.count("\ndef _phc_linear_b(") == 1 and source.count("\nimport triton\n") == 1
    positions = [source.index(f"\ndef {s.symbol}(") for s in (LinearSpec(), Conv2dSpec(), Pool2dSpec())]
    assert positions == sorted(positions)


def test_spec_parameters_are_baked_into_the_source():
    source = render_op(Conv2dSpec(stride=3, padding=2, bias=False))
    assert "ih0 = (hw // OW) * 3 - 2" in source and "b_ptr" not in source
    assert "tl.static_range(1, 9)" in render_op(Pool2dSpec("max", 3, 2))


@pytest.mark.parametrize("spec", [Pool2dSpec("median", 2, 2), Pool2dSpec("max", 0, 2),
                                  Conv2dSpec(0, 0, True), Conv2dSpec(1, -1, True)])
def test_unsupported_specs_are_refused(spec):
    with pytest.raises(ValueError):
        render_op(spec)


def _golden_check(path: Path, text: str) -> None:
    if os.environ.get("PHC_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}; create it with PHC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"rendered source differs from {path}; if intended, refresh with PHC_UPDATE_GOLDEN=1")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_golden_source(spec):
    _golden_check(GOLDEN / f"{spec.name}.py", render_op(spec))


def test_golden_prelude():
    _golden_check(GOLDEN / "_prelude.py", render_prelude())


# ---- what the interpreter does not catch ----

def test_rendered_configs_pass_the_tile_check():
    tiles = all_tiles(SPECS)
    assert len(tiles) == 1 + 3 * 4 + 2 * 7 + 2
    assert [p for t in tiles for p in tile_check.check_kernel(t)] == []


def test_tile_check_flags_bad_configs():
    dot = ("BLOCK_M", "BLOCK_N", "BLOCK_K")
    blocks = lambda m, n, k: (("BLOCK_M", m), ("BLOCK_N", n), ("BLOCK_K", k))
    check = tile_check.check_config
    assert check(TileConfig(blocks(64, 8, 16), True), dot) == ["tl.dot tile BLOCK_N=8 < 16"]
    assert check(TileConfig(blocks(48, 16, 16), True), dot) == ["BLOCK_M=48 is not a power of two"]
    assert check(TileConfig(blocks(64, 8, 16), None), dot) == [
        "kernel has a tl.dot path but the config does not set USE_DOT"]
    assert check(TileConfig(blocks(128, 64, 32), False), dot) == [
        "tl.sum tile of 262144 elements spills registers"]
    assert check(TileConfig(blocks(16, 16, 16), True, num_warps=3), dot) == [
        "num_warps=3 is not a power of two <= 32"]
    one = TileConfig((("BLOCK_M", 16),))
    two_interp = KernelTiles("k", (("BLOCK_M", "M"),), (), (one,), (one, one))
    assert tile_check.check_kernel(two_interp) == [
        "k: the interpreter needs exactly one config (autotuning there is slow)"]


_COMPILE_SCRIPT = """
import json
from phc.emit.tile_check import TileConfig, compile_rendered
from phc.select.plan import Conv2dSpec, LinearSpec, Pool2dSpec
specs = [Conv2dSpec(2, 1, True), Pool2dSpec("max", 3, 2), Pool2dSpec("avg", 2, 2), LinearSpec(True)]
done, failures = compile_rendered(specs, arch=90)
bad = TileConfig((("BLOCK_M", 24), ("BLOCK_N", 16), ("BLOCK_K", 16)), use_dot=True)
print(json.dumps([done, failures, compile_rendered([LinearSpec(True)], 90, configs=[bad])[1]]))
"""


def test_kernels_compile_for_a_gpu():
    """Compiled for sm_90 without a GPU, in a fresh process: after interpreting kernels, Triton's
    interpreter leaves triton.language patched, so compiling in this process would fail."""
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_DEFAULT_FP_FUSION": "1"}
    proc = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done, failures, bad = json.loads(proc.stdout.strip().splitlines()[-1])
    assert failures == []
    assert done == 1 + 3 * 3 + 2 * 2 + 3   # bias grad; conv: 3 kernels x 3; two pools; linear
    assert len(bad) == 1 and "_phc_linear_b_mm_kernel" in bad[0]


# ---- the GPU benchmark: its non-GPU parts ----

@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "kernels.py"
    spec = importlib.util.spec_from_file_location("phc_bench_kernels", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module     # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_benchmark_cases_have_consistent_shapes(bench):
    names = set()
    for case in bench.cases():
        names.add(case.spec.name)
        y = case.reference(*[torch.randn(s) for s in case.shapes(2)])
        assert y.shape[0] == 2
    assert names == {"conv2d_s1_p0_b", "conv2d_s1_p2_b", "maxpool2d_k2_s2", "linear_b"}


def test_benchmark_report_helpers(bench):
    assert bench.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    table = bench.format_table([bench.Row("fc", 256, "fwd", 10.0, 25.0, 1e-6)])
    assert table.splitlines()[-1] == "| fc | 256 | fwd | 10.0 | 25.0 | 2.50x | 1.0e-06 |"


def test_benchmark_refuses_politely_without_cuda(bench, monkeypatch, capsys):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out
