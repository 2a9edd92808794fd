"""The constructs of issue 10 (the whole Physika language): types, diagnostics (line, column,
hint) and, where the pipeline runs them, the printed output."""
from __future__ import annotations

import textwrap

import pytest

from phc.parse import parse
from phc.typecheck import TypedProgram, check
from tests.helpers import run_program, same_output


def typed(src: str) -> TypedProgram:
    return check(parse(textwrap.dedent(src).lstrip("\n"), "t.phk"))


def errors(tp: TypedProgram):
    return [d for d in tp.diagnostics if d.is_error]


def clean(src: str) -> TypedProgram:
    tp = typed(src)
    assert not errors(tp), [d.render() for d in tp.diagnostics]
    return tp


def one_error(src: str):
    tp = typed(src)
    errs = errors(tp)
    assert len(errs) == 1, [d.render() for d in tp.diagnostics]
    return errs[0]


def runs(src: str, want: str, opt: int = 2) -> None:
    got = run_program(textwrap.dedent(src).lstrip("\n"), "torch", opt)
    assert same_output(got, textwrap.dedent(want).lstrip("\n")), got


# ---------------------------------------------------------------- grad of a function, Jacobians

JACOBIAN = """
    def sq(x: ℝ): ℝ:
        return x * x
    def pair(x: ℝ[m]): ℝ[n]:
        a: ℝ = x[0]
        b: ℝ = x[1]
        return [a * b, a + b, a]
    x: ℝ[2] = [2.0, 3.0]
    J = grad(pair, x)
    g = grad(sq, 3.0)
    K = grad(pair(x), x)
"""


def test_grad_of_a_function_is_its_derivative_or_jacobian():
    tp = clean(JACOBIAN)
    assert str(tp.globals["J"]) == "ℝ[3,2]"
    assert str(tp.globals["g"]) == "ℝ"
    assert str(tp.globals["K"]) == "ℝ[3,2]"


def test_jacobian_feeds_a_matrix_product():
    clean(textwrap.dedent(JACOBIAN) + "s: ℝ[3] = [1.0, 1.0, 1.0]\nv: ℝ[2] = s @ J\n")


def test_grad_of_a_function_runs():
    runs(textwrap.dedent(JACOBIAN) + "J\ng\n",
         "[[3.0, 2.0], [1.0, 1.0], [1.0, 0.0]] ∈ ℝ[3,2]\n6.0 ∈ ℝ\n")


def test_grad_of_a_function_of_two_arguments_is_an_error():
    d = one_error("""
        def f(a: ℝ, b: ℝ): ℝ:
            return a * b
        g = grad(f, 2.0)
    """)
    assert "needs a function of one argument" in d.message
    assert (d.span.line, d.span.col) == (3, 10)
    assert d.hint == "differentiate a call instead: `grad(f(a, b), a)`"


def runs_both(src: str, want: str) -> None:
    """The same printed output at level 0 (literal) and level 2."""
    for opt in (0, 2):
        runs(src, want, opt)


# ---------------------------------------------------------------- several names at once

def test_several_names_in_one_declaration_are_declarations():
    (a, b, c), = [parse("Lx, Ly, nx: ℝ = 1.0, 2.0, 40\n").body]
    assert [d.name for d in (a, b, c)] == ["Lx", "Ly", "nx"]
    assert all(str(d.type.scalar.value) == "ℝ" for d in (a, b, c))
    assert (b.span.line, b.span.col) == (1, 5)


def test_several_names_run():
    runs_both("""
        Lx, Ly, nx: ℝ = 1.0, 2.0, 40
        a, b = 7, 8
        Lx
        nx
        b
    """, "1.0 ∈ ℝ\n40.0 ∈ ℝ\n8 ∈ ℝ\n")


def test_swap_computes_every_value_first():
    runs_both("""
        a: ℝ = 1.0
        b: ℝ = 2.0
        a, b = b, a
        a
        b
    """, "2.0 ∈ ℝ\n1.0 ∈ ℝ\n")


def test_count_mismatch_is_a_syntax_error():
    from phc.diagnostics import PhcError
    with pytest.raises(PhcError) as info:
        parse("a, b: ℝ = 1.0, 2.0, 3.0\n", "t.phk")
    (d,) = info.value.diagnostics
    assert d.message == "2 names but 3 values"
    assert (d.span.line, d.span.col) == (1, 11)
    assert d.hint == "give one value per name"


# ---------------------------------------------------------------- tuple returns and unpacking

TUPLES = """
    class Point(x: ℝ, y: ℝ):
        def get() → ℝ, ℝ:
            return this.x, this.y
        def total() → ℝ:
            a, b = this.get()
            return a + b
    def pair(v: ℝ): ℝ, ℝ[2]:
        return v, [v, v]
    p: Point = Point(1.0, 2.0)
    a: ℝ, b: ℝ = p.get()
    s, w = pair(3.0)
    arr: ℝ[3] = [4.0, 5.0, 6.0]
    e1, e2, e3 = arr
"""


def test_tuple_returns_are_typed():
    tp = clean(TUPLES)
    assert str(tp.functions["pair"].ret) == "[ℝ, ℝ[2]]"
    assert str(tp.globals["w"]) == "ℝ[2]"
    assert str(tp.globals["a"]) == "ℝ" and str(tp.globals["e3"]) == "ℝ"


def test_tuple_returns_run():
    runs_both(textwrap.dedent(TUPLES) + "a\nb\np.total()\nw\ne3\n",
              "1.0 ∈ ℝ\n2.0 ∈ ℝ\n3.0 ∈ ℝ\n[3.0, 3.0] ∈ ℝ[2]\n6.0 ∈ ℝ\n")


def test_unpacking_the_wrong_count():
    d = one_error("""
        def pair(v: ℝ): ℝ, ℝ:
            return v, v
        a, b, c = pair(1.0)
    """)
    assert d.message == "3 names but the value holds 2 items ([ℝ, ℝ])"
    assert (d.span.line, d.span.col) == (3, 11)
    assert d.hint == "give one name per value"


def test_returning_two_values_from_a_one_value_function():
    d = one_error("""
        def f(v: ℝ): ℝ:
            return v, v
    """)
    assert d.message == "`f` is declared to return ℝ but it returns [ℝ, ℝ]"
    assert (d.span.line, d.span.col) == (2, 12)
    assert "def f() → ℝ, ℝ:" in d.hint


# ---------------------------------------------------------------- complex numbers

def test_complex_types_and_printing():
    tp = clean("""
        x: ℂ = 3 + 1j
        z: \\mathbb{C}[2] = [1 + 2j, 3j]
        m = abs(x)
        r = real(z)
    """)
    assert str(tp.globals["x"]) == "ℂ" and str(tp.globals["z"]) == "ℂ[2]"
    assert str(tp.globals["m"]) == "ℝ" and str(tp.globals["r"]) == "ℝ[2]"
    runs_both("""
        x: ℂ = 3 + 1j
        y: ℂ = 5 + 3j
        x * y
        x - y
        abs(3 + 4j)
        z: ℂ[2] = [1 + 2j, 3j]
        z
        real(z)
    """, "(12+14j) ∈ ℂ\n(-2-2j) ∈ ℂ\n5.0 ∈ ℝ\n[(1+2j), 3j] ∈ ℂ[2]\n[1.0, 0.0] ∈ ℝ[2]\n")


def test_complex_into_a_real_warns():
    tp = typed("x: ℝ = 2 + 1j\n")
    (d,) = tp.diagnostics
    assert not d.is_error and (d.span.line, d.span.col) == (1, 8)
    assert d.hint == "a real has no imaginary part: take `real(z)` or `abs(z)`"


def test_wirtinger_derivative_is_complex():
    runs("""
        z: ℂ[2] = [1 + 2j, 3 + 1j]
        loss = sum(abs(z) * abs(z))
        g = grad(loss, z)
        g
    """, "[(2+4j), (6+2j)] ∈ ℂ[2]\n", opt=2)


# ---------------------------------------------------------------- names, seeds, samples

def test_letters_as_names_and_ranges():
    # level 0 only: level 2 prints this real comprehension as ℕ (the W05 class, the lowering's)
    runs("""
        N: ℕ = 3
        M: R[N] = for i: N(N) → i * 2.0
        M
    """, "[0.0, 2.0, 4.0] ∈ ℝ[3]\n", opt=0)


def test_unknown_range_name():
    from phc.diagnostics import PhcError
    with pytest.raises(PhcError) as info:
        parse("for i: M(3):\n    pass\n", "t.phk")
    (d,) = info.value.diagnostics
    assert d.message == "a loop range is ℕ(n) or ℕ(a, b), not M(…)"
    assert (d.span.line, d.span.col) == (1, 8)


def test_seed_makes_draws_repeat():
    out = run_program("physika.seed(3)\na: ℝ[2] ~ 𝒩(0, 1)\nphysika.seed(3)\nb: ℝ[2] ~ 𝒩(0, 1)\n"
                      "a\nb\n", "torch", 2)
    first, second = out.splitlines()
    assert first == second


def test_samples_in_comprehensions_and_new_distributions():
    tp = clean("""
        z: ℝ[4, 2] = for i: ℕ(4) → ε: ℝ[2] ~ Normal(0.0, 1.0)
        w: ℝ[4, 3, 2] = for i: ℕ(4) → for j: ℕ(3) → ε: ℝ[2] ~ 𝒩(0.0, 1.0, 2)
        b: ℝ[5] ~ ℬ(2.0, 5.0, 5)
        g: ℝ ~ Gamma(2.0, 1.0)
        c: ℝ[10] ~ Bernoulli(0.5, 10)
    """)
    assert str(tp.globals["w"]) == "ℝ[4,3,2]"
    out = run_program("physika.seed(0)\nz: ℝ[4, 2] = for i: ℕ(4) → ε: ℝ[2] ~ Normal(0.0, 1.0)\n"
                      "z\nc: ℝ[6] ~ Bernoulli(1.0, 6)\nc\nb: ℝ[3] ~ ℬ(2.0, 5.0, 3)\nb\n", "torch", 2)
    lines = out.splitlines()
    assert lines[0].endswith("∈ ℝ[4,2]")
    assert lines[1] == "[1.0, 1.0, 1.0, 1.0, 1.0, 1.0] ∈ ℝ[6]"
    values = [float(v) for v in lines[2].split("]")[0].strip("[").split(",")]
    assert all(0.0 < v < 1.0 for v in values)


def test_bernoulli_needs_a_probability():
    from phc.diagnostics import PhcError
    with pytest.raises(PhcError) as info:
        parse("c ~ Bernoulli()\n", "t.phk")
    (d,) = info.value.diagnostics
    assert d.message == "'Bernoulli' needs a probability"
    assert d.hint == "write Bernoulli(p) or Bernoulli(p, d0, d1, …)"


# ---------------------------------------------------------------- builtins

def test_new_builtins_types():
    tp = clean("""
        x: ℝ[3, 3] = [[1, -1, 0], [-1, 0, 0], [0, 0, 0]]
        r = roll(x, 1, 0)
        m = mean(x)
        c = concat([1.0, 2.0], [3.0])
        a = atan2(1.0, 1.0)
        g = gelu(x)
        f = fft([1.0, 0.0, 0.0, 0.0])
        f2 = fft2(x)
        rf = rfft([1.0, 2.0, 3.0, 4.0])
        back = irfft(rf, 4)
        re = real(f)
    """)
    want = {"r": "ℝ[3,3]", "m": "ℝ", "c": "ℝ[3]", "a": "ℝ", "g": "ℝ[3,3]", "f": "ℂ[4]",
            "f2": "ℂ[3,3]", "rf": "ℂ[3]", "back": "ℝ[4]", "re": "ℝ[4]"}
    assert {k: str(tp.globals[k]) for k in want} == want


def test_new_builtins_run():
    runs_both("""
        x: ℝ[3] = [1.0, 2.0, 3.0]
        roll(x, 1)
        mean(x)
        concat(x, [4.0])
        atan2(1.0, 0.0)
        real(fft([1.0, 0.0, 0.0, 0.0]))
        irfft(rfft([1.0, 2.0, 3.0, 4.0]), 4)
    """, "[3.0, 1.0, 2.0] ∈ ℝ[3]\n2.0 ∈ ℝ\n[1.0, 2.0, 3.0, 4.0] ∈ ℝ[4]\n1.5707963705062866 ∈ ℝ\n"
         "[1.0, 1.0, 1.0, 1.0] ∈ ℝ[4]\n[1.0, 2.0, 3.0, 4.0] ∈ ℝ[4]\n")


def test_roll_along_a_missing_axis():
    d = one_error("x: ℝ[3] = [1.0, 2.0, 3.0]\ny = roll(x, 1, 2)\n")
    assert d.message == "`roll` along axis 2 of ℝ[3], which has rank 1"
    assert (d.span.line, d.span.col) == (2, 16)


def test_concat_of_different_ranks():
    d = one_error("x: ℝ[2, 2] = [[1.0, 2.0], [3.0, 4.0]]\ny = concat(x, [1.0])\n")
    assert d.message.startswith("`concat` needs tensors of one rank")
    assert (d.span.line, d.span.col) == (2, 5)


# ---------------------------------------------------------------- classes: this(x), learnable_params

LEARN = """
    class Line(w: ℝ, b: ℝ):
        def λ(x: ℝ) → ℝ:
            return this.w * x + this.b
        def step(x: ℝ, y: ℝ, lr: ℝ) → ℝ:
            loss: ℝ = (this(x) - y) ** 2
            g = grad(loss, this.learnable_params)
            this.w = this.w - lr * g[0]
            this.b = this.b - lr * g[1]
            return loss
    line: Line = Line(0.0, 0.0)
    for k: ℕ(3):
        l = line.step(1.0, 2.0, 0.1)
    line.w
    line.b
"""


def test_this_call_and_learnable_params_are_typed():
    tp = clean(LEARN)
    step = tp.classes["Line"].methods["step"]
    assert str(step.locals["g"]) == "[ℝ, ℝ]"


def test_this_call_and_learnable_params_run():
    # loss (w + b - 2)²: each step adds 0.2 (2 - w - b) to both w and b; w + b: 0, 0.8, 1.28, 1.568
    runs_both(LEARN, "0.7840000987052917 ∈ ℝ\n0.7840000987052917 ∈ ℝ\n")


# ---------------------------------------------------------------- stores, returns, definitions

def test_slice_store_broadcasts():
    tp = clean("""
        z: ℝ[2, 2, 2] = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
        z[:, :, 0] = [10, 20]
    """)
    runs("z: ℝ[2, 2, 2] = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]\nz[:, :, 0] = [10, 20]\nz\n",
         "[[[10.0, 2.0], [20.0, 4.0]], [[10.0, 6.0], [20.0, 8.0]]] ∈ ℝ[2,2,2]\n", opt=0)


def test_slice_store_that_cannot_broadcast():
    d = one_error("z: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]\nz[:, :] = [1, 2]\n")
    assert (d.span.line, d.span.col) == (2, 11)


def test_return_of_another_rank_takes_the_body_type():
    tp = typed("""
        def f(x: ℝ): ℝ:
            return [x, x, x]
        y = f(1.0)
    """)
    assert not errors(tp)
    (w,) = tp.diagnostics
    assert w.message == "`f` is declared to return ℝ but it returns ℝ[3]"
    assert str(tp.globals["y"]) == "ℝ[3]"


def test_later_definition_replaces_the_earlier():
    runs_both("""
        def f(x: ℝ): ℝ:
            return x
        def f(x: ℝ): ℝ:
            return 2.0 * x
        f(3.0)
    """, "6.0 ∈ ℝ\n")


# ---------------------------------------------------------------- Python habits

@pytest.mark.parametrize("src, message, where, hint", [
    ("for i in range(10):\n    x = i\n", "`for … in …` is Python's loop header", (1, 7),
     "write `for i: ℕ(10):`"),
    ("for j in range(2, n):\n    x = j\n", "`for … in …` is Python's loop header", (1, 7),
     "write `for j: ℕ(2, n):`"),
    ("x: ℝ = 0.0\nwhile x < 3:\n    x = x + 1\n", "Physika has no `while` loop", (2, 1),
     "loop a known number of times, `for i: ℕ(n):`, with an `if` inside for the condition"),
    ("import torch\n", "`import torch` is Python's", (1, 1),
     "Physika takes definitions from a file beside the program: `from torch import f, g`"),
])
def test_python_habits(src, message, where, hint):
    from phc.diagnostics import PhcError
    with pytest.raises(PhcError) as info:
        parse(src, "t.phk")
    (d,) = info.value.diagnostics
    assert (d.message, (d.span.line, d.span.col), d.hint) == (message, where, hint)


# ---------------------------------------------------------------- from other import f

def _write(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_import_takes_definitions_and_what_they_use(tmp_path):
    _write(tmp_path, "shapes.phyk", """
        scale: ℝ = 3.0
        def helper(x: ℝ): ℝ:
            return x * scale
        def triple(x: ℝ): ℝ:
            return helper(x)
        class Box(w: ℝ):
            def area() → ℝ:
                return this.w * this.w
        triple(100.0)
    """)
    main = _write(tmp_path, "main.phk", """
        from shapes import triple, Box
        b: Box = Box(2.0)
        triple(2.0)
        b.area()
    """)
    program = parse(main.read_text(), str(main))
    kinds = [type(s).__name__ for s in program.body]
    assert kinds[:4] == ["Decl", "FuncDef", "FuncDef", "ClassDef"]   # scale, helper, triple, Box
    import contextlib
    import io

    from phc import pipeline
    from phc.loader import load_module
    compiled = pipeline.compile_source(main.read_text(), str(main))
    module, _ = load_module(compiled.python, "import_test")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        module.main()
    assert out.getvalue() == "6.0 ∈ ℝ\n4.0 ∈ ℝ\n"        # the other file's `triple(100.0)` is not run


def test_import_of_a_missing_name(tmp_path):
    from phc.diagnostics import PhcError
    _write(tmp_path, "lib.phk", "def square(x: ℝ): ℝ:\n    return x * x\n")
    main = _write(tmp_path, "main.phk", "from lib import squares\n")
    with pytest.raises(PhcError) as info:
        parse(main.read_text(), str(main))
    (d,) = info.value.diagnostics
    assert d.message == "lib.phk defines no `squares`"
    assert (d.span.line, d.span.col) == (1, 17)
    assert d.hint == "did you mean 'square'?"


def test_import_of_a_missing_file(tmp_path):
    from phc.diagnostics import PhcError
    main = _write(tmp_path, "main.phk", "from nowhere import f\n")
    with pytest.raises(PhcError) as info:
        parse(main.read_text(), str(main))
    (d,) = info.value.diagnostics
    assert d.message == "cannot find the file for `nowhere`"
    assert d.hint == "put nowhere.phk or nowhere.phyk beside main.phk"


def test_errors_of_the_imported_file_name_it(tmp_path):
    from phc.diagnostics import PhcError
    lib = _write(tmp_path, "lib.phk", "def f(x: ℝ): ℝ:\n    return y\n")
    main = _write(tmp_path, "main.phk", "from lib import f\nf(1.0)\n")
    with pytest.raises(PhcError) as info:
        parse(main.read_text(), str(main))
    (d,) = info.value.diagnostics
    assert d.filename == str(lib)
    assert d.message == "unknown name `y`" and (d.span.line, d.span.col) == (2, 12)


# ---------------------------------------------------------------- symbolic shape arithmetic

POOL = """
    def avgpool(x: ℝ[C, H, W]): ℝ[C, H, W]:
        out: ℝ[C, H/2, W/2] = for c: ℕ(len(x)) → for i: ℕ(len(x[0]) / 2) → for j: ℕ(len(x[0, 0]) / 2) → x[c, 2*i, 2*j]
        return out
    def conv(x: ℝ[H], k: ℝ[K], p: ℕ, s: ℕ): ℝ[n]:
        out_n = (len(x) + 2 * p - len(k)) // s + 1
        r: ℝ[out_n] = for i: ℕ(out_n) → 0.0
        return r
    def count(x: ℝ[m, n]): ℝ:
        total: ℝ = 0
        for i:
            row: ℝ[n] = x[i]
            total += 1
        return total
    def halve(x: ℝ[m, n]): ℝ[m, n]:
        rows: ℝ = count(x) / 2
        r: ℝ[rows, 2] = for i: ℕ(rows) → for j: ℕ(2) → x[2 * i, j]
        return r
    h1: ℝ[4, 11, 13] = for c: ℕ(4) → for i: ℕ(11) → for j: ℕ(13) → 1.0
"""


def test_call_types_come_from_the_body_formulas():
    tp = clean(textwrap.dedent(POOL) + "h2: ℝ[4, 5, 6] = avgpool(h1)\n"
               "q = conv([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 1.0], 1, 2)\n"
               "big: ℝ[26, 2] = for i: ℕ(26) → for j: ℕ(2) → 1.0\nsmall = halve(big)\n")
    assert str(tp.functions["avgpool"].locals["out"]) == "ℝ[C,H//2,W//2]"
    assert str(tp.functions["conv"].locals["r"]) == "ℝ[(H+2*p-K)//s+1]"
    assert str(tp.functions["halve"].locals["r"]) == "ℝ[m//2,2]"     # count(x) is m
    assert str(tp.globals["h2"]) == "ℝ[4,5,6]"
    assert str(tp.globals["q"]) == "ℝ[3]"
    assert str(tp.globals["small"]) == "ℝ[13,2]"


def test_a_certain_contradiction_names_both_formulas():
    d = one_error(textwrap.dedent(POOL) + "h3: ℝ[4, 11, 13] = avgpool(h1)\n")
    assert d.message == "`h3` is declared ℝ[4,11,13] but its value has type ℝ[4,5,6]"
    assert (d.span.line, d.span.col) == (19, 20)
    assert d.hint == ("`avgpool` is declared to return ℝ[C,H,W] but its body returns "
                      "ℝ[C,H//2,W//2], here ℝ[4,5,6]")


def test_formulas_run():
    runs(textwrap.dedent(POOL) + "h2: ℝ[4, 5, 6] = avgpool(h1)\nsum(h2)\n"
         "q = conv([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 1.0], 1, 2)\nq\n",
         "120.0 ∈ ℝ\n[0.0, 0.0, 0.0] ∈ ℝ[3]\n", opt=0)


def test_a_name_bound_twice_is_not_a_formula():
    tp = clean("""
        n: ℕ = 3
        n = 4
        x: ℝ[n] = zeros(n)
    """)
    assert str(tp.globals["x"]) == "ℝ[n]"


def test_a_loose_declaration_takes_the_value_sizes():
    tp = clean("""
        def zero_2d(rows: ℝ, cols: ℝ): ℝ[m, n]:
            r: ℝ[rows, cols] = for i: ℕ(rows) → for j: ℕ(cols) → 0.0
            return r
        def sigma(x: ℝ[a, b]): ℝ[a, b]:
            rows: ℝ = len(x)
            cols: ℝ = len(x[0])
            results: ℝ[cols, rows] = zero_2d(rows, cols)
            return results
        w: ℝ[1, 2] = [[1.0, 1.0]]
        z: ℝ[2, 1] = [[1.0], [2.0]]
        s = sigma(z)
        y = w @ s
    """)
    assert str(tp.functions["sigma"].locals["results"]) == "ℝ[a,b]"
    assert str(tp.globals["s"]) == "ℝ[2,1]" and str(tp.globals["y"]) == "ℝ[1,1]"


def test_a_draw_and_its_log_probability():
    tp = clean("""
        p: ℝ = 0.3
        b: ℝ[6], lp: ℝ[6] ~ Bernoulli(p, 6, "score-function")
        s: ℝ[4], total: ℝ ~ Bernoulli(p, 4)
    """)
    assert str(tp.globals["lp"]) == "ℝ[6]" and str(tp.globals["total"]) == "ℝ"
    out = run_program("p: ℝ = 0.25\nb: ℝ[3], lp: ℝ[3] ~ Bernoulli(p, 3)\nlp\n"
                      "one: ℝ[2], s: ℝ ~ Bernoulli(1.0, 2)\none\ns\n", "torch", 2)
    lines = out.splitlines()
    values = [float(v) for v in lines[0].split("]")[0].strip("[").split(",")]
    assert all(abs(v - (-0.2876821)) < 1e-5 or abs(v - (-1.3862944)) < 1e-5 for v in values)
    assert lines[1] == "[1.0, 1.0] ∈ ℝ[2]"
    assert abs(float(lines[2].split()[0])) < 1e-6          # log 1, as torch clamps it


def test_three_names_for_a_draw():
    from phc.diagnostics import PhcError
    with pytest.raises(PhcError) as info:
        parse("a: ℝ, b: ℝ, c: ℝ ~ Normal(0, 1)\n", "t.phk")
    (d,) = info.value.diagnostics
    assert d.message.startswith("a draw goes to one name, or to two")
    assert (d.span.line, d.span.col) == (1, 1)


def test_a_declared_array_that_grows_is_a_warning():
    tp = typed("""
        def append(x: ℝ[m], v: ℝ): ℝ[n]:
            r: ℝ[len(x) + 1] = for i: ℕ(len(x) + 1) → v
            return r
        a: ℝ[1] = [0.0]
        for i: ℕ(3):
            a = append(a, 1.0)
    """)
    assert not errors(tp)
    (w,) = tp.diagnostics
    assert w.message == "`a` is declared ℝ[1] but it is assigned ℝ[2]"
    assert (w.span.line, w.span.col) == (6, 9)
    assert str(tp.globals["a"]) == "ℝ[?]"


def test_params_and_update_as_upstream():
    """`class C(w: ℝ):` takes only its parameters (its fields start at zero); `this.params`
    lists the learnable ones and `this.update(lr, grads)` takes a gradient step on them."""
    src = """
        class M(w: ℝ):
            base: ℝ
            def loss() → ℝ:
                return (this.w - 3.0) ** 2 + this.base
            def step(lr: ℝ):
                l = this.loss()
                g = grad(l, this.params)
                this.base = 0.5
                this.update(lr, g)
        start: ℝ = 0.0
        m: M = M(start)
        m.step(0.1)
        m.step(0.1)
        m.w
        m.base
        start
    """
    tp = clean(src)
    assert str(tp.classes["M"].methods["step"].locals["g"]) == "[ℝ]"
    # w: 0 → 0.6 → 0.6 + 0.2 (3 - 0.6) = 1.08; `start` keeps its value
    runs_both(src, "1.0800000429153442 ∈ ℝ\n0.5 ∈ ℝ\n0.0 ∈ ℝ\n")


def test_update_needs_the_gradient_list():
    d = one_error("""
        class M(w: ℝ):
            def step(lr: ℝ):
                this.update(lr, 2.0)
    """)
    assert d.message == "`update` needs the list of gradients [ℝ], not ℝ"
    assert (d.span.line, d.span.col) == (3, 25)


def test_spectral_layer_builtins_and_self():
    tp = clean("""
        class Spectral(w: ℂ[2, 3, 4]):
            def λ(x: ℂ[2, 4]) → ℂ[3, 4]:
                return compl_mul1d(x, self.w)
        w: ℂ[2, 3, 4] = random_complex(2, 3, 4)
        s: Spectral = Spectral(w)
        x: ℂ[2, 4] = random_complex(2, 4)
        y = s(x)
    """)
    assert str(tp.globals["w"]) == "ℂ[2,3,4]" and str(tp.globals["y"]) == "ℂ[3,4]"
    runs("""
        x: ℂ[1, 2] = [[1 + 1j, 2j]]
        w: ℂ[1, 1, 2] = [[[2, 1j]]]
        compl_mul1d(x, w)
    """, "[[(2+2j), (-2+0j)]] ∈ ℂ[1,2]\n", opt=0)


def test_compl_mul1d_shapes_must_agree():
    d = one_error("""
        x: ℂ[2, 4] = random_complex(2, 4)
        w: ℂ[3, 3, 4] = random_complex(3, 3, 4)
        y = compl_mul1d(x, w)
    """)
    assert d.message.startswith("`compl_mul1d`: the channels or modes of ℂ[2,4] and ℂ[3,3,4]")
    assert (d.span.line, d.span.col) == (3, 5)


PLOTS = """
    class Step(dt: ℝ):
        def λ(x: ℝ[2]) → ℝ[2]:
            return [x[0] + this.dt * x[1], x[1] - this.dt * x[0]]
    def wave(a: ℝ, t: ℝ): ℝ:
        return a * sin(t)
    s: Step = Step(0.1)
    simulate(s, [1.0, 0.0], 20, 0.1)
    animate(wave, 2.0, 0.0, 3.0)
    s([1.0, 0.0])
"""


@pytest.mark.parametrize("opt", [0, 2])
def test_simulate_and_animate_write_plots_and_print_nothing(opt, tmp_path, monkeypatch, capsys):
    import importlib.util
    monkeypatch.setenv("PHC_PLOT_DIR", str(tmp_path))
    out = run_program(textwrap.dedent(PLOTS).lstrip("\n"), "torch", opt)
    assert out == "[1.0, -0.10000000149011612] ∈ ℝ[2]\n"        # the plots print nothing
    err = capsys.readouterr().err
    if importlib.util.find_spec("matplotlib") is not None:
        assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["animate", "simulate"]
        assert "phc: simulate: plot written to " in err
    else:
        assert "matplotlib is not installed" in err


def test_animate_needs_a_function():
    d = one_error("animate(2.0, 0.0, 1.0)\n")
    assert d.message == "`animate` needs a function first, not ℝ"
    assert (d.span.line, d.span.col) == (1, 9)


def test_a_class_named_like_a_type_letter():
    tp = clean("""
        class C(w: ℝ):
            def λ(x: ℝ) → ℝ:
                return this.w * x
        net: C = C(2.0)
        y = net(3.0)
        z: C[2] = [1j, 2j]
    """)
    assert str(tp.globals["net"]) == "C" and str(tp.globals["y"]) == "ℝ"
    assert str(tp.globals["z"]) == "ℂ[2]"          # with sizes, `C[…]` is still ℂ


# ---------------------------------------------------------------- functions of numbers on tensors

ELEMENTWISE = """
    def tanh(x: ℝ): ℝ:
        return (exp(x) - exp(0.0 - x)) / (exp(x) + exp(0.0 - x))
    def axpy(a: ℝ, x: ℝ, y: ℝ): ℝ:
        return a * x + y
    W: ℝ[2, 3] = [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]
    v: ℝ[3] = [1.0, 2.0, -3.0]
    h = tanh(W @ v)
    z = axpy(2.0, v, v)
    m = tanh(W)
"""


def test_a_function_of_numbers_maps_over_tensor_arguments():
    tp = clean(ELEMENTWISE)
    assert str(tp.globals["h"]) == "ℝ[2]" and str(tp.globals["z"]) == "ℝ[3]" and str(tp.globals["m"]) == "ℝ[2,3]"
    # one mapping function per (function, tensor positions, rank), defined after the function
    names = [s.name for s in tp.program.body if hasattr(s, "params")]
    assert names == ["tanh", "tanh⟨map1 0⟩", "tanh⟨map2 0⟩", "axpy", "axpy⟨map1 1 2⟩"]


def test_tensors_mapped_together_must_have_one_shape():
    d = one_error("def axpy(a: ℝ, x: ℝ, y: ℝ): ℝ:\n    return a * x + y\n"
                  "v: ℝ[3] = [1.0, 2.0, 3.0]\nw: ℝ[2] = [1.0, 2.0]\naxpy(2.0, v, w)\n")
    assert d.message == "`axpy` is applied to the elements of tensors of different shapes: ℝ[3] and ℝ[2]"
    assert (d.span.line, d.span.col) == (5, 14) and "same place" in d.hint


def test_a_function_of_tensors_is_not_mapped():
    d = one_error("def f(x: ℝ[2]): ℝ:\n    return x[0]\nA: ℝ[3, 2] = [[1, 2], [3, 4], [5, 6]]\nf(A[0, 0])\n")
    assert "`f`" in d.message and "ℝ[2]" in d.message


@pytest.mark.parametrize("opt", [0, 2])
def test_elementwise_values_at_both_levels(opt):
    runs(ELEMENTWISE + "    h\n    z\n", "[-0.9997532367706299, 1.0] ∈ ℝ[2]\n[3.0, 6.0, -9.0] ∈ ℝ[3]\n", opt)


# ---------------------------------------------------------------- train and evaluate

def test_train_and_evaluate_are_typed():
    tp = clean("""
        class Lin:
            w: ℝ[2]
            def λ(x: ℝ[2]) → ℝ:
                return this.w[0] * x[0] + this.w[1] * x[1]
        X: ℝ[2, 2] = [[1.0, 0.0], [0.0, 1.0]]
        y: ℝ[2] = [1.0, 2.0]
        net = Lin([0.0, 0.0])
        t = train(net, X, y, 5, 0.1)
        e = evaluate(t, X, y)
    """)
    assert str(tp.globals["t"]) == "Lin" and str(tp.globals["e"]) == "ℝ"


def test_train_needs_an_instance():
    d = one_error("X: ℝ[2, 2] = [[1.0, 0.0], [0.0, 1.0]]\ny: ℝ[2] = [1.0, 2.0]\nt = train(3.0, X, y, 5, 0.1)\n")
    assert d.message == "`train` needs an instance of a class first, not ℝ"
    assert (d.span.line, d.span.col) == (3, 11) and d.hint.startswith("write train(net, X, y, epochs, lr)")


# ---------------------------------------------------------------- symbolic values (sympy)

SYMBOLIC = """
    x, y: Symbol
    u: Function
    f = x**2 + y**2
    f
    u(x, y)
    subs(f, x, 3.0, y, 4.0)
    diff(x**3 + 2*x**2 + x, x)
    g = lambdify([x, y], f)
    g(3.0, 4.0)
    eq: Equation := 2.0*x + 3.0 = 7.0
    symbolic_solve(eq, x)
"""
SYMBOLIC_OUT = """
    x**2 + y**2 ∈ Add
    u(x, y) ∈ u
    25.0000000000000 ∈ Float
    3*x**2 + 4*x + 1 ∈ Add
    25.0 ∈ ℝ
    [2.00000000000000] ∈ ℝ[1]
"""


def test_symbols_are_declared_without_values():
    program = parse("x, y: Symbol\nu: Function\neq: Equation := x = 1\n", "t.phk")
    decls = [(s.name, s.value.func.id, s.value.args[0].value if s.value.func.id != "equation" else None)
             for s in program.body]
    assert decls == [("x", "symbol", "x"), ("y", "symbol", "y"), ("u", "function", "u"), ("eq", "equation", None)]


def test_symbolic_types():
    tp = clean(SYMBOLIC)
    assert [str(tp.globals[n]) for n in ("x", "u", "f", "eq")] == ["Symbol", "Function", "Expr", "Equation"]


def test_a_tensor_in_symbolic_arithmetic_is_an_error():
    d = one_error("x: Symbol\nv: ℝ[2] = [1.0, 2.0]\ne = x * v\n")
    assert d.message == "`*` combines a symbolic value with numbers or other symbolic values, not ℝ[2]"
    assert (d.span.line, d.span.col) == (3, 9)


def test_a_class_named_symbol_is_a_class():
    tp = clean("class Symbol:\n    w: ℝ\nx: Symbol\n")
    assert str(tp.globals["x"]) == "Symbol" and type(tp.globals["x"]).__name__ == "ClassT"


@pytest.mark.parametrize("opt", [0, 2])
def test_symbolic_values_at_both_levels(opt):
    """Level 2 has no rule for sympy values: the program runs literally (a performance note)."""
    runs(SYMBOLIC, SYMBOLIC_OUT, opt)


SOLVE = """
    def accelerations(m: ℝ, F1: ℝ, F2: ℝ): ℝ:
        a1, a2 = solve("F1 = m * a1 + m * a2", "F2 = m * a2")
        return a1 - a2
    m: ℝ = 2.0
    F1: ℝ = 10.0
    F2: ℝ = 4.0
    a1, a2 = solve("F1 = m * a1 + m * a2", "F2 = m * a2")
    a1
    a2
    accelerations(1.0, 10.0, 4.0)
"""


@pytest.mark.parametrize("opt", [0, 2])
def test_solve_takes_the_known_names_from_where_it_runs(opt):
    runs(SOLVE, "3.0 ∈ ℝ\n2.0 ∈ ℝ\n2.0 ∈ ℝ\n", opt)


def test_solve_takes_strings():
    d = one_error("v: ℝ[2] = [1.0, 2.0]\nsolve(v)\n")
    assert d.message == "`solve` takes equations written as strings, not ℝ[2]" and (d.span.line, d.span.col) == (2, 7)
