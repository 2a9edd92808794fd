"""`phc run`: compile (or take the verified module from the compile cache), load the generated
module, run `main()`, and turn a runtime error inside generated code back into a diagnostic at the
`.phk` line that caused it."""
from __future__ import annotations

import difflib
import linecache
import os
import sys
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path

from phc import log, report
from phc.diagnostics import PhcError

SEED_MAX = 2**63 - 1        # torch.manual_seed takes a signed 64-bit seed


class RunError(Exception):
    """A problem with the command (not the program): printed as `phc: error: …`, exit 1."""


# ---------------------------------------------------------------- device and backend

def resolve(device: str, backend: str) -> tuple[str, str]:
    """`auto` device: CUDA when present; `auto` backend: Triton on CUDA, torch ops on the CPU."""
    import torch
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    base, _, index = device.partition(":")
    if base not in ("cpu", "cuda") or (index and (base != "cuda" or not index.isdigit())):
        raise RunError(f"unknown device {device!r}: expected auto, cpu, cuda or cuda:N")
    if base == "cuda":
        if not torch.cuda.is_available():
            raise RunError(f"--device {device}, but no CUDA device is available")
        if index and int(index) >= torch.cuda.device_count():
            raise RunError(f"--device {device}, but there are only {torch.cuda.device_count()} CUDA devices")
    if backend == "auto":
        backend = "triton" if base == "cuda" else "torch"
    if backend == "triton":
        if base == "cpu":
            os.environ.setdefault("TRITON_INTERPRET", "1")   # must precede `import triton`
        require_triton()
    return device, backend


def require_triton() -> None:
    try:
        import triton  # noqa: F401
    except ImportError:
        raise RunError("--backend triton needs the triton package, which is not installed "
                       "(pip install 'phc[triton]'; --backend torch needs none)") from None


def check_seed(seed: int) -> int:
    if not 0 <= seed <= SEED_MAX:
        raise RunError(f"--seed {seed} is out of range: expected 0 … {SEED_MAX}")
    return seed


# ---------------------------------------------------------------- loading generated code

def exec_module(python: str, path: Path, name: str) -> types.ModuleType:
    """Run exactly `python` as module `name`, with `path` as its file for tracebacks and for
    Triton's source lookup. The text given is what runs: the file is never read back, and no
    bytecode cache is consulted."""
    linecache.cache[str(path)] = (len(python), None, python.splitlines(True), str(path))
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    code = compile(python, str(path), "exec", dont_inherit=True)
    exec(code, module.__dict__)
    return module


def scratch_dir() -> Path:
    """This process's private folder (mode 0700, removed at exit) for module files that are not
    cache entries: the Python API's text, tests, a run without a usable cache."""
    global _scratch
    if _scratch is None:
        import atexit
        import shutil
        _scratch = Path(tempfile.mkdtemp(prefix="phc-"))
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


_scratch: Path | None = None


def load_module(python: str, stem: str):
    """Write generated source to a private folder (so tracebacks show its lines) and run it as a
    module: (module, path). Used by tests and benchmarks."""
    import hashlib
    digest = hashlib.sha256(python.encode()).hexdigest()[:16]
    name = f"phk_{_ident(stem)}_{digest}"
    path = scratch_dir() / f"{name}.py"
    path.write_text(python, encoding="utf-8")
    return exec_module(python, path, name), path


def _ident(s: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in s)


# ---------------------------------------------------------------- compiling through the cache

@dataclass
class Build:
    python: str
    path: Path
    diagnostics: list               # phc.diagnostics.Diagnostic
    toplevel: list[str]
    cached: bool
    notes: list = field(default_factory=list)


def toplevel_names(compiled, source: str = "", filename: str = "<string>") -> list[str]:
    """The program's top-level variables (what `main()` returns), from the lowered IR, or from
    the syntax tree when there is none (level 0)."""
    from phc.ir import nodes as n
    from phc.ir.analysis import walk_stmts
    module = getattr(compiled, "module", None)
    if module is None:
        return _toplevel_from_ast(source, filename)
    body = module.main.body
    names = {s.name for s in walk_stmts(body) if isinstance(s, n.Assign)}
    names |= {t for s in walk_stmts(body) if isinstance(s, n.Grads) for t in s.targets}
    names |= {s.axis.var for s in walk_stmts(body) if isinstance(s, n.Loop)}
    return sorted(names)


def _toplevel_from_ast(source: str, filename: str) -> list[str]:
    from phc import ast as A
    from phc import pipeline
    names: set[str] = set()

    def visit(stmts) -> None:
        for s in stmts:
            if isinstance(s, A.Decl):
                names.add(s.name)
            elif isinstance(s, (A.Assign, A.AugAssign)) and isinstance(s.target, A.Name):
                names.add(s.target.id)
            elif isinstance(s, A.For):
                names.update(s.vars)
                visit(s.body)
            elif isinstance(s, A.If):
                visit(s.body)
                visit(s.orelse)
    try:
        visit(pipeline.parse(source, filename).body)
    except PhcError:
        return []
    return sorted(names)


def build(source: str, filename: str, backend: str, opt: int = 2, options: dict | None = None,
          use_cache: bool = True, fmt: str = "text") -> Build:
    """The generated module of `source`: from the cache when a verified entry exists (no parse,
    check, lower or emit), else compiled (and stored). Raises PhcError on a compile error."""
    from phc.cache import compile_key, open_cache
    cache = None
    if use_cache:
        cache, why = open_cache()
        if cache is None:
            report.message(f"compile cache disabled: {why}", fmt, "warning")
    key = compile_key(source, filename, backend, opt, options) if cache else None
    entry = cache.lookup(key) if cache else None
    if entry is not None:
        return Build(entry.python, entry.path, [report.from_dict(d) for d in entry.diagnostics],
                     entry.toplevel, True)
    compiled = _compile(source, filename, backend, opt)
    toplevel = toplevel_names(compiled, source, filename)
    path = None
    if cache:
        try:
            path = cache.store(key, compiled.python, [report.to_dict(d) for d in compiled.diagnostics],
                               toplevel)
        except OSError as e:
            report.message(f"cannot write the compile cache in {cache.root}: {e.strerror or e}", fmt, "warning")
    if path is None:
        path = scratch_dir() / f"phk_{_ident(Path(filename).stem)}.py"
        path.write_text(compiled.python, encoding="utf-8")
    return Build(compiled.python, path, list(compiled.diagnostics), toplevel, False,
                 list(getattr(compiled, "notes", []) or []))


def _compile(source: str, filename: str, backend: str, opt: int):
    from phc import pipeline
    return pipeline.compile_source(source, filename, backend, opt=opt)


# ---------------------------------------------------------------- --set and --show

def apply_settings(source: str, filename: str, settings: list[str]) -> tuple[str, dict]:
    """The source with each `--set NAME=VALUE` replacing the value of the top-level declaration
    of NAME (`epochs: ℕ = 20` → `epochs: ℕ = 2`), and the settings as a dict."""
    if not settings:
        return source, {}
    from phc import ast as A
    from phc import pipeline
    program = pipeline.parse(source, filename)
    decls = {}
    for stmt in program.body:
        if isinstance(stmt, A.Decl) and stmt.value is not None:
            decls.setdefault(stmt.name, stmt)
        elif isinstance(stmt, A.Assign) and isinstance(stmt.target, A.Name):
            decls.setdefault(stmt.target.id, stmt)
    edits, options = [], {}
    for setting in settings:
        name, eq, value = setting.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or not value:
            raise RunError(f"--set {setting!r}: expected NAME=VALUE, e.g. --set epochs=2")
        if name not in decls:
            raise RunError(f"--set {name}: the program has no top-level declaration of `{name}`"
                           + did_you_mean(name, decls))
        if "\n" in value:
            raise RunError(f"--set {name}: the value must be one line")
        edits.append((A.span_of(decls[name].value), value))
        options[name] = value
    return _replace_spans(source, edits), options


def _replace_spans(source: str, edits) -> str:
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, col: int) -> int:
        return starts[line - 1] + col - 1

    out = source
    for span, value in sorted(edits, key=lambda e: (e[0].line, e[0].col), reverse=True):
        out = out[:offset(span.line, span.col)] + value + out[offset(span.end_line, span.end_col):]
    return out


def did_you_mean(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def check_show(names: list[str], toplevel: list[str]) -> None:
    for name in names:
        if toplevel and name not in toplevel:
            raise RunError(f"--show {name}: the program has no top-level variable `{name}`"
                           + did_you_mean(name, toplevel))


# ---------------------------------------------------------------- run

def read_program(path: str) -> tuple[str | None, str, list]:
    """(text, display name, diagnostics): `-` reads standard input."""
    from phc.cli import read_source
    if path == "-":
        data = sys.stdin.buffer.read()
        try:
            return data.decode("utf-8"), "<stdin>", []
        except UnicodeDecodeError as e:
            from phc.api import decode
            try:
                decode(data, "<stdin>")
            except PhcError as err:
                return None, "<stdin>", err.diagnostics
            raise RunError(f"standard input is not UTF-8 text ({e})") from None
    source, diags = read_source(path)
    return source, path, diags


def run_file(args) -> int:
    fmt = getattr(args, "format", "text")
    try:
        return _run(args, fmt)
    except RunError as e:
        report.message(str(e), fmt)
        return 1


def _run(args, fmt: str) -> int:
    source, filename, diags = read_program(args.file)
    if source is None:
        report.show(diags, None, fmt)
        return 1
    check_seed(args.seed)
    try:
        source, options = apply_settings(source, filename, args.set)
    except PhcError as e:
        report.show(e.diagnostics, source, fmt)
        return 1
    device, backend = resolve(args.device, args.backend)
    opt = getattr(args, "opt", 2)
    try:
        with log.timed("compile (or cache lookup)"):
            built = build(source, filename, backend, opt, options, not args.no_cache, fmt)
    except PhcError as e:
        report.show(e.diagnostics, source, fmt)
        return 1
    except Exception as e:     # noqa: BLE001 — a bug in phc: a message, the traceback on request
        if args.traceback:
            import traceback
            traceback.print_exception(e)
        from phc.api import internal_error
        report.show([internal_error(e, filename)], source, fmt)
        return 1
    report.show(built.diagnostics, source, fmt, compact=True)
    check_show(args.show, built.toplevel)
    from phc import runtime as rt
    _set_threads(args.threads, device)
    rt.set_device(device)
    rt.manual_seed(args.seed)
    name = built.path.stem
    with log.timed("import"):
        module = exec_module(built.python, built.path, name)
    from phc.progress import Monitor
    monitor = Monitor(module, source, built.python, built.path, progress=not args.no_progress,
                      plot=args.plot)
    try:
        with log.timed("run"), monitor:
            result = module.main()
    except Exception as exc:   # noqa: BLE001 — every runtime error becomes a diagnostic
        return report_runtime_error(exc, built.python, built.path, args, source, filename, fmt)
    if args.plot and not monitor.save_plot(args.plot, fmt):
        return 1
    for var in args.show:
        if var not in result:
            raise RunError(f"--show {var}: `{var}` was not assigned (a loop that never ran?)")
        print(f"{var} = {rt.format_value(result[var])}")
    if args.summary:
        for var, value in result.items():
            if hasattr(value, "_fields"):
                print(f"{var}:")
                rt.summary(value)
    return 0


def _set_threads(threads: int | None, device: str) -> None:
    """phc's code is mostly small per-sample tensors: one intra-op thread is fastest there and
    does not depend on the machine's load (`--threads N` overrides)."""
    import torch
    if threads is not None:
        if threads < 1:
            raise RunError(f"--threads {threads}: expected a positive count")
        torch.set_num_threads(threads)
    elif device == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)


def report_runtime_error(exc, python: str, path: Path, args, source: str, filename: str | None = None,
                         fmt: str = "text") -> int:
    from phc import runtime as rt
    from phc.emit.module import span_table
    filename = filename or args.file
    if args.traceback:
        import traceback
        traceback.print_exception(exc)
    err = rt.translate(exc, {str(path): span_table(python)}, source_name=filename, source=source)
    if err is None:
        report.message(f"{filename}: runtime error: {type(exc).__name__}: {exc}", fmt)
    elif fmt == "json":
        end = (err.end_line, err.end_col) if err.end_line else (err.line, err.col)
        report.emit_json({"file": err.filename, "line": err.line, "col": err.col, "end_line": end[0],
                          "end_col": end[1], "severity": "error", "kind": "runtime",
                          "message": err.message, "hint": err.hint,
                          "calls": [{"func": f, "line": l, "col": c} for f, l, c in err.calls]})
    else:
        text = err.render()
        print(report.colourise(text) if report.use_colour() else text, file=sys.stderr)
    return 1
