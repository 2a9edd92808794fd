"""The checker's result as stable text (what `phc ir FILE --stage typed` shows).

    def relu2d(x: ℝ[H,W]) -> ℝ[H,W]
      rows: ℝ
      results: ℝ[rows,cols]
      i: ℕ

    class ConvNets(kernel: ℝ[K,K], b1: ℝ, w: ℝ[m,n], b2: ℝ[m])
      def λ(input: ℝ[H,W]) -> ℝ[m]
        conv1: ℝ[m,n]

    program
      train_X: ℝ[N_train,28,28]

Definitions in source order, each local once (in the order it is first bound) with its final
type; then the top-level variables. A return type the source leaves out is marked `(inferred)`.
"""
from __future__ import annotations

from phc import ast
from phc.typecheck import ClassInfo, FuncInfo, TypedProgram

INDENT = "  "


def format_typed(tp: TypedProgram) -> str:
    blocks = []
    for s in tp.program.body:
        if isinstance(s, ast.FuncDef) and _owns(tp.functions.get(s.name), s):
            blocks.append(_function(tp.functions[s.name], 0))
        elif isinstance(s, ast.ClassDef) and _owns(tp.classes.get(s.name), s):
            blocks.append(_class(tp.classes[s.name]))
    blocks.append("\n".join(["program"] + _variables(tp.globals, 1)))
    return "\n\n".join(blocks) + "\n"


def _owns(info, node) -> bool:
    """Only the definition the checker kept (a duplicate name is an error, printed once)."""
    return info is not None and info.node is node


def _function(info: FuncInfo, depth: int) -> str:
    params = ", ".join(f"{n}: {t}" for n, t in info.params.items())
    inferred = " (inferred)" if info.node.ret is None else ""
    head = f"{INDENT * depth}def {info.name}({params}) -> {info.ret}{inferred}"
    return "\n".join([head] + _variables(info.locals, depth + 1))


def _class(info: ClassInfo) -> str:
    fields = ", ".join(f"{n}: {t}" for n, t in info.fields.items())
    lines = [f"class {info.name}({fields})"]
    lines += [_function(m, 1) for m in info.methods.values()]
    return "\n".join(lines)


def _variables(table: dict, depth: int) -> list[str]:
    return [f"{INDENT * depth}{name}: {t}" for name, t in table.items()]
