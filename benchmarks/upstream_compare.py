"""Run upstream Physika's own programs under upstream and under phc; compare what they print.

    python benchmarks/upstream_compare.py --upstream DIR [--upstream-python PY] [--only NAME ...]
                                          [--timeout S] [--out benchmarks/results/upstream.md]

DIR is a checkout of github.com/deepforestsci/physika (its `examples/` and `tutorials/`); PY a
Python that can `import physika` from DIR (torch, ply, numpy, matplotlib installed). Nothing of
upstream is kept in this repository: the script reads the checkout and writes only a table.

Each program runs as `PY -m physika.execute FILE` and as `phc run FILE --device cpu`, in the
program's folder (imports of sibling files resolve there), with MPLBACKEND=Agg. Outputs agree when
they print the same lines with the same numbers to relative 1e-4; integer-vs-real spellings
(`[1, 2]` against `[1.0, 2.0]`) count as equal, since phc lets the declared type decide the kind
where upstream lets the literal decide; a message upstream prints as `text ∈ str` equals `text`.
Programs that draw unseeded random numbers are compared
on their printed shapes only. Upstream's outputs are cached (per upstream commit) in
`--cache` so that a rerun only reruns phc.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Programs whose printed values depend on unseeded randomness: compare shapes (`∈ ℝ[…]`) only.
UNSEEDED = {"randomness", "allen_cahn", "fourier_neural_operator"}
# Outside the numeric core: plotting helpers, sympy, upstream's own training helpers.
OUTSIDE_CORE = {"example_symbolic", "train_fully_connected", "networks_train", "harmonic_oscillator",
                "hnn", "pendulum_rk4", "spring_pendulum_rk4"}
# Where upstream computes something else than the program says, and phc is right (the reason is
# printed in the table).
UPSTREAM_WRONG: dict[str, str] = {
    "example_symbolic": "upstream parses `2*x**2` as `(2*x)**2`, so its derivative of "
                        "`x**3 + 2*x**2 + x` is `3*x**2 + 8*x + 1`; phc's `3*x**2 + 4*x + 1` is the "
                        "derivative of what the program says (every other line agrees)",
}
# Programs that contradict their own declarations with certainty: phc reports the contradiction
# (an error, docs/language.md), upstream does not check declared sizes. Not counted as agreeing.
PROGRAM_WRONG: dict[str, str] = {
    "example_slicing": "line 91 declares `func_x: ℝ[8]` for `a[:2]`, 2 elements: a certain "
                       "contradiction, reported with both shapes; with `ℝ[2]` there phc prints what "
                       "upstream prints",
}

_NUM = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|-?inf|nan")
_STR_TYPE = re.compile(r" ∈ str$")
_NOISE = re.compile(r"^\s*(✓ No type errors found|Generating LALR tables|WARNING:)")


@dataclass
class Result:
    name: str
    folder: str
    upstream_rc: int | None = None
    phc_rc: int | None = None
    status: str = ""
    detail: str = ""
    seconds: dict = field(default_factory=dict)


def programs(upstream: Path, only: list[str]) -> list[Path]:
    found = sorted((upstream / "examples").glob("*.phyk")) + sorted((upstream / "tutorials").glob("*.phyk"))
    return [p for p in found if not only or p.stem in only]


def run(cmd: list[str], cwd: Path, timeout: float, env: dict) -> tuple[int | None, str, str, float]:
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
                             stdin=subprocess.DEVNULL)
        return out.returncode, out.stdout, out.stderr, time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout:.0f} s", time.perf_counter() - t0


def clean(text: str) -> list[str]:
    """The printed lines, without upstream's banners and warnings, and without the ` ∈ str` that
    upstream's typed print appends to a message (its `train` prints its progress through it)."""
    return [_STR_TYPE.sub("", ln.rstrip()) for ln in text.splitlines() if ln.strip() and not _NOISE.match(ln)]


def shapes_of(lines: list[str]) -> list[str]:
    return [ln.split("∈", 1)[1].strip() for ln in lines if "∈" in ln]


def same_line(a: str, b: str, rel: float) -> bool:
    """The same text around the numbers and the same numbers to `rel` (kind-insensitive)."""
    ta, tb = _NUM.split(a), _NUM.split(b)
    na, nb = _NUM.findall(a), _NUM.findall(b)
    if len(na) != len(nb) or [t.replace(" ", "") for t in ta] != [t.replace(" ", "") for t in tb]:
        return False
    for x, y in zip(na, nb):
        fx, fy = float(x), float(y)
        if math.isnan(fx) and math.isnan(fy):
            continue
        if not math.isclose(fx, fy, rel_tol=rel, abs_tol=rel * 1e-2):
            return False
    return True


def compare(name: str, up: list[str], ph: list[str], rel: float) -> tuple[str, str]:
    if name in UNSEEDED:
        return ("agree (shapes)", "") if shapes_of(up) == shapes_of(ph) else \
               ("differ (shapes)", f"upstream {shapes_of(up)[:4]} phc {shapes_of(ph)[:4]}")
    if len(up) != len(ph):
        first = next((k for k, (a, b) in enumerate(zip(up, ph)) if not same_line(a, b, rel)), min(len(up), len(ph)))
        return "differ", f"{len(up)} lines against {len(ph)}; first difference at line {first + 1}: " \
                         f"upstream `{_at(up, first)}` phc `{_at(ph, first)}`"
    for k, (a, b) in enumerate(zip(up, ph)):
        if not same_line(a, b, rel):
            return "differ", f"line {k + 1}: upstream `{a[:80]}` phc `{b[:80]}`"
    return "agree", ""


def _at(lines: list[str], k: int) -> str:
    return lines[k][:80] if k < len(lines) else "(nothing)"


def upstream_output(path: Path, args, env: dict, cache: Path) -> tuple[int | None, str, float]:
    key = hashlib.sha256(path.read_bytes() + args.upstream_commit.encode()).hexdigest()[:16]
    entry = cache / f"{path.stem}-{key}.json"
    if entry.exists():
        data = json.loads(entry.read_text())
        return data["rc"], data["stdout"], data["seconds"]
    rc, out, err, secs = run([args.upstream_python, "-m", "physika.execute", path.name], path.parent,
                             args.timeout, {**env, "PYTHONPATH": str(args.upstream)})
    entry.write_text(json.dumps({"rc": rc, "stdout": out, "stderr": err[-2000:], "seconds": secs}))
    return rc, out, secs


def phc_output(path: Path, args, env: dict) -> tuple[int | None, str, str, float]:
    cmd = [sys.executable, "-m", "phc.cli", "run", path.name, "--device", "cpu"]
    return run(cmd, path.parent, args.timeout, {**env, "PYTHONPATH": str(ROOT)})


def one(path: Path, args, env: dict, cache: Path) -> Result:
    r = Result(path.stem, path.parent.name)
    r.upstream_rc, up, r.seconds["upstream"] = upstream_output(path, args, env, cache)
    r.phc_rc, ph, ph_err, r.seconds["phc"] = phc_output(path, args, env)
    if r.upstream_rc != 0:
        r.status, r.detail = "upstream fails", ""
        if r.phc_rc == 0:
            r.status = "upstream fails; phc runs"
        return r
    if r.phc_rc != 0:
        lines = [ln for ln in ph_err.splitlines() if ln.strip()]
        compile_error = next((ln for ln in lines if ": error:" in ln), None)
        runtime_error = next((ln for ln in lines if "runtime error" in ln), None)
        if r.phc_rc is None:
            r.status, r.detail = "phc times out", ph_err
        elif compile_error and path.stem in PROGRAM_WRONG:
            r.status, r.detail = "program contradicts itself", PROGRAM_WRONG[path.stem]
        elif compile_error:
            r.status, r.detail = "phc rejects", compile_error[:160]
        else:
            r.status, r.detail = "phc fails", (runtime_error or (lines[-1] if lines else ""))[:160]
        return r
    r.status, r.detail = compare(path.stem, clean(up), clean(ph), args.rel)
    if r.status == "differ" and path.stem in UPSTREAM_WRONG:
        r.status, r.detail = "upstream wrong", UPSTREAM_WRONG[path.stem]
    return r


def table(results: list[Result], args) -> str:
    core = [r for r in results if r.name not in OUTSIDE_CORE]
    agree = lambda rs: sum(r.status.startswith("agree") or r.status == "upstream wrong" for r in rs)  # noqa: E731
    lines = [f"# Upstream Physika's programs under phc", "",
             f"Upstream commit `{args.upstream_commit}`; `python benchmarks/upstream_compare.py` on "
             f"{args.machine}; numbers to relative {args.rel:g}.", "",
             f"- numeric core: {agree(core)} of {len(core)} agree"
             + (f"; {sum(r.status == 'program contradicts itself' for r in core)} contradicts its own "
                f"declarations (phc reports it, see its row)"
                if any(r.status == "program contradicts itself" for r in core) else ""),
             f"- outside the core (plotting, sympy, training helpers): "
             f"{agree([r for r in results if r.name in OUTSIDE_CORE])} of "
             f"{sum(r.name in OUTSIDE_CORE for r in results)} agree", "",
             "| program | folder | status | upstream s | phc s | detail |", "|---|---|---|---:|---:|---|"]
    for r in results:
        detail = r.detail.replace("|", "\\|")
        lines.append(f"| {r.name} | {r.folder} | {r.status} | {r.seconds.get('upstream', 0):.1f} | "
                     f"{r.seconds.get('phc', 0):.1f} | {detail} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", type=Path, required=True, help="checkout of upstream Physika")
    p.add_argument("--upstream-python", default=sys.executable)
    p.add_argument("--upstream-commit", default="b8a2699")
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--rel", type=float, default=1e-4)
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "phc-upstream-outputs")
    p.add_argument("--out", type=Path, default=None, help="write the table here (markdown)")
    p.add_argument("--machine", default=os.uname().machine)
    args = p.parse_args(argv)
    args.upstream = args.upstream.resolve()
    args.cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    results = []
    for path in programs(args.upstream, args.only):
        r = one(path, args, env, args.cache)
        print(f"{r.name:45s} {r.status:28s} {r.detail[:100]}", flush=True)
        results.append(r)
    text = table(results, args)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
