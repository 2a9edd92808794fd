"""benchmarks/gpu_suite.py: its dry run (what CI can check of a suite meant for a CUDA machine) and
the helpers that read what the GPU commands print."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("phc_gpu_suite", ROOT / "benchmarks" / "gpu_suite.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module         # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_dry_run_checks_everything_the_gpu_run_needs(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}     # a dry run even where a GPU exists
    proc = subprocess.run([sys.executable, "benchmarks/gpu_suite.py", "--dry-run", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "everything the GPU suite runs is in place" in proc.stdout
    for check in ("imports: ok", "collect: ok", "tiny/torch: ok", "tiny/triton: ok", "seed: ok"):
        assert check in proc.stdout
    report = (tmp_path / "gpu-dry-run.md").read_text(encoding="utf-8")
    assert "| cnn_seed (1 epoch of 2 samples) | yes | triton vs torch |" in report


def test_printed_figures_reads_physika_print_and_show(suite):
    out = "2.25 ∈ ℝ\n0.5 ∈ ℝ\nphc: a note\ntest_accuracy = 0.9139 ∈ ℝ\n"
    assert suite.printed_figures(out) == [2.25, 0.5, 0.9139]


def test_compare_figures(suite):
    assert suite.compare_figures([2.0, 0.5, 0.9], [2.0000001, 0.5, 0.905])[0]
    agree, head, worst, why = suite.compare_figures([2.0, 0.5], [2.1, 0.5])
    assert not agree and "first figures" in why and abs(head - 0.1 / 2.1) < 1e-12
    assert not suite.compare_figures([2.0, 0.5, 0.9], [2.0, 0.5, 0.8])[0]       # drift past 2e-2
    assert not suite.compare_figures([2.0, 0.5], [2.0])[0]                      # a run cut short
    assert not suite.compare_figures([], [])[0]                                 # nothing printed
    assert not suite.compare_figures([float("nan"), 1.0], [float("nan"), 1.0])[0]


def test_pytest_counts(suite):
    assert suite.pytest_counts("....\n3 failed, 70 passed, 2 skipped in 9.1s\n") == {
        "failed": 3, "passed": 70, "skipped": 2}
    assert suite.pytest_counts("x\n79 tests collected in 1.75s\n") == {"collected": 79}
    assert suite.pytest_counts("1 error in 0.1s") == {"error": 1}
    assert suite.pytest_counts("11/79 tests collected (68 deselected) in 8.10s") == {
        "collected": 11, "deselected": 68}


def test_a_shard_passes_only_when_every_test_ran_and_passed(suite):
    outcome = lambda rc, out: suite.Outcome("shard", [], rc, out, 1.0)
    assert suite.shard_passed(outcome(0, "....\n4 passed in 2s"))
    assert not suite.shard_passed(outcome(0, "ssss\n4 skipped in 2s"))       # no GPU after all
    assert not suite.shard_passed(outcome(0, "3 passed, 1 skipped in 2s"))
    assert not suite.shard_passed(outcome(1, "3 passed, 1 failed in 2s"))
    assert not suite.shard_passed(outcome(None, "[timed out after 9 s]"))


def test_shards_hold_every_test_once_and_keep_a_function_together(suite):
    ids = [f"tests/test_gpu.py::test_{f}[{i}]" for f, n in (("a", 7), ("b", 3), ("c", 2), ("d", 1))
           for i in range(n)] + ["tests/test_gpu.py::test_e"]
    shards = suite.shard(ids, 3)
    assert sorted(i for s in shards for i in s) == sorted(ids) and len(shards) == 3
    for name in "abcd":
        assert sum(any(f"test_{name}[" in i for i in s) for s in shards) == 1
    assert suite.shard(ids[:2], 4) == [ids[:2]]
    listing = "tests/test_gpu.py::test_a[0]\ntests/test_gpu.py::test_e\n\n2 tests collected in 1s\n"
    assert suite.collected_ids(listing) == ["tests/test_gpu.py::test_a[0]", "tests/test_gpu.py::test_e"]


def test_results_file_is_named_after_the_device(suite, tmp_path):
    assert suite.slug("NVIDIA H200") == "nvidia-h200"
    path = suite.write_report("# x\n", tmp_path, "NVIDIA H200")
    assert path.name == "gpu-nvidia-h200.md" and path.read_text(encoding="utf-8") == "# x\n"


def test_wheels_are_unpacked_onto_the_path(suite, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "demo-1.0-py3-none-any.whl", "w") as z:
        z.writestr("demo_pkg/__init__.py", "VALUE = 42\n")
    site = tmp_path / "site"
    assert suite.unpack_wheels(wheels, site) == ["demo-1.0-py3-none-any.whl"]
    env = suite.child_env(site, interpret=True, cache=tmp_path / "cache")
    out = subprocess.run([sys.executable, "-c", "import demo_pkg; print(demo_pkg.VALUE)"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "42"
    (wheels / "native-1.0-cp312-cp312-linux_x86_64.whl").write_bytes(b"")
    with pytest.raises(ValueError, match="not a pure-Python wheel"):
        suite.unpack_wheels(wheels, site)


def test_shrunk_source_substitutes_each_pattern_once(suite, tmp_path):
    seed = suite.seed_program()
    assert seed is not None
    text = suite.shrunk_source(seed)
    assert "epochs: ℕ = 1" in text and "create_dataset(50, 4)" in text
    twice = tmp_path / "cnn_seed.phk"
    twice.write_text(seed.read_text(encoding="utf-8") + "\nepochs: ℕ = 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="occurs 2 times"):
        suite.shrunk_source(twice)


def test_every_program_runs_on_both_backends(suite):
    names = [p.stem for p in suite.programs()]
    assert names[0] == "cnn_seed" and names.count("cnn_seed") == 1
    assert set(names[1:]) == {p.stem for p in (ROOT / "examples").glob("*.phk")} - {"cnn_seed"}
    argv = suite.program_command(suite.programs()[1], "cuda", "triton")
    assert "allow_tf32 = False" in argv[2]
    assert argv[-6:] == ["--device", "cuda", "--backend", "triton", "--show", "test_accuracy"]


def test_gpu_tests_force_every_config_of_every_kernel_family():
    sys.path.insert(0, str(ROOT / "tests"))
    spec = importlib.util.spec_from_file_location("phc_test_gpu_configs", ROOT / "tests" / "test_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from phc.emit.triton_backend import all_tiles
    families = {tuple(b for b, _ in t.sizes) for t in all_tiles(module.SPECS)}
    assert {blocks for blocks, _ in module.GPU_CONFIGS} == families
    wanted = {(tuple(b for b, _ in t.sizes), c) for t in all_tiles(module.SPECS) for c in t.gpu}
    assert set(module.GPU_CONFIGS) == wanted


def test_kernel_summary_reads_the_benchmark_table(suite):
    table = ("| layer | batch | pass | phc (µs) | torch (µs) | speedup | max abs diff |\n"
             "|---|---:|---|---:|---:|---:|---:|\n"
             "| lenet conv2 6->16 5x5 14x14 | 256 | fwd | 30.0 | 10.0 | 0.33x | 1.0e-06 |\n"
             "| lenet fc1 400->120 | 256 | fwd+bwd | 12.0 | 10.0 | 0.83x | 1.0e-06 |\n"
             "| lenet fc1 400->120 | 1 | fwd | 50.0 | 10.0 | 0.20x | 1.0e-06 |\n"
             "| seed linear 169->10 | 256 | fwd | 50.0 | 10.0 | 0.20x | 1.0e-06 |\n")
    assert suite.kernel_rows(table)[0] == ("lenet conv2 6->16 5x5 14x14", 256, "fwd", 3.0)
    summary = suite.kernel_summary(table)[0]
    assert "1 of 2 measurements within 1.5x" in summary and "lenet conv2 6->16 5x5 14x14, fwd, 3.00x" in summary


def test_jobs_past_the_deadline_are_not_started(suite):
    py = [sys.executable, "-c", "import time; time.sleep(8)"]
    done = suite.side_by_side([("slow", py, dict(os.environ), 60), ("late", py, dict(os.environ), 6)], workers=1)
    assert done["slow"].ok and done["late"].rc is None and "not started" in done["late"].out
