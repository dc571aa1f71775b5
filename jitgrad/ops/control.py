"""Primitives that exist for the compiler: ``guard`` (a decision the trace relied on) and
``stop_gradient`` (``detach`` inside a trace)."""

from __future__ import annotations

import numpy as np

from jitgrad.errors import GuardFailure
from jitgrad.ops import _rules
from jitgrad.ops.registry import register


def same_value(observed, expect) -> bool:
    """Guard equality: exact, with NaN equal to NaN (a NaN seen twice is the same decision)."""
    return observed == expect or (observed != observed and expect != expect)


def _guard_impl(x: np.ndarray, expect, index: int) -> None:
    v = x.item()
    if not same_value(v, expect):
        raise GuardFailure(index, v)


guard_p = register("guard", _guard_impl, lambda x, expect, index: None, None, saves="none",
                   kind="guard")
stop_gradient_p = register("stop_gradient", lambda x: x, _rules.same, None, saves="none",
                           expr="{0}")
