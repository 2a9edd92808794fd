"""Every bug a report or the differential tester found, as a program and what it must print.

`tests/regressions/NAME.phk` is the program, `NAME.out` the exact output (numbers compared to
float32 rounding, see `helpers.same_output`). Each runs on the torch backend at the default level
and at level 0 (the reference semantics), and on the Triton backend under the interpreter.
"""
from pathlib import Path

import pytest

from helpers import run_program, same_output

CASES = sorted((Path(__file__).parent / "regressions").glob("*.phk"))


@pytest.mark.parametrize("backend,opt", [("torch", 2), ("torch", 0), ("triton", 2)])
@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_regression(path, backend, opt):
    want = path.with_suffix(".out").read_text(encoding="utf-8")
    got = run_program(path.read_text(encoding="utf-8"), backend=backend, opt=opt, name=path.stem)
    assert same_output(got, want), f"{path.name} printed:\n{got}\nmust print:\n{want}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_level2_compiles_it_without_falling_back(path):
    """The fallback to level 0 keeps a program right, but it also hides a compiler exception:
    none of these programs needs it (an exception here is a bug of the optimiser)."""
    from phc import pipeline
    compiled = pipeline.compile_source(path.read_text(encoding="utf-8"), path.name, "torch")
    assert not [t for _, t in compiled.notes if "runs literally" in t]


def test_printing_text_needs_no_fallback():
    """`print("epoch", e, "loss", x)`: a string constant went through a numeric rule once."""
    from phc import pipeline
    src = 'epochs: ℕ = 3\nloss: ℝ = 8\nfor e: ℕ(epochs):\n    loss = loss / 2\n    print("epoch", e, "loss", loss)\n'
    compiled = pipeline.compile_source(src, "loop.phk", "torch")
    assert not [t for _, t in compiled.notes if "runs literally" in t]
    assert run_program(src).splitlines()[-1].startswith("epoch 2")
