"""How the command line shows diagnostics: the human form (coloured on a terminal), one compact
line per warning during `phc run`, or one JSON object per line (`--format json`)."""
from __future__ import annotations

import json
import os
import re
import sys

from phc.ast import Span
from phc.diagnostics import Diagnostic, Severity, render_all

_COLOURS = {"error": "\033[1;31m", "warning": "\033[1;33m", "hint": "\033[36m", "caret": "\033[1;32m",
            "where": "\033[1m"}
_RESET = "\033[0m"


def use_colour(stream=None) -> bool:
    """Colour on a terminal; NO_COLOR (any value) turns it off, FORCE_COLOR (non-empty, not 0) on."""
    stream = stream or sys.stderr
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    return hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"


def colourise(text: str) -> str:
    """ANSI colour for the rendered form: severity words, the caret line, hints, `file:line:col`."""
    out = []
    for line in text.split("\n"):
        m = re.match(r"^(\S.*?:\d+:\d+: |\S+: )(error|warning|runtime error)(: .*)$", line)
        if m:
            kind = "warning" if m.group(2) == "warning" else "error"
            line = (f"{_COLOURS['where']}{m.group(1)}{_RESET}{_COLOURS[kind]}{m.group(2)}{_RESET}"
                    f"{_COLOURS['where']}{m.group(3)}{_RESET}")
        elif re.match(r"^\s+\^+\s*$", line):
            line = f"{_COLOURS['caret']}{line}{_RESET}"
        elif line.startswith("  hint: "):
            line = f"  {_COLOURS['hint']}hint{_RESET}: {line[8:]}"
        out.append(line)
    return "\n".join(out)


def to_dict(d: Diagnostic) -> dict:
    s = d.span
    return {"file": d.filename, "line": s.line, "col": s.col, "end_line": s.end_line,
            "end_col": s.end_col, "severity": d.severity.value, "message": d.message, "hint": d.hint}


def from_dict(d: dict) -> Diagnostic:
    span = Span(d["line"], d["col"], d["end_line"], d["end_col"])
    return Diagnostic(Severity(d["severity"]), d["message"], span, d.get("hint"), d["file"])


def emit_json(obj: dict, stream=None) -> None:
    """One diagnostic as one line of JSON on stderr (like rustc's --error-format=json): standard
    output stays the program's."""
    print(json.dumps(obj, ensure_ascii=False), file=stream or sys.stderr, flush=True)


def show(diags: list[Diagnostic], source: str | None, fmt: str = "text", warnings: bool = True,
         compact: bool = False) -> None:
    """Print `diags` to stderr, as text or as JSON lines. `compact`: warnings as one line each, no
    count (what `phc run` shows before the program's own output)."""
    shown = [d for d in diags if warnings or d.is_error]
    if not shown:
        return
    if fmt == "json":
        for d in shown:
            emit_json(to_dict(d))
        return
    if compact and not any(d.is_error for d in shown):
        text = "\n".join(_one_line(d) for d in shown)
    else:
        text = render_all(shown, source)
    print(colourise(text) if use_colour() else text, file=sys.stderr)


def _one_line(d: Diagnostic) -> str:
    hint = f" ({d.hint})" if d.hint else ""
    return f"{d.filename}:{d.span.line}:{d.span.col}: {d.severity.value}: {d.message}{hint}"


def message(text: str, fmt: str = "text", severity: str = "error", **where) -> None:
    """A message of phc's own (not about a place in the program): `phc: …` on stderr, or JSON."""
    if fmt == "json":
        emit_json({"file": where.get("file"), "line": where.get("line", 0), "col": where.get("col", 0),
                   "end_line": where.get("line", 0), "end_col": where.get("col", 0),
                   "severity": severity, "message": text, "hint": where.get("hint")})
        return
    line = f"phc: {severity}: {text}" if severity != "note" else f"phc: {text}"
    print(colourise(line) if use_colour() and severity != "note" else line, file=sys.stderr)
