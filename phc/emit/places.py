"""Which `.phk` expression each generated line computes: the tags that locate runtime errors.

A statement's expressions are written as strings and spliced into one or more lines (its
temporaries first). While they are written, each expression that has a source span is noted with
its text; a line takes the noted expressions whose text it contains, and is tagged with the span
of the outermost of them (the longest text): the expression that line computes. A line that
computes no spanned expression keeps its statement's tag.

A tag is `@LINE:COL-END_LINE:END_COL`, followed, for an expression of an inlined function, by
` <FUNC LINE:COL-END_LINE:END_COL` for each call it came through (innermost first).
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

    def take(self, line: str) -> Span | None:
        """The span of the outermost noted expression written into `line` (those it contains are
        used up: a later line only reads their value)."""
        used = [(text, span) for text, span in self.pending if text in line]
        if not used:
            return None
        self.pending = [p for p in self.pending if p not in used]
        return max(used, key=lambda p: len(p[0]))[1]


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
