"""Shared helpers for tests: compile a Physika source and load it; evaluate its IR."""
from __future__ import annotations

import itertools

from phc import pipeline
from phc.ir.evaluate import Evaluator
from phc.loader import load_module

_count = itertools.count()


def compile_module(source: str, backend: str = "torch", name: str = "test"):
    compiled = pipeline.compile_source(source, f"{name}.phk", backend)
    module, _ = load_module(compiled.python, f"{name}_{backend}_{next(_count)}")
    return module


def evaluator(source: str, name: str = "test") -> Evaluator:
    program, typed = pipeline.frontend(source, f"{name}.phk")
    return Evaluator(pipeline.lower(typed))
