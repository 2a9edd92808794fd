"""`import phc.hook`, and from then on `import cnn` compiles `cnn.phk` found on sys.path (through
the compile cache) when no Python module of that name comes first. The module is what `phc.compile`
returns: importing it runs nothing; `cnn.main()` runs the program.

The finder goes last on sys.meta_path, so ordinary modules keep their precedence (a `cnn.py`
written by `phc compile` beside `cnn.phk` is imported as it is).
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

SUFFIXES = (".phk", ".phyk")


class PhysikaFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if path is not None:        # only top-level names: Physika programs are not packages
            return None
        for folder in sys.path:
            for suffix in SUFFIXES:
                candidate = os.path.join(folder or os.getcwd(), fullname + suffix)
                if os.path.isfile(candidate):
                    return importlib.util.spec_from_loader(fullname, PhysikaLoader(candidate),
                                                           origin=candidate)
        return None


class PhysikaLoader(importlib.abc.Loader):
    def __init__(self, path: str):
        self.path = path

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        from phc.api import _source_of
        from phc.loader import build
        source, name = _source_of(self.path, None)
        built = build(source, name, "auto")
        import linecache
        linecache.cache[str(built.path)] = (len(built.python), None, built.python.splitlines(True),
                                            str(built.path))
        module.__file__ = str(built.path)
        module.__phk__ = self.path
        exec(compile(built.python, str(built.path), "exec", dont_inherit=True), module.__dict__)


def install() -> PhysikaFinder:
    for finder in sys.meta_path:
        if isinstance(finder, PhysikaFinder):
            return finder
    finder = PhysikaFinder()
    sys.meta_path.append(finder)
    return finder


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, PhysikaFinder)]


install()
