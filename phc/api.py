"""The library entry points: text in, AST or diagnostics out. Nothing here raises on bad input."""
from __future__ import annotations

from phc.ast import Program, Span
from phc.diagnostics import Diagnostic, PhcError, error

BUG_HINT = "this is a bug in phc; please report it together with the program that triggered it"


def parse_source(text: str | bytes, filename: str = "<string>") -> Program:
    """Parse a program; raises PhcError (with diagnostics) when it has syntax errors."""
    from phc.parse import parse
    return parse(decode(text, filename), filename)


def check_source(text: str | bytes, filename: str = "<string>") -> list[Diagnostic]:
    """Every diagnostic of a program: syntax errors, else the checker's findings. Never raises."""
    try:
        program = parse_source(text, filename)
        return _typecheck(program)
    except PhcError as e:
        return list(e.diagnostics)
    except RecursionError:
        return [error("program is nested too deeply to check", Span(1, 1, 1, 2), None, filename)]
    except Exception as e:      # a bug must not show the user a traceback
        return [internal_error(e, filename)]


def decode(text: str | bytes, filename: str = "<string>") -> str:
    """UTF-8 bytes → str; invalid bytes raise PhcError naming their offset and line."""
    if isinstance(text, str):
        return text
    data = bytes(text)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PhcError([_bad_utf8(data, e.start, filename)]) from None


def _bad_utf8(data: bytes, offset: int, filename: str) -> Diagnostic:
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    col = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return error(f"invalid UTF-8 byte 0x{data[offset]:02x} at byte offset {offset}",
                 Span(line, col, line, col + 1), "save the file as UTF-8", filename)


def _typecheck(program: Program) -> list[Diagnostic]:
    try:
        from phc.typecheck import check
    except ModuleNotFoundError as e:
        if e.name != "phc.typecheck":
            raise
        return []       # no checker yet: parsing is all there is to report
    return list(check(program).diagnostics)


def internal_error(exc: BaseException, filename: str = "<string>") -> Diagnostic:
    return error(f"internal error: {type(exc).__name__}: {exc}"[:300], Span(1, 1, 1, 2), BUG_HINT,
                 filename)
