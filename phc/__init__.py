"""phc: a compiler from Physika (.phk) to PyTorch and Triton.

This package imports no torch, so `phc check` starts fast; the backends import it lazily.
"""
from phc.api import check_source, parse_source

__all__ = ["check_source", "parse_source"]
__version__ = "0.1.0"
