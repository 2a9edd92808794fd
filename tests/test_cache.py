"""The compile cache: keyed on everything that changes the output, private to the user, and a
file in it runs only when phc verifiably wrote it for exactly this compilation."""
import json
import os
import stat

import pytest

import phc
from phc import cache as C
from phc.cli import main

PROGRAM = "a: ℝ = 3\nb = a * a\nb\n"
PLANTED = "print('PLANTED')\ndef main():\n    print('PLANTED')\n    return {}\n"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("PHC_CACHE", str(folder))
    return folder


@pytest.fixture
def program(tmp_path):
    f = tmp_path / "p.phk"
    f.write_text(PROGRAM, encoding="utf-8")
    return f


def run(program, capsys, *extra):
    rc = main(["run", str(program), "--device", "cpu", *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def key_of(program, backend="torch", opt=2, options=None):
    return C.compile_key(program.read_text(encoding="utf-8"), str(program), backend, opt, options)


def test_key_changes_with_everything_that_changes_the_output(program, monkeypatch):
    base = key_of(program)
    assert base == key_of(program)
    assert key_of(program, backend="triton") != base
    assert key_of(program, opt=0) != base
    assert key_of(program, options={"a": "4"}) != base
    assert C.compile_key(PROGRAM + "\n", str(program), "torch", 2, None) != base
    assert C.compile_key(PROGRAM, str(program) + "x", "torch", 2, None) != base
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert key_of(program) != base
    monkeypatch.undo()
    monkeypatch.setattr(phc, "__version__", "9.9.9")
    assert key_of(program) != base
    monkeypatch.undo()
    monkeypatch.setattr("phc.resources.code_hash", lambda: "another phc")
    assert key_of(program) != base


def test_second_run_skips_compilation(program, cache_dir, capsys, monkeypatch):
    assert run(program, capsys)[:2] == (0, "9.0 ∈ ℝ\n")

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled again")
    monkeypatch.setattr("phc.pipeline.compile_source", no_compiling)
    monkeypatch.setattr("phc.pipeline.parse", no_compiling)
    assert run(program, capsys)[:2] == (0, "9.0 ∈ ℝ\n")


def test_changed_source_or_option_recompiles(program, cache_dir, capsys):
    assert run(program, capsys)[1] == "9.0 ∈ ℝ\n"
    assert run(program, capsys, "--set", "a=4")[1] == "16.0 ∈ ℝ\n"
    program.write_text(PROGRAM.replace("a * a", "a + a"), encoding="utf-8")
    assert run(program, capsys)[1] == "6.0 ∈ ℝ\n"


def test_changed_phc_version_recompiles(program, cache_dir, capsys, monkeypatch):
    run(program, capsys)
    calls = []
    import phc.pipeline as pipeline
    real = pipeline.compile_source
    monkeypatch.setattr(pipeline, "compile_source", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(phc, "__version__", "0.0.0-other")
    assert run(program, capsys)[1] == "9.0 ∈ ℝ\n" and calls == [1]




@pytest.mark.parametrize("kind", ["bare", "forged", "replaced", "corrupt"])
def test_a_planted_file_is_never_executed(program, cache_dir, capsys, kind):
    import hashlib
    cache = C.Cache()
    key = key_of(program)
    py_path, manifest_path = cache.paths(key)
    if kind == "replaced":
        assert run(program, capsys)[1] == "9.0 ∈ ℝ\n"      # a genuine entry first
        py_path.write_text(PLANTED)
    else:
        py_path.write_text(PLANTED)
        digest = hashlib.sha256(PLANTED.encode()).hexdigest()
        if kind == "forged":
            manifest_path.write_text(json.dumps({"key": key, "sha256": digest, "mac": "0" * 64}))
        if kind == "corrupt":
            manifest_path.write_text('{"key": "')
    rc, out, err = run(program, capsys)
    assert (rc, out) == (0, "9.0 ∈ ℝ\n") and "PLANTED" not in out + err
    assert "PLANTED" not in py_path.read_text()          # recompiled and rewritten
    assert run(program, capsys)[1] == "9.0 ∈ ℝ\n"


def test_cache_folder_is_private(program, cache_dir, capsys):
    run(program, capsys)
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache_dir / "secret").stat().st_mode) == 0o600


def test_a_folder_others_can_write_is_not_used(program, cache_dir, capsys):
    cache_dir.mkdir()
    os.chmod(cache_dir, 0o777)
    (cache_dir / "modules").mkdir()
    rc, out, err = run(program, capsys)
    assert (rc, out) == (0, "9.0 ∈ ℝ\n")
    assert "compile cache disabled" in err and "writable by other users" in err
    assert list((cache_dir / "modules").iterdir()) == []


def test_unusable_cache_is_a_warning_not_a_traceback(program, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("PHC_CACHE", str(blocker / "cache"))
    rc, out, err = run(program, capsys)
    assert (rc, out) == (0, "9.0 ∈ ℝ\n") and "Traceback" not in err and "cache" in err


def test_no_cache_writes_nothing(program, cache_dir, capsys):
    assert run(program, capsys, "--no-cache")[1] == "9.0 ∈ ℝ\n"
    assert not (cache_dir / "modules").exists() or list((cache_dir / "modules").iterdir()) == []


def test_default_folder_is_per_user(monkeypatch, tmp_path):
    monkeypatch.delenv("PHC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.cache_root() == tmp_path / "xdg" / "phc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert C.cache_root() == tmp_path / "home" / ".cache" / "phc"
