"""`phc check | ir | compile | run`: the command line.

`phc check` imports no torch (it parses and type-checks only), so it starts fast.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from phc.diagnostics import PhcError, render_all, error
from phc.ast import Span

STAGES = ("ast", "typed", "affine", "kernels", "triton", "python")

DESCRIPTION = """phc compiles Physika programs (.phk, .phyk) to PyTorch and Triton.

commands:
  check FILE            report diagnostics (errors and warnings); exit 1 on any error
  ir FILE --stage S     print one stage of the pipeline: ast, typed, affine, kernels, triton, python
  compile FILE [-o OUT] write an importable Python module (default: FILE with .py)
  run FILE              compile and run the program (on CUDA when there is one)
"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="phc", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from phc import __version__
    p.add_argument("--version", action="version", version=f"phc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="report diagnostics; exit 1 on any error",
                       description="Parse and type-check FILE; print every error and warning "
                                   "with its line, column and a caret. Exit status 1 on any error.")
    c.add_argument("file", help="the Physika program (.phk or .phyk)")
    c.add_argument("--no-warnings", action="store_true", help="print errors only")
    c.set_defaults(handler=cmd_check)

    i = sub.add_parser("ir", help="print one stage of the pipeline",
                       description="Print what one stage of the pipeline produces, as text.")
    i.add_argument("file", help="the Physika program")
    i.add_argument("--stage", choices=STAGES, default="affine",
                   help="ast: the syntax tree; typed: inferred types; affine: the loop-nest IR; "
                        "kernels: the kernel plan (which nests became which idiom); triton: the "
                        "rendered Triton kernels; python: the generated module (default: affine)")
    i.add_argument("--function", metavar="NAME", help="with --stage affine: only this function or method")
    i.add_argument("--backend", choices=("torch", "triton"), default="torch",
                   help="with --stage kernels/python: the backend to plan for (default: torch)")
    i.set_defaults(handler=cmd_ir)

    k = sub.add_parser("compile", help="write an importable Python module",
                       description="Compile FILE to a Python module. Importing it runs nothing; "
                                   "`python OUT.py` or `module.main()` runs the program.")
    k.add_argument("file", help="the Physika program")
    k.add_argument("-o", "--output", metavar="OUT.py", help="output path (default: FILE with .py)")
    k.add_argument("--backend", choices=("auto", "torch", "triton"), default="auto",
                   help="auto: Triton kernels when CUDA is present at run time, torch ops otherwise; "
                        "torch: vectorised torch ops only; triton: Triton kernels for the recognised "
                        "idioms (on a machine without a GPU they run under TRITON_INTERPRET=1)")
    k.add_argument("--force", action="store_true",
                   help="overwrite OUT.py even if phc did not generate it")
    k.set_defaults(handler=cmd_compile)

    r = sub.add_parser("run", help="compile and run the program",
                       description="Compile FILE and run its top-level program.")
    r.add_argument("file", help="the Physika program")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where tensors live: auto picks CUDA when available (default: auto)")
    r.add_argument("--backend", choices=("auto", "torch", "triton"), default="auto",
                   help="auto: Triton kernels on CUDA, torch ops on the CPU (default: auto)")
    r.add_argument("--seed", type=int, default=0, help="seed of the random generators (default: 0)")
    r.add_argument("--show", metavar="NAME", action="append", default=[],
                   help="after the run, print the top-level variable NAME (repeatable)")
    r.add_argument("--summary", action="store_true",
                   help="after the run, print a summary of every class instance's parameters")
    r.add_argument("--traceback", action="store_true",
                   help="on a runtime error, show the Python traceback into the generated code")
    r.set_defaults(handler=cmd_run)
    return p


# ---------------------------------------------------------------- helpers

def read_source(path: str) -> tuple[str | None, list]:
    """The file's text, or a diagnostic saying why it cannot be read."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        return None, [error(f"cannot read {path}: {e.strerror or e}", Span(1, 1, 1, 1), filename=path)]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        return None, [error(f"the file is not UTF-8 text (byte {e.start})", Span(line, 1, line, 2),
                            "save the file as UTF-8", filename=path)]


def print_diagnostics(diags, source, warnings=True) -> None:
    shown = [d for d in diags if warnings or d.is_error]
    if shown:
        print(render_all(shown, source), file=sys.stderr)


def _frontend_or_report(args):
    source, diags = read_source(args.file)
    if source is None:
        print_diagnostics(diags, None)
        return None
    return source


# ---------------------------------------------------------------- commands

def cmd_check(args) -> int:
    from phc.api import check_source
    source, diags = read_source(args.file)
    if source is not None:
        diags = check_source(source, args.file)
    print_diagnostics(diags, source, warnings=not args.no_warnings)
    return 1 if any(d.is_error for d in diags) else 0


def cmd_ir(args) -> int:
    source = _frontend_or_report(args)
    if source is None:
        return 1
    try:
        text = stage_text(source, args.file, args.stage, args.function, args.backend)
    except PhcError as e:
        print_diagnostics(e.diagnostics, source)
        return 1
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def stage_text(source: str, filename: str, stage: str, function: str | None = None,
               backend: str = "torch") -> str:
    from phc import pipeline
    if stage == "ast":
        from phc.ast_text import format_ast
        return format_ast(pipeline.parse(source, filename))
    program, typed = pipeline.frontend(source, filename)
    if stage == "typed":
        from phc.typed_text import format_typed
        return format_typed(typed)
    module = pipeline.lower(typed)
    if stage == "affine":
        from phc.ir.printer import format_module
        return format_module(module, function)
    plan = pipeline.select(module, backend if stage != "triton" else "triton")
    if stage == "kernels":
        return plan.text()
    if stage == "triton":
        return plan.triton_source() or "# no nest of this program matched a Triton template\n"
    return pipeline.emit(plan.module, plan, source, backend)


def cmd_compile(args) -> int:
    from phc import pipeline
    source = _frontend_or_report(args)
    if source is None:
        return 1
    out = Path(args.output) if args.output else Path(args.file).with_suffix(".py")
    if out.exists() and not args.force and not _is_generated(out):
        print(f"phc: refusing to overwrite {out}: phc did not generate it (use --force)", file=sys.stderr)
        return 1
    try:
        compiled = pipeline.compile_source(source, args.file, args.backend)
    except PhcError as e:
        print_diagnostics(e.diagnostics, source)
        return 1
    print_diagnostics(compiled.diagnostics, source)
    _atomic_write(out, compiled.python)
    print(f"phc: wrote {out}", file=sys.stderr)
    return 0


def _is_generated(path: Path) -> bool:
    from phc.emit.module import HEADER_MARK
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().startswith(HEADER_MARK)
    except OSError:
        return False


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.phc-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def cmd_run(args) -> int:
    from phc.loader import run_file
    return run_file(args)


if __name__ == "__main__":
    sys.exit(main())
