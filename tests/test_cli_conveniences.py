"""What a new user expects of the command line: --version, JSON diagnostics, colour rules, --set,
--show checked first, standard input, cuda:N, messages instead of tracebacks, one-line print,
--seed for shuffles, the progress bar's terminal rule and --plot."""
import io
import json
import os
import subprocess
import sys

import pytest

import phc
from phc.cli import main

LOOP = "epochs: ℕ = 3\nloss: ℝ = 8\nfor e: ℕ(epochs):\n    loss = loss / 2\n    print(\"epoch\", e, \"loss\", loss)\n"
WARN = ("def f(x: ℝ[m, n]): ℝ:\n    t: ℝ = 0\n    total: ℝ = 0\n    for i:\n        t = x[i]\n"
        "        total += 1\n    return total\n\nv: ℝ[2, 2] = [[1, 2], [3, 4]]\ny = f(v)\ny\n")


def cli(*args, input=None, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "phc.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, input=input, cwd=cwd,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def prog(tmp_path):
    def write(text, name="p.phk"):
        f = tmp_path / name
        f.write_text(text, encoding="utf-8")
        return f
    return write


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHC_CACHE", str(tmp_path / "cache"))


def test_version():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"phc {phc.__version__}"


def test_help_lists_each_command_once():
    text = cli("--help").stdout
    for cmd in ("check", "ir", "compile", "run"):
        assert sum(line.split()[:1] == [cmd] for line in text.splitlines()) == 1, text


def test_print_of_several_values_is_one_line(prog, capsys):
    assert main(["run", str(prog(LOOP)), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "epoch 0 ∈ ℝ loss 4.0 ∈ ℝ", "epoch 1 ∈ ℝ loss 2.0 ∈ ℝ", "epoch 2 ∈ ℝ loss 1.0 ∈ ℝ"]


def test_set_overrides_a_top_level_declaration(prog, capsys):
    assert main(["run", str(prog(LOOP)), "--device", "cpu", "--set", "epochs=1", "--set", "loss=2"]) == 0
    assert capsys.readouterr().out.splitlines() == ["epoch 0 ∈ ℝ loss 1.0 ∈ ℝ"]
    assert main(["run", str(prog(LOOP)), "--device", "cpu", "--set", "epoch=1"]) == 1
    err = capsys.readouterr().err
    assert "no top-level declaration of `epoch`" in err and "did you mean `epochs`?" in err
    assert main(["run", str(prog(LOOP)), "--device", "cpu", "--set", "epochs"]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err


def test_show_is_checked_before_the_run(prog, capsys):
    assert main(["run", str(prog(LOOP)), "--device", "cpu", "--show", "los"]) == 1
    out = capsys.readouterr()
    assert out.out == ""                       # the program did not run
    assert "did you mean `loss`?" in out.err
    assert main(["run", str(prog(LOOP)), "--device", "cpu", "--show", "loss"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "loss = 1.0 ∈ ℝ"


def test_run_reads_standard_input():
    out = cli("run", "-", "--device", "cpu", input="a: ℝ = 2\na * 3\n")
    assert out.returncode == 0 and out.stdout == "6.0 ∈ ℝ\n", out.stderr
    out = cli("check", "-", input="y = kernl\n")
    assert out.returncode == 1 and "<stdin>:1:" in out.stderr


def test_json_diagnostics_one_object_per_line(prog):
    bad = prog("x: ℝ[3] = [1, 2]\ny = kernl\n", "bad.phk")
    out = cli("check", bad, "--format", "json")
    assert out.returncode == 1 and out.stdout == ""
    objs = [json.loads(line) for line in out.stderr.splitlines()]
    assert len(objs) >= 1 and all(o["severity"] == "error" and o["file"] == str(bad) for o in objs)
    assert {"line", "col", "end_line", "end_col", "message", "hint"} <= set(objs[0])
    out = cli("compile", bad, "-o", bad.with_suffix(".py"), "--format", "json")
    assert out.returncode == 1 and json.loads(out.stderr.splitlines()[0])["severity"] == "error"
    out = cli("run", prog(WARN, "warn.phk"), "--device", "cpu", "--format", "json")
    assert out.returncode == 0 and json.loads(out.stderr.splitlines()[0])["severity"] == "warning"
    assert out.stdout.split()[0] in ("2", "2.0")        # the program's output alone


def test_run_error_as_json(prog):
    f = prog("def shift(x: ℝ[n]): ℝ[n]:\n    return for i: ℕ(len(x)) -> x[i + 1]\n\nv: ℝ[4] = [1, 2, 3, 4]\nw = shift(v)\nw\n")
    out = cli("run", f, "--device", "cpu", "--format", "json")
    obj = json.loads(out.stderr.splitlines()[-1])
    assert out.returncode == 1 and obj["kind"] == "runtime" and obj["line"] >= 2 and "out of range" in obj["message"]


def test_run_shows_warnings_once_and_compactly(prog):
    f = prog(WARN)
    for _ in range(2):                          # compiled, then from the cache: same warnings
        out = cli("run", f, "--device", "cpu")
        warnings = [line for line in out.stderr.splitlines() if "warning:" in line]
        assert out.returncode == 0 and len(warnings) == 1 and out.stderr.count("\n") == 1, out.stderr


def test_colour_follows_force_and_no_color(prog):
    bad = prog("y = kernl\n")
    assert "\033[" in cli("check", bad, env={"FORCE_COLOR": "1"}).stderr
    assert "\033[" not in cli("check", bad, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stderr
    assert "\033[" not in cli("check", bad).stderr          # not a terminal


@pytest.mark.parametrize("args, words", [
    (["--seed", "99999999999999999999"], "out of range"),
    (["--seed", "-1"], "out of range"),
    (["--device", "gpu"], "unknown device"),
    (["--device", "cuda:x"], "unknown device"),
    (["--threads", "0"], "positive"),
])
def test_bad_options_are_messages(prog, args, words):
    out = cli("run", prog("1\n"), *(args if args[0] != "--device" or args[1] != "cuda:7" else args))
    assert out.returncode == 1 and words in out.stderr and "Traceback" not in out.stderr


def test_cuda_n_is_understood(prog):
    import torch
    out = cli("run", prog("1\n"), "--device", "cuda:0")
    if torch.cuda.is_available():
        assert out.returncode == 0
    else:
        assert out.returncode == 1 and "no CUDA device" in out.stderr


def test_unwritable_paths_are_messages(prog, tmp_path):
    f = prog("a: ℝ = 1\na\n")
    out = cli("compile", f, "-o", tmp_path / "no" / "such" / "x.py")
    assert out.returncode == 1 and "cannot write" in out.stderr and "Traceback" not in out.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = cli("run", f, "--device", "cpu", "--no-cache", env={"PHC_DUMP": str(blocker / "dump")})
    assert out.returncode == 0 and "PHC_DUMP" in out.stderr and "Traceback" not in out.stderr
    out = cli("run", f, "--device", "cpu", env={"PHC_CACHE": str(blocker / "cache")})
    assert out.returncode == 0 and "cache" in out.stderr and "Traceback" not in out.stderr


def test_missing_triton_is_a_message(prog):
    code = ("import sys; sys.modules['triton'] = None; from phc.cli import main; "
            "sys.exit(main(['run', %r, '--backend', 'triton', '--device', 'cpu']))" % str(prog("1\n")))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "needs the triton package" in out.stderr and "Traceback" not in out.stderr


def test_default_backend_needs_no_triton(prog, tmp_path):
    f = prog("a: ℝ = 1\na\n")
    code = ("import sys; sys.modules['triton'] = None; from phc.cli import main; "
            "rc = main(['run', %r, '--device', 'cpu']); "
            "rc = rc or main(['compile', %r, '-o', %r]); sys.exit(rc)" % (str(f), str(f), str(tmp_path / "m.py")))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_auto_backend_module_imports_no_triton_on_a_cpu(seed_path, tmp_path):
    assert main(["compile", str(seed_path), "-o", str(tmp_path / "cnn.py")]) == 0     # --backend auto
    assert "@triton.jit" in (tmp_path / "cnn.py").read_text()
    code = "import sys, torch; sys.path.insert(0, %r); import cnn; print('triton' in sys.modules)" % str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"})
    assert out.stdout.strip() == "False", out.stderr


def test_ir_function_unknown_is_an_error(seed_path):
    out = cli("ir", seed_path, "--function", "conv2")
    assert out.returncode == 1 and "did you mean `conv2d`?" in out.stderr and out.stdout == ""


def test_ir_accepts_backend_auto(seed_path, capsys):
    assert main(["ir", str(seed_path), "--stage", "kernels", "--backend", "auto"]) == 0
    assert "auto" in capsys.readouterr().out


def test_seed_reaches_shuffles(prog, capsys):
    f = prog("p = shuffle_indices(12, 1)\np\n")
    outs = {}
    for seed in (0, 0, 5):
        assert main(["run", str(f), "--device", "cpu", "--seed", str(seed)]) == 0
        outs.setdefault(seed, set()).add(capsys.readouterr().out)
    assert len(outs[0]) == 1 and outs[0] != outs[5]


def test_results_do_not_depend_on_threads(prog, capsys):
    f = prog("w: ℝ[4, 3] = for i: ℕ(4) -> for j: ℕ(3) -> sin(i + j)\nx: ℝ[3] = [1, 2, 3]\n"
             "y: ℝ[4] = for i: ℕ(4) -> w[i, 0] * x[0] + w[i, 1] * x[1] + w[i, 2] * x[2]\ny\n")
    texts = set()
    for threads in ("1", "2"):
        assert main(["run", str(f), "--device", "cpu", "--threads", threads]) == 0
        texts.add(capsys.readouterr().out)
    assert len(texts) == 1


# ---------------------------------------------------------------- progress and plots

class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def _module_for(source):
    from helpers import compile_module
    return compile_module(source, "torch", "progress")


@pytest.mark.parametrize("tty, progress, shown", [(True, True, True), (False, True, False),
                                                  (True, False, False)])
def test_progress_bar_only_on_a_terminal(tty, progress, shown):
    from phc.progress import Monitor
    module = _module_for(LOOP)
    stream = FakeTTY() if tty else io.StringIO()
    monitor = Monitor(module, LOOP, "", "<x>", progress=progress, stream=stream, delay=0, interval=0)
    assert monitor.want_bar == shown
    with monitor:
        module.main()
    text = stream.getvalue()
    assert ("3/3" in text) == shown, text


def test_progress_bar_shows_the_last_printed_value(capsys):
    from phc.progress import Monitor
    from phc import pipeline
    compiled = pipeline.compile_source(LOOP, "loop.phk", "torch")
    from phc.loader import load_module
    module, path = load_module(compiled.python, "loop")
    stream = FakeTTY()
    with Monitor(module, LOOP, compiled.python, path, stream=stream, delay=0, interval=0):
        module.main()
    assert "loss=1" in stream.getvalue()


def test_plot_writes_a_png(prog, tmp_path, capsys):
    png = tmp_path / "loss.png"
    assert main(["run", str(prog(LOOP)), "--device", "cpu", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    assert main(["run", str(prog(LOOP)), "--device", "cpu", "--plot", str(tmp_path / "no" / "x.png")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_auto_backend_kernels_are_defined_where_cuda_is(seed_path, tmp_path):
    """The auto module's kernels sit under `if torch.cuda.is_available():`; with CUDA (faked here,
    kernels under the interpreter) they are defined and the module still runs."""
    assert main(["compile", str(seed_path), "-o", str(tmp_path / "cnn_auto.py")]) == 0
    code = ("import sys, torch; torch.cuda.is_available = lambda: True; sys.path.insert(0, %r); "
            "import cnn_auto; print('triton' in sys.modules, callable(getattr(cnn_auto, '_phc_use_triton', None)))"
            % str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TRITON_INTERPRET": "1"})
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]
