"""Time the seed CNN program's training under phc against the same per-sample SGD written by hand
in eager PyTorch, in one run, on one device; and, as a third column, the scalar-loop execution
that a naive interpreter does (phc's IR reference evaluator, which runs every loop element by
element the way upstream Physika's generated code does), on a few samples.

    python benchmarks/seed_cnn.py [--device cpu|cuda] [--epochs 3] [--repeat 3] [--backend torch|triton]

Prints the per-step times and the ratio, and writes benchmarks/results/seed_cnn-<device>.md.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "cnn_seed.phk"
sys.path.insert(0, str(ROOT))


def seed_source(epochs: int) -> str:
    src = SEED.read_text(encoding="utf-8")
    return re.sub(r"epochs: ℕ = \d+", f"epochs: ℕ = {epochs}", src)


def phc_program(epochs: int, backend: str):
    from phc import pipeline
    from phc.loader import load_module
    compiled = pipeline.compile_source(seed_source(epochs), str(SEED), backend)
    module, _ = load_module(compiled.python, f"bench_seed_{epochs}_{backend}")
    return module.main


def handwritten(epochs: int, device: str):
    """The seed's algorithm in eager PyTorch: per-sample SGD, one autograd.grad per step."""
    from phc import runtime as rt

    def main():
        kernel = torch.tensor([[1., 0, -1], [1, 0, -1], [1, 0, -1]], device=device)
        b1 = torch.tensor(0.0, device=device)
        i = torch.arange(10, device=device).view(10, 1)
        j = torch.arange(169, device=device).view(1, 169)
        w = torch.sin(3.14 * i / 9) * torch.cos(3.14 * j / 168)
        b2 = torch.zeros(10, device=device)
        (train_X, train_y), (test_X, test_y) = rt.create_dataset(80, 100)
        params = [p.requires_grad_(True) for p in (kernel, b1, w, b2)]
        for _ in range(epochs):
            loss = 0.0
            for k in range(len(train_X)):
                x = train_X[k]
                z = F.conv2d(x[None, None], params[0][None, None]).squeeze() + params[1]
                z = F.max_pool2d(torch.relu(z)[None], 2).flatten()
                probs = torch.softmax(params[2] @ z + params[3], 0)
                cur = -torch.log(probs[train_y[k]])
                grads = torch.autograd.grad(cur, params)
                loss += cur.detach()
                with torch.no_grad():
                    params = [(p - 0.1 * g).requires_grad_(True) for p, g in zip(params, grads)]
            print(loss / len(train_X))
        with torch.no_grad():
            correct = 0
            for k in range(len(test_X)):
                z = F.conv2d(test_X[k][None, None], params[0][None, None]).squeeze() + params[1]
                z = F.max_pool2d(torch.relu(z)[None], 2).flatten()
                probs = torch.softmax(params[2] @ z + params[3], 0)
                correct += int(probs.argmax() == test_y[k])
        return correct / len(test_X)
    return main


def timed(fn, repeat: int, device: str) -> float:
    times = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def scalar_loop_step_time(samples: int = 2) -> float:
    """Seconds per training step when every loop runs element by element (the IR evaluator)."""
    from phc import pipeline
    from phc.ir.evaluate import Evaluator
    from phc import runtime as rt
    program, typed = pipeline.frontend(seed_source(1), str(SEED))
    module = pipeline.lower(typed)
    ev = Evaluator(module)
    (train_X, train_y), _ = rt.create_dataset(80, 100)
    net = ev.call_expr("ConvNets", [torch.tensor([[1., 0, -1]] * 3), 0.0,
                                    torch.randn(10, 169) * 0.01, torch.zeros(10)], None, {})
    t0 = time.perf_counter()
    for k in range(samples):
        probs = ev.method(net, "λ", train_X[k])
        loss = -torch.log(probs[int(train_y[k])])
        rt.grads(loss, (net.kernel, net.b1, net.w, net.b2))
    return (time.perf_counter() - t0) / samples


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backend", default=None, choices=("torch", "triton"))
    ap.add_argument("--no-scalar", action="store_true", help="skip the scalar-loop column")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure on cuda")
        return 0
    from phc import runtime as rt
    rt.set_device(args.device)
    backend = args.backend or ("triton" if args.device == "cuda" else "torch")
    rt.create_dataset(80, 100)                      # load and cache the data outside the timing
    steps = 80 * args.epochs
    phc_main = phc_program(args.epochs, backend)
    hand_main = handwritten(args.epochs, args.device)
    timed(phc_main, 1, args.device)                 # warm up (kernels, caches)
    timed(hand_main, 1, args.device)
    # interleaved, best of `repeat`: the least disturbed run of each (a shared machine is noisy)
    hand_times, phc_times = [], []
    for _ in range(args.repeat):
        hand_times.append(timed(hand_main, 1, args.device))
        phc_times.append(timed(phc_main, 1, args.device))
    t_hand, t_phc = min(hand_times), min(phc_times)
    t_scalar = None if args.no_scalar else scalar_loop_step_time()
    name = device_name(args.device)
    rows = [("hand-written eager PyTorch", t_hand / steps * 1e6, 1.0),
            (f"phc (--backend {backend})", t_phc / steps * 1e6, t_phc / t_hand)]
    if t_scalar is not None:
        rows.append(("scalar loops (IR evaluator, upstream-style)", t_scalar * 1e6, t_scalar / (t_hand / steps)))
    lines = [f"# seed CNN: per-sample training step ({name})", "",
             f"{args.epochs} epochs x 80 samples + evaluation of 20, best of {args.repeat} interleaved runs; "
             f"torch {torch.__version__}.", "",
             "| program | µs per step | ratio to eager PyTorch |", "|---|---:|---:|"]
    lines += [f"| {r[0]} | {r[1]:.0f} | {r[2]:.2f}x |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "benchmarks" / "results" / f"seed_cnn-{re.sub(r'[^A-Za-z0-9]+', '_', args.device + '_' + name).strip('_')[:60]}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
