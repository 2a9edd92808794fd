"""Near misses of the grad optimisations: each program sits just outside where a fresh leaf, a
no-grad region or freeing the graph would be legal, and its printed gradients must be what
torch.autograd computes for the same program written by hand (loop by loop, nothing cut)."""
import ast
import re

import pytest
import torch

from helpers import run_program


def printed(source: str, opt: int = 2) -> list:
    """The values a program prints, in order (numbers or lists of numbers)."""
    out = run_program(source, opt=opt)
    return [ast.literal_eval(re.sub(r" ∈ .*$", "", line)) for line in out.splitlines() if line.strip()]


def close(got, want: torch.Tensor):
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float32), want.detach().float(),
                               rtol=1e-5, atol=1e-6)


def test_two_instances_of_one_class_only_one_differentiated():
    src = """
class P:
    w: ℝ[3]
a: ℝ[3] = [0.5, -1.0, 2.0]
p: P = P(a)
q: P = P(p.w * 3)
loss = sum(q.w * p.w)
g = grad(loss, p.w)
g
"""
    w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    q = w * 3
    (want,) = torch.autograd.grad((q * w).sum(), w)
    close(printed(src)[0], want)     # 6w: q.w stays in the graph of p.w (a leaf per instance)


def test_grad_with_respect_to_an_intermediate_in_a_function():
    src = """
def f(a: ℝ[3]): ℝ[3]:
    b = a * 2
    y = sum(b * b * a)
    return grad(y, b) + grad(y, a)
f([0.5, -1.0, 2.0])
"""
    a = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    b = a * 2
    y = (b * b * a).sum()
    gb, ga = torch.autograd.grad(y, (b, a))
    close(printed(src)[0], gb + ga)  # b is not replaced by `a * 2`, a is not cut from b


def test_grad_inside_a_loop_updating_the_variable():
    src = """
w: ℝ[2] = [1.0, -2.0]
for i: ℕ(4):
    w = w - 0.1 * grad(sum(w * w * w), w)
w
"""
    w = torch.tensor([1.0, -2.0])
    for _ in range(4):
        x = w.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((x * x * x).sum(), x)
        w = w - 0.1 * g
    close(printed(src)[0], w)


def test_grad_in_a_loop_of_a_value_made_before_it():
    """One backward per iteration through the same graph: it must not be freed after the first."""
    src = """
a: ℝ = 2.0
y = a * a * a
s: ℝ = 0.0
for i: ℕ(3):
    g = grad(y, a)
    s = s + g
s
"""
    a = torch.tensor(2.0, requires_grad=True)
    y = a * a * a
    want = sum(torch.autograd.grad(y, a, retain_graph=True)[0] for _ in range(3))
    close(printed(src)[0], want)


def test_no_grad_region_next_to_a_grad_reaching_value():
    src = """
w: ℝ[2] = [1.0, 2.0]
h = w * 3.0
t = h * 2.0
loss = sum(h * h)
g = grad(loss, w)
g
t
"""
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    h = w * 3.0
    (want,) = torch.autograd.grad((h * h).sum(), w)
    got = printed(src)
    close(got[0], want)
    close(got[1], (h * 2.0))


def test_a_call_that_changes_an_instance_is_not_a_no_grad_region():
    """`r` reaches no grad, but computing it changes `a.w`, which the loss reads."""
    src = """
class Acc:
    w: ℝ[2]
    def bump(v: ℝ[2]): ℝ[2]:
        this.w = this.w * v
        return this.w
x: ℝ[2] = [1.0, 2.0]
a: Acc = Acc(x)
r = a.bump([3.0, 3.0])
loss = sum(a.w * a.w)
g = grad(loss, x)
g
"""
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = x * torch.tensor([3.0, 3.0])
    (want,) = torch.autograd.grad((w * w).sum(), x)
    close(printed(src)[0], want)


def test_grad_in_a_function_with_respect_to_a_parameter_the_caller_differentiates():
    src = """
def f(y: ℝ, x: ℝ): ℝ:
    return grad(y, x)
a: ℝ = 3.0
f(a * a, a)
"""
    a = torch.tensor(3.0, requires_grad=True)
    (want,) = torch.autograd.grad(a * a, a)
    close(printed(src)[0], want)


def test_a_field_that_is_differentiated_keeps_the_graph_it_was_built_from():
    """`grad(loss, net.w)` and `grad(loss, x)` of one instance: the constructor cannot cut."""
    src = """
class Net:
    w: ℝ[2]
x: ℝ[2] = [1.0, -1.0]
net: Net = Net(x * 2)
loss = sum(net.w * net.w * x)
gw = grad(loss, net.w)
gx = grad(loss, x)
gw
gx
"""
    x = torch.tensor([1.0, -1.0], requires_grad=True)
    w = x * 2
    loss = (w * w * x).sum()
    gw, gx = torch.autograd.grad(loss, (w, x))
    got = printed(src)
    close(got[0], gw)
    close(got[1], gx)


def test_the_seed_update_pattern_is_still_a_fresh_leaf():
    """The proved case: `cnn = C(new_w)` with `new_w` computed from a gradient and read only
    there is a fresh leaf, so the update runs without a graph and the backward frees its graph."""
    from phc import pipeline
    from phc.ir import nodes as n
    from phc.ir.analysis import walk_stmts
    src = """
class C:
    w: ℝ[2]
    def λ(x: ℝ[2]) -> ℝ:
        return sum(this.w * x)
w0: ℝ[2] = [1.0, 2.0]
net: C = C(w0)
for i: ℕ(3):
    loss = net([1.0, -1.0]) * net([1.0, -1.0])
    g = grad(loss, net.w)
    new_w = net.w - 0.1 * g
    net = C(new_w)
net.w
"""
    module = pipeline.compile_source(src, "t.phk").module
    stmts = list(walk_stmts(module.main.body))
    assert all(s.fresh_fields == ("w",) for s in stmts if isinstance(s, n.Assign) and s.name == "net")
    assert next(s for s in stmts if isinstance(s, n.Assign) and s.name == "new_w").nograd
    assert next(s for s in stmts if isinstance(s, n.Grads)).free_graph
    w = torch.tensor([1.0, 2.0])
    for _ in range(3):
        x = w.clone().requires_grad_(True)
        out = (x * torch.tensor([1.0, -1.0])).sum()
        (g,) = torch.autograd.grad(out * out, x)
        w = w - 0.1 * g
    close(printed(src)[0], w)


@pytest.mark.parametrize("rest,why", [
    ("old: C = net\nnet = C(new_w)\nloss2 = net([1.0, -1.0])\ngrad(loss2, old.w)", "the old instance is kept"),
    ("net = C(new_w)\nloss2 = net([1.0, -1.0]) * sum(new_w)\ngrad(loss2, net.w)", "new_w is read again"),
])
def test_the_seed_update_pattern_just_outside_the_proof(rest, why):
    src = """
class C:
    w: ℝ[2]
    def λ(x: ℝ[2]) -> ℝ:
        return sum(this.w * x)
w0: ℝ[2] = [1.0, 2.0]
net: C = C(w0)
loss = net([1.0, -1.0])
g = grad(loss, net.w)
new_w = net.w - 0.1 * g
""" + rest + "\n"
    w0 = torch.tensor([1.0, 2.0], requires_grad=True)
    v = torch.tensor([1.0, -1.0])
    (g,) = torch.autograd.grad((w0 * v).sum(), w0)
    new_w = w0 - 0.1 * g
    if "old" in rest:
        (want,) = torch.autograd.grad((new_w * v).sum(), w0)
    else:
        (want,) = torch.autograd.grad((new_w * v).sum() * new_w.sum(), new_w)
    got = printed(src)
    close(got[-1], want)


def test_a_differentiated_tensor_written_in_place():
    """A tracked new tensor that the program then writes element by element: not a leaf (a leaf
    cannot be written in place), still what `grad` differentiates, still in its inputs' graph."""
    src = """
a: ℝ[3] = [0.5, -1.0, 2.0]
b: ℝ[3] = [0.0, 0.0, 0.0]
for i: ℕ(3):
    b[i] = a[i] * 2
b[1] = 7.0
y = sum(b * b)
g = grad(y, b)
g
ga = grad(y, a)
ga
"""
    a = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    b = torch.zeros(3, requires_grad=True).clone()
    for i in range(3):
        b[i] = a[i] * 2
    b[1] = 7.0
    y = (b * b).sum()
    gb, ga = torch.autograd.grad(y, (b, a))
    got = printed(src)
    close(got[0], gb)
    close(got[1], ga)


def test_a_derivative_that_is_differentiated_again_keeps_its_graph():
    src = """
def df(x: ℝ): ℝ:
    return grad(x * x * x, x)
a: ℝ = 2.0
d = grad(a * a * a, a)
dd = grad(d, a)
dd
grad(df(a), a)
"""
    a = torch.tensor(2.0, requires_grad=True)
    (d,) = torch.autograd.grad(a * a * a, a, create_graph=True)
    (dd,) = torch.autograd.grad(d, a)
    got = printed(src)
    close(got[0], dd)
    close(got[1], dd)


def test_the_seed_takes_first_derivatives_only(seed_source):
    """A gradient step cut by a fresh leaf is not a derivative of a derivative: no create_graph."""
    from phc import pipeline
    from phc.ir import nodes as n
    from phc.ir.analysis import walk_stmts
    module = pipeline.compile_source(seed_source, "seed.phk").module
    (g,) = [s for s in walk_stmts(module.main.body) if isinstance(s, n.Grads)]
    assert g.free_graph and not g.create_graph


def test_grad_with_respect_to_a_derivative():
    src = """
a: ℝ = 3.0
g = grad(a * a, a)
h = g * g
grad(h, g)
"""
    a = torch.tensor(3.0, requires_grad=True)
    (g,) = torch.autograd.grad(a * a, a)
    g = g.detach().requires_grad_(True)
    (want,) = torch.autograd.grad(g * g, g)
    close(printed(src)[0], want)


def test_a_differentiated_parameter_written_in_place():
    src = """
def g(x: ℝ[2]): ℝ[2]:
    x[0] = 3.0
    return grad(sum(x * x), x)
g([1.0, 2.0])
"""
    x = torch.tensor([1.0, 2.0], requires_grad=True).clone()
    x[0] = 3.0
    (want,) = torch.autograd.grad((x * x).sum(), x)
    close(printed(src)[0], want)
