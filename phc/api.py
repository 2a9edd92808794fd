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


# ---------------------------------------------------------------- compiling and loading

def _source_of(text_or_path, filename: str | None) -> tuple[str, str]:
    """(source, filename) of a program given as text or as a path (a `Path`, or a one-line str
    naming an existing `.phk`/`.phyk` file)."""
    import os
    from pathlib import Path
    if isinstance(text_or_path, os.PathLike) or (
            isinstance(text_or_path, str) and "\n" not in text_or_path
            and text_or_path.endswith((".phk", ".phyk")) and os.path.isfile(text_or_path)):
        path = Path(text_or_path)
        return decode(path.read_bytes(), str(path)), filename or str(path)
    return decode(text_or_path, filename or "<string>"), filename or "<string>"


def check(text_or_path, filename: str | None = None) -> list[Diagnostic]:
    """Every diagnostic (errors and warnings) of a program given as text or as a path. Never
    raises on a bad program: an unreadable file is a diagnostic too."""
    try:
        source, name = _source_of(text_or_path, filename)
    except PhcError as e:
        return list(e.diagnostics)
    except OSError as e:
        return [error(f"cannot read {text_or_path}: {e.strerror or e}", Span(1, 1, 1, 2), None,
                      str(text_or_path))]
    return check_source(source, name)


def compile(text_or_path, filename: str | None = None, *, backend: str = "auto", opt: int = 2,
            cache: bool = True):
    """Compile a program (text or path) and return its module, imported: functions and classes
    to call, `main()` to run the top-level program (nothing runs on import). Through the compile
    cache unless `cache=False`. Raises PhcError (with `.diagnostics`) on a compile error."""
    from phc.loader import build, exec_module
    source, name = _source_of(text_or_path, filename)
    built = build(source, name, backend, opt, None, cache)
    return exec_module(built.python, built.path, built.path.stem)
