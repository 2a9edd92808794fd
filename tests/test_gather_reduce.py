"""An accumulation loop whose load has a data-dependent index (`total += -log(p[b, labels[b]])`)
is one vectorised `Reduce` with a gather (docs/ir.md, "Invariants"): the same printed values as
level 0 (the literal loop) on torch and on the Triton backend, no Python loop over `b` in the
generated module, the same runtime error for an index out of range, Python's meaning of a
negative index, and the same gradient."""
import re

import pytest

from helpers import run_program, same_output
from phc import pipeline
from phc.cli import main

CE = """\
def ce(p: ℝ[B, n], labels: ℕ[B]): ℝ:
    total = 0
    for b: ℕ(len(p)):
        total += -log(p[b, labels[b]])
    return total / len(p)
p: ℝ[4, 3] = for b: ℕ(4) -> for k: ℕ(3) -> 0.1 + 0.2 * k + 0.01 * b
labels: ℕ[4] = LABELS
physika_print(ce(p, labels))
"""

# an index tensor of rank 2, read at (b, k) inside a two-loop sum
TWO_D = """\
def pick(x: ℝ[B, n], idx: ℕ[B, K]): ℝ:
    total = 0.0
    for b: ℕ(len(idx)):
        for k: ℕ(len(idx[0])):
            total += x[b, idx[b, k]] * (k + 1)
    return total
x: ℝ[3, 4] = for b: ℕ(3) -> for j: ℕ(4) -> 1.0 + j + 10.0 * b
idx: ℕ[3, 2] = [[0, 3], [2, 2], [1, 0]]
physika_print(pick(x, idx))
"""

# both indices gathered; the pair (1, 0) twice, so the gradient accumulates
PAIRS = """\
def pairs(x: ℝ[m, n], rows: ℕ[B], cols: ℕ[B]): ℝ:
    total = 0.0
    for b: ℕ(len(rows)):
        total += x[rows[b], cols[b]] * x[rows[b], cols[b]]
    return total
x: ℝ[3, 4] = for b: ℕ(3) -> for j: ℕ(4) -> 1.0 + j + 10.0 * b
rows: ℕ[5] = [2, 0, 1, 1, 2]
cols: ℕ[5] = [3, 3, 0, 0, 1]
s = pairs(x, rows, cols)
g = grad(s, x)
physika_print(s)
physika_print(g)
"""

# a sum of products with one gathered factor (the einsum shape, but not affine)
DOT = """\
def score(w: ℝ[n], x: ℝ[B], labels: ℕ[B]): ℝ:
    total = 0.0
    for b: ℕ(len(x)):
        total += w[labels[b]] * x[b]
    return total
w: ℝ[3] = [0.5, -1.0, 2.0]
x: ℝ[4] = [1.0, 2.0, 3.0, 4.0]
labels: ℕ[4] = [2, 0, 1, 2]
physika_print(score(w, x, labels))
"""

# the same sum inlined into a comprehension: the gather sits in a nest with an outer axis
ROWS = """\
def score(w: ℝ[n], xi: ℝ[B], labels: ℕ[B]): ℝ:
    total = 0.0
    for b: ℕ(len(xi)):
        total += w[labels[b]] * xi[b]
    return total
w: ℝ[3] = [0.5, -1.0, 2.0]
x: ℝ[2, 4] = [[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 2.0]]
labels: ℕ[4] = [2, 0, 1, 2]
s: ℝ[2] = for i: ℕ(2) -> score(w, x[i], labels)
physika_print(s)
"""

# the maximum over a row picked through an index array
ROWMAX = """\
def rowmax(x: ℝ[m, n], order: ℕ[k], r: ℕ): ℝ:
    best = -1000.0
    for j: ℕ(len(x[0])):
        if x[order[r], j] > best:
            best = x[order[r], j]
    return best
x: ℝ[3, 4] = [[1.0, 5.0, 2.0, 0.0], [7.0, 3.0, 9.0, 4.0], [0.5, 0.25, 8.0, 1.0]]
order: ℕ[3] = [2, 0, 1]
physika_print(rowmax(x, order, 0))
physika_print(rowmax(x, order, 2))
"""

ARGMAX = """\
def best_sample(p: ℝ[B, n], labels: ℕ[B]): ℕ:
    best = -1000.0
    idx: ℕ = 0
    for b: ℕ(len(p)):
        if p[b, labels[b]] > best:
            best = p[b, labels[b]]
            idx = b
    return idx
p: ℝ[4, 3] = [[0.5, 0.9, 0.1], [0.3, 0.2, 0.8], [0.95, 0.05, 0.0], [0.4, 0.45, 0.15]]
labels: ℕ[4] = [1, 2, 0, -2]
physika_print(best_sample(p, labels))
"""

GRAD = """\
def ce(p: ℝ[B, n], labels: ℕ[B]): ℝ:
    total = 0
    for b: ℕ(len(p)):
        total += -log(p[b, labels[b]])
    return total / len(p)
p: ℝ[4, 3] = for b: ℕ(4) -> for k: ℕ(3) -> 0.1 + 0.2 * k + 0.01 * b
labels: ℕ[4] = [0, 2, 0, 2]
loss = ce(p, labels)
g = grad(loss, p)
physika_print(loss)
physika_print(g)
"""

# a real index array: truncated toward zero, as the loop's `rt.to_index` does (-0.5 reads 0)
REAL = CE.replace("labels: ℕ[B]", "labels: ℝ[B]").replace("labels: ℕ[4] = LABELS",
                                                         "labels: ℝ[4] = [0.0, 2.7, 1.2, -0.5]")


def ce(labels: str) -> str:
    return CE.replace("LABELS", labels)


VECTORISED = {
    "ce": (ce("[0, 2, 1, 2]"), "ce", "1.1875605583190918 ∈ ℝ\n"),
    "two_d_index": (TWO_D, "pick", "112.0 ∈ ℝ\n"),
    "negative_counts_from_the_end": (ce("[0, -1, 1, -3]"), "ce", "1.5388963222503662 ∈ ℝ\n"),
    "real_index": (REAL, "ce", "1.5388963222503662 ∈ ℝ\n"),
    "gathered_factor": (DOT, "score", "8.0 ∈ ℝ\n"),
    "gathered_factor_per_row": (ROWS, "score", "[8.0, 6.0] ∈ ℝ[2]\n"),
    "max_of_a_gathered_row": (ROWMAX, "rowmax", "8.0 ∈ ℝ\n9.0 ∈ ℝ\n"),
    "argmax_of_gathered_values": (ARGMAX, "best_sample", "2 ∈ ℝ\n"),
    "gradient": (GRAD, "ce", None),
    "gradient_of_repeated_pairs": (PAIRS, "pairs", None),
}


def _function_text(python: str, name: str) -> str:
    """The generated `def name(…)` up to the next top-level line."""
    m = re.search(rf"^def {name}\(.*?(?=^\S)", python, re.S | re.M)
    assert m, f"no function {name} in the module"
    return m.group(0)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("case", sorted(VECTORISED))
def test_same_values_as_the_literal_loop(case, backend):
    src, _, want = VECTORISED[case]
    reference = run_program(src, "torch", opt=0, name=case)
    if want is not None:
        assert same_output(reference, want), reference
    got = run_program(src, backend, opt=2, name=case)
    assert same_output(got, reference), f"{case} on {backend} printed:\n{got}\nlevel 0:\n{reference}"


@pytest.mark.parametrize("case", sorted(VECTORISED))
def test_the_loop_is_one_gather_not_a_python_loop(case):
    src, func, _ = VECTORISED[case]
    compiled = pipeline.compile_source(src, f"{case}.phk", "torch")
    body = _function_text(compiled.python, func)
    assert "rt.nests.gather(" in body, body
    assert not re.search(r"\bfor \w+ in range\(", body), body
    assert not [t for _, t in compiled.notes if "runs literally" in t]


def _errors(tmp_path, capsys, src: str, backend: str, opt: str) -> list[str]:
    f = tmp_path / "prog.phk"
    f.write_text(src, encoding="utf-8")
    code = main(["run", str(f), "--device", "cpu", "--backend", backend, "--opt", opt])
    err = capsys.readouterr().err.replace(str(f), "prog.phk")
    assert code == 1, err
    return err.splitlines()[:4]


@pytest.mark.parametrize("labels, bad", [("[0, 3, 1, 2]", "3"), ("[0, 2, 5, 3]", "5"),
                                         ("[0, -4, 1, 7]", "-4")])
@pytest.mark.parametrize("backend, opt", [("torch", "2"), ("triton", "2"), ("torch", "0")])
def test_an_index_out_of_range_is_the_loops_error(tmp_path, capsys, labels, bad, backend, opt):
    # the first offending iteration names the index, as the loop does (5 before 3; -4 before 7)
    assert _errors(tmp_path, capsys, ce(labels), backend, opt) == [
        f"prog.phk:4:23: runtime error: index {bad} is out of range for axis 1 of size 3",
        "            total += -log(p[b, labels[b]])",
        "                          ^^^^^^^^^^^^^^^",
        "  note: in `ce`, called at prog.phk:8:15",
    ]


GUARDED = """\
def safe(p: ℝ[B, n], labels: ℕ[B]): ℝ:
    total = 0.0
    for b: ℕ(len(p)):
        if labels[b] < len(p[0]):
            total += p[b, labels[b]]
    return total
p: ℝ[4, 3] = for b: ℕ(4) -> for k: ℕ(3) -> 0.1 + 0.2 * k + 0.01 * b
labels: ℕ[4] = [0, 7, 1, 2]
physika_print(safe(p, labels))
"""

# the loop changes the index array it reads: the reads must see each iteration's order
WRITES_ITS_INDEX = """\
def relabel(p: ℝ[B, n], labels: ℕ[B]): ℝ:
    total = 0.0
    for b: ℕ(len(p)):
        total += p[b, labels[b]]
        labels[b] = 0
    return total
p: ℝ[4, 3] = for b: ℕ(4) -> for k: ℕ(3) -> 0.1 + 0.2 * k + 0.01 * b
labels: ℕ[4] = [0, 2, 1, 2]
physika_print(relabel(p, labels))
"""


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("src, want", [(GUARDED, "0.949999988079071 ∈ ℝ\n"), (WRITES_ITS_INDEX, "1.4600000381469727 ∈ ℝ\n")],
                         ids=["gather_under_a_condition", "loop_writes_its_index"])
def test_where_the_gather_is_not_legal_the_value_is_the_loops(src, want, backend):
    # a gather under a condition reads only where the condition holds (labels[1] = 7 is never
    # read); a loop that writes a tensor it gathers from stays a host loop
    reference = run_program(src, "torch", opt=0)
    assert same_output(reference, want), reference
    assert same_output(run_program(src, backend, opt=2), reference)


# ---------------------------------------------------------------- seeded random programs

_BODIES = {
    # name: (initial value, the update lines with E for the gathered read, what is printed)
    "sum": ("0.0", ["total += E"], "total"),
    "sum_log": ("0.0", ["total += -log(E)"], "total"),
    "difference": ("1.0", ["total -= E * p[b, 0]"], "total"),
    "product": ("1.0", ["total *= E"], "total"),
    "max": ("-1000.0", ["if E > total:", "    total = E"], "total"),
    "min": ("1000.0", ["if E < total:", "    total = E"], "total"),
}
_READS = {
    "row_and_label": "p[b, labels[b]]",
    "two_gathered": "p[rows[b], labels[b]]",
    "gathered_factor": "w[labels[b]] * p[b, 0]",
}


def _random_program(seed: int) -> tuple[str, str]:
    """A function with one gathering accumulation loop, its call, and (for sums) its gradient;
    values are distinct (no ties decide a max), labels in [-n, n) (negatives count from the end)."""
    import random
    r = random.Random(seed)
    B, n = r.randint(1, 6), r.randint(1, 5)
    body = sorted(_BODIES)[seed % len(_BODIES)]                 # every pair within 18 seeds
    read = sorted(_READS)[seed // len(_BODIES) % len(_READS)]
    if body in ("max", "min") and read == "gathered_factor":
        read = "row_and_label"
    init, lines, _ = _BODIES[body]
    values = [v / 200 + 0.5 for v in r.sample(range(1, 200), B * n)]       # in (0.5, 1.5)
    rows = [[values[b * n + k] for k in range(n)] for b in range(B)]
    labels = [r.randrange(-n, n) for _ in range(B)]
    picks = [r.randrange(-B, B) for _ in range(B)]
    w = [round(r.uniform(-2, 2), 3) for _ in range(n)]
    E = _READS[read]
    loop = "\n".join("        " + line.replace("E", E) for line in lines)
    src = (f"def f(p: ℝ[B, n], labels: ℕ[B], rows: ℕ[B], w: ℝ[n]): ℝ:\n"
           f"    total = {init}\n"
           f"    for b: ℕ(len(p)):\n{loop}\n"
           f"    return total\n"
           f"p: ℝ[{B}, {n}] = {rows}\n"
           f"labels: ℕ[{B}] = {labels}\n"
           f"rows: ℕ[{B}] = {picks}\n"
           f"w: ℝ[{n}] = {w}\n"
           f"s = f(p, labels, rows, w)\n"
           f"physika_print(s)\n")
    if body in ("sum", "sum_log", "difference") or r.random() < 0.3:
        src += "g = grad(s, p)\nphysika_print(g)\n"
    return src, f"{body}/{read}"


@pytest.mark.parametrize("seed", range(24))
def test_random_gathering_loops_agree_with_the_literal_loop(seed):
    src, what = _random_program(seed)
    reference = run_program(src, "torch", opt=0, name=f"rnd{seed}")
    backend = "triton" if seed % 4 == 0 else "torch"
    got = run_program(src, backend, opt=2, name=f"rnd{seed}")
    assert same_output(got, reference), f"{what}\n{src}\nlevel 2 ({backend}):\n{got}\nlevel 0:\n{reference}"
    body = _function_text(pipeline.compile_source(src, f"rnd{seed}.phk", "torch").python, "f")
    assert "rt.nests.gather(" in body and not re.search(r"\bfor \w+ in range\(", body), f"{what}\n{body}"


@pytest.mark.parametrize("backend, opt", [("torch", 2), ("triton", 2), ("torch", 0)])
def test_a_comprehension_gathers_a_negative_index_from_the_end(backend, opt):
    # one gather for comprehensions and sums: level 0 reads order[1] = -1 as the last element
    src = "x: ℝ[3] = [1.0, 2.0, 3.0]\norder: ℕ[2] = [0, -1]\ny: ℝ[2] = for b: ℕ(2) -> x[order[b]]\nphysika_print(y)\n"
    assert same_output(run_program(src, backend, opt=opt), "[1.0, 3.0] ∈ ℝ[2]\n")
