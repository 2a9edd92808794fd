"""`grad` and the leaf discipline generated code relies on.

- `grad(y, x)` never fails for lack of a dependence: where `y` does not depend on `x` the
  derivative is zeros shaped like `x` (upstream raises).
- `grads(y, (x1, x2, …))` answers several `grad`s of the same value with one backward pass.
- A value that some `grad` differentiates is `track`ed: kept as it is when it already has a graph
  (so `grad` with respect to an intermediate sees everything it was computed from), made a leaf
  when it has none. Where the compiler proves that nothing differentiates through it, a value is
  cut into a fresh `leaf` instead (an instance built from updated tensors: `fresh_fields`), so no
  graph grows across training steps.

The results carry no graph unless `create_graph=True` (the compiler asks for it only where a
derivative is itself differentiated). `retain_graph` defaults to True so that a later `grad` of the
same value still works; the compiler passes False at the last use to free the graph at once.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from .ops import device


def grad(y: Any, x: Any, *, retain_graph: bool = True, create_graph: bool = False) -> torch.Tensor:
    """dy/dx: shaped like x for a one-element y, else the Jacobian of shape y.shape + x.shape.
    A list x (an instance's `learnable_params`) gives the list of derivatives."""
    if isinstance(x, (list, tuple)):
        return list(grads(y, tuple(x), retain_graph=retain_graph, create_graph=create_graph))
    return grads(y, (x,), retain_graph=retain_graph, create_graph=create_graph)[0]


def grad_create_graph(y: Any, x: Any) -> torch.Tensor:
    """dy/dx that keeps its own graph: some `grad` differentiates it again."""
    return grads(y, (x,), create_graph=True)[0]


def grads(y: Any, xs: Sequence[Any], *, retain_graph: bool = True,
          create_graph: bool = False) -> tuple[torch.Tensor, ...]:
    """(dy/dx for x in xs) from one backward pass; an x that y does not reach gets zeros.
    A function `y` (Physika's `grad(f, x)`) is differentiated at each x: f(x)'s derivative."""
    xs = tuple(xs)
    if isinstance(y, torch.Tensor) and y.dim() == 0 and y.requires_grad and not create_graph \
            and all(isinstance(x, torch.Tensor) and x.requires_grad for x in xs):
        # the training step's case (a scalar loss, every target live): one backward, no bookkeeping
        found = torch.autograd.grad(y, xs, retain_graph=retain_graph, allow_unused=True)
        return tuple(_zeros(y, x) if g is None else g for x, g in zip(xs, found))
    if callable(y) and not isinstance(y, torch.Tensor):
        return tuple(grad_of_function(y, x, create_graph=create_graph) for x in xs)
    live = [i for i, x in enumerate(xs) if _differentiable(x)]
    if not (isinstance(y, torch.Tensor) and y.requires_grad and live):
        return tuple(_zeros(y, x) for x in xs)
    found = _backward(y, [xs[i] for i in live], retain_graph, create_graph)
    out = [None] * len(xs)
    for i, g in zip(live, found):
        out[i] = g
    return tuple(_zeros(y, x) if g is None else g for x, g in zip(xs, out))


def grad_of_function(f: Any, x: Any, *, create_graph: bool = False) -> torch.Tensor:
    """d f(x) / dx at `x`: f is called on a fresh leaf holding x's value, so the derivative
    is f's own, whatever graph x came from."""
    at = leaf(x)
    with torch.enable_grad():
        y = f(at)
        return grads(y, (at,), retain_graph=False, create_graph=create_graph)[0]


def _backward(y: torch.Tensor, xs: list[torch.Tensor], retain: bool, create: bool) -> list:
    if y.numel() == 1:
        return list(torch.autograd.grad(y if y.dim() == 0 else y.reshape(()), xs, retain_graph=retain or create,
                                        create_graph=create, allow_unused=True))
    return _jacobians(y, xs, retain, create)


def _jacobians(y: torch.Tensor, xs: list[torch.Tensor], retain: bool, create: bool) -> list:
    """One backward per element of y: row k of each Jacobian is d y.flat[k] / dx."""
    flat = y.reshape(-1)
    rows: list[list] = [[] for _ in xs]
    for k in range(flat.numel()):
        keep = retain or create or k + 1 < flat.numel()
        found = torch.autograd.grad(flat[k], xs, retain_graph=keep, create_graph=create, allow_unused=True)
        for r, x, g in zip(rows, xs, found):
            r.append(torch.zeros_like(x) if g is None else g)
    return [torch.stack(r).reshape(y.shape + x.shape) for r, x in zip(rows, xs)]


def _differentiable(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.requires_grad


def _zeros(y: Any, x: Any) -> torch.Tensor:
    """The derivative of y with respect to something it does not depend on."""
    y_shape = tuple(y.shape) if isinstance(y, torch.Tensor) and y.numel() != 1 else ()
    if isinstance(x, torch.Tensor):
        dtype = x.dtype if x.is_floating_point() else torch.float32
        return torch.zeros(y_shape + tuple(x.shape), dtype=dtype, device=x.device)
    return torch.zeros(y_shape, dtype=torch.float32, device=device())


# ---------------------------------------------------------------- leaves

def leaf(t: Any) -> torch.Tensor:
    """A fresh leaf that requires grad: cut from whatever graph `t` came from. Shares storage with
    `t` (no copy); integers and Python numbers become float32 on the current device."""
    return as_variable(t).detach().requires_grad_(True)


def as_variable(t: Any) -> torch.Tensor:
    """t as a value something can be differentiated with respect to: a float (or complex) tensor;
    integers and Python numbers become float32 on the current device, tensors stay themselves."""
    if isinstance(t, complex):
        return torch.tensor(t, dtype=torch.complex64, device=device())
    if not isinstance(t, torch.Tensor):
        return torch.tensor(float(t), dtype=torch.float32, device=device())
    if not (t.is_floating_point() or t.is_complex()):
        return t.to(torch.float32)
    return t


def partial_point(t: Any) -> Any:
    """The variable of `grad(f(…, x, …), x)`: a new variable holding x's value, with respect to
    which f's result is differentiated — so the other arguments are held at their values even
    where they were computed from x (f's partial derivative). A node of x's graph when x has one
    (a derivative of the result can still reach x: second derivatives), else a fresh leaf;
    integers stay as they are (no derivative: `grad` gives zeros)."""
    if isinstance(t, torch.Tensor):
        if t.requires_grad:
            return t.view_as(t)
        return leaf(t) if (t.is_floating_point() or t.is_complex()) else t
    if isinstance(t, (bool, int)):
        return t
    return leaf(t)


def track(t: Any) -> Any:
    """`t` where `grad` can differentiate with respect to it: t itself when it is in a graph
    already, else a leaf. Integers stay as they are (they have no derivative: `grad` gives zeros)."""
    if isinstance(t, torch.Tensor):
        if t.requires_grad or not (t.is_floating_point() or t.is_complex()):
            return t
        return t.detach().requires_grad_(True)
    if isinstance(t, float):
        return torch.tensor(t, dtype=torch.float32, device=device()).requires_grad_(True)
    return t


def track_field(t: Any) -> Any:
    """A tensor field that some `grad` differentiates: a variable of its own. A new node of t's
    graph when t has one (`grad(y, obj.f)` is then the derivative through the field's uses only,
    and `grad(y, t)` still reaches t through it), else a fresh leaf (track)."""
    if isinstance(t, torch.Tensor) and t.requires_grad:
        return t.view_as(t)
    return track(t)


def storable(t: Any) -> Any:
    """A new tracked tensor that the program then writes in place: a leaf cannot be written, so
    the copy in its graph is (`grad` differentiates with respect to that copy)."""
    if isinstance(t, torch.Tensor) and t.requires_grad and t.grad_fn is None:
        return t.clone()
    return t


def fresh_fields(obj: Any, names: Sequence[str]) -> Any:
    """The instance `obj` with these tensor fields cut into fresh leaves."""
    for name in names:
        setattr(obj, name, leaf(getattr(obj, name)))
    return obj


def nograd(t: Any) -> Any:
    """`t` without its graph, for values that never reach a `grad`."""
    return t.detach() if isinstance(t, torch.Tensor) else t
