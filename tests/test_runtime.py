"""The runtime that generated code imports: printing, autograd glue, small ops, runtime errors."""
import importlib.util
import subprocess
import sys
import textwrap

import pytest
import torch

import runtime
from runtime import (PhysikaRuntimeError, dim, format_summary, format_value, grad, grads, leaf,
                     manual_seed, nat_range, nograd, print_expr, physika_print, real, sample_normal,
                     sample_uniform, set_device, to_index, translate)
from runtime import ops


# ---------------------------------------------------------------- printing

class ConvNets:
    _fields = ("kernel", "b1", "w", "b2")

    def __init__(self, kernel, b1, w, b2):
        self.kernel, self.b1, self.w, self.b2 = leaf(kernel), leaf(b1), leaf(w), leaf(b2)


@pytest.mark.parametrize("value, text", [
    (torch.tensor(0.5), "0.5 ∈ ℝ"),
    (torch.tensor(2.0), "2.0 ∈ ℝ"),
    (torch.tensor(3), "3 ∈ ℝ"),
    (torch.tensor(-3), "-3 ∈ ℝ"),
    (torch.tensor([7.0]), "7.0 ∈ ℝ"),                      # one element: .item(), scalar type
    (torch.tensor([[4]]), "4 ∈ ℝ"),
    (torch.tensor([1.0, 2.0]), "[1.0, 2.0] ∈ ℝ[2]"),
    (torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "[[1.0, 2.0], [3.0, 4.0]] ∈ ℝ[2,2]"),
    (torch.zeros(2, 1, 2), "[[[0.0, 0.0]], [[0.0, 0.0]]] ∈ ℝ[2,1,2]"),
    (torch.tensor([1, 2, 3]), "[1, 2, 3] ∈ ℝ[3]"),
    (torch.tensor([1, -2]), "[1, -2] ∈ ℝ[2]"),
    (torch.tensor([True, False]), "[True, False] ∈ ℝ[2]"),
    (torch.tensor(True), "True ∈ ℝ"),
    (torch.tensor(0.1), f"{torch.tensor(0.1).item()!r} ∈ ℝ"),   # float32's value, Python repr
    (torch.tensor(0.5, dtype=torch.float64), "0.5 ∈ ℝ"),
    (torch.tensor(float("nan")), "nan ∈ ℝ"),
    (torch.zeros(0), "[] ∈ ℝ[0]"),
    (3, "3 ∈ ℝ"),
    (0, "0 ∈ ℝ"),
    (-3, "-3 ∈ ℝ"),
    (2.0, "2.0 ∈ ℝ"),
    (-0.25, "-0.25 ∈ ℝ"),
    (True, "True ∈ ℝ"),
    ([1, 2], "[1, 2] ∈ ℝ[2]"),
    ([[1.0, 2.0], [3.0, 4.0]], "[[1.0, 2.0], [3.0, 4.0]] ∈ ℝ[2,2]"),
    ([1, -2], "[1, -2] ∈ ℝ[2]"),
    ("hello", "hello"),
    (None, "None"),
])
def test_format_value(value, text):
    assert format_value(value) == text


def test_values_that_require_grad_print_plainly():
    x = leaf(torch.tensor([1.0, 2.0]))
    assert format_value(x * 2) == "[2.0, 4.0] ∈ ℝ[2]"
    assert format_value((x * 2).sum()) == "6.0 ∈ ℝ"


def test_class_instances_print_their_name():
    net = ConvNets(torch.ones(3, 3), 0.0, torch.zeros(10, 4), torch.zeros(10))
    assert format_value(net) == "<ConvNets> ∈ ConvNets"


def test_datasets_print_a_summary_with_shapes():
    data = [[torch.zeros(80, 28, 28), torch.zeros(80, dtype=torch.long)],
            [torch.zeros(20, 28, 28), torch.arange(20)]]
    assert format_value(data) == "[[…, …], […, …]] ∈ [[ℝ[80,28,28], ℝ[80]], [ℝ[20,28,28], ℝ[20]]]"


def test_summary_lists_show_small_items():
    assert format_value([torch.tensor(1.5), torch.tensor([1, 2]), 3]) == "[1.5, [1, 2], 3] ∈ [ℝ, ℝ[2], ℝ]"
    assert format_value((torch.tensor(-1), "x")) == "[-1, 'x'] ∈ [ℝ, str]"


def test_physika_print_and_print_expr_write_one_line(capsys):
    physika_print(torch.tensor([1.0, 2.0]))
    print_expr(torch.tensor(0.5))
    print_expr(None)                      # a bare call that returns nothing prints nothing
    assert capsys.readouterr().out == "[1.0, 2.0] ∈ ℝ[2]\n0.5 ∈ ℝ\n"


# ---------------------------------------------------------------- grad

def test_grad_of_a_scalar():
    x = leaf(torch.tensor([1.0, 2.0, 3.0]))
    y = (x ** 2).sum()
    assert torch.equal(grad(y, x), torch.tensor([2.0, 4.0, 6.0]))


def test_grad_result_carries_no_graph_unless_asked():
    x = leaf(torch.tensor(3.0))
    y = x ** 3
    assert not grad(y, x).requires_grad
    dy = grad(y, x, create_graph=True)
    assert dy.item() == 27.0
    assert grad(dy, x).item() == 18.0     # second derivative 6x


def test_grad_twice_of_the_same_value():
    x = leaf(torch.tensor(2.0))
    y = x * x
    assert grad(y, x).item() == 4.0
    assert grad(y, x).item() == 4.0       # the graph was retained


@pytest.mark.parametrize("make_y", [
    lambda x, z: (z * 2).sum(),           # y in a graph that x is not part of
    lambda x, z: torch.tensor(1.5),       # y has no graph at all
    lambda x, z: 4.0,                     # y is a Python number
])
def test_grad_of_an_unrelated_value_is_zeros(make_y):
    x = leaf(torch.ones(3, 2))
    z = leaf(torch.ones(4))
    g = grad(make_y(x, z), x)
    assert g.shape == (3, 2) and g.dtype == torch.float32 and not g.any()


def test_grad_with_respect_to_a_constant_is_zeros():
    y = leaf(torch.tensor(2.0)) * 3
    assert torch.equal(grad(y, torch.ones(2, 2)), torch.zeros(2, 2))
    assert torch.equal(grad(y, 1.0), torch.tensor(0.0))
    assert grad(y, torch.tensor([1, 2])).dtype == torch.float32


def test_jacobian_of_a_vector_function():
    x = leaf(torch.tensor([1.0, 2.0]))
    y = torch.stack([x[0] * x[1], x[0] + 3 * x[1], torch.sin(x[0])])
    expected = torch.autograd.functional.jacobian(
        lambda v: torch.stack([v[0] * v[1], v[0] + 3 * v[1], torch.sin(v[0])]), x.detach())
    J = grad(y, x)
    assert J.shape == (3, 2)
    torch.testing.assert_close(J, expected)


def test_jacobian_of_a_matrix_output_and_unused_input():
    x = leaf(torch.tensor([1.0, 2.0, 3.0]))
    W = torch.arange(6.0).reshape(2, 3)
    y = (W * x).reshape(2, 3)
    J = grad(y, x)
    assert J.shape == (2, 3, 3)
    torch.testing.assert_close(J, torch.einsum("ij,jk->ijk", W, torch.eye(3)))
    assert grad(y, leaf(torch.ones(5))).shape == (2, 3, 5)


def test_grads_match_separate_grad_calls():
    torch.manual_seed(0)
    net = ConvNets(torch.randn(3, 3), 0.1, torch.randn(4, 9), torch.randn(4))
    image = torch.randn(5, 5)
    unused = leaf(torch.ones(2))

    def loss():
        conv = torch.nn.functional.conv2d(image[None, None], net.kernel[None, None])[0, 0] + net.b1
        out = net.w @ conv.relu().reshape(-1) + net.b2
        return -torch.log_softmax(out, 0)[1]

    fields = (net.kernel, net.b1, net.w, net.b2, unused)
    together = grads(loss(), fields)
    separate = [grad(loss(), f) for f in fields]
    assert len(together) == 5
    for a, b in zip(together, separate):
        torch.testing.assert_close(a, b)
    assert together[1].shape == () and not together[4].any()
    assert all(g.abs().sum() > 0 for g in together[:4])


def test_grads_of_a_value_that_needs_no_grad():
    got = grads(torch.tensor(1.0), (leaf(torch.ones(2)), 3.0))
    assert [g.shape for g in got] == [(2,), ()]


def test_leaf_starts_a_fresh_graph():
    w = leaf(torch.tensor([1.0, 2.0]))
    loss = (w ** 2).sum()
    g = grad(loss, w, retain_graph=False)
    updated = w - 0.1 * g
    assert updated.grad_fn is not None
    fresh = leaf(updated)
    assert fresh.grad_fn is None and fresh.is_leaf and fresh.requires_grad
    torch.testing.assert_close(fresh, torch.tensor([0.8, 1.6]))


def test_leaf_of_numbers_and_integers():
    b = leaf(0)
    assert b.shape == () and b.dtype == torch.float32 and b.requires_grad
    k = leaf(torch.tensor([[1, 0, -1]]))
    assert k.dtype == torch.float32 and k.requires_grad


def test_nograd():
    x = leaf(torch.tensor(1.0)) * 2
    assert nograd(x).grad_fn is None and not nograd(x).requires_grad
    assert nograd(3) == 3


# ---------------------------------------------------------------- ops

@pytest.mark.parametrize("value, expected", [
    (2.7, 2), (-2.7, -2), (3, 3), (0.0, 0), (True, 1),
])
def test_to_index_of_numbers(value, expected):
    got = to_index(value)
    assert got == expected and type(got) is int


def test_to_index_of_tensors():
    assert to_index(torch.tensor(2.9)).dtype == torch.int64
    assert to_index(torch.tensor(2.9)).item() == 2
    assert to_index(torch.tensor(-2.9)).item() == -2
    assert torch.equal(to_index(torch.tensor([0.5, 1.5])), torch.tensor([0, 1]))
    i = torch.tensor(4, dtype=torch.int32)
    assert to_index(i) is i
    assert torch.zeros(10)[to_index(torch.tensor(3.0))].shape == ()


@pytest.mark.parametrize("args, expected", [
    ((3,), [0, 1, 2]),
    ((2.7,), [0, 1]),
    ((0.9,), []),
    ((0,), []),
    ((-2,), []),
    ((-2.5,), []),
    ((torch.tensor(3.0),), [0, 1, 2]),
    ((torch.tensor([2]),), [0, 1]),
    ((1, 4), [1, 2, 3]),
    ((torch.tensor(1.0), 3.5), [1, 2]),
    ((5, 2), []),
])
def test_nat_range(args, expected):
    r = nat_range(*args)
    assert isinstance(r, range) and list(r) == expected


def test_nat_range_rejects_a_vector():
    with pytest.raises(ValueError, match="one number"):
        nat_range(torch.tensor([1.0, 2.0]))


def test_dim():
    x = torch.zeros(4, 5, 6)
    assert [dim(x, k) for k in range(3)] == [4, 5, 6]
    assert dim(x, -1) == 6 and type(dim(x, 0)) is int
    assert dim([[1, 2, 3], [4, 5, 6]], 1) == 3


def test_real():
    assert real(3).dtype == torch.float32 and real(3).shape == ()
    assert torch.equal(real([1, 0, -1]), torch.tensor([1.0, 0.0, -1.0]))
    assert real(torch.tensor([1, 2])).dtype == torch.float32
    d = torch.tensor([1.0], dtype=torch.float64)
    assert real(d).dtype == torch.float64
    x = leaf(torch.tensor(2.0))
    v = real([x, 3.0])                    # a list holding tensors keeps their graph
    assert v.shape == (2,) and v.requires_grad and grad(v.sum(), x).item() == 1.0


def test_sampling_shapes_and_seed():
    manual_seed(7)
    a = sample_normal(0.0, 1.0, 1000)
    manual_seed(7)
    b = sample_normal(0.0, 1.0, 1000)
    assert torch.equal(a, b) and a.shape == (1000,) and a.dtype == torch.float32
    assert abs(a.mean().item()) < 0.15 and abs(a.std().item() - 1) < 0.15
    shifted = sample_normal(torch.tensor([0.0, 100.0]), 0.01)
    assert shifted.shape == (2,) and abs(shifted[1].item() - 100) < 1
    assert sample_normal(0.0, 1.0, 2.9, 3).shape == (2, 3)
    u = sample_uniform(2.0, 3.0, 500, generator=torch.Generator().manual_seed(1))
    assert u.min() >= 2.0 and u.max() <= 3.0


def test_device_selection(monkeypatch):
    try:
        assert set_device("cpu") == torch.device("cpu")
        assert runtime.device() == torch.device("cpu")
        assert set_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
        with pytest.raises(ValueError, match="unknown device"):
            set_device("tpu")
        if not torch.cuda.is_available():
            with pytest.raises(ValueError, match="no CUDA GPU"):
                set_device("cuda")
    finally:
        set_device("cpu")


def test_summary_table():
    net = ConvNets(torch.ones(3, 3), 0.0, torch.zeros(10, 169), torch.zeros(10))
    text = format_summary(net)
    lines = text.splitlines()
    assert lines[0] == "ConvNets"
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line and line[0] not in "─"}
    assert rows["kernel"] == ["ℝ[3,3]", "9"]
    assert rows["b1"] == ["ℝ", "1"]
    assert rows["w"] == ["ℝ[10,169]", "1,690"]
    assert rows["b2"] == ["ℝ[10]", "10"]
    assert rows["total"] == ["1,710"]


def test_summary_expands_nested_instances(capsys):
    class Outer:
        _fields = ("inner", "scale")

        def __init__(self):
            self.inner = ConvNets(torch.ones(2, 2), 1.0, torch.ones(1), torch.ones(1))
            self.scale = 2.0
    runtime.summary(Outer())
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[4:-2]]
    assert rows == [["inner.kernel", "ℝ[2,2]", "4"], ["inner.b1", "ℝ", "1"], ["inner.w", "ℝ[1]", "1"],
                    ["inner.b2", "ℝ[1]", "1"], ["scale", "ℝ", "1"]]
    assert out.splitlines()[-1].split()[-1] == "8"


def test_importing_runtime_pulls_in_nothing_heavy():
    code = ("import sys, runtime; heavy = [m for m in ('sklearn', 'torchvision', 'mlxtend', "
            "'matplotlib', 'scipy', 'pandas') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- runtime errors

PHK = textwrap.dedent("""\
    def pick(xs: ℝ[m]): ℝ:
        i: ℕ = 30
        return xs[i]
    def mul(a: ℝ[2, 3], b: ℝ[4, 5]): ℝ[2, 5]:
        return a @ b
    def ratio(n: ℕ): ℝ:
        return 1 // n
    data = create_dataset(80, 100000)
    """)

GENERATED = textwrap.dedent("""\
    import torch
    from runtime import create_dataset


    def pick(xs):
        i = 30
        return xs[i]


    def mul(a, b):
        return a @ b


    def ratio(n):
        q = 1
        return q // n


    def main():
        data = create_dataset(80, 100000)


    def call(f, *args):
        return f(*args)
    """)

# generated line -> (phk line, col); line 16 (`return q // n`) is deliberately absent: it maps
# through the nearest line above.
LINES = {6: (2, 5), 7: (3, 12), 11: (5, 12), 15: (7, 12), 19: (8, 8)}


@pytest.fixture
def generated(tmp_path):
    path = tmp_path / "prog_gen.py"
    path.write_text(GENERATED)
    spec = importlib.util.spec_from_file_location("prog_gen", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, {str(path): LINES}


def _raised(fn, *args):
    try:
        fn(*args)
    except BaseException as exc:      # noqa: BLE001 — the test hands it to translate
        return exc
    raise AssertionError("no exception")


def test_index_error_points_at_the_phk_line(generated):
    module, table = generated
    err = translate(_raised(module.call, module.pick, torch.zeros(28)), table,
                    source_name="prog.phk", source=PHK)
    assert isinstance(err, PhysikaRuntimeError)
    assert (err.filename, err.line, err.col) == ("prog.phk", 3, 12)
    assert err.message == "index 30 is out of range for axis 0 of size 28"
    assert err.render().splitlines() == [
        "prog.phk:3:12: runtime error: index 30 is out of range for axis 0 of size 28",
        "        return xs[i]",
        "               ^^^^^",
        "  note: in `pick`, called at prog.phk:8:8",     # `call`'s line calls it
    ]


def test_shape_error(generated):
    module, table = generated
    err = translate(_raised(module.mul, torch.ones(2, 3), torch.ones(4, 5)), table, source_name="p.phk")
    assert (err.line, err.col) == (5, 12)
    assert err.message.startswith("`@` shapes do not fit: ") and "ℝ[2,3] @ ℝ[4,5]" in err.message
    assert err.source_line is None and err.render().splitlines()[0].startswith("p.phk:5:12: runtime error:")


def test_zero_division_maps_through_the_nearest_line_above(generated):
    module, table = generated
    err = translate(_raised(module.ratio, 0), table, source_name="p.phk", source=PHK)
    assert (err.line, err.col, err.message) == (7, 12, "division by zero")
    assert err.source_line == "    return 1 // n"


def test_error_raised_inside_the_runtime_points_at_the_calling_line(generated):
    module, table = generated
    err = translate(_raised(module.main), table, source_name="p.phk", source=PHK)
    assert (err.line, err.col) == (8, 8)
    assert "create_dataset asks for 100000 images" in err.message
    assert "PhysikaRuntimeError" not in err.render()


def test_errors_outside_generated_code_are_not_translated(generated):
    _, table = generated
    assert translate(_raised(lambda: [][1]), table) is None
    assert translate(KeyboardInterrupt(), table) is None


def test_other_exceptions_keep_their_kind(generated):
    module, table = generated
    err = translate(_raised(module.call, module.pick, {}), table)
    assert err.message.startswith("KeyError") and err.line == 3


def test_physika_runtime_error_renders_with_hint():
    err = PhysikaRuntimeError("boom", "a.phk", 2, 3, "x = y\tz", hint="look here")
    assert str(err) == "a.phk:2:3: runtime error: boom\n    x = y   z\n      ^^^^^^^\n  hint: look here"


def test_a_cuda_device_turns_tf32_off():
    """On a GPU, float32 products and convolutions stay float32 (no TF32): checked without a GPU
    by asking for the switches the device would set."""
    from phc.runtime import ops
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        ops._strict_float32()
        assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
