"""Time each example of examples/ under phc (torch backend, CPU) against the same network and
training loop written by hand in PyTorch (nn.Conv2d, nn.Linear, F.cross_entropy, torch.optim.SGD or
Adam as the example does), per epoch, with one thread and with two, in one run.

    python benchmarks/examples.py [--epochs 2] [--repeat 3] [--threads 1 2] [--only NAME ...]
                                  [--out FILE|-]

Per example and thread count: one warm-up run of each version, then --repeat runs of each,
interleaved; the best run divided by --epochs is the time per epoch (an epoch: every minibatch's
forward, backward and update, then the test set's accuracy, as the example prints after each
epoch). Both versions load the same data (cached before timing), draw the same initial weights
(the example's 𝒩 draws in its order, seed 0), and take the same minibatches, so their losses
should agree up to float32 noise and tie-breaking; the last epoch's loss of each is printed as a
check that both trained the same network. Writes benchmarks/results/examples-<cpu>.md (--out FILE
elsewhere, --out - nowhere).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "2")    # the most threads any mode uses; set before torch

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from seed_cnn import cpu_model  # noqa: E402
EXAMPLES = ROOT / "examples"


# ---------------------------------------------------------------- the hand-written versions

@dataclass(frozen=True)
class Recipe:
    """What a hand-written version needs: its data, its initial weights (as the example draws
    them: (std, shape) in the order of the example's `~ 𝒩(0, std, …)` lines), the model built
    from them, the optimizer, the minibatch size."""
    data: Callable[[], list]
    draws: tuple[tuple[float, tuple[int, ...]], ...]
    model: Callable[[list[torch.Tensor]], nn.Module]
    optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    batch: int
    images_as_channel: bool = True


def _set(param: torch.Tensor, value: torch.Tensor) -> None:
    with torch.no_grad():
        param.copy_(value.reshape(param.shape))


def _zero_bias(*layers) -> None:
    for layer in layers:
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def digits_model(w: list[torch.Tensor]) -> nn.Module:
    conv, fc1, fc2 = nn.Conv2d(1, 1, 3), nn.Linear(36, 10), nn.Linear(10, 10)
    _set(conv.weight, w[0]), _set(fc1.weight, w[1]), _set(fc2.weight, w[2])
    _zero_bias(conv, fc1, fc2)
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc1, nn.ReLU(), fc2)


def mnist_8kernels_model(w: list[torch.Tensor]) -> nn.Module:
    conv, fc = nn.Conv2d(1, 8, 5, bias=False), nn.Linear(1152, 10)
    _set(conv.weight, w[0])
    _set(fc.weight, w[1].t())                    # the example keeps w as inputs × outputs
    _set(fc.bias, w[2])
    return nn.Sequential(conv, nn.Sigmoid(), nn.MaxPool2d(2), nn.Flatten(), fc)


def keras_style_model(w: list[torch.Tensor]) -> nn.Module:
    c1, c2, fc = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 8, 3), nn.Linear(968, 10)
    _set(c1.weight, w[0]), _set(c2.weight, w[1]), _set(fc.weight, w[2])
    _zero_bias(c1, c2, fc)
    return nn.Sequential(c1, nn.ReLU(), nn.MaxPool2d(2), c2, nn.ReLU(), nn.Dropout(0.2),
                         nn.Flatten(), fc)


def lenet5_model(w: list[torch.Tensor]) -> nn.Module:
    c1, c2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
    f3, f4, f5 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)
    for layer, value in zip((c1, c2, f3, f4, f5), w):
        _set(layer.weight, value)
    _zero_bias(c1, c2, f3, f4, f5)
    return nn.Sequential(c1, nn.ReLU(), nn.MaxPool2d(2), c2, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         f3, nn.ReLU(), f4, nn.ReLU(), f5)


def _mnist(*args):
    from phc import runtime as rt
    return lambda: rt.create_mnist(*args)


def _digits():
    from phc import runtime as rt
    return rt.create_digits(80, 0)


RECIPES = {
    "digits_convnet": Recipe(_digits, ((0.4, (3, 3)), (0.25, (10, 36)), (0.45, (10, 10))),
                             digits_model, lambda m: torch.optim.SGD(m.parameters(), lr=0.25), 64),
    "mnist_8kernels": Recipe(_mnist(4000, 1000), ((1.0, (8, 5, 5)), (0.1, (1152, 10)), (0.1, (10,))),
                             mnist_8kernels_model, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), 64),
    # Keras' Adam: eps is added to √v, not to √v̂ as torch's is; with eps = 1e-7 no step differs much.
    "keras_style": Recipe(_mnist(4000, 1000), ((0.47, (4, 1, 3, 3)), (0.24, (8, 4, 3, 3)), (0.045, (10, 968))),
                          keras_style_model,
                          lambda m: torch.optim.Adam(m.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-7), 32),
    "lenet5": Recipe(_mnist(4000, 1000, 0),
                     ((0.28, (6, 1, 5, 5)), (0.115, (16, 6, 5, 5)), (0.07, (120, 400)), (0.13, (84, 120)),
                      (0.15, (10, 84))),
                     lenet5_model, lambda m: torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9), 64),
}


def handwritten(name: str, epochs: int) -> Callable[[], float]:
    """The example's training in idiomatic PyTorch; returns the final test accuracy."""
    from phc import runtime as rt
    recipe = RECIPES[name]

    def main() -> float:
        rt.manual_seed(0)
        (X_train, y_train), (X_test, y_test) = recipe.data()
        weights = [rt.sample_normal(0, std, *shape) for std, shape in recipe.draws]
        model = recipe.model(weights)
        opt = recipe.optimizer(model)
        X_train, X_test = X_train[:, None], X_test[:, None]     # one channel
        n_batches = len(X_train) // recipe.batch
        for epoch in range(epochs):
            order = rt.shuffle_indices(len(X_train), epoch)
            model.train()
            total = torch.zeros(())
            for t in range(n_batches):
                picked = order[t * recipe.batch:(t + 1) * recipe.batch]
                loss = F.cross_entropy(model(X_train[picked]), y_train[picked])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
            print(float(total) / n_batches)
            model.eval()
            with torch.no_grad():
                print(float((model(X_test).argmax(1) == y_test).float().mean()))
        return float(print_accuracy(model, X_test, y_test))
    return main


def print_accuracy(model, X, y) -> torch.Tensor:
    with torch.no_grad():
        return (model(X).argmax(1) == y).float().mean()


# ---------------------------------------------------------------- phc's versions

def example_source(name: str, epochs: int) -> str:
    text = (EXAMPLES / f"{name}.phk").read_text(encoding="utf-8")
    text, count = re.subn(r"^epochs: ℕ = \d+", f"epochs: ℕ = {epochs}", text, flags=re.M)
    if count != 1:
        raise ValueError(f"examples/{name}.phk: no single `epochs: ℕ = N` line")
    return text


def phc_program(name: str, epochs: int) -> Callable[[], object]:
    from phc import runtime as rt
    from phc import pipeline
    from phc.loader import load_module
    compiled = pipeline.compile_source(example_source(name, epochs), str(EXAMPLES / f"{name}.phk"), "torch")
    module, _ = load_module(compiled.python, f"bench_{name}_{epochs}")

    def main():
        rt.manual_seed(0)
        return module.main()
    return main


# ---------------------------------------------------------------- timing

def run_once(fn) -> tuple[float, list[float]]:
    """(seconds, the numbers it printed: per epoch the loss, then the accuracy)."""
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        fn()
    seconds = time.perf_counter() - t0
    numbers = [float(x) for x in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?|[-+]?\d+(?= ∈)", out.getvalue())]
    return seconds, numbers


@dataclass
class Row:
    name: str
    threads: int
    phc_s: float
    hand_s: float
    phc_loss: float
    hand_loss: float
    phc_acc: float
    hand_acc: float


def measure(name: str, threads: int, epochs: int, repeat: int) -> Row:
    torch.set_num_threads(threads)
    versions = {"phc": phc_program(name, epochs), "hand": handwritten(name, epochs)}
    printed = {k: run_once(fn)[1] for k, fn in versions.items()}     # warm-up, and the check
    best = {k: float("inf") for k in versions}
    for _ in range(repeat):
        for k, fn in versions.items():
            best[k] = min(best[k], run_once(fn)[0])
    loss = {k: v[-2] if len(v) >= 2 else float("nan") for k, v in printed.items()}
    acc = {k: v[-1] if v else float("nan") for k, v in printed.items()}
    return Row(name, threads, best["phc"] / epochs, best["hand"] / epochs, loss["phc"], loss["hand"],
               acc["phc"], acc["hand"])


def report(rows: list[Row], epochs: int, repeat: int) -> str:
    lines = [f"# Examples: phc against hand-written PyTorch, per epoch ({cpu_model()}, {os.cpu_count()} CPUs)",
             "",
             f"`python benchmarks/examples.py --epochs {epochs} --repeat {repeat}`: per example and "
             f"thread count, best of {repeat} interleaved runs of {epochs} epochs (after a warm-up run "
             f"of each), divided by {epochs}; torch {torch.__version__}, phc's torch backend. An epoch: "
             f"every minibatch's forward, backward and update, then the test set's accuracy.",
             "",
             "| example | threads | phc (s/epoch) | hand-written (s/epoch) | ratio | last loss phc / hand | accuracy phc / hand |",
             "|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.threads} | {r.phc_s:.3f} | {r.hand_s:.3f} | {r.phc_s / r.hand_s:.2f}x | "
                     f"{r.phc_loss:.4f} / {r.hand_loss:.4f} | {r.phc_acc:.3f} / {r.hand_acc:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", nargs="+", choices=sorted(RECIPES), help="these examples only")
    ap.add_argument("--out", metavar="FILE", help="where to write the table; '-': print only")
    args = ap.parse_args(argv)
    from phc import runtime as rt
    rt.set_device("cpu")
    missing = sorted({p.stem for p in EXAMPLES.glob("*.phk")} - set(RECIPES) - {"cnn_seed"})
    if missing:
        print(f"no hand-written version of {', '.join(missing)}: not measured")
    rows = []
    for name in args.only or sorted(RECIPES):
        RECIPES[name].data()                     # load and cache the data outside the timing
        for threads in args.threads:
            rows.append(measure(name, threads, args.epochs, args.repeat))
            r = rows[-1]
            print(f"{name}, {threads} thread(s): phc {r.phc_s:.3f} s/epoch, hand-written {r.hand_s:.3f}, "
                  f"ratio {r.phc_s / r.hand_s:.2f}", flush=True)
    text = report(rows, args.epochs, args.repeat)
    print(text)
    if args.out == "-":
        return 0
    slug = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"examples-vs-pytorch-{slug}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
