"""Time the seed CNN program's training under phc against the same per-sample SGD written by hand,
in one run, on one device: eager PyTorch (the reference of every ratio), the same step under
`torch.compile`, and, when `jax` is installed (never a dependency), JAX with `jit` of one step and
with a whole epoch as one `lax.scan`; and, as a last column, the scalar-loop execution that a
naive interpreter does (phc's IR reference evaluator, which runs every loop element by element the
way upstream Physika's generated code does), on a few samples.

    python benchmarks/seed_cnn.py [--device cpu|cuda] [--epochs 3] [--repeat 3]
                                  [--backend torch|triton|all] [--no-compile] [--no-jax]
                                  [--no-scalar] [--out FILE|-]

Every variant trains for --epochs epochs of 80 per-sample steps and evaluates 20 digits; each is
timed whole (start-up and compilation excluded: one warm-up run first), the variants interleaved,
best of --repeat. Prints the table and writes it to benchmarks/results/seed_cnn-<device>.md
(--out FILE elsewhere, --out - nowhere).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LR = 0.1


def seed_path() -> Path:
    """The project's own copy of the seed program."""
    return ROOT / "examples" / "cnn_seed.phk"


def seed_source(epochs: int) -> str:
    src = seed_path().read_text(encoding="utf-8")
    src, count = re.subn(r"epochs: ℕ = \d+", f"epochs: ℕ = {epochs}", src)
    if count != 1:
        raise ValueError(f"{seed_path()}: no single `epochs: ℕ = N` to substitute")
    return src


def phc_program(epochs: int, backend: str):
    from phc import pipeline
    from phc.loader import load_module
    compiled = pipeline.compile_source(seed_source(epochs), str(seed_path()), backend)
    module, _ = load_module(compiled.python, f"bench_seed_{epochs}_{backend}")
    return module.main


def initial_params(device: str) -> list[torch.Tensor]:
    kernel = torch.tensor([[1., 0, -1], [1, 0, -1], [1, 0, -1]], device=device)
    b1 = torch.tensor(0.0, device=device)
    i = torch.arange(10, device=device).view(10, 1)
    j = torch.arange(169, device=device).view(1, 169)
    w = torch.sin(3.14 * i / 9) * torch.cos(3.14 * j / 168)
    return [kernel, b1, w, torch.zeros(10, device=device)]


def forward(params, x):
    """The seed's network on one 28x28 digit: conv 3x3 + bias, ReLU, max pool 2x2, linear, softmax."""
    kernel, b1, w, b2 = params
    z = F.conv2d(x[None, None], kernel[None, None]).squeeze() + b1
    z = F.max_pool2d(torch.relu(z)[None], 2).flatten()
    return torch.softmax(w @ z + b2, 0)


def evaluate(params, test_X, test_y) -> float:
    with torch.no_grad():
        correct = sum(int(forward(params, test_X[k]).argmax() == test_y[k]) for k in range(len(test_X)))
    return correct / len(test_X)


def handwritten(epochs: int, device: str):
    """The seed's algorithm in eager PyTorch: per-sample SGD, one autograd.grad per step."""
    from phc import runtime as rt

    def main():
        (train_X, train_y), (test_X, test_y) = rt.create_dataset(80, 100)
        params = [p.requires_grad_(True) for p in initial_params(device)]
        for _ in range(epochs):
            loss = 0.0
            for k in range(len(train_X)):
                cur = -torch.log(forward(params, train_X[k])[train_y[k]])
                grads = torch.autograd.grad(cur, params)
                loss += cur.detach()
                with torch.no_grad():
                    params = [(p - LR * g).requires_grad_(True) for p, g in zip(params, grads)]
            print(loss / len(train_X))
        return evaluate(params, test_X, test_y)
    return main


def compiled_step(device: str):
    """The hand-written training step (forward, gradient, update) as one torch.compile'd function."""
    from torch.func import grad_and_value

    def loss_fn(params, x, y):     # a gather, not p[y]: indexing by a tensor would leave the graph
        return -torch.log(forward(params, x).gather(0, y.reshape(1))[0])

    def step(params, x, y):
        grads, loss = grad_and_value(loss_fn)(params, x, y)
        return [p - LR * g for p, g in zip(params, grads)], loss
    return torch.compile(step, dynamic=False, fullgraph=True)


def with_torch_compile(epochs: int, device: str):
    from phc import runtime as rt
    step = compiled_step(device)

    def main():
        (train_X, train_y), (test_X, test_y) = rt.create_dataset(80, 100)
        params = initial_params(device)
        for _ in range(epochs):
            loss = 0.0
            for k in range(len(train_X)):
                params, cur = step(params, train_X[k], train_y[k])
                loss += cur
            print(loss / len(train_X))
        return evaluate(params, test_X, test_y)
    return main


def jax_programs(epochs: int) -> dict[str, Callable]:
    """JAX on its default device: `jit` of one step in a Python loop; an epoch as one lax.scan."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax
    from phc import runtime as rt

    (train_X, train_y), (test_X, test_y) = rt.create_dataset(80, 100)
    X, Y = jnp.asarray(train_X.cpu().numpy()), jnp.asarray(train_y.cpu().numpy())
    TX, TY = jnp.asarray(test_X.cpu().numpy()), np.asarray(test_y.cpu().numpy())
    start = tuple(jnp.asarray(p.cpu().numpy()) for p in initial_params("cpu"))

    def probs(params, x):
        kernel, b1, w, b2 = params
        z = lax.conv_general_dilated(x[None, None], kernel[None, None], (1, 1), "VALID")[0, 0] + b1
        # ReLU as a select: jnp.maximum(z, 0) would pass half the gradient where z == 0 exactly,
        # and the digits' blank areas make many such zeros (torch.relu passes none)
        z = jnp.where(z > 0, z, 0.0)
        # 2x2 max pooling as the first maximum of each window in row-major order, as torch picks:
        # the digits' plateaus make exact ties, and jnp.max would split their gradient
        windows = z.reshape(13, 2, 13, 2).transpose(0, 2, 1, 3).reshape(13, 13, 4)
        pick = jnp.argmax(windows, axis=-1)[..., None]
        z = jnp.take_along_axis(windows, pick, axis=-1)[..., 0]
        return jax.nn.softmax(w @ z.reshape(-1) + b2)

    def step(params, x, y):
        loss, grads = jax.value_and_grad(lambda p: -jnp.log(probs(p, x)[y]))(params)
        return tuple(p - LR * g for p, g in zip(params, grads)), loss

    jit_step = jax.jit(step)

    @jax.jit
    def scan_epoch(params):
        params, losses = lax.scan(lambda p, xy: step(p, *xy), params, (X, Y))
        return params, losses.mean()

    predict = jax.jit(jax.vmap(probs, in_axes=(None, 0)))

    def accuracy(params) -> float:
        return float((np.asarray(predict(params, TX)).argmax(1) == TY).mean())

    def per_step():
        params = start
        for _ in range(epochs):
            loss = 0.0
            for k in range(len(X)):
                params, cur = jit_step(params, X[k], Y[k])
                loss += cur
            print(float(loss) / len(X))
        return accuracy(params)

    def per_epoch():
        params = start
        for _ in range(epochs):
            params, loss = scan_epoch(params)
            print(float(loss))
        return accuracy(params)
    return {"JAX jit of one step": per_step, "JAX lax.scan of an epoch": per_epoch}


def timed(fn, device: str) -> float:
    """Seconds of one whole run of fn (its printing swallowed), the device synchronised."""
    return checked(fn, device)[0]


def checked(fn, device: str) -> tuple[float, str, object]:
    """(seconds, what it printed, what it returned) of one whole run of fn."""
    if device == "cuda":
        torch.cuda.synchronize()
    printed = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        result = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, printed.getvalue(), result


def last_loss(printed: str) -> float:
    """The last epoch's mean loss that a run printed (`2.29`, `tensor(2.29)` or `2.29 ∈ ℝ`)."""
    numbers = re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", printed)
    return float(numbers[-1]) if numbers else float("nan")


def scalar_loop_step_time(samples: int = 2) -> float:
    """Seconds per training step when every loop runs element by element (the IR evaluator)."""
    from phc import pipeline
    from phc.ir.evaluate import Evaluator
    from phc import runtime as rt
    program, typed = pipeline.frontend(seed_source(1), str(seed_path()))
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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU ({cpu_model()}, {torch.get_num_threads()} threads)"


def variants(args, backends: list[str]) -> tuple[dict[str, Callable], list[str]]:
    """name -> whole-run function, eager PyTorch first; and notes on what was left out."""
    runs = {"hand-written eager PyTorch": handwritten(args.epochs, args.device)}
    notes = []
    for b in backends:
        runs[f"phc (--backend {b})"] = phc_program(args.epochs, b)
    if not args.no_compile:
        runs["hand-written step under torch.compile"] = with_torch_compile(args.epochs, args.device)
    if args.no_jax:
        pass
    elif importlib.util.find_spec("jax") is None:
        notes.append("JAX is not installed: no JAX columns")
    elif args.device == "cuda":
        notes.append("JAX columns only on the CPU (its device would not be torch's)")
    else:
        runs.update(jax_programs(args.epochs))
    return runs, notes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backend", default=None, choices=("torch", "triton", "all"),
                    help="phc's backend (default: triton on cuda, torch on the CPU); all: both")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile column")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX columns")
    ap.add_argument("--no-scalar", action="store_true", help="skip the scalar-loop column")
    ap.add_argument("--out", metavar="FILE", help="where to write the table; '-': print only")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure on cuda")
        return 0
    if args.device == "cuda":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    from phc import runtime as rt
    rt.set_device(args.device)
    backend = args.backend or ("triton" if args.device == "cuda" else "torch")
    backends = ["torch", "triton"] if backend == "all" else [backend]
    rt.create_dataset(80, 100)                      # load and cache the data outside the timing
    steps = 80 * args.epochs
    runs, notes = variants(args, backends)
    # warm up (kernels, caches, compilation), and keep what each variant computed: the same
    # training must reach the same loss, or its time means nothing
    losses = {name: last_loss(checked(fn, args.device)[1]) for name, fn in runs.items()}
    # interleaved, best of `repeat`: the least disturbed run of each (a shared machine is noisy)
    times = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            times[name].append(timed(fn, args.device))
    best = {name: min(t) for name, t in times.items()}
    eager = best["hand-written eager PyTorch"] / steps
    rows = [(name, t / steps * 1e6, t / steps / eager, statistics.median(times[name]) / steps * 1e6,
             f"{losses[name]:.6f}") for name, t in best.items()]
    if not args.no_scalar:
        t_scalar = scalar_loop_step_time()
        rows.append(("scalar loops (IR evaluator, upstream-style)", t_scalar * 1e6, t_scalar / eager, t_scalar * 1e6, "—"))
    name = device_name(args.device)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    lines = [f"# seed CNN: per-sample training step ({name})", "",
             f"{args.epochs} epochs x 80 samples + evaluation of 20, best of {args.repeat} interleaved "
             f"runs (after one warm-up run of each); torch {torch.__version__}, OMP_NUM_THREADS={threads}"
             f"{', TF32 off' if args.device == 'cuda' else ''}.", "",
             "| program | µs per step (best) | ratio to eager PyTorch | µs per step (median) | last epoch's loss |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r[0]} | {r[1]:.0f} | {r[2]:.2f}x | {r[3]:.0f} | {r[4]} |" for r in rows]
    lines += [""] + [f"- {n}" for n in notes] if notes else []
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out == "-":
        return 0
    slug = re.sub(r"[^A-Za-z0-9]+", "_", args.device + "_" + name).strip("_")[:60]
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"seed_cnn-{slug}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
