"""The IR analyses: loop marks by dependence, grad reachability, independence of host loops."""
from pathlib import Path

from phc import pipeline
from phc.ir import nodes as n
from phc.ir.analysis import walk_stmts

PROGRAMS = Path(__file__).parent / "programs"


def lowered(source: str, name="t"):
    program, typed = pipeline.frontend(source, f"{name}.phk")
    return pipeline.lower(typed)


def func(module, name):
    for f in module.functions:
        if f.name == name:
            return f
    for c in module.classes:
        for m in c.methods:
            if m.name == name:
                return m
    return module.main if name == "main" else None


def loops(stmts):
    return [s for s in walk_stmts(stmts) if isinstance(s, n.Loop)]


def test_partial_store_loop_is_parallel():
    m = lowered((PROGRAMS / "partial_store.phk").read_text())
    (loop,) = loops(func(m, "set_diag").body)
    assert loop.mark is n.Mark.PARALLEL


def test_gather_stays_host_code_with_a_reason():
    m = lowered((PROGRAMS / "gather.phk").read_text())
    (loop,) = loops(func(m, "gather").body)
    assert loop.mark in (n.Mark.INDEPENDENT, n.Mark.SERIAL) and "data-dependent" in loop.note


def test_accumulation_in_a_store_is_a_reduction_loop():
    src = ("def colsum(x: ℝ[m, n], r: ℝ[n]): ℝ[n]:\n    for i: ℕ(len(x)):\n        for j: ℕ(len(x[0])):\n"
           "            r[j] = r[j] + x[i, j]\n    return r\n")
    m = lowered(src)
    outer, inner = loops(func(m, "colsum").body)
    assert outer.mark is n.Mark.REDUCTION and inner.mark is n.Mark.PARALLEL


def test_reductions_and_scev(seed_source):
    m = lowered(seed_source, "seed")
    # declared ℝ: the count is returned as a real (class U of issue 9)
    assert func(m, "get_1d_array_length").body == (n.Return(n.Un("float", n.Dim(n.Sym("x"), 0))),)
    assert func(m, "get_2d_array_num_rows").inlined
    conv = func(m, "conv2d")
    (ret,) = conv.body
    assert isinstance(ret.value, n.Tabulate)
    assert not any(isinstance(x, n.Call) for x in _walk(ret.value))


def test_no_helper_call_survives_inside_a_nest(seed_source):
    m = lowered(seed_source, "seed")
    for name in ("conv2d", "maxpool2d", "flatten", "linear", "relu2d", "softmax"):
        f = func(m, name)
        for s in walk_stmts(f.body):
            for e in _values(s):
                for t in _walk(e):
                    if isinstance(t, (n.Tabulate, n.Reduce)):
                        assert not any(isinstance(c, n.Call) for c in _walk(t)), name


def test_seed_grad_reachability(seed_source):
    m = lowered(seed_source, "seed")
    (cls,) = m.classes
    assert cls.grad_fields == {"kernel", "b1", "w", "b2"}
    marks = {s.name: s.nograd for s in walk_stmts(m.main.body) if isinstance(s, n.Assign)}
    # the running loss and the updated tensors never reach a grad; the forward values do
    assert marks["loss"] and marks["new_kernel"] and marks["new_w"] and marks["pred_class"]
    assert not marks["z"] and not marks["current_loss"] and not marks["input"] and not marks["cnn_object"]


def test_seed_loop_independence(seed_source):
    m = lowered(seed_source, "seed")
    # the evaluation loop is batched (phc/ir/batch.py): the loop as it was is the guard's else
    top = [s.orelse[0] if isinstance(s, n.If) and s.orelse else s for s in m.main.body]
    train, evaluation = [s for s in top if isinstance(s, n.Loop)]
    assert train.mark is n.Mark.SERIAL
    (inner,) = [s for s in train.body if isinstance(s, n.Loop)]
    assert inner.mark is n.Mark.SERIAL            # cnn_object flows from one sample to the next
    assert evaluation.mark is n.Mark.INDEPENDENT  # apart from the `correct += 1` reduction
    assert evaluation.nograd


def _values(s):
    for attr in ("value", "y", "cond"):
        v = getattr(s, attr, None)
        if v is not None:
            yield v


def _walk(e):
    from phc.ir.simplify import children
    yield e
    for c in children(e):
        yield from _walk(c)


def test_verifier_accepts_every_test_program(seed_source):
    from phc.ir.verify import verify_module
    for path in sorted(PROGRAMS.glob("*.phk")):
        verify_module(lowered(path.read_text(), path.stem))
    verify_module(lowered(seed_source, "seed"))


def test_verifier_rejects_a_non_affine_nest():
    import pytest
    from phc.ir.verify import VerifyError, verify_function
    store = n.Store(n.Sym("x"), (n.Load(n.Sym("idx"), (n.Sym("i"),)),), n.Const(1.0))
    bad = n.Function("f", (), "f32", (n.Loop(n.Axis("i", n.Const(0), n.Const(3)), (store,), n.Mark.PARALLEL),))
    with pytest.raises(VerifyError, match="not affine"):
        verify_function(bad)


def test_dump_folder_holds_every_stage(tmp_path, monkeypatch, seed_source):
    monkeypatch.setenv("PHC_DUMP", str(tmp_path))
    pipeline.compile_source(seed_source, "cnn_seed.phk", "torch")
    assert {p.suffix for p in tmp_path.iterdir()} == {".ast", ".typed", ".affine", ".kernels", ".triton", ".py"}
