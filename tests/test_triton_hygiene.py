"""No name phc generates can collide with a user's name, on either backend.

Generated module-level names are phc's imports, `main`, builtins and `_phc_…` (Triton wrappers,
kernels, prelude helpers); `phc.emit.module.Names` renames every user name that is one of those,
starts with `_` or ends with `_` (by appending `_`, which no generated name ends with).
"""
from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest
import torch

from helpers import compile_module, run_program
from phc import pipeline
from phc.emit.module import _RESERVED, Names

ROOT = Path(__file__).resolve().parents[1]

USER_NAMES = """
def linear(x: ℝ[n], w: ℝ[m, n], c: ℝ): ℝ[m]:
    r: ℝ[len(w)] = zeros(len(w))
    for i: ℕ(len(w)):
        acc = 0
        for j: ℕ(len(w[0])):
            acc += w[i, j] * x[j]
        r[i] = acc + c
    return r
def conv2d(x: ℝ[H, W], k: ℝ[K, L]): ℝ[m, n]:
    r: ℝ[len(x) - len(k) + 1, len(x[0]) - len(k[0]) + 1] = zeros(len(x) - len(k) + 1, len(x[0]) - len(k[0]) + 1)
    for i: ℕ(len(x) - len(k) + 1):
        for j: ℕ(len(x[0]) - len(k[0]) + 1):
            acc = 0
            for a: ℕ(len(k)):
                for b: ℕ(len(k[0])):
                    acc += x[i + a, j + b] * k[a, b]
            r[i, j] = acc
    return r
def maxpool2d(x: ℝ[C, H, W]): ℝ[C, m, n]:
    r: ℝ[len(x), len(x[0]) // 2, len(x[0][0]) // 2] = zeros(len(x), len(x[0]) // 2, len(x[0][0]) // 2)
    for c: ℕ(len(x)):
        for i: ℕ(len(x[0]) // 2):
            for j: ℕ(len(x[0][0]) // 2):
                t = x[c, 2 * i, 2 * j]
                for a: ℕ(2):
                    for b: ℕ(2):
                        if x[c, 2 * i + a, 2 * j + b] > t:
                            t = x[c, 2 * i + a, 2 * j + b]
                r[c, i, j] = t
    return r
torch: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]
rt: ℝ[3] = [1, 0, -1]
tl = 0.5
triton = linear(rt, torch, tl)
triton
_phc_linear = 2.0
_t1 = 3.0
max = 4.0
img: ℝ[4, 4] = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]
k: ℝ[2, 2] = [[1, 0], [0, -1]]
conv2d(img, k)
maxpool2d([img])
_phc_linear * _t1 + max
"""

USER_NAMES_OUT = """[-1.5, -1.5] ∈ ℝ[2]
[[-5.0, -5.0, -5.0], [-5.0, -5.0, -5.0], [-5.0, -5.0, -5.0]] ∈ ℝ[3,3]
[[[6.0, 8.0], [14.0, 16.0]]] ∈ ℝ[1,2,2]
10.0 ∈ ℝ
"""


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_user_names_that_phc_also_generates(backend):
    compiled = pipeline.compile_source(USER_NAMES, "names.phk", backend)
    if backend == "triton":     # the names above shadowed these wrappers once
        kinds = {type(m).__name__ for _, _, m in compiled.plan.matches}
        assert kinds == {"LinearMatch", "ConvMatch", "PoolMatch"}, compiled.plan.text()
    assert run_program(USER_NAMES, backend, name="names") == USER_NAMES_OUT


def _bound_names(tree: ast.Module) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            out.add(node.id)
        elif isinstance(node, ast.alias):
            out.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.Global):
            out.update(node.names)
    return out


def _module_level_names(tree: ast.Module) -> set[str]:
    out = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            out.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
    return out


PROGRAMS = sorted(ROOT.glob("examples/*.phk")) + sorted((ROOT / "tests" / "regressions").glob("*.phk"))


def test_generated_names_are_reserved_or_prefixed():
    """Every module-level name the generated code binds (but the user's own functions, classes
    and globals) starts with `_phc` or is reserved, and so is every builtin it calls: a user
    name can shadow none of them."""
    for path in PROGRAMS + [None]:
        source = USER_NAMES if path is None else path.read_text(encoding="utf-8")
        try:
            compiled = pipeline.compile_source(source, "p.phk", "triton")
        except Exception:       # noqa: BLE001 - programs of other bug classes may not compile yet
            continue
        tree = ast.parse(compiled.python)
        user = _user_names(compiled.module)
        generated = _module_level_names(tree) - user
        assert {g for g in generated if not (g.startswith("_phc") or g in _RESERVED)} == set(), path
        builtins_called = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
                           and node.id in dir(builtins) and not node.id.startswith("__")} - _bound_names(tree)
        assert builtins_called <= _RESERVED, (path, builtins_called - _RESERVED)


def _user_names(module) -> set[str]:
    from phc.ir.analysis import walk_stmts
    from phc.ir import nodes as n
    names = Names({f.name for f in module.functions}, {c.name for c in module.classes})
    raw = {f.name for f in module.functions} | {c.name for c in module.classes}
    raw |= {s.name for s in walk_stmts(module.main.body) if isinstance(s, n.Assign)}
    raw |= {s.axis.var for s in walk_stmts(module.main.body) if isinstance(s, n.Loop)}
    raw |= {t for s in walk_stmts(module.main.body) if isinstance(s, n.Grads) for t in s.targets}
    return {names.py(r) for r in raw}


def test_names_map_is_one_to_one_and_avoids_generated_names():
    names = Names(set(), set())
    tricky = ["torch", "torch_", "torch__", "_phc_linear", "_phc_linear_", "_t1", "_n2", "_g",
              "x", "x_", "_x", "_x_", "class", "class_", "main", "max", "tl", "triton", "linear"]
    py = [names.py(t) for t in tricky]
    assert len(set(py)) == len(py), dict(zip(tricky, py))
    for t, p in zip(tricky, py):
        assert p.isidentifier()
        assert p == t or p.endswith("_"), (t, p)
        assert not ((p.startswith("_phc") or p.startswith("_")) and not p.endswith("_")), (t, p)
        assert p not in _RESERVED


DIGITS_SHORT = (  # one epoch of two batches of 8, tested on 8 digits: a few seconds interpreted
    (r"^epochs: ℕ = \d+$", "epochs: ℕ = 1"),
    (r"^batch: ℕ = 64$", "batch: ℕ = 8"),
    (r"^n_batches: ℕ = n_train // batch$", "n_batches: ℕ = 2"),
    (r"^X_test = data\[1\]\[0\]$", "X_test = data[1][0][0:8]"),
    (r"^y_test = data\[1\]\[1\]$", "y_test = data[1][1][0:8]"),
)


def test_digits_convnet_trains_on_the_triton_backend():
    """The example whose `def linear` once shadowed the Triton wrapper `linear`: a few steps under
    the interpreter, against the torch backend (losses and trained weights to float32 rounding)."""
    source = (ROOT / "examples" / "digits_convnet.phk").read_text(encoding="utf-8")
    for pattern, replacement in DIGITS_SHORT:
        source, count = re.subn(pattern, replacement, source, flags=re.M)
        assert count == 1, pattern
    import runtime as rt
    results = {}
    for backend in ("triton", "torch"):
        rt.manual_seed(0)
        results[backend] = compile_module(source, backend, f"digits_{backend}").main()
    t, ref = results["triton"], results["torch"]
    assert abs(float(t["epoch_loss"]) - float(ref["epoch_loss"])) < 1e-5
    for field in ("kernel", "w1", "c1", "w2", "c2"):
        torch.testing.assert_close(getattr(t["net"], field), getattr(ref["net"], field), atol=1e-5, rtol=1e-5)
