"""Run one program at one (backend, level), never letting a failure escape, and compare levels.

`run(source, backend, opt)` compiles and runs a program in this process under a time limit and
classifies what happened:

    ok             it ran; `output` is what it printed
    compile-error  phc answered with a diagnostic (`PhcError`)
    traceback      the compiler itself raised (any other exception while compiling)
    runtime-crash  the generated module raised while running (`output` holds what it printed first)
    timeout        it ran past the limit

`verdict(ref, got)` compares a run with the reference run (level 0 on the torch backend):
`agree`, `wrong` (both ran, the outputs differ), `crash` / `traceback` / `rejected` / `timeout`
(the reference ran, the tested run did not), or `oracle-<status>` when the reference itself
failed — a bug in level 0 or in the generator, reported separately.

Tolerance (`same_output` with `REL`, `ABS`): numbers agree to a relative 1e-4 or an absolute 1e-5.
Level 0 evaluates statement by statement in float32; level 2 may reorder a reduction (a
vectorised sum, a matmul, a convolution kernel, the backward of either) and so round differently.
Over a few hundred terms and through a backward pass that moves float32 results by some 1e-6
relative; 1e-4 leaves room for that, and 1e-5 absolute for results that cancel to near zero,
while any real miscompilation (a wrong element, axis, extent or gradient) is far larger. An element
may also differ by `SCALE` (1e-6) times the largest magnitude on its line: a gradient element
that cancels to near zero from terms of the tensor's size carries their rounding (difftest seed
7756: 0.011200 against 0.011189 in a gradient whose elements reach 90, the terms' float32 error).
The text around the numbers and the kind of each number (`1` vs `1.0`) must match exactly.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")          # before anything imports triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # tests/ (helpers)

REL, ABS, SCALE = 1e-4, 1e-5, 1e-6
STATUSES = ("ok", "compile-error", "traceback", "runtime-crash", "timeout")
_count = itertools.count()


@dataclass
class Result:
    status: str
    output: str = ""
    detail: str = ""          # the diagnostic, or `ExceptionType: message` and where it was raised
    fallback: str = ""        # level 2 gave up and ran the program at level 0: the note saying why

    @property
    def error_kind(self) -> str:
        """What identifies the failure for reduction: the status and the exception type."""
        return f"{self.status}:{self.detail.split(':', 1)[0]}" if self.status != "ok" else "ok"


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException, so no `except Exception` in phc swallows it."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    if seconds is None or seconds <= 0 or not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum, frame):
        raise _Timeout()
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    at = f" (at {Path(last.filename).name}:{last.lineno} in {last.name})" if last else ""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300] + at


def run(source: str, backend: str = "torch", opt: int | str = 2, timeout: float = 60.0) -> Result:
    """Compile and run `source`; `opt` is 0, 2, or "eval" (the IR evaluator, a provisional
    reference). Never raises (except KeyboardInterrupt)."""
    out = io.StringIO()
    try:
        with _time_limit(timeout):
            return _run(source, backend, opt, out)
    except _Timeout:
        return Result("timeout", out.getvalue(), f"Timeout: more than {timeout} s")
    except RecursionError as e:
        return Result("runtime-crash", out.getvalue(), _where(e))


def _run(source: str, backend: str, opt, out: io.StringIO) -> Result:
    from phc import pipeline
    from phc.diagnostics import PhcError
    from phc.loader import load_module
    from phc import runtime as rt
    name = f"dt{next(_count)}"
    try:
        if opt == "eval":
            from phc.ir.evaluate import Evaluator
            program, typed = pipeline.frontend(source, f"{name}.phk")
            evaluator = Evaluator(pipeline.lower(typed), printer=lambda text: print(text, file=out))
        else:
            compiled = pipeline.compile_source(source, f"{name}.phk", backend, opt=opt)
    except PhcError as e:
        return Result("compile-error", "", "PhcError: " + "; ".join(d.message for d in e.diagnostics if d.is_error)[:300])
    except Exception as e:                 # noqa: BLE001 — a compiler exception is what we look for
        return Result("traceback", "", _where(e))
    fallback = "" if opt == "eval" else next(
        (text for _, text in getattr(compiled, "notes", []) if "runs literally" in text), "")
    try:
        rt.manual_seed(0)
        with contextlib.redirect_stdout(out):
            if opt == "eval":
                evaluator.main()
            else:
                module, _ = load_module(compiled.python, f"{name}_{backend}_o{opt}")
                module.main()
    except Exception as e:                 # noqa: BLE001
        return Result("runtime-crash", out.getvalue(), _where(e), fallback)
    return Result("ok", out.getvalue(), "", fallback)


def same_output(got: str, want: str, rel: float = REL, abs_: float = ABS) -> bool:
    from helpers import same_output as _same
    return _same(got, want, rel=rel, abs_=abs_, scale=SCALE)


VERDICTS = ("agree", "wrong", "crash", "traceback", "rejected", "timeout")


def verdict(ref: Result, got: Result) -> str:
    if ref.status != "ok":
        if got.status == ref.status == "runtime-crash" and same_output(got.output, ref.output):
            return "agree"              # both stop at the same run-time error
        return f"oracle-{ref.status}"
    return {"ok": "agree" if same_output(got.output, ref.output) else "wrong",
            "runtime-crash": "crash", "traceback": "traceback", "compile-error": "rejected",
            "timeout": "timeout"}[got.status]


# The reference: level 0 on the torch backend. Until level 0 exists, the IR evaluator stands in.
def reference_opt() -> int | str:
    from phc import pipeline
    try:
        pipeline.compile_source("1\n", "probe.phk", "torch", opt=0)
        return 0
    except NotImplementedError:
        return "eval"


def check(source: str, backend: str = "torch", opt: int = 2, timeout: float = 60.0,
          ref: Result | None = None, ref_opt=None) -> tuple[str, Result, Result]:
    """(verdict, reference result, tested result) for one program."""
    if ref is None:
        ref = run(source, "torch", reference_opt() if ref_opt is None else ref_opt, timeout)
    got = run(source, backend, opt, timeout)
    return verdict(ref, got), ref, got
