"""The normative seed program: compiled module vs loop-by-loop execution, importability, the
network's output, and gradchecks through the compiled layers."""
import re
import sys

import pytest
import torch

from helpers import compile_module, evaluator


def short_seed(source: str, steps: int = 3) -> str:
    """The seed with 1 epoch of `steps` samples and a 2-sample test set (same code otherwise)."""
    src = source.replace("create_dataset(80, 100)", f"create_dataset(60, {steps + steps // 2 + 1})")
    src = re.sub(r"epochs: ℕ = \d+", "epochs: ℕ = 1", src)
    return src.replace("len_train_X: ℝ = get_1d_array_length(train_X)", f"len_train_X: ℝ = {steps}")


@pytest.fixture(scope="module")
def seed(seed_source):
    return compile_module(seed_source, "torch", "cnn_seed")


def test_first_training_steps_match_loop_by_loop_execution(seed_source, capsys):
    src = short_seed(seed_source)
    ev = evaluator(src, "seed_short")
    want = ev.main()
    mod = compile_module(src, "torch", "seed_short")
    got = mod.main()
    for field in ("kernel", "b1", "w", "b2"):
        torch.testing.assert_close(getattr(got["cnn_object"], field).detach(),
                                   getattr(want["cnn_object"], field).detach(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.as_tensor(got["loss"]), torch.as_tensor(want["loss"]), atol=1e-4, rtol=1e-4)
    assert float(got["accuracy"]) == float(want["accuracy"])


def test_universal_path_matches_idioms(seed_source):
    src = short_seed(seed_source, steps=4)
    a = compile_module(src, "universal", "seed_u").main()
    b = compile_module(src, "torch", "seed_t").main()
    for field in ("kernel", "b1", "w", "b2"):
        torch.testing.assert_close(getattr(a["cnn_object"], field), getattr(b["cnn_object"], field), atol=1e-5, rtol=1e-5)


def test_import_runs_nothing(seed_source, capsys):
    mod = compile_module(seed_source, "torch", "seed_import")
    assert capsys.readouterr().out == ""
    assert not hasattr(mod, "cnn_object") and callable(mod.main)


def test_network_returns_probabilities(seed):
    net = seed.ConvNets(torch.tensor([[1., 0, -1]] * 3), 0.0, torch.randn(10, 169) * 0.1, torch.zeros(10))
    probs = net(torch.rand(28, 28))
    assert probs.shape == (10,)
    assert torch.all(probs > 0)
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0))


def test_gradcheck_through_compiled_layers(seed):
    net = seed.ConvNets(torch.zeros(3, 3), 0.0, torch.zeros(10, 16), torch.zeros(10))
    d = dict(dtype=torch.float64, requires_grad=True)
    x, k, b = torch.rand(6, 6, **d), torch.randn(3, 3, **d), torch.randn((), **d)
    assert torch.autograd.gradcheck(lambda x, k, b: net.conv2d(x, k, b), (x, k, b))
    p = torch.randn(6, 6, **d)     # distinct values: no ties in a window
    assert torch.autograd.gradcheck(net.maxpool2d, (p,))
    v, w, c = torch.randn(7, **d), torch.randn(4, 7, **d), torch.randn(4, **d)
    assert torch.autograd.gradcheck(net.linear, (v, w, c))
    assert torch.autograd.gradcheck(seed.softmax, (torch.randn(5, **d),))
    assert torch.autograd.gradcheck(seed.relu2d, (torch.randn(3, 4, **d),))


def test_maxpool_tie_rule_matches_the_source(seed):
    """`max(a, max(b, …))` gives the gradient to the last maximum of a window on ties."""
    net = seed.ConvNets(torch.zeros(3, 3), 0.0, torch.zeros(10, 16), torch.zeros(10))
    x = torch.ones(2, 2, requires_grad=True)
    net.maxpool2d(x).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0], [0.0, 1.0]]
