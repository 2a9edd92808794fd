"""Time each phc Triton template against cuDNN / cuBLAS (torch.nn.functional) on the seed's and
LeNet-5's layer shapes, batch 1 and 256, forward and forward+backward, in one run on one CUDA GPU.

    python benchmarks/kernels.py [--rep 200] [--warmup 50] [--tf32] [--out FILE|-]

Prints a table and writes benchmarks/results/kernels-<device name>.md (--out FILE elsewhere,
--out - nowhere). Without a CUDA device it
says so and exits 0. The torch side runs in exact fp32 (TF32 off for cuDNN and cuBLAS), as phc's
kernels do (tl.dot with input_precision="ieee"); --tf32 lets torch use TF32 instead.
Each row first checks that phc and torch agree (max abs difference, forward and every gradient).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from phc.select.plan import Conv2dSpec, KernelSpec, LinearSpec, Pool2dSpec  # noqa: E402

BATCHES = (1, 256)


@dataclass(frozen=True, slots=True)
class Case:
    """One layer: the phc op, its input shapes for batch B (weights first-free), the torch call."""
    label: str
    spec: KernelSpec
    shapes: Callable[[int], list[tuple[int, ...]]]
    reference: Callable


def _conv_ref(stride: int, padding: int):
    import torch.nn.functional as F
    return lambda x, w, b=None: F.conv2d(x, w, b, stride=stride, padding=padding)


def _pool_ref(k: int, s: int):
    import torch.nn.functional as F
    return lambda x: F.max_pool2d(x, k, s)


def _linear_ref():
    import torch.nn.functional as F
    return F.linear


def cases() -> list[Case]:
    conv_b = Conv2dSpec(1, 0, True)
    lenet_c1 = Conv2dSpec(1, 2, True)
    pool = Pool2dSpec("max", 2, 2)
    linear = LinearSpec(True)
    fc = lambda n, m: (lambda B: [(B, n), (m, n), (m,)])
    return [
        Case("seed conv 1->1 3x3 28x28", conv_b, lambda B: [(B, 1, 28, 28), (1, 1, 3, 3), (1,)], _conv_ref(1, 0)),
        Case("seed maxpool 2x2 26x26", pool, lambda B: [(B, 1, 26, 26)], _pool_ref(2, 2)),
        Case("seed linear 169->10", linear, fc(169, 10), _linear_ref()),
        Case("lenet conv1 1->6 5x5 p2 28x28", lenet_c1, lambda B: [(B, 1, 28, 28), (6, 1, 5, 5), (6,)],
             _conv_ref(1, 2)),
        Case("lenet pool1 6x28x28", pool, lambda B: [(B, 6, 28, 28)], _pool_ref(2, 2)),
        Case("lenet conv2 6->16 5x5 14x14", conv_b, lambda B: [(B, 6, 14, 14), (16, 6, 5, 5), (16,)],
             _conv_ref(1, 0)),
        Case("lenet pool2 16x10x10", pool, lambda B: [(B, 16, 10, 10)], _pool_ref(2, 2)),
        Case("lenet fc1 400->120", linear, fc(400, 120), _linear_ref()),
        Case("lenet fc2 120->84", linear, fc(120, 84), _linear_ref()),
        Case("lenet fc3 84->10", linear, fc(84, 10), _linear_ref()),
    ]


def slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    batch: int
    mode: str          # "fwd" | "fwd+bwd"
    phc_us: float
    torch_us: float
    max_err: float


def format_table(rows: list[Row]) -> str:
    """A markdown table; speedup > 1 means phc is faster than torch."""
    lines = ["| layer | batch | pass | phc (µs) | torch (µs) | speedup | max abs diff |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.label} | {r.batch} | {r.mode} | {r.phc_us:.1f} | {r.torch_us:.1f} | "
                     f"{r.torch_us / r.phc_us:.2f}x | {r.max_err:.1e} |")
    return "\n".join(lines)


def load_ops(specs) -> dict:
    """Renders the ops and imports them by phc's loader (@triton.jit reads its source from the
    module's file)."""
    from phc.emit.triton_backend import render_ops
    from phc.loader import load_module
    return vars(load_module(render_ops(specs), "phc_bench_ops")[0])


def _inputs(shapes, grad: bool):
    import torch
    return [torch.randn(s, device="cuda", requires_grad=grad) for s in shapes]


def _max_err(fn, ref, shapes) -> float:
    """Max abs difference between phc and torch, forward and every input gradient."""
    import torch
    ours = _inputs(shapes, True)
    theirs = [t.detach().clone().requires_grad_() for t in ours]
    y, y_ref = fn(*ours), ref(*theirs)
    g = torch.randn_like(y_ref)
    y.backward(g)
    y_ref.backward(g)
    diffs = [(y - y_ref).abs().max()] + [(a.grad - b.grad).abs().max() for a, b in zip(ours, theirs)]
    return max(float(d) for d in diffs)


def _time_us(fn, inputs, mode: str, warmup: int, rep: int) -> float:
    import torch
    from triton.testing import do_bench
    if mode == "fwd":
        with torch.no_grad():
            return 1e3 * do_bench(lambda: fn(*inputs), warmup=warmup, rep=rep, return_mode="median")
    g = torch.randn_like(fn(*inputs))
    step = lambda: fn(*inputs).backward(g)
    return 1e3 * do_bench(step, warmup=warmup, rep=rep, grad_to_none=inputs, return_mode="median")


def measure(case: Case, ops: dict, batch: int, mode: str, warmup: int, rep: int) -> Row:
    fn, shapes = ops[case.spec.symbol], case.shapes(batch)
    err = _max_err(fn, case.reference, shapes)
    inputs = _inputs(shapes, mode != "fwd")
    ours = _time_us(fn, inputs, mode, warmup, rep)     # the first call autotunes (not timed)
    theirs = _time_us(case.reference, inputs, mode, warmup, rep)
    return Row(case.label, batch, mode, ours, theirs, err)


def report(rows: list[Row], device: str, tf32: bool) -> str:
    import torch
    import triton
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"# phc Triton templates vs cuDNN/cuBLAS\n\n"
            f"- device: {device}\n- torch {torch.__version__}, triton {triton.__version__}, "
            f"Python {platform.python_version()}\n- {when}; medians of triton.testing.do_bench\n"
            f"- torch {'with' if tf32 else 'without'} TF32; phc kernels in exact fp32\n\n"
            f"{format_table(rows)}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=50, help="ms of warm-up per measurement")
    parser.add_argument("--rep", type=int, default=200, help="ms of repetitions per measurement")
    parser.add_argument("--tf32", action="store_true", help="let cuDNN/cuBLAS use TF32")
    parser.add_argument("--out", metavar="FILE", help="where to write the table; '-': print only")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("benchmarks/kernels.py: TRITON_INTERPRET=1 would time the CPU interpreter; unset it.")
        return 0
    import torch
    if not torch.cuda.is_available():
        print("benchmarks/kernels.py: no CUDA device here; nothing to measure (needs a GPU).")
        return 0
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.manual_seed(0)
    all_cases = cases()
    ops = load_ops([c.spec for c in all_cases])
    rows = [measure(c, ops, b, mode, args.warmup, args.rep)
            for c in all_cases for b in BATCHES for mode in ("fwd", "fwd+bwd")]
    device = torch.cuda.get_device_name()
    text = report(rows, device, args.tf32)
    print(text)
    if args.out == "-":
        return 0
    out = Path(args.out) if args.out else RESULTS / f"kernels-{slug(device)}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
