"""phc: a compiler from Physika (.phk) to PyTorch and Triton.

This package imports no torch, so `phc check` starts fast; the backends import it lazily.
"""
import os as _os

__version__ = "0.1.0"

# The repository keeps runtime/ and templates/ beside phc/; an installed distribution has them as
# phc/runtime and phc/templates (pyproject.toml's package-dir). In a source checkout, let the
# import system find the two subpackages in the checkout, so that `phc.runtime` and
# `phc.templates` name them in both layouts.
_checkout = _os.path.dirname(__path__[0])
if (not _os.path.isdir(_os.path.join(__path__[0], "runtime"))
        and _os.path.isfile(_os.path.join(_checkout, "runtime", "__init__.py"))):
    __path__.append(_checkout)

from phc.api import check, check_source, compile, parse_source  # noqa: E402,A004

__all__ = ["check", "check_source", "compile", "parse_source", "__version__"]


def load_ipython_extension(ipython) -> None:
    """`%load_ext phc`: the `%%physika` cell magic (phc/notebook.py)."""
    from phc.notebook import register
    register(ipython)
