"""Performance cliffs that change the complexity class, checked by the memory a call allocates
(no timing assertions): the largest tensor storage any torch op creates during the call.

The stable softmax the examples use (`top = max_k z[b, k]`, then `exp(z[b, i] - top)`) sits in a
nest over (b, i); its max over k depends on b only. Expanding that reduction's body over i before
reducing made it an all-pairs computation: B·n·n elements (8 × 8000 took 4.2 GB and 7 s).
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from helpers import compile_module

ROOT = Path(__file__).resolve().parents[1]


class LargestStorage(TorchDispatchMode):
    """Records the largest storage (bytes) of any tensor an op returns (views share theirs)."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.bytes = max(self.bytes, t.untyped_storage().nbytes())
        return out


def _example_function(example: str, name: str):
    source = (ROOT / "examples" / f"{example}.phk").read_text(encoding="utf-8")
    assert re.search(rf"^def {name}\(", source, re.M)
    return getattr(compile_module(source, "torch", example), name)


def test_stable_softmax_of_a_batch_is_linear_in_its_size():
    softmax = _example_function("digits_convnet", "softmax")
    B, n = 8, 2000                      # all pairs would be 8 · 2000 · 2000 floats = 128 MB
    z = torch.randn(B, n, generator=torch.Generator().manual_seed(0)) * 5
    with LargestStorage() as seen:
        p = softmax(z)
    torch.testing.assert_close(p, torch.softmax(z, dim=1))
    assert seen.bytes <= 4 * B * n * 4, f"{seen.bytes} bytes for a {B}x{n} softmax"
