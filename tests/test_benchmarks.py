"""Smoke tests of the CPU benchmark scripts in their shortest modes: they run, print their tables,
and the hand-written versions they time train the same networks as the programs (no timing is
asserted: the figures depend on the machine)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def _row(text: str, first_cell: str) -> list[str]:
    rows = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, text
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def test_examples_benchmark_trains_the_same_network_by_hand():
    out = _run("benchmarks/examples.py", "--only", "digits_convnet", "--epochs", "1", "--repeat", "1",
               "--threads", "1", "--out", "-")
    cells = _row(out, "digits_convnet")
    assert cells[1] == "1" and cells[4].endswith("x")
    phc_loss, hand_loss = (float(v) for v in cells[5].split(" / "))
    assert abs(phc_loss - hand_loss) <= 1e-3 * abs(hand_loss)
    phc_acc, hand_acc = (float(v) for v in cells[6].split(" / "))
    assert abs(phc_acc - hand_acc) <= 0.01


def test_seed_benchmark_prints_every_column():
    out = _run("benchmarks/seed_cnn.py", "--epochs", "1", "--repeat", "1", "--no-scalar", "--no-compile",
               "--no-jax", "--out", "-")
    eager, ours = _row(out, "hand-written eager PyTorch"), _row(out, "phc (--backend torch)")
    assert eager[2] == "1.00x" and ours[2].endswith("x")
    assert abs(float(eager[4]) - float(ours[4])) < 0.05     # the same training (tie rules aside)
