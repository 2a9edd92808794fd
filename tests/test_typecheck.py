"""The shape and type checker: the seed, every error it must catch, and positive cases."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from phc import ast
from phc.parse import parse
from phc.typecheck import TypedProgram, check
from phc.typed_text import format_typed

EXPR_NODES = (ast.Num, ast.Str, ast.Name, ast.This, ast.ArrayLit, ast.BinOp, ast.UnaryOp,
              ast.Call, ast.Index, ast.Attribute, ast.Comprehension, ast.Sample)


def typed(src: str) -> TypedProgram:
    return check(parse(textwrap.dedent(src).lstrip("\n"), "t.phk"))


def errors(tp: TypedProgram):
    return [d for d in tp.diagnostics if d.is_error]


def warnings(tp: TypedProgram):
    return [d for d in tp.diagnostics if not d.is_error]


def one_error(src: str):
    tp = typed(src)
    errs = errors(tp)
    assert len(errs) == 1, [d.render() for d in tp.diagnostics]
    return errs[0]


def clean(src: str) -> TypedProgram:
    tp = typed(src)
    assert not tp.diagnostics, [d.render() for d in tp.diagnostics]
    return tp


def gtype(tp: TypedProgram, name: str) -> str:
    return str(tp.globals[name])


@pytest.fixture(scope="module")
def seed(seed_source, seed_path) -> TypedProgram:
    return check(parse(seed_source, str(seed_path)))


# ---------------------------------------------------------------- the seed

def test_seed_has_no_errors(seed):
    assert errors(seed) == []


def test_seed_warnings_are_exactly_these(seed):
    got = [(d.span.line, d.message) for d in warnings(seed)]
    assert got == [
        (16, "`temp` is declared ℝ but it is assigned ℝ[n]"),
        (142, "argument `x` of `get_1d_array_length` is declared ℝ[m] but it gets "
              "ℝ[N_train,28,28]"),
        (176, "argument `x` of `get_1d_array_length` is declared ℝ[m] but it gets "
              "ℝ[N_test,28,28]"),
    ]


def test_seed_every_expression_is_typed(seed):
    missing = [n for n in ast.walk(seed.program)
               if isinstance(n, EXPR_NODES) and n not in seed.expr_types]
    assert missing == []


def test_seed_typed_text(seed, seed_source):
    text = format_typed(seed)
    for line in [
        "  def conv2d(input: ℝ[H,W], kernel: ℝ[K,K], bias: ℝ) -> ℝ[m,n]",
        "    results: ℝ[H-K+1,W-K+1]",      # out_H = len(input) - len(kernel) + 1, as a formula
        "    results: ℝ[m//2,n//2]",        # maxpool2d: rows = get_2d_array_num_rows(x) / 2
        "    pool1: ℝ[(H-K+1)//2,(W-K+1)//2]",  # the λ: conv2d, then maxpool2d
        "    acc: ℝ",
        "  def linear(x: ℝ[n], weight: ℝ[m,n], bias: ℝ[m]) -> ℝ[m]",
        "class ConvNets(kernel: ℝ[K,K], b1: ℝ, w: ℝ[m,n], b2: ℝ[m])",
        "def zero_2d_array(rows: ℝ, cols: ℝ) -> ℝ[m,n]",
        "  w: ℝ[10,169]",
        "  kernel: ℝ[3,3]",
        "  train_X: ℝ[N_train,28,28]",
        "  train_y: ℕ[N_train]",
        "  cnn_object: ConvNets",
        "  z: ℝ[10]",
        "  dk: ℝ[3,3]",
        "  dw: ℝ[10,169]",
        "  loss: ℝ",
        "  accuracy: ℝ",
    ]:
        assert line in text.splitlines(), line
    assert text == format_typed(check(parse(seed_source, "again.phk")))


def test_seed_details(seed):
    conv = seed.classes["ConvNets"]
    assert list(conv.fields) == ["kernel", "b1", "w", "b2"]
    assert "λ" in conv.methods and conv.methods["λ"].owner == "ConvNets"
    assert str(seed.functions["softmax"].locals["results"]) == "ℝ[m]"    # len_x = len(x)
    assert str(seed.functions["get_sum_of_1d_array"].locals["total"]) == "ℝ"  # widened from ℕ
    assert "argmax" in seed.functions and "cross_entropy" in seed.functions
    assert str(seed.functions["max"].params["x"]) == "ℝ"


def test_seed_checks_fast(seed):
    program = seed.program
    start = time.perf_counter()
    for _ in range(10):
        check(program)
    assert (time.perf_counter() - start) / 10 < 0.05


def test_checker_imports_no_torch():
    code = ("import sys, phc.typecheck, phc.typed_text, phc.builtins; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------------------------------------------------------------- errors

def test_unknown_name_suggests():
    d = one_error("""
        kernel: ℝ[3] = [1, 2, 3]
        y = kernl[0]
    """)
    assert d.message == "unknown name `kernl`"
    assert d.hint == "did you mean 'kernel'?"
    assert (d.span.line, d.span.col) == (2, 5)


def test_wrong_number_of_arguments():
    d = one_error("""
        def f(a: ℝ, b: ℝ): ℝ:
            return a + b
        z = f(1)
    """)
    assert d.message == "`f` takes 2 arguments but 1 was given"
    assert (d.span.line, d.span.col) == (3, 5)


def test_calling_a_number():
    d = one_error("""
        q: ℝ = 2
        r = q(3)
    """)
    assert d.message == "`q` is not a function or class: it has type ℝ"
    assert (d.span.line, d.span.col) == (2, 5)


def test_calling_an_instance_without_lambda():
    d = one_error("""
        class C:
            w: ℝ
        c = C(1.0)
        y = c(2)
    """)
    assert d.message == "`c` is not callable: class `C` defines no `λ`"
    assert (d.span.line, d.span.col) == (4, 5)


def test_elementwise_rank_mismatch():
    d = one_error("""
        a: ℝ[2, 2] = [[1, 2], [3, 4]]
        v: ℝ[2] = [1, 2]
        s = a + v
    """)
    assert d.message == "`+` needs operands of the same rank, not ℝ[2,2] and ℝ[2]"
    assert (d.span.line, d.span.col) == (3, 5)


def test_elementwise_shape_mismatch():
    d = one_error("""
        a: ℝ[2] = [1, 2]
        b: ℝ[3] = [1, 2, 3]
        s = a * b
    """)
    assert d.message == "`*` operands have different shapes: ℝ[2] and ℝ[3]"
    assert d.span.line == 3


def test_matmul_inner_dimensions():
    d = one_error("""
        m: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]
        p = m @ m
    """)
    assert d.message == "`@` inner dimensions differ: ℝ[2,3] @ ℝ[2,3] (3 ≠ 2)"
    assert (d.span.line, d.span.col) == (2, 5)


def test_matmul_symbolic_inner_dimensions():
    d = one_error("""
        def f(a: ℝ[m, 3], b: ℝ[4, n]): ℝ[m, n]:
            return a @ b
    """)
    assert d.message == "`@` inner dimensions differ: ℝ[m,3] @ ℝ[4,n] (3 ≠ 4)"
    assert (d.span.line, d.span.col) == (2, 12)


def test_too_many_subscripts():
    d = one_error("""
        v: ℝ[3] = [1, 2, 3]
        t = v[0, 1]
    """)
    assert d.message == "too many subscripts: `v` has type ℝ[3] (rank 1) but is indexed with 2"
    assert (d.span.line, d.span.col) == (2, 5)


def test_indexing_a_number():
    d = one_error("""
        def f(x: ℝ): ℝ:
            return x[0]
    """)
    assert d.message == "too many subscripts: `x` has type ℝ (rank 0) but is indexed with 1"
    assert (d.span.line, d.span.col) == (2, 12)


def test_literal_contradicts_declaration():
    d = one_error("x: ℝ[3] = [1, 2]\n")
    assert d.message == "`x` is declared ℝ[3] but its value has type ℝ[2]"
    assert (d.span.line, d.span.col) == (1, 11)


def test_number_where_tensor_declared():
    d = one_error("x: ℝ[3] = 1\n")
    assert d.message == "`x` is declared ℝ[3] but its value has type ℝ"
    assert "a number is not a tensor" in d.hint


def test_non_rectangular_literal():
    d = one_error("bad = [[1, 2], [3]]\n")
    assert d.message == ("the array is not rectangular: item 2 has type ℕ[1] "
                         "but item 1 has type ℕ[2]")
    assert (d.span.line, d.span.col) == (1, 16)


def test_return_outside_function():
    d = one_error("x = 1\nreturn x\n")
    assert d.message == "`return` outside a function"
    assert (d.span.line, d.span.col) == (2, 1)


def test_this_outside_class():
    d = one_error("""
        def f(x: ℝ): ℝ:
            return this.w + x
    """)
    assert d.message == "`this` outside a class"
    assert (d.span.line, d.span.col) == (2, 12)


def test_grad_of_an_expression():
    d = one_error("""
        x: ℝ = 2
        y = x * x
        g = grad(y, x * 2)
    """)
    assert d.message == "the second argument of `grad` must be a variable or a field"
    assert (d.span.line, d.span.col) == (3, 13)


def test_unknown_field_outside_and_inside_the_class():
    tp = typed("""
        class C:
            w: ℝ[3]
            def get(k: ℝ): ℝ:
                return this.nope + k
        obj = C([1, 2, 3])
        n = obj.ww
    """)
    got = [(d.message, d.span.line, d.span.col, d.hint) for d in errors(tp)]
    assert got == [("class `C` has no field `nope`", 4, 16, None),
                   ("class `C` has no field `ww`", 6, 5, "did you mean 'w'?")]


def test_undefined_method():
    tp = typed("""
        class C:
            w: ℝ[3]
            def scale(k: ℝ): ℝ[3]:
                return this.w * k
            def call(k: ℝ): ℝ[3]:
                return this.scal(k)
        obj = C([1, 2, 3])
        n = obj.frob(2)
    """)
    got = [(d.message, d.span.line, d.span.col, d.hint) for d in errors(tp)]
    assert got == [("class `C` has no method `scal`", 6, 16, "did you mean 'scale'?"),
                   ("class `C` has no method `frob`", 8, 5, None)]


def test_conflicting_symbol_binding():
    d = one_error("""
        def g(x: ℝ[m], y: ℝ[m]): ℝ[m]:
            return x + y
        c = g([1, 2], [1, 2, 3])
    """)
    assert d.message == "argument `y` of `g` gets ℝ[3], but `m` is 2 from the other arguments"
    assert (d.span.line, d.span.col) == (3, 15)


def test_number_argument_where_tensor_declared():
    d = one_error("""
        def g(x: ℝ[m]): ℝ:
            return sum(x)
        c = g(3)
    """)
    assert d.message == "argument `x` of `g` is declared ℝ[m] but it gets ℝ"


def test_constructor_checks_count_and_field_shapes():
    tp = typed("""
        class Net(W: ℝ[2, 3]):
            b: ℝ[2]
        a = Net([[1, 2, 3], [4, 5, 6]])
        c = Net([[1, 2], [3, 4]], [0, 0])
    """)
    got = [(d.message, d.span.line) for d in errors(tp)]
    # `class Net(W):` takes its parameters; the field b may be given too, else starts at zero
    assert got == [("field `W` of `Net` is declared ℝ[2,3] but it gets ℝ[2,2]", 4)]
    d = one_error("class Net(W: ℝ[2, 3]):\n    b: ℝ[2]\nc = Net()\n")
    assert d.message == "`Net` takes 1 to 2 arguments but 0 were given"


def test_unknown_class_type():
    d = one_error("class Model:\n    w: ℝ\nm: Modle = Model(1)\n")
    assert d.message == "unknown type `Modle`"
    assert d.hint == "did you mean 'Model'?"


def test_duplicate_definition():
    tp = typed("def f(x: ℝ): ℝ:\n    return x\ndef f(x: ℝ): ℝ[2]:\n    return [x, x]\ny = f(1.0)\n")
    assert errors(tp) == []
    (d,) = warnings(tp)
    assert d.message == "`f` is defined again: this definition replaces the one on line 1"
    assert (d.span.line, d.span.col) == (3, 5)
    assert str(tp.globals["y"]) == "ℝ[2]"


def test_class_and_function_of_one_name():
    d = one_error("class f:\n    w: ℝ\ndef f(x: ℝ): ℝ:\n    return x\n")
    assert d.message == "`f` is defined twice"
    assert d.span.line == 3


def test_declared_return_contradicted():
    d = one_error("""
        def f(x: ℝ[3]): ℝ[4]:
            return x
    """)
    assert d.message == "`f` is declared to return ℝ[4] but it returns ℝ[3]"
    assert (d.span.line, d.span.col) == (2, 12)


def test_all_errors_reported_in_one_run():
    tp = typed("""
        a = nope + 1
        b = a * 2
        v: ℝ[3] = [1, 2]
        w = v[0, 0]
        def f(x: ℝ): ℝ:
            return undefined_thing(x)
        return 1
        c = nope * 2
    """)
    assert [d.span.line for d in errors(tp)] == [1, 3, 4, 6, 7]     # `nope` is reported once
    assert str(tp.globals["b"]) == "?"           # unknown absorbs the follow-ups


def test_undeclared_variable_changing_rank_warns():
    tp = typed("x = 0\nx = [1, 2]\n")
    assert errors(tp) == []
    assert [(d.message, d.span.line) for d in warnings(tp)] == [
        ("`x` held ℕ and is now assigned ℕ[2]", 2)]


def test_real_into_natural_warns():
    tp = typed("n: ℕ = 2.5\n")
    assert errors(tp) == []
    assert [d.message for d in warnings(tp)] == ["`n` is declared ℕ but its value has type ℝ"]


@pytest.mark.parametrize("src", [
    "", "x = 1\n", "for i:\n    x = i\n", "y = [[[]]]\n", "z = create_dataset()[5]\n",
    "def f(): ℝ:\n    return\n", "class C:\n    def λ(x: ℝ) -> ℝ:\n        return x\nc = C()\nc(1, 2)\n",
    "a = len(3)\n", "b = zeros()\n", "print(\"hi\", 1)\n", "x: ℝ[3] ~ 𝒩(0, 1)\n",
])
def test_never_raises(src):
    tp = typed(src)
    assert all(d.message and "internal error" not in d.message for d in tp.diagnostics)


def test_never_raises_on_odd_trees():
    weird = ast.Program((
        ast.Assign(ast.Num(1, "1"), ast.Num(2, "2")),
        ast.AugAssign(ast.Call(ast.Name("f"), ()), "+", ast.Num(1, "1")),
        ast.ExprStmt(ast.Index(ast.Num(1, "1"), (ast.Slice(None, None, None),))),
        ast.FuncDef("λ", (), None, ()),
    ))
    tp = check(weird)
    assert errors(tp)
    assert all("internal error" not in d.message for d in tp.diagnostics)


# ---------------------------------------------------------------- positive cases

def test_call_binds_symbols_per_call():
    tp = clean("""
        def transpose(x: ℝ[m, n]): ℝ[n, m]:
            return for j: ℕ(len(x[0])) -> for i: ℕ(len(x)) -> x[i, j]
        a: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]
        t = transpose(a)
        u = transpose(t)
    """)
    assert gtype(tp, "t") == "ℝ[3,2]"
    assert gtype(tp, "u") == "ℝ[2,3]"
    assert str(tp.functions["transpose"].ret) == "ℝ[n,m]"


def test_value_dependent_sizes_refined_from_the_body():
    tp = clean("""
        def zero_2d_array(rows: ℝ, cols: ℝ): ℝ[m, n]:
            results: ℝ[rows, cols] = for i: ℕ(rows) -> for j: ℕ(cols) -> j*0
            return results
        z = zero_2d_array(3, 4)
        r: ℝ = 5
        y = zero_2d_array(r, 2)
    """)
    assert gtype(tp, "z") == "ℝ[3,4]"
    assert gtype(tp, "y") == "ℝ[5,2]"          # r is bound once: its value is the size


def test_matmul_shapes():
    tp = clean("""
        a: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]
        b: ℝ[3, 4] = for i: ℕ(3) -> for j: ℕ(4) -> 1
        v: ℝ[3] = [1, 2, 3]
        mm = a @ b
        mv = a @ v
        vv = v @ v
        vm = v @ b
    """)
    assert [gtype(tp, n) for n in ("mm", "mv", "vv", "vm")] == ["ℝ[2,4]", "ℝ[2]", "ℝ", "ℝ[4]"]


def test_comprehension_shapes():
    tp = clean("""
        def double(x: ℝ[n]): ℝ[n]:
            return for i -> x[i] * 2
        w = for i: ℕ(10) -> for j: ℕ(169) -> sin(3.14 * i / 9)
        k: ℕ = 4
        g = for i: ℕ(k) -> i
        h = for i: ℕ(2, 7) -> [i, i]
        d = double(g)
    """)
    assert gtype(tp, "w") == "ℝ[10,169]"
    assert gtype(tp, "g") == "ℕ[4]"
    assert gtype(tp, "h") == "ℕ[5,2]"
    assert gtype(tp, "d") == "ℝ[4]"
    assert str(tp.functions["double"].ret) == "ℝ[n]"


def test_rank_3_and_4_tensors():
    tp = clean("""
        def conv_c(x: ℝ[C, H, W], w: ℝ[O, C, K, K], b: ℝ[O]): ℝ[O, H, W]:
            r: ℝ[len(w), len(x[0]), len(x[0][0])] = for o: ℕ(len(w)) -> for i: ℕ(len(x[0])) -> for j: ℕ(len(x[0][0])) -> 0
            for o i j:
                acc = b[o]
                for c: ℕ(len(x)):
                    acc += x[c, i, j] * w[o, c, 0, 0]
                r[o, i, j] = acc
            return r
        img: ℝ[2, 5, 5] ~ 𝒩(0, 1)
        ker: ℝ[4, 2, 3, 3] ~ 𝒩(0, 1)
        bias = zeros(4)
        out = conv_c(img, ker, bias)
        row = out[1]
        px = out[1, 2]
    """)
    conv = tp.functions["conv_c"]
    assert str(conv.locals["r"]) == "ℝ[O,H,W]"
    assert str(conv.locals["acc"]) == "ℝ"
    assert gtype(tp, "out") == "ℝ[4,5,5]"
    assert gtype(tp, "row") == "ℝ[5,5]"
    assert gtype(tp, "px") == "ℝ[5]"


def test_class_with_params_lambda_and_this():
    tp = clean("""
        class Net(W: ℝ[2, 3]):
            b: ℝ[2]
            def affine(x: ℝ[3]): ℝ[2]:
                return this.W @ x + this.b
            def λ(x: ℝ[3]) -> ℝ[2]:
                return this.affine(x)
        net = Net([[1, 2, 3], [4, 5, 6]], [0, 0])
        y = net([1, 1, 1])
        wt = net.W
        z = net.affine([1, 0, 0])
    """)
    net = tp.classes["Net"]
    assert list(net.fields) == ["W", "b"]
    assert list(net.methods) == ["affine", "λ"]
    assert [gtype(tp, n) for n in ("net", "y", "wt", "z")] == ["Net", "ℝ[2]", "ℝ[2,3]", "ℝ[2]"]


def test_instance_fields_keep_constructor_sizes():
    tp = clean("""
        class Layer:
            w: ℝ[m, n]
            b: ℝ[m]
            def λ(x: ℝ[n]) -> ℝ[m]:
                y: ℝ[m] = this.w @ x + this.b
                return y
        layer = Layer(for i: ℕ(4) -> for j: ℕ(6) -> 0.1, zeros(4))
        out = layer(for j: ℕ(6) -> 1.0)
        gw = grad(sum(out), layer.w)
        layer = Layer(layer.w - 0.1 * gw, layer.b)
    """)
    assert gtype(tp, "out") == "ℝ[4]"
    assert gtype(tp, "gw") == "ℝ[4,6]"
    assert gtype(tp, "layer") == "Layer"


def test_user_definitions_shadow_builtins_and_params_shadow_functions():
    tp = clean("""
        def max(x: ℝ, y: ℝ): ℝ:
            if x > y:
                return x
            return y
        def zero_1d_array(len: ℝ): ℝ[m]:
            results: ℝ[len] = for i: ℕ(len) -> i*0
            return results
        a = max(1, 2)
        z = zero_1d_array(7)
        n = len(z)
    """)
    assert gtype(tp, "a") == "ℝ"
    assert gtype(tp, "z") == "ℝ[7]"
    assert gtype(tp, "n") == "ℕ"


def test_functions_defined_after_use():
    tp = clean("""
        y = twice(3.0)
        def twice(x: ℝ): ℝ:
            return 2 * x
    """)
    assert gtype(tp, "y") == "ℝ"


def test_datasets_and_tuples():
    tp = clean("""
        data = create_digits(80)
        train_X = data[0][0]
        train_y = data[0][1]
        image = train_X[0]
        label = train_y[0]
    """)
    assert gtype(tp, "train_X") == "ℝ[N_train,8,8]"
    assert gtype(tp, "train_y") == "ℕ[N_train]"
    assert gtype(tp, "image") == "ℝ[8,8]"
    assert gtype(tp, "label") == "ℕ"


def test_numbers_literals_and_kinds():
    tp = clean("""
        k: ℝ[3] = [1, 0, -1]
        n = 7 // 2
        r = 7 / 2
        d = 3 - 5
        c = 1 < 2
        x: ℝ = 3
        y = x + n
    """)
    assert tp.expr_types[tp.program.body[0].value] == tp.globals["k"]   # the literal is real
    assert [gtype(tp, v) for v in "nrdcxy"] == ["ℕ", "ℝ", "ℤ", "𝔹", "ℝ", "ℝ"]


def test_slices_and_real_indices():
    tp = clean("""
        v: ℝ[10] = for i: ℕ(10) -> i
        a = v[2:5]
        b = v[:]
        c = v[::2]
        def f(x: ℝ[n], k: ℝ): ℝ:
            head = x[0:3]
            return x[k]
        s = f(v, 2.5)
    """)
    assert [gtype(tp, n) for n in "abcs"] == ["ℝ[3]", "ℝ[10]", "ℝ[5]", "ℝ"]
    assert str(tp.functions["f"].locals["head"]) == "ℝ[3]"


def test_loop_carried_accumulator_becomes_real():
    tp = clean("""
        def total(x: ℝ[n]): ℝ:
            t = 0
            for i:
                t += x[i]
            return t
    """)
    f = tp.functions["total"]
    assert str(f.locals["t"]) == "ℝ"
    assert str(f.locals["i"]) == "ℕ"
    loop, ret = tp.program.body[0].body[1:]
    t_uses = [e for e in ast.walk(loop) if isinstance(e, ast.Name) and e.id == "t"]
    assert [str(tp.expr_types[e]) for e in t_uses + [ret.value]] == ["ℝ", "ℝ"]


def test_undeclared_return_is_inferred():
    tp = clean("""
        def sq(x: ℝ[n]):
            return x * x
        def show(x: ℝ):
            physika_print(x)
        y = sq([1.0, 2.0])
        show(1)
    """)
    assert str(tp.functions["sq"].ret) == "ℝ[n]"
    assert str(tp.functions["show"].ret) == "None"
    assert gtype(tp, "y") == "ℝ[2]"
    assert "def sq(x: ℝ[n]) -> ℝ[n] (inferred)" in format_typed(tp)


def test_recursion_uses_the_declared_signature():
    tp = clean("""
        def fact(n: ℕ): ℕ:
            if n < 1:
                return 1
            return n * fact(n - 1)
        f = fact(5)
    """)
    assert gtype(tp, "f") == "ℕ"


def test_loops_bind_their_variables():
    tp = clean("""
        def trace3(x: ℝ[n, n, n]): ℝ:
            t = 0.0
            for i j k:
                if i == j and j == k:
                    t += x[i, j, k]
            for a: ℕ(1, 3):
                t += a
            return t
    """)
    loc = tp.functions["trace3"].locals
    assert {v: str(loc[v]) for v in "ijka"} == {v: "ℕ" for v in "ijka"}


def test_tensor_condition():
    d = one_error("""
        v: ℝ[3] = [1, 2, 3]
        if v > 0:
            physika_print(v)
    """)
    assert d.message == "a condition must be a single value, not 𝔹[3]"
    assert (d.span.line, d.span.col) == (2, 4)


def test_typed_text_format():
    tp = clean("""
        class Scale(k: ℝ):
            def λ(x: ℝ[n]) -> ℝ[n]:
                y = this.k * x
                return y
        def twice(x: ℝ[n]):
            return 2 * x
        s = Scale(3.0)
        v = s([1.0, 2.0])
    """)
    assert format_typed(tp) == textwrap.dedent("""\
        class Scale(k: ℝ)
          def λ(x: ℝ[n]) -> ℝ[n]
            y: ℝ[n]

        def twice(x: ℝ[n]) -> ℝ[n] (inferred)

        program
          s: Scale
          v: ℝ[2]
    """)


def test_seed_with_a_line_removed_never_breaks_the_checker(seed_source):
    from phc.diagnostics import PhcError
    lines = seed_source.splitlines()
    checked = 0
    for i in range(3, len(lines), 4):
        try:
            program = parse("\n".join(lines[:i] + lines[i + 1:]), "cut.phk")
        except PhcError:
            continue
        tp = check(program)
        checked += 1
        assert all("internal error" not in d.message for d in tp.diagnostics), i
    assert checked > 20


def test_size_fields_give_instance_shapes():
    tp = clean("""
        class Buf:
            n: ℕ
            data: ℝ[n]
        b = Buf(4, [1.0, 2.0, 3.0, 4.0])
        d = b.data
    """)
    assert gtype(tp, "d") == "ℝ[4]"
    d = one_error("""
        class Buf:
            n: ℕ
            data: ℝ[n]
        b = Buf(3, [1.0, 2.0])
    """)
    assert d.message == "field `data` of `Buf` gets ℝ[2], but `n` is 3 from the other arguments"


def test_index_arrays():
    tp = clean("""
        x: ℝ[5, 3] ~ 𝒩(0, 1)
        idx: ℕ[2] = [4, 0]
        rows = x[idx]
        col = x[idx, 1]
    """)
    assert gtype(tp, "rows") == "ℝ[2,3]"
    assert gtype(tp, "col") == "ℝ[2]"
    d = one_error("""
        x: ℝ[5] = [1, 2, 3, 4, 5]
        y = x[[0.5, 1.5]]
    """)
    assert d.message == "an index must be a number or a tensor of whole numbers, not ℝ[2]"


def test_dimension_expressions():
    tp = clean("""
        def pad(x: ℝ[n]): ℝ[n+2]:
            r: ℝ[n+2] = for i: ℕ(len(x) + 2) -> 0.0
            for i: ℕ(len(x)):
                r[i + 1] = x[i]
            return r
        k: ℝ[2*3] = [1, 2, 3, 4, 5, 6]
        p = pad(k)
    """)
    assert gtype(tp, "k") == "ℝ[6]"
    assert str(tp.functions["pad"].ret) == "ℝ[n+2]"
    assert gtype(tp, "p") == "ℝ[8]"
    d = one_error("k: ℝ[2*3] = [1, 2]\n")
    assert d.message == "`k` is declared ℝ[6] but its value has type ℝ[2]"


@pytest.mark.parametrize("src,line,col", [
    ("y: ℝ[4] = [1, 2, 3, 4]\nz = for i -> y[i // 2]\nz\n", 2, 5),              # class V
    ("y: ℝ[4] = [1, 2, 3, 4]\nt = 0.0\nfor i:\n    t += y[i + 1]\nt\n", 3, 1),
])
def test_a_range_that_cannot_be_inferred_is_an_error(src, line, col):
    d = one_error(src)
    assert "cannot infer the range of `i`" in d.message and "ℕ(n)" in d.hint
    assert (d.span.line, d.span.col) == (line, col)


def test_a_plain_index_anywhere_gives_the_range():
    clean("y: ℝ[2, 4] = [[1, 2, 3, 4], [5, 6, 7, 8]]\nz = for j -> y[0, j] + y[1][j]\nz\n")


def test_assigning_the_result_of_a_function_without_return_values():
    """A function with no `return value` and no declared type returns nothing: assigning its
    call is an error at the call, not a TypeError at run time."""
    d = one_error("def f(x: ℝ):\n    y = x * 2\n\ns = f(1.0)\nt = s + 1\n")
    assert d.message == "`s` is assigned nothing: the call returns no value"
    assert (d.span.line, d.span.col) == (4, 5) and d.hint.startswith("call it on a line of its own")
    tp = check(parse("def f(x: ℝ):\n    if x > 0:\n        return x\n    return 0.0\ns = f(1.0)\n", "t.phk"))
    assert not [e for e in tp.diagnostics if e.is_error] and str(tp.globals["s"]) == "ℝ"
