"""Files phc ships beside its code, found through the import system (importlib.resources), so that
an installed wheel, an editable install and a source checkout all find the same ones."""
from __future__ import annotations

import hashlib
import importlib.resources
from functools import cache
from pathlib import Path


def templates_dir() -> Path:
    """The folder of the Jinja templates (`phc.templates`: the repository's templates/)."""
    return Path(str(importlib.resources.files("phc.templates").joinpath("module.py.j2"))).parent


def grammar_path() -> Path:
    return Path(str(importlib.resources.files("phc").joinpath("grammar.lark")))


def grammar_text() -> str:
    return grammar_path().read_text(encoding="utf-8")


def runtime_dir() -> Path:
    return Path(str(importlib.resources.files("phc.runtime").joinpath("__init__.py"))).parent


@cache
def code_hash() -> str:
    """sha256 over phc's own code, grammar, templates and runtime: a compile-cache key part that
    changes whenever anything that shapes the generated module does."""
    h = hashlib.sha256()
    for folder in (Path(__file__).resolve().parent, templates_dir(), runtime_dir()):
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".py", ".lark", ".j2") and "__pycache__" not in path.parts:
                h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
