"""Automatic reduction of a failing program: delta debugging over its lines.

`reduce(source, interesting)` returns a smaller program for which `interesting(text)` still holds
and that `phc check` still accepts. Three passes, repeated until none removes anything:

1. ddmin over top-level statements (a line at column 0 together with the lines indented under it:
   a whole `def`, `class`, loop or `if`);
2. ddmin over single lines (a removal that breaks the indentation fails `phc check` and is skipped);
3. unwrapping: a `for`/`if`/`else`/`elif` header is removed and its body dedented.

`failure_predicate(source, backend)` builds the usual `interesting`: the program fails the same way
as `source` does now: the same verdict; for a crash or traceback the same exception type; for a
wrong value the same printed types on the first line that differs.
"""
from __future__ import annotations

import re
import time
from typing import Callable

from phc.api import check_source


def valid(text: str) -> bool:
    return not any(d.is_error for d in check_source(text, "reduce.phk"))


def reduce(source: str, interesting: Callable[[str], bool], budget_s: float = 120.0) -> str:
    deadline = time.monotonic() + budget_s
    tried: dict[str, bool] = {}

    def test(lines: list[str]) -> bool:
        text = "".join(lines)
        if text not in tried:
            tried[text] = time.monotonic() < deadline and valid(text) and interesting(text)
        return tried[text]

    lines = source.splitlines(keepends=True)
    lines = [line if line.endswith("\n") else line + "\n" for line in lines]
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith("#")] \
        if test([line for line in lines if line.strip() and not line.lstrip().startswith("#")]) else lines
    while True:
        before = len(lines)
        blocks = ddmin(top_level_blocks(lines), lambda bs: test([line for b in bs for line in b]))
        lines = [line for b in blocks for line in b]
        lines = [line for [line] in ddmin([[line] for line in lines],
                                          lambda ls: test([line for [line] in ls]))]
        lines = unwrap(lines, test)
        if len(lines) >= before or time.monotonic() >= deadline:
            return "".join(lines)


def top_level_blocks(lines: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = []
    for line in lines:
        if blocks and (line[:1] in (" ", "\t") or re.match(r"(else|elif)\b", line)):
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def ddmin(units: list, test: Callable[[list], bool]) -> list:
    """Zeller's ddmin, complement-only: the smallest subsequence found for which `test` holds."""
    n = 2
    while len(units) >= 2:
        chunk = max(1, len(units) // n)
        subsets = [units[k:k + chunk] for k in range(0, len(units), chunk)]
        for k in range(len(subsets)):
            complement = [u for j, s in enumerate(subsets) if j != k for u in s]
            if complement and test(complement):
                units = complement
                n = max(n - 1, 2)
                break
        else:
            if chunk == 1:
                break
            n = min(len(units), n * 2)
    return units


HEADER = re.compile(r"(for\b.*|if\b.*|elif\b.*|else)\s*:\s*$")


def unwrap(lines: list[str], test: Callable[[list[str]], bool]) -> list[str]:
    k = 0
    while k < len(lines):
        line = lines[k]
        indent = len(line) - len(line.lstrip())
        if HEADER.match(line.strip()):
            end = k + 1
            while end < len(lines) and (not lines[end].strip() or
                                        len(lines[end]) - len(lines[end].lstrip()) > indent):
                end += 1
            body = [b[4:] if b.startswith(" " * (indent + 4)) else b for b in lines[k + 1:end]]
            candidate = lines[:k] + body + lines[end:]
            if test(candidate):
                lines = candidate
                continue
        k += 1
    return lines


def failure_predicate(source: str, backend: str = "torch", opt: int = 2, timeout: float = 30.0,
                      ref_opt=None) -> Callable[[str], bool]:
    """`interesting` for `reduce`: the same verdict, and for a crash, traceback or a failing
    reference the same exception type, as `source` has now."""
    from difftest import oracle
    want, ref, got = oracle.check(source, backend, opt, timeout, ref_opt=ref_opt)
    want_kind = _kind(want, ref, got)

    def interesting(text: str) -> bool:
        v, r, g = oracle.check(text, backend, opt, timeout, ref_opt=ref_opt)
        return v == want and _kind(v, r, g) == want_kind
    return interesting


def _kind(verdict: str, ref, got) -> str:
    if verdict.startswith("oracle-"):
        return ref.error_kind
    if verdict in ("crash", "traceback", "rejected", "timeout"):
        return got.error_kind
    if verdict == "wrong":
        return "wrong " + first_difference(ref.output, got.output)
    return verdict


def first_difference(want: str, got: str) -> str:
    """The types printed on the first line where two outputs differ (`ℝ[3] / ℕ[3]`, `- / None`):
    a reduction keeps them, so it cannot drift from one wrong value to another."""
    from difftest.oracle import same_output
    a, b = want.splitlines(), got.splitlines()
    for k in range(max(len(a), len(b))):
        x, y = (a[k] if k < len(a) else "-"), (b[k] if k < len(b) else "-")
        if not same_output(x, y):
            return f"{_type_of(x)} / {_type_of(y)}"
    return ""


def _type_of(line: str) -> str:
    return line.rsplit("∈", 1)[1].strip() if "∈" in line else line.strip()[:40]
