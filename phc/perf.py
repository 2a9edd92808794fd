"""Performance notes: where a program runs slower than it could, and why.

Two kinds, each `(line, text)`:
- the optimiser gave up on the program (any exception in lowering, selection or emission): the
  program runs at level 0, literally — `line L runs literally: <reason>`;
- a loop nest stayed a Python host loop in the optimised IR — `line L runs element by element
  (a host loop): <the reason the lowering recorded>`.
"""
from __future__ import annotations

import traceback

from phc.ast import Span


def fallback_note(exc: BaseException, filename: str = "") -> tuple[int, str]:
    """The note for a program the optimiser could not compile: the line of the construct it was
    working on when it failed (the innermost AST node in the failing frames)."""
    line = failing_line(exc)
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return line, f"line {line} runs literally: {reason}"


def failing_line(exc: BaseException) -> int:
    span = getattr(exc, "span", None)
    if isinstance(span, Span) and span.line > 0:
        return span.line
    from phc import ast as A
    node_types = tuple(t for t in vars(A).values() if isinstance(t, type) and t.__module__ == A.__name__
                       and t is not Span and hasattr(t, "__dataclass_fields__"))
    for frame, _ in reversed(list(traceback.walk_tb(exc.__traceback__))):
        for value in frame.f_locals.values():
            if isinstance(value, node_types) and not isinstance(value, A.Program):
                s = getattr(value, "span", None)
                if isinstance(s, Span) and s.line > 0:
                    return s.line
    return 1


def host_loop_notes(module) -> list[tuple[int, str]]:
    """Every loop of the optimised IR that stays a Python loop, with the lowering's reason."""
    from phc.ir import nodes as n
    from phc.ir.analysis import walk_stmts
    out = []
    functions = [module.main, *module.functions, *(m for c in module.classes for m in c.methods)]
    for f in functions:
        for s in walk_stmts(f.body):
            if isinstance(s, n.Loop) and s.mark is n.Mark.SERIAL and s.note:
                line = s.span.line if s.span is not None else 0
                out.append((line, f"line {line} runs element by element (a host loop): {s.note}"))
    return sorted(set(out))


def note_diagnostics(notes: list[tuple[int, str]], filename: str, source: str = "") -> list:
    """The notes as `note:` diagnostics, the caret at the first character of their line."""
    from phc.diagnostics import Diagnostic, Severity
    lines = source.splitlines()
    out = []
    for line, text in notes:
        row = lines[line - 1].expandtabs(4) if 0 < line <= len(lines) else ""
        col = len(row) - len(row.lstrip()) + 1
        out.append(Diagnostic(Severity.NOTE, text, Span(line, col, line, col + 1), None, filename))
    return out
