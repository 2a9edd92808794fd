"""`phc run`: compile, load the generated module from a cache file, run `main()`, and turn a
runtime error inside generated code back into a diagnostic at the `.phk` line that caused it."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from phc.diagnostics import PhcError


def cache_dir() -> Path:
    d = Path(os.environ.get("PHC_CACHE", Path(tempfile.gettempdir()) / "phc-cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def resolve(device: str, backend: str) -> tuple[str, str]:
    """`auto` device: CUDA when present; `auto` backend: Triton on CUDA, torch ops on the CPU."""
    import torch
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("phc: --device cuda, but no CUDA device is available")
    if backend == "auto":
        backend = "triton" if device == "cuda" else "torch"
    if backend == "triton" and device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")   # must precede `import triton`
    return device, backend


def load_module(python: str, stem: str):
    """Write the generated source to the cache (so tracebacks show its lines) and import it."""
    digest = hashlib.sha256(python.encode()).hexdigest()[:12]
    path = cache_dir() / f"phk_{_ident(stem)}_{digest}.py"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(python, encoding="utf-8")
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module, path


def _ident(s: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in s)


def run_file(args) -> int:
    from phc import pipeline
    from phc.cli import read_source, print_diagnostics
    source, diags = read_source(args.file)
    if source is None:
        print_diagnostics(diags, None)
        return 1
    device, backend = resolve(args.device, args.backend)
    try:
        compiled = pipeline.compile_source(source, args.file, backend)
    except PhcError as e:
        print_diagnostics(e.diagnostics, source)
        return 1
    from phc import runtime as rt
    rt.set_device(device)
    rt.manual_seed(args.seed)
    module, path = load_module(compiled.python, Path(args.file).stem)
    try:
        result = module.main()
    except Exception as exc:   # noqa: BLE001 — every runtime error becomes a diagnostic
        return report_runtime_error(exc, compiled.python, path, args, source)
    for name in args.show:
        if name not in result:
            print(f"phc: --show {name}: the program has no top-level variable `{name}`", file=sys.stderr)
            return 1
        print(f"{name} = {rt.format_value(result[name])}")
    if args.summary:
        for name, value in result.items():
            if hasattr(value, "_fields"):
                print(f"{name}:")
                rt.summary(value)
    return 0


def report_runtime_error(exc, python: str, path: Path, args, source: str) -> int:
    from phc import runtime as rt
    from phc.emit.module import line_table
    if args.traceback:
        import traceback
        traceback.print_exception(exc)
    err = rt.translate(exc, {str(path): line_table(python)}, source_name=args.file, source=source)
    if err is None:
        print(f"{args.file}: runtime error: {type(exc).__name__}: {exc}", file=sys.stderr)
    else:
        print(err.render(), file=sys.stderr)
    return 1
