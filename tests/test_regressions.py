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
