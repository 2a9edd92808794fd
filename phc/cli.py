"""`phc check | ir | compile | run`: the command line.

`phc check` imports no torch (it parses and type-checks only), so it starts fast.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from phc.diagnostics import PhcError, error
from phc.ast import Span

STAGES = ("ast", "typed", "affine", "kernels", "grad", "triton", "python")
BACKENDS = ("auto", "torch", "triton")
FORMATS = ("text", "json")

DESCRIPTION = "phc compiles Physika programs (.phk, .phyk) to PyTorch and Triton."
EPILOG = """`phc COMMAND --help` lists a command's options. Environment: PHC_CACHE (the compile cache
folder), PHC_LOGS=cache,timing,kernels (debug lines on stderr), PHC_DUMP=DIR (every stage's text),
PHC_VERIFY=1 (check the IR after lowering), NO_COLOR / FORCE_COLOR. See docs/cli.md."""


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
    except BrokenPipeError:         # `phc ir … | head`
        return 0


def build_parser() -> argparse.ArgumentParser:
    from phc import __version__
    p = argparse.ArgumentParser(prog="phc", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"phc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    c = sub.add_parser("check", help="report diagnostics (errors and warnings); exit 1 on any error",
                       description="Parse and type-check FILE; print every error and warning "
                                   "with its line, column and a caret. Exit status 1 on any error.")
    c.add_argument("file", help="the Physika program (.phk or .phyk; - reads standard input)")
    c.add_argument("--no-warnings", action="store_true", help="print errors only")
    _format_option(c)
    c.add_argument("--perf", action="store_true",
                   help="also compile the program and print its performance notes (`note:`): "
                        "code that runs literally or element by element, and why")
    c.set_defaults(handler=cmd_check)

    i = sub.add_parser("ir", help="print one stage of the pipeline (ast, typed, affine, kernels, grad, triton, python)",
                       description="Print what one stage of the pipeline produces, as text.")
    i.add_argument("file", help="the Physika program (- reads standard input)")
    i.add_argument("--stage", choices=STAGES, default="affine",
                   help="ast: the syntax tree; typed: inferred types; affine: the loop-nest IR; "
                        "kernels: the kernel plan (which nests became which idiom); grad: each `grad` "
                        "as a tape and its adjoint (or why it keeps autograd); triton: the "
                        "rendered Triton kernels; python: the generated module (default: affine)")
    i.add_argument("--function", metavar="NAME", help="with --stage affine: only this function or method")
    i.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="with --stage kernels/python: the backend to plan for (default: torch)")
    _opt_argument(i, "with --stage python: ")
    i.set_defaults(handler=cmd_ir)

    k = sub.add_parser("compile", help="write an importable Python module (default: FILE with .py)",
                       description="Compile FILE to a Python module. Importing it runs nothing; "
                                   "`python OUT.py` or `module.main()` runs the program.")
    k.add_argument("file", help="the Physika program (- reads standard input; then -o is needed)")
    k.add_argument("-o", "--output", metavar="OUT.py", help="output path (default: FILE with .py)")
    k.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: Triton kernels when CUDA is present at run time, torch ops otherwise; "
                        "torch: vectorised torch ops only; triton: Triton kernels for the recognised "
                        "idioms (on a machine without a GPU they run under TRITON_INTERPRET=1)")
    k.add_argument("--force", action="store_true",
                   help="overwrite OUT.py even if phc did not generate it")
    _format_option(k)
    _opt_argument(k)
    k.set_defaults(handler=cmd_compile)

    r = sub.add_parser("run", help="compile and run the program (on CUDA when there is one)",
                       description="Compile FILE (or take it from the compile cache) and run its "
                                   "top-level program.")
    r.add_argument("file", help="the Physika program (- reads standard input)")
    r.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N",
                   help="where tensors live: auto picks CUDA when available (default: auto)")
    r.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: Triton kernels on CUDA, torch ops on the CPU (default: auto)")
    r.add_argument("--seed", type=int, default=0,
                   help="seed of every random generator: sampling, shuffles (default: 0)")
    r.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                   help="replace the value of the top-level declaration NAME (e.g. --set epochs=2; repeatable)")
    r.add_argument("--show", metavar="NAME", action="append", default=[],
                   help="after the run, print the top-level variable NAME (repeatable)")
    r.add_argument("--summary", action="store_true",
                   help="after the run, print a summary of every class instance's parameters")
    r.add_argument("--plot", metavar="FILE.png",
                   help="after the run, plot every scalar the program printed more than once (needs matplotlib)")
    r.add_argument("--no-progress", action="store_true",
                   help="no progress bar (shown only on a terminal, for loops running over a second)")
    r.add_argument("--threads", type=int, metavar="N",
                   help="torch's intra-op threads on the CPU (default: 1, fastest for per-sample work)")
    r.add_argument("--no-cache", action="store_true", help="compile afresh; neither read nor write the cache")
    r.add_argument("--traceback", action="store_true",
                   help="on a runtime error, show the Python traceback into the generated code")
    _format_option(r)
    _opt_argument(r)
    r.set_defaults(handler=cmd_run)
    return p


def _format_option(parser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="diagnostics as text (default) or as one JSON object per line on stdout")


def _opt_argument(p, prefix: str = "") -> None:
    p.add_argument("--opt", type=int, choices=(0, 2), default=2,
                   help=prefix + "0: the reference semantics, every statement literally (slow; the "
                        "oracle to compare with); 2: optimised where proved legal (default: 2)")


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


def print_diagnostics(diags, source, warnings=True, fmt="text") -> None:
    from phc import report
    report.show(diags, source, fmt, warnings)


def _read(args) -> tuple[str | None, str]:
    """(source or None after reporting why, the name diagnostics use); `-` is standard input."""
    from phc.loader import read_program
    source, filename, diags = read_program(args.file)
    if source is None:
        print_diagnostics(diags, None, fmt=getattr(args, "format", "text"))
    return source, filename


# ---------------------------------------------------------------- commands

def cmd_check(args) -> int:
    from phc.api import check_source
    source, filename = _read(args)
    if source is None:
        return 1
    diags = check_source(source, filename)
    print_diagnostics(diags, source, warnings=not args.no_warnings, fmt=args.format)
    failed = any(d.is_error for d in diags)
    if args.perf and not failed:
        print_notes(source, filename)
    return 1 if failed else 0


def print_notes(source: str, filename: str) -> None:
    """`phc check --perf`: the performance notes of the optimised compilation, as `note:` lines."""
    from phc import pipeline
    from phc.perf import note_diagnostics
    try:
        notes = pipeline.compile_source(source, filename, "torch").notes
    except PhcError as e:
        print_diagnostics(e.diagnostics, source)
        return
    for d in note_diagnostics(notes, filename, source):
        print(d.render(source), file=sys.stderr)
    print(f"{len(notes)} performance note{'s' * (len(notes) != 1)}", file=sys.stderr)


def cmd_ir(args) -> int:
    source, filename = _read(args)
    if source is None:
        return 1
    try:
        text = stage_text(source, filename, args.stage, args.function, args.backend, args.opt)
    except PhcError as e:
        print_diagnostics(e.diagnostics, source)
        return 1
    except UnknownFunction as e:
        print(f"phc: error: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


class UnknownFunction(Exception):
    pass


def stage_text(source: str, filename: str, stage: str, function: str | None = None,
               backend: str = "torch", opt: int = 2) -> str:
    from phc import pipeline
    if stage == "python":
        return pipeline.compile_source(source, filename, backend, opt=opt).python
    if stage == "kernels":
        compiled = pipeline.compile_source(source, filename, backend)
        plan = compiled.plan.text() if compiled.plan is not None else \
            "kernel plan: none (the optimiser failed on this program; it runs at level 0)\n"
        return plan + "".join(f"  note: {text}\n" for _, text in compiled.notes)
    if stage == "ast":
        from phc.ast_text import format_ast
        return format_ast(pipeline.parse(source, filename))
    program, typed = pipeline.frontend(source, filename)
    if stage == "typed":
        from phc.typed_text import format_typed
        return format_typed(typed)
    try:
        module = pipeline.lower(typed)
    except Exception as exc:    # noqa: BLE001 — the program runs at level 0 (see `--stage kernels`)
        from phc.perf import fallback_note
        return f"# no affine IR: {fallback_note(exc)[1]}\n"
    if stage == "affine":
        from phc.ir.printer import format_module
        _check_function(module, function)
        return format_module(module, function)
    plan = pipeline.select(module, backend if stage != "triton" else "triton")
    if stage == "grad":
        from phc.ir.adjoint import format_adjoint
        return format_adjoint(pipeline.differentiate(plan.module), plan.module)
    return plan.triton_source() or "# no nest of this program matched a Triton template\n"


def _check_function(module, function: str | None) -> None:
    """`--function NAME` must name a function, a method or `main`."""
    if function is None:
        return
    from phc.loader import did_you_mean
    names = {f.name for f in module.functions} | {m.name for c in module.classes for m in c.methods} | {"main"}
    if function not in names:
        raise UnknownFunction(f"--function {function}: the program has no function or method "
                              f"`{function}`" + did_you_mean(function, names))


def cmd_compile(args) -> int:
    from phc import pipeline, report
    source, filename = _read(args)
    if source is None:
        return 1
    if args.file == "-" and not args.output:
        report.message("reading standard input: give the output file with -o", args.format)
        return 1
    out = Path(args.output) if args.output else Path(args.file).with_suffix(".py")
    if out.exists() and not args.force and not _is_generated(out):
        report.message(f"refusing to overwrite {out}: phc did not generate it (use --force)", args.format)
        return 1
    if args.backend == "triton":
        import importlib.util
        if importlib.util.find_spec("triton") is None:
            report.message("the module uses Triton kernels, and triton is not installed here "
                           "(pip install 'phc[triton]' where it runs)", args.format, "warning")
    try:
        compiled = pipeline.compile_source(source, filename, args.backend, opt=args.opt)
    except PhcError as e:
        print_diagnostics(e.diagnostics, source, fmt=args.format)
        return 1
    print_diagnostics(compiled.diagnostics, source, fmt=args.format)
    try:
        _atomic_write(out, compiled.python)
    except OSError as e:
        report.message(f"cannot write {out}: {e.strerror or e}", args.format)
        return 1
    if args.format == "text":
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
    from phc.cache import atomic_write
    atomic_write(path, text.encode("utf-8"))


def cmd_run(args) -> int:
    from phc.loader import run_file
    return run_file(args)


if __name__ == "__main__":
    sys.exit(main())
