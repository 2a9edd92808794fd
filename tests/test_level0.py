"""Level 0 (`opt=0`, the literal reference semantics) against level 2 (the optimised module).

Level 0 runs every loop element by element in Python, so the network programs are compared
function by function on small inputs (values and gradients), and the seed and the digits
network over their forward pass and one training step on the same weights; the seed also runs
whole on a few images. Then the fallback: a program the optimiser fails on runs at level 0 with
a performance note naming the line.
"""
from __future__ import annotations

import contextlib
import functools
import io
import itertools
import re
from pathlib import Path

import pytest
import torch

from helpers import run_program, same_output
from phc import pipeline
from phc.loader import load_module
from phc.types import ScalarT, TensorT

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = sorted((ROOT / "tests" / "programs").glob("*.phk"))
EXAMPLES = sorted((ROOT / "examples").glob("*.phk"))
TOL = dict(rtol=1e-5, atol=1e-6)
_count = itertools.count()


def load(source: str, opt: int, name: str = "prog"):
    compiled = pipeline.compile_source(source, f"{name}.phk", "torch", opt=opt)
    module, _ = load_module(compiled.python, f"{name}_lvl{opt}_{next(_count)}")
    return module


@functools.cache
def both(path: Path):
    source = path.read_text(encoding="utf-8")
    return load(source, 0, path.stem), load(source, 2, path.stem)


def close(a, b) -> None:
    torch.testing.assert_close(torch.as_tensor(a).double(), torch.as_tensor(b).double(), equal_nan=True, **TOL)


def leaves(args):
    return [a.detach().clone().requires_grad_(True) if isinstance(a, torch.Tensor) and a.is_floating_point()
            else a for a in args]


def compare_call(fn0, fn2, args, seed: int = 0) -> None:
    """The same values, and the same gradients of a weighted sum of the result w.r.t. every real
    tensor argument, at both levels."""
    results = []
    for fn in (fn0, fn2):
        xs = leaves(args)
        torch.manual_seed(seed)
        # each real argument is a copy of a leaf: a function may write into its arguments
        out = fn(*[x.clone() if isinstance(x, torch.Tensor) and x.requires_grad else x for x in xs])
        reals = [x for x in xs if isinstance(x, torch.Tensor) and x.requires_grad]
        grads = []
        if isinstance(out, torch.Tensor) and out.requires_grad and reals:
            w = torch.linspace(0.5, 1.5, out.numel()).reshape(out.shape)
            grads = [torch.zeros_like(x) if g is None else g
                     for x, g in zip(reals, torch.autograd.grad((out * w).sum(), reals, allow_unused=True))]
        results.append((out, grads))
    (v0, g0), (v2, g2) = results
    close(v0, v2)
    assert len(g0) == len(g2)
    for a, b in zip(g0, g2):
        close(a, b)


# ---------------------------------------------------------------- tests/programs: the lowering cases

def test_every_small_program_has_a_case():
    from test_lowering import CASES
    assert {p.stem for p in PROGRAMS} == {prog for prog, _, _ in CASES.values()}


@pytest.mark.parametrize("fn", sorted(__import__("test_lowering").CASES))
def test_small_program_functions_agree(fn):
    from test_lowering import CASES
    prog, make, _ = CASES[fn]
    m0, m2 = both(ROOT / "tests" / "programs" / f"{prog}.phk")
    compare_call(getattr(m0, fn), getattr(m2, fn), make())


# ---------------------------------------------------------------- every function of the examples and the seed

SIZES = {"H": 6, "W": 6}        # a shape symbol's size in the generated inputs (else 3)


def inputs_for(typed_fn, positive: bool, g: torch.Generator) -> list:
    """Arguments of the declared parameter types; symbols of one signature share a size."""
    args = []
    for t in typed_fn.params.values():
        dims = [d if isinstance(d, int) else SIZES.get(d, 3) for d in getattr(t, "dims", ())]
        if isinstance(t, TensorT) and t.kind.value == "ℝ":
            x = torch.randn(*dims, generator=g)
            args.append(x.abs() + 0.1 if positive else x)
        elif isinstance(t, TensorT):
            args.append(torch.randint(0, 3, dims, generator=g))
        elif isinstance(t, ScalarT) and t.kind.value == "ℝ":
            args.append(torch.tensor(2.5))       # a size too: ℕ(2.5) counts 2
        elif isinstance(t, ScalarT):
            args.append(1)
        else:
            return None
    return args


def function_cases():
    out = []
    for path in EXAMPLES:          # the seed among them (examples/cnn_seed.phk)
        _, typed = pipeline.frontend(path.read_text(encoding="utf-8"), path.name)
        out += [(path, name) for name in typed.functions]
    return out


@pytest.mark.parametrize("path,name", function_cases(), ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_example_functions_agree(path, name):
    source = path.read_text(encoding="utf-8")
    _, typed = pipeline.frontend(source, path.name)
    info = typed.functions[name]
    from phc import ast as A
    positive = any(isinstance(x, A.Name) and x.id in ("log", "sqrt") for x in A.walk(info.node))
    args = inputs_for(info, positive, torch.Generator().manual_seed(7))
    assert args is not None, f"{name}: a parameter of a type the test cannot make"
    m0, m2 = both(path)
    compare_call(getattr(m0, m0_name(m0, name)), getattr(m2, m0_name(m2, name)), args)


def m0_name(module, name: str) -> str:
    return name if hasattr(module, name) else name + "_"


# ---------------------------------------------------------------- forward pass and one training step

def train_step(module, make_net, x, y, lr: float = 0.1):
    """The loss, its gradients w.r.t. every field, and the loss after one SGD step."""
    net = make_net(module)
    loss = module.cross_entropy(net(x), y)
    params = [getattr(net, f) for f in net._fields]
    grads = torch.autograd.grad(loss, params)
    stepped = type(net)(*[p - lr * g for p, g in zip(params, grads)])
    return [loss, *grads, module.cross_entropy(stepped(x), y)]


def compare_steps(path: Path, make_net, x, y) -> None:
    m0, m2 = both(path)
    for a, b in zip(train_step(m0, make_net, x, y), train_step(m2, make_net, x, y)):
        close(a, b)


def test_seed_forward_and_one_training_step_agree(seed_path):
    g = torch.Generator().manual_seed(3)
    fields = [torch.randn(3, 3, generator=g), torch.tensor(0.1), torch.randn(10, 169, generator=g) * 0.1,
              torch.randn(10, generator=g) * 0.1]
    x, y = torch.rand(28, 28, generator=g), torch.tensor(3.0)
    compare_steps(seed_path, lambda m: m.ConvNets(*[f.clone() for f in fields]), x, y)


def test_digits_convnet_forward_and_one_training_step_agree():
    g = torch.Generator().manual_seed(4)
    shapes = [(3, 3), (), (10, 36), (10,), (10, 10), (10,)]
    fields = [torch.randn(s, generator=g) * 0.3 for s in shapes]
    x, y = torch.rand(2, 8, 8, generator=g), torch.tensor([3, 7])
    compare_steps(ROOT / "examples" / "digits_convnet.phk", lambda m: m.ConvNet(*[f.clone() for f in fields]), x, y)


def test_seed_runs_whole_alike_on_a_few_images(seed_source):
    """Both levels run the seed's main() (training, then evaluation) on 4 + 1 images."""
    source = seed_source.replace("epochs: ℕ = 20", "epochs: ℕ = 1").replace("create_dataset(80, 100)",
                                                                            "create_dataset(80, 5)")
    outputs = []
    for opt in (0, 2):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            result = load(source, opt, "seed_short").main()
        outputs.append((out.getvalue(), result))
    (out0, r0), (out2, r2) = outputs
    assert out0.strip() and same_output(out0, out2)
    for name in ("accuracy", "correct", "loss"):
        close(r0[name], r2[name])
    for f in ("kernel", "b1", "w", "b2"):
        close(getattr(r0["cnn_object"], f), getattr(r2["cnn_object"], f))


# ---------------------------------------------------------------- the reference semantics itself

@pytest.mark.parametrize("source,want", [
    ("x: ℝ = 2.0\ny = x * x * x\ngrad(y, x)\n", "12.0 ∈ ℝ\n"),
    ("n: ℕ = 7\nn // 2\nn / 2\n", "3 ∈ ℝ\n3.5 ∈ ℝ\n"),
    ("def f(a: ℝ): ℝ:\n    return 2\nf(1.0)\nidx: ℝ = 0\nidx = 3\nidx\n", "2.0 ∈ ℝ\n3.0 ∈ ℝ\n"),
    ("x: ℝ[3] = [1.0, 2.0, 3.0]\ny = x\na = y[0]\ny[0] = 5.0\na\nx\n", "1.0 ∈ ℝ\n[5.0, 2.0, 3.0] ∈ ℝ[3]\n"),
    ("x: ℝ[3] = [1.0, 2.0, 3.0]\nc = for i -> x[i]\nc[0] = 9.0\nx\n", "[1.0, 2.0, 3.0] ∈ ℝ[3]\n"),
    ("x: ℝ[2, 2] = [[1, 2], [3, 4]]\nr = x[0]\nx[0, 0] = 5.0\nr\nx[::-1, 1]\n",
     "[1.0, 2.0] ∈ ℝ[2]\n[4.0, 2.0] ∈ ℝ[2]\n"),
    ("class P:\n    w: ℝ[3]\na: ℝ[3] = [0.5, -1.0, 2.0]\np: P = P(a * 2)\nloss = sum(p.w * p.w)\n"
     "grad(loss, p.w)\ngrad(loss, a)\n", "[2.0, -4.0, 8.0] ∈ ℝ[3]\n[4.0, -8.0, 16.0] ∈ ℝ[3]\n"),
    ("a: ℝ[3] = [0.5, -1.0, 2.0]\nb = a * 2\ny = sum(b * b)\ngrad(y, a)\ngrad(y, b)\n",
     "[4.0, -8.0, 16.0] ∈ ℝ[3]\n[2.0, -4.0, 8.0] ∈ ℝ[3]\n"),
    ("x: ℝ = 3.0\ng = grad(x * x * x, x)\ngrad(g, x)\n", "18.0 ∈ ℝ\n"),
    ("class P:\n    w: ℝ[2]\n    s: ℝ = 2.0\np: P = P([1.0, 2.0])\nsum(p.w * p.s)\n", "6.0 ∈ ℝ\n"),
    ("x: ℝ[4] = [1.0, 3.0, 3.0, 2.0]\nm = x[0]\nfor i: ℕ(1, 4):\n    if x[i] > m:\n        m = x[i]\n"
     "grad(m, x)\n", "[0.0, 1.0, 0.0, 0.0] ∈ ℝ[4]\n"),
    ("n: ℕ = 3\ny = n * 2.0\ngrad(y, n)\nn\n", "0.0 ∈ ℝ\n3 ∈ ℝ\n"),
    ("def cube(x: ℝ): ℝ:\n    return x * x * x\ndef dcube(x: ℝ): ℝ:\n    return grad(cube(x), x)\n"
     "a: ℝ = 2.0\ndcube(a)\ngrad(dcube(a), a)\n", "12.0 ∈ ℝ\n12.0 ∈ ℝ\n"),
    ("def f(y: ℝ, x: ℝ): ℝ:\n    return grad(y, x)\na: ℝ = 3.0\nf(a * a, a)\n", "6.0 ∈ ℝ\n"),
    ("def f(y: ℝ, x: ℝ[2]): ℝ[2]:\n    return grad(y, x)\nclass P:\n    w: ℝ[2]\np: P = P([1.0, 2.0])\n"
     "f(sum(p.w * p.w), p.w)\n", "[2.0, 4.0] ∈ ℝ[2]\n"),
    ("class Net:\n    w: ℝ[2]\nx: ℝ[2] = [1.0, 2.0]\nnet: Net = Net(x * 2)\nloss = sum(net.w * net.w)\n"
     "grad(loss, x)\ngrad(loss, net.w)\n", "[8.0, 16.0] ∈ ℝ[2]\n[4.0, 8.0] ∈ ℝ[2]\n"),
    ("def count(n: ℕ): ℝ:\n    t = 0\n    for i: ℕ(5, 3):\n        t += 1\n    return t\ncount(0)\n", "0.0 ∈ ℝ\n"),
])
def test_reference_semantics(source, want):
    got = run_program(source, opt=0)
    assert same_output(got, want), got


def test_level0_module_has_the_optimised_interface(seed_source):
    python = pipeline.compile_source(seed_source, "cnn_seed.phk", opt=0).python
    from phc.emit.module import HEADER_MARK, line_table
    assert python.startswith(HEADER_MARK)
    tagged = {line for line, _ in line_table(python).values()}
    from phc import ast as A
    program = pipeline.parse(seed_source, "cnn_seed.phk")
    statements = {x.span.line for x in A.walk(program)
                  if isinstance(x, (A.Decl, A.Assign, A.AugAssign, A.ExprStmt, A.If, A.For, A.Return))}
    fields = {d.span.line for c in program.body if isinstance(c, A.ClassDef) for d in c.fields}
    assert statements - fields <= tagged


def test_runtime_error_at_level0_names_the_phk_line(tmp_path):
    from phc.cli import main
    path = tmp_path / "oob.phk"
    path.write_text("x: ℝ[3] = [1.0, 2.0, 3.0]\nk: ℕ = 5\nx[k]\n", encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["run", str(path), "--device", "cpu", "--opt", "0"]) == 1
    assert ":3:" in err.getvalue()


# ---------------------------------------------------------------- the fallback at level 2

# Programs the optimiser failed on when the fallback was written (D: a multi-axis slice outside
# loops; AG2: an assignment to a field): at level 2 they print the right value, through the
# fallback or, once the optimiser handles them, without it.
FAILED_TO_OPTIMISE = {
    "D_col_slice": ("x: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]\nx[:, 0]\n", "[1.0, 4.0] ∈ ℝ[2]\n"),
    "AG2_field_assign_top": ("class P:\n    w: ℝ[2]\np: P = P([1.0, 2.0])\np.w = [3.0, 4.0]\np.w\n",
                             "[3.0, 4.0] ∈ ℝ[2]\n"),
}


@pytest.mark.parametrize("name", sorted(FAILED_TO_OPTIMISE))
def test_programs_the_optimiser_failed_on_run_at_level2(name):
    source, want = FAILED_TO_OPTIMISE[name]
    compiled = pipeline.compile_source(source, f"{name}.phk", "torch")
    assert (compiled.plan is None) == any("runs literally" in text for _, text in compiled.notes)
    assert same_output(run_program(source, opt=2, name=name), want)


# The optimiser made to fail on purpose, at the statement of line 3 (any exception type).
BROKEN = "x: ℝ[3] = [1.0, 2.0, 3.0]\ny = x * 2\nz = sum(y)\nz\n"


@pytest.fixture(params=[KeyError, RuntimeError, IndexError])
def broken_optimiser(request, monkeypatch):
    from phc.ir import lower
    stmt = lower.FnLowering.stmt

    def failing(self, s):
        if getattr(s, "span", None) is not None and s.span.line == 3:
            raise request.param("an injected failure")
        return stmt(self, s)
    monkeypatch.setattr(lower.FnLowering, "stmt", failing)
    return request.param


def test_fallback_runs_the_reference_semantics_with_a_note(broken_optimiser):
    compiled = pipeline.compile_source(BROKEN, "broken.phk", "torch")
    assert compiled.plan is None and compiled.python.splitlines()[0].endswith("opt:0")
    assert [text for _, text in compiled.notes] == \
        [f"line 3 runs literally: {broken_optimiser.__name__}: {str(broken_optimiser('an injected failure'))}"]
    assert same_output(run_program(BROKEN, opt=2, name="broken"), "12.0 ∈ ℝ\n")


def test_check_perf_lists_the_fallback_note(broken_optimiser, tmp_path, capsys):
    from phc.cli import main
    path = tmp_path / "broken.phk"
    path.write_text(BROKEN, encoding="utf-8")
    assert main(["check", str(path), "--perf"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"broken\.phk:3:1: note: line 3 runs literally: \w+", err)
    assert main(["check", str(path)]) == 0
    assert "note" not in capsys.readouterr().err
    assert main(["ir", str(path), "--stage", "kernels"]) == 0
    assert "note: line 3 runs literally" in capsys.readouterr().out
    assert main(["run", str(path), "--device", "cpu"]) == 0
    assert capsys.readouterr().out == "12.0 ∈ ℝ\n"


def test_host_loops_are_notes_with_their_line(capsys):
    from phc.cli import main
    path = ROOT / "tests" / "programs" / "gather.phk"
    assert main(["ir", str(path), "--stage", "kernels"]) == 0
    out = capsys.readouterr().out
    loop_line = next(k for k, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                     if text.strip().startswith("for i"))
    assert re.search(rf"note: line {loop_line} runs element by element \(a host loop\): \S", out)


def test_opt0_from_the_command_line(tmp_path, capsys):
    from phc.cli import main
    path = tmp_path / "w.phk"
    path.write_text("B: ℝ[3] = for i: ℕ(3) -> i * 1\nB[0] = 0.25\nB\n", encoding="utf-8")
    assert main(["run", str(path), "--device", "cpu", "--opt", "0"]) == 0
    assert capsys.readouterr().out == "[0.25, 1.0, 2.0] ∈ ℝ[3]\n"
    assert main(["ir", str(path), "--stage", "python", "--opt", "0"]) == 0
    assert "opt:0" in capsys.readouterr().out.splitlines()[0]
    out = tmp_path / "w.py"
    assert main(["compile", str(path), "--opt", "0", "-o", str(out)]) == 0
    assert main(["compile", str(path), "-o", str(out)]) == 0        # recognised as generated


def test_level0_text_does_not_depend_on_the_hash_seed(seed_path):
    import os
    import subprocess
    import sys
    code = ("import sys; from phc import pipeline; "
            "sys.stdout.write(pipeline.compile_source(open(sys.argv[1]).read(), 'cnn_seed.phk', opt=0).python)")
    texts = {subprocess.run([sys.executable, "-c", code, str(seed_path)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}).stdout
             for seed in ("1", "2")}
    assert len(texts) == 1 and next(iter(texts)).startswith("# phc-generated:")
