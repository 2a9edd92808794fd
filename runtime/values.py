"""Values of the whole language (issue 10) that generated code builds: complex numbers and
arrays, the list of an instance's learnable fields, several values unpacked at once."""
from __future__ import annotations

import builtins as _builtins
from typing import Any

import torch

from .ops import device


def as_complex(v: Any) -> Any:
    """`v` where ℂ is declared: a number becomes a complex64 0-d tensor; a tensor is kept as
    it is, with its graph (as upstream: `def f(z: ℂ): ℂ: return abs(z)` returns the real
    modulus, which `grad` can then differentiate)."""
    if isinstance(v, torch.Tensor):
        return v
    if isinstance(v, (_builtins.int, _builtins.float, _builtins.complex)):
        return torch.tensor(_builtins.complex(v), dtype=torch.complex64, device=device())
    return v


def complex_array(items: list) -> torch.Tensor:
    """An array literal of kind ℂ: numbers and tensors alike become one complex64 tensor."""
    if not items:
        return torch.zeros(0, dtype=torch.complex64, device=device())
    parts = [complex_array(i) if isinstance(i, list) else as_complex(i) for i in items]
    return torch.stack([p.to(torch.complex64) if not p.is_complex() else p for p in parts])


def learnable_params(obj: Any, names: tuple[str, ...]) -> list:
    """`obj.learnable_params`: the values of the named fields (the class's learnable ones)."""
    return [getattr(obj, n) for n in names]


def sgd_update(obj: Any, names: tuple[str, ...], lr: Any, grads: list) -> None:
    """`obj.update(lr, grads)`: each learnable field becomes `p - lr * g`, a fresh leaf, as a
    field assignment makes it (never in place: a field may share storage with a constant)."""
    from .autograd import leaf
    for name, g in zip(names, grads):
        p = getattr(obj, name)
        if g is not None:
            with torch.no_grad():
                new = p - lr * g
            setattr(obj, name, leaf(new) if isinstance(p, torch.Tensor) and p.requires_grad else new)


def unpack(value: Any, n: int) -> list:
    """`a, b = value`: the n items of a tuple, or the n elements (copies) of a tensor's first
    axis; another count is an error, as in Python."""
    items = list(value.unbind(0)) if isinstance(value, torch.Tensor) else list(value)
    if len(items) != n:
        raise ValueError(f"{n} names but the value holds {len(items)} items")
    return [i.clone() if isinstance(i, torch.Tensor) and isinstance(value, torch.Tensor) else i
            for i in items]


__all__ = ["as_complex", "complex_array", "learnable_params", "sgd_update", "unpack"]
