"""The example programs of examples/: each one's compiled forward pass (and its loss's gradients)
equal a hand-written torch network on the same weights, and a short run of its own training loop
lowers the loss.

The short runs are the programs themselves with their epoch count and data sizes substituted in
the source text (each substitution must match exactly once, so an edit to an example that drops
it fails here instead of silently testing something else).
"""
from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers import compile_module
from phc import pipeline

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOL = dict(atol=1e-5, rtol=1e-5)

# Per example: the substitutions that make its training loop short (3 epochs, few samples).
SHORT = {
    "digits_convnet": ((r"^epochs: ℕ = \d+", "epochs: ℕ = 3"),),
    "mnist_8kernels": ((r"^epochs: ℕ = \d+", "epochs: ℕ = 3"),
                       (r"create_mnist\(4000, 1000\)", "create_mnist(640, 200)")),
    "keras_style": ((r"^epochs: ℕ = \d+", "epochs: ℕ = 3"),
                    (r"create_mnist\(4000, 1000\)", "create_mnist(320, 100)")),
    "lenet5": ((r"^epochs: ℕ = \d+", "epochs: ℕ = 3"),
               (r"create_mnist\(4000, 1000, 0\)", "create_mnist(640, 200, 0)")),
}


def short_source(name: str) -> str:
    text = (EXAMPLES / f"{name}.phk").read_text(encoding="utf-8")
    for pattern, replacement in SHORT[name]:
        text, count = re.subn(pattern, replacement, text, flags=re.M)
        assert count == 1, f"`{pattern}` should occur once in examples/{name}.phk"
    return text


@functools.cache
def example(name: str):
    """The short version of an example, compiled (torch backend) and imported; nothing runs."""
    return compile_module(short_source(name), "torch", name)


def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def normal(g: torch.Generator, *shape: int, std: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * std


def fields(net) -> list[torch.Tensor]:
    return [getattr(net, f) for f in net._fields]


def assert_same_loss_and_grads(mod, net, probs, x, y, reference_logits) -> None:
    """The program's cross-entropy of its own forward pass, and the gradients of it with respect
    to every field, equal torch's `F.cross_entropy` on the reference logits."""
    loss = mod.cross_entropy(probs, y)
    leaves = [p.detach().clone().requires_grad_(True) for p in fields(net)]
    want = F.cross_entropy(reference_logits(x, *leaves), y)
    torch.testing.assert_close(loss, want, **TOL)
    got_grads = torch.autograd.grad(loss, fields(net))
    want_grads = torch.autograd.grad(want, leaves)
    for got, ref in zip(got_grads, want_grads):
        torch.testing.assert_close(got, ref, **TOL)


# ---------------------------------------------------------------- what the compiler makes of them

# Per example: (function, kind of idiom) pairs its hot nests must be recognised as.
IDIOMS = {
    "digits_convnet": {("conv2d_relu", "conv2d"), ("linear", "linear")},
    "mnist_8kernels": {("conv2d", "conv2d"), ("maxpool2d", "maxpool2d"), ("affine", "linear")},
    "keras_style": {("conv2d_relu", "conv2d"), ("max_pool", "maxpool2d"), ("min_pool", "minpool2d"),
                    ("avg_pool", "avgpool2d"), ("dense", "linear")},
    "lenet5": {("conv2d_relu", "conv2d"), ("max_pool", "maxpool2d"), ("dense", "linear")},
}


@functools.cache
def compiled(name: str):
    return pipeline.compile_source(short_source(name), f"{name}.phk", "torch")


@pytest.mark.parametrize("name", sorted(IDIOMS))
def test_hot_nests_are_recognised_idioms(name):
    found = {(fn, m.spec.name) for fn, _, m in compiled(name).plan.matches}
    for fn, kind in IDIOMS[name]:
        assert any(f == fn and k.startswith(kind) for f, k in found), f"{fn}: no {kind} in {sorted(found)}"


@pytest.mark.parametrize("name", sorted(IDIOMS))
def test_only_the_training_loop_is_a_python_loop(name):
    """Every layer, the loss and the accuracy are vectorised: the generated functions and methods
    hold no Python loop; only main's epoch and batch loops remain."""
    python = compiled(name).python
    before_main = python[:python.index("\ndef main(")]
    loops = [line.strip() for line in before_main.splitlines() if re.match(r"\s*for .* in ", line)]
    assert loops == []


# ---------------------------------------------------------------- forward passes vs torch

def digits_logits(x, kernel, b1, w1, c1, w2, c2):
    features = F.relu(F.conv2d(x[:, None], kernel[None, None]) + b1).flatten(1)
    return F.linear(F.relu(F.linear(features, w1, c1)), w2, c2)


def test_digits_convnet_forward_equals_torch():
    mod, g = example("digits_convnet"), gen()
    net = mod.ConvNet(normal(g, 3, 3, std=0.4), torch.tensor(0.1), normal(g, 10, 36, std=0.25),
                      normal(g, 10, std=0.1), normal(g, 10, 10, std=0.45), normal(g, 10, std=0.1))
    x, y = torch.rand(16, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
    probs = net(x)
    want = torch.softmax(digits_logits(x, *[p.detach() for p in fields(net)]), dim=1)
    torch.testing.assert_close(probs, want, **TOL)
    assert_same_loss_and_grads(mod, net, probs, x, y, digits_logits)


def mnist_logits(x, kernels, w, c0):
    pooled = F.max_pool2d(torch.sigmoid(F.conv2d(x[:, None], kernels[:, None])), 2)
    return pooled.flatten(1) @ w + c0


def test_mnist_8kernels_forward_equals_torch():
    mod, g = example("mnist_8kernels"), gen()
    net = mod.CNN(normal(g, 8, 5, 5), normal(g, 1152, 10, std=0.1), normal(g, 10, std=0.1))
    x, y = normal(g, 8, 28, 28), torch.randint(0, 10, (8,), generator=g)
    probs = net(x)
    want = torch.softmax(mnist_logits(x, *[p.detach() for p in fields(net)]), dim=1)
    torch.testing.assert_close(probs, want, **TOL)
    assert_same_loss_and_grads(mod, net, probs, x, y, mnist_logits)


def keras_logits(x, w1, b1, w2, b2, w3, b3):
    h = F.max_pool2d(F.relu(F.conv2d(x[:, None], w1, b1)), 2)
    h = F.relu(F.conv2d(h, w2, b2))
    return F.linear(h.flatten(1), w3, b3)


def keras_model(mod, g):
    return mod.Model(normal(g, 4, 1, 3, 3, std=0.47), normal(g, 4, std=0.1),
                     normal(g, 8, 4, 3, 3, std=0.24), normal(g, 8, std=0.1),
                     normal(g, 10, 968, std=0.045), normal(g, 10, std=0.1))


def test_keras_style_forward_in_evaluation_equals_torch():
    mod, g = example("keras_style"), gen()
    model = keras_model(mod, g)
    x, y = normal(g, 8, 28, 28), torch.randint(0, 10, (8,), generator=g)
    probs = model(x, 0)
    want = torch.softmax(keras_logits(x, *[p.detach() for p in fields(model)]), dim=1)
    torch.testing.assert_close(probs, want, **TOL)
    assert_same_loss_and_grads(mod, model, probs, x, y, keras_logits)


def test_keras_style_pooling_functions_equal_torch():
    mod, g = example("keras_style"), gen()
    x = normal(g, 2, 3, 9, 8)                  # an odd height: the last row is dropped
    torch.testing.assert_close(mod.max_pool(x), F.max_pool2d(x, 2), **TOL)
    torch.testing.assert_close(mod.min_pool(x), -F.max_pool2d(-x, 2), **TOL)
    torch.testing.assert_close(mod.avg_pool(x), F.avg_pool2d(x, 2), **TOL)


def test_keras_style_dropout_zeroes_a_share_p_and_scales_the_rest():
    mod, g = example("keras_style"), gen()
    x = torch.rand(4, 8, 11, 11, generator=g) + 1.0          # no zeros of its own
    torch.testing.assert_close(mod.dropout(x, 0.2, 0), x)     # evaluation: the identity
    torch.manual_seed(0)
    out = mod.dropout(x, 0.2, 1)
    kept = out != 0
    torch.testing.assert_close(out[kept], x[kept] / 0.8, **TOL)
    assert abs(kept.float().mean().item() - 0.8) < 0.03       # 3,872 draws: σ ≈ 0.006


def lenet_logits(x, k1, c1, k2, c2, w3, c3, w4, c4, w5, c5):
    h = F.max_pool2d(F.relu(F.conv2d(x[:, None], k1, c1, padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, k2, c2)), 2)
    h = F.relu(F.linear(h.flatten(1), w3, c3))
    return F.linear(F.relu(F.linear(h, w4, c4)), w5, c5)


def test_lenet5_forward_equals_torch():
    mod, g = example("lenet5"), gen()
    net = mod.LeNet(normal(g, 6, 1, 5, 5, std=0.28), normal(g, 6, std=0.1),
                    normal(g, 16, 6, 5, 5, std=0.115), normal(g, 16, std=0.1),
                    normal(g, 120, 400, std=0.07), normal(g, 120, std=0.1),
                    normal(g, 84, 120, std=0.13), normal(g, 84, std=0.1),
                    normal(g, 10, 84, std=0.15), normal(g, 10, std=0.1))
    x, y = torch.rand(8, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g)
    probs = net(x)
    want = torch.softmax(lenet_logits(x, *[p.detach() for p in fields(net)]), dim=1)
    torch.testing.assert_close(probs, want, **TOL)
    assert_same_loss_and_grads(mod, net, probs, x, y, lenet_logits)


def test_lenet5_padding_equals_torch():
    mod, g = example("lenet5"), gen()
    x = normal(g, 2, 3, 5, 4)
    torch.testing.assert_close(mod.pad(x, 2), F.pad(x, (2, 2, 2, 2)))


# ---------------------------------------------------------------- short training runs

def printed_numbers(text: str) -> list[float]:
    """The values of the program's `physika_print(real)` lines, in order."""
    return [float(m) for m in re.findall(r"^(\S+) ∈ ℝ$", text, flags=re.M)]


@pytest.mark.parametrize("name", sorted(SHORT))
def test_short_training_run_lowers_the_loss(name, capsys):
    torch.manual_seed(0)
    result = example(name).main()
    numbers = printed_numbers(capsys.readouterr().out)
    losses, accuracies = numbers[0::2], numbers[1::2]       # each epoch prints both
    assert len(losses) == len(accuracies) == 3
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    assert float(result["test_accuracy"]) == pytest.approx(accuracies[-1])
