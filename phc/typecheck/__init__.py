"""Shapes and types of a Physika program.

`check(program)` gives every expression a type (`phc.types`), every function its parameter,
local and return types, and collects every error and warning of the file in one run: a failed
expression gets `UnknownT`, which absorbs the follow-up complaints.

Dimensions are numbers, names (a signature's symbol `m`, or a variable holding a size, `rows`),
formulas of those (`H-K+1`) or None. Only two different numbers certainly disagree: two names
may well be equal, so a name never causes a diagnostic. The type of a call is what the callee's
body computes, in the caller's terms, where the body says it; else the declaration.

The rules live in one module each: `shapes` (dimensions, sizes, fitting a value to a declared
type), `expressions`, `statements`, `calls`, `classes`; `checker` ties them together and
`state` holds the result and the working state.
"""
from phc.typecheck.checker import Checker, check
from phc.typecheck.state import ClassInfo, FuncInfo, TypedProgram

__all__ = ["Checker", "ClassInfo", "FuncInfo", "TypedProgram", "check"]
