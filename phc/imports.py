"""`from other import f, g`: definitions of another Physika file, taken into the program.

The file is `other.phk` or `other.phyk` (`pkg.other`: `pkg/other.phk`) in the program's folder
or, failing that, in a folder above it (upstream's examples import `tutorials.x` from the
folder beside theirs). It is parsed and checked on its own first, so its errors are reported
with its own name and lines; then each imported name brings its definition — a function, a
class, or a top-level declaration — and, transitively, the top-level definitions that one
uses, in the order the other file has them. Its top-level statements that print are not run.
"""
from __future__ import annotations

from pathlib import Path

from phc import ast
from phc.diagnostics import PhcError, error

SUFFIXES = (".phk", ".phyk")
SEARCH_UP = 3               # folders above the program's that are searched too


def resolve_imports(program: ast.Program, busy: frozenset[str] = frozenset()) -> ast.Program:
    """The program with each top-level `Import` replaced by the definitions it names."""
    if not any(isinstance(s, ast.Import) for s in program.body):
        _no_nested_imports(program)
        return program
    _no_nested_imports(program)
    body: list = []
    diags = []
    for s in program.body:
        if not isinstance(s, ast.Import):
            body.append(s)
            continue
        try:
            body.extend(_imported(s, program.filename, busy))
        except PhcError as e:
            diags.extend(e.diagnostics)
    if diags:
        raise PhcError(diags)
    return ast.Program(tuple(body), program.filename, program.source, program.warnings)


def _no_nested_imports(program: ast.Program) -> None:
    for s in program.body:
        for node in ast.walk(s):
            if isinstance(node, ast.Import) and node is not s:
                raise PhcError([error("`from … import …` belongs at the top level", node.span,
                                      "move it to the start of the file", program.filename)])


def _imported(s: ast.Import, filename: str, busy: frozenset[str]) -> list:
    path = _find(s.module, filename)
    if path is None:
        names = " or ".join(s.module.replace(".", "/") + x for x in SUFFIXES)
        raise PhcError([error(f"cannot find the file for `{s.module}`", s.span,
                              f"put {names} beside {Path(filename).name}", filename)])
    key = str(path.resolve())
    if key in busy:
        raise PhcError([error(f"`{s.module}` imports, through other files, this program", s.span,
                              "imports must not form a cycle", filename)])
    other = _load(path, busy | {key})
    defs = _definitions(other)
    for name, span in zip(s.names, s.name_spans or (s.span,) * len(s.names)):
        if name not in defs:
            raise PhcError([error(f"{path.name} defines no `{name}`", span,
                                  _suggest(name, defs), filename)])
    wanted = _closure(s.names, defs)
    return [stmt for stmt in other.body if id(stmt) in wanted]


def _find(module: str, filename: str) -> Path | None:
    folder = Path(filename).resolve().parent if filename not in ("<string>", "") else Path.cwd()
    rel = Path(*module.split("."))
    for base in [folder, *list(folder.parents)[:SEARCH_UP]]:
        for suffix in SUFFIXES:
            candidate = base / rel.with_suffix(suffix) if rel.suffix == "" else base / (str(rel) + suffix)
            if candidate.is_file():
                return candidate
    return None


_LOADED: dict[str, ast.Program] = {}


def _load(path: Path, busy: frozenset[str]) -> ast.Program:
    """Parse and check the other file once per process; its errors carry its own name."""
    key = str(path.resolve())
    if key in _LOADED:
        return _LOADED[key]
    from phc.parse import parse
    from phc.typecheck import check
    source = path.read_text(encoding="utf-8")
    program = resolve_imports(parse(source, str(path), resolve=False), busy)
    errors = [d for d in check(program).diagnostics if d.is_error]
    if errors:
        raise PhcError(errors)
    _LOADED[key] = program
    return program


def _definitions(program: ast.Program) -> dict[str, object]:
    """Top-level name → the statement that defines it: the last def or class of the name (a
    later def replaces an earlier), the first declaration of a variable (as upstream imports)."""
    defs: dict[str, object] = {}
    for s in program.body:
        if isinstance(s, (ast.FuncDef, ast.ClassDef)):
            defs[s.name] = s
        elif isinstance(s, ast.Decl):
            defs.setdefault(s.name, s)
    return defs


def _closure(names, defs: dict) -> set[int]:
    """The ids of the definitions the names need, following every name they mention."""
    wanted: set[int] = set()
    todo = list(names)
    while todo:
        stmt = defs.get(todo.pop())
        if stmt is None or id(stmt) in wanted:
            continue
        wanted.add(id(stmt))
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name):
                todo.append(node.id)
            elif isinstance(node, ast.TypeExpr) and node.class_name:
                todo.append(node.class_name)
    return wanted


def _suggest(name: str, defs: dict) -> str | None:
    import difflib
    close = difflib.get_close_matches(name, sorted(defs), n=1)
    return f"did you mean '{close[0]}'?" if close else f"it defines {', '.join(sorted(defs)) or 'nothing'}"


__all__ = ["resolve_imports"]
