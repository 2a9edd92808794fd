"""Physika source → AST.

The pipeline inside: normalise the text, lex it with lark's basic lexer (an unknown character
becomes a diagnostic and is skipped), run `PhkIndenter` over the tokens (indentation → _INDENT /
_DEDENT, bracket matching), feed the tokens one by one to lark's LALR parser so a syntax error
can be recovered from at the next statement, and turn lark's tree into `phc.ast` nodes.

`parse` never raises anything but `PhcError`, whatever the input.
"""
from __future__ import annotations

import functools

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedToken, VisitError
from lark.indenter import Indenter
from lark.lexer import LexerThread

from phc import ast
from phc.api import internal_error
from phc.ast import NOSPAN, Span
from phc.diagnostics import Diagnostic, PhcError, error, warning
from phc.resources import grammar_path, grammar_text

GRAMMAR_PATH = grammar_path()

MAX_ERRORS = 20             # syntax errors reported before giving up
MAX_BRACKET_DEPTH = 200     # deeper nesting is refused (later passes recurse over the tree)
LINE_HEADS = ("_NL", "_INDENT", "_DEDENT")


# ---------------------------------------------------------------- entry point

def parse(source: str, filename: str = "<string>", resolve: bool = True) -> ast.Program:
    """Parse Physika source; raise PhcError with every syntax error found. `from other import
    f` statements are replaced by other's definitions (`phc.imports`) unless `resolve` is off."""
    try:
        program = _parse(source, filename)
        if resolve:
            from phc.imports import resolve_imports
            program = resolve_imports(program)
        return program
    except PhcError:
        raise
    except RecursionError:
        raise PhcError([too_deep(filename)]) from None
    except VisitError as e:
        if isinstance(e.orig_exc, RecursionError):
            raise PhcError([too_deep(filename)]) from None
        raise PhcError([internal_error(e.orig_exc, filename)]) from None
    except Exception as e:      # a bug here must still reach the user as a diagnostic
        raise PhcError([internal_error(e, filename)]) from None


def too_deep(filename: str) -> Diagnostic:
    return error("program is nested too deeply to parse", Span(1, 1, 1, 2),
                 "split long expressions or deep nesting into smaller pieces", filename)


def _parse(source: str, filename: str) -> ast.Program:
    text = normalize(source)
    diags = _Diags(filename, text)
    tokens = _lex(text, diags)
    indenter = PhkIndenter(diags)
    tokens = list(indenter.process(iter(tokens)))
    tree = _ParseDriver(tokens, diags, indenter.first_unclosed).run()
    if diags.items or tree is None:
        raise PhcError(diags.sorted() or [error("syntax error", Span(1, 1, 1, 2), None, filename)])
    builder = AstBuilder(diags, _class_names(tokens))
    body = builder.transform(tree)
    if diags.items:
        raise PhcError(diags.sorted())
    return ast.Program(tuple(body), filename, source, tuple(diags.warnings))


def _class_names(tokens: list[Token]) -> frozenset[str]:
    """The names after `class`: where one is a type letter (`class C:`), it names the class."""
    return frozenset(str(b) for a, b in zip(tokens, tokens[1:])
                     if a.type == "CLASS" and b.type == "NAME")


def normalize(source: str) -> str:
    """One newline character, no BOM, a final newline: offsets and columns stay those of the
    original lines (a \\r\\n pair loses its \\r, which ends the line anyway)."""
    text = source[1:] if source.startswith("\ufeff") else source
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


@functools.lru_cache(maxsize=None)
def parser() -> Lark:
    """The one lark parser (its LALR tables are cached in the temp folder by lark)."""
    return Lark(grammar_text(), parser="lalr", lexer="basic",
                propagate_positions=True, maybe_placeholders=True, cache=True)


# ---------------------------------------------------------------- diagnostics collection

class _Diags:
    """Diagnostics found so far, at most one per line, positions clamped into the text."""

    def __init__(self, filename: str, text: str):
        self.filename = filename
        self.items: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.lines = set()
        self.last_line = max(1, text.count("\n"))

    def warn(self, message: str, span: Span, hint: str | None = None) -> None:
        self.warnings.append(warning(message, self._clamp(span), hint, self.filename))

    def add(self, message: str, span: Span, hint: str | None = None) -> None:
        span = self._clamp(span)
        if span.line in self.lines:
            return
        self.lines.add(span.line)
        self.items.append(error(message, span, hint, self.filename))

    def full(self) -> bool:
        return len(self.items) >= MAX_ERRORS

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.span.line, d.span.col))

    def _clamp(self, span: Span) -> Span:
        if 1 <= span.line <= self.last_line:
            return span
        line = min(max(span.line, 1), self.last_line)
        return Span(line, 1, line, 2)


def token_span(tok: Token) -> Span:
    end_line = tok.end_line if tok.end_line is not None else tok.line
    end_col = tok.end_column if tok.end_column is not None else tok.column + 1
    if end_line == tok.line:
        end_col = max(end_col, tok.column + 1)      # synthetic tokens are empty: give them a width
    return Span(tok.line, tok.column, end_line, end_col)


# ---------------------------------------------------------------- lexing

def _lex(text: str, diags: _Diags) -> list[Token]:
    """All tokens of `text`; an unknown character is reported and lexing resumes after it
    (up to MAX_ERRORS times: past that, the rest of the text is dropped)."""
    tokens: list[Token] = []
    offset = 0
    for _ in range(MAX_ERRORS):
        try:
            for tok in _tokens(text[offset:]):
                tokens.append(_shift(tok, offset, text) if offset else tok)
            return tokens
        except UnexpectedCharacters as e:
            pos = offset + e.pos_in_stream
            offset = _bad_character(text, pos, diags)
    return tokens


def _tokens(text: str):
    lexer = _lexer()
    if lexer is None:
        return parser().lex(text)
    return LexerThread.from_text(lexer, text).lex(None)


@functools.lru_cache(maxsize=None)
def _lexer():
    """lark's basic lexer, built once (`Lark.lex` builds a new one per call)."""
    build = getattr(parser(), "_build_lexer", None)
    if build is None or not hasattr(LexerThread, "from_text"):
        return None
    return build()


def _bad_character(text: str, pos: int, diags: _Diags) -> int:
    """Report the character at `pos`; return where lexing resumes."""
    line, col = _line_col(text, pos)
    span = Span(line, col, line, col + 1)
    if text[pos] in "'\"":
        diags.add("unterminated string", span, f"close the string with {text[pos]} on the same line")
        return text.index("\n", pos)
    diags.add(f"unexpected character {_show_char(text[pos])}", span,
              "this character is not part of Physika's syntax")
    return pos + 1


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _shift(tok: Token, offset: int, text: str) -> Token:
    """Move a token lexed from `text[offset:]` to its place in `text`."""
    line0, col0 = _line_col(text, offset)
    first_line = tok.line == 1
    tok.start_pos += offset
    tok.end_pos += offset
    tok.column += col0 - 1 if first_line else 0
    if tok.end_line == 1:
        tok.end_column += col0 - 1
    tok.line += line0 - 1
    tok.end_line += line0 - 1
    return tok


def _show_char(ch: str) -> str:
    if ch.isprintable() and not ch.isspace():
        return f"'{ch}'"
    return f"U+{ord(ch):04X}"


# ---------------------------------------------------------------- indentation

class PhkIndenter(Indenter):
    """lark's Indenter, made total: a bad dedent or an unmatched bracket is a diagnostic, not an
    exception, and indentation is read from the last line of each _NL token (tabs = 4 columns)."""
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4
    PAIRS = {"RPAR": "LPAR", "RSQB": "LSQB"}

    def __init__(self, diags: _Diags, class_names: frozenset[str] = frozenset()):
        super().__init__()
        self.diags = diags
        self.class_names = class_names      # a class named `C` wins over the letter type ℂ
        self.brackets: list[Token] = []
        self.levels: list[int] = [0]        # the indentation (in columns) of each open block
        self.aliases: dict[int, int] = {}   # a misaligned column → the level it was read as
        self.first_unclosed: Token | None = None

    def process(self, stream):
        last = None
        for tok in _mark_draw_names(stream):
            if last is None and tok.type != self.NL_type and tok.column > 1:
                self.levels.append(tok.column - 1)      # an indented first line
                yield Token.new_borrow_pos(self.INDENT_type, "", tok)
            last = tok
            if tok.type == self.NL_type:
                yield from self.handle_NL(tok)
                continue
            self._track_bracket(tok)
            yield tok
        yield from self._finish(last)

    def handle_NL(self, token: Token):
        if self.brackets:
            return
        yield token
        indent = self._columns(token.rsplit("\n", 1)[1])
        if self.aliases.get(indent) in self.levels:
            indent = self.aliases[indent]
        if indent > self.levels[-1]:
            self.levels.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, "", token)
            return
        while indent < self.levels[-1]:
            if indent > self.levels[-2]:
                # between two levels: the inner block ends here and this column is taken as
                # another spelling of the outer level, as upstream Physika reads it (a warning)
                self._odd_dedent(token, indent)
                self.aliases[indent] = self.levels[-2]
                self.levels.pop()
                yield Token.new_borrow_pos(self.DEDENT_type, "", token)
                return
            self.levels.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, "", token)

    def _odd_dedent(self, token: Token, indent: int) -> None:
        line = token.line + token.count("\n")
        self.diags.warn(f"unindent does not match any outer indentation level: read as {self.levels[-2]} "
                        f"columns, which ends the block indented by {self.levels[-1]}",
                        Span(line, indent + 1, line, indent + 2),
                        (f"indent this line by {self.levels[-2]} columns" if self.levels[-2] else
                         "do not indent this line") + f" to end that block, or by {self.levels[-1]} "
                        f"columns to continue it (tabs count as 4)")

    def _columns(self, indent_str: str) -> int:
        return indent_str.count(" ") + indent_str.count("\t") * self.tab_len

    def _track_bracket(self, tok: Token) -> None:
        if tok.type in self.OPEN_PAREN_types:
            self.brackets.append(tok)
            if len(self.brackets) == MAX_BRACKET_DEPTH + 1:
                self.diags.add(f"brackets nested more than {MAX_BRACKET_DEPTH} deep", token_span(tok))
        elif tok.type in self.CLOSE_PAREN_types:
            self._close(tok)

    def _close(self, tok: Token) -> None:
        if not self.brackets:
            self.diags.add(f"unmatched '{tok}'", token_span(tok))
            return
        opener = self.brackets.pop()
        if self.PAIRS[tok.type] != opener.type:
            self.diags.add(f"closing '{tok}' does not match '{opener}' on line {opener.line}",
                           token_span(tok))

    def _finish(self, last: Token | None):
        if self.brackets:
            self.first_unclosed = self.brackets[0]
            opener = self.brackets[-1]
            self.diags.add(f"'{opener}' was never closed", token_span(opener))
        if last is None:
            return
        while len(self.levels) > 1:
            self.levels.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, "", last)


def _mark_draw_names(stream):
    """`→ ε: T ~ D(…)` / `→ ε ~ D(…)`: the name after the arrow becomes DRAW_NAME."""
    window: list[Token] = []
    for tok in stream:
        window.append(tok)
        if len(window) == 3:
            arrow, name, nxt = window
            if arrow.type == "_ARROW" and name.type == "NAME" and nxt.type in ("COLON", "TILDE"):
                window[1] = Token.new_borrow_pos("DRAW_NAME", str(name), name)
            yield window.pop(0)
    yield from window


# ---------------------------------------------------------------- parsing with recovery

class _ParseDriver:
    """Feeds tokens to the LALR parser. On a syntax error it restores the parser to the start of
    the offending line, skips that line (and the block it opens), stands a `pass` in for it and
    goes on, so one run reports the errors of many statements."""

    def __init__(self, tokens: list[Token], diags: _Diags, unclosed: Token | None):
        self.tokens = tokens
        self.diags = diags
        self.unclosed_pos = (unclosed.line, unclosed.column) if unclosed is not None else None
        self.line_start = _line_starts(tokens)
        self.empty_block_at = -1

    def run(self):
        ip = parser().parse_interactive("")
        state = ip.parser_state
        i, snap, failed, resumed = 0, None, False, True
        while i < len(self.tokens) and not self.diags.full():
            if resumed or self.tokens[i - 1].type in LINE_HEADS:
                snap = (i, state.state_stack[:], state.value_stack[:])
            try:
                ip.feed_token(self.tokens[i])
                i, resumed = i + 1, False
            except UnexpectedToken as e:
                failed = True
                expected = self._report(ip, e, i, snap)
                i, resumed = self._recover(ip, snap, "_INDENT" in expected), True
        return None if failed else self._finish(ip)

    def _finish(self, ip):
        last = self.tokens[-1] if self.tokens else None
        try:
            return ip.feed_eof(last)
        except UnexpectedToken as e:
            self._report(ip, e, len(self.tokens), None)
            return None

    def _recover(self, ip, snap, wants_block: bool) -> int:
        """Continue after the error: a missing block gets an empty one (the line that should
        have been indented is parsed as it stands); any other bad line is skipped for a `pass`."""
        start = snap[0]
        if wants_block and start != self.empty_block_at:
            self.empty_block_at = start
            if self._stand_in(ip, snap, ("_INDENT", "PASS", "_NL", "_DEDENT")):
                return start
        self._stand_in(ip, snap, ("PASS", "_NL"))
        return max(_skip_statement(self.tokens, start), start + 1)

    def _stand_in(self, ip, snap, kinds) -> bool:
        """Restore the parser to `snap` and feed it synthetic tokens; False (and restored) when
        they do not fit there."""
        start, states, values = snap
        state = ip.parser_state
        state.state_stack[:], state.value_stack[:] = states, values
        at = self.tokens[min(start, len(self.tokens) - 1)]
        try:
            for kind in kinds:
                ip.feed_token(Token.new_borrow_pos(kind, "", at))
            return True
        except UnexpectedToken:
            state.state_stack[:], state.value_stack[:] = states, values
            return False

    def _expected(self, ip, e: UnexpectedToken, i: int, snap) -> set[str]:
        """The terminals that could really come next. lark's `e.expected` is read after the
        reductions the bad token triggered, so the state is replayed up to it first."""
        try:
            if snap is not None:
                start, states, values = snap
                ip.parser_state.state_stack[:], ip.parser_state.value_stack[:] = states, values
                for tok in self.tokens[start:i]:
                    ip.feed_token(tok)
            return set(ip.accepts()) or set(e.expected)
        except Exception:   # best effort: the error itself is already known
            return set(e.expected)

    def _report(self, ip, e: UnexpectedToken, i: int, snap) -> set[str]:
        start = snap[0] if snap is not None else (self.line_start[-1] if self.tokens else 0)
        tok = self.tokens[i] if i < len(self.tokens) else e.token
        span = self._where(i, tok)
        expected = self._expected(ip, e, i, snap)
        if self.unclosed_pos is not None and (span.line, span.col) >= self.unclosed_pos:
            return expected     # the unclosed bracket explains this error
        habit = python_habit(self.tokens[start:], start == 0 or self.tokens[start - 1].type in LINE_HEADS)
        if habit is not None:
            message, hint, span = habit
        else:
            message, hint = explain(tok, expected, self._header(i, start, expected))
        self.diags.add(message, span, hint)
        return expected

    def _where(self, i: int, tok: Token) -> Span:
        if tok.type in ("_INDENT", "_DEDENT") and i + 1 < len(self.tokens):
            return token_span(self.tokens[i + 1])
        if tok.type in ("_NL", "$END", "_DEDENT") and i > 0:
            prev = self._prev_real(i)
            if prev is not None:
                return Span(prev.end_line, prev.end_column, prev.end_line, prev.end_column + 1)
        return token_span(tok)

    def _prev_real(self, i: int) -> Token | None:
        for tok in reversed(self.tokens[:i]):
            if tok.type not in LINE_HEADS:
                return tok
        return None

    def _header(self, i: int, start: int, expected) -> Token | None:
        """The keyword opening the statement that failed (the previous line's, when the parser
        wanted the indented block of a header)."""
        if "_INDENT" in expected and start > 0:
            start = self.line_start[max(start - 1, 0)]
        for tok in self.tokens[start:i + 1]:
            if tok.type not in LINE_HEADS:
                return tok if tok.type in HEADER_WORDS else None
        return None


def _line_starts(tokens: list[Token]) -> list[int]:
    """For each token, the index of the first token of its logical line."""
    out, start = [], 0
    for i, tok in enumerate(tokens):
        if i > 0 and tokens[i - 1].type in LINE_HEADS:
            start = i
        out.append(start)
    return out


def _skip_statement(tokens: list[Token], i: int) -> int:
    """Index of the first token after the statement starting at `i`, including the block it
    opens and its `else`/`elif` parts."""
    depth, n = 0, len(tokens)
    while i < n:
        kind = tokens[i].type
        i += 1
        if kind == "_INDENT":
            depth += 1
        elif kind == "_DEDENT":
            if depth == 0:
                return i - 1
            depth -= 1
        elif kind != "_NL" or depth > 0:
            continue
        if depth == 0 and not _continues(tokens, i):
            return i
    return n


def _continues(tokens: list[Token], i: int) -> bool:
    return i < len(tokens) and tokens[i].type in ("_INDENT", "ELSE", "ELIF")


# ---------------------------------------------------------------- error messages

HEADER_WORDS = {"FOR": "the loop header", "IF": "the if condition", "ELIF": "the elif condition",
                "ELSE": "'else'", "DEF": "the function signature", "CLASS": "the class header"}
EXPR_START = {"NAME", "INT", "FLOAT", "IMAG", "STRING", "LPAR", "LSQB", "THIS", "MINUS", "PLUS"}
LINE_ENDS = {"_NL", "$END", "_DEDENT"}
SPECIAL_NAMES = {"NAME": "a name", "INT": "a number", "FLOAT": "a number", "STRING": "a string",
                 "_NL": "the end of the line", "_INDENT": "an indented block",
                 "_DEDENT": "the end of the block", "$END": "the end of the file", "_ARROW": "'->'",
                 "LAMBDA": "'λ'", "IMAG": "a number", "DRAW_NAME": "a name"}
LOOP_HINT = "a loop header is `for i:`, `for i: ℕ(n):` or `for i: ℕ(a, b):`"


@functools.lru_cache(maxsize=None)
def terminal_names() -> dict[str, str]:
    """Terminal name → what a person calls it: `')'`, `'def'`, `a name`."""
    names = {}
    for term in parser().terminals:
        if term.pattern.type == "str":
            names[term.name] = f"'{term.pattern.value}'"
    names.update(SPECIAL_NAMES)
    return names


def friendly(kind: str) -> str:
    return terminal_names().get(kind, kind.lower())


def describe_token(tok: Token) -> str:
    if tok.type == "NAME":
        return f"name '{tok}'"
    if tok.type in ("INT", "FLOAT"):
        return f"number {tok}"
    if tok.type == "STRING":
        return "string"
    return friendly(tok.type)


def expected_hint(expected: set[str]) -> str | None:
    """`expected ')', ',' or an operator`: terminals grouped the way a person reads them."""
    items, rest = [], set(expected)
    if EXPR_START <= rest:
        items.append("an expression")
        rest -= EXPR_START | {"NOT", "FOR"}
    if len(_operator_kinds() & rest) >= 5:
        items.append("an operator")
        rest -= _operator_kinds()
    if _scalar_kinds() <= rest:
        items.append("a type")
        rest -= _scalar_kinds()
    items = sorted(friendly(k) for k in rest) + items
    if not items:
        return None
    items = items[:8]
    return "expected " + (items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1])


@functools.lru_cache(maxsize=None)
def _scalar_kinds() -> frozenset[str]:
    spellings = {"ℝ", "R", "\\R", "\\mathbb{R}", "ℕ", "N", "\\N", "\\mathbb{N}", "ℤ", "Z", "\\Z",
                 "\\mathbb{Z}"}
    return frozenset(t.name for t in parser().terminals
                     if t.pattern.type == "str" and t.pattern.value in spellings)


@functools.lru_cache(maxsize=None)
def _operator_kinds() -> frozenset[str]:
    """Terminals of the binary operators (lark names some of them __ANON_n)."""
    ops = {"+", "-", "*", "/", "//", "%", "@", "**", "<", ">", "<=", ">=", "==", "!=", "and", "or"}
    return frozenset(t.name for t in parser().terminals
                     if t.pattern.type == "str" and t.pattern.value in ops)


def explain(tok: Token, expected: set[str], header: Token | None) -> tuple[str, str | None]:
    """A syntax error in words: (message, hint). `header` is the keyword that opened the
    statement (or, when a block is missing, the statement before)."""
    kind = tok.type
    hint = expected_hint(expected)
    where = HEADER_WORDS.get(header.type) if header is not None else None
    if kind == "_INDENT":
        return "unexpected indent", "this line is indented more than the block it belongs to"
    if "_INDENT" in expected:
        if where is None:
            return "expected an indented block", None
        return f"expected an indented block after {where} on line {header.line}", None
    if kind in LINE_ENDS and "COLON" in expected and where:
        return f"expected ':' after {where}", hint
    if kind in LINE_ENDS and EXPR_START <= expected:
        return "expected an expression", None
    if kind in ("RPAR", "COMMA") and expected == {"COLON"}:
        return "expected ':' and a type after the parameter name", "parameters are written `x: ℝ[n]`"
    if where and header.type == "FOR" and kind == "NAME":
        return f"unexpected {describe_token(tok)}", LOOP_HINT
    if kind == "EQUAL" and _compare_op("==") in expected:
        return "unexpected '='", "to compare two values, use '=='"
    if kind == "$END":
        return "unexpected end of file", hint
    if kind == "_NL":
        return "unexpected end of line", hint
    return f"unexpected {describe_token(tok)}", hint


def python_habit(tokens: list[Token], at_line_start: bool) -> tuple[str, str, Span] | None:
    """A statement written the way Python writes it (`for i in range(n):`, `while c:`,
    `import x`): what to write in Physika instead."""
    line = []
    for tok in tokens:
        if tok.type in LINE_HEADS:
            break
        line.append(tok)
    if not line or not at_line_start:
        return None
    first = line[0]
    if first.type == "NAME" and str(first) == "while" and len(line) > 1:
        return ("Physika has no `while` loop", "loop a known number of times, `for i: ℕ(n):`, "
                "with an `if` inside for the condition", token_span(first))
    if first.type == "IMPORT":
        what = str(line[1]) if len(line) > 1 and line[1].type == "NAME" else "other"
        return (f"`import {what}` is Python's", f"Physika takes definitions from a file beside the "
                f"program: `from {what} import f, g`", token_span(first))
    if first.type == "FOR" and len(line) > 2 and line[2].type == "NAME" and str(line[2]) == "in":
        var = str(line[1])
        return ("`for … in …` is Python's loop header",
                f"write `for {var}: ℕ({_range_args(line[3:])}):`", token_span(line[2]))
    return None


def _range_args(tokens: list[Token]) -> str:
    """`range(a, b)` → `a, b` (the text between its brackets), else `n`."""
    if len(tokens) < 3 or str(tokens[0]) != "range" or tokens[1].type != "LPAR":
        return "n"
    depth, parts = 0, []
    for tok in tokens[1:]:
        depth += tok.type in ("LPAR", "LSQB")
        depth -= tok.type in ("RPAR", "RSQB")
        if depth == 0:
            break
        parts.append(str(tok))
    text = " ".join(parts[1:]).replace(" ,", ",").replace("( ", "(").replace(" )", ")")
    return text or "n"


def _compare_op(text: str) -> str:
    for term in parser().terminals:
        if term.pattern.type == "str" and term.pattern.value == text:
            return term.name
    return text


# ---------------------------------------------------------------- tree → AST

def span_of_meta(meta) -> Span:
    if getattr(meta, "empty", True):
        return NOSPAN
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def block_span(meta, inner) -> Span:
    """From a compound statement's keyword to the end of its last inner node: lark's own end
    would take in the newline and indentation that close the block."""
    start = span_of_meta(meta)
    if not inner:           # a body of `pass` only
        return start
    last = inner[-1].span
    return Span(start.line, start.col, last.end_line, last.end_col)


DISTRIBUTIONS = {"𝒩": "normal", "Normal": "normal", "𝒰": "uniform", "Uniform": "uniform",
                 "ℬ": "beta", "Beta": "beta", "Gamma": "gamma", "Bernoulli": "bernoulli"}
# what each distribution's parameters are called, for the message when some are missing
DIST_PARAMS = {"normal": ("a mean and a standard deviation", 2),
               "uniform": ("a low and a high bound", 2), "beta": ("two shape parameters α, β", 2),
               "gamma": ("a concentration and a rate", 2), "bernoulli": ("a probability", 1)}
SCALARS = {"ℝ": ast.Scalar.REAL, "R": ast.Scalar.REAL, "\\R": ast.Scalar.REAL,
           "\\mathbb{R}": ast.Scalar.REAL, "ℕ": ast.Scalar.NAT, "N": ast.Scalar.NAT,
           "\\N": ast.Scalar.NAT, "\\mathbb{N}": ast.Scalar.NAT, "ℤ": ast.Scalar.INT,
           "Z": ast.Scalar.INT, "\\Z": ast.Scalar.INT, "\\mathbb{Z}": ast.Scalar.INT,
           "ℂ": ast.Scalar.COMPLEX, "C": ast.Scalar.COMPLEX, "\\C": ast.Scalar.COMPLEX,
           "\\mathbb{C}": ast.Scalar.COMPLEX}
LETTER_SCALARS = frozenset({"R", "N", "Z", "C"})     # NAMEs that spell a type in a type
SAMPLE_MODES = ("score-function", "score", "reparam", "none")   # upstream's estimator hints


class _Many(tuple):
    """Several statements standing for one line (`a, b: ℝ = 1, 2`): flattened into the block."""


def _flatten(items) -> list:
    out = []
    for s in items:
        if isinstance(s, _Many):
            out.extend(s)
        elif s is not None:
            out.append(s)
    return out
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


# `x: Symbol`, `u: Function`: the builtin that makes the value (sympy, phc.runtime.symbolic)
SYMBOLIC_DECLS = {"Symbol": "symbol", "Function": "function"}


@v_args(meta=True)
class AstBuilder(Transformer):
    """lark tree → `phc.ast`. Semantic slips the grammar lets through (assigning to a call, a
    loop in a class body) are reported to `diags` and replaced by harmless nodes."""

    def __init__(self, diags: _Diags, class_names: frozenset[str] = frozenset()):
        super().__init__()
        self.diags = diags
        self.class_names = class_names      # a class named `C` wins over the letter type ℂ

    # -- statements
    def start(self, meta, items):
        return _flatten(items)

    def suite(self, meta, items):
        return tuple(_flatten(items))

    def field_decl(self, meta, items):
        name, type_ = items
        span = span_of_meta(meta)
        return ast.Decl(str(name), type_, self._symbolic_value(str(name), type_, span), span, token_span(name))

    def _symbolic_value(self, name: str, type_, span):
        """`x: Symbol` and `u: Function` make a sympy symbol or undefined function named like the
        variable (`symbol("x")`); any other declaration without a value has none."""
        kind = getattr(type_, "class_name", None)
        if kind in SYMBOLIC_DECLS and kind not in self.class_names:
            return ast.Call(ast.Name(SYMBOLIC_DECLS[kind], span), (ast.Str(name, span),), span)
        return None

    def decl_equation(self, meta, items):
        name, type_, lhs, rhs = items
        span = span_of_meta(meta)
        value = ast.Call(ast.Name("equation", span), (lhs, rhs), span)
        return ast.Decl(str(name), type_, value, span, token_span(name))

    def unpack_decl(self, meta, items):
        """`x, y: Symbol`: one declaration per name (the type written last is every name's)."""
        targets = _shared_type([t for t in items if isinstance(t, ast.Target)])
        if any(t.type is None for t in targets):
            self.diags.add("names without values need a type", span_of_meta(meta),
                           "write `x, y: Symbol`, or give values: `a, b = 1, 2`")
            return None
        return _Many(ast.Decl(t.name, t.type, self._symbolic_value(t.name, t.type, t.span), t.span, t.span)
                     for t in targets)

    def decl_value(self, meta, items):
        name, type_, value = items
        return ast.Decl(str(name), type_, value, span_of_meta(meta), token_span(name))

    decl_sample = decl_value

    def assign(self, meta, items):
        target, value = items
        return ast.Assign(self._target(target), value, span_of_meta(meta))

    assign_sample = assign

    def aug_assign(self, meta, items):
        target, op, value = items
        return ast.AugAssign(self._target(target), str(op)[:-1], value, span_of_meta(meta))

    def _target(self, target):
        if not isinstance(target, (ast.Name, ast.Index, ast.Attribute)):
            self.diags.add(f"cannot assign to {_kind_in_words(target)}", target.span,
                           "the left of '=' must be a name, an indexed element `x[i]` or a field `obj.w`")
        return target

    def sample(self, meta, items):
        name, args = items[0], [a for a in items[1:] if a is not None]
        span = span_of_meta(meta)
        dist = DISTRIBUTIONS.get(str(name))
        if dist is None:
            self.diags.add(f"unknown distribution '{name}'", token_span(name),
                           "sample with 𝒩(μ, σ, shape…) (or Normal), 𝒰(lo, hi, shape…) (or "
                           "Uniform), ℬ(α, β, …) (or Beta), Gamma(k, rate, …) or Bernoulli(p, …)")
            dist = "normal"
        what, count = DIST_PARAMS[dist]
        if len(args) < count:
            example = "p" if count == 1 else "a, b"
            self.diags.add(f"'{name}' needs {what}", span,
                           f"write {name}({example}) or {name}({example}, d0, d1, …)")
        mode = None
        if args and isinstance(args[-1], ast.Str) and args[-1].value in SAMPLE_MODES:
            mode = args.pop().value
        strings = [a for a in args if isinstance(a, ast.Str)]
        if strings:
            self.diags.add("a distribution takes numbers, and last an estimator", strings[0].span,
                           "the estimator is one of " + ", ".join(f'"{m}"' for m in SAMPLE_MODES))
            args = [a for a in args if not isinstance(a, ast.Str)]
        return ast.Sample(dist, tuple(args[:count]), tuple(args[count:]), span, mode)

    # -- several names at once
    def utarget(self, meta, items):
        name, type_ = items
        return ast.Target(str(name), type_, span_of_meta(meta))

    def unpack(self, meta, items):
        *targets, = [t for t in items if isinstance(t, ast.Target)]
        values = [v for v in items if not isinstance(v, ast.Target) and v is not None]
        span = span_of_meta(meta)
        targets = _shared_type(targets)
        value = values[0] if len(values) == 1 else ast.TupleExpr(tuple(values), _cover(values))
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            self.diags.add("a name appears twice on the left of '='", span,
                           "each value goes to its own name")
        if isinstance(value, ast.TupleExpr):
            if len(value.items) != len(targets):
                self.diags.add(f"{len(targets)} names but {len(value.items)} values", value.span,
                               "give one value per name")
                return None
            if not _mentions(value, set(names)):
                return _Many(_one_by_one(targets, value.items))
        return ast.Unpack(tuple(targets), value, span)

    def unpack_sample(self, meta, items):
        """`b: ℝ[n], lp: ℝ[n] ~ Bernoulli(p, n, "score-function")`: a draw and its
        log-probability (per element, or summed where the second name is a number)."""
        targets = [t for t in items if isinstance(t, ast.Target)]
        sample = items[-1]
        if len(targets) != 2:
            self.diags.add(f"a draw goes to one name, or to two (the draw and its "
                           f"log-probability), not {len(targets)}", span_of_meta(meta),
                           "write `x: ℝ[n], log_p: ℝ[n] ~ Bernoulli(p, n)`")
            return None
        return ast.Unpack(tuple(targets), sample, span_of_meta(meta))

    def import_stmt(self, meta, items):
        module, *names = items
        return ast.Import(module, tuple(map(str, names)), span_of_meta(meta),
                          tuple(token_span(n) for n in names))

    def dotted_name(self, meta, items):
        return ".".join(map(str, items))

    def expr_stmt(self, meta, items):
        return ast.ExprStmt(items[0], span_of_meta(meta))

    def return_stmt(self, meta, items):
        values = [v for v in items if v is not None]
        if len(values) > 1:
            return ast.Return(ast.TupleExpr(tuple(values), _cover(values)), span_of_meta(meta))
        return ast.Return(values[0] if values else None, span_of_meta(meta))

    def pass_stmt(self, meta, items):
        return None

    def if_stmt(self, meta, items):
        cond, body, orelse = (items + [None])[:3]
        orelse = _orelse(orelse)
        return ast.If(cond, body, orelse, block_span(meta, orelse or body))

    elif_stmt = if_stmt

    def else_block(self, meta, items):
        return items[0]

    def for_stmt(self, meta, items):
        names, body = items
        return self._for(meta, names, None, body)

    def for_range_stmt(self, meta, items):
        names, rng, body = items
        return self._for(meta, names, rng, body)

    def _for(self, meta, names, rng, body):
        return ast.For(tuple(map(str, names)), rng, body, block_span(meta, body),
                       tuple(token_span(n) for n in names))

    def loop_vars(self, meta, items):
        for tok in items:
            if tok == "in":
                self.diags.add("unexpected name 'in'", token_span(tok), LOOP_HINT)
        return items

    def nat_range(self, meta, items):
        _, first, second = items
        span = span_of_meta(meta)
        return ast.Range(None, first, span) if second is None else ast.Range(first, second, span)

    def named_range(self, meta, items):
        name = items[0]
        if str(name) != "N":
            self.diags.add(f"a loop range is ℕ(n) or ℕ(a, b), not {name}(…)", token_span(name),
                           "write `for i: ℕ(n):`")
        return self.nat_range(meta, items)

    def funcdef(self, meta, items):
        name, params, ret, body = items
        return ast.FuncDef(str(name), params or (), ret, body, block_span(meta, body), token_span(name))

    def ret(self, meta, items):
        if len(items) > 1:
            return ast.TupleTypeExpr(tuple(items), span_of_meta(meta))
        return items[0]

    def params(self, meta, items):
        return tuple(p for p in items if p is not None)

    def param(self, meta, items):
        name, type_ = items
        return ast.Param(str(name), type_, span_of_meta(meta))

    def classdef(self, meta, items):
        name, body = items
        return self._class(meta, name, (), body)

    def classdef_params(self, meta, items):
        name, params, *body = items
        return self._class(meta, name, params or (), [s for s in body if s is not None])

    def _class(self, meta, name, params, body):
        fields = tuple(s for s in body if isinstance(s, ast.Decl))
        methods = tuple(s for s in body if isinstance(s, ast.FuncDef))
        for stmt in body:
            if not isinstance(stmt, (ast.Decl, ast.FuncDef)):
                self.diags.add("a class body holds field declarations and methods only", stmt.span,
                               "move this statement into a method")
        span = block_span(meta, body or params or [ast.Name(str(name), token_span(name))])
        return ast.ClassDef(str(name), params, fields, methods, span, token_span(name))

    # -- types
    def type(self, meta, items):
        scalar, dims = items
        return ast.TypeExpr(scalar, dims or (), None, span_of_meta(meta))

    def named_type(self, meta, items):
        name, dims = str(items[0]), items[1]
        if name in LETTER_SCALARS and (dims or name not in self.class_names):
            return ast.TypeExpr(SCALARS[name], dims or (), None, span_of_meta(meta))
        if dims:
            self.diags.add(f"a class type takes no dimensions: `{name}[…]`", span_of_meta(meta),
                           "sizes belong to tensor types such as ℝ[n]")
        return ast.TypeExpr(None, (), name, span_of_meta(meta))

    def dims(self, meta, items):
        return tuple(d for d in items if d is not None)

    def scalar(self, meta, items):
        return SCALARS[str(items[0])]

    # -- expressions
    def comprehension_sample(self, meta, items):
        """`for i: ℕ(n) → ε: ℝ[2] ~ 𝒩(μ, σ)`: each element a draw, shaped by the sample's own
        sizes or else by its declared type (the name ε only documents the draw)."""
        name, rng, _, type_, sample = items
        if not sample.shape and type_ is not None and type_.dims:
            sample = ast.Sample(sample.dist, sample.params, type_.dims, sample.span)
        return self.comprehension(meta, [name, rng, sample])

    def comprehension(self, meta, items):
        """A comprehension of independent draws whose parameters do not depend on its variable
        is one draw of the larger shape: `for i: ℕ(n) → 𝒩(μ, σ, 2)` is `𝒩(μ, σ, n, 2)`."""
        name, rng, body = items
        span = span_of_meta(meta)
        if isinstance(body, ast.Sample) and rng is not None and body.shape \
                and not _mentions(ast.TupleExpr(body.params + body.shape), {str(name)}):
            extent = rng.hi if rng.lo is None else ast.BinOp("-", rng.hi, rng.lo, rng.span)
            return ast.Sample(body.dist, body.params, (extent,) + body.shape, span)
        return ast.Comprehension(str(name), rng, body, span, token_span(name))

    def or_op(self, meta, items):
        return ast.BinOp("or", items[0], items[1], span_of_meta(meta))

    def and_op(self, meta, items):
        return ast.BinOp("and", items[0], items[1], span_of_meta(meta))

    def not_op(self, meta, items):
        return ast.UnaryOp("not", items[0], span_of_meta(meta))

    def binop(self, meta, items):
        left, op, right = items
        return ast.BinOp(str(op), left, right, span_of_meta(meta))

    def unary(self, meta, items):
        op, operand = items
        return ast.UnaryOp(str(op), operand, span_of_meta(meta))

    def call(self, meta, items):
        func, args = items[0], tuple(a for a in items[1:] if a is not None)
        if isinstance(func, ast.Attribute) and func.attr == "seed" \
                and isinstance(func.value, ast.Name) and func.value.id == "physika":
            func = ast.Name("physika_seed", func.span)      # `physika.seed(n)`
        return ast.Call(func, args, span_of_meta(meta))

    def index(self, meta, items):
        return ast.Index(items[0], tuple(a for a in items[1:] if a is not None), span_of_meta(meta))

    def attribute(self, meta, items):
        return ast.Attribute(items[0], str(items[1]), span_of_meta(meta))

    def slice(self, meta, items):
        lo, hi, step = items
        return ast.Slice(lo, hi, step, span_of_meta(meta))

    def name(self, meta, items):
        if str(items[0]) == "self":         # upstream accepts Python's spelling of `this`
            return ast.This(span_of_meta(meta))
        return ast.Name(str(items[0]), span_of_meta(meta))

    def this(self, meta, items):
        return ast.This(span_of_meta(meta))

    def int_lit(self, meta, items):
        text = str(items[0])
        try:
            value = int(text)
        except ValueError:      # beyond Python's digit limit for int()
            self.diags.add("integer literal is too long", span_of_meta(meta))
            value = 0
        return ast.Num(value, text, span_of_meta(meta))

    def float_lit(self, meta, items):
        text = str(items[0])
        value = float(text)
        if value in (float("inf"), float("-inf")):
            self.diags.add("number is too large", span_of_meta(meta), "the largest real is about 1.8e308")
            value = 0.0
        return ast.Num(value, text, span_of_meta(meta))

    def imag_lit(self, meta, items):
        text = str(items[0])
        return ast.Num(complex(0.0, float(text[:-1])), text, span_of_meta(meta))

    def string(self, meta, items):
        return ast.Str(_unescape(str(items[0])[1:-1]), span_of_meta(meta))

    def array(self, meta, items):
        return ast.ArrayLit(tuple(i for i in items if i is not None), span_of_meta(meta))


def _cover(nodes) -> Span:
    first, last = nodes[0].span, nodes[-1].span
    return Span(first.line, first.col, last.end_line, last.end_col)


def _shared_type(targets: list) -> list:
    """`a, b: ℝ = …`: a type written only on the last name is every name's type."""
    last = targets[-1].type
    if last is None or any(t.type is not None for t in targets[:-1]):
        return targets
    return [ast.Target(t.name, last, t.span) for t in targets]


def _mentions(value, names: set) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(value))


def _one_by_one(targets, values) -> tuple:
    """`a, b: ℝ = 1, 2` as `a: ℝ = 1` then `b: ℝ = 2` (the values do not mention the names)."""
    out = []
    for t, v in zip(targets, values):
        span = Span(t.span.line, t.span.col, v.span.end_line, v.span.end_col)
        if t.type is None:
            out.append(ast.Assign(ast.Name(t.name, t.span), v, span))
        else:
            name_span = Span(t.span.line, t.span.col, t.span.line, t.span.col + len(t.name))
            out.append(ast.Decl(t.name, t.type, v, span, name_span))
    return out


def _orelse(orelse) -> tuple:
    if orelse is None:
        return ()
    return (orelse,) if isinstance(orelse, ast.If) else orelse


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _kind_in_words(node) -> str:
    return {"Call": "a call", "Num": "a number", "Str": "a string", "BinOp": "an expression",
            "UnaryOp": "an expression", "ArrayLit": "an array", "This": "'this'",
            "Comprehension": "a comprehension"}.get(type(node).__name__, "this expression")


__all__ = ["parse", "normalize", "parser", "PhkIndenter", "explain"]
