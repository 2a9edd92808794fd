"""Kernel specs: what an idiom matcher found, with the parameters a template is rendered with.

A spec is all a template needs. Its `name` says what it computes (plan text, golden files); its
`symbol`, `_phc_<name>`, is the Python name of the wrapper function that the rendered source
defines (every name phc generates starts with `_phc`, which user names never do, see
`phc.emit.module.Names`), so two nests with the same parameters share one kernel.
Canonical layouts (the generated glue reshapes the program's tensors into them):
  conv2d  x[B, C, H, W], w[O, C, K, K], b[O]  -> [B, O, OH, OW]
  pool2d  x[B, C, H, W]                       -> [B, C, OH, OW]
  linear  x[B, N], w[M, N], b[M]              -> [B, M]
"""
from __future__ import annotations

from dataclasses import dataclass

SYMBOL_PREFIX = "_phc_"


class _Named:
    __slots__ = ()

    @property
    def symbol(self) -> str:
        """The wrapper's Python name in generated code."""
        return SYMBOL_PREFIX + self.name


@dataclass(frozen=True, slots=True)
class Conv2dSpec(_Named):
    stride: int = 1
    padding: int = 0
    bias: bool = True

    @property
    def name(self) -> str:
        return f"conv2d_s{self.stride}_p{self.padding}{'_b' if self.bias else ''}"


@dataclass(frozen=True, slots=True)
class Pool2dSpec(_Named):
    kind: str = "max"          # max | min | avg
    k: int = 2
    stride: int = 2

    @property
    def name(self) -> str:
        return f"{self.kind}pool2d_k{self.k}_s{self.stride}"


@dataclass(frozen=True, slots=True)
class LinearSpec(_Named):
    bias: bool = True

    @property
    def name(self) -> str:
        return f"linear{'_b' if self.bias else ''}"


KernelSpec = Conv2dSpec | Pool2dSpec | LinearSpec

