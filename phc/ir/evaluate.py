"""A reference evaluator for the IR: slow, loop by loop, element by element, exact.

Tests run it against the generated code and against hand-written torch references to show that
lowering and vectorisation preserve meaning. Tensors are torch tensors (so `grad` works through
the scalar graph); every nest is executed with Python loops, one element at a time.
"""
from __future__ import annotations

import math

import torch

from phc.ir import nodes as n


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class Instance:
    """A class instance: its fields, and its class for method lookup."""

    def __init__(self, cls: n.ClassIR, values):
        self._cls = cls
        self._fields = tuple(p.name for p in cls.fields)
        from phc import runtime as rt
        for p, v in zip(cls.fields, values):
            setattr(self, p.name, rt.track(v) if p.name in cls.grad_fields else rt.value(v))


class Evaluator:
    def __init__(self, module: n.Module, printer=None):
        self.module = module
        self.functions = {f.name: f for f in module.functions}
        self.classes = {c.name: c for c in module.classes}
        self.printed: list[str] = []
        self.printer = printer

    # ---- entry points

    def call(self, name: str, *args):
        return self.run_function(self.functions[name], list(args), None)

    def method(self, obj: Instance, name: str, *args):
        f = next(m for m in obj._cls.methods if m.name == name)
        return self.run_function(f, list(args), obj)

    def main(self) -> dict:
        env: dict = {}
        try:
            self.block(self.module.main.body, env)
        except _Return:
            pass
        return env

    def run_function(self, f: n.Function, args, this):
        if len(args) != len(f.params):
            raise TypeError(f"{f.name} takes {len(f.params)} arguments, {len(args)} given")
        from phc import runtime as rt
        env = {p.name: rt.track(a) if p.name in f.tracked_params else a for p, a in zip(f.params, args)}
        if this is not None:
            env["this"] = this
        try:
            self.block(f.body, env)
        except _Return as r:
            return r.value
        return None

    # ---- statements

    def block(self, stmts, env):
        for s in stmts:
            self.stmt(s, env)

    def stmt(self, s, env):
        from phc import runtime as rt
        match s:
            case n.Assign(name, value):
                v = self.expr(value, env)
                if s.nograd and isinstance(v, torch.Tensor):
                    v = v.detach()
                if s.leaf:
                    v = rt.leaf(v) if s.leaf.startswith("fresh") else rt.track(v)
                    v = rt.storable(v) if s.leaf.endswith("+stores") else v
                env[name] = rt.fresh_fields(v, s.fresh_fields) if s.fresh_fields else v
            case n.SetField(obj, name, value):
                v = self.expr(value, env)
                setattr(self.expr(obj, env), name, rt.track(v) if s.leaf else rt.value(v))
            case n.Store(tensor, index, value):
                t = self.expr(tensor, env)
                t[tuple(_int(self.expr(i, env)) for i in index)] = self.expr(value, env)
            case n.Loop(axis, body):
                lo, hi = _int(self.expr(axis.lo, env)), _int(self.expr(axis.hi, env))
                for k in range(lo, hi):
                    env[axis.var] = k
                    self.block(body, env)
            case n.If(cond, body, orelse):
                self.block(body if bool(self.expr(cond, env)) else orelse, env)
            case n.Return(value):
                raise _Return(None if value is None else self.expr(value, env))
            case n.Print(value):
                text = rt.format_value(self.expr(value, env))
                self.printed.append(text)
                if self.printer:
                    self.printer(text)
            case n.Eval(value):
                self.expr(value, env)
            case n.Grads(targets, y, wrt):
                ys = self.expr(y, env)
                gs = rt.grads(ys, tuple(self.expr(w, env) for w in wrt), create_graph=s.create_graph)
                for t, g in zip(targets, gs):
                    env[t] = g

    # ---- expressions

    def expr(self, e, env):
        from phc import runtime as rt
        match e:
            case n.Const(value, _):
                return value
            case n.Sym(name):
                if name not in env:
                    raise NameError(f"`{name}` is not defined")
                return env[name]
            case n.Dim(value, axis):
                return self.expr(value, env).shape[axis]
            case n.Load(tensor, index):
                t = self.expr(tensor, env)
                idx = tuple(_index(self.expr(i, env)) for i in index)
                if isinstance(t, (list, tuple)):        # a data set: [[X, y], [X, y]]
                    for i in idx:
                        t = t[i]
                    return t
                for d, i in enumerate(idx):
                    if not 0 <= i < t.shape[d]:
                        raise IndexError(f"index {i} is out of range for axis {d} of size {t.shape[d]}")
                return t[idx]
            case n.Item(value, index):
                return self.expr(value, env)[index]
            case n.Slice(tensor, lo, hi):
                t = self.expr(tensor, env)
                return t[None if lo is None else _index(self.expr(lo, env)):None if hi is None else _index(self.expr(hi, env))]
            case n.Subscript(tensor, parts):
                return rt.nests.subscript(self.expr(tensor, env), tuple(
                    slice(*(None if x is None else _index(self.expr(x, env)) for x in (p.lo, p.hi, p.step)))
                    if isinstance(p, n.Range) else _index(self.expr(p, env)) for p in parts))
            case n.Bin(op, a, b):
                return _binop(op, self.expr(a, env), self.expr(b, env))
            case n.Un(op, a):
                return _unop(op, self.expr(a, env))
            case n.Select(c, a, b):
                return self.expr(a, env) if bool(self.expr(c, env)) else self.expr(b, env)
            case n.Reduce(op, axes, body):
                return self.reduce(op, axes, body, env)
            case n.Tabulate(axes, body):
                return self.tabulate(axes, body, env)
            case n.Reshape(value, shape):
                v = self.expr(value, env)
                return v.reshape(tuple(_int(self.expr(s, env)) for s in shape)).clone()
            case n.Full(shape, fill, dtype):
                dt = torch.float32 if dtype is n.DType.F32 else torch.long
                return torch.full(tuple(_int(self.expr(s, env)) for s in shape), float(self.expr(fill, env)), dtype=dt)
            case n.ArrayLit(items, dtype):
                vals = [self.expr(i, env) for i in items]
                return torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in vals])
            case n.Sample(dist, params, shape):
                ps = [self.expr(p, env) for p in params]
                return getattr(rt, f"sample_{dist}")(*ps, *[_int(self.expr(s, env)) for s in shape])
            case n.Attr(obj, name):
                return getattr(self.expr(obj, env), name)
            case n.Call(func, args, obj):
                return self.call_expr(func, [self.expr(a, env) for a in args], obj, env)
        raise TypeError(f"cannot evaluate {type(e).__name__}")

    def call_expr(self, func, args, obj, env):
        from phc import runtime as rt
        if obj is not None:
            target = self.expr(obj, env)
            if func == "λ":
                return self.method(target, "λ", *args)
            return self.method(target, func, *args)
        if func in self.functions:
            return self.call(func, *args)
        if func in self.classes:
            cls = self.classes[func]
            defaults = cls.defaults[len(args):] if cls.defaults else ()
            return Instance(cls, list(args) + [self.expr(d, env) for d in defaults])
        return getattr(rt, func)(*args)

    def reduce(self, op, axes, body, env):
        acc, arg, best = None, None, None
        for point in self.points(axes, env):
            local = {**env, **point}
            v = self.expr(body, local)
            if op is n.ReduceOp.ADD:
                acc = v if acc is None else acc + v
            elif op is n.ReduceOp.MUL:
                acc = v if acc is None else acc * v
            elif op in (n.ReduceOp.MAX, n.ReduceOp.ARGMAX):
                if best is None or bool(v > best):
                    best, arg = v, point[axes[0].var]
            elif op in (n.ReduceOp.MIN, n.ReduceOp.ARGMIN):
                if best is None or bool(v < best):
                    best, arg = v, point[axes[0].var]
        if op in (n.ReduceOp.ADD, n.ReduceOp.MUL):
            return 0.0 if acc is None else acc
        if op in (n.ReduceOp.ARGMAX, n.ReduceOp.ARGMIN):
            return arg
        return best if best is not None else (-math.inf if op is n.ReduceOp.MAX else math.inf)

    def tabulate(self, axes, body, env):
        points = list(self.points(axes, env))
        shape = [_int(self.expr(a.hi, env)) - _int(self.expr(a.lo, env)) for a in axes]
        values = [torch.as_tensor(self.expr(body, {**env, **p}), dtype=torch.float32) for p in points]
        if not values:
            return torch.zeros(shape)
        return torch.stack(values).reshape(shape + list(values[0].shape))

    def points(self, axes, env):
        def go(k, point):
            if k == len(axes):
                yield dict(point)
                return
            a = axes[k]
            local = {**env, **point}
            for v in range(_int(self.expr(a.lo, local)), _int(self.expr(a.hi, local))):
                point[a.var] = v
                yield from go(k + 1, point)
            point.pop(a.var, None)
        yield from go(0, {})


def _int(v) -> int:
    if isinstance(v, torch.Tensor):
        v = v.item()
    return int(math.floor(v))


def _index(v) -> int:
    if isinstance(v, torch.Tensor):
        v = v.item()
    return int(v)


def _binop(op, a, b):
    match op:
        case "+": return a + b
        case "-": return a - b
        case "*": return a * b
        case "/": return a / b
        case "//": return a // b
        case "%": return a % b
        case "**": return a ** b
        case "@": return a @ b
        case "<": return a < b
        case ">": return a > b
        case "<=": return a <= b
        case ">=": return a >= b
        case "==": return a == b
        case "!=": return a != b
        case "and": return bool(a) and bool(b)
        case "or": return bool(a) or bool(b)
        case "max": return a if bool(a > b) else b
        case "min": return a if bool(a < b) else b
    raise TypeError(f"unknown operator {op}")


def _unop(op, a):
    if op == "neg":
        return -a
    if op == "not":
        return not bool(a)
    if op == "floor":
        return _int(a)
    t = a if isinstance(a, torch.Tensor) else torch.tensor(float(a))
    fn = {"exp": torch.exp, "log": torch.log, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
          "tanh": torch.tanh, "sqrt": torch.sqrt, "abs": torch.abs, "sigmoid": torch.sigmoid}.get(op)
    if fn is None:
        from phc import runtime as rt
        return getattr(rt, op)(a)
    out = fn(t)
    return out if isinstance(a, torch.Tensor) else out.item()
