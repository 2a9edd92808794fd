"""Compilation is deterministic: the generated module (and the kernel plan) of the seed, every
example, every test program and every regression program is byte-identical whatever the hash
seed (set and dict order of strings) and the thread count, on both backends."""
from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
from pathlib import Path
from phc import pipeline
out = {}
for path in sys.argv[1:]:
    source = Path(path).read_text(encoding="utf-8")
    for backend in ("torch", "triton"):
        try:
            compiled = pipeline.compile_source(source, Path(path).name, backend)
            text = compiled.plan.text() + compiled.python
        except Exception as e:      # a program of another bug class: its error must be stable too
            text = f"error: {type(e).__name__}: {e}"
        out[f"{Path(path).stem} ({backend})"] = text
print(json.dumps(out))
"""

SETTINGS = [("0", "1"), ("1", "2"), ("2", "1"), ("9", "1"), ("random", "2")]   # PYTHONHASHSEED, threads


def _compile_all(paths, hash_seed: str, threads: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": threads,
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *map(str, paths)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_generated_text_does_not_depend_on_hash_seed_or_threads(seed_path):
    paths = list(dict.fromkeys([seed_path, *sorted(ROOT.glob("examples/*.phk")),      # the seed is in examples/
                                *sorted(ROOT.glob("tests/programs/*.phk")), *sorted(ROOT.glob("tests/regressions/*.phk"))]))
    first, *others = [_compile_all(paths, seed, threads) for seed, threads in SETTINGS]
    assert len(first) == 2 * len(paths)
    for (seed, threads), texts in zip(SETTINGS[1:], others):
        for name, text in first.items():
            if texts[name] != text:
                diff = "\n".join(difflib.unified_diff(text.splitlines(), texts[name].splitlines(), lineterm="", n=1))
                raise AssertionError(f"{name} differs under PYTHONHASHSEED={seed}, {threads} threads:\n{diff[:3000]}")
