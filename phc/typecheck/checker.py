"""The checker: collects every definition, checks bodies callees first, and dispatches each
statement and expression to its rule (the mixins of the other modules)."""
from __future__ import annotations

from phc import ast
from phc.ast import Span
from phc.builtins import as_extent
from phc.diagnostics import Diagnostic, error, warning
from phc.types import SYMBOLIC_TYPES, ClassT, Dim, NAT, NONE, ScalarT, SymT, TensorT, TupleT, Type, UNKNOWN
from phc.typecheck.calls import CallRules
from phc.typecheck.classes import ClassRules
from phc.typecheck.expressions import ExpressionRules
from phc.typecheck.shapes import ShapeRules, _name_span, _written_dim
from phc.typecheck.state import ClassInfo, Frame, FuncInfo, TypedProgram, Var
from phc.typecheck.statements import StatementRules


class Checker(ShapeRules, ExpressionRules, StatementRules, CallRules, ClassRules):
    def __init__(self, program: ast.Program):
        self.program = program
        self.expr_types: dict[ast.Expr, Type] = {}
        self.functions: dict[str, FuncInfo] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.globals: dict[str, Type] = {}
        self.diagnostics: list[Diagnostic] = list(program.warnings)   # the parser's
        self._seen: set[tuple] = set()
        self.top_names: dict[str, Type] = {}     # top-level variables, as functions see them
        self.inst_of: dict[ast.Expr, dict] = {}  # class-typed expression -> symbol bindings
        self._body_ret: dict[int, Type | None] = {}
        # calls of a function of numbers on tensors: call -> (function, tensor positions, rank)
        self.elementwise_calls: dict[ast.Call, tuple[str, tuple[int, ...], int]] = {}
        self._busy: set[int] = set()
        self._done: set[int] = set()
        self.replaced: list[FuncInfo] = []       # functions a later `def` of the name replaced
        self.call_sizes: dict[ast.Call, Dim] = {}   # a call returning a count -> its formula
        self.call_shapes: dict[ast.Call, str] = {}  # a call's shape, explained (for hints)

    def run(self) -> None:
        self.collect()
        self.top_names = _top_level_names(self.program.body, self)
        for s in self.program.body:
            self.guarded(self.check_definition, s)
        for info in self.replaced:              # still typed: the emitter writes them out
            self.guarded(self.ensure_checked, info)
        top = Frame(None, None, self.globals)
        self.size_tracking(top, self.program.body)
        for s in self.program.body:
            if not isinstance(s, (ast.FuncDef, ast.ClassDef)):
                self.guarded(self.stmt, s, top)

    def guarded(self, fn, *args) -> None:
        """A bug in the checker must not hide the rest of the file's diagnostics."""
        try:
            fn(*args)
        except RecursionError:
            raise
        except Exception as exc:  # noqa: BLE001 — the contract is: never raise
            self.report(error, f"internal error in the type checker ({type(exc).__name__}: {exc})",
                        ast.span_of(args[0]), "please report this program to the phc developers")

    def result(self) -> TypedProgram:
        diags = sorted(self.diagnostics, key=lambda d: (d.span.line, d.span.col))
        return TypedProgram(self.program, self.expr_types, self.functions, self.classes,
                            self.globals, diags)

    def report(self, make, message: str, span: Span, hint: str | None = None) -> None:
        key = (make, message, span)
        if key not in self._seen:          # loop bodies are checked more than once
            self._seen.add(key)
            self.diagnostics.append(make(message, span, hint, self.program.filename))

    def collect(self) -> None:
        for s in self.program.body:
            if isinstance(s, ast.ClassDef) and self.fresh_name(s.name, s):
                self.classes[s.name] = ClassInfo(s.name, s, {}, {})
        for s in self.program.body:
            if isinstance(s, ast.FuncDef):
                self.collect_function(s)
            elif isinstance(s, ast.ClassDef) and self.classes.get(s.name, None) is not None \
                    and self.classes[s.name].node is s:
                self.collect_class(self.classes[s.name])

    def fresh_name(self, name: str, node) -> bool:
        taken = name in self.functions or name in self.classes
        if taken:
            self.report(error, f"`{name}` is defined twice", _name_span(node),
                        "rename one of the definitions")
        return not taken

    def collect_function(self, s: ast.FuncDef) -> None:
        if s.is_lambda:
            self.report(error, "`λ` can only be defined inside a class", _name_span(s),
                        "`def λ(x: …) -> …:` makes a class's instances callable")
            return
        earlier = self.functions.get(s.name)
        if earlier is not None:         # upstream allows it: the later definition wins
            self.report(warning, f"`{s.name}` is defined again: this definition replaces the "
                        f"one on line {earlier.node.span.line}", _name_span(s),
                        "every call, also those before this line, uses this definition")
            self.replaced.append(earlier)
            self.functions[s.name] = self.func_info(s, None)
        elif self.fresh_name(s.name, s):
            self.functions[s.name] = self.func_info(s, None)

    def func_info(self, s: ast.FuncDef, owner: str | None) -> FuncInfo:
        params: dict[str, Type] = {}
        for p in s.params:
            if p.name in params:
                self.report(error, f"parameter `{p.name}` appears twice", p.span)
            params[p.name] = self.resolve(p.type)
        ret = self.resolve(s.ret) if s.ret is not None else NONE
        return FuncInfo(s.name, s, params, ret, {}, owner)

    def resolve(self, texpr: ast.TypeExpr, f: Frame | None = None) -> Type:
        """A written type as a semantic type; a dimension is a number, a name, or None. In a
        body (`f`), a dimension may be an expression such as `len(x[0])`."""
        if isinstance(texpr, ast.TupleTypeExpr):
            return TupleT(tuple(self.resolve(t, f) for t in texpr.items))
        if texpr.scalar is not None and texpr.dims:
            dims = tuple(as_extent(self.written_dim(d, f)) for d in texpr.dims)
            return TensorT(texpr.scalar, dims)
        if texpr.scalar is None:
            if texpr.class_name in self.classes:
                return ClassT(texpr.class_name)
            if texpr.class_name in SYMBOLIC_TYPES:
                return SymT(texpr.class_name)
            self.report(error, f"unknown type `{texpr.class_name}`", texpr.span,
                        self.suggest(texpr.class_name, self.classes))
            return UNKNOWN
        return ScalarT(texpr.scalar)

    def check_definition(self, s) -> None:
        if isinstance(s, ast.FuncDef) and s.name in self.functions \
                and self.functions[s.name].node is s:
            self.ensure_checked(self.functions[s.name])
        elif isinstance(s, ast.ClassDef) and s.name in self.classes \
                and self.classes[s.name].node is s:
            self.check_class(self.classes[s.name])

    def ensure_checked(self, info: FuncInfo) -> None:
        """Check a body once, callees before callers (a call refines its type from the body)."""
        key = id(info)
        if key in self._done or key in self._busy:
            return
        self._busy.add(key)
        try:
            self.check_body(info)
        finally:
            self._busy.discard(key)
            self._done.add(key)

    def check_body(self, info: FuncInfo) -> None:
        cls = self.classes.get(info.owner) if info.owner else None
        frame = Frame(info, cls, info.locals)
        self.size_tracking(frame, info.node.body)
        for name, t in info.params.items():
            frame.vars[name] = Var(t, True)
            if isinstance(t, ClassT):
                frame.inst[name] = {}
        self.block(info.node.body, frame)
        body_ret = self.joined_returns(frame.returns)
        self._body_ret[id(info)] = body_ret
        if frame.ret_sizes and all(r == frame.ret_sizes[0] for r in frame.ret_sizes):
            info.ret_size = frame.ret_sizes[0]
        if info.node.ret is None and body_ret is not None:
            info.ret = body_ret

    _STMT = {
        ast.Decl: StatementRules.s_decl,
        ast.Assign: StatementRules.s_assign,
        ast.AugAssign: StatementRules.s_augassign,
        ast.ExprStmt: StatementRules.s_exprstmt,
        ast.If: StatementRules.s_if,
        ast.For: StatementRules.s_for,
        ast.Return: StatementRules.s_return,
        ast.FuncDef: StatementRules.s_nested_def,
        ast.ClassDef: StatementRules.s_nested_def,
        ast.Unpack: StatementRules.s_unpack,
        ast.Import: StatementRules.s_import,
    }

    _EXPR = {
        ast.Num: ExpressionRules.e_num,
        ast.Str: ExpressionRules.e_str,
        ast.Name: ExpressionRules.e_name,
        ast.This: ClassRules.e_this,
        ast.ArrayLit: ExpressionRules.e_array,
        ast.UnaryOp: ExpressionRules.e_unary,
        ast.BinOp: ExpressionRules.e_binop,
        ast.Call: CallRules.e_call,
        ast.Index: ExpressionRules.e_index,
        ast.Attribute: ClassRules.e_attribute,
        ast.Comprehension: ExpressionRules.e_comprehension,
        ast.Sample: ExpressionRules.e_sample,
        ast.TupleExpr: ExpressionRules.e_tuple,
    }


def check(program: ast.Program) -> TypedProgram:
    """Type the whole program; never raises (an internal failure becomes a diagnostic). Calls
    of a function of numbers on tensors are rewritten into comprehensions and the rewritten
    program is checked again (`phc.typecheck.elementwise`)."""
    checker = _check_once(program)
    if checker.elementwise_calls and not any(d.is_error for d in checker.diagnostics):
        from phc.typecheck.elementwise import map_elementwise
        checker = _check_once(map_elementwise(program, checker.elementwise_calls))
    return checker.result()


def _check_once(program: ast.Program) -> Checker:
    checker = Checker(program)
    try:
        checker.run()
    except RecursionError:
        checker.report(error, "the program is nested too deeply to check", ast.NOSPAN)
    except Exception as exc:  # noqa: BLE001 — the contract is: never raise
        checker.report(error, f"internal error in the type checker ({type(exc).__name__}: {exc})",
                       ast.NOSPAN, "please report this program to the phc developers")
    return checker

def _top_level_names(body, checker: Checker) -> dict[str, Type]:
    """The top-level variables, as a function body sees them: declared types where written,
    else unknown (a function is checked before the top-level code that assigns them)."""
    names: dict[str, Type] = {}
    for s in body:
        if isinstance(s, ast.Decl):
            names[s.name] = _quiet_resolve(s.type, checker)
        elif isinstance(s, (ast.Assign, ast.AugAssign)) and isinstance(s.target, ast.Name):
            names.setdefault(s.target.id, UNKNOWN)
        elif isinstance(s, ast.For):
            for v in s.vars:
                names.setdefault(v, NAT)
            names.update({k: v for k, v in _top_level_names(s.body, checker).items()
                          if k not in names})
        elif isinstance(s, ast.If):
            for part in (s.body, s.orelse):
                names.update({k: v for k, v in _top_level_names(part, checker).items()
                              if k not in names})
    return names

def _quiet_resolve(texpr: ast.TypeExpr, checker: Checker) -> Type:
    if texpr.scalar is None:
        return ClassT(texpr.class_name) if texpr.class_name in checker.classes else UNKNOWN
    if not texpr.dims:
        return ScalarT(texpr.scalar)
    return TensorT(texpr.scalar, tuple(_written_dim(d) for d in texpr.dims))
