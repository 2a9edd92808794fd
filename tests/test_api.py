"""The Python API (phc.compile, phc.check), the import hook and the IPython cell magic."""
import subprocess
import sys

import pytest

import phc

PROGRAM = "def square(x: ℝ): ℝ:\n    return x * x\n\na: ℝ = 3\nb = square(a)\nb\n"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHC_CACHE", str(tmp_path / "cache"))


def test_compile_text_and_path(tmp_path, capsys):
    module = phc.compile(PROGRAM)
    assert float(module.square(4.0)) == 16.0
    assert capsys.readouterr().out == ""                # importing runs nothing
    assert float(module.main()["b"]) == 9.0
    f = tmp_path / "sq.phk"
    f.write_text(PROGRAM, encoding="utf-8")
    assert float(phc.compile(f).square(2.0)) == 4.0
    assert float(phc.compile(str(f)).square(5.0)) == 25.0


def test_compile_error_raises_with_diagnostics():
    with pytest.raises(phc.diagnostics.PhcError) as info:
        phc.compile("y = kernl\n")
    assert "kernl" in info.value.diagnostics[0].message


def test_check_returns_diagnostics(tmp_path):
    assert phc.check(PROGRAM) == []
    diags = phc.check("y = kernl\n")
    assert diags and diags[0].is_error and diags[0].span.line == 1
    assert phc.check(tmp_path / "missing.phk")[0].is_error


def test_import_hook(tmp_path, capsys):
    (tmp_path / "cnn_hooked.phk").write_text(PROGRAM, encoding="utf-8")
    code = ("import sys; sys.path.insert(0, %r); import phc.hook; import cnn_hooked; "
            "print(float(cnn_hooked.square(6.0))); print(cnn_hooked.__phk__)" % str(tmp_path))
    env_out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert env_out.returncode == 0, env_out.stderr
    assert env_out.stdout.splitlines() == ["36.0", str(tmp_path / "cnn_hooked.phk")]


def test_import_hook_in_process_uses_the_cache(tmp_path, monkeypatch):
    import phc.hook
    (tmp_path / "hooked_twice.phk").write_text(PROGRAM, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import hooked_twice
    assert float(hooked_twice.square(3.0)) == 9.0
    del sys.modules["hooked_twice"]
    monkeypatch.setattr("phc.pipeline.compile_source", lambda *a, **k: pytest.fail("compiled twice"))
    import hooked_twice  # noqa: F811
    assert float(hooked_twice.main()["b"]) == 9.0
    phc.hook.uninstall()


def test_cell_magic_puts_variables_in_the_notebook(capsys):
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "phc")
    ip.run_cell_magic("physika", "--device cpu", "a: ℝ = 2\nb = a * 3\nb\n")
    assert float(ip.user_ns["b"]) == 6.0 and float(ip.user_ns["a"]) == 2.0
    assert "6.0 ∈ ℝ" in capsys.readouterr().out
    ip.run_cell_magic("physika", "--device cpu", "y = kernl\n")
    assert "kernl" in capsys.readouterr().err
