"""The text form of the affine IR (`phc ir FILE --stage affine`): stable and diff-friendly.

    func conv2d(input: f32[H, W], kernel: f32[K, K], bias: f32) -> f32[m, n]
      %results = tabulate
        for i in 0 .. dim(input, 0) - dim(kernel, 0) + 1  parallel
          for j in 0 .. dim(input, 1) - dim(kernel, 1) + 1  parallel
            %r0 = reduce add over ki in 0 .. dim(kernel, 0), kj in 0 .. dim(kernel, 1)
                    input[i + ki, j + kj] * kernel[ki, kj]
            %results[i, j] = %r0 + bias
      return %results
"""
from __future__ import annotations

from phc.ir import nodes as n

_PREC = {"or": 1, "and": 2, "<": 4, ">": 4, "<=": 4, ">=": 4, "==": 4, "!=": 4,
         "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "@": 6, "**": 8}


def format_module(module: n.Module, only: str | None = None) -> str:
    """The whole module, or with `only`, the functions and methods of that name."""
    parts = [format_function(f) for f in _all_functions(module) if only in (None, f.name)]
    if only is None or only == "main":
        parts.append(format_function(module.main))
    return "\n\n".join(parts) + "\n"


def _all_functions(module: n.Module):
    yield from module.functions
    for cls in module.classes:
        yield from cls.methods


def format_function(f: n.Function) -> str:
    params = ", ".join(f"{p.name}: {p.type}" for p in f.params)
    owner = f"{f.owner}." if f.owner else ""
    note = "  # inlined into its callers" if f.inlined else ""
    lines = [f"func {owner}{f.name}({params}) -> {f.ret}{note}"]
    lines += _stmts(f.body, 1)
    return "\n".join(lines)


def _stmts(stmts, depth: int) -> list[str]:
    out: list[str] = []
    for s in stmts:
        out += _stmt(s, depth)
    return out


def _stmt(s: n.Stmt, depth: int) -> list[str]:
    pad = "  " * depth
    match s:
        case n.Assign(name, value) if isinstance(value, n.Tabulate):
            return _tabulate(name, value, depth, s.nograd, _leaf_note(s))
        case n.Assign(name, value):
            notes = ["no grad"] * s.nograd + [_leaf_note(s)] * bool(_leaf_note(s))
            return _with_reduces(f"%{name} = ", value, depth, f"  # {'; '.join(notes)}" if notes else "")
        case n.Store(tensor, index, value):
            return _with_reduces(f"{expr(tensor)}[{_list(index)}] = ", value, depth)
        case n.SetField(obj, name, value):
            return _with_reduces(f"{expr(obj)}.{name} = ", value, depth)
        case n.Loop(axis, body, mark):
            notes = [x for x in (s.note, "no grad" if s.nograd else "") if x]
            note = f"  # {'; '.join(notes)}" if notes else ""
            return [f"{pad}for {_axis(axis)} {mark.value}{note}"] + _stmts(body, depth + 1)
        case n.If(cond, body, orelse):
            lines = [f"{pad}if {expr(cond)}"] + _stmts(body, depth + 1)
            if orelse:
                lines += [f"{pad}else"] + _stmts(orelse, depth + 1)
            return lines
        case n.Return(value) if isinstance(value, n.Tabulate):
            return _tabulate("return", value, depth, False)
        case n.Return(value):
            return [f"{pad}return"] if value is None else _with_reduces("return ", value, depth)
        case n.Print(value):
            return [f"{pad}print {expr(value)}"]
        case n.Eval(value):
            return [f"{pad}{expr(value)}"]
        case n.Grads(targets, y, wrt):
            ts = ", ".join(f"%{t}" for t in targets)
            frees = "; frees the graph" if s.free_graph else ""
            return [f"{pad}{ts} = grad {expr(y)} wrt {_list(wrt)}  # one backward{frees}"]
    raise TypeError(f"unknown statement {s!r}")


def _leaf_note(s: n.Assign) -> str:
    """What a `grad` target's assignment does to its graph (analysis.mark_grad_leaves)."""
    if s.fresh_fields:
        return f"fresh leaves {', '.join(s.fresh_fields)}"
    if s.leaf:
        return ("fresh leaf" if s.leaf.startswith("fresh") else "tracked") + \
            (", copied for stores" if s.leaf.endswith("+stores") else "")
    return ""


def _with_reduces(head: str, value: n.Expr, depth: int, note: str = "") -> list[str]:
    """A statement whose value may contain reductions: each reduce gets its own lines."""
    pad = "  " * depth
    reduces: list[n.Reduce] = []
    text = expr(value, reduces)
    lines = []
    for k, r in enumerate(reduces):
        lines += _reduce_lines(f"%r{k}", r, depth)
    return lines + [f"{pad}{head}{text}{note}"]


def _reduce_lines(name: str, r: n.Reduce, depth: int) -> list[str]:
    pad = "  " * depth
    inner: list[n.Reduce] = []
    body = expr(r.body, inner)
    lines = []
    for k, sub in enumerate(inner):
        lines += _reduce_lines(f"{name}.{k}", sub, depth)
    axes = ", ".join(_axis(a) for a in r.axes)
    lines.append(f"{pad}{name} = reduce {r.op.value} over {axes}")
    lines.append(f"{pad}{' ' * (len(name) + 3)}  {body}")
    return lines


def _tabulate(name: str, t: n.Tabulate, depth: int, nograd: bool, leaf: str = "") -> list[str]:
    pad = "  " * depth
    head = "return tabulate" if name == "return" else f"%{name} = tabulate"
    notes = ["no grad"] * nograd + [leaf] * bool(leaf)
    lines = [f"{pad}{head}{'  # ' + '; '.join(notes) if notes else ''}"]
    for k, a in enumerate(t.axes):
        lines.append(f"{'  ' * (depth + 1 + k)}for {_axis(a)}  parallel")
    idx = ", ".join(a.var for a in t.axes)
    target = "yield " if name == "return" else f"%{name}"
    lines += _with_reduces(f"{target}[{idx}] = ", t.body, depth + 1 + len(t.axes))
    return lines


def _axis(a: n.Axis) -> str:
    return f"{a.var} in {expr(a.lo)} .. {expr(a.hi)}"


def _list(items) -> str:
    return ", ".join(expr(i) for i in items)


def expr(e: n.Expr, reduces: list | None = None, prec: int = 0) -> str:
    """One expression on one line. With `reduces`, reductions print as `%rK` names and are
    appended to the list (so the caller prints them above); without, they print inline."""
    match e:
        case n.Const(value, dtype):
            if dtype is n.DType.F32 and isinstance(value, int) and not isinstance(value, bool):
                return repr(float(value))
            return repr(value)
        case n.Sym(name):
            return name
        case n.Dim(value, axis):
            return f"dim({expr(value, reduces)}, {axis})"
        case n.Load(tensor, index):
            return f"{expr(tensor, reduces, 9)}[{', '.join(expr(i, reduces) for i in index)}]"
        case n.Item(value, index):
            return f"{expr(value, reduces, 9)}[{index}]"
        case n.Slice(tensor, lo, hi):
            lo_s = "" if lo is None else expr(lo, reduces)
            hi_s = "" if hi is None else expr(hi, reduces)
            return f"{expr(tensor, reduces, 9)}[{lo_s}:{hi_s}]"
        case n.Range(lo, hi, step):
            parts = ["" if x is None else expr(x, reduces) for x in (lo, hi)]
            return ":".join(parts + ([expr(step, reduces)] if step is not None else []))
        case n.Subscript(tensor, parts):
            return f"{expr(tensor, reduces, 9)}[{', '.join(expr(p, reduces) for p in parts)}]"
        case n.Bin(op, a, b) if op in ("min", "max"):
            return f"{op}({expr(a, reduces)}, {expr(b, reduces)})"
        case n.Bin(op, a, b):
            p = _PREC[op]
            right_p = p if op == "**" else p + 1
            left_p = p + 1 if op == "**" else p
            left = expr(a, reduces, left_p)
            if op == "**" and isinstance(a, n.Const) and isinstance(a.value, (int, float)) \
                    and not isinstance(a.value, bool) and a.value < 0:
                left = f"({left})"      # `(-0.75) ** 2`: a negative base reads as it computes
            text = f"{left} {op} {expr(b, reduces, right_p)}"
            return f"({text})" if p < prec else text
        case n.Un("neg", a):
            text = f"-{expr(a, reduces, 7)}"
            return f"({text})" if prec > 7 else text
        case n.Un("not", a):
            return f"not {expr(a, reduces, 3)}"
        case n.Un(op, a):
            return f"{op}({expr(a, reduces)})"
        case n.Select(cond, a, b):
            return f"select({expr(cond, reduces)}, {expr(a, reduces)}, {expr(b, reduces)})"
        case n.Reduce(op, axes, body):
            if reduces is not None:
                reduces.append(e)
                return f"%r{len(reduces) - 1}"
            return f"reduce {op.value} over {', '.join(_axis(a) for a in axes)} ({expr(body)})"
        case n.Tabulate(axes, body):
            return f"[{expr(body)} for {', '.join(_axis(a) for a in axes)}]"
        case n.Reshape(value, shape):
            return f"reshape({expr(value, reduces)}, [{_list(shape)}])"
        case n.Full(shape, fill, dtype):
            return f"full({dtype.value}[{_list(shape)}], {expr(fill)})"
        case n.ArrayLit(items, dtype):
            return f"{dtype.value}[{', '.join(expr(i, reduces) for i in items)}]"
        case n.Sample(dist, params, shape):
            return f"sample {dist}({_list(params)}) [{_list(shape)}]"
        case n.Call(func, args, None):
            return f"{func}({', '.join(expr(a, reduces) for a in args)})"
        case n.Call(func, args, obj):
            return f"{expr(obj, reduces, 9)}.{func}({', '.join(expr(a, reduces) for a in args)})"
        case n.Attr(obj, name):
            return f"{expr(obj, reduces, 9)}.{name}"
    raise TypeError(f"unknown expression {e!r}")
