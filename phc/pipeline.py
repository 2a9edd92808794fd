"""The compiler in one screen: each stage a pure function, called in order.

    source ─parse─▶ AST ─check─▶ typed AST ─lower─▶ affine IR ─select─▶ kernel plan ─emit─▶ Python
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from phc.diagnostics import Diagnostic, PhcError
from phc.log import log, timed_stage

BACKENDS = ("auto", "torch", "triton")


@dataclass
class Compiled:
    python: str
    diagnostics: list[Diagnostic]
    module: object          # phc.ir.nodes.Module (None at level 0 and for a fallback)
    plan: object            # phc.select.idioms.Plan (None at level 0 and for a fallback)
    notes: list = field(default_factory=list)   # performance notes: (line, text), see phc.perf


def parse(source: str, filename: str):
    from phc.parse import parse as _parse
    return _parse(source, filename)


def check(program):
    from phc.typecheck import check as _check
    return _check(program)


@timed_stage("parse+check")
def frontend(source: str, filename: str):
    """AST and typed AST; raises PhcError when there is any error."""
    program = parse(source, filename)
    typed = check(program)
    errors = [d for d in typed.diagnostics if d.is_error]
    if errors:
        raise PhcError(typed.diagnostics)
    return program, typed


@timed_stage("lower")
def lower(typed):
    from phc.ir.lower import lower_program
    module = lower_program(typed.program, typed.expr_types)
    from phc.ir.batch import batch_module
    module = batch_module(module)       # independent evaluation loops as batched values
    if os.environ.get("PHC_VERIFY") == "1":
        from phc.ir.verify import verify_module
        verify_module(module)
    return module


@timed_stage("select")
def select(module, backend: str):
    """Fusion of neighbouring nests, then idiom matching: the module to emit and its plan."""
    from phc.select.fuse import fuse_module
    from phc.select.idioms import plan_module
    fused, fusions = fuse_module(module)
    plan = plan_module(fused, backend)
    plan.fusions = fusions
    plan.module = fused
    log("kernels", plan.text())
    return plan


@timed_stage("grad")
def differentiate(module):
    """Every `grad` as adjoint code where its derivative can be derived, else autograd."""
    from phc.ir.adjoint import derive_module
    return derive_module(module)


@timed_stage("emit")
def emit(module, plan, source: str, backend: str, adjoint=None) -> str:
    from phc.emit.module import emit_module
    return emit_module(module, source, backend, plan, adjoint)


def compile_source(source: str, filename: str = "<string>", backend: str = "torch",
                   opt: int = 2, adjoint: bool | None = None) -> Compiled:
    """The whole pipeline. `backend`: torch (vectorised torch ops, with the CPU idioms),
    triton (Triton kernels for the idioms), auto (the module carries the Triton kernels and uses
    them for tensors on CUDA, torch ops otherwise). `opt`: 0 is the reference semantics (every
    statement literally, see docs/language.md); 2 optimises where each transformation is proved
    legal and runs the rest literally: a program the optimiser fails on (any exception in
    lowering, selection or emission) runs at level 0, with a note saying where and why.
    `adjoint`: write `grad`s as adjoint code where they can be derived (default: yes, unless the
    environment sets PHC_ADJOINT=0); False keeps every `grad` on autograd."""
    if opt not in (0, 2):
        raise ValueError(f"opt must be 0 or 2, not {opt!r}")
    program, typed = frontend(source, filename)
    if opt == 0:
        return Compiled(literal(typed, source, filename), list(typed.diagnostics), None, None)
    try:
        module = lower(typed)
        plan = select(module, backend)
        if adjoint is None:
            adjoint = os.environ.get("PHC_ADJOINT", "1") != "0"
        plan.adjoint = differentiate(plan.module) if adjoint and backend != "triton" else None
        python = emit(plan.module, plan, source, backend, plan.adjoint)
    except Exception as exc:    # noqa: BLE001 — correctness first: the reference semantics runs
        if _is_verifier_error(exc):
            raise               # PHC_VERIFY=1 (the tests): an invalid IR is a bug to see
        from phc.perf import fallback_note
        return Compiled(literal(typed, source, filename), list(typed.diagnostics), None, None,
                        [fallback_note(exc)])
    if os.environ.get("PHC_DUMP"):
        dump_stages(Path(os.environ["PHC_DUMP"]), filename, program, typed, module, plan, python)
    from phc.perf import host_loop_notes
    return Compiled(python, list(typed.diagnostics), module, plan, host_loop_notes(plan.module))


def literal(typed, source: str, filename: str) -> str:
    """The level-0 module; a construct it cannot write is a diagnostic, never a traceback."""
    from phc.diagnostics import error
    from phc.emit.literal import LiteralError, emit_literal
    try:
        return emit_literal(typed, source, filename)
    except LiteralError as e:
        raise PhcError([error(str(e), e.span, filename=filename)]) from None


def _is_verifier_error(exc: BaseException) -> bool:
    from phc.ir.verify import VerifyError
    return isinstance(exc, VerifyError)


def dump_stages(folder: Path, filename: str, program, typed, module, plan, python) -> None:
    """`PHC_DUMP=DIR`: every stage's text of this compilation, one file each."""
    from phc.ast_text import format_ast
    from phc.ir.printer import format_module
    from phc.typed_text import format_typed
    stem = Path(filename).stem
    texts = {"ast": format_ast(program), "typed": format_typed(typed), "affine": format_module(module),
             "kernels": plan.text(), "triton": plan.triton_source(), "py": python}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for ext, text in texts.items():
            (folder / f"{stem}.{ext}").write_text(text, encoding="utf-8")
    except OSError as e:        # a debugging aid must not stop the compilation
        import sys
        print(f"phc: PHC_DUMP: cannot write {folder}: {e.strerror or e}", file=sys.stderr)
