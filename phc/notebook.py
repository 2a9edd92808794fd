"""The IPython extension: `%load_ext phc`, then a `%%physika` cell compiles and runs the cell as
a Physika program; its top-level variables become the notebook's. `%%physika --backend torch
--device cuda --show NAME` take the options of `phc run`. Diagnostics and runtime errors print
as on the command line, never as a traceback."""
from __future__ import annotations

import shlex
import sys

from phc.diagnostics import PhcError


def run_cell(cell: str, line: str = "", namespace: dict | None = None, filename: str = "<cell>") -> dict:
    """Compile and run `cell`; put its top-level variables into `namespace`; return them (an
    empty dict after an error, which has been printed)."""
    import argparse
    from phc import report
    from phc import runtime as rt
    from phc.loader import RunError, build, exec_module, report_runtime_error, resolve
    p = argparse.ArgumentParser(prog="%%physika", add_help=False)
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show", action="append", default=[])
    args = p.parse_args(shlex.split(line))
    args.traceback = False
    args.file = filename
    try:
        device, backend = resolve(args.device, args.backend)
        built = build(cell, filename, backend)
    except PhcError as e:
        report.show(e.diagnostics, cell)
        return {}
    except RunError as e:
        print(f"phc: error: {e}", file=sys.stderr)
        return {}
    report.show(built.diagnostics, cell, compact=True)
    rt.set_device(device)
    rt.manual_seed(args.seed)
    module = exec_module(built.python, built.path, built.path.stem)
    try:
        result = module.main()
    except Exception as exc:    # noqa: BLE001 — shown at the cell's line
        report_runtime_error(exc, built.python, built.path, args, cell, filename)
        return {}
    if namespace is not None:
        namespace.update(result)
    for name in args.show:
        print(f"{name} = {rt.format_value(result.get(name))}")
    return result


def register(ipython) -> None:
    from IPython.core.magic import register_cell_magic  # noqa: F401 — needs IPython

    def physika(line, cell):
        run_cell(cell, line, ipython.user_ns)

    ipython.register_magic_function(physika, magic_kind="cell", magic_name="physika")
