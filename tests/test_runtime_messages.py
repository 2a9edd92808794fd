"""Runtime errors in Physika's words: shapes in Physika's notation, a caret under the expression."""
import pytest
import torch

from phc.runtime.errors import PhysikaRuntimeError, friendly_message


def _message(fn):
    try:
        fn()
    except Exception as exc:   # noqa: BLE001
        return friendly_message(exc)[0]
    raise AssertionError("no exception")


@pytest.mark.parametrize("fn, want", [
    (lambda: torch.mv(torch.ones(10, 5), torch.ones(8)), "`@` shapes do not fit: ℝ[10,5] @ ℝ[8] (5 ≠ 8)"),
    (lambda: torch.ones(2, 3) @ torch.ones(4, 5), "`@` shapes do not fit: ℝ[2,3] @ ℝ[4,5] (3 ≠ 4)"),
    (lambda: torch.dot(torch.ones(8), torch.ones(10)), "`@` shapes do not fit: ℝ[8] @ ℝ[10] (8 ≠ 10)"),
    (lambda: torch.ones(3) + torch.ones(4), "shapes do not fit: one side has 3 elements where the other has 4"),
])
def test_shape_errors_in_physika_notation(fn, want):
    got = _message(fn)
    assert got.startswith(want), got
    assert "mat1" not in got and "tensor a" not in got


def test_caret_under_the_whole_expression():
    err = PhysikaRuntimeError("boom", "a.phk", 3, 9, "    t = total(a)   # sum")
    assert err.render().splitlines()[2] == "    " + " " * 8 + "^" * 8
