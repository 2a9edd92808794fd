"""Shared helpers for tests: compile a Physika source and load it; evaluate its IR."""
from __future__ import annotations

import itertools

from phc import pipeline
from phc.ir.evaluate import Evaluator
from phc.loader import load_module

_count = itertools.count()


def compile_module(source: str, backend: str = "torch", name: str = "test"):
    compiled = pipeline.compile_source(source, f"{name}.phk", backend)
    module, _ = load_module(compiled.python, f"{name}_{backend}_{next(_count)}")
    return module


def evaluator(source: str, name: str = "test") -> Evaluator:
    program, typed = pipeline.frontend(source, f"{name}.phk")
    return Evaluator(pipeline.lower(typed))


def run_program(source: str, backend: str = "torch", opt: int = 2, name: str = "prog") -> str:
    """Compile `source` at optimisation level `opt`, run its `main()`, return what it printed."""
    import contextlib
    import io

    from phc import runtime as rt
    compiled = pipeline.compile_source(source, f"{name}.phk", backend, opt=opt)
    module, _ = load_module(compiled.python, f"{name}_{backend}_o{opt}_{next(_count)}")
    rt.manual_seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        module.main()
    return out.getvalue()


_NUMBER = r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|-?inf|nan"


def same_output(got: str, want: str, rel: float = 1e-5, abs_: float = 1e-6, scale: float = 0.0) -> bool:
    """Printed outputs agree: the same text around the numbers, the numbers to `rel`/`abs_`
    (float32 rounding may move a last digit), and the same kind of number (`1` is not `1.0`).
    `scale`: each number may also differ by `scale` times the largest magnitude printed on its
    line (one tensor): an element that cancels to near zero carries the rounding of its terms,
    which are of the tensor's size, not its own."""
    import math
    import re
    got_lines, want_lines = got.strip().splitlines(), want.strip().splitlines()
    if len(got_lines) != len(want_lines):
        return False
    for line_a, line_b in zip(got_lines, want_lines):
        a, b = re.split(f"({_NUMBER})", line_a), re.split(f"({_NUMBER})", line_b)
        if len(a) != len(b):
            return False
        size = max((abs(float(y)) for y in b[1::2] if math.isfinite(float(y))), default=0.0)
        tol = max(abs_, scale * size)
        for k, (x, y) in enumerate(zip(a, b)):
            if k % 2 == 0:
                if x != y:
                    return False
            elif ("." in x or "e" in x) != ("." in y or "e" in y):
                return False
            elif not math.isclose(float(x), float(y), rel_tol=rel, abs_tol=tol):
                if not (math.isnan(float(x)) and math.isnan(float(y))):
                    return False
    return True
