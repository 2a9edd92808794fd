"""Seeded fuzzing of the front end: mutate the seed program and check that `check_source` only
ever answers with diagnostics that point into the file, never with an exception.

PHC_FUZZ_CASES raises the number of cases (default 400); each case is reproducible from its index.
"""
from __future__ import annotations

import os
import random
import re

import pytest

from phc.api import check_source
from phc.diagnostics import Diagnostic
from phc.parse import normalize

CASES = int(os.environ.get("PHC_FUZZ_CASES", "400"))
TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
ALPHABET = "()[]:,.=+-*/~#'\"\t\n →ℝℕ𝒩λ$\\@%<>!0123456789abcxyz"


def _tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def _delete(rnd: random.Random, parts: list[str]) -> None:
    del parts[rnd.randrange(len(parts))]


def _duplicate(rnd: random.Random, parts: list[str]) -> None:
    i = rnd.randrange(len(parts))
    parts.insert(i, parts[i])


def _swap(rnd: random.Random, parts: list[str]) -> None:
    i, j = rnd.randrange(len(parts)), rnd.randrange(len(parts))
    parts[i], parts[j] = parts[j], parts[i]


def _insert(rnd: random.Random, parts: list[str]) -> None:
    junk = "".join(rnd.choice(ALPHABET) if rnd.random() < 0.8 else chr(rnd.randrange(0x110000))
                   for _ in range(rnd.randint(1, 4)))
    parts.insert(rnd.randrange(len(parts) + 1), _no_surrogates(junk))


def _no_surrogates(text: str) -> str:
    return "".join(c if not 0xD800 <= ord(c) <= 0xDFFF else "?" for c in text)


MUTATIONS = (_delete, _duplicate, _swap, _insert)


def mutate(source: str, case: int) -> str | bytes:
    """A few random edits on tokens or characters; one case in five becomes raw bytes."""
    rnd = random.Random(case)
    parts = _tokens(source) if rnd.random() < 0.6 else list(source)
    for _ in range(rnd.randint(1, 6)):
        rnd.choice(MUTATIONS)(rnd, parts)
    text = "".join(parts)
    if rnd.random() < 0.2:
        return _with_random_bytes(rnd, text.encode("utf-8"))
    return text


def _with_random_bytes(rnd: random.Random, data: bytes) -> bytes:
    at = rnd.randrange(len(data) + 1)
    return data[:at] + bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8))) + data[at:]


def line_count(source: str | bytes) -> int:
    if isinstance(source, bytes):
        return source.count(b"\n") + 1 + source.count(b"\r")
    return max(1, normalize(source).count("\n"))


def assert_sane(source: str | bytes, diagnostics) -> None:
    assert isinstance(diagnostics, list)
    lines = line_count(source)
    for d in diagnostics:
        assert isinstance(d, Diagnostic)
        assert 1 <= d.span.line <= lines, (d, lines)
        assert "Traceback" not in d.message
        d.render(source if isinstance(source, str) else None)     # rendering never fails


def test_fuzzed_seed_never_raises(seed_source):
    failures = []
    for case in range(CASES):
        source = mutate(seed_source, case)
        try:
            assert_sane(source, check_source(source, "fuzz.phk"))
        except Exception as e:       # collect, so one run shows every failing case index
            failures.append((case, repr(e)[:300]))
    assert not failures, f"{len(failures)} failing cases (index, error): {failures[:10]}"


def test_mutations_do_break_the_program(seed_source):
    """The fuzzer must exercise the error paths, not only re-parse valid programs."""
    with_errors = sum(any(d.is_error for d in check_source(mutate(seed_source, case)))
                      for case in range(40))
    assert with_errors >= 20


@pytest.mark.parametrize("source", [
    "", "\n", "\x00", "\x00" * 100, b"\xff\xfe\x00", "(" * 2000, ")" * 50, "[" * 2000 + "]" * 2000,
    "x = " + "-" * 3000 + "1", "x = " + "+".join(["1"] * 3000), "\t\t\tx", "def", "class C(",
    "for i: ℕ(", "x ~ 𝒩(", "'", "\"abc", "\\", "\\mathbb{Q}", "\r\r\r", "\ufeff", "\u2028x = 1",
    "if x:\n  y\n z\n", "x = 1\n" * 3 + "   \n\t\n", "λ = 1",
])
def test_hostile_inputs(source):
    assert_sane(source, check_source(source))
