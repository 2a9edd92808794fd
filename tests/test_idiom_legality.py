"""Legality of the idiom matchers, tested with near misses (docs/design.md, "Idioms").

Each near miss is an exact idiom but for one detail that changes what the loops compute: an
off-by-one window, a partial channel loop, a flipped index, a partial batch, a kernel indexed by
a host loop's variable. The matcher must decline (the nest stays on the universal path, visible
in the kernel plan) and the compiled function must compute what the loops say, on both backends.
Each near miss has its exact twin, which must match: otherwise a test of declining could pass
because the matcher never matches anything.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from helpers import compile_module
from phc import pipeline

CONV = """
def conv(x: ℝ[H, W], k: ℝ[K, L]): ℝ[m, n]:
    oh: ℝ = len(x) - len(k) + 1
    ow: ℝ = len(x[0]) - len(k[0]) + 1
    r: ℝ[oh, ow] = zeros(oh, ow)
    for i: ℕ(oh):
        for j: ℕ(ow):
            acc = 0
            for a: ℕ(KA):
                for b: ℕ(KB):
                    acc += x[i + a, j + b] * k[KIDX]
            r[i, j] = acc
    return r
"""

CHANNEL_CONV = """
def conv(x: ℝ[C, H, W], w: ℝ[O, C, K, K]): ℝ[O, m, n]:
    oh: ℝ = len(x[0]) - len(w[0][0]) + 1
    ow: ℝ = len(x[0][0]) - len(w[0][0][0]) + 1
    r: ℝ[OEXT, oh, ow] = zeros(OEXT, oh, ow)
    for o: ℕ(OEXT):
        for i: ℕ(oh):
            for j: ℕ(ow):
                acc = 0
                for c: ℕ(CEXT):
                    for a: ℕ(len(w[0][0])):
                        for b: ℕ(len(w[0][0][0])):
                            acc += x[c, i + a, j + b] * w[o, c, a, b]
                r[o, i, j] = acc
    return r
"""

POOL = """
def pool(x: ℝ[C, H, W]): ℝ[C, m, n]:
    rows: ℝ = (len(x[0]) - 1) // 2
    cols: ℝ = (len(x[0][0]) - 1) // 2
    r: ℝ[CEXT, rows, cols] = zeros(CEXT, rows, cols)
    for c: ℕ(CEXT):
        for i: ℕ(rows):
            for j: ℕ(cols):
                t = x[c, 2 * i, 2 * j]
                for a: ℕ(2):
                    for b: ℕ(2):
                        if x[c, 2 * i + a + SHIFT, 2 * j + b] > t:
                            t = x[c, 2 * i + a + SHIFT, 2 * j + b]
                r[c, i, j] = t
    return r
"""

LINEAR = """
def lin(x: ℝ[B, n], w: ℝ[m, n]): ℝ[B, m]:
    r: ℝ[BEXT, len(w)] = zeros(BEXT, len(w))
    for b: ℕ(BEXT):
        for i: ℕ(len(w)):
            acc = 0
            for j: ℕ(len(w[0])):
                acc += w[i, j] * x[b, j]
            r[b, i] = acc
    return r
"""

HOST_INDEXED = """
def damp(k: ℝ[P, Q]): ℝ:
    t = 0.0
    for a: ℕ(len(k)):
        for b: ℕ(len(k[0])):
            t = t * 0.5 + k[a, b]
    return t
def conv(x: ℝ[H, W], w: ℝ[O, K, K]): ℝ[O, m, n]:
    oh: ℝ = len(x) - len(w[0]) + 1
    ow: ℝ = len(x[0]) - len(w[0][0]) + 1
    r: ℝ[len(w), oh, ow] = zeros(len(w), oh, ow)
    for o: ℕ(len(w)):
        s = DAMP
        for i: ℕ(oh):
            for j: ℕ(ow):
                acc = 0
                for a: ℕ(len(w[0])):
                    for b: ℕ(len(w[0][0])):
                        acc += x[i + a, j + b] * w[o, a, b]
                r[o, i, j] = acc * s
    return r
"""


def _sub(text: str, **values) -> str:
    for k, v in values.items():
        assert k in text
        text = text.replace(k, v)
    return text


def _g():
    return torch.Generator().manual_seed(7)


def _rand(*shape):
    # a scaled permutation: no ties, so max pooling has one answer (and one gradient)
    n = torch.Size(shape).numel()
    return (torch.randperm(n, generator=_g()).float().reshape(shape) - n / 2) / 8


def _conv_ref(x, k, ka, kb, flip=False):
    """Σ_{a<ka, b<kb} x[i + a, j + b] · k[a, b] (k[b, a] when flipped) over the full kernel's outputs."""
    kk = (k.t() if flip else k)[:ka, :kb]
    oh, ow = x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1
    return F.conv2d(x[None, None], kk[None, None])[0, 0, :oh, :ow]


def _pool_ref(x, c, shift):
    rows, cols = (x.shape[1] - 1) // 2, (x.shape[2] - 1) // 2
    windows = x[:c, shift:, :].unfold(1, 2, 2).unfold(2, 2, 2)[:, :rows, :cols]
    return windows.amax(dim=(-1, -2))


@dataclass
class Case:
    name: str
    source: str
    function: str
    args: tuple
    reference: object
    matches: bool                   # the exact twin: the idiom must be found


X5, K3 = _rand(6, 5), _rand(3, 3)
X3C, W3C = _rand(3, 6, 5), _rand(4, 3, 2, 2)
XP = _rand(3, 7, 7)
XL, WL = _rand(5, 4), _rand(3, 4)
W3 = _rand(2, 2, 2)

CASES = [
    Case("conv-exact", _sub(CONV, KA="len(k)", KB="len(k[0])", KIDX="a, b"), "conv", (X5, K3),
         lambda x, k: _conv_ref(x, k, 3, 3), True),
    Case("conv-off-by-one-window", _sub(CONV, KA="len(k) - 1", KB="len(k[0])", KIDX="a, b"), "conv",
         (X5, K3), lambda x, k: _conv_ref(x, k, 2, 3), False),
    Case("conv-flipped-index", _sub(CONV, KA="len(k[0])", KB="len(k)", KIDX="b, a"), "conv",
         (X5, _rand(3, 3)), lambda x, k: _conv_ref(x, k, 3, 3, flip=True), False),
    Case("channel-conv-exact", _sub(CHANNEL_CONV, OEXT="len(w)", CEXT="len(x)"), "conv", (X3C, W3C),
         lambda x, w: F.conv2d(x[None], w)[0], True),
    Case("channel-conv-partial-channels", _sub(CHANNEL_CONV, OEXT="len(w)", CEXT="len(x) - 1"), "conv",
         (X3C, W3C), lambda x, w: F.conv2d(x[None, :2], w[:, :2])[0], False),
    Case("channel-conv-partial-out-channels", _sub(CHANNEL_CONV, OEXT="len(w) - 1", CEXT="len(x)"),
         "conv", (X3C, W3C), lambda x, w: F.conv2d(x[None], w[:3])[0], False),
    Case("pool-exact", _sub(POOL, CEXT="len(x)", SHIFT="0"), "pool", (XP,), lambda x: _pool_ref(x, 3, 0), True),
    Case("pool-off-by-one-window", _sub(POOL, CEXT="len(x)", SHIFT="1"), "pool", (XP,),
         lambda x: torch.maximum(x[:, 0:6:2, 0:6:2], _pool_ref(x, 3, 1)), False),
    Case("pool-partial-channels", _sub(POOL, CEXT="len(x) - 1", SHIFT="0"), "pool", (XP,),
         lambda x: _pool_ref(x, 2, 0), False),
    Case("linear-exact", _sub(LINEAR, BEXT="len(x)"), "lin", (XL, WL), lambda x, w: x @ w.t(), True),
    Case("linear-partial-batch", _sub(LINEAR, BEXT="len(x) - 1"), "lin", (XL, WL),
         lambda x, w: x[:-1] @ w.t(), False),
    Case("conv-weight-host-indexed", _sub(HOST_INDEXED, DAMP="damp(w[o])"), "conv", (X5, W3),
         lambda x, w: torch.stack([_conv_ref(x, w[o], 2, 2) * _damp(w[o]) for o in range(2)]), False),
]


def _damp(k):
    t = torch.tensor(0.0)
    for v in k.flatten():
        t = t * 0.5 + v
    return t


def _matches_in(case: Case, backend: str):
    plan = pipeline.compile_source(case.source, f"{case.name}.phk", backend).plan
    return [m for fn, _, m in plan.matches if fn == case.function], plan


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matcher_declines_near_misses_and_takes_exact_idioms(case):
    found, plan = _matches_in(case, "triton")
    assert bool(found) == case.matches, plan.text()
    if not case.matches:
        assert any(fn == case.function for fn, _ in plan.universal), plan.text()


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_near_misses_compute_what_the_loops_say(case, backend):
    module = compile_module(case.source, backend, case.name.replace("-", "_"))
    got = getattr(module, case.function)(*[a.clone() for a in case.args])
    torch.testing.assert_close(got, case.reference(*case.args), atol=1e-5, rtol=1e-5)


def test_reduction_extent_covering_one_operand_cuts_the_other():
    """S1/S2's rule, on the glue: a k loop over w's row length reads only that much of x."""
    import runtime as rt
    w, x = _rand(2, 3), _rand(5)
    torch.testing.assert_close(rt.idioms.linear(x, w, 2, False, n_k=3), w @ x[:3])
    with pytest.raises(IndexError):
        rt.idioms.linear(x[:2], w, 2, False, n_k=3)      # the loop would read x[2]


def test_guarded_conv_past_the_padded_input_gives_zeros():
    """AE's rule, on the glue: more outputs than the padded input allows are sums of zeros."""
    import runtime as rt
    x, k = _rand(4, 4), _rand(3, 3)
    got = rt.idioms.conv2d(x, k, 2, 4, 3, False, False, False, None, 1, None, True)
    padded = F.pad(x, (1, 4, 1, 4))
    want = F.conv2d(padded[None, None], k[None, None], stride=2)[0, 0, :4, :3]
    torch.testing.assert_close(got, want)
    with pytest.raises(IndexError):
        rt.idioms.conv2d(x, k, 2, 4, 3, False, False, False, None, 1, None, False)


def test_plan_lists_every_kernel_the_module_calls():
    """T: an idiom inside an imperative nest or a host loop is in the plan, and the module defines
    every `_phc_` wrapper it calls."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    sources = [(c.name, c.source) for c in CASES]
    sources += [(p.stem, p.read_text(encoding="utf-8")) for p in sorted((root / "tests" / "regressions").glob("*.phk"))]
    sources += [(p.stem, p.read_text(encoding="utf-8")) for p in sorted((root / "examples").glob("*.phk"))]
    for name, source in sources:
        try:
            compiled = pipeline.compile_source(source, f"{name}.phk", "triton")
        except Exception:       # noqa: BLE001 - programs of other bug classes may not compile yet
            continue
        called = {s for line in compiled.python.splitlines() if "rt.idioms." in line
                  for s in re.findall(r"\b(_phc_(?!u_)[a-z0-9_]+)\b", line)}   # `_phc_u_…`: a phc-named value
        planned = {m.spec.symbol for _, _, m in compiled.plan.matches}
        assert called <= planned, (name, called, planned)
        for symbol in called:
            assert f"\ndef {symbol}(" in compiled.python, (name, symbol)


def test_glue_refuses_sub_tensor_loads():
    """The IR has no ranks: `w[i, j] * x[j]` of a matrix x reads rows, which a matrix-vector
    product would misread. The glue checks the ranks and raises rather than guess."""
    import runtime as rt
    with pytest.raises(IndexError, match="rank 2 with 1 indices"):
        rt.idioms.linear(_rand(3, 2), _rand(2, 3), 2, False, n_k=3)
    with pytest.raises(IndexError, match="rank 4 with 3 indices"):
        rt.idioms.pool2d(_rand(2, 4, 4, 3), "max", 2, 2, 2, 2, "first", None, 3)
