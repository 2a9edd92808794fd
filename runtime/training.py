"""Upstream Physika's training helpers, `train(model, X, y, epochs, lr)` and
`evaluate(model, X, y)`, with upstream's meaning (physika/runtime.py at b8a2699):

- the loss of one sample is the model's `loss(pred, target)` method, or `loss(pred, target,
  input)` when it takes three arguments, else the squared error `(pred - target) ** 2` (summed
  when it has several elements);
- `train` works on a copy of the model whose every real tensor field is a fresh parameter; each
  epoch sums the loss over all samples, takes one gradient and one SGD step of size lr, and prints
  `  Epoch k: Loss = …` every epochs // 10 epochs and at the last; it returns the copy;
- `evaluate` gives the mean loss (a float, accumulated in double precision as upstream does).

Each sample's input is a leaf that requires grad, since a model may differentiate with respect to
its input (a Hamiltonian network's `grad(h, x)`); phc then keeps the graph of every `grad` so that
the training gradient flows through it (docs/language.md, "Training helpers").
"""
from __future__ import annotations

import copy
import inspect
from typing import Any

import torch

from .printing import physika_print


def _trainable(model: Any) -> list[str]:
    return [name for name in getattr(model, "_fields", ())
            if isinstance(getattr(model, name, None), torch.Tensor) and getattr(model, name).is_floating_point()]


def _loss_of(model: Any):
    """(sample loss function, whether it takes the input too)."""
    method = getattr(model, "loss", None)
    if method is None:
        return None, False
    return method, len(inspect.signature(method).parameters) == 3


def _sample_loss(model: Any, method, takes_input: bool, x: torch.Tensor, target: Any) -> torch.Tensor:
    pred = model(x)
    if method is None:
        loss = (pred - target) ** 2
    else:
        loss = method(pred, target, x) if takes_input else method(pred, target)
    loss = torch.as_tensor(loss)
    return loss.sum() if loss.numel() != 1 else loss.reshape(())


def _input(X: torch.Tensor, i: int) -> torch.Tensor:
    return X[i].detach().clone().requires_grad_(True)


def train(model: Any, X: torch.Tensor, y: torch.Tensor, epochs: Any, lr: Any) -> Any:
    trained = copy.copy(model)
    names = _trainable(trained)
    for name in names:
        setattr(trained, name, getattr(model, name).detach().clone().requires_grad_(True))
    method, takes_input = _loss_of(trained)
    n = int(epochs)
    rate = float(lr)
    for epoch in range(n):
        with torch.enable_grad():
            total = sum(_sample_loss(trained, method, takes_input, _input(X, i), y[i]) for i in range(X.shape[0]))
            params = [getattr(trained, name) for name in names]
            live = isinstance(total, torch.Tensor) and total.requires_grad
            grads = torch.autograd.grad(total, params, allow_unused=True) if live and params else [None] * len(params)
        with torch.no_grad():
            for name, p, g in zip(names, params, grads):
                if g is not None:
                    setattr(trained, name, (p - rate * g).requires_grad_(True))
        if epoch % max(1, n // 10) == 0 or epoch == n - 1:
            physika_print(f"  Epoch {epoch}: Loss = {float(total.detach() if isinstance(total, torch.Tensor) else total):.6f}")
    return trained


def evaluate(model: Any, X: torch.Tensor, y: torch.Tensor) -> float:
    method, takes_input = _loss_of(model)
    total = 0.0
    with torch.enable_grad():
        for i in range(X.shape[0]):
            total += float(_sample_loss(model, method, takes_input, _input(X, i), y[i]).detach())
    return total / X.shape[0]
