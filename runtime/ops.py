"""Small helpers that generated code calls: indices, counts, conversions, sampling, the device."""
from __future__ import annotations

import math
import os
from typing import Any

import torch

from .printing import element_symbol, type_of

_DEVICE_NAMES = ("cpu", "cuda", "auto")


# ---------------------------------------------------------------- the process-wide device

def _resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda`, `cuda:N`, or `auto` (cuda when available, else cpu)."""
    base = name.split(":", 1)[0]
    if base not in _DEVICE_NAMES or (":" in name and base != "cuda"):
        raise ValueError(f"unknown device {name!r}: expected one of cpu, cuda, cuda:N, auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but no CUDA GPU is available")
    return torch.device(name)


# A library import of a compiled module stays on the CPU unless told otherwise
# (`phc run` calls set_device("auto")); PHC_DEVICE overrides the default.
_device: torch.device | None = None


def device() -> torch.device:
    """The device generated code allocates on."""
    global _device
    if _device is None:
        _device = _resolve_device(os.environ.get("PHC_DEVICE", "cpu"))
    return _device


def set_device(name: str | torch.device) -> torch.device:
    """Set the process-wide device; returns the device chosen (useful with `auto`)."""
    global _device
    _device = _resolve_device(str(name))
    if _device.type == "cuda":
        _strict_float32()
    return _device


def _strict_float32() -> None:
    """float32 means float32 on a GPU too: no TF32 in matrix products and convolutions (whose
    10-bit mantissa would make a GPU run disagree with the reference semantics at 1e-3)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


_seed = 0


def manual_seed(n: int) -> None:
    """Seed every random source a program reaches: torch's global generators (CPU and every GPU:
    sampling), the shuffles (`shuffle_indices`), Python's and numpy's: `phc run --seed n`."""
    global _seed
    import random

    import numpy as np
    _seed = int(n)
    torch.manual_seed(_seed)
    random.seed(_seed)
    np.random.seed(_seed % 2**32)


def seed() -> int:
    """The seed of the run (0 unless set): shuffles mix it with their own."""
    return _seed


# ---------------------------------------------------------------- indices and counts

def to_index(v: Any) -> Any:
    """An index from a value that may be real: truncated toward zero, the way upstream's `int()`
    does. Python numbers give an int; real tensors become int64; integer tensors pass through."""
    if isinstance(v, torch.Tensor):
        if v.dtype == torch.bool or v.is_floating_point():
            return v.long()
        return v
    return int(v)


def nat_range(a: Any, b: Any = None) -> range:
    """`ℕ(n)` → 0 … n-1 and `ℕ(a, b)` → a … b-1, where a real bound counts whole steps only
    (`ℕ(2.7)` runs twice) and a bound ≤ the start gives no iterations."""
    if b is None:
        return range(_count(a))
    return range(_count(a), _count(b))


def _count(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        x = x.detach().reshape(()).item() if x.numel() == 1 else _not_a_count(x)
    return int(x) if isinstance(x, int) else math.trunc(x)


def _not_a_count(x: torch.Tensor):
    raise ValueError(f"a loop count must be one number, got a tensor of shape {list(x.shape)}")


def dim(x: Any, k: int) -> int:
    """The size of axis `k` of a tensor (or the length of a list when k == 0)."""
    if isinstance(x, torch.Tensor):
        return int(x.shape[k])
    if k == 0:
        return len(x)
    return dim(x[0], k - 1)


# ---------------------------------------------------------------- conversions

def real(x: Any) -> torch.Tensor:
    """A real tensor on the current device: Python numbers and (nested) lists become float32,
    integer and bool tensors are converted to float32, floating tensors keep their dtype and their
    autograd graph."""
    if isinstance(x, torch.Tensor):
        x = x if x.is_floating_point() else x.to(torch.float32)
        return x.to(device())
    if isinstance(x, (list, tuple)) and _holds_tensor(x):
        return torch.stack([real(v) for v in x])
    return torch.tensor(x, dtype=torch.float32, device=device())


def _holds_tensor(items: Any) -> bool:
    if isinstance(items, torch.Tensor):
        return True
    return isinstance(items, (list, tuple)) and any(_holds_tensor(v) for v in items)


# ---------------------------------------------------------------- sampling

def sample_normal(mu: Any, sigma: Any, *shape: Any, generator: torch.Generator | None = None) -> torch.Tensor:
    """Samples of 𝒩(mu, sigma): `shape` gives the sample shape (counts may be real, truncated);
    with no shape, the shape of mu and sigma broadcast together."""
    mu, sigma = real(mu), real(sigma)
    size = _sample_shape(shape, mu, sigma)
    noise = torch.randn(size, generator=generator, device=_gen_device(generator), dtype=mu.dtype)
    return mu + sigma * noise.to(mu.device)


def sample_uniform(lo: Any, hi: Any, *shape: Any, generator: torch.Generator | None = None) -> torch.Tensor:
    """Samples of U(lo, hi), shaped like sample_normal's."""
    lo, hi = real(lo), real(hi)
    size = _sample_shape(shape, lo, hi)
    u = torch.rand(size, generator=generator, device=_gen_device(generator), dtype=lo.dtype)
    return lo + (hi - lo) * u.to(lo.device)


def _sample_shape(shape: tuple, a: torch.Tensor, b: torch.Tensor) -> tuple[int, ...]:
    if shape:
        return tuple(_count(n) for n in shape)
    return tuple(torch.broadcast_shapes(a.shape, b.shape))


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else device()


# ---------------------------------------------------------------- model summary

def summary(obj: Any) -> None:
    """Print a table of a generated class instance's fields (name, type, count) and the total
    number of numbers in it, like Keras' `model.summary()`."""
    print(format_summary(obj))


def format_summary(obj: Any) -> str:
    rows = list(_field_rows(obj, ""))
    total = sum(count for _, _, count in rows)
    name_w = max([len("field"), len("total")] + [len(n) for n, _, _ in rows])
    type_w = max([len("type")] + [len(t) for _, t, _ in rows])
    count_w = max(len("count"), len(f"{total:,}"))
    line = "─" * (name_w + type_w + count_w + 4)
    out = [type(obj).__name__, line, f"{'field':<{name_w}}  {'type':<{type_w}}  {'count':>{count_w}}", line]
    out += [f"{n:<{name_w}}  {t:<{type_w}}  {c:>{count_w},}" for n, t, c in rows]
    out += [line, f"{'total':<{name_w}}  {'':<{type_w}}  {total:>{count_w},}"]
    return "\n".join(out)


def _field_rows(obj: Any, prefix: str):
    """(dotted name, type, number count) per numeric field; nested instances are expanded."""
    for name in getattr(obj, "_fields", ()):
        value = getattr(obj, name)
        if hasattr(value, "_fields"):
            yield from _field_rows(value, f"{prefix}{name}.")
        elif isinstance(value, torch.Tensor):
            yield f"{prefix}{name}", _field_type(value), value.numel()
        elif isinstance(value, (int, float)):
            yield f"{prefix}{name}", type_of(value), 1


def _field_type(t: torch.Tensor) -> str:
    """Like the printed type, but a one-element vector keeps its shape: `ℝ[1]`, not `ℝ`."""
    symbol = element_symbol(t)
    return symbol if t.dim() == 0 else f"{symbol}[{','.join(map(str, t.shape))}]"
