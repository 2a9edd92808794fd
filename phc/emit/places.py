"""Which `.phk` expression each generated line computes: the tags that locate runtime errors.

A statement's expressions are written as strings and spliced into one or more lines (its
temporaries first). While they are written, each expression that has a source span is noted with
its text; a line takes the noted expressions whose text it contains, and is tagged with the span
of the outermost of them (the longest text): the expression that line computes. A line that
computes no spanned expression keeps its statement's tag.

A tag is `@LINE:COL-END_LINE:END_COL`, followed, for an expression of an inlined function, by
` <FUNC LINE:COL-END_LINE:END_COL` for each call it came through (innermost first). A line that
computes several spanned expressions also lists each, ` |B0-B1 @…`, with the byte columns of its
text: the position of the failing instruction (Python ≥ 3.11) then picks the innermost.
"""
from __future__ import annotations

from phc.ast import Span


class Places:
    """The spanned expressions written since the last line that used them."""

    def __init__(self):
        self.pending: list[tuple[str, Span]] = []

    def note(self, text: str, span: Span | None) -> str:
        if span is not None and span.line > 0 and text:
            self.pending.append((text, span))
        return text

    def clear(self) -> None:
        self.pending.clear()

    def take(self, line: str) -> list[tuple[str, Span]]:
        """The noted expressions written into `line`, outermost (longest) first; they are used
        up: a later line only reads their value."""
        used = [(text, span) for text, span in self.pending if text in line]
        self.pending = [p for p in self.pending if p not in used]
        return sorted(used, key=lambda p: -len(p[0]))


def line_tag(line: str, used: list[tuple[str, Span]]) -> str:
    """The tag text of the generated `line` computing the expressions `used` (outermost first):
    the outermost's place; where there are several, each one's place after ` |B0-B1 `, the
    UTF-8 byte columns of its text from the line's first character, which the position of a
    traceback's failing instruction picks."""
    if not used:
        return ""
    out = place_text(used[0][1])
    code = line.lstrip()        # columns from the first character: a method is indented later
    for text, span in used if len(used) > 1 else ():
        b0 = len(code[:code.find(text)].encode())
        out += f" |{b0}-{b0 + len(text.encode())} {place_text(span)}"
    return out


def place_text(span: Span | None) -> str:
    """The tag text of a span (no `# `): empty for an unknown place."""
    if span is None or span.line == 0:
        return ""
    out = f"@{_range(span)}"
    while getattr(span, "func", ""):
        out += f" <{span.func} {_range(span.call)}"
        span = span.call
    return out


def _range(span: Span) -> str:
    if span.end_line > 0 and (span.end_line, span.end_col) > (span.line, span.col):
        return f"{span.line}:{span.col}-{span.end_line}:{span.end_col}"
    return f"{span.line}:{span.col}"
