"""Parameter updates in place: `new_f = obj.f - lr * g` followed by `obj = C(…, new_f, …)` writes
obj.f's tensor instead of allocating a new one, where the old tensor is provably dead.

Only in a module whose `grad`s are adjoint code (no autograd graph can hold the old tensor). The
precondition `_update_in_place_is_legal`, for a statement S1 `new_f = obj.f - e` of a block:
- S1 comes after the block's every `grad` (the adjoint has read the old value), and the same
  block later constructs `obj = C(…)` with `new_f` as field f's argument;
- `new_f` is read nowhere in `main` but there, and `obj.f` nowhere after S1 in the block;
- the field's tensor is never shared: every read of `obj.f` in `main` is an operand of
  arithmetic, an index, or through a method (whose bodies only compute with `this.f`, never
  return or assign it as it is); no other name holds the instance (`_object_never_shared`);
  every other construction of `obj` gets a copy of its argument (`copies`), so the field never
  aliases a variable of the program (the seed's first `ConvNets(kernel, …)` would otherwise
  make `kernel` change);
- `e` does not read `obj.f` as a bare value that the update would change under it.
`rt.adjoint.sub_` falls back to `obj.f - e` where the shapes or dtypes differ (broadcasting).
A construction whose every argument is its field updated in place keeps the instance
(`_instance_is_reusable`): the fields are assigned the updated tensors instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from phc.ir import nodes as n
from phc.ir.analysis import stmt_exprs, subexprs, walk_stmts
from phc.ir.tape import class_of


@dataclass
class InPlace:
    updates: dict[int, tuple[str, str]] = field(default_factory=dict)   # id(S1) -> (obj, field)
    reused: set[int] = field(default_factory=set)     # id(obj = C(…)) whose every field was updated in place
    inline: dict[int, set[int]] = field(default_factory=dict)           # id(obj = C(obj.f - e, …)) -> positions
    copies: dict[int, set[int]] = field(default_factory=dict)           # id(construction) -> arg positions

    def updated(self) -> set[tuple[str, str]]:
        return set(self.updates.values()) | self._inline_fields

    _inline_fields: set = field(default_factory=set)


def plan_in_place(module: n.Module) -> InPlace:
    out = InPlace()
    classes = {c.name: c for c in module.classes}
    for block in _blocks(module.main.body):
        for k, s in enumerate(block):
            m = _update(s)
            if m is None:
                continue
            obj, f = m
            cls = class_of(module, obj, strict=True)
            if cls is None or not _update_in_place_is_legal(module, cls, block, k, obj, f):
                continue
            out.updates[id(s)] = (obj, f)
        for k, s in enumerate(block):
            # `obj = C(obj.f - e, …)`: the update written into the construction's argument
            if not (isinstance(s, n.Assign) and isinstance(s.value, n.Call) and s.value.func in classes
                    and s.value.obj is None):
                continue
            cls = classes[s.value.func]
            if class_of(module, s.name, strict=True) is not cls:
                continue
            for pos, arg in enumerate(s.value.args[:len(cls.fields)]):
                f = cls.fields[pos].name
                if _inline_update_is_legal(module, cls, block, k, s.name, f, pos):
                    out.inline.setdefault(id(s), set()).add(pos)
                    out._inline_fields.add((s.name, f))
    # a construction whose every argument is its field updated in place builds the instance
    # it replaces: the old one is kept (`_instance_is_reusable`)
    for s in walk_stmts(module.main.body):
        if isinstance(s, n.Assign) and isinstance(s.value, n.Call) and s.value.func in classes \
                and _instance_is_reusable(module, classes[s.value.func], s, out):
            out.reused.add(id(s))
    # every construction of an updated object that does not take the updated tensor: a copy
    for s in walk_stmts(module.main.body):
        if isinstance(s, n.Assign) and isinstance(s.value, n.Call) and s.value.func in classes:
            cls = classes[s.value.func]
            for pos, p in enumerate(cls.fields):
                if (s.name, p.name) in out.updated() and pos < len(s.value.args):
                    arg = s.value.args[pos]
                    if pos in out.inline.get(id(s), ()):
                        continue
                    if not (isinstance(arg, n.Sym) and _is_update_target(arg.name, module, out)):
                        out.copies.setdefault(id(s), set()).add(pos)
    return out


def _instance_is_reusable(module, cls, s: n.Assign, plan: InPlace) -> bool:
    """`obj = C(a0, a1, …)` where each a_k is field k of obj updated in place (the variable an
    update assigned, or the update itself as the argument): the new instance would hold exactly
    the old one's tensors, and nothing else holds the old instance (`class_of(strict)`: obj is only
    ever a construction; methods do not change it), so the old one stands for it."""
    obj, args = s.name, s.value.args
    if len(args) != len(cls.fields) or s.value.obj is not None or not _object_never_shared(module, obj):
        return False
    for k, (a, p) in enumerate(zip(args, cls.fields)):
        inline = k in plan.inline.get(id(s), ())
        by_name = isinstance(a, n.Sym) and any(
            isinstance(x, n.Assign) and x.name == a.name and plan.updates.get(id(x)) == (obj, p.name)
            for x in walk_stmts(module.main.body))
        if not (inline or by_name):
            return False
    return True


def _object_never_shared(module, obj: str) -> bool:
    """obj occurs in main only as a field read's or a method call's receiver (or printed): no
    other name, argument or value holds the instance."""
    from phc.ir.simplify import children

    def ok(e) -> bool:
        if e == n.Sym(obj):
            return False
        if isinstance(e, n.Attr) and e.obj == n.Sym(obj):
            return True
        if isinstance(e, n.Call) and e.obj == n.Sym(obj):
            return all(ok(a) for a in e.args)
        return all(ok(c) for c in children(e))
    for s in walk_stmts(module.main.body):
        if isinstance(s, n.Print) and s.value == n.Sym(obj):
            continue
        if isinstance(s, n.Grads):
            continue
        if not all(ok(e) for e in stmt_exprs(s)):
            return False
    return True


def _inline_update_is_legal(module, cls, block, k, obj: str, f: str, pos: int) -> bool:
    """`obj = C(…, obj.f - e, …)` at position pos: after the block's every `grad`; neither e nor
    any other argument reads obj.f (the arguments run in order, the update first); the field's
    tensor is never shared."""
    s = block[k]
    arg = s.value.args[pos]
    if not (isinstance(arg, n.Bin) and arg.op == "-" and arg.a == n.Attr(n.Sym(obj), f)):
        return False
    if any(isinstance(x, n.Grads) for x in walk_stmts(block[k + 1:])):
        return False
    if _reads_field(arg.b, obj, f):
        return False
    if any(_reads_field(a, obj, f) for j, a in enumerate(s.value.args) if j != pos):
        return False
    return _field_never_shared(module, cls, obj, f) and _object_never_shared(module, obj)


def _update(s) -> tuple[str, str] | None:
    """(obj, f) of `new_f = obj.f - e`."""
    if isinstance(s, n.Assign) and isinstance(s.value, n.Bin) and s.value.op == "-":
        a = s.value.a
        if isinstance(a, n.Attr) and isinstance(a.obj, n.Sym):
            return a.obj.name, a.name
    return None


def _is_update_target(name: str, module: n.Module, plan: InPlace) -> bool:
    return any(isinstance(s, n.Assign) and s.name == name and id(s) in plan.updates
               for s in walk_stmts(module.main.body))


def _blocks(body):
    yield body
    for s in body:
        if isinstance(s, n.Loop):
            yield from _blocks(s.body)
        elif isinstance(s, n.If):
            yield from _blocks(s.body)
            yield from _blocks(s.orelse)


def _update_in_place_is_legal(module, cls, block, k, obj: str, f: str) -> bool:
    s1 = block[k]
    new = s1.name
    if f not in {p.name for p in cls.fields}:
        return False
    # after every grad of the block, before the construction that takes new_f
    if any(isinstance(s, n.Grads) for s in walk_stmts(block[k + 1:])):
        return False
    later = block[k + 1:]
    built = [j for j, s in enumerate(later) if isinstance(s, n.Assign) and s.name == obj]
    if not built:
        return False
    c = later[built[0]]
    pos = [p.name for p in cls.fields].index(f)
    if not (isinstance(c.value, n.Call) and c.value.func == cls.name
            and pos < len(c.value.args) and c.value.args[pos] == n.Sym(new)):
        return False
    # nothing between reads obj.f (it is the new value already) or changes anything in place
    for s in later[:built[0]]:
        if not isinstance(s, n.Assign) or _reads_field(s.value, obj, f):
            return False
    if _reads_field(s1.value.b, obj, f, bare_only=True):
        return False
    # new_f is read only as the construction's argument
    reads = sum(1 for s in walk_stmts(module.main.body) for e in stmt_exprs(s) for x in subexprs(e)
                if x == n.Sym(new))
    if reads != 1 or sum(1 for s in walk_stmts(module.main.body) if isinstance(s, n.Assign) and s.name == new) != 1:
        return False
    return _field_never_shared(module, cls, obj, f) and _object_never_shared(module, obj)


def _reads_field(e, obj: str, f: str, bare_only: bool = False) -> bool:
    target = n.Attr(n.Sym(obj), f)
    if bare_only:
        return e == target
    return any(x == target for x in subexprs(e)) or any(
        isinstance(x, n.Call) and x.obj == n.Sym(obj) for x in subexprs(e))


def _field_never_shared(module, cls, obj: str, f: str) -> bool:
    """Every read of obj.f in main computes with it (arithmetic, an element read in a nest, a
    method or function that does the same with it), and no method hands `this.f` on as it is."""
    check = _Sharing(module, cls)
    target = n.Attr(n.Sym(obj), f)
    top = module.main.body
    # after the last top-level statement that assigns obj, no update runs: a name may hold the
    # field there (the batched evaluation's `kernel⟨b4⟩ = cnn_object.kernel`)
    last = max((k for k, st in enumerate(top) if any(isinstance(x, n.Assign) and x.name == obj
                                                   for x in walk_stmts([st]))), default=-1)
    for k, st in enumerate(top):
        for s in walk_stmts([st]):
            if isinstance(s, (n.SetField, n.Store)):
                return False
            if isinstance(s, n.Grads):
                continue            # a target names the field; the adjoint reads it before S1
            if isinstance(s, n.Print) and s.value == target:
                continue            # printed at once: nothing keeps it
            if k > last and isinstance(s, n.Assign) and s.value == target:
                continue
            if not all(check.computed_with(e, target) for e in stmt_exprs(s)):
                return False
    this_f = n.Attr(n.Sym("this"), f)
    for m in cls.methods:
        if not check.body_computes_with(m, this_f):
            return False
    return True


class _Sharing:
    def __init__(self, module, cls):
        self.module, self.cls = module, cls
        self.seen: set = set()

    def body_computes_with(self, fn: n.Function, target) -> bool:
        key = (id(fn), target)
        if key in self.seen:
            return True         # already being checked (recursion)
        self.seen.add(key)
        for s in walk_stmts(fn.body):
            if isinstance(s, (n.SetField, n.Store)):
                return False
            if not all(self.computed_with(e, target) for e in stmt_exprs(s)):
                return False
        return True

    def computed_with(self, e, target, in_nest: bool = False) -> bool:
        """`target` occurs in e only where an operation makes a new value of it: arithmetic, an
        element read inside a loop nest, an argument of a function that does the same with it.
        A host-level read (`obj.f[0]` may be a view), a select's branch, a reshape or a slice
        (views) would share the tensor."""
        from phc.ir.simplify import children
        if e == target:
            return False
        match e:
            case n.Dim():
                return True
            case n.Bin(_, a, b):
                return all(x == target or self.computed_with(x, target, in_nest) for x in (a, b))
            case n.Un(_, a):
                return a == target or self.computed_with(a, target, in_nest)
            case n.Load(t, index) if t == target:
                return in_nest and all(self.computed_with(i, target, in_nest) for i in index)
            case n.Call(func, args, obj) if target in args:
                callee = self._callee(func, obj)
                if callee is None:
                    return False            # a builtin could return its argument as it is
                for p, a in zip(callee.params, args):
                    if a == target and not self.body_computes_with(callee, n.Sym(p.name)):
                        return False
                return all(a == target or self.computed_with(a, target, in_nest) for a in args)
            case n.Select(_, a, b) if target in (a, b):
                return False
            case n.Reshape(v, _) if v == target:
                return False
            case n.Slice(t, _, _) | n.Subscript(t, _) if t == target:
                return False
            case n.Tabulate() | n.Reduce():
                return all(self.computed_with(c, target, True) for c in children(e))
        return all(self.computed_with(c, target, in_nest) for c in children(e))

    def _callee(self, func: str, obj):
        if obj is None:
            fs = [f for f in self.module.functions if f.name == func]
        elif obj == n.Sym("this"):
            fs = [m for m in self.cls.methods if m.name == func]
        else:
            fs = []
        return fs[0] if len(fs) == 1 else None
