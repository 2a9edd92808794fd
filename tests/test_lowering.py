"""Lowering and vectorisation preserve meaning: for each small program, the IR reference evaluator
(loop by loop), the generated module on the universal path, the generated module with idioms,
and a hand-written torch reference agree on random inputs."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from phc.ir import nodes as n

from helpers import compile_module, evaluator

PROGRAMS = Path(__file__).parent / "programs"
g = torch.Generator().manual_seed(0)


def rnd(*shape):
    return torch.randn(*shape, generator=g)


# function name -> (program, inputs, torch reference)
CASES = {
    "conv_s2": ("strided_conv", lambda: (rnd(9, 8), rnd(3, 3)),
                lambda x, k: F.conv2d(x[None, None], k[None, None], stride=2)[0, 0]),
    "conv_c": ("channel_conv", lambda: (rnd(3, 6, 5), rnd(2, 3, 3, 3), rnd(2)),
               lambda x, w, b: F.conv2d(x[None], w, b, padding=1)[0]),
    "conv_cv": ("channel_conv_valid", lambda: (rnd(3, 7, 6), rnd(4, 3, 3, 3), rnd(4)),
                lambda x, w, b: F.conv2d(x[None], w, b)[0]),
    "avgpool": ("avgpool", lambda: (rnd(7, 6),), lambda x: F.avg_pool2d(x[None], 2)[0]),
    "matmul": ("matmul", lambda: (rnd(4, 5), rnd(5, 3)), lambda a, b: a @ b),
    "sumsq": ("reduction", lambda: (rnd(7),), lambda x: (x * x).sum()),
    "mean2d": ("reduction", lambda: (rnd(3, 4),), lambda x: x.mean()),
    "argmax": ("argmax", lambda: (rnd(9),), lambda v: v.argmax().float()),
    "gather": ("gather", lambda: (rnd(6), torch.tensor([5.0, 0.0, 2.0, 2.0])), lambda x, i: x[i.long()]),
    "set_diag": ("partial_store", lambda: (rnd(4, 4), 7.0),
                 lambda x, v: x.clone().fill_diagonal_(v)),
    "maxpool3": ("maxpool_reduce", lambda: (rnd(9, 8),), lambda x: F.max_pool2d(x[None], 3, 2)[0]),
    "batched_linear": ("transpose_linear", lambda: (rnd(5, 4), rnd(3, 4), rnd(3)),
                       lambda x, w, c: F.linear(x, w, c)),
    "transposed": ("transpose_linear", lambda: (rnd(4, 3), rnd(4)), lambda w, y: w.t() @ y),
    "softmax": ("comprehension", lambda: (rnd(6),), lambda x: torch.softmax(x, 0)),
    "flatten": ("comprehension", lambda: (rnd(3, 4),), lambda x: x.flatten()),
}


def _clone(args):
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


@pytest.mark.parametrize("fn", sorted(CASES))
@pytest.mark.parametrize("backend", ["universal", "torch"])
def test_backends_agree_with_reference(fn, backend):
    prog, make, ref = CASES[fn]
    source = (PROGRAMS / f"{prog}.phk").read_text(encoding="utf-8")
    args = make()
    want = ref(*_clone(args))
    got = getattr(compile_module(source, backend, prog), fn)(*_clone(args))
    torch.testing.assert_close(torch.as_tensor(got).float(), torch.as_tensor(want).float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fn", sorted(CASES))
def test_reference_evaluator_agrees(fn):
    prog, make, ref = CASES[fn]
    source = (PROGRAMS / f"{prog}.phk").read_text(encoding="utf-8")
    args = make()
    got = evaluator(source, prog).call(fn, *_clone(args))
    torch.testing.assert_close(torch.as_tensor(got).float(), torch.as_tensor(ref(*_clone(args))).float(),
                               atol=1e-5, rtol=1e-5)


def test_out_of_range_nest_raises_instead_of_reading_garbage():
    src = "def f(x: ℝ[n]): ℝ[n]:\n    return for i: ℕ(len(x)) -> x[i + 1]\n"
    for backend in ("universal", "torch"):
        with pytest.raises(IndexError, match="out of range"):
            compile_module(src, backend).f(torch.ones(4))


def test_accumulating_store_sums_over_the_reduction_loop():
    src = ("def colsum(x: ℝ[m, n], r: ℝ[n]): ℝ[n]:\n    for i: ℕ(len(x)):\n        for j: ℕ(len(x[0])):\n"
           "            r[j] = r[j] + x[i, j]\n    return r\n")
    x = rnd(4, 3)
    for backend in ("universal", "torch"):
        got = compile_module(src, backend).colsum(x, torch.ones(3))
        torch.testing.assert_close(got, 1 + x.sum(0))


def test_overwriting_the_same_element_keeps_sequential_semantics():
    src = ("def last(x: ℝ[m], r: ℝ[1]): ℝ[1]:\n    for i: ℕ(len(x)):\n        r[0] = x[i]\n    return r\n")
    x = rnd(5)
    got = compile_module(src, "torch").last(x, torch.zeros(1))
    assert got.item() == x[-1].item()


# ---------------------------------------------------------------- regressions found by the examples

REGRESSIONS = {
    "batched_flatten": ("def flatten(x: ℝ[B, H, W]): ℝ[B, n]:\n    rows: ℝ = len(x[0])\n    cols: ℝ = len(x[0][0])\n"
                        "    r: ℝ[len(x), rows * cols] = for b: ℕ(len(x)) -> for i: ℕ(rows * cols) -> 0\n"
                        "    for b: ℕ(len(x)):\n        for i: ℕ(rows):\n            for j: ℕ(cols):\n"
                        "                r[b, i*cols + j] = x[b, i, j]\n    return r\n",
                        "flatten", lambda: (rnd(2, 2, 3),), lambda x: x.reshape(2, 6)),
    "rows_of_rank3": ("def rows(X: ℝ[S, H, W], t: ℕ): ℝ[k, H, W]:\n    return for b: ℕ(2) -> X[t*2 + b]\n",
                      "rows", lambda: (rnd(4, 2, 3), 1), lambda X, t: X[2:4]),
    "gather_in_reduction": ("def ce(p: ℝ[B, n], labels: ℕ[B]): ℝ:\n    total = 0\n    for b: ℕ(len(p)):\n"
                            "        total += -log(p[b, labels[b]])\n    return total / len(p)\n",
                            "ce", lambda: (torch.rand(3, 4) + 0.1, torch.tensor([0, 3, 1])),
                            lambda p, y: -torch.log(p[torch.arange(3), y]).mean()),
    "row_softmax_with_max": ("def softmax(z: ℝ[B, n]): ℝ[B, n]:\n    r: ℝ[len(z), len(z[0])] = for b: ℕ(len(z)) -> for i: ℕ(len(z[0])) -> 0\n"
                             "    for b: ℕ(len(z)):\n        top = z[b, 0]\n        for i: ℕ(len(z[0])):\n"
                             "            if z[b, i] > top:\n                top = z[b, i]\n        total = 0\n"
                             "        for i: ℕ(len(z[0])):\n            total += exp(z[b, i] - top)\n"
                             "        for i: ℕ(len(z[0])):\n            r[b, i] = exp(z[b, i] - top) / total\n    return r\n",
                             "softmax", lambda: (rnd(3, 5),), lambda z: torch.softmax(z, 1)),
}


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
@pytest.mark.parametrize("backend", ["universal", "torch"])
def test_regressions(case, backend):
    src, fn, make, ref = REGRESSIONS[case]
    args = make()
    got = getattr(compile_module(src, backend, case), fn)(*_clone(args))
    torch.testing.assert_close(torch.as_tensor(got).float(), ref(*_clone(args)).float(), atol=1e-5, rtol=1e-5)


def test_list_items_are_not_tensor_indices():
    src = "data = create_digits(80, 0)\nX_train = data[0][0]\nn = len(X_train)\n"
    assert compile_module(src, "torch", "items").main()["n"] == 1437


def test_builtins_the_checker_accepts_run(capsys):
    src = "x: ℝ[3] = [1, 5, 2]\nargmax(x)\nmax(x)\nsum(x)\nz = zeros(2, 2)\nz\nprint(x)\np = shuffle_indices(4, 0)\nlen(p)\n"
    compile_module(src, "torch", "builtins").main()
    assert capsys.readouterr().out.splitlines() == [
        "1 ∈ ℝ", "5.0 ∈ ℝ", "8.0 ∈ ℝ", "[[0.0, 0.0], [0.0, 0.0]] ∈ ℝ[2,2]", "[1.0, 5.0, 2.0] ∈ ℝ[3]", "4 ∈ ℝ"]


def test_comprehension_gathers_rows_through_a_permutation():
    src = "def pick(X: ℝ[S, k], order: ℕ[m]): ℝ[m, k]:\n    return for b: ℕ(len(order)) -> X[order[b]]\n"
    X, order = rnd(5, 3), torch.tensor([3, 0, 4])
    for backend in ("universal", "torch"):
        torch.testing.assert_close(compile_module(src, backend).pick(X, order), X[order])
    with pytest.raises(IndexError, match="out of range"):
        compile_module(src, "torch").pick(X, torch.tensor([7]))


def test_variables_of_a_loop_that_never_ran_are_absent_from_main():
    src = "n: ℕ = 0\nfor i: ℕ(n):\n    g = i * 2\nm = 1\n"
    out = compile_module(src, "torch", "zero_trip").main()
    assert "g" not in out and out["m"] == 1


def test_zeros_is_an_allocation_a_nest_may_overwrite():
    src = ("def flat(x: ℝ[B, C, H, W]): ℝ[B, n]:\n    size: ℝ = len(x[0]) * len(x[0][0]) * len(x[0][0][0])\n"
           "    r: ℝ[len(x), size] = zeros(len(x), size)\n    for b: ℕ(len(x)):\n        for c: ℕ(len(x[0])):\n"
           "            for i: ℕ(len(x[0][0])):\n                for j: ℕ(len(x[0][0][0])):\n"
           "                    r[b, (c*len(x[0][0]) + i)*len(x[0][0][0]) + j] = x[b, c, i, j]\n    return r\n")
    from helpers import evaluator
    ir = evaluator(src, "flat").module
    assert isinstance(ir.functions[0].body[-1].value, n.Reshape)
    x = rnd(2, 3, 2, 2)
    torch.testing.assert_close(compile_module(src, "torch", "flat").flat(x), x.reshape(2, 12))


SOFTMAX_ROWS = ("def softmax(z: ℝ[B, n]): ℝ[B, n]:\n    r: ℝ[len(z), len(z[0])] = zeros(len(z), len(z[0]))\n"
                "    for b: ℕ(len(z)):\n        top = z[b, 0]\n        for i: ℕ(len(z[0])):\n"
                "            if z[b, i] > top:\n                top = z[b, i]\n        total = 0\n"
                "        for i: ℕ(len(z[0])):\n            total += exp(z[b, i] - top)\n"
                "        for i: ℕ(len(z[0])):\n            r[b, i] = exp(z[b, i] - top) / total\n    return r\n")


def test_inlining_never_captures_a_loop_variable():
    src = SOFTMAX_ROWS + "\ndef probs(x: ℝ[B, n]): ℝ[B, n]:\n    return softmax(x)\n"
    z = rnd(3, 4)
    for backend in ("universal", "torch"):
        torch.testing.assert_close(compile_module(src, backend, "capture").probs(z), torch.softmax(z, 1))


def test_an_expensive_argument_of_an_inlined_call_is_computed_once(capsys):
    src = ("def noisy(x: ℝ[n]): ℝ[n]:\n    physika_print(1)\n    return x\n\n"
           "def twice(v: ℝ[n]): ℝ[n]:\n    return for i: ℕ(len(v)) -> v[i] + v[i]\n\n"
           "y = twice(noisy([1, 2]))\ny\n")
    compile_module(src, "torch", "once").main()
    assert capsys.readouterr().out.splitlines() == ["1 ∈ ℝ", "[2.0, 4.0] ∈ ℝ[2]"]


def test_instances_of_classes_without_grad_fields():
    src = ("class Scale:\n    w: ℝ[3]\n    def λ(x: ℝ[3]) -> ℝ[3]:\n        return for i: ℕ(3) -> this.w[i] * x[i]\n\n"
           "s: Scale = Scale([1.0, 2.0, 3.0])\nx: ℝ[3] = [1.0, 1.0, 1.0]\ny = s(x)\n")
    assert compile_module(src, "torch", "scale").main()["y"].tolist() == [1.0, 2.0, 3.0]
