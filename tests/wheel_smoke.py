"""Build phc's wheel, install it into a clean virtual environment, and use it from a folder outside
the repository that holds a user's own `runtime.py`: `phc --version`, the seed program, and a small
program on the Triton backend under TRITON_INTERPRET=1.

Offline: the wheel is installed with --no-deps; the new environment sees its dependencies (torch,
lark, jinja2, numpy, triton) through a .pth line naming the site-packages of the interpreter that
runs this script, so that the only phc it can import is the wheel's.

    python tests/wheel_smoke.py            # .ci/run; tests/test_wheel.py calls smoke()
"""
from __future__ import annotations

import os
import site
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# `dense`, not `linear`: a user function named like a generated Triton wrapper is another issue.
TRITON_PROGRAM = """\
def dense(x: ℝ[n], weight: ℝ[m, n], bias: ℝ[m]): ℝ[m]:
    results: ℝ[len(bias)] = for i: ℕ(len(bias)) -> 0
    for i: ℕ(len(bias)):
        acc = 0
        for j: ℕ(len(x)):
            acc += weight[i, j] * x[j]
        results[i] = acc + bias[i]
    return results

w: ℝ[2, 3] = [[1, 2, 3], [4, 5, 6]]
b: ℝ[2] = [1, 1]
x: ℝ[3] = [1, 0, 1]
y = dense(x, w, b)
y
"""
USER_RUNTIME = "raise SystemExit('the user runtime.py was imported instead of phc.runtime')\n"


def build_wheel(dest: Path) -> Path:
    """The wheel of a copy of the source tree (a stale build/ folder cannot leak into it)."""
    import shutil
    tree = dest / "src"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "data", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dest), str(tree)], check=True, env=_clean_env())
    (wheel,) = dest.glob("phc-*.whl")
    return wheel


def clean_venv(folder: Path) -> Path:
    """A virtual environment without phc, whose interpreter sees this one's dependencies."""
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "phc_smoke_deps.pth").write_text("\n".join(deps) + "\n")
    return python


def install(python: Path, wheel: Path) -> None:
    # --ignore-installed: the dependencies' folder may list a phc (an editable checkout); never
    # uninstall it, install beside it
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", "--ignore-installed", str(wheel)], check=True,
                   env=_clean_env())


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRITON_INTERPRET")}


def run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = _clean_env()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**environ, **env})
    print(f"$ {' '.join(cmd[-4:])}\n{proc.stdout}{proc.stderr}", end="", flush=True)
    return proc


def smoke(work: Path) -> dict[str, subprocess.CompletedProcess]:
    """Every step's process; raises AssertionError at the first one that goes wrong."""
    wheel = build_wheel(work / "dist")
    python = clean_venv(work / "venv")
    install(python, wheel)
    phc = str(python.parent / "phc")
    user = work / "user"
    user.mkdir()
    (user / "runtime.py").write_text(USER_RUNTIME)
    (user / "dense.phk").write_text(TRITON_PROGRAM, encoding="utf-8")
    (user / "cnn_seed.phk").write_bytes((ROOT / "examples" / "cnn_seed.phk").read_bytes())
    cache = str(work / "cache")
    steps = {
        "where": run([str(python), "-c", "import phc, phc.runtime, importlib.util as u; "
                      "print(phc.__file__); print(phc.runtime.__file__); print(u.find_spec('runtime').origin)"], user),
        "version": run([phc, "--version"], user),
        "seed": run([phc, "run", "cnn_seed.phk", "--device", "cpu", "--show", "accuracy"], user, PHC_CACHE=cache),
        "triton": run([phc, "run", "dense.phk", "--backend", "triton", "--device", "cpu"], user,
                      TRITON_INTERPRET="1", PHC_CACHE=cache),
    }
    for name, proc in steps.items():
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    phc_file, runtime_file, user_runtime = steps["where"].stdout.split()
    venv_root = str((work / "venv").resolve())
    assert os.path.realpath(phc_file).startswith(venv_root), phc_file
    assert os.path.realpath(runtime_file).startswith(venv_root), runtime_file
    assert Path(user_runtime).resolve() == (user / "runtime.py").resolve()   # no top-level runtime installed
    assert steps["version"].stdout.startswith("phc "), steps["version"].stdout
    assert steps["seed"].stdout.splitlines()[-1].startswith("accuracy = ")
    assert steps["triton"].stdout.splitlines() == ["[5.0, 11.0] ∈ ℝ[2]"]
    return steps


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="phc-wheel-") as tmp:
        smoke(Path(tmp))
    print("wheel smoke test: ok")
