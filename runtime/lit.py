"""What level-0 modules (`--opt 0`, the literal reference semantics) call besides the runtime's
printing, data sets and sampling: value kinds, division, element reads, comprehensions, `grad`.

The rules (docs/language.md, "Level 0: the reference semantics"):

- a real value is a float32 torch tensor (0-d for a number); an integer is a Python int or an
  int64 tensor; a comparison gives a bool (or a bool tensor);
- `as_real` converts where the declared type says ℝ, keeping a real tensor (and its graph) as is;
- `/` is true division in float32; an element read is a value (a copy), a row read a view;
- `grad(y, x)` is dy/dx at the value bound to x, zeros where y does not depend on x.
"""
from __future__ import annotations

import builtins as _builtins
from typing import Any

import torch

from .autograd import grads as _grads
from .autograd import leaf as _leaf
from .autograd import partial_point
from .ops import device

MISSING = object()      # a constructor argument left out: the field's declared default applies

_consts: dict[tuple, torch.Tensor] = {}


def r(x: float) -> torch.Tensor:
    """A real literal: one float32 0-d tensor per value and device (never written in place)."""
    key = (float(x), device())
    t = _consts.get(key)
    if t is None:
        t = _consts[key] = torch.tensor(float(x), dtype=torch.float32, device=device())
    return t


def as_real(v: Any) -> Any:
    """`v` as the declared ℝ: numbers and integer or bool tensors become float32; a real tensor
    is returned as it is (with its graph); anything else (an instance, a list) is unchanged.
    A complex tensor is kept too: ℝ ⊂ ℂ, and the checker warns where a complex value goes
    where ℝ is declared (`a / b` of complex values stays complex)."""
    if isinstance(v, torch.Tensor):
        return v if v.is_floating_point() or v.is_complex() else v.to(torch.float32)
    if isinstance(v, (_builtins.bool, _builtins.int, _builtins.float)):
        return torch.tensor(_builtins.float(v), dtype=torch.float32, device=device())
    return v


def div(a: Any, b: Any) -> torch.Tensor:
    """`a / b`: real division, in float32 whatever the operands' kinds."""
    return as_real(a) / as_real(b)


def pow(a: Any, b: Any) -> Any:  # noqa: A001 — the name of the operator it implements
    """`a ** b`; a negative integer power of an integer is real (as in Python, but in float32)."""
    if _is_int(a) and _is_int(b) and b < 0:
        return as_real(a) ** b
    return a ** b


def matmul(a: Any, b: Any) -> torch.Tensor:
    """`a @ b`; an integer operand next to a real one is converted."""
    if a.dtype != b.dtype:
        a, b = as_real(a), as_real(b)
    return a @ b


def _is_int(x: Any) -> bool:
    return isinstance(x, _builtins.int) and not isinstance(x, _builtins.bool)


def _one(x: Any) -> bool:
    return not isinstance(x, torch.Tensor) or x.numel() == 1


def and_(a: Any, b: Any) -> Any:
    """`a and b`: of two truth values, or elementwise where either is a tensor of several."""
    if _one(a) and _one(b):
        return _builtins.bool(a) and _builtins.bool(b)
    return torch.logical_and(torch.as_tensor(a), torch.as_tensor(b))


def or_(a: Any, b: Any) -> Any:
    if _one(a) and _one(b):
        return _builtins.bool(a) or _builtins.bool(b)
    return torch.logical_or(torch.as_tensor(a), torch.as_tensor(b))


def not_(a: Any) -> Any:
    if _one(a):
        return not _builtins.bool(a)
    return torch.logical_not(a)


def element(v: Any) -> Any:
    """An indexed read (an element, a row, a slice) that gets bound (to a name, a parameter, a
    field, a return value): a value, not a view, so a later store into the array does not
    change it (nor a store into it the array)."""
    return v.clone() if isinstance(v, torch.Tensor) else v


def getitem(t: Any, subs: tuple) -> Any:
    """`t[subs]` with Python's slicing, negative steps included (torch has none): axis by axis."""
    if not isinstance(t, torch.Tensor):
        return t[subs]
    axis = 0
    for s in subs:
        if isinstance(s, slice) and s.step is not None and s.step < 0:
            picked = range(*s.indices(t.shape[axis]))
            t = t.index_select(axis, torch.tensor(list(picked), dtype=torch.long, device=t.device))
            axis += 1
        elif isinstance(s, slice):
            t = t[(slice(None),) * axis + (s,)]
            axis += 1
        else:
            t = t[(slice(None),) * axis + (s,)]
            axis += 0 if isinstance(s, _builtins.int) or (isinstance(s, torch.Tensor) and s.dim() == 0) else s.dim()
    return t


def array(items: list, real: bool) -> Any:
    """An array literal: numbers become one tensor of the literal's kind; items that are tensors
    (computed values) are stacked, keeping their graphs."""
    if not _holds_tensor(items):
        dtype = torch.float32 if real or _has_float(items) else torch.long
        return torch.tensor(items, dtype=dtype, device=device())
    return _stack([array(i, real) if isinstance(i, list) else i for i in items], real)


def tabulate(indices, body, real: bool, rows=None) -> torch.Tensor:
    """A comprehension: `body(i)` for every i, stacked into a new tensor. `rows()`: the shape
    of one row (nested comprehensions' lengths), for an empty range."""
    return _stack([body(i) for i in indices], real, rows)


def _stack(items: list, real: bool, rows=None) -> torch.Tensor:
    if not items:
        shape = (0, *rows()) if rows is not None else (0,)
        return torch.zeros(shape, dtype=torch.float32 if real else torch.long, device=device())
    ts = [as_real(v) if real else _tensor(v) for v in items]
    if not real and any(t.is_floating_point() for t in ts):
        ts = [as_real(t) for t in ts]
    return torch.stack(ts)


def _tensor(v: Any) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v
    dtype = torch.float32 if isinstance(v, _builtins.float) else (torch.bool if isinstance(v, _builtins.bool) else torch.long)
    return torch.tensor(v, dtype=dtype, device=device())


def _holds_tensor(items: Any) -> bool:
    if isinstance(items, torch.Tensor):
        return True
    return isinstance(items, list) and any(_holds_tensor(v) for v in items)


def _has_float(items: Any) -> bool:
    if isinstance(items, list):
        return any(_has_float(v) for v in items)
    return isinstance(items, _builtins.float)


def zeros(shape: list, real: bool) -> torch.Tensor:
    """A declaration without a value: zeros of the declared shape and kind."""
    from .elementwise import floor_int
    dtype = torch.float32 if real else torch.long
    return torch.zeros(tuple(floor_int(d) for d in shape), dtype=dtype, device=device())


def count(x: Any) -> int:
    """A size used as a shape: `ℕ(x)`'s whole steps."""
    from .elementwise import floor_int
    return floor_int(x)


# ---------------------------------------------------------------- gradients

def leafy(v: Any, copy: bool = False) -> Any:
    """A value bound to a name that some `grad` differentiates with respect to: kept as it is
    when it already takes part in a graph (`grad` w.r.t. an intermediate), else a fresh leaf
    that requires grad. `copy`: the name is also stored into, so it must not be a leaf."""
    if isinstance(v, torch.Tensor) and v.requires_grad:
        return v
    if not (isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex())) \
            and not isinstance(v, (_builtins.float, _builtins.complex)):
        return v        # an integer has no derivative (grad gives zeros); it keeps its kind
    t = _leaf(v)
    return t.clone() if copy else t


def field_leaf(v: Any) -> Any:
    """A class field that some `grad` differentiates, as it is bound (construction, field
    assignment): like a name, kept as it is when it takes part in a graph (a constructor keeps
    its arguments' graphs), else a fresh leaf; an instance or a list held by the field is
    unchanged. A field is a variable of its own: a value in a graph gets a new node of it, so
    `grad(y, obj.f)` is the derivative through the field's uses only."""
    if isinstance(v, torch.Tensor) and v.requires_grad:
        return v.view_as(v)
    return leafy(v)


def grad_at(f, x: Any, create_graph: bool = False) -> torch.Tensor:
    """`grad(f(…, x, …), x)`: f's partial derivative in the arguments written `x`, which get a
    new variable holding x's value (`partial_point`); `f` is the call with them as its parameter."""
    d = partial_point(x)
    return grad(f(d), d, create_graph=create_graph)


def grad(y: Any, x: Any, create_graph: bool = False) -> torch.Tensor:
    """dy/dx at the value bound to x (a Jacobian for a y of several elements); zeros shaped like
    x where y does not depend on x. The graph of y is kept for later `grad`s of it. A list x
    (`obj.learnable_params`) gives the list of derivatives."""
    if isinstance(x, (list, tuple)):
        return list(_grads(y, tuple(x), retain_graph=True, create_graph=create_graph))
    return _grads(y, (x,), retain_graph=True, create_graph=create_graph)[0]
