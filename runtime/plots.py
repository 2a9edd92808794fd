"""Upstream's plotting helpers, `simulate` and `animate`, as phc runs them: the numbers are
computed the same way, and the picture is written to a PNG file (never a window) whose path
is printed on stderr, so what the program prints on stdout stays upstream's. matplotlib is an
optional extra: without it the numbers are still computed and stderr says no plot was drawn.
"""
from __future__ import annotations

import itertools
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

_count = itertools.count(1)


def simulate(model: Any, x0: Any, nsteps: Any, dt: Any) -> None:
    """`x_{k+1} = model(x_k)` for nsteps steps from x0 (no gradients); plots the states over
    time (and, for a state of several numbers, x[0] against x[1]). Returns nothing, as
    upstream."""
    x = torch.as_tensor(x0, dtype=torch.float32) if not isinstance(x0, torch.Tensor) else x0.float()
    steps = int(nsteps.item() if isinstance(nsteps, torch.Tensor) else nsteps)
    states = [x.detach().clone()]
    with torch.no_grad():
        for _ in range(steps):
            x = model(x)
            states.append(torch.as_tensor(x).detach().clone())
    trajectory = torch.stack(states)
    step = float(dt)
    _plot("simulate", lambda plt: _draw_states(plt, trajectory, step))


def animate(func: Any, *args: Any) -> None:
    """`func(*extra, t)` at n points of [t_min, t_max], the args laid out as upstream's:
    `*extra, t_min, t_max` (n = 200) or `*extra, t_min, t_max, n` (a whole n ≥ 10); plots
    position and velocity (a numerical derivative). Returns nothing, as upstream."""
    if len(args) < 2:
        print("phc: animate needs at least t_min and t_max", file=sys.stderr)
        return
    last = _number(args[-1])
    if float(last).is_integer() and last >= 10 and len(args) >= 3:
        extra, lo, hi, n = args[:-3], _number(args[-3]), _number(args[-2]), int(last)
    else:
        extra, lo, hi, n = args[:-2], _number(args[-2]), last, 200
    ts = torch.linspace(float(lo), float(hi), n)
    with torch.no_grad():
        xs = torch.stack([torch.as_tensor(func(*extra, t), dtype=torch.float32).reshape(())
                          for t in ts])
    velocity = torch.gradient(xs, spacing=(ts,))[0] if n > 1 else torch.zeros_like(xs)
    _plot("animate", lambda plt: _draw_motion(plt, ts, xs, velocity))


def _number(v: Any) -> float:
    return float(v.item()) if isinstance(v, torch.Tensor) else float(v)


def _plot(kind: str, draw) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"phc: {kind}: matplotlib is not installed, so no plot was drawn", file=sys.stderr)
        return
    folder = Path(os.environ.get("PHC_PLOT_DIR", Path(tempfile.gettempdir()) / "phc-plots"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{os.getpid()}-{next(_count)}.png"
    draw(plt)
    plt.savefig(path)
    plt.close("all")
    print(f"phc: {kind}: plot written to {path}", file=sys.stderr)


def _draw_states(plt, states: torch.Tensor, dt: float) -> None:
    t = (torch.arange(states.shape[0]).float() * dt).numpy()
    if states.dim() == 1 or states.shape[-1] == 1:
        plt.figure(figsize=(10, 6))
        plt.plot(t, states.reshape(states.shape[0]).numpy())
        plt.xlabel("Time (s)")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5))
    for j in range(states.shape[1]):
        ax1.plot(t, states[:, j].numpy(), label=f"x[{j}]")
    ax1.legend()
    ax1.set_xlabel("Time (s)")
    ax2.plot(states[:, 1].numpy(), states[:, 0].numpy(), linewidth=0.8)
    ax2.set_xlabel("x[1]")
    ax2.set_ylabel("x[0]")


def _draw_motion(plt, ts, xs, velocity) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5))
    ax1.plot(ts.numpy(), xs.numpy())
    ax1.set_xlabel("t")
    ax1.set_ylabel("position")
    ax2.plot(ts.numpy(), velocity.numpy())
    ax2.set_xlabel("t")
    ax2.set_ylabel("velocity")


__all__ = ["animate", "simulate"]
