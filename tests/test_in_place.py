"""Parameter updates in place (phc/ir/inplace.py): only where the old tensor is provably dead, and
never visible — every program prints and returns what level 0 does."""
from __future__ import annotations

import torch

from helpers import run_program, same_output
from phc import pipeline

TRAIN = """
class Lin:
    w: ℝ[m, n]
    b: ℝ[m]
    def λ(x: ℝ[n]) -> ℝ[m]:
        return for i: ℕ(len(this.w)) -> this.b[i] + sum(for j: ℕ(len(this.w[0])) -> this.w[i, j] * x[j])
w0: ℝ[2, 3] = [[0.5, -0.2, 0.1], [0.3, 0.8, -0.5]]
b0: ℝ[2] = [0.1, -0.1]
x: ℝ[3] = [1.0, 2.0, -1.0]
net: Lin = Lin(w0, b0)
lr: ℝ = 0.1
for t: ℕ(3):
    y = net(x)
    loss = sum(y * y)
    gw = grad(loss, net.w)
    gb = grad(loss, net.b)
    EXTRA
    new_w = net.w - lr * gw
    new_b = net.b - lr * gb
    net = Lin(new_w, new_b)
physika_print(net.w)
physika_print(w0)
"""


def compiled(src: str):
    return pipeline.compile_source(src, "train.phk", "torch")


def test_updates_are_in_place_and_the_initial_tensors_unchanged():
    src = TRAIN.replace("EXTRA", "")
    python = compiled(src).python
    assert "rt.adjoint.sub_scaled_(net.w, lr, gw)" in python and "rt.adjoint.own(w0)" in python
    got = run_program(src, "torch", 2)
    assert same_output(got, run_program(src, "torch", 0))
    assert "[[0.5, -0.2" in got.splitlines()[-1]          # w0 keeps its values


def test_seed_updates_in_place_and_keeps_its_globals(seed_source):
    src = seed_source.replace("epochs: ℕ = 20", "epochs: ℕ = 1")
    assert "rt.adjoint.sub_scaled_(cnn_object.kernel, lr, dk)" in compiled(src).python
    from phc.loader import load_module
    module, _ = load_module(compiled(src).python, "seed_in_place")
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        result = module.main()
    assert torch.equal(result["kernel"], torch.tensor([[1.0, 0.0, -1.0]] * 3))
    assert result["new_kernel"] is result["cnn_object"].kernel
    assert not torch.equal(result["cnn_object"].kernel, result["kernel"])


def _no_in_place_and_agrees(extra: str):
    src = TRAIN.replace("EXTRA", extra)
    assert "sub_scaled_(net.w" not in compiled(src).python
    assert same_output(run_program(src, "torch", 2), run_program(src, "torch", 0))


def test_a_name_holding_the_field_keeps_the_update_out_of_place():
    _no_in_place_and_agrees("saved = net.w")


def test_a_row_of_the_field_keeps_the_update_out_of_place():
    _no_in_place_and_agrees("row = net.w[0]")


def test_a_read_of_the_field_after_the_update_keeps_it_out_of_place():
    src = TRAIN.replace("EXTRA", "").replace("    net = Lin(new_w, new_b)", "    q = net.w * 1.0\n    net = Lin(new_w, new_b)")
    assert "sub_scaled_(net.w" not in compiled(src).python
    assert same_output(run_program(src, "torch", 2), run_program(src, "torch", 0))


INLINE = TRAIN.replace("""    new_w = net.w - lr * gw
    new_b = net.b - lr * gb
    net = Lin(new_w, new_b)""", """    net = Lin(net.w - lr * gw, OTHER)""").replace("EXTRA", "")


def test_an_update_written_in_the_construction_is_in_place():
    src = INLINE.replace("OTHER", "net.b - lr * gb")
    python = compiled(src).python
    assert "rt.adjoint.sub_scaled_(net.w, lr, gw)" in python and "rt.adjoint.sub_scaled_(net.b, lr, gb)" in python
    assert same_output(run_program(src, "torch", 2), run_program(src, "torch", 0))


def test_another_argument_reading_the_field_keeps_it_out_of_place():
    # the arguments run in order: `net.w` in the second would see the first's update
    src = INLINE.replace("OTHER", "net.b - lr * gb + 0.01 * net.w[0, 0:2]")
    assert "sub_scaled_(net.w" not in compiled(src).python
    assert same_output(run_program(src, "torch", 2), run_program(src, "torch", 0))


def test_an_instance_updated_in_place_in_every_field_is_kept():
    src = TRAIN.replace("EXTRA", "")
    python = compiled(src).python
    assert "net.w = new_w" in python and "Lin(new_w, new_b" not in python
    assert same_output(run_program(src, "torch", 2), run_program(src, "torch", 0))


def test_an_instance_held_by_another_name_is_rebuilt():
    src = TRAIN.replace("EXTRA", "").replace("physika_print(net.w)", "old = net\nphysika_print(net.w)")
    assert "Lin(new_w, new_b" in compiled(src).python
    assert same_output(run_program(src, "torch", 2), run_program(src, "torch", 0))
