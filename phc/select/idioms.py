"""Idiom matchers over the affine IR: which nests compute a conv2d, a pooling or a linear map.

`plan_module` returns a `Plan`; nests it does not match stay on the universal (vectorised torch)
path. Matching reads the IR only — never names or source text.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from phc.ir import nodes as n


@dataclass(frozen=True)
class Match:
    function: str                     # qualified: `ConvNets.conv2d`
    target: str                       # the variable the nest assigns
    spec: object                      # phc.select.plan.KernelSpec
    args: dict = field(default_factory=dict)


@dataclass
class Plan:
    backend: str
    matches: dict[tuple[str, str], Match] = field(default_factory=dict)
    universal: list[tuple[str, str]] = field(default_factory=list)

    def lookup(self, function: str, target: str) -> Match | None:
        return self.matches.get((function, target))

    def text(self) -> str:
        lines = [f"kernel plan (backend: {self.backend})"]
        for (fn, target), m in sorted(self.matches.items()):
            lines.append(f"  {fn}: %{target} = {m.spec.name}  {m.spec}")
        for fn, target in self.universal:
            lines.append(f"  {fn}: %{target} stays on the universal path")
        return "\n".join(lines) + "\n"

    def triton_source(self) -> str:
        if not self.matches:
            return ""
        from phc.emit.triton_backend import render_ops
        return render_ops([m.spec for m in self.matches.values()])


def plan_module(module: n.Module, backend: str) -> Plan:
    plan = Plan(backend)
    for qual, f in _functions(module):
        for s in f.body:
            if isinstance(s, n.Assign) and isinstance(s.value, n.Tabulate):
                plan.universal.append((qual, s.name))
    return plan


def _functions(module: n.Module):
    for f in module.functions:
        yield f.name, f
    for c in module.classes:
        for m in c.methods:
            yield f"{c.name}.{m.name}", m
    yield "main", module.main
