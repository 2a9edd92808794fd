"""Python for a compile-time adjoint (`phc.ir.adjoint`): the tape where its statements stood, the
backward where the `grad` stood. Every value is a local `_s{step}_{op}`; the backward reads only
those, so a variable reassigned between the two cannot change a gradient."""
from __future__ import annotations

from phc.ir import nodes as n
from phc.ir.adjoint import Back, Op, Step

_TORCH_UN = {"exp": "torch.exp", "log": "torch.log", "sin": "torch.sin", "cos": "torch.cos",
             "tanh": "torch.tanh", "sqrt": "torch.sqrt", "abs": "torch.abs"}


class StepCode:
    def __init__(self, emitter, index: int, step: Step):
        self.e, self.k, self.step = emitter, index, step
        self.code, self.host, self.names = emitter.code, emitter.host, emitter.names
        self.values = {f"%{op.id}": self.v(op.id) for op in step.ops}   # what `%k` names in host IR

    def v(self, op: int) -> str:
        return f"_s{self.k}_{op}"

    def name(self, ref: str) -> str:
        """`g5`, `v5`, `c5.0` → their locals."""
        if ref.startswith("v"):
            return self.v(int(ref[1:]))
        return f"_s{self.k}_{ref.replace('.', '_')}"

    def expr(self, e: n.Expr) -> str:
        """A host IR expression whose `%k` names are the tape's values."""
        return self._with_values(self.host.expr, e)

    def int_expr(self, e: n.Expr) -> str:
        return self._with_values(self.host.int_expr, e)

    def host_index(self, e: n.Expr) -> str:
        return self._with_values(self.host.index, e)

    def _with_values(self, render, e: n.Expr) -> str:
        self.names.fixed.update(self.values)
        try:
            return render(e)
        finally:
            for k in self.values:
                self.names.fixed.pop(k, None)

    # ---- the forward

    def segment(self, first: int, last: int, var: str, tag: str):
        for op in self.step.ops[first:last + 1]:
            self.op(op, tag)
        self.code.line(f"{self.names.py(var)} = {self.v(last)}", tag)

    def tail(self, tag: str):
        for op in self.step.ops[self.step.tail:]:
            self.op(op, tag)

    def op(self, op: Op, tag: str):
        a = [self.v(x) for x in op.args]
        out = self.v(op.id)
        line = lambda text: self.code.line(f"{out} = {text}", tag)
        match op.kind:
            case "host":
                line(self.expr(op.attrs[0]))
            case "axis":
                k, rank, size = op.attrs
                line(f"rt.nests.arange({self.int_expr(size)}, {k}, {rank}, 0, device=rt.device())")
            case "var":
                line(f"rt.adjoint.param({self.names.py(op.attrs[0])})")
            case "field":
                line(f"{self.names.py(op.attrs[0])}.{op.attrs[1]}")
            case "leaf":
                line(f"rt.adjoint.param({a[0]})")
            case "un":
                line(f"(-{a[0]})" if op.attrs[0] == "neg" else f"{_TORCH_UN[op.attrs[0]]}({a[0]})")
            case "bin" | "cmp":
                line(f"({a[0]} {op.attrs[0]} {a[1]})")
            case "pow":
                line(f"({a[0]} ** {op.attrs[0]!r})")
            case "logic":
                line(f"rt.adjoint.logic({op.attrs[0]!r}, {', '.join(a)})")
            case "relu":
                line(f"torch.relu({a[0]})")
            case "sigmoid":
                line(f"torch.sigmoid({a[0]})")
            case "matmul":
                line(f"({a[0]} @ {a[1]})")
            case "where":
                line(f"torch.where({a[0]}, {a[1]}, {a[2]})")
            case "hselect":
                # a tensor whichever branch is chosen (a branch may be a host number)
                line(f"rt.nests.host_select({a[0]}, {a[1]}, {a[2]})")
            case "index":
                idx = ", ".join(f"rt.adjoint.ix({self.host_index(i)})" for i in op.attrs)
                self.code.line(f"{out}_ix = ({idx}{',' if len(op.attrs) == 1 else ''})", tag)
                line(f"{a[0]}[{out}_ix]")
            case "reshape":
                shape = ", ".join(self.int_expr(s) for s in op.attrs)
                line(f"{a[0]}.reshape(({shape}{',' if len(op.attrs) == 1 else ''}))")
            case "name":
                line(a[0])
            case "expand":
                line(f"{a[0]}.expand({', '.join(self.int_expr(x) for x in op.attrs)})")
            case "sum":
                line(f"{a[0]}.sum()")
            case "rsum":
                k = op.attrs[0]
                line(f"{a[0]}.sum(dim={tuple(range(-k, 0))!r})")
            case "rmax" | "rmin":
                self.code.line(f"{out}, {out}_at = rt.adjoint.extremum({a[0]}, {op.attrs[0]}, {op.kind[1:]!r})", tag)
            case "store":
                const, rows, sizes, fresh = op.attrs
                self.code.line(f"{out}_spec = {self.spec(const, rows, sizes)}", tag)
                # a fresh allocation is written in place; any other value is copied first
                line(f"rt.adjoint.store({a[0] if fresh else a[0] + '.clone()'}, *{out}_spec, {a[1]})")
            case "unsqueeze":
                positions, rank = op.attrs
                idx = ", ".join(":" if k in positions else "None" for k in range(rank))
                line(f"{a[0]}[{idx}]")
            case "bview":
                positions, rank, extents = op.attrs
                ext = "".join(f"{self.int_expr(x)}, " for x in extents)
                self.code.line(f"{out}_spec = ({positions!r}, {rank}, ({ext}))", tag)
                line(f"rt.adjoint.bview({a[0]}, *{out}_spec)")
            case "view":
                const, rows, sizes, guarded = op.attrs
                self.code.line(f"{out}_spec = {self.spec(const, rows, sizes)[:-1]}, {guarded})", tag)
                line(f"rt.nests.view({a[0]}, *{out}_spec)")
            case "softmax":
                line(f"torch.softmax({a[0]}, 0)")
            case "conv2d":
                stride, ni, nj, hb, ho, hc, pad, nc, guard, _spec = op.attrs
                nc_code = "None" if nc is None else self.int_expr(nc)
                self.code.line(f"{out}_n = ({self.int_expr(ni)}, {self.int_expr(nj)}, {nc_code})", tag)
                line(f"rt.idioms.conv2d({a[0]}, {a[1]}, {stride}, {out}_n[0], {out}_n[1], {hb}, {ho}, {hc}, None, "
                     f"{pad}, {out}_n[2], {guard})")
            case "pool2d":
                kind, k, stride, ni, nj, ties, rank, scale, _spec = op.attrs
                self.code.line(f"{out}, {out}_saved = rt.adjoint.pool2d({a[0]}, {kind!r}, {k}, {stride}, "
                               f"{self.int_expr(ni)}, {self.int_expr(nj)}, {ties!r}, {rank}, {scale})", tag)
            case "linear":
                ni, hb, wt, xt, nk, _spec = op.attrs
                nk_code = "None" if nk is None else self.int_expr(nk)
                self.code.line(f"{out}_n = ({self.int_expr(ni)}, {nk_code})", tag)
                line(f"rt.idioms.linear({a[0]}, {a[1]}, {out}_n[0], {hb}, None, {wt}, {xt}, {out}_n[1])")
            case _:
                raise ValueError(f"no forward code for {op.kind}")

    def spec(self, const, rows, sizes) -> str:
        """`(const, coeffs, sizes)` of `rt.nests.view` / `store` as a Python tuple."""
        tup = lambda xs: "(" + "".join(f"{self.int_expr(x)}, " for x in xs) + ")"     # noqa: E731
        return f"({tup(const)}, ({''.join(tup(r) + ', ' for r in rows)}), {tup(sizes)})"

    # ---- the backward

    def backward(self, targets: tuple[str, ...], wrt: tuple[n.Expr, ...], tag: str):
        step = self.step
        live = {int(b.out[0][1:]) for b in step.back if b.kind in ("seed", "acc")}
        for b in step.back:
            self.back(b, tag)
        values = []
        for w_expr, w in zip(wrt, step.wrt):
            if w is not None and w in live:
                values.append(self.name(f"g{w}"))
            else:
                y = self.v(step.y) if step.y is not None else self.host.expr(step.grads.y)
                values.append(f"rt.adjoint.zeros_for({y}, {self.host.expr(w_expr)})")
        ts = ", ".join(self.names.py(t) for t in targets)
        self.code.line(f"{ts} = {', '.join(values)}", tag)

    def back(self, b: Back, tag: str):
        line = lambda text: self.code.line(f"{', '.join(self.name(o) for o in b.out)} = {text}", tag)
        if b.kind == "seed":
            line(f"torch.ones_like({self.name(b.args[0])})")
            return
        if b.kind == "acc":
            line(" + ".join(self.name(c) for c in b.args))
            return
        op = self.step.ops[int(b.out[0][1:].split(".")[0])]
        g, v = self.name(f"g{op.id}"), self.v(op.id)
        a = [self.v(x) for x in op.args]
        rules = b.args
        if op.kind in ("conv2d", "linear", "matmul"):
            need = ([f"d{op.kind}_x" in rules, f"d{op.kind}_w" in rules] if op.kind != "matmul"
                    else ["dmatmul_a" in rules, "dmatmul_b" in rules])
            outs = [self.name(o) for o in b.out]
            both = ", ".join(outs) if all(need) else (f"{outs[0]}, _" if need[0] else f"_, {outs[0]}")
            if op.kind == "conv2d":
                stride, _ni, _nj, hb, ho, hc, pad, _nc, guard = op.attrs[:9]
                call = (f"rt.adjoint.conv2d_vjp({g}, {a[0]}, {a[1]}, {stride}, {v}_n[0], {v}_n[1], {hb}, {ho}, {hc}, "
                        f"{pad}, {need[0]}, {need[1]}, {v}_n[2], {guard})")
            elif op.kind == "matmul":
                call = f"rt.adjoint.matmul_vjp({g}, {a[0]}, {a[1]}, {need[0]}, {need[1]})"
            else:
                _ni, hb, wt, xt = op.attrs[:4]
                call = (f"rt.adjoint.linear_vjp({g}, {a[0]}, {a[1]}, {v}_n[0], {wt}, {v}_n[1], {need[0]}, {need[1]}, "
                        f"{hb}, {xt})")
            self.code.line(f"{both} = {call}", tag)
            return
        texts = [self.rule(r, op, g, v, a) for r in rules]
        line(", ".join(texts))

    def rule(self, r: str, op: Op, g: str, v: str, a: list[str]) -> str:
        b = a[1] if len(a) > 1 else None
        match r:
            case "d_neg":
                return f"(-{g})"
            case "d_exp":
                return f"({g} * {v})"
            case "d_log":
                return f"({g} / {a[0]})"
            case "d_sin":
                return f"({g} * torch.cos({a[0]}))"
            case "d_cos":
                return f"(-({g} * torch.sin({a[0]})))"
            case "d_tanh":
                return f"({g} * (1 - {v} * {v}))"
            case "d_abs":
                return f"({g} * torch.sgn({a[0]}))"
            case "d_sqrt":
                return f"({g} / (2 * {v}))"
            case "dadd_a" | "dsub_a":
                return f"rt.adjoint.sum_to({g}, {a[0]})"
            case "dadd_b":
                return f"rt.adjoint.sum_to({g}, {b})"
            case "dsub_b":
                return f"rt.adjoint.sum_to(-{g}, {b})"
            case "dmul_a":
                return f"rt.adjoint.sum_to({g} * {b}, {a[0]})"
            case "dmul_b":
                return f"rt.adjoint.sum_to({g} * {a[0]}, {b})"
            case "ddiv_a":
                return f"rt.adjoint.sum_to({g} / {b}, {a[0]})"
            case "ddiv_b":
                return f"rt.adjoint.sum_to(-{g} * {a[0]} / ({b} * {b}), {b})"
            case "dpow":
                c = op.attrs[0]
                return f"({g} * {c!r} * {a[0]} ** {c - 1!r})"
            case "dsigmoid":
                return f"torch.ops.aten.sigmoid_backward({g}, {v})"
            case "drelu":
                return f"torch.ops.aten.threshold_backward({g}, {v}, 0)"
            case "dwhere_a":
                return f"rt.adjoint.sum_to(torch.where({a[0]}, {g}, 0.0), {a[1]})"
            case "dwhere_b":
                return f"rt.adjoint.sum_to(torch.where({a[0]}, 0.0, {g}), {a[2]})"
            case "dselect_a":
                return f"({g} if {a[0]} else torch.zeros_like({g}))"
            case "dselect_b":
                return f"(torch.zeros_like({g}) if {a[0]} else {g})"
            case "dindex":
                return f"rt.adjoint.index_vjp({g}, {a[0]}, {v}_ix)"
            case "dname":
                return g
            case "dexpand":
                return f"rt.adjoint.sum_to({g}, {a[0]})"
            case "dreshape":
                return f"{g}.reshape({a[0]}.shape)"
            case "dsum":
                return f"{g}.expand({a[0]}.shape)"
            case "drsum":
                return f"rt.adjoint.sum_vjp({g}, {a[0]}, {op.attrs[0]})"
            case "drext":
                return f"rt.adjoint.extremum_vjp({g}, {a[0]}, {op.attrs[0]}, {v}_at)"
            case "dstore_value":
                return f"rt.adjoint.sum_to(rt.nests.view({g}, *{v}_spec), {a[1]})"
            case "dstore_old":
                return f"rt.adjoint.unstored({g}, *{v}_spec)"
            case "dunsqueeze":
                return f"{g}.reshape({a[0]}.shape)"
            case "dbview":
                return f"rt.adjoint.bview_vjp({g}, {a[0]}, *{v}_spec)"
            case "dview":
                return f"rt.adjoint.view_vjp({g}, {a[0]}, *{v}_spec)"
            case "dsoftmax":
                return f"torch.ops.aten._softmax_backward_data({g}, {v}, 0, {v}.dtype)"
            case "dpool2d":
                return f"rt.adjoint.pool2d_vjp({g}, {v}_saved)"
        raise ValueError(f"no adjoint code for {r}")
