"""The AST as stable, indented text, one node per line (what `phc ir FILE --stage ast` shows).

    FuncDef relu -> ℝ @41:1
      params:
        Param x: ℝ @41:10
      body:
        If @42:5
          cond: BinOp > @42:8
            left: Name x @42:8
            right: Num int 0 @42:10

A field holding one node prints on the node's own line (`cond: BinOp > …`), a field holding a
tuple prints as a heading with its nodes below; absent fields are left out. Types print inline
the way Physika writes them (`ℝ[3,3]`), positions as `@line:col` of the node's first character.
"""
from __future__ import annotations

from phc import ast

INDENT = "  "
# positions print as `@line:col`, types inline in the header: neither is a child line
SKIPPED_FIELDS = {"span", "name_span", "var_span", "var_spans", "filename", "source", "type", "ret",
                  "name_spans"}


def format_ast(program: ast.Program) -> str:
    lines = [f"Program {program.filename}"]
    for stmt in program.body:
        _node(stmt, 1, "", lines)
    return "\n".join(lines) + "\n"


def _node(node, depth: int, label: str, lines: list[str]) -> None:
    lines.append(f"{INDENT * depth}{label}{header(node)} @{node.span.line}:{node.span.col}")
    for field, value in _child_fields(node):
        if isinstance(value, tuple):
            lines.append(f"{INDENT * (depth + 1)}{field}:" + ("" if value else " ()"))
            for item in value:
                _node(item, depth + 2, "", lines)
        else:
            _node(value, depth + 1, f"{field}: ", lines)


def _child_fields(node):
    for field in node.__dataclass_fields__:
        if field in SKIPPED_FIELDS:
            continue
        value = getattr(node, field)
        if value is None or isinstance(value, (str, int, float, complex, ast.Span)) \
                or _is_data(value):
            continue
        yield field, value


def _is_data(value) -> bool:
    """A tuple of plain values (`For.vars`), printed in the header, not as children."""
    return isinstance(value, tuple) and any(isinstance(v, str) for v in value)


def header(node) -> str:
    """The node's kind and its data (names, operators, types): everything but its children."""
    describe = _HEADERS.get(type(node))
    return describe(node) if describe else type(node).__name__


def type_text(t: ast.TypeExpr | ast.TupleTypeExpr | None) -> str:
    if t is None:
        return "?"
    if isinstance(t, ast.TupleTypeExpr):
        return ", ".join(type_text(i) for i in t.items)
    if t.scalar is None:
        return t.class_name or "?"
    if not t.dims:
        return t.scalar.value
    return f"{t.scalar.value}[{','.join(expr_text(d) for d in t.dims)}]"


PRECEDENCE = {"or": 1, "and": 2, "<": 4, ">": 4, "<=": 4, ">=": 4, "==": 4, "!=": 4,
              "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "@": 6, "**": 8}


def expr_text(e) -> str:
    """Compact source text of a (dimension) expression: `n`, `3`, `H-K+1`, `(a+b)*2`."""
    if isinstance(e, ast.Num):
        return e.text
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.This):
        return "this"
    if isinstance(e, ast.BinOp):
        prec = PRECEDENCE.get(e.op, 0)
        return f"{_operand(e.left, prec, 0)}{e.op}{_operand(e.right, prec, 1)}"
    if isinstance(e, ast.UnaryOp):
        return f"{e.op}{_operand(e.operand, 7, 0)}"
    if isinstance(e, ast.Call):
        return f"{expr_text(e.func)}({', '.join(expr_text(a) for a in e.args)})"
    if isinstance(e, ast.Attribute):
        return f"{expr_text(e.value)}.{e.attr}"
    if isinstance(e, ast.Index):
        return f"{expr_text(e.value)}[{', '.join(expr_text(i) for i in e.indices)}]"
    return type(e).__name__


def _operand(e, parent: int, right: int) -> str:
    """Parenthesise a child that binds looser than its parent (or as loosely, on the right)."""
    text = expr_text(e)
    if isinstance(e, ast.BinOp) and PRECEDENCE.get(e.op, 0) < parent + right:
        return f"({text})"
    if isinstance(e, ast.UnaryOp) and parent >= 7:
        return f"({text})"
    return text


def _num(n: ast.Num) -> str:
    kind = "imaginary" if n.is_imaginary else "int" if n.is_int else "real"
    return f"Num {kind} {n.text}"


def _for(f: ast.For) -> str:
    return f"For {' '.join(f.vars)}"


def _func(f: ast.FuncDef) -> str:
    return f"FuncDef {f.name}" + (f" -> {type_text(f.ret)}" if f.ret is not None else "")


_HEADERS = {
    ast.Num: _num,
    ast.Str: lambda n: f"Str {n.value!r}",
    ast.Name: lambda n: f"Name {n.id}",
    ast.BinOp: lambda n: f"BinOp {n.op}",
    ast.UnaryOp: lambda n: f"UnaryOp {n.op}",
    ast.Attribute: lambda n: f"Attribute .{n.attr}",
    ast.ArrayLit: lambda n: f"ArrayLit [{len(n.items)}]",
    ast.Comprehension: lambda n: f"Comprehension {n.var}",
    ast.Sample: lambda n: f"Sample {n.dist}",
    ast.Decl: lambda n: f"Decl {n.name}: {type_text(n.type)}",
    ast.AugAssign: lambda n: f"AugAssign {n.op}=",
    ast.For: _for,
    ast.Param: lambda n: f"Param {n.name}: {type_text(n.type)}",
    ast.FuncDef: _func,
    ast.ClassDef: lambda n: f"ClassDef {n.name}",
    ast.TypeExpr: lambda n: f"Type {type_text(n)}",
    ast.TupleExpr: lambda n: f"Tuple [{len(n.items)}]",
    ast.Target: lambda n: f"Target {n.name}: {type_text(n.type)}",
    ast.Unpack: lambda n: "Unpack",
    ast.Import: lambda n: f"Import {', '.join(n.names)} from {n.module}",
}
