"""Diagnostics: `file:line:col: error: message`, the source line, a caret under the span, a hint."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from phc.ast import Span


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"           # a performance note (`phc check --perf`): never an error


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    span: Span
    hint: str | None = None
    filename: str = "<string>"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self, source: str | None = None) -> str:
        """The full human form; `source` adds the quoted line and caret."""
        head = f"{self.filename}:{self.span.line}:{self.span.col}: {self.severity.value}: {self.message}"
        lines = [head]
        text = _source_line(source, self.span.line)
        if text is not None:
            lines.append(f"    {text}")
            lines.append("    " + _caret(text, self.span))
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


def error(message: str, span: Span, hint: str | None = None, filename: str = "<string>") -> Diagnostic:
    return Diagnostic(Severity.ERROR, message, span, hint, filename)


def warning(message: str, span: Span, hint: str | None = None, filename: str = "<string>") -> Diagnostic:
    return Diagnostic(Severity.WARNING, message, span, hint, filename)


def render_all(diagnostics: list[Diagnostic], source: str | None = None) -> str:
    out = [d.render(source) for d in diagnostics]
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    if diagnostics:
        out.append(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return "\n".join(out)


def _source_line(source: str | None, line: int) -> str | None:
    if not source or line < 1:
        return None
    lines = source.splitlines()
    if line > len(lines):
        return None
    return lines[line - 1].expandtabs(4)[:200]


def _caret(text: str, span: Span) -> str:
    start = max(span.col - 1, 0)
    if span.end_line == span.line and span.end_col > span.col:
        width = span.end_col - span.col
    else:
        width = 1
    width = max(1, min(width, max(len(text) - start, 1)))
    return " " * start + "^" * width


class PhcError(Exception):
    """Raised inside a stage to abort it with diagnostics (caught at the API boundary)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(d.render() for d in diagnostics))
        self.diagnostics = diagnostics
