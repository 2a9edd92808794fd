"""The parser: every construct and spelling of the surface syntax, spans, the seed program, syntax
errors (position and wording), the AST text dump and the `phc.api` entry points."""
from __future__ import annotations

import logging
import subprocess
import sys

import lark
import pytest

from phc import ast
from phc.api import check_source, parse_source
from phc.ast import Scalar, Span
from phc.ast_text import format_ast
from phc.diagnostics import Diagnostic, PhcError
from phc.parse import GRAMMAR_PATH, parse

# ---------------------------------------------------------------- helpers


def body(src: str) -> tuple:
    return parse(src).body


def stmt(src: str):
    (only,) = body(src)
    return only


def expr(src: str):
    return stmt(f"x = {src}\n").value


def errors(src: str) -> list[Diagnostic]:
    with pytest.raises(PhcError) as info:
        parse(src, "t.phk")
    return info.value.diagnostics


def one_error(src: str) -> Diagnostic:
    (d,) = errors(src)
    return d


def paren(e) -> str:
    """An expression fully parenthesised, to pin precedence and associativity."""
    if isinstance(e, ast.Num):
        return e.text
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.BinOp):
        return f"({paren(e.left)} {e.op} {paren(e.right)})"
    if isinstance(e, ast.UnaryOp):
        return f"({e.op} {paren(e.operand)})" if e.op == "not" else f"({e.op}{paren(e.operand)})"
    if isinstance(e, ast.Call):
        return f"{paren(e.func)}({', '.join(map(paren, e.args))})"
    if isinstance(e, ast.Index):
        return f"{paren(e.value)}[{', '.join(map(paren, e.indices))}]"
    if isinstance(e, ast.Attribute):
        return f"{paren(e.value)}.{e.attr}"
    if isinstance(e, ast.This):
        return "this"
    if isinstance(e, ast.Comprehension):
        rng = f": {paren(e.range)}" if e.range else ""
        return f"(for {e.var}{rng} -> {paren(e.body)})"
    if isinstance(e, ast.Range):
        return f"ℕ({paren(e.hi)})" if e.lo is None else f"ℕ({paren(e.lo)}, {paren(e.hi)})"
    if isinstance(e, ast.Slice):
        parts = [paren(p) if p is not None else "" for p in (e.lo, e.hi, e.step)]
        return ":".join(parts).rstrip(":") if e.step is None else ":".join(parts)
    if isinstance(e, ast.ArrayLit):
        return f"[{', '.join(map(paren, e.items))}]"
    raise AssertionError(type(e))


# ---------------------------------------------------------------- grammar health


def test_grammar_has_no_conflicts(caplog):
    """lark resolves shift/reduce conflicts silently: build the tables afresh and make sure
    it found none (with `strict=True` where lark can check strictly)."""
    text = GRAMMAR_PATH.read_text(encoding="utf-8")
    level = lark.logger.level
    lark.logger.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG, logger="lark"):
            lark.Lark(text, parser="lalr", lexer="basic", debug=True)
    finally:
        lark.logger.setLevel(level)
    assert not [r for r in caplog.records if "conflict" in r.getMessage().lower()]
    try:
        lark.Lark(text, parser="lalr", lexer="basic", strict=True)
    except lark.exceptions.LexError as e:      # strict lexing needs `interegular`
        assert "interegular" in str(e)


def test_import_and_parse_of_the_seed_is_fast(seed_path):
    code = ("import time; t = time.perf_counter(); import phc.parse, pathlib; "
            f"phc.parse.parse(pathlib.Path({str(seed_path)!r}).read_text()); "
            "print(time.perf_counter() - t, 'torch' in __import__('sys').modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, torch_loaded = out.stdout.split()
    assert torch_loaded == "False"
    assert float(seconds) < 1.0         # about 0.1 s warm; generous for a loaded CI machine


# ---------------------------------------------------------------- the seed


def test_seed_parses(seed_source):
    program = parse(seed_source, "cnn_seed.phk")
    assert len(program.body) == 33
    assert program.filename == "cnn_seed.phk" and program.source == seed_source
    funcs = [s.name for s in program.body if isinstance(s, ast.FuncDef)]
    assert funcs[:3] == ["get_1d_array_length", "get_2d_array_num_rows", "zero_1d_array"]
    assert funcs[-2:] == ["cross_entropy", "argmax"]
    (convnets,) = [s for s in program.body if isinstance(s, ast.ClassDef)]
    assert [f.name for f in convnets.fields] == ["kernel", "b1", "w", "b2"]
    assert all(f.value is None for f in convnets.fields)
    # five methods (the brief's "six" miscounts): four layers and the call operator λ
    assert [m.name for m in convnets.methods] == ["conv2d", "maxpool2d", "flatten", "linear", "λ"]
    assert convnets.methods[-1].is_lambda
    assert convnets.span == Span(62, 1, 118, 23)     # to the end of `return results`


def test_seed_details(seed_source):
    program = parse(seed_source)
    kernel = next(s for s in program.body if isinstance(s, ast.Decl) and s.name == "kernel")
    assert kernel.type.scalar is Scalar.REAL and [d.value for d in kernel.type.dims] == [3, 3]
    assert [[paren(v) for v in row.items] for row in kernel.value.items] == [["1", "0", "(-1)"]] * 3
    assert kernel.span == Span(120, 1, 124, 2)
    argmax = next(s for s in program.body if isinstance(s, ast.FuncDef) and s.name == "argmax")
    assert argmax.params[0].type.scalar is Scalar.REAL        # `R[m]`
    loop = argmax.body[3]
    assert isinstance(loop, ast.For) and paren(loop.range) == "ℕ(1, len_iterable)"


# ---------------------------------------------------------------- types


@pytest.mark.parametrize("spelling, scalar", [
    ("ℝ", Scalar.REAL), ("R", Scalar.REAL), ("\\R", Scalar.REAL), ("\\mathbb{R}", Scalar.REAL),
    ("ℕ", Scalar.NAT), ("N", Scalar.NAT), ("\\N", Scalar.NAT), ("\\mathbb{N}", Scalar.NAT),
    ("ℤ", Scalar.INT), ("Z", Scalar.INT), ("\\Z", Scalar.INT), ("\\mathbb{Z}", Scalar.INT),
])
def test_scalar_spellings(spelling, scalar):
    decl = stmt(f"x: {spelling} = 1\n")
    assert decl.type.scalar is scalar and decl.type.dims == ()
    tensor = stmt(f"y: {spelling}[2, n] = 1\n").type
    assert tensor.scalar is scalar and paren(tensor.dims[0]) == "2" and paren(tensor.dims[1]) == "n"


@pytest.mark.parametrize("text, dims", [
    ("ℝ[3, 3]", ["3", "3"]), ("ℝ[m, n]", ["m", "n"]), ("ℝ[C, H, W]", ["C", "H", "W"]),
    ("ℝ[B,C,H,W]", ["B", "C", "H", "W"]), ("ℝ[n+1, 2*m]", ["(n + 1)", "(2 * m)"]),
    ("ℝ[H-K+1]", ["((H - K) + 1)"]), ("ℝ[len(x)]", ["len(x)"]),
])
def test_tensor_types(text, dims):
    t = stmt(f"x: {text} = 0\n").type
    assert [paren(d) for d in t.dims] == dims


def test_class_name_as_type():
    decl = stmt("cnn_object: ConvNets = ConvNets(k, b)\n")
    assert decl.type.scalar is None and decl.type.class_name == "ConvNets"
    assert isinstance(decl.value, ast.Call) and paren(decl.value) == "ConvNets(k, b)"


@pytest.mark.parametrize("name", ["Nx", "Rows", "Z2", "R_1", "Normal", "NN", "len", "ℝx"])
def test_names_that_start_like_type_keywords(name):
    s = stmt(f"{name} = {name} + 1\n")
    assert s.target.id == name and paren(s.value) == f"({name} + 1)"


def test_letter_types_are_names_outside_types():
    """`R N Z C` spell ℝ ℕ ℤ ℂ in a type; elsewhere they are names (a size `N`)."""
    decl, decl2, loop = body("N: ℕ = 3\nx: R[N, 2]\nfor i: N(N):\n    x[i, 0] = 1\n")
    assert decl.name == "N" and decl.type.scalar is Scalar.NAT
    assert decl2.type.scalar is Scalar.REAL and decl2.type.dims[0].id == "N"
    assert loop.range.hi.id == "N"
    assert stmt("z: C = 1j\n").type.scalar is Scalar.COMPLEX


# ---------------------------------------------------------------- declarations and assignment


def test_declarations():
    d = stmt("x: ℝ[3] = [1, 2, 3]\n")
    assert d.name == "x" and isinstance(d.value, ast.ArrayLit) and len(d.value.items) == 3
    assert d.span == Span(1, 1, 1, 20) and d.name_span == Span(1, 1, 1, 2)
    spaced = stmt("x : ℝ = 0\n")
    assert spaced.name == "x" and spaced.value.value == 0
    field = stmt("w: ℝ[m, n]\n")
    assert field.value is None and field.span == Span(1, 1, 1, 11)


@pytest.mark.parametrize("src, dist, params, shape", [
    ("x: ℝ[3] ~ 𝒩(0, 1, 3)\n", "normal", ["0", "1"], ["3"]),
    ("x ~ 𝒩(μ, σ, d0, d1)\n", "normal", ["μ", "σ"], ["d0", "d1"]),
    ("x ~ Normal(0, 0.1)\n", "normal", ["0", "0.1"], []),
    ("x: ℝ ~ 𝒰(-1, 1)\n", "uniform", ["(-1)", "1"], []),
    ("x ~ Uniform(lo, hi, n, 2)\n", "uniform", ["lo", "hi"], ["n", "2"]),
])
def test_sampling(src, dist, params, shape):
    s = stmt(src)
    sample = s.value
    assert isinstance(sample, ast.Sample) and sample.dist == dist
    assert [paren(p) for p in sample.params] == params and [paren(d) for d in sample.shape] == shape
    assert isinstance(s, ast.Decl if ":" in src.split("~")[0] else ast.Assign)


def test_sampling_errors():
    assert one_error("x ~ Gauss(0, 1)\n").message == "unknown distribution 'Gauss'"
    assert one_error("x ~ 𝒩(0)\n").message == "'𝒩' needs a mean and a standard deviation"


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_augmented_assignment(op):
    s = stmt(f"total {op}= x[i]\n")
    assert isinstance(s, ast.AugAssign) and s.op == op and paren(s.value) == "x[i]"


def test_assignment_targets():
    assert paren(stmt("r[i, j] = acc + bias\n").target) == "r[i, j]"
    assert paren(stmt("r[i][j] = 0\n").target) == "r[i][j]"
    assert paren(stmt("this.w = w2\n").target) == "this.w"
    assert paren(stmt("obj.w += 1\n").target) == "obj.w"
    assert one_error("f(x) = 3\n").message == "cannot assign to a call"
    assert one_error("1 += 3\n").message == "cannot assign to a number"


def test_expression_statements_return_and_pass():
    assert paren(stmt("physika_print(x)\n").expr) == "physika_print(x)"
    assert paren(stmt("x\n").expr) == "x"
    f = stmt("def f():\n    pass\n")
    assert f.body == ()
    g = stmt("def g(x: ℝ):\n    return\n")
    assert g.body[0].value is None and g.ret is None
    assert body("pass\npass\n") == ()


# ---------------------------------------------------------------- functions and classes


def test_function_with_return_type():
    f = stmt("def f(a: ℝ[m], b: ℝ): ℝ:\n    return a[0] + b\n")
    assert f.name == "f" and [p.name for p in f.params] == ["a", "b"]
    assert [p.type.scalar for p in f.params] == [Scalar.REAL, Scalar.REAL]
    assert f.ret.scalar is Scalar.REAL and f.ret.dims == ()
    assert f.name_span == Span(1, 5, 1, 6) and f.span == Span(1, 1, 2, 20)
    assert f.params[0].span == Span(1, 7, 1, 14)


def test_function_without_return_type_and_trailing_comma():
    f = stmt("def f(x: ℝ,):\n    x\n")
    assert f.ret is None and len(f.params) == 1


@pytest.mark.parametrize("arrow", ["->", "→"])
def test_lambda_call_operator(arrow):
    f = stmt(f"def λ(x: ℝ[H, W]) {arrow} ℝ[m]:\n    return x\n")
    assert f.is_lambda and f.name == "λ" and [paren(d) for d in f.ret.dims] == ["m"]


def test_lambda_is_not_a_name():
    assert one_error("λ = 1\n").message == "unexpected 'λ'"


def test_class_with_fields_and_methods():
    c = stmt("class C:\n    w: ℝ[2]\n    b: ℝ = 0\n    def f(x: ℝ): ℝ:\n        return this.w[0] * x\n")
    assert c.name == "C" and c.params == ()
    assert [f.name for f in c.fields] == ["w", "b"] and c.fields[1].value.value == 0
    (m,) = c.methods
    assert paren(m.body[0].value) == "(this.w[0] * x)"
    assert c.field_names() == ("w", "b")


def test_class_with_parameters_with_and_without_body():
    bare = stmt("class Net(W: ℝ[2,3], b: ℝ):\n")
    assert [p.name for p in bare.params] == ["W", "b"] and bare.methods == () and bare.fields == ()
    full = body("class Net(W: ℝ[2,3]):\n    def λ(x: ℝ[3]) -> ℝ[2]:\n        return this.W @ x\n"
                "y = Net(w)\n")
    assert full[0].methods[0].is_lambda and isinstance(full[1], ast.Assign)


def test_class_body_holds_fields_and_methods_only():
    d = one_error("class C:\n    for i:\n        x = 1\n")
    assert (d.span.line, d.span.col) == (2, 5)
    assert d.message == "a class body holds field declarations and methods only"


# ---------------------------------------------------------------- loops and comprehensions


@pytest.mark.parametrize("header, vars_, rng", [
    ("for i:", ("i",), None),
    ("for i: ℕ(n):", ("i",), "ℕ(n)"),
    ("for i:N(rows):", ("i",), "ℕ(rows)"),
    ("for i : ℕ(a, b):", ("i",), "ℕ(a, b)"),
    ("for i:ℕ(len(kernel[0])):", ("i",), "ℕ(len(kernel[0]))"),
    ("for i j k:", ("i", "j", "k"), None),
    ("for i: \\mathbb{N}(3):", ("i",), "ℕ(3)"),
])
def test_for_loops(header, vars_, rng):
    loop = stmt(f"{header}\n    total += x[i]\n")
    assert isinstance(loop, ast.For) and loop.vars == vars_
    assert (paren(loop.range) if loop.range else None) == rng
    assert len(loop.body) == 1 and loop.var_spans[0] == Span(1, 5, 1, 6)


def test_for_in_is_refused_with_a_hint():
    d = one_error("for i in x:\n    y = 1\n")
    assert (d.span.line, d.span.col, d.message) == (1, 7, "unexpected name 'in'")
    assert "for i: ℕ(n):" in d.hint


@pytest.mark.parametrize("src, text", [
    ("for i: ℕ(n) -> i*0", "(for i: ℕ(n) -> (i * 0))"),
    ("for i -> x[i] + 1", "(for i -> (x[i] + 1))"),
    ("for i → exp(x[i])", "(for i -> exp(x[i]))"),
    ("for i:N(rows) -> for j:N(cols) -> j*0", "(for i: ℕ(rows) -> (for j: ℕ(cols) -> (j * 0)))"),
    ("for i : ℕ(10) -> for j : ℕ(169) -> sin(i) * cos(j)",
     "(for i: ℕ(10) -> (for j: ℕ(169) -> (sin(i) * cos(j))))"),
    ("for i: ℕ(a, b) -> i or j", "(for i: ℕ(a, b) -> (i or j))"),
    ("[for i -> i, 2]", "[(for i -> i), 2]"),
    ("f(for i -> i, y)", "f((for i -> i), y)"),
    ("(for i -> i) + 1", "((for i -> i) + 1)"),
])
def test_comprehensions(src, text):
    assert paren(expr(src)) == text


def test_comprehension_spans():
    c = expr("for i: ℕ(n) -> i")
    assert c.span == Span(1, 5, 1, 21) and c.var_span == Span(1, 9, 1, 10)
    assert c.range.span == Span(1, 12, 1, 16)


# ---------------------------------------------------------------- if / elif / else


def test_if_elif_else():
    s = stmt("if x > y:\n    return x\nelif x == y:\n    return 0\nelse:\n    return y\n")
    assert paren(s.cond) == "(x > y)" and len(s.body) == 1
    (inner,) = s.orelse
    assert isinstance(inner, ast.If) and paren(inner.cond) == "(x == y)"
    assert paren(inner.orelse[0].value) == "y"
    assert s.span == Span(1, 1, 6, 13) and inner.span == Span(3, 1, 6, 13)


def test_if_without_else():
    s = stmt("if a != b:\n    c = 1\n")
    assert s.orelse == () and paren(s.cond) == "(a != b)"


# ---------------------------------------------------------------- expressions


@pytest.mark.parametrize("src, text", [
    ("1 + 2 * 3", "(1 + (2 * 3))"),
    ("a - b - c", "((a - b) - c)"),
    ("a / b // c % d @ e", "((((a / b) // c) % d) @ e)"),
    ("-x**2", "(-(x ** 2))"),
    ("2**3**2", "(2 ** (3 ** 2))"),
    ("2 ** -1", "(2 ** (-1))"),
    ("-a - -b", "((-a) - (-b))"),
    ("+x * y", "((+x) * y)"),
    ("(a + b) * c", "((a + b) * c)"),
    ("a < b + 1", "(a < (b + 1))"),
    ("a <= b and c >= d", "((a <= b) and (c >= d))"),
    ("a or b and not c == d", "(a or (b and (not (c == d))))"),
    ("not not a", "(not (not a))"),
    ("a != b or a > b", "((a != b) or (a > b))"),
    ("x[i][j] * this.kernel[ki, kj]", "(x[i][j] * this.kernel[ki, kj])"),
    ("this.conv2d(a, b).shape", "this.conv2d(a, b).shape"),
    ("obj.method(x)(y)[0]", "obj.method(x)(y)[0]"),
    ("f()", "f()"),
    ("-f(x)[0]", "(-f(x)[0])"),
    ("w @ x + b", "((w @ x) + b)"),
])
def test_precedence(src, text):
    assert paren(expr(src)) == text


@pytest.mark.parametrize("src, text", [
    ("x[a:b]", "x[a:b]"), ("x[:, 0]", "x[, 0]"), ("x[1:]", "x[1]"), ("x[::2]", "x[::2]"),
    ("x[i, j:k]", "x[i, j:k]"),
])
def test_slices(src, text):
    assert paren(expr(src)) == text
    assert any(isinstance(i, ast.Slice) for i in expr(src).indices)


def test_slice_fields():
    (s,) = expr("x[1:]").indices
    assert s.lo.value == 1 and s.hi is None and s.step is None
    (s,) = expr("x[:n:2]").indices
    assert s.lo is None and paren(s.hi) == "n" and s.step.value == 2


@pytest.mark.parametrize("src, value, is_int", [
    ("0", 0, True), ("42", 42, True), ("0.5", 0.5, False), (".5", 0.5, False),
    ("3.", 3.0, False), ("1e-3", 1e-3, False), ("2.5E+4", 2.5e4, False), ("1E3", 1000.0, False),
])
def test_number_literals(src, value, is_int):
    n = expr(src)
    assert isinstance(n, ast.Num) and n.value == value and n.is_int is is_int and n.text == src
    assert type(n.value) is (int if is_int else float)


def test_strings():
    assert expr("'abc'").value == "abc"
    assert expr('"a\\"b\\n"').value == 'a"b\n'
    assert expr("'∈ ℝ'").value == "∈ ℝ"


def test_arrays():
    a = expr("[[1, 0, -1],\n     [1, 0, -1],   # a comment\n\n     [1, 0, -1]\n]")
    assert [len(r.items) for r in a.items] == [3, 3, 3]
    assert a.span == Span(1, 5, 5, 2)
    assert expr("[]").items == ()
    assert len(expr("[1, 2,]").items) == 2


@pytest.mark.parametrize("name", ["μ", "σ", "α", "θ", "x₀", "résumé", "变量"])
def test_unicode_names(name):
    assert stmt(f"{name} = 1\n").target.id == name


def test_call_and_attribute_spans():
    call = expr("this.conv2d(a, b)")
    assert call.span == Span(1, 5, 1, 22)
    assert call.func.span == Span(1, 5, 1, 16) and call.func.attr == "conv2d"
    assert isinstance(call.func.value, ast.This)


# ---------------------------------------------------------------- lexical structure


def test_blank_and_comment_lines_inside_blocks():
    src = ("# leading comment\n\ndef f(x: ℝ): ℝ:   # trailing\n    a = 1\n\n    # inside\n"
           "        # deeper comment\n    b = 2\n\n\n# between\nx = 3")
    f, x = body(src)
    assert [s.target.id for s in f.body] == ["a", "b"] and x.value.value == 3


def test_tabs_count_as_four_columns():
    f = stmt("def f(x: ℝ):\n\ta = 1\n    b = 2\n\tif a:\n\t    c = 3\n        d = 4\n")
    assert len(f.body) == 3 and len(f.body[2].body) == 2


def test_windows_line_endings_and_missing_final_newline():
    src = "def f(x: ℝ): ℝ:\r\n    y = x\r\n\r\n    return y\r\nz = f(1)"
    f, z = body(src)
    assert len(f.body) == 2 and z.span == Span(5, 1, 5, 9)
    assert body("x = 1") and body("x = 1  # no newline") and body("x = 1\n# last")


def test_line_continuation_inside_brackets():
    s = stmt("y = f(a,\n      b,\n  c) + g[\n1]\n")
    assert paren(s.value) == "(f(a, b, c) + g[1])"


def test_empty_and_blank_programs():
    assert body("") == () and body("\n\n  \n\t\n# only a comment") == ()


def test_byte_order_mark_is_ignored():
    assert stmt("\ufeffx = 1\n").target.span == Span(1, 1, 1, 2)


# ---------------------------------------------------------------- syntax errors


@pytest.mark.parametrize("src, line, col, message", [
    ("x = )\n", 1, 5, "unmatched ')'"),
    ("x = \n", 1, 4, "expected an expression"),
    ("y = 1\nx = * 2\n", 2, 5, "unexpected '*'"),
    ("for i: ℕ(n)\n    y = 1\n", 1, 12, "expected ':' after the loop header"),
    ("if x > 1\n    y = 1\n", 1, 9, "expected ':' after the if condition"),
    ("def f(x: ℝ): ℝ\n    return x\n", 1, 15, "expected ':' after the function signature"),
    ("def f(x: ℝ):\nreturn x\n", 2, 1, "expected an indented block after the function signature on line 1"),
    ("x = 1\n    y = 2\n", 2, 5, "unexpected indent"),
    ("x = (1 + 2\ny = 3\n", 1, 5, "'(' was never closed"),
    ("x = [1, 2)\n", 1, 10, "closing ')' does not match '[' on line 1"),
    ("x = 1 $ 2\n", 1, 7, "unexpected character '$'"),
    ("x = 'abc\n", 1, 5, "unterminated string"),
    ("x = 1 2\n", 1, 7, "unexpected number 2"),
    ("def f(x): ℝ:\n    return x\n", 1, 8, "expected ':' and a type after the parameter name"),
    ("return return\n", 1, 8, "unexpected 'return'"),
    ("if x:\n    y\nelse\n    z\n", 3, 5, "expected ':' after 'else'"),
    ("x = 1e999\n", 1, 5, "number is too large"),
    ("x = [1,\n", 1, 5, "'[' was never closed"),
    ("class C:\n", 1, 9, "expected an indented block after the class header on line 1"),
    ("x = \x00\n", 1, 5, "unexpected character U+0000"),
])
def test_syntax_errors(src, line, col, message):
    d = errors(src)[0]
    assert (d.span.line, d.span.col, d.message) == (line, col, message)
    assert d.filename == "t.phk" and d.is_error
    assert d.render(src).startswith(f"t.phk:{line}:{col}: error: {message}")


def test_comparison_hint_for_assignment_in_condition():
    d = one_error("if x = 1:\n    y = 2\n")
    assert d.message == "unexpected '='" and "'=='" in d.hint


def test_hints_name_tokens_for_people():
    hints = [d.hint or "" for src in ("x = 1 2\n", "x = (1, \n", "def f(:\n", "for i j = 3\n",
                                      "class C(x ℝ):\n", "y = [1 2]\n", "x: = 3\n", "if 1 ) 2:\n")
             for d in errors(src)]
    text = " ".join(hints)
    assert "expected" in text
    for internal in ("__ANON", "RPAR", "LPAR", "COLON", "_NL", "NAME", "_INDENT", "$END", "LSQB"):
        assert internal not in text, (internal, text)


def test_expected_tokens_hint():
    assert one_error("x = 1 2\n").hint == "expected '(', '.', '[', the end of the line or an operator"
    assert one_error("f(1 2)\n").hint == "expected '(', ')', ',', '.', '[' or an operator"


def test_several_errors_are_reported_in_one_run():
    src = "x = = 1\ny = 2\nz = * 3\ndef f x:\n    return 1\nw = 3 +\nok = 1\n"
    ds = errors(src)
    assert [(d.span.line, d.message) for d in ds] == [
        (1, "unexpected '='"), (3, "unexpected '*'"), (4, "unexpected name 'x'"),
        (6, "expected an expression")]


def test_recovery_after_a_missing_block_parses_what_follows():
    ds = errors("def f():\nx = 1 2\n")
    assert [(d.span.line, d.message) for d in ds] == [
        (2, "expected an indented block after the function signature on line 1")]
    ds = errors("def f():\nreturn\ny = (\n")
    assert [d.span.line for d in ds] == [2, 3]


def test_deep_nesting_is_a_diagnostic():
    assert "nested" in errors("(" * 2000)[0].message
    assert "nested" in errors("x = " + "-" * 5000 + "1\n")[0].message
    assert paren(expr("(" * 150 + "1" + ")" * 150)) == "1"


@pytest.mark.parametrize("garbage", ["\x00\x01\x02", "\x7f" * 1000, "})]>", "@@@", "é é"])
def test_garbage_is_a_diagnostic(garbage):
    assert errors(garbage)


def test_large_input_is_linear_enough(seed_source):
    program = parse(seed_source * 8)        # redefinitions are the checker's business
    assert len(program.body) == 8 * 33


# ---------------------------------------------------------------- AST text


def test_format_ast_is_exact():
    src = "def relu(x: ℝ): ℝ:\n    if x > 0:\n        return x\n    return 0.0\nk: ℝ[3,n] = [1, -2]\n"
    assert format_ast(parse(src, "r.phk")) == """\
Program r.phk
  FuncDef relu -> ℝ @1:1
    params:
      Param x: ℝ @1:10
    body:
      If @2:5
        cond: BinOp > @2:8
          left: Name x @2:8
          right: Num int 0 @2:12
        body:
          Return @3:9
            value: Name x @3:16
        orelse: ()
      Return @4:5
        value: Num real 0.0 @4:12
  Decl k: ℝ[3,n] @5:1
    value: ArrayLit [2] @5:13
      items:
        Num int 1 @5:14
        UnaryOp - @5:17
          operand: Num int 2 @5:18
"""


def test_format_ast_of_the_seed(seed_source):
    text = format_ast(parse(seed_source, "cnn_seed.phk"))
    assert text == format_ast(parse(seed_source, "cnn_seed.phk"))
    assert "  ClassDef ConvNets @62:1\n" in text
    assert "    FuncDef λ -> ℝ[m] @111:5\n" in text
    assert "  Decl kernel: ℝ[3,3] @120:1\n" in text
    assert "      body: Comprehension j @126:34\n" in text
    assert all(line.rstrip() == line for line in text.splitlines())


def test_format_ast_covers_every_node_kind():
    src = ("class C(a: ℕ):\n    def λ(x: ℝ) -> ℝ:\n        return this.a\n"
           "s ~ 𝒩(0, 1, 2)\nfor i j: ℕ(1, 3):\n    v[i:j] -= 'q'\nc = for k -> k\n")
    text = format_ast(parse(src))
    for piece in ("ClassDef C", "Param a: ℕ", "FuncDef λ -> ℝ", "Attribute .a", "This",
                  "Sample normal", "For i j", "Range", "lo: Num int 1", "AugAssign -=",
                  "Slice", "Str 'q'", "Comprehension k"):
        assert piece in text, piece


# ---------------------------------------------------------------- phc.api


def test_parse_source_accepts_text_and_bytes(seed_source):
    assert len(parse_source(seed_source).body) == 33
    assert len(parse_source(seed_source.encode("utf-8"), "s.phk").body) == 33


def test_invalid_utf8_is_a_diagnostic():
    data = "x = 1\ny = 'é'\n".encode("utf-8").replace("é".encode(), b"\xff")
    (d,) = check_source(data, "bad.phk")
    assert d.message == "invalid UTF-8 byte 0xff at byte offset 11"
    assert (d.span.line, d.span.col, d.filename) == (2, 6, "bad.phk")
    with pytest.raises(PhcError):
        parse_source(data)


def test_check_source_reports_syntax_errors_without_raising():
    ds = check_source("x = = 1\n", "e.phk")
    assert [(d.span.line, d.message) for d in ds] == [(1, "unexpected '='")]


def test_check_source_on_the_seed_has_no_errors(seed_source):
    assert not [d for d in check_source(seed_source) if d.is_error]


def test_check_source_without_a_checker(monkeypatch):
    monkeypatch.setitem(sys.modules, "phc.typecheck", None)     # import now fails
    assert check_source("x = 1\n") == []


def test_check_source_turns_a_crash_into_an_internal_error(monkeypatch):
    import phc.typecheck

    def boom(program):
        raise ZeroDivisionError("oops")
    monkeypatch.setattr(phc.typecheck, "check", boom)
    (d,) = check_source("x = 1\n", "c.phk")
    assert d.message == "internal error: ZeroDivisionError: oops" and "report" in d.hint
    assert d.span.line == 1


def test_an_unindent_between_two_levels_ends_the_inner_block_with_a_warning():
    """Upstream reads a line indented between two levels as the outer one (hnn.phyk's ` def
    loss` at 5 columns after a method body at 8): phc does too, and says so."""
    program = parse_source("x = 1\nif x > 0:\n        y = 1\n    z = 2\nz\n")
    assert [type(s).__name__ for s in program.body] == ["Assign", "If", "Assign", "ExprStmt"]
    (w,) = program.warnings
    assert not w.is_error and (w.span.line, w.span.col) == (4, 5)
    assert w.message.startswith("unindent does not match any outer indentation level: read as 0 columns")
    assert "do not indent this line" in w.hint
    nested = parse_source("class C:\n    w: ℝ\n    def f(x: ℝ): ℝ:\n        return x\n     def g(x: ℝ): ℝ:\n"
                   "        return x\n")
    assert [m.name for m in nested.body[0].methods] == ["f", "g"]
    assert "read as 4 columns, which ends the block indented by 8" in nested.warnings[0].message
