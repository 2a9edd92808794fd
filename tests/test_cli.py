"""The command line: check, ir, compile, run — exit codes, outputs, and no tracebacks."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phc.cli import main

BAD_INDEX = "def shift(x: ℝ[n]): ℝ[n]:\n    return for i: ℕ(len(x)) -> x[i + 1]\n\nv: ℝ[4] = [1, 2, 3, 4]\nw = shift(v)\nw\n"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "phc.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_check_seed_is_clean_and_fast_without_torch(seed_path):
    code = ("import sys, time; t = time.perf_counter(); from phc.cli import main; rc = main(['check', %r]);"
            "print(rc, 'torch' in sys.modules, time.perf_counter() - t)" % str(seed_path))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - t0
    rc, torch_loaded, _ = out.stdout.split()
    assert rc == "0" and torch_loaded == "False", out.stderr
    assert wall < 5      # the 0.5 s figure is measured by hand (see the issue note); CI machines vary


def test_check_reports_errors_with_caret(tmp_path):
    f = tmp_path / "bad.phk"
    f.write_text("x: ℝ[3] = [1, 2]\ny = kernl\n", encoding="utf-8")
    out = run_cli("check", f)
    assert out.returncode == 1
    assert f"{f}:1:" in out.stderr and "^" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("stage", ["ast", "typed", "affine", "kernels", "python"])
def test_ir_stages(seed_path, stage, capsys):
    assert main(["ir", str(seed_path), "--stage", stage]) == 0
    out = capsys.readouterr().out
    assert out.strip()
    if stage == "affine":
        for fn in ("conv2d", "maxpool2d", "flatten", "linear", "relu2d", "softmax"):
            assert fn in out


def test_ir_function_filter(seed_path, capsys):
    assert main(["ir", str(seed_path), "--stage", "affine", "--function", "conv2d"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("func ConvNets.conv2d") and "func main" not in out


def test_compile_writes_importable_module_and_refuses_foreign_files(tmp_path, seed_path):
    out = tmp_path / "cnn.py"
    assert main(["compile", str(seed_path), "-o", str(out), "--backend", "torch"]) == 0
    assert out.read_text().startswith("# phc-generated:")
    assert main(["compile", str(seed_path), "-o", str(out), "--backend", "torch"]) == 0   # ours: overwritten
    foreign = tmp_path / "mine.py"
    foreign.write_text("print('hand written')\n")
    assert main(["compile", str(seed_path), "-o", str(foreign)]) == 1
    assert foreign.read_text() == "print('hand written')\n"
    assert main(["compile", str(seed_path), "-o", str(foreign), "--force", "--backend", "torch"]) == 0
    probe = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r); import cnn; "
                            "print(hasattr(cnn, 'ConvNets'), hasattr(cnn, 'cnn_object'))" % str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
    assert probe.stdout.split() == ["True", "False"], probe.stderr


def test_run_prints_and_shows(tmp_path):
    f = tmp_path / "p.phk"
    f.write_text("def f(x: ℝ): ℝ:\n    return x * x\n\na: ℝ = 3\nb = f(a)\nb\nv: ℝ[2] = [1, 2]\nv\n", encoding="utf-8")
    out = run_cli("run", f, "--device", "cpu", "--show", "a")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["9.0 ∈ ℝ", "[1.0, 2.0] ∈ ℝ[2]", "a = 3.0 ∈ ℝ"]


def test_runtime_error_points_at_the_phk_line(tmp_path):
    f = tmp_path / "bad.phk"
    f.write_text(BAD_INDEX, encoding="utf-8")
    out = run_cli("run", f, "--device", "cpu")
    assert out.returncode == 1
    # at the read inside the inlined `shift`, with the call it came through
    assert f"{f}:2:32: runtime error: index 4 is out of range for axis 0 of size 4" in out.stderr
    assert f"note: in `shift`, called at {f}:5:5" in out.stderr
    assert "Traceback" not in out.stderr
    out = run_cli("run", f, "--device", "cpu", "--traceback")
    assert "Traceback" in out.stderr


def test_help_explains_every_command():
    out = run_cli("--help")
    for cmd in ("check", "ir", "compile", "run"):
        assert cmd in out.stdout
    out = run_cli("run", "--help")
    for opt in ("--device", "--backend", "--seed", "--show", "--summary", "--traceback"):
        assert opt in out.stdout
