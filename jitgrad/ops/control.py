"""Primitives that exist for the compiler: ``guard`` (a decision the trace relied on),
``stop_gradient`` (``detach`` inside a trace) and ``custom_vjp`` (a custom autograd Function's
output inside a trace)."""

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


def guard_types(graph) -> dict:
    """Guard index -> the type of the value it expects: compiled kernels report the value they
    saw as a float, and ``guard_failure`` gives it back in this type."""
    return {e.params["index"]: type(e.params["expect"]) for e in graph.walk()
            if e.out is None and e.prim.name == "guard"}


def guard_failure(types: dict, index: int, observed) -> GuardFailure:
    """The GuardFailure for guard ``index`` of a compiled kernel, which saw ``observed``."""
    t = types.get(index, float)
    return GuardFailure(index, t(observed) if t in (bool, int) else float(observed))


guard_p = register("guard", _guard_impl, lambda x, expect, index: None, None, saves="none",
                   kind="guard")
stop_gradient_p = register("stop_gradient", lambda x: x, _rules.same, None, saves="none",
                           expr="{0}")


def _custom_vjp(g, out, y, *xs, ctx, index):
    from jitgrad.autograd.function import _custom_vjp_rule
    return _custom_vjp_rule(g, out, y, *xs, ctx=ctx, index=index)


# A custom Function's output in a trace: the value of ``forward``'s output (operand 0), with the
# Function's tensor arguments as further operands so the autodiff pass reaches them and applies
# the Function's ``backward``; once the gradient is taken it is an identity, which simplify drops.
custom_vjp_p = register("custom_vjp", lambda y, *xs, ctx, index: y,
                        lambda y, *xs, ctx, index: y, _custom_vjp, saves="none", expr="{0}",
                        nondiff_inputs=(0,))
