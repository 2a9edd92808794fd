"""Classes: fields, methods, `this`, `learnable_params`."""
from __future__ import annotations

from phc import ast
from phc.ast import Scalar
from phc.builtins import with_kind
from phc.diagnostics import error
from phc.types import ClassT, TupleT, Type, UNKNOWN, UnknownT
from phc.typecheck.shapes import _describe, _is_num, _name_span, _subst, element_kind_of
from phc.typecheck.state import ClassInfo, Frame, LEARNABLE, SELF


class ClassRules:
    """Rules of the checker (a mixin of `Checker`): classes."""

    def collect_class(self, info: ClassInfo) -> None:
        members = [(p.name, p.type, p.span) for p in info.node.params]
        members += [(d.name, d.type, _name_span(d)) for d in info.node.fields]
        for name, texpr, span in members:
            if name in info.fields:
                self.report(error, f"class `{info.name}` has two fields named `{name}`", span)
            info.fields[name] = self.resolve(texpr)
        for m in info.node.methods:
            if m.name in info.methods:
                self.report(error, f"class `{info.name}` defines `{m.name}` twice",
                            _name_span(m))
            info.methods[m.name] = self.func_info(m, info.name)

    def check_class(self, info: ClassInfo) -> None:
        frame = Frame(None, None, {})
        for d in info.node.fields:
            if d.value is not None:
                t = self.expr(d.value, frame, element_kind_of(info.fields[d.name]))
                self.conform(info.fields[d.name], t, d.value.span, f"field `{d.name}` is declared",
                             "its value has type")
        for m in info.methods.values():
            self.ensure_checked(m)

    def e_this(self, e: ast.This, f: Frame, hint) -> Type:
        if f.cls is None:
            self.report(error, "`this` outside a class", e.span,
                        "`this` names the instance inside a class's methods")
            return UNKNOWN
        self.inst_of[e] = SELF
        return ClassT(f.cls.name)

    def e_attribute(self, e: ast.Attribute, f: Frame, hint) -> Type:
        t = self.expr(e.value, f)
        info = self.class_of(t, e)
        if info is None:
            return UNKNOWN
        inst = self.inst_of.get(e.value, {})
        if e.attr in info.fields:
            ft = _subst(info.fields[e.attr], inst.get)
            if isinstance(ft, ClassT):
                self.inst_of[e] = {}
            return ft
        if e.attr in info.methods:
            return self.func_type(info.methods[e.attr])
        if e.attr in LEARNABLE:
            return self.learnable(info, inst)
        self.report(error, f"class `{info.name}` has no field `{e.attr}`", e.span,
                    self.suggest(e.attr, info.fields))
        return UNKNOWN

    def learnable(self, info: ClassInfo, inst) -> Type:
        """`obj.learnable_params`: the instance's learnable fields (`ClassDef.learnable_names`),
        in order, as one list (what `grad(loss, obj.learnable_params)` differentiates)."""
        fields = [_subst(info.fields[n], inst.get) for n in info.node.learnable_names()]
        return TupleT(tuple(with_kind(t, Scalar.REAL) if t.kind is not Scalar.COMPLEX else t
                            for t in fields if _is_num(t)))

    def class_of(self, t: Type, e: ast.Attribute) -> ClassInfo | None:
        if isinstance(t, ClassT) and t.name in self.classes:
            return self.classes[t.name]
        if not isinstance(t, UnknownT):
            self.report(error, f"`.{e.attr}` needs a class instance, but "
                        f"{_describe(e.value)} has type {t}", e.span)
        return None
