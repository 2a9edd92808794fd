"""Golden text of the affine IR for the seed program and the small programs in tests/programs,
and of the adjoint (`--stage grad`) of the seed and two examples.

Refresh (after checking the diff by eye) with:  PHC_UPDATE_GOLDEN=1 pytest tests/test_ir_golden.py
"""
import os
from pathlib import Path

import pytest

from phc import pipeline
from phc.ir.printer import format_module

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
PROGRAMS = sorted((HERE / "programs").glob("*.phk"))


def affine_text(path: Path) -> str:
    program, typed = pipeline.frontend(path.read_text(encoding="utf-8"), path.name)
    return format_module(pipeline.lower(typed))


def grad_text(path: Path) -> str:
    from phc.cli import stage_text
    return stage_text(path.read_text(encoding="utf-8"), path.name, "grad")


def check_golden(name: str, text: str, ext: str = "affine"):
    path = GOLDEN / f"{name}.{ext}"
    if os.environ.get("PHC_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with PHC_UPDATE_GOLDEN=1 once"
    assert text == path.read_text(encoding="utf-8"), f"IR of {name} changed (see {path})"


def test_seed_golden(seed_path):
    check_golden("cnn_seed", affine_text(seed_path))


def test_seed_grad_golden(seed_path):
    """The seed's step as `phc ir --stage grad` prints it: the tape and its adjoint."""
    text = grad_text(seed_path)
    assert text.startswith("adjoint: adjoint\n")
    check_golden("cnn_seed", text, "grad")


@pytest.mark.parametrize("name", ["digits_convnet", "lenet5"])
def test_example_grad_golden(name):
    check_golden(name, grad_text(HERE.parent / "examples" / f"{name}.phk"), "grad")


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_program_golden(path):
    check_golden(path.stem, affine_text(path))
