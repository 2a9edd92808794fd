"""The compile-time adjoint (phc/ir/adjoint.py) against autograd at the same level, on training
runs: the seed and every example train with both (`adjoint=False` keeps autograd) and must print
the same losses and accuracies and end with the same weights and last gradients, to float32
rounding (1e-5 relative). One epoch: longer runs of the examples' high learning rates amplify
rounding differences chaotically (mnist_8kernels' third epoch differs by 3 % after agreeing to
6e-8 in its first), which says nothing about the derivative."""
from __future__ import annotations

import contextlib
import io
import re

import pytest
import torch

from phc import pipeline
from phc.loader import load_module
from test_examples import short_source

EXAMPLES = ["digits_convnet", "mnist_8kernels", "keras_style", "lenet5"]


def run(source: str, name: str, adjoint: bool):
    compiled = pipeline.compile_source(source, f"{name}.phk", "torch", adjoint=adjoint)
    assert compiled.plan.adjoint is None or (compiled.plan.adjoint.mode == "adjoint") == adjoint
    module, _ = load_module(compiled.python, f"{name}_adjoint_{adjoint}")
    torch.manual_seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = module.main()
    return out.getvalue(), result


def numbers(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"^(\S+) ∈ ℝ$", text, flags=re.M)]


def weights(result) -> list[torch.Tensor]:
    """The instances' fields and every real tensor the program left in a variable (its last
    gradients among them), in name order."""
    out = []
    for name in sorted(result):
        value = result[name]
        if hasattr(value, "_fields"):
            out += [getattr(value, f) for f in value._fields if isinstance(getattr(value, f), torch.Tensor)]
        elif isinstance(value, torch.Tensor) and value.is_floating_point():
            out.append(value)
    return out


def agree(a, b, rtol=1e-5, atol=1e-6):
    (text_a, res_a), (text_b, res_b) = a, b
    na, nb = numbers(text_a), numbers(text_b)
    assert len(na) == len(nb) and na
    for x, y in zip(na, nb):
        assert x == pytest.approx(y, rel=rtol, abs=atol)
    wa, wb = weights(res_a), weights(res_b)
    assert wa and len(wa) == len(wb)
    for x, y in zip(wa, wb):
        torch.testing.assert_close(x.detach(), y.detach(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_trains_alike_with_the_adjoint_and_with_autograd(name):
    source = re.sub(r"^epochs: ℕ = \d+", "epochs: ℕ = 1", short_source(name), flags=re.M)
    assert pipeline.compile_source(source, f"{name}.phk", "torch").plan.adjoint.mode == "adjoint"
    agree(run(source, name, True), run(source, name, False))


def test_seed_trains_alike_with_the_adjoint_and_with_autograd(seed_source):
    source = seed_source.replace("epochs: ℕ = 20", "epochs: ℕ = 3")
    agree(run(source, "seed3", True), run(source, "seed3", False))


def test_phc_adjoint_0_keeps_autograd(monkeypatch, seed_source):
    monkeypatch.setenv("PHC_ADJOINT", "0")
    compiled = pipeline.compile_source(seed_source, "seed.phk", "torch")
    assert compiled.plan.adjoint is None and "rt.grads(" in compiled.python
    monkeypatch.setenv("PHC_ADJOINT", "1")
    compiled = pipeline.compile_source(seed_source, "seed.phk", "torch")
    assert compiled.plan.adjoint.mode == "adjoint" and "rt.grads(" not in compiled.python
