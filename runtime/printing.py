"""Printing in upstream Physika's form: `<value> ∈ <type>`.

The rules (upstream's, measured at commit b8a2699, where it has one; phc's choice where it has none):

- A tensor with one element prints its `.item()` (Python's repr of an int or float) and a scalar
  type, whatever its shape: `0.5 ∈ ℝ`, `3 ∈ ℝ`. Any other tensor prints `.tolist()` and its shape
  with no space between dimensions: `[[1.0, 2.0], [3.0, 4.0]] ∈ ℝ[2,2]`.
- The element symbol is upstream's: ℂ for complex values, ℝ for every other number — integers and
  truth values included (the value itself shows the kind: `3 ∈ ℝ` is an integer, `3.0 ∈ ℝ` a
  real, `True ∈ ℝ` a comparison). Python numbers follow the same rule.
- A rectangular Python list of numbers prints like a tensor: `[1, 2] ∈ ℝ[2]`.
- Any other list or tuple (a data set, say) prints a summary: small items show their values, big
  tensors show `…`, and the type lists each item's type:
  `[[…, …], […, …]] ∈ [[ℝ[80,28,28], ℝ[80]], [ℝ[20,28,28], ℝ[20]]]`.
- An instance of a generated class (anything else) prints its class name: `<ConvNets> ∈ ConvNets`.
- A string prints as itself; None prints `None`.

Values that require grad print like any other: no `grad_fn` noise.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import torch

from .symbolic import is_symbolic

_SMALL = 10     # a list item with at most this many elements shows its values in a summary


# Callables (values, filename, lineno) told of every print, with the place in generated code
# that printed: `phc run`'s progress bar and --plot watch the program this way.
_observers: list[Callable[[tuple, str, int], None]] = []


def add_observer(fn: Callable[[tuple, str, int], None]) -> None:
    _observers.append(fn)


def remove_observer(fn: Callable[[tuple, str, int], None]) -> None:
    if fn in _observers:
        _observers.remove(fn)


def notify(values: tuple) -> None:
    """Tell the observers; the place is the innermost frame outside phc.runtime."""
    if not _observers:
        return
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("phc.runtime", "runtime")):
        frame = frame.f_back
    if frame is not None:
        for fn in list(_observers):
            fn(values, frame.f_code.co_filename, frame.f_lineno)


def physika_print(value: Any) -> None:
    """Print `value` as `<value> ∈ <type>`."""
    print(format_value(value))
    notify((value,))


def print_expr(value: Any) -> None:
    """What a bare expression statement runs: prints like physika_print, except that a None
    (the result of a call that returns nothing) prints nothing, as in Python's REPL."""
    if value is not None:
        physika_print(value)


def format_value(value: Any) -> str:
    """The text physika_print prints for `value` (no newline)."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    if is_symbolic(value):      # sympy, as upstream prints it: `x**2 + y**2 ∈ Add`
        return f"{value} ∈ {type(value).__name__}"
    if isinstance(value, list) and value and all(is_symbolic(v) and v.is_number for v in value):
        return f"[{', '.join(map(str, value))}] ∈ ℝ[{len(value)}]"     # symbolic_solve's roots
    return f"{_display(value)} ∈ {type_of(value)}"



def type_of(value: Any) -> str:
    """The Physika type of a runtime value, as printed after `∈`."""
    if isinstance(value, torch.Tensor):
        return _tensor_type(value)
    if _is_number(value):
        return _number_symbol(value)
    if isinstance(value, (list, tuple)):
        return _list_type(value)
    return _class_name(value)


# ---------------------------------------------------------------- values

def _display(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return repr(_tensor_plain(value))
    if _is_number(value):
        return repr(value)
    if isinstance(value, (list, tuple)):
        if _number_grid_shape(value) is not None:
            return repr(list(value))
        return "[" + ", ".join(_summary_item(v) for v in value) + "]"
    return f"<{_class_name(value)}>"


def _tensor_plain(t: torch.Tensor) -> Any:
    t = t.detach()
    return t.item() if t.numel() == 1 else t.tolist()


def _summary_item(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return repr(_tensor_plain(value)) if value.numel() <= _SMALL else "…"
    if isinstance(value, (list, tuple)) and _number_grid_shape(value) is None:
        return "[" + ", ".join(_summary_item(v) for v in value) + "]"
    if isinstance(value, (list, tuple)):
        return repr(list(value)) if _count(value) <= _SMALL else "…"
    if isinstance(value, str):
        return repr(value)
    return _display(value)


# ---------------------------------------------------------------- types

def _tensor_type(t: torch.Tensor) -> str:
    symbol = element_symbol(t)
    if t.numel() == 1:
        return symbol
    return f"{symbol}[{','.join(str(d) for d in t.shape)}]"


def element_symbol(t: torch.Tensor) -> str:
    """ℂ for complex elements, ℝ for any other (upstream's rule: integers print ℝ too)."""
    return "ℂ" if t.is_complex() else "ℝ"


def _number_symbol(x: Any) -> str:
    return "ℂ" if isinstance(x, complex) else "ℝ"


def _list_type(items: list | tuple) -> str:
    shape = _number_grid_shape(items)
    if shape is None:
        return "[" + ", ".join(type_of(v) for v in items) + "]"
    return f"{_grid_symbol(items)}[{','.join(map(str, shape))}]"


def _grid_symbol(items: list | tuple) -> str:
    return "ℂ" if any(isinstance(x, complex) for x in _leaves(items)) else "ℝ"


def _class_name(value: Any) -> str:
    return type(value).__name__


# ---------------------------------------------------------------- nested Python lists of numbers

def _is_number(x: Any) -> bool:
    return isinstance(x, (bool, int, float, complex))


def _number_grid_shape(items: Any) -> tuple[int, ...] | None:
    """The shape of a non-empty rectangular nested list of Python numbers, else None."""
    if _is_number(items):
        return ()
    if not isinstance(items, (list, tuple)) or not items:
        return None
    shapes = {_number_grid_shape(v) for v in items}
    if len(shapes) != 1 or None in shapes:
        return None
    return (len(items), *shapes.pop())


def _leaves(items: Any):
    if isinstance(items, (list, tuple)):
        for v in items:
            yield from _leaves(v)
    else:
        yield items


def _count(items: Any) -> int:
    return sum(1 for _ in _leaves(items))
