"""The typing rules of calls: functions (the type of a call from what the callee's body
computes), methods, λ, constructors, builtins, `grad(f, x)`."""
from __future__ import annotations

from phc import ast
from phc.builtins import (Args, BUILTINS, BuiltinError, as_extent, derivative_type, dims_clash,
                          join_dim, subst_dim)
from phc.diagnostics import error, warning
from phc.types import (SymT, ClassT, Dim, DimOp, FuncT, NONE, ScalarT, TensorT, TupleT, Type, UNKNOWN,
                       UnknownT)
from phc.typecheck.shapes import (_arity, _describe, _misfit, _plural, _rank_differs, _str_dims,
                                  _subst, element_kind_of)
from phc.typecheck.state import ClassInfo, Frame, FuncInfo, SELF, Sig, UPDATE


class CallRules:
    """Rules of the checker (a mixin of `Checker`): the typing rules of calls."""

    def e_call(self, e: ast.Call, f: Frame, hint) -> Type:
        fn = e.func
        if isinstance(fn, ast.Attribute):
            return self.method_call(e, fn, f)
        if isinstance(fn, ast.Name):
            return self.named_call(e, fn, f)
        if isinstance(fn, ast.This):                 # `this(x)`: the instance's own λ
            return self.call_value(e, self.expr(fn, f), f, SELF)
        t = self.expr(fn, f)
        self.check_args(e, f)
        if not isinstance(t, UnknownT):
            self.report(error, f"this is not a function or class: it has type {t}", fn.span)
        return UNKNOWN

    def check_args(self, e: ast.Call, f: Frame) -> None:
        for a in e.args:
            self.expr(a, f)

    def named_call(self, e: ast.Call, fn: ast.Name, f: Frame) -> Type:
        """Variables shadow functions, user definitions shadow builtins."""
        name = fn.id
        if name in f.vars:
            return self.call_value(e, self.expr(fn, f), f, self.inst_of.get(fn, {}))
        if name in self.functions:
            info = self.functions[name]
            self.expr_types[fn] = self.func_type(info)
            sig = self.func_sig(info, _function_label(name))
            types = self.arg_types(sig, e, f)
            mapped = self.elementwise_call(sig, info, e, types)
            return self.apply(sig, e, f, None, types=types) if mapped is None else mapped
        if name in self.classes:
            return self.construct(e, self.classes[name], f)
        if f.info is not None and name in self.top_names:
            return self.call_value(e, self.expr(fn, f), f, {})
        if name == "grad" and len(e.args) == 2 and self.names_function(e.args[0], f):
            return self.grad_of_function(e, f)
        if name in BUILTINS:
            return self.builtin_call(e, name, f)
        self.expr(fn, f)                       # reports the unknown name
        self.check_args(e, f)
        return UNKNOWN

    def elementwise_call(self, sig: Sig, info: FuncInfo, e: ast.Call, types: list[Type]) -> Type | None:
        """A function of numbers applied to tensors maps over their elements (`tanh(W @ x + b)`
        with `def tanh(x: ℝ): ℝ`): every argument declared as a number gets a number or a
        tensor, the tensors all of one shape; the result has that shape. The call is recorded,
        and `phc.typecheck.elementwise` rewrites it into a comprehension (None: not such a call)."""
        ret = sig.ret if sig.ret is not None else sig.body_ret
        if info.owner is not None or not sig.params or len(e.args) != len(sig.params) \
                or not isinstance(ret, ScalarT) or not all(isinstance(pt, ScalarT) for _, pt in sig.params):
            return None
        tensors = [t for t in types if isinstance(t, TensorT)]
        if not tensors or not all(isinstance(t, (ScalarT, TensorT)) for t in types) \
                or len({t.rank for t in tensors}) != 1:
            return None
        first = tensors[0]
        for (p, pt), a, t in zip(sig.params, e.args, types):
            if isinstance(t, TensorT) and any(dims_clash(d, g) for d, g in zip(first.dims, t.dims)):
                self.report(error, f"{sig.label} is applied to the elements of tensors of different "
                            f"shapes: {first} and {t}", a.span,
                            "each element of one is paired with the element at the same place of the other")
            self.bind_arg(sig, p, pt, ScalarT(t.kind) if isinstance(t, TensorT) else t, a, {}, {})
        self.elementwise_calls[e] = (info.name, tuple(k for k, t in enumerate(types) if isinstance(t, TensorT)),
                                     first.rank)
        return TensorT(ret.kind, first.dims)

    def names_function(self, e: ast.Expr, f: Frame) -> bool:
        """`e` is the bare name of a top-level function (not shadowed by a variable)."""
        return isinstance(e, ast.Name) and e.id in self.functions and e.id not in f.vars

    def grad_of_function(self, e: ast.Call, f: Frame) -> Type:
        """`grad(f, x)`: the derivative of the one-argument function `f` at `x` — shaped like
        `x` where `f` returns a number, else the Jacobian `ℝ[out…, in…]`."""
        fn, x = e.args
        info = self.functions[fn.id]
        self.expr_types[e.func] = UNKNOWN
        self.expr_types[fn] = self.func_type(info)
        if len(info.params) != 1:
            self.expr(x, f)
            self.report(error, f"`grad({fn.id}, …)` needs a function of one argument, but "
                        f"`{fn.id}` takes {_plural(len(info.params), 'argument')}", fn.span,
                        f"differentiate a call instead: `grad({fn.id}(a, b), a)`")
            return UNKNOWN
        out = self.apply(self.func_sig(info, f"`{fn.id}`"), ast.Call(fn, (x,), e.span), f, None)
        xt = self.expr_types.get(x, UNKNOWN)
        for t in (out, xt):
            if not isinstance(t, (ScalarT, TensorT, UnknownT)):
                self.report(error, f"`grad` needs numbers or tensors, not {t}", e.span)
                return UNKNOWN
        return derivative_type(out, xt)

    def call_value(self, e: ast.Call, t: Type, f: Frame, inst) -> Type:
        """Calling a variable: an instance whose class defines `λ`."""
        if isinstance(t, ClassT) and t.name in self.classes:
            info = self.classes[t.name]
            lam = info.methods.get("λ")
            if lam is not None:
                return self.apply(self.func_sig(lam, f"`{info.name}`'s λ"), e, f, inst)
            self.check_args(e, f)
            self.report(error, f"{_describe(e.func)} is not callable: class `{info.name}` "
                        "defines no `λ`", e.func.span,
                        "add `def λ(x: …) -> …:` to the class to make its instances callable")
            return UNKNOWN
        self.check_args(e, f)
        if isinstance(t, FuncT):
            return t.ret
        if isinstance(t, SymT) and t.name == "Function":
            return SymT("Expr")             # `u(x, y)`: an undefined function applied
        if not isinstance(t, UnknownT):
            self.report(error, f"{_describe(e.func)} is not a function or class: it has type {t}",
                        e.func.span)
        return UNKNOWN

    def method_call(self, e: ast.Call, fn: ast.Attribute, f: Frame) -> Type:
        t = self.expr(fn.value, f)
        info = self.class_of(t, fn)
        if info is None:
            self.check_args(e, f)
            return UNKNOWN
        inst = self.inst_of.get(fn.value, {})
        method = info.methods.get(fn.attr)
        if method is not None:
            self.expr_types[fn] = self.func_type(method)
            return self.apply(self.func_sig(method, f"`{info.name}.{fn.attr}`"), e, f, inst)
        if fn.attr in info.fields:                 # a field holding a callable instance
            return self.call_value(e, self.expr(fn, f), f, self.inst_of.get(fn, {}))
        if fn.attr == UPDATE:
            return self.sgd_update(e, info, inst, f)
        self.expr_types[fn] = UNKNOWN
        self.check_args(e, f)
        self.report(error, f"class `{info.name}` has no method `{fn.attr}`", fn.span,
                    self.suggest(fn.attr, info.methods))
        return UNKNOWN

    def sgd_update(self, e: ast.Call, info: ClassInfo, inst, f: Frame) -> Type:
        """`obj.update(lr, grads)`: upstream's gradient step on the learnable parameters,
        `p -= lr * g` for each (grads as `grad(loss, obj.params)` gives them)."""
        self.expr_types[e.func] = UNKNOWN
        types = [self.expr(a, f) for a in e.args]
        if len(types) != 2:
            self.report(error, f"`{info.name}.update` takes 2 arguments (a rate and the "
                        f"gradients) but {len(types)} were given", e.span)
            return NONE
        want = self.learnable(info, inst)
        if not isinstance(types[0], (ScalarT, UnknownT)):
            self.report(error, f"the rate of `update` must be a number, not {types[0]}",
                        e.args[0].span)
        if isinstance(types[1], TupleT):
            self.conform(want, types[1], e.args[1].span, "the parameters have types",
                         "the gradients are")
        elif not isinstance(types[1], UnknownT):
            self.report(error, f"`update` needs the list of gradients {want}, not {types[1]}",
                        e.args[1].span, f"write `{info.name.lower()}.update(lr, grad(loss, "
                        f"{info.name.lower()}.params))`")
        return NONE

    def func_sig(self, info: FuncInfo, label: str) -> Sig:
        self.ensure_checked(info)
        cls = self.classes.get(info.owner) if info.owner else None
        syms = frozenset().union(*(_str_dims(t) for t in cls.fields.values())) if cls else frozenset()
        # undeclared: the body's type, or None (nothing) for a body that returns no value
        declared = info.node.ret is not None or not _returns_a_value(info.node)
        return Sig(label, tuple(info.params.items()), len(info.params),
                   info.ret if declared else None,
                   self._body_ret.get(id(info)), syms, ret_size=info.ret_size)

    def construct(self, e: ast.Call, info: ClassInfo, f: Frame) -> Type:
        """`C(f0, f1, …)`: the fields in order; the binding of the class's symbols is kept with
        the instance, so `obj.w` has the size it was built with."""
        # `class C(a: ℝ):` takes its parameters; its fields start at their values (zeros where
        # none is written), as upstream; `class C:` takes the fields that have no value
        params = info.node.params
        required = len(params) if params else sum(d.value is None for d in info.node.fields)
        sig = Sig(f"`{info.name}`", tuple(info.fields.items()), required, ClassT(info.name), None,
                  rank_error=True, param_word="field")
        self.expr_types[e.func] = FuncT(tuple(info.fields.values()), ClassT(info.name))
        bindings: dict[str, Dim] = {}
        self.apply(sig, e, f, None, bindings)
        for (name, _), arg in zip(sig.params, e.args):   # a size field: `n: ℕ` then `w: ℝ[n]`
            size = self.size_of(arg, f)
            if size is not None:
                bindings.setdefault(name, size)
        self.inst_of[e] = bindings
        return ClassT(info.name)

    def arg_types(self, sig: Sig, e: ast.Call, f: Frame) -> list[Type]:
        """The arguments' types, each checked once (a parameter's kind is the hint)."""
        return [self.expr(a, f, element_kind_of(sig.params[i][1]) if i < len(sig.params) else None)
                for i, a in enumerate(e.args)]

    def apply(self, sig: Sig, e: ast.Call, f: Frame, inst, bindings=None, types=None) -> Type:
        """Check a call against a signature: bind the callee's symbols to the argument dims and
        substitute them into its return type (`types`: the arguments', when already checked)."""
        n, most = len(e.args), len(sig.params)
        fits = sig.required <= n <= most
        if not fits:
            count = str(most) if sig.required == most else f"{sig.required} to {most}"
            self.report(error, f"{sig.label} takes {count} argument{'s' * (most != 1)} but "
                        f"{n} {'was' if n == 1 else 'were'} given", e.span)
        types = self.arg_types(sig, e, f) if types is None else types
        sizes = {p: self.size_of(a, f) for (p, _), a in zip(sig.params, e.args)}
        bindings = {} if bindings is None else bindings
        if fits:
            for (p, pt), a, t in zip(sig.params, e.args, types):
                self.bind_arg(sig, p, pt, t, a, bindings, sizes)
        return self.call_result(sig, bindings, sizes, inst, e)

    def bind_arg(self, sig: Sig, p: str, pt: Type, t: Type, a: ast.Expr,
                 bindings: dict, sizes: dict) -> None:
        subject = f"{sig.param_word} `{p}` of {sig.label} is declared"
        problem = _misfit(pt, t)
        if problem == "rank" and isinstance(t, TensorT) and isinstance(pt, TensorT) \
                and not sig.rank_error:
            self.report(warning, f"{subject} {pt} but it gets {t}", a.span,
                        f"the body may still accept it, but the declared rank is {pt.rank}")
            return
        if problem is not None:
            self.conform(pt, t, a.span, subject, "it gets")
            if problem != "kind":
                return
        if not (isinstance(pt, TensorT) and isinstance(t, TensorT)):
            return
        for pd, ad in zip(pt.dims, t.dims):
            if not isinstance(pd, str):
                continue
            known = sizes.get(pd) if pd in sizes else bindings.get(pd)
            if dims_clash(known, ad):
                self.report(error, f"{sig.param_word} `{p}` of {sig.label} gets {t}, but `{pd}` is "
                            f"{known} from the other arguments", a.span)
            elif pd not in sizes:
                bindings[pd] = join_dim(known, ad) if pd in bindings else ad

    def call_result(self, sig: Sig, bindings: dict, sizes: dict, inst, e: ast.Call) -> Type:
        """The type of a call: what the callee's body returns, its formulas written in the
        caller's terms (`maxpool2d(x: ℝ[m, n]): ℝ[m, n]` whose body returns ℝ[m//2, n//2] gives
        ℝ[13, 13] for a ℝ[26, 26]); where the body's shape cannot be said in the caller's
        terms (it depends on the callee's own locals), the declared one."""
        def caller_dim(d: Dim) -> Dim:
            if isinstance(d, DimOp):
                return subst_dim(d, caller_dim)
            if not isinstance(d, str):
                return d
            if d in bindings:
                return bindings[d]
            if d in sizes:
                return as_extent(sizes[d])      # a count given as a size: `ℕ(n/2)` floors
            if d in sig.class_syms and inst is not None:
                return inst.get(d)
            return None                      # a name of the callee's own (a local)

        body = sig.body_ret
        if sig.ret is None or _rank_differs(sig.ret, body):
            # undeclared, or declared with another rank than the body returns (the value is
            # the body's: upstream's `def f(x: ℝ): ℝ:` returning a Jacobian ℝ[6])
            ret = _subst(body, caller_dim) if body is not None else UNKNOWN
        elif isinstance(sig.ret, TensorT) and isinstance(body, TensorT):
            dims = []
            for d, b in zip(sig.ret.dims, body.dims):
                from_body = caller_dim(b)
                dims.append(from_body if from_body is not None else caller_dim(d))
            ret = TensorT(sig.ret.kind, tuple(dims))
            declared = _subst(sig.ret, caller_dim)
            if ret.dims != declared.dims and any(isinstance(x, int) for x in ret.dims):
                self.call_shapes[e] = (f"{sig.label} is declared to return {sig.ret} but its body "
                                       f"returns {body}, here {ret}")
        else:
            ret = _subst(sig.ret, caller_dim)
        if sig.ret_size is not None:
            size = caller_dim(sig.ret_size)
            if size is not None:
                self.call_sizes[e] = size
        if isinstance(ret, ClassT):
            self.inst_of[e] = {}
        return ret

    def builtin_call(self, e: ast.Call, name: str, f: Frame) -> Type:
        b = BUILTINS[name]
        types = tuple(self.expr(a, f) for a in e.args)
        self.expr_types[e.func] = UNKNOWN
        n = len(e.args)
        if n < b.min_args or (b.max_args is not None and n > b.max_args):
            self.report(error, f"`{name}` takes {_arity(b.min_args, b.max_args)} but {n} "
                        f"{'was' if n == 1 else 'were'} given", e.span)
            return UNKNOWN
        args = Args(types, tuple(as_extent(self.size_of(a, f)) for a in e.args), tuple(e.args))
        try:
            t = b.rule(args)
        except BuiltinError as err:
            span = e.args[err.arg].span if err.arg is not None else e.span
            self.report(error, err.message, span, err.hint)
            return UNKNOWN
        self.expr_types[e.func] = FuncT(types, t)
        return t


def _function_label(name: str) -> str:
    """How a diagnostic names a function: phc's elementwise mapping of `f` as `f` itself."""
    from phc.typecheck.elementwise import mapped_function
    base = mapped_function(name)
    return f"`{name}`" if base is None else f"`{base}` (on each element)"


def _returns_a_value(f: ast.FuncDef) -> bool:
    """Some `return e` of f's own body (not of a definition nested in it)."""
    stack = list(f.body)
    while stack:
        x = stack.pop()
        if isinstance(x, (ast.FuncDef, ast.ClassDef)):
            continue
        if isinstance(x, ast.Return) and x.value is not None:
            return True
        stack.extend(ast.children(x))
    return False
