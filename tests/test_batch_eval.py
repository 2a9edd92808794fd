"""A host loop whose iterations are independent runs as one batched forward (phc/ir/batch.py):
the seed's evaluation loop, compared with level 0 (the reference semantics), and loops the
transformation must leave alone, which still agree with level 0."""
import itertools
import re

import pytest
import torch

from helpers import run_program, same_output
from phc import pipeline
from phc import runtime as rt
from phc.loader import load_module

_count = itertools.count()


def _load(src: str, opt: int):
    compiled = pipeline.compile_source(src, "batch.phk", "torch", opt=opt)
    module, _ = load_module(compiled.python, f"batch_eval_o{opt}_{next(_count)}")
    return compiled, module


def _run(src: str, opt: int):
    compiled, module = _load(src, opt)
    rt.manual_seed(0)
    return compiled, module, module.main()


def _same(a, b):
    ta, tb = torch.as_tensor(a), torch.as_tensor(b)
    assert ta.shape == tb.shape and torch.equal(ta.double(), tb.double()), (a, b)


def _short_seed(source: str) -> str:
    """The seed with one epoch on 8 images and a test set of 12 (the same code otherwise)."""
    src = re.sub(r"epochs: ℕ = \d+", "epochs: ℕ = 1", source)
    return src.replace("create_dataset(80, 100)", "create_dataset(40, 20)")


def _batched_branch(python: str) -> str:
    """The generated lines of the batched form: from the guard to its `else:`."""
    lines = python.splitlines()
    start = next(k for k, line in enumerate(lines) if "rt.batch_runs(" in line)
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(k for k in range(start + 1, len(lines))
               if lines[k].strip() and len(lines[k]) - len(lines[k].lstrip()) <= indent)
    assert lines[end].strip().startswith("else:")
    return "\n".join(lines[start:end])


@pytest.fixture(scope="module")
def seed_runs(seed_source):
    src = _short_seed(seed_source)
    return src, _run(src, 0), _run(src, 2)


def test_seed_evaluation_agrees_with_level0(seed_runs):
    _, (_, _, want), (_, _, got) = seed_runs
    for name in ("accuracy", "correct", "pred_class", "y_true", "i"):
        _same(got[name], want[name])
    torch.testing.assert_close(torch.as_tensor(got["y_pred"]), torch.as_tensor(want["y_pred"]), rtol=1e-5, atol=1e-6)
    _same(got["x"], want["x"])
    assert not [k for k in got if "⟨" in k]          # phc's temporaries are not the program's


def test_seed_evaluation_is_one_batched_forward(seed_runs, monkeypatch):
    src, (_, _, want), (compiled, module, _) = seed_runs
    branch = _batched_branch(compiled.python)
    assert "for " not in branch and "cnn_object(" not in branch
    assert "rt.idioms.conv2d(" in branch                # the batched conv idiom
    # it is the branch that runs: λ is never called per test image (training runs as adjoint
    # code, without calls), unless the guard refuses, and then the loop runs as it was
    calls = []
    method = module.ConvNets.__call__
    monkeypatch.setattr(module.ConvNets, "__call__", lambda this, *a: calls.append(1) or method(this, *a))
    rt.manual_seed(0)
    module.main()
    assert calls == []
    monkeypatch.setattr(rt, "batch_runs", lambda lo, hi: False)
    rt.manual_seed(0)
    literal = module.main()
    assert len(calls) == 12
    for name in ("accuracy", "correct", "pred_class", "y_true", "i"):
        _same(literal[name], want[name])


def test_seed_affine_ir_shows_the_batched_loop(seed_source):
    from phc.ir.printer import format_module
    program, typed = pipeline.frontend(seed_source, "cnn_seed.phk")
    text = format_module(pipeline.lower(typed))
    assert "if batch_runs(0, floor(len_test_X))" in text
    assert "batch_add_count(correct, %r0)" in text


NET = """
def score(v: ℝ[n], w: ℝ[n]): ℝ:
    s: ℝ[n] = for k: ℕ(len(v)) -> v[k] * w[k]
    t = sum(s)
    return t

X: ℝ[5, 3] = [[1.5, -0.25, 0.75], [-1.0, 0.5, 0.125], [0.25, 0.5, -1.75], [1.25, 1.0, 0.5], [-0.5, -0.75, 1.0]]
w: ℝ[3] = [0.5, -1.25, 0.75]
"""


def _agree(src: str):
    want = run_program(src, opt=0)
    got = run_program(src, opt=2)
    assert want.strip() and same_output(got, want), (got, want)
    return pipeline.compile_source(src, "batch.phk", "torch").python


COUNTING = NET + """
positive: ℕ = 0
total: ℝ = 0
for i: ℕ(len(X)):
    r = X[i]
    p = score(r, w)
    if p > 0.0:
        positive += 1
    total += 1
print(positive)
print(total)
print(p)
print(r)
print(i)
"""


def test_a_function_loop_with_integer_counts_is_batched_and_agrees():
    python = _agree(COUNTING)
    assert "rt.batch_runs(" in python


def test_an_empty_loop_leaves_the_variables_as_they_were():
    src = COUNTING.replace("for i: ℕ(len(X)):", "p: ℝ = 7.0\nr: ℝ[3] = [0.5, 0.5, 0.5]\ni: ℕ = 3\nfor i: ℕ(len(X) - 5):")
    _agree(src)


def test_a_count_from_a_non_integral_start_runs_the_loop():
    src = COUNTING.replace("total: ℝ = 0", "total: ℝ = 0.1")
    _agree(src)


def test_an_index_out_of_range_still_raises_as_the_loop_does():
    src = COUNTING.replace("for i: ℕ(len(X)):", "for i: ℕ(len(X) + 1):")
    errors = []
    for opt in (0, 2):
        with pytest.raises(Exception) as info:
            run_program(src, opt=opt)
        errors.append(info.type)
    assert errors[0] is errors[1]


LEFT_ALONE = {
    "a print": ("    if p > 0.0:\n        positive += 1\n", "    if p > 0.0:\n        positive += 1\n    print(p)\n"),
    "a real sum of data": ("    total += 1\n", "    total += p\n"),
    "a store": ("    total += 1\n", "    total += 1\n    X[i, 0] = p\n"),
    "a loop-carried value": ("    r = X[i]\n", "    r = X[i] * total\n"),
    "a carried count": ("    total += 1\n", "    total += 1\n    q = total\n"),
}


@pytest.mark.parametrize("why", sorted(LEFT_ALONE))
def test_loops_it_must_leave_alone_agree_with_level0(why):
    old, new = LEFT_ALONE[why]
    assert old in COUNTING
    python = _agree(COUNTING.replace(old, new))
    assert "rt.batch_runs(" not in python


CLASS_NET = """
class Layer:
    w: ℝ[3, 4]
    c: ℝ[3]
    t: ℝ
    def act(v: ℝ[m]): ℝ[m]:
        r: ℝ[m] = for k: ℕ(len(v)) -> tanh(v[k]) * this.t
        return r
    def λ(x: ℝ[n]) -> ℝ[m]:
        z: ℝ[len(this.w)] = zeros(len(this.w))
        for o: ℕ(len(this.w)):
            acc = 0.0
            for k: ℕ(len(x)):
                acc += this.w[o, k] * x[k]
            z[o] = acc + this.c[o]
        a = this.act(z)
        return a

W: ℝ[3, 4] = [[0.5, -0.25, 0.125, 1.0], [-0.75, 0.5, 0.25, -0.5], [0.25, 1.5, -1.0, 0.75]]
c: ℝ[3] = [0.1, -0.2, 0.3]
net: Layer = Layer(W, c, 1.5)
D: ℝ[6, 4] = [[1.0, 0.5, -0.5, 0.25], [-1.0, 0.75, 0.5, -0.25], [0.5, -1.5, 1.0, 0.125], [0.25, 0.25, -0.75, 1.5], [-0.5, 1.0, 0.5, -1.0], [1.25, -0.25, 0.75, 0.5]]
labels: ℝ[6] = [0, 1, 2, 1, 0, 2]
hits: ℝ = 0
big: ℕ = 2
"""

VARIED = {
    "a class with fields and a helper method": CLASS_NET + """
for i: ℕ(len(D)):
    y = net(D[i])
    lab = labels[i]
    if y[2] > y[0] and y[2] > y[1]:
        hits += 1
    if lab == 2:
        big += 3
print(hits)
print(big)
print(y)
print(lab)
print(i)
""",
    "a shifted range": CLASS_NET + """
for i: ℕ(2, len(D)):
    y = net(D[i])
    s = sum(y)
    if s > net.t:
        hits += 1
print(hits)
print(s)
print(i)
""",
    "a per-iteration scalar of a field": CLASS_NET + """
for i: ℕ(len(D)):
    x = D[i]
    y = net(x)
    m = y[0] * net.t + x[3]
    if m > 0.0:
        hits += 2
print(hits)
print(m)
""",
}


@pytest.mark.parametrize("why", sorted(VARIED))
def test_varied_batched_loops_agree_with_level0(why):
    python = _agree(VARIED[why])
    assert "rt.batch_runs(" in python, why


# ---------------------------------------------------------------- random evaluation loops

def _random_loop_program(seed: int) -> str:
    """An evaluation-style loop over the rows of X through random straight-line functions, with
    random counts, ranges (one past the end included) and, sometimes, something that refuses."""
    import random
    rnd = random.Random(seed)
    rows, cols = rnd.randint(1, 5), rnd.randint(1, 4)
    num = lambda: f"{rnd.choice([-1, 1]) * rnd.randint(1, 199) / 100:.2f}"   # noqa: E731
    X = "[" + ", ".join("[" + ", ".join(num() for _ in range(cols)) + "]" for _ in range(rows)) + "]"
    w = "[" + ", ".join(num() for _ in range(cols)) + "]"
    element = rnd.choice(["v[k] * w[k]", "tanh(v[k]) + w[k]", "exp(v[k] * 0.5) - w[k]",
                          "relu(v[k] - w[k])", "v[k] * v[k] * 0.25"])
    lo = rnd.choice(["0", "0", "1"])
    hi = rnd.choice(["len(X)", "len(X)", "len(X) - 1", "len(X) + 1"])
    start = rnd.choice(["0", "0", "3", "0.5"])
    cond2 = rnd.choice(["t < " + num(), "t < " + num() + " and s > " + num(), "a[0] > s"])
    extra = rnd.choice(["", "", "", "    print(s)\n", "    total += s\n", "    X[i, 0] = s\n"])
    return f"""
def relu(z: ℝ): ℝ:
    if z > 0:
        return z
    else:
        return 0.0

def feature(v: ℝ[n], w: ℝ[n]): ℝ[n]:
    r: ℝ[n] = for k: ℕ(len(v)) -> {element}
    return r

def score(v: ℝ[n], w: ℝ[n]): ℝ:
    a: ℝ[n] = feature(v, w)
    s = sum(a)
    return s * 0.5

X: ℝ[{rows}, {cols}] = {X}
w: ℝ[{cols}] = {w}
n_pos: ℕ = 0
total: ℝ = {start}
s: ℝ = 9.5
for i: ℕ({lo}, {hi}):
    x = X[i]
    a = feature(x, w)
    s = score(x, w)
    t = a[0] * 2.0 + s
    if s > {num()}:
        n_pos += 1
    if {cond2}:
        total += 2
{extra}print(n_pos)
print(total)
print(s)
print(i)
"""


def _outcome(src: str, opt: int):
    try:
        return "ok", run_program(src, opt=opt)
    except Exception as e:      # noqa: BLE001 — both levels must fail alike
        return "error", type(e).__name__


@pytest.mark.parametrize("seed", range(40))
def test_random_evaluation_loops_agree_with_level0(seed):
    src = _random_loop_program(seed)
    (k0, v0), (k2, v2) = _outcome(src, 0), _outcome(src, 2)
    assert k0 == k2, (src, v0, v2)
    assert v0 == v2 if k0 == "error" else same_output(v2, v0), (src, v0, v2)


def test_random_evaluation_loops_are_mostly_batched():
    """The generator above exercises the transformation (not only its refusals)."""
    batched = sum("rt.batch_runs(" in pipeline.compile_source(_random_loop_program(s), "r.phk", "torch").python
                  for s in range(40))
    assert batched >= 20
