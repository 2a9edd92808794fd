"""Run-time guards of a batched evaluation loop (phc/ir/batch.py): where one fails, the loop
runs as it was written, so a guard only decides the speed, never the value."""
from __future__ import annotations

import torch

from .elementwise import floor_int

_EXACT_LIMIT = 2 ** 24          # every integer up to it is a float32


def batch_runs(lo, hi) -> bool:
    """The loop `for i in lo .. hi` runs at least once."""
    return floor_int(lo) < floor_int(hi)


def batch_rows(t, rank: int, lo, hi) -> bool:
    """`t[i]` for i in lo .. hi reads rows of a tensor whose rows have `rank` axes (-1: any),
    none out of range (a negative i would count from the end)."""
    if not isinstance(t, torch.Tensor) or t.dim() == 0 or (rank >= 0 and t.dim() != rank + 1):
        return False
    return 0 <= floor_int(lo) and floor_int(hi) <= t.shape[0]


def batch_scalar(v) -> bool:
    """A loop-invariant value the batched body uses as a number is one."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) or \
        isinstance(v, torch.Tensor) and v.dim() == 0


def batch_count_exact(acc, most) -> bool:
    """`acc` (a number, or a 0-d tensor, holding an integer) can grow by up to `most` with every
    partial sum exact in float32: then adding the count at once is adding k at a time."""
    if isinstance(acc, torch.Tensor):
        if acc.dim() != 0 or acc.dtype == torch.bool or acc.is_complex():
            return False
        acc = acc.item()
    if isinstance(acc, bool) or not isinstance(acc, (int, float)):
        return False
    return float(acc).is_integer() and abs(acc) + floor_int(most) <= _EXACT_LIMIT


def batch_add_count(acc, count):
    """`acc + count` of the kind `acc + k` has, k a Python number, for a count summed as a
    0-d tensor: a Python number stays one (the count's value is an exact integer)."""
    if isinstance(acc, torch.Tensor):
        return acc + count
    return acc + (count.item() if isinstance(count, torch.Tensor) else count)
