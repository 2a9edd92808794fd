"""Elementwise math that generated code calls on tensors and Python numbers alike."""
from __future__ import annotations

import builtins as _builtins
import math

import torch

from . import nests  # noqa: F401  (generated code reaches it as `rt.nests`)


def _unary(torch_fn, math_fn):
    def fn(x):
        if isinstance(x, torch.Tensor):
            return torch_fn(x)
        return torch_fn(torch.tensor(_builtins.float(x))) if math_fn is None else math_fn(x)
    fn.__name__ = torch_fn.__name__
    return fn


exp = _unary(torch.exp, math.exp)
log = _unary(torch.log, math.log)
sin = _unary(torch.sin, math.sin)
cos = _unary(torch.cos, math.cos)
tan = _unary(torch.tan, math.tan)
tanh = _unary(torch.tanh, math.tanh)
sqrt = _unary(torch.sqrt, math.sqrt)
abs = _unary(torch.abs, _builtins.abs)
sigmoid = _unary(torch.sigmoid, None)


def maximum(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = _tensors(a, b)
        return torch.where(a > b, a, b)     # ties take b, like `if a > b: a else b`
    return a if a > b else b


def minimum(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = _tensors(a, b)
        return torch.where(a < b, a, b)
    return a if a < b else b


def _tensors(a, b):
    ref = a if isinstance(a, torch.Tensor) else b
    if not isinstance(a, torch.Tensor):
        a = torch.as_tensor(a, dtype=ref.dtype, device=ref.device)
    if not isinstance(b, torch.Tensor):
        b = torch.as_tensor(b, dtype=ref.dtype, device=ref.device)
    return a, b


def floor_int(x) -> int:
    """`ℕ(x)` with a real x: floor(x) as a Python int (a count or a shape)."""
    if isinstance(x, torch.Tensor):
        x = x.item()
    return _builtins.int(math.floor(x))


def full(sizes, value, dtype=torch.float32):
    from .ops import device
    if isinstance(value, torch.Tensor):
        return value.to(dtype).expand(*sizes).clone()
    return torch.full(tuple(sizes), value, dtype=dtype, device=device())


def tensor(data, dtype=torch.float32):
    from .ops import device
    return torch.tensor(data, dtype=dtype, device=device())


def stack(items):
    from .ops import device
    return torch.stack([torch.as_tensor(i, dtype=torch.float32, device=device()) for i in items])


def value(x):
    """A class field that no `grad` differentiates: numbers become float32 tensors."""
    if isinstance(x, (_builtins.int, _builtins.float)) and not isinstance(x, bool):
        from .ops import device
        return torch.tensor(_builtins.float(x), device=device())
    return x


def host_value(x):
    """A value the lowering marked to be computed on the host, point by point (a sub-tensor
    body that is not elementwise): the identity; the emitter cannot vectorise the call."""
    return x


def fused_softmax(x):
    """The softmax along axis 0, evaluated stably: phc fuses `e = [exp(x[i]) for i]; t = Σ_i e[i];
    [e[i] / t for i]` into this, and for a matrix x (rows x[i]) that normalises each column."""
    return torch.softmax(x, dim=0)


# ---------------------------------------------------------------- builtins that stay calls

def zeros(*shape):
    from .ops import device
    return torch.zeros(tuple(floor_int(d) for d in shape), device=device())


def ones(*shape):
    from .ops import device
    return torch.ones(tuple(floor_int(d) for d in shape), device=device())


def _t(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float32)


def sum(x):
    return _t(x).sum()


def argmax(x):
    return _t(x).argmax()


def max(x, y=None):
    return _t(x).max() if y is None else maximum(x, y)


def min(x, y=None):
    return _t(x).min() if y is None else minimum(x, y)


def float(x):
    return _t(x).float() if isinstance(x, torch.Tensor) else _builtins.float(x)


def int(x):
    return x.long() if isinstance(x, torch.Tensor) else _builtins.int(x)


def print(*values):
    """`print(a, b, …)`: one line, each value as physika_print shows it, separated by spaces."""
    from .printing import format_value, notify
    _builtins.print(*(format_value(v) for v in values))
    notify(values)
