"""Differential testing (tests/difftest): random valid programs must print at level 2 what they
print at level 0, the literal reference semantics, on the torch backend and on the Triton backend
under the interpreter. Plus tests of the generator, the oracle and the reducer themselves.

PHC_DIFF_TORCH / PHC_DIFF_TRITON change the number of programs (default 400 / 100). A failure names
its seeds; `python tests/difftest/campaign.py --seed S --count 1 --out DIR` writes the program and
its reduction.
"""
from __future__ import annotations

import re

import functools
import os

import pytest

from difftest import oracle
from difftest.generator import REQUIRED_FEATURES, generate, generate_program
from difftest.reduce import ddmin, first_difference, reduce, valid

TORCH_PROGRAMS = int(os.environ.get("PHC_DIFF_TORCH", "400"))
TRITON_PROGRAMS = int(os.environ.get("PHC_DIFF_TRITON", "100"))
GENERATOR_SEEDS = range(300)
program = functools.lru_cache(maxsize=None)(generate_program)     # seeds shared by several tests


def _campaign(seeds, backend: str) -> list[str]:
    failures = []
    for seed in seeds:
        text = program(seed).text
        v, ref, got = oracle.check(text, backend, 2, timeout=60.0, ref_opt=0)
        if v == "agree" and not ref.output.strip():
            failures.append(f"seed {seed}: prints nothing (a generator bug)")
        elif v == "wrong":
            failures.append(f"seed {seed}: wrong: first differing line prints "
                            f"{first_difference(ref.output, got.output)} (level 0 / level 2)")
        elif v != "agree":
            failures.append(f"seed {seed}: {v}: reference {ref.status} {ref.detail[:120]} | "
                            f"level 2 {got.status} {got.detail[:120]}")
    return failures


def test_level2_torch_agrees_with_level0():
    failures = _campaign(range(TORCH_PROGRAMS), "torch")
    assert not failures, f"{len(failures)} of {TORCH_PROGRAMS} programs disagree:\n" + "\n".join(failures[:15])


def test_level2_triton_agrees_with_level0():
    seeds = range(100_000, 100_000 + TRITON_PROGRAMS)
    failures = _campaign(seeds, "triton")
    assert not failures, f"{len(failures)} of {TRITON_PROGRAMS} programs disagree:\n" + "\n".join(failures[:15])


# ---------------------------------------------------------------- the generator


def test_generator_is_deterministic():
    for seed in (0, 1, 17, 4242):
        assert generate(seed) == generate(seed)
    assert len({generate(seed) for seed in range(20)}) == 20


def test_generated_programs_pass_check_and_print():
    rejected = snippets = 0
    for seed in GENERATOR_SEEDS:
        p = program(seed)
        assert valid(p.text), f"seed {seed} does not pass phc check:\n{p.text}"
        assert p.text.strip()
        rejected += p.rejected
        snippets += len(p.snippets) + p.rejected
    assert rejected <= 0.05 * snippets, f"{rejected} of {snippets} snippets rejected by phc check"


def test_every_construct_appears():
    seen: set[str] = set()
    for seed in GENERATOR_SEEDS:
        seen |= program(seed).features
    assert REQUIRED_FEATURES <= seen, f"never generated: {sorted(REQUIRED_FEATURES - seen)}"


def test_generated_values_are_distinct():
    """Inputs never tie (max/argmax gradients are unambiguous) and stay small."""
    import re
    for seed in range(50):
        for line in generate(seed).splitlines():
            if re.match(r"\w+: ℝ\[[^\]]*\] = \[", line):
                values = [float(v) for v in re.findall(r"-?\d+\.\d+|-?\d+", line.split("=", 1)[1])]
                assert len(values) == len(set(values)), line
                assert all(abs(v) <= 2 for v in values), line


# ---------------------------------------------------------------- the oracle


@pytest.mark.parametrize("source,status", [
    ("x: ℝ[2] = [1.0, 2.0]\nx * 2.0\n", "ok"),
    ("x: ℝ[2] = [1.0, 2.0]\ny: ℝ[3] = x\n", "compile-error"),
    ("x: ℝ[2] = [1.0, 2.0]\nk: ℕ = 5\nx[k]\n", "runtime-crash"),
    ("def f(n: ℕ): ℕ:\n    return f(n + 1)\nf(0)\n", "runtime-crash"),
])
def test_oracle_classifies(source, status):
    assert oracle.run(source, "torch", 2, timeout=60).status == status


def test_oracle_times_out():
    source = ("def step(t: ℝ): ℝ:\n    u = t\n    for k: ℕ(2):\n        u = u * 0.5 + t\n    return u\n"
              "t = 0.5\nfor i: ℕ(100000000):\n    t = step(t) * 0.5\nt\n")
    result = oracle.run(source, "torch", 0, timeout=1.0)      # level 0 runs every iteration
    assert result.status == "timeout"


def test_verdicts():
    ok = oracle.Result("ok", "1.0 ∈ ℝ\n")
    assert oracle.verdict(ok, oracle.Result("ok", "1.00001 ∈ ℝ\n")) == "agree"
    assert oracle.verdict(ok, oracle.Result("ok", "1.01 ∈ ℝ\n")) == "wrong"
    assert oracle.verdict(ok, oracle.Result("ok", "1 ∈ ℝ\n")) == "wrong"     # an integer, not a real
    assert oracle.verdict(ok, oracle.Result("runtime-crash", "", "IndexError: x")) == "crash"
    assert oracle.verdict(ok, oracle.Result("traceback", "", "EmitError: x")) == "traceback"
    assert oracle.verdict(oracle.Result("traceback"), ok) == "oracle-traceback"


# ---------------------------------------------------------------- the reducer


def test_ddmin_finds_a_minimal_subset():
    units = list(range(40))
    kept = ddmin(units, lambda us: {3, 17, 29} <= set(us))
    assert kept == [3, 17, 29]


def _prints_integer_tensor(output: str) -> bool:
    """Some line prints a tensor of integers: `[0, 1, 2] ∈ ℝ[3]` (no `.` in its numbers)."""
    return any(re.fullmatch(r"\[[-\d, \[\]]*\d[-\d, \[\]]*\] ∈ ℝ\[[\d,]+\]", line)
               for line in output.splitlines())


def test_reducer_keeps_the_failure_and_validity():
    """Reduce a generated program to what makes it print an integer tensor: the result still
    checks, still has the property, is smaller, and no single line can be removed."""
    seed = next(s for s in range(200) if _prints_integer_tensor(oracle.run(generate(s), "torch", 0).output))
    source = generate(seed)

    def interesting(text: str) -> bool:
        return _prints_integer_tensor(oracle.run(text, "torch", 0, timeout=30).output)
    reduced = reduce(source, interesting, budget_s=120)
    assert valid(reduced) and interesting(reduced)
    assert len(reduced.splitlines()) < len(source.splitlines())
    lines = reduced.splitlines(keepends=True)
    for k in range(len(lines)):
        smaller = "".join(lines[:k] + lines[k + 1:])
        assert not (valid(smaller) and interesting(smaller)), f"line {k + 1} is removable:\n{reduced}"
