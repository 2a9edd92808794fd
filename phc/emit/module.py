"""The whole generated module: header, functions, classes, `main()`; host statements as Python.

Every emitted statement line ends with `# @LINE:COL-END_LINE:END_COL`, the place in the `.phk`
source of the expression it computes (`phc.emit.places`), from which `span_table` rebuilds the
map that turns a runtime error back into a Physika diagnostic.
"""
from __future__ import annotations

import hashlib
import keyword
import re
from pathlib import Path

import jinja2

from phc.resources import templates_dir

from phc.ir import nodes as n
from phc.ir.analysis import root_name, walk_stmts
from phc.emit.places import place_text
from phc.emit.adjoint_code import StepCode
from phc.emit.torch_backend import Code, Host, Nest, EmitError

HEADER_MARK = "# phc-generated:"
# Module-level names of generated code that are not `_phc_…`: its imports (the Triton prelude's
# too), `main`, and the builtins it calls.
_RESERVED = {"torch", "rt", "range", "int", "float", "len", "print", "math", "main", "self",
             "bool", "tuple", "list", "dict", "triton", "tl", "os", "contextlib",
             "once_differentiable", "globals", "max", "min", "any", "all", "isinstance", "staticmethod",
             "ValueError", "IndexError", "TypeError", "super", "object", "property", "zip", "enumerate",
             "sum", "abs", "round", "type", "str", "repr", "slice"}


class Names:
    """Physika names → Python identifiers. Keywords, the reserved names above, names starting with
    `_` (phc's own: temporaries `_t1`, `_phc_…` kernels) and, to keep the map one-to-one, names
    ending with `_` get a trailing `_`; no generated name ends with `_`, so none can collide."""

    def __init__(self, functions: set[str], classes: set[str]):
        self.functions, self.classes = functions, classes
        self.ints: set[str] = set()
        self.stores = True      # whether any tensor is written in place (then views must copy)
        self.kernel_specs: dict = {}   # Triton wrapper name -> spec, of every idiom call emitted
        self.fixed: dict[str, str] = {}  # names bound for a moment (a tape's `%k` values)
        self.adjoint = None             # phc.ir.adjoint.Adjoint: "adjoint" mode has no autograd
        self.in_place: dict = {}        # phc.ir.inplace: id(update) -> (object, field)
        self.copies: dict = {}          # id(construction) -> argument positions to copy
        self.inline: dict = {}          # id(obj = C(obj.f - e, …)) -> positions updated in place
        self.reused: set = set()        # id(obj = C(…)) that keeps the instance (all fields in place)
        self.class_fields: dict = {}

    def py(self, name: str) -> str:
        if name in self.fixed:
            return self.fixed[name]
        if name == "this":
            return "this"
        if not name.isidentifier():
            # only phc writes such names (`tanh⟨map2 0⟩`, phc.typecheck.elementwise): `_phc_u_…`,
            # which starts with `_` and does not end with one, as no mapped user name does
            return "_phc_u_" + re.sub(r"\W+", "_", name).strip("_")
        if keyword.iskeyword(name) or name in _RESERVED or name.startswith("_") or name.endswith("_"):
            return name + "_"
        return name

    def func(self, name: str) -> str:
        if name in self.functions or name in self.classes:
            return self.py(name)
        return f"rt.{name}"


def emit_module(module: n.Module, source: str, backend: str = "torch", plan=None, adjoint=None) -> str:
    names = Names({f.name for f in module.functions}, {c.name for c in module.classes})
    names.backend = backend
    names.adjoint = adjoint if adjoint is not None and adjoint.mode == "adjoint" else None
    if names.adjoint is not None:
        from phc.ir.inplace import plan_in_place
        updates = plan_in_place(module)
        names.in_place, names.copies, names.inline = updates.updates, updates.copies, updates.inline
        names.reused = updates.reused
        names.class_fields = {c.name: [p.name for p in c.fields] for c in module.classes}
    names.stores = any(isinstance(s, n.Store) for f in _all_functions(module) for s in walk_stmts(f.body))
    functions = [FunctionEmitter(names).function(f) for f in module.functions]
    classes = [ClassEmitter(names).cls(c) for c in module.classes]
    main = FunctionEmitter(names).main(module.main)
    kernels = _kernel_source(plan, names) if backend in ("triton", "auto") else ""
    digest = hashlib.sha256(source.encode("utf-8", "replace")).hexdigest()[:16]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir()), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.get_template("module.py.j2").render(
        filename=Path(module.filename).name, digest=digest, backend=backend, kernels=kernels,
        functions=functions, classes=classes, main=main, header_mark=HEADER_MARK)


def _kernel_source(plan, names: Names) -> str:
    """The Triton ops of the plan and of every idiom call emitted (the same set, unless the
    plan missed one: a call of an undefined kernel is never emitted)."""
    from phc.emit.triton_backend import render_ops
    specs = [*(plan.specs() if plan is not None else ()), *names.kernel_specs.values()]
    return render_ops(specs) if specs else ""


def _all_functions(module: n.Module):
    yield module.main
    yield from module.functions
    for c in module.classes:
        yield from c.methods


def line_table(generated: str) -> dict[int, tuple[int, int]]:
    """Generated line number → (phk line, col), from the `# @L:C` tags."""
    return {k: place[:2] for k, place in span_table(generated).items()}


_PLACE = r"(\d+):(\d+)(?:-(\d+):(\d+))?"
_ONE = rf"@{_PLACE}((?: <\S+ {_PLACE})*)"
_TAG = re.compile(rf"# ({_ONE}(?: \|\d+-\d+ {_ONE})*)$")
_CALL = re.compile(rf" <(\S+) {_PLACE}")
_PART = re.compile(rf"(?:(\d+)-(\d+) )?{_ONE}")


def span_table(generated: str) -> dict[int, tuple]:
    """Generated line number → (line, col, end_line, end_col, calls, parts) of the `.phk`
    expression it computes, from the `# @L:C-EL:EC <f L:C-EL:EC … |B0-B1 @…` tags
    (`phc.emit.places`); `calls`: the inlined calls it came through, innermost first, each
    (func, line, col, end_line, end_col); `parts`: ((b0, b1, place), …) of the expressions inside
    it, by byte columns. A tag without its end (`# @L:C`) has end (0, 0): the rest of the line."""
    table = {}
    for k, text in enumerate(generated.splitlines(), 1):
        m = _TAG.search(text)
        if m:
            first, *rest = m.group(1).split(" |")
            parts = tuple((int(p.group(1)), int(p.group(2)), _parse_place(p)) for p in map(_PART.fullmatch, rest))
            table[k] = (*_parse_place(_PART.fullmatch(first)), parts)
    return table


def _parse_place(m) -> tuple:
    calls = tuple((c.group(1), *_numbers(c.groups()[1:])) for c in _CALL.finditer(m.group(7)))
    return (*_numbers(m.groups()[2:6]), calls)


def _numbers(groups) -> tuple[int, int, int, int]:
    line, col, end_line, end_col = (int(g) if g else 0 for g in groups)
    return line, col, end_line, end_col


class FunctionEmitter:
    def __init__(self, names: Names):
        self.names = names
        self.code = Code()
        self.host = Host(self.code, names, getattr(names, "backend", "torch"))
        self.in_nograd = False

    def count_grads(self, body):
        from collections import Counter
        from phc.ir.simplify import extent
        # shapes of tensors tabulated once in this function: `e[i]` over `e`'s extent is `e`
        writes = Counter(s.name for s in walk_stmts(body) if isinstance(s, n.Assign))
        self.host.shapes = {s.name: tuple(extent(a) for a in s.value.axes) for s in walk_stmts(body)
                            if isinstance(s, n.Assign) and isinstance(s.value, n.Tabulate) and writes[s.name] == 1}

    def function(self, f: n.Function, method: bool = False) -> str:
        self.count_grads(f.body)
        params = [self.names.py(p.name) for p in f.params]
        if method:
            params = ["this"] + params
        # a method lives in its class's namespace and is called as `obj.name`: only λ is renamed
        name = "__call__" if f.name == "λ" else f.name if method else self.names.py(f.name)
        self.code.indent = 1
        stored = {root_name(s.tensor) for s in walk_stmts(f.body) if isinstance(s, n.Store)}
        for p in f.tracked_params:
            # a parameter some `grad` here differentiates: in the caller's graph, or a new leaf
            # (a copy in the graph when the body writes it in place: a leaf cannot be written)
            v = f"rt.track({self.names.py(p)})"
            self.code.line(f"{self.names.py(p)} = {'rt.storable(' + v + ')' if p in stored else v}")
        self.body(f.body)
        if not f.body:
            self.code.line("pass")
        head = f"def {name}({', '.join(params)}):{_tag(f.span)}"
        doc = f'    """Physika `{f.name}` ({", ".join(f"{p.name}: {p.type}" for p in f.params)}) -> {f.ret}."""'
        return "\n".join([head, doc] + self.code.lines)

    def main(self, f: n.Function) -> str:
        self.count_grads(f.body)
        assigned = sorted({s.name for s in walk_stmts(f.body) if isinstance(s, n.Assign)} |
                          {t for s in walk_stmts(f.body) if isinstance(s, n.Grads) for t in s.targets} |
                          {s.axis.var for s in walk_stmts(f.body) if isinstance(s, n.Loop)})
        self.code.indent = 1
        if assigned:
            self.code.line(f"global {', '.join(self.names.py(a) for a in assigned)}")
        if self.names.adjoint is not None:
            # every `grad` is adjoint code (phc.ir.adjoint): the program records no autograd tape
            self.code.line("with torch.no_grad():")
            self.code.indent += 1
            self.in_nograd = True
        self.body(f.body)
        self.code.indent = 1
        # phc's own temporaries (`x⟨b2⟩`, phc/ir/batch.py) are not the program's variables
        returned = [a for a in assigned if "⟨" not in a]
        pairs = ", ".join(f"({a!r}, {self.names.py(a)!r})" for a in returned)
        # a variable assigned only inside a loop that ran no iteration is not there
        self.code.line("_g = globals()")
        self.code.line(f"return {{name: _g[py] for name, py in ({pairs}{',' if len(returned) == 1 else ''}) if py in _g}}")
        return "\n".join(['def main():', '    """Run the top-level program; return its variables."""'] + self.code.lines)

    # ---- statements

    def body(self, stmts):
        group: list[n.Stmt] = []
        for s in stmts:
            if self._nograd_assign(s):
                group.append(s)
                continue
            self.nograd_group(group)
            group = []
            self.stmt(s)
        self.nograd_group(group)

    def _nograd_assign(self, s) -> bool:
        return isinstance(s, n.Assign) and s.nograd and not self.in_nograd and _builds_graph(s.value)

    def nograd_group(self, group):
        """Consecutive assignments that reach no `grad`, computed under one `torch.no_grad()`."""
        if not group:
            return
        self.code.line("with torch.no_grad():")
        self.code.indent += 1
        self.in_nograd = True
        for s in group:
            self.stmt(s)
        self.in_nograd = False
        self.code.indent -= 1

    def stmt(self, s: n.Stmt):
        c, h = self.code, self.host
        tag = place_text(getattr(s, "span", None))
        c.tag = tag             # temporaries of this statement map to its line too
        c.places.clear()        # (unless they compute an expression with a span of its own)
        taped = self.names.adjoint.segments_of(s) if self.names.adjoint is not None else []
        for k, step, (first, last, var) in taped:
            # in the tape of each `grad` that needs it (each binds the variable to the same value)
            StepCode(self, k, step).segment(first, last, var, tag)
        if taped:
            return
        match s:
            case n.Assign(name, n.Bin("-", a, b)) if id(s) in self.names.in_place:
                # proved dead once replaced (phc.ir.inplace): the field's tensor is written
                if isinstance(b, n.Bin) and b.op == "*":
                    v = f"rt.adjoint.sub_scaled_({self.value(a)}, {self.value(b.a)}, {self.value(b.b)})"
                else:
                    v = f"rt.adjoint.sub_({self.value(a)}, {self.value(b)})"
                c.line(f"{self.names.py(name)} = {v}", tag)
            case n.Grads(targets, y, wrt) if self.names.adjoint is not None:
                k, step = self.names.adjoint.step_of(s)
                code = StepCode(self, k, step)
                code.tail(tag)
                code.backward(targets, wrt, tag)
            case n.Assign(name, n.Call()) if id(s) in self.names.reused:
                # every field updated in place: the instance it would build is the one it has (the
                # assignments keep a field whose update had to make a new tensor: rt.adjoint.sub_)
                args = _with_in_place_arguments(s.value, (), self.names.inline.get(id(s), ())).args
                obj = self.names.py(name)
                for f, a in zip(self.names.class_fields[s.value.func], args):
                    c.line(f"{obj}.{f} = {self.value(a)}", tag)
            case n.Assign(name, value):
                if id(s) in self.names.copies or id(s) in self.names.inline:
                    value = _with_in_place_arguments(value, self.names.copies.get(id(s), ()),
                                                     self.names.inline.get(id(s), ()))
                v = self.value(value)
                if s.leaf:
                    v = f"rt.{'leaf' if s.leaf.startswith('fresh') else 'track'}({v})"
                    v = f"rt.storable({v})" if s.leaf.endswith("+stores") else v
                if s.fresh_fields and _constructs(value, self.names) and v.endswith(")"):
                    # with the adjoint written out, main's instances need no leaves (`_phc_plain`)
                    plain = ", _phc_plain=True" if self.names.adjoint is not None else ""
                    v = f"{v[:-1]}{', ' if not v.endswith('()') else ''}_phc_fresh={tuple(s.fresh_fields)!r}{plain})"
                elif s.fresh_fields:
                    v = f"rt.fresh_fields({v}, {s.fresh_fields!r})"
                c.line(f"{self.names.py(name)} = {v}", tag)
            case n.SetField(obj, field, value):
                v = self.value(value)
                # the place written as it is read (`obj.field`)
                c.line(f"{h.expr(n.Attr(obj, field))} = {'rt.track_field(' + v + ')' if s.leaf else v}", tag)
            case n.Store(tensor, index, value):
                self.store(s, tag)
            case n.Loop(axis, body) if s.mark in (n.Mark.PARALLEL, n.Mark.REDUCTION):
                mark = len(c.lines)
                try:
                    self.nest_store(s, tag)
                except EmitError as why:
                    # not vectorisable: the same loops, literally (parallel: any order is right)
                    del c.lines[mark:]
                    c.line(f"# not vectorised ({why}): a host loop", tag)
                    self.host_loop(s, tag)
            case n.Loop(axis, body):
                self.host_loop(s, tag)
            case n.If(cond, body, orelse):
                c.line(f"if {h.expr(cond)}:", tag)
                self.block(body)
                if orelse:
                    c.line("else:")
                    self.block(orelse)
            case n.Return(value):
                c.line("return" if value is None else f"return {self.value(value)}", tag)
            case n.Print(value):
                c.line(f"rt.physika_print({self.value(value)})", tag)
            case n.Eval(value):
                c.line(self.value(value), tag)
            case n.Grads(targets, y, wrt):
                ts = ", ".join(self.names.py(t) for t in targets)
                ws = ", ".join(h.expr(w) for w in wrt)
                # proved the only backward through y's graph (analysis.free_graph_is_legal)
                keep = ", retain_graph=False" if s.free_graph else ""
                keep += ", create_graph=True" if s.create_graph else ""
                c.line(f"{ts}{',' if len(targets) == 1 else ''} = rt.grads({h.expr(y)}, ({ws},){keep})", tag)
            case _:
                raise EmitError(f"cannot emit {type(s).__name__}")

    def block(self, stmts):
        self.code.indent += 1
        before = len(self.code.lines)
        self.body(stmts)
        if len(self.code.lines) == before:
            self.code.line("pass")
        self.code.indent -= 1

    def value(self, e: n.Expr) -> str:
        if isinstance(e, (n.Tabulate, n.Reduce)):
            return Nest(self.host, ()).value(e)
        return self.host.expr(e)

    def host_loop(self, s: n.Loop, tag: str):
        c = self.code
        a = s.axis
        self.names.ints.add(a.var)
        lo, hi = self.host.int_expr(a.lo), self.host.int_expr(a.hi)
        rng = f"range({hi})" if lo == "0" else f"range({lo}, {hi})"
        wrap = s.nograd and not self.in_nograd
        if wrap:
            c.line("with torch.no_grad():")
            c.indent += 1
            self.in_nograd = True
        c.line(f"for {self.names.py(a.var)} in {rng}:", tag)
        self.block(s.body)
        if wrap:
            c.indent -= 1
            self.in_nograd = False

    def store(self, s: n.Store, tag: str):
        t = self.host.expr(s.tensor)
        idx = ", ".join(self.host.index(i) for i in s.index)
        self.code.line(f"{t}[{idx}] = {self.value(s.value)}", tag)

    def nest_store(self, loop: n.Loop, tag: str):
        """An imperative nest `for … : t[affine] = e`: one vectorised scatter."""
        axes, body = [], (loop,)
        while len(body) == 1 and isinstance(body[0], n.Loop):
            axes.append(body[0].axis)
            body = body[0].body
        if len(body) != 1 or not isinstance(body[0], n.Store):
            raise EmitError("an imperative nest with several statements")
        st = body[0]
        from phc.ir.lower import is_accumulation
        accumulate = is_accumulation(st)
        nest = Nest(self.host, tuple(axes))
        for a in axes:
            nest.size_of(a)
        value = nest.vec(st.value.b if accumulate else st.value)
        spec = nest.index_spec(st.tensor, st.index, tuple(axes), all_axes=True)
        self.code.line(f"rt.nests.store({spec}, {value}, accumulate={accumulate})", tag)


class ClassEmitter:
    def __init__(self, names: Names):
        self.names = names

    def cls(self, c: n.ClassIR) -> str:
        fields = [self.names.py(p.name) for p in c.fields]
        defaults = c.defaults or (None,) * len(fields)
        # a field declared with a value may be left out of the call; its value is made per call
        optional = [any(d is not None for d in defaults[:k + 1]) for k in range(len(fields))]
        params = [f"{py}=None" if o else py for py, o in zip(fields, optional)]
        if c.grad_fields:
            # `_phc_fresh`: the fields a construction site proved fresh leaves (fresh_leaf_is_legal)
            params.append("_phc_fresh=()")
            if self.names.adjoint is not None:
                # `_phc_plain`: main differentiates at compile time (phc.ir.adjoint): plain values
                params.append("_phc_plain=False")
        lines = [f"class {self.names.py(c.name)}:",
                 f'    """Physika class `{c.name}`: fields {", ".join(f"{p.name}: {p.type}" for p in c.fields)}."""',
                 f"    _fields = {tuple(p.name for p in c.fields)!r}",
                 "",
                 f"    def __init__(this, {', '.join(params)}):" if fields else "    def __init__(this):"]
        for py, d in zip(fields, defaults):
            if d is not None:
                default = FunctionEmitter(self.names).value(d)
                lines.append(f"        {py} = {default} if {py} is None else {py}")
        for p, py in zip(c.fields, fields):
            # a tracked field: some `grad` may differentiate it (it keeps its graph, if any);
            # the attribute keeps the Physika name: fields are read as `obj.name` (and by `_fields`)
            v = f"rt.value({py})"
            if p.name in c.grad_fields:
                v = f"(rt.leaf({py}) if {p.name!r} in _phc_fresh else rt.track_field({py}))"
                if self.names.adjoint is not None:
                    v = f"(rt.adjoint.param({py}) if _phc_plain else {v})"
            lines.append(f"        this.{p.name} = {v}")
        if not fields:
            lines.append("        pass")
        for m in c.methods:
            text = FunctionEmitter(self.names).function(m, method=True)
            lines.append("")
            lines += ["    " + line if line else line for line in text.splitlines()]
        return "\n".join(lines)


def _with_in_place_arguments(call: n.Call, copies, inline) -> n.Call:
    """A construction whose fields are updated in place (phc.ir.inplace): `rt.adjoint.own(x)`
    (a copy the field will own) and `rt.adjoint.sub_scaled_(obj.f, lr, g)` (the update itself)."""
    args = []
    for k, x in enumerate(call.args):
        if k in inline:
            e = x.b
            x = (n.Call("adjoint.sub_scaled_", (x.a, e.a, e.b)) if isinstance(e, n.Bin) and e.op == "*"
                 else n.Call("adjoint.sub_", (x.a, e)))
        elif k in copies:
            x = n.Call("adjoint.own", (x,))
        args.append(x)
    return n.Call(call.func, tuple(args), call.obj, call.span)


def _constructs(e: n.Expr, names: Names) -> bool:
    """A direct constructor call of a program class (`ConvNets(…)`): it takes `_phc_fresh`."""
    return isinstance(e, n.Call) and e.obj is None and e.func in names.classes


def _builds_graph(e: n.Expr) -> bool:
    """Whether computing `e` can record autograd history (constants and reads cannot)."""
    from phc.ir.simplify import contains
    return contains(e, lambda x: isinstance(x, (n.Bin, n.Un, n.Select, n.Reduce, n.Tabulate, n.Call)))


def _tag(span) -> str:
    t = place_text(span)
    return f"  # {t}" if t else ""
