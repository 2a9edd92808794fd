"""Runtime errors that point at the `.phk` source, the way compile diagnostics do.

A generated module comes with a line table per generated file: `{py_line: place}`, a place
being `(line, col)` or `(line, col, end_line, end_col, calls)` (`phc.emit.module.span_table`:
the expression the line computes, and the inlined calls it came through). `translate` walks an
exception's traceback to the innermost frame of a generated file, maps that line back to the
program, and rewrites the PyTorch/Python message in the program's terms; the caret is under the
whole expression, and a note names the call the failing function was called from:

    cnn.phk:12:17: runtime error: index 30 is out of range for axis 0 of size 28
        p: ℝ = probs[label]
               ^^^^^^^^^^^^
      note: in `score`, called at cnn.phk:40:9
"""
from __future__ import annotations

import linecache
import os
import re
from types import TracebackType
from typing import Callable, Mapping

LineTable = Mapping[int, tuple]


class PhysikaRuntimeError(Exception):
    """An error raised while a compiled program runs, located in the `.phk` source."""

    def __init__(self, message: str, filename: str = "<string>", line: int = 0, col: int = 0,
                 source_line: str | None = None, hint: str | None = None, end_line: int = 0,
                 end_col: int = 0, calls: tuple = ()):
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.line = line
        self.col = col
        self.source_line = source_line
        self.hint = hint
        # the end of the failing expression (exclusive); (0, 0) where only its start is known
        self.end_line, self.end_col = end_line, end_col
        self.calls = calls      # ((func, line, col), …): the calls it was reached through, innermost first

    def render(self) -> str:
        """`file:line:col: runtime error: message`, the source line, a caret under the
        expression, and the call the failing function was called from."""
        where = f"{self.filename}:{self.line}:{self.col}" if self.line > 0 else self.filename
        out = [f"{where}: runtime error: {self.message}"]
        if self.source_line is not None:
            text = self.source_line.expandtabs(4)[:200]
            width = self.end_col - self.col if self.end_line == self.line and self.end_col > self.col \
                else _width(text, self.col)
            out += [f"    {text}", "    " + " " * max(self.col - 1, 0) + "^" * width]
        if self.calls:
            func, line, col = self.calls[0]
            out.append(f"  note: in `{func}`, called at {self.filename}:{line}:{col}")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


def _width(text: str, col: int) -> int:
    """The caret's width: the whole expression from `col` to the end of the line (a trailing
    comment left out), since a runtime error belongs to the expression the tag points at."""
    code = re.sub(r"\s+#[^\"']*$", "", text).rstrip()
    return max(1, len(code) - max(col - 1, 0))


class DatasetError(RuntimeError):
    """A data set cannot be loaded: the message says what to install or where to put files."""


class DataIndexError(IndexError):
    """An index read from data (a gather, `p[b, labels[b]]`) is outside its axis: the message
    is the one a loop's read gives, with no hint about the loop's range (the data is wrong)."""


def translate(exc: BaseException, line_table: Mapping[str, LineTable], *,
              source_name: str = "<string>", source: str | None = None) -> PhysikaRuntimeError | None:
    """The `.phk`-located error for `exc`, or None when no frame of a generated file is on its
    traceback (then it is not the program's fault) or when `exc` is not an error (Ctrl-C, exit)."""
    if isinstance(exc, PhysikaRuntimeError):
        return exc
    if not isinstance(exc, Exception):
        return None
    frames = _mapped_frames(exc.__traceback__, _normalise(line_table))
    if not frames:
        return None
    place, _ = frames[-1]
    line, col, end_line, end_col, calls = _place(place)[:5]
    calls = tuple((f, l, c) for f, l, c, *_ in calls) + _frame_calls(frames)
    message, hint = friendly_message(exc)
    return PhysikaRuntimeError(message, source_name, line, col, _source_line(source, line), hint,
                               end_line, end_col, calls)


# ---------------------------------------------------------------- locating the frame

def _normalise(line_table: Mapping[str, LineTable]) -> dict[str, LineTable]:
    return {os.path.realpath(name): table for name, table in line_table.items()}


def _mapped_frames(tb: TracebackType | None, tables: dict[str, LineTable]) -> list[tuple[tuple, str]]:
    """(place, Physika function name) of each traceback frame in a generated file, outermost first."""
    found = []
    while tb is not None:
        code = tb.tb_frame.f_code
        table = tables.get(os.path.realpath(code.co_filename))
        place = _lookup(table, tb.tb_lineno) if table is not None else None
        if place is not None and tb.tb_lineno in table:
            place = _innermost_part(place, _position(tb))
        if place is not None:
            found.append((place, _function_name(code)))
        tb = tb.tb_next
    return found


def _place(place: tuple) -> tuple:
    """(line, col, end_line, end_col, calls, parts) of a table entry, old `(line, col)` ones too."""
    return (*place, 0, 0, (), ()) if len(place) == 2 else (*place, ())[:6]


def _position(tb: TracebackType) -> tuple[int, int] | None:
    """The byte columns, from the first character, of the instruction that raised in a traceback
    entry's line (Python 3.11+; None before, or where the generated file cannot be read)."""
    try:
        line, end_line, col, end_col = list(tb.tb_frame.f_code.co_positions())[tb.tb_lasti // 2]
    except (AttributeError, IndexError, ValueError):
        return None
    if line != tb.tb_lineno or end_line != line or col is None or end_col is None:
        return None
    text = linecache.getline(tb.tb_frame.f_code.co_filename, line)
    if not text.strip():
        return None             # the generated file cannot be read: its indentation is unknown
    indent = len(text) - len(text.lstrip())     # the tags count from the first character
    return col - indent, end_col - indent


def _innermost_part(place: tuple, position: tuple[int, int] | None) -> tuple:
    """Of the expressions a line computes, the innermost whose text holds the failing instruction
    (the line's own place where none does, or the position is unknown)."""
    parts = _place(place)[5]
    inside = [(b1 - b0, p) for b0, b1, p in parts
              if position is not None and b0 <= position[0] and position[1] <= b1]
    return min(inside, key=lambda x: x[0])[1] if inside else place


def _frame_calls(frames: list[tuple[tuple, str]]) -> tuple:
    """((func, line, col), …) of the generated functions on the traceback, innermost first: each
    called at its caller's line."""
    out = []
    for (caller, _), (_, callee) in zip(frames[:-1], frames[1:]):
        if callee != "main" and not callee.startswith("<"):     # not a lambda of level 0
            out.append((callee, caller[0], caller[1]))
    return tuple(reversed(out))


def _function_name(code) -> str:
    """The Physika name of a generated function, from its docstring (``Physika `f` …``)."""
    doc = code.co_consts[0] if code.co_consts and isinstance(code.co_consts[0], str) else ""
    m = re.match(r"Physika `([^`]+)`", doc)
    return m.group(1) if m else code.co_name


def _lookup(table: LineTable, py_line: int) -> tuple[int, int] | None:
    """The entry for `py_line`, or for the nearest mapped line above it: a statement may span
    several generated lines, and only its first needs an entry."""
    if py_line in table:
        return table[py_line]
    above = [n for n in table if n < py_line]
    return table[max(above)] if above else None


def _source_line(source: str | None, line: int) -> str | None:
    lines = source.splitlines() if source else []
    return lines[line - 1] if 0 < line <= len(lines) else None


# ---------------------------------------------------------------- messages

def friendly_message(exc: Exception) -> tuple[str, str | None]:
    """(message, hint) in the program's terms for a Python or PyTorch exception."""
    text = _first_line(exc)
    for kind, rewrite in _REWRITES:
        if isinstance(exc, kind):
            found = rewrite(text)
            if found is not None:
                return found
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__, None


def _first_line(exc: Exception) -> str:
    text = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    return text.strip().splitlines()[0] if text.strip() else ""


def _as_is(text: str) -> tuple[str, str | None] | None:
    return text, None


def _index(text: str) -> tuple[str, str | None] | None:
    m = re.search(r"index (-?\d+) is out of bounds for (?:dimension|axis) (\d+) with size (\d+)", text)
    if m:
        i, axis, size = m.groups()
        return f"index {i} is out of range for axis {axis} of size {size}", None
    if "0-dim" in text:
        return "a scalar cannot be indexed", None
    if "too many indices" in text:
        return f"too many indices: {text}", None
    if re.search(r"index -?\d+ is out of range for axis \d+ of size \d+", text):
        return text, "a loop reads past the end of an array: check the loop's range"
    if "out of range" in text:
        return "index out of range", None
    return None


_SHAPE_WORDS = ("size of tensor", "shapes cannot be multiplied", "is invalid for input of size",
                "must match the size", "size mismatch", "expected size", "sizes of tensors must match",
                "cannot be broadcast", "inconsistent tensor size", "dimension out of range")


def _dims(text: str) -> str:
    return ",".join(d for d in re.split(r"[x, ]+", text.strip("[]() ")) if d)


# torch's wording of a shape mismatch → Physika's notation (`ℝ[10,5] @ ℝ[8]`)
_SHAPE_FORMS = (
    (r"size mismatch, got input \((\d+)\), mat \((\d+)x(\d+)\), vec \((\d+)\)",
     lambda m: f"`@` shapes do not fit: ℝ[{m[2]},{m[3]}] @ ℝ[{m[4]}] ({m[3]} ≠ {m[4]})"),
    (r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)",
     lambda m: f"`@` shapes do not fit: ℝ[{m[1]},{m[2]}] @ ℝ[{m[3]},{m[4]}] ({m[2]} ≠ {m[3]})"),
    (r"inconsistent tensor size, expected tensor \[(\d+)\] and src \[(\d+)\]",
     lambda m: f"`@` shapes do not fit: ℝ[{m[1]}] @ ℝ[{m[2]}] ({m[1]} ≠ {m[2]})"),
    (r"The size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton dimension (\d+)",
     lambda m: f"shapes do not fit: one side has {m[1]} elements where the other has {m[2]} "
               f"(axis {m[3]} of the broadcast shape)"),
    (r"shape '\[([\d, -]+)\]' is invalid for input of size (\d+)",
     lambda m: f"shapes do not fit: {m[2]} elements cannot be viewed as ℝ[{_dims(m[1])}]"),
)


def _shape(text: str) -> tuple[str, str | None] | None:
    for pattern, say in _SHAPE_FORMS:
        m = re.search(pattern, text)
        if m:
            return say(m), "check the sizes of the values on this line"
    lowered = text.lower()
    if any(word in lowered for word in _SHAPE_WORDS):
        return f"shapes do not fit: {text}", "check the sizes of the values on this line"
    return None


def _zero(text: str) -> tuple[str, str | None] | None:
    return "division by zero", None


def _nan_count(text: str) -> tuple[str, str | None] | None:
    if "NaN" in text:
        return "a NaN was used as an index or a count", "an earlier computation produced NaN"
    if "infinity" in text:
        return "an infinite value was used as an index or a count", None
    return None


def _memory(text: str) -> tuple[str, str | None] | None:
    return "out of memory", "use smaller data, or a device with more memory"


def _recursion(text: str) -> tuple[str, str | None] | None:
    return "recursion too deep", "does a function call itself without end?"


def _autograd(text: str) -> tuple[str, str | None] | None:
    if "backward through the graph a second time" in text:
        return "this value was differentiated after its graph was freed", None
    if "in-place operation" in text:
        return f"a value needed by grad was changed in place: {text}", None
    return None


def _torch_oom() -> type:
    import torch
    return getattr(torch, "OutOfMemoryError", MemoryError)


_REWRITES: tuple[tuple[type, Callable[[str], tuple[str, str | None] | None]], ...] = (
    (DatasetError, _as_is),
    (DataIndexError, _as_is),
    (IndexError, _index),
    (ZeroDivisionError, _zero),
    (MemoryError, _memory),
    (_torch_oom(), _memory),
    (RecursionError, _recursion),
    (ValueError, _nan_count),
    (OverflowError, _nan_count),
    (RuntimeError, _autograd),
    (RuntimeError, _shape),
    (ValueError, _shape),
)
