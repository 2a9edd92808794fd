"""Memory stays flat over a training run: no autograd graph or tensor survives its step.

Upstream keeps every sample's graph alive (2.8 GB after one epoch of the seed). phc frees each
step's graph (fresh leaves, no-grad regions, `retain_graph=False` where proved legal), so the
live tensors counted at each epoch's print are the same from the second epoch on, at level 2 and
at level 0, and at level 2 the printed running loss holds no graph at all."""
from __future__ import annotations

import contextlib
import gc
import io
import re

import pytest
import torch

from phc import runtime as rt
from helpers import compile_module


def live_tensors() -> int:
    gc.collect()
    return sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects())   # type(): no lazy proxies


def graph_nodes(values) -> int:
    """Autograd nodes reachable from the tensors printed (a running loss would hold a graph)."""
    seen, stack = set(), [v.grad_fn for v in values if isinstance(v, torch.Tensor) and v.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(n for n, _ in node.next_functions)
    return len(seen)


def per_epoch(module) -> list[tuple[int, int]]:
    counts: list[tuple[int, int]] = []

    def observe(values, filename, lineno):
        counts.append((live_tensors(), graph_nodes(values)))
    rt.printing.add_observer(observe)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            module.main()
    finally:
        rt.printing.remove_observer(observe)
    return counts


def seed_epochs(source: str, epochs: int, samples: int) -> str:
    src = re.sub(r"epochs: ℕ = \d+", f"epochs: ℕ = {epochs}", source)
    src = src.replace("create_dataset(80, 100)", f"create_dataset(60, {2 * samples})")
    return src.replace("len_train_X: ℝ = get_1d_array_length(train_X)", f"len_train_X: ℝ = {samples}")


@pytest.mark.parametrize("opt", [2, 0])
def test_the_seed_holds_no_more_tensors_after_more_epochs(seed_source, opt):
    from phc import pipeline
    from phc.loader import load_module
    samples = 12 if opt == 2 else 3            # level 0 runs every loop in Python
    compiled = pipeline.compile_source(seed_epochs(seed_source, 5, samples), "seed_memory.phk", "torch", opt=opt)
    module, _ = load_module(compiled.python, f"seed_memory_{opt}")
    counts = per_epoch(module)
    assert len(counts) == 5
    tensors, nodes = zip(*counts)
    assert len(set(tensors[1:])) == 1, f"live tensors per epoch grow: {tensors}"
    if opt == 2:    # level 0 keeps autograd through everything: the running loss holds the epoch's graph
        assert set(nodes) == {0}, f"the printed running loss holds a graph: {nodes}"


def test_a_leak_would_be_seen(seed_source):
    """The measure sees tensors kept alive across epochs (the test above can fail)."""
    module = compile_module(seed_epochs(seed_source, 3, 4), "torch", "seed_leak")
    kept = []
    rt.printing.add_observer(lambda values, f, n: kept.append(torch.zeros(3)))
    try:
        counts = per_epoch(module)
    finally:
        rt.printing._observers.clear()
    tensors = [t for t, _ in counts]
    assert tensors[2] > tensors[1]


_PEAK_SCRIPT = r"""
import contextlib, io, json, os, sys, torch
from phc import pipeline, runtime as rt
from phc.loader import load_module
source, leak = sys.argv[1], sys.argv[2] == "1"
compiled = pipeline.compile_source(open(source, encoding="utf-8").read(), "seed_peak.phk", "torch")
module, _ = load_module(compiled.python, "seed_peak")
peaks, kept = [], []
def observe(values, filename, lineno):
    if leak:
        kept.append(torch.ones(1 << 20))          # 4 MiB a print: what a leak would look like
    with open("/proc/self/statm") as f:                 # resident pages now, in KiB
        peaks.append(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024)
rt.printing.add_observer(observe)
with contextlib.redirect_stdout(io.StringIO()):
    module.main()
print(json.dumps({"peaks": peaks, "mode": compiled.plan.adjoint.mode}))
"""


def _peaks(tmp_path, source: str, leak: bool):
    import json
    import subprocess
    import sys
    prog = tmp_path / "seed_peak.phk"
    prog.write_text(source, encoding="utf-8")
    script = tmp_path / "peak.py"
    script.write_text(_PEAK_SCRIPT, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script), str(prog), "1" if leak else "0"], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_seed_resident_memory_is_flat_over_epochs(seed_source, tmp_path):
    """The resident memory of a fresh process at the end of epoch 2 and of epoch 8 of the seed's
    training (each epoch's print, after its last step) differ by less than 4 MiB: no step keeps
    anything alive."""
    got = _peaks(tmp_path, seed_epochs(seed_source, 8, 20), leak=False)
    assert got["mode"] == "adjoint"
    peaks = got["peaks"]
    assert len(peaks) == 8
    assert peaks[-1] - peaks[1] < 4 * 1024, f"resident memory grows over epochs (KiB): {peaks}"


def test_growing_memory_would_be_seen(seed_source, tmp_path):
    """The same measure with 4 MiB kept at each epoch's print sees the growth (the test above can fail)."""
    peaks = _peaks(tmp_path, seed_epochs(seed_source, 8, 20), leak=True)["peaks"]
    assert peaks[-1] - peaks[1] >= 4 * 1024 * 5
