"""Shared shape/dtype rules for the registry's ``abstract`` slots."""

from __future__ import annotations

import functools

import numpy as np

from jitgrad import dtypes
from jitgrad.errors import ShapeError
from jitgrad.ops.registry import Aval


@functools.lru_cache(maxsize=4096)
def broadcast_shapes(a: tuple, b: tuple, op: str = "broadcast") -> tuple:
    """NumPy broadcasting of two shapes; a mismatch names both shapes and the dimension."""
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    out = []
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ShapeError(f"{op}: shapes {tuple(a)} and {tuple(b)} cannot be broadcast together "
                             f"(size {x} vs {y} at dimension {i - n})")
    return tuple(out)


def same(x: Aval, **params) -> Aval:
    return x


def binary(x: Aval, y: Aval, **params) -> Aval:
    return Aval(broadcast_shapes(x.shape, y.shape), x.dtype)


def compare(x: Aval, y: Aval, **params) -> Aval:
    return Aval(broadcast_shapes(x.shape, y.shape), dtypes.bool_)


def _not_bool(d, op: str, name: str = "dim") -> None:
    # bool is an int to Python, so ``x.std(False)`` or ``x.norm(1, False)`` would quietly mean
    # dim 0; torch's argument parser refuses a bool where it wants a dim, and so do we.
    if isinstance(d, (bool, np.bool_)):
        raise TypeError(f"{op}(): argument '{name}' must be int, not bool")


def norm_axes(axes, ndim: int, op: str = "reduction") -> tuple:
    """Normalize ``dim`` arguments (None, int, or a sequence) to a sorted tuple of axes."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, int) or hasattr(axes, "__index__") and not isinstance(axes, (tuple, list)):
        axes = (axes,)
    out = []
    for a in axes:
        _not_bool(a, op)
        a = int(a)
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise IndexError(f"{op}: dimension {a} is out of range for a tensor of {ndim} "
                             f"dimension{'s' if ndim != 1 else ''}")
        if not ndim:
            continue  # a 0-d tensor: dim 0 or -1 names no axis at all, as torch takes it
        a = a % ndim
        if a in out:
            raise RuntimeError(f"{op}: dim {a} appears multiple times in the list of dims")
        out.append(a)
    return tuple(sorted(out))


def norm_axis(dim, ndim: int, op: str) -> int:
    """One ``dim`` (an int, as torch's ops that take a single dimension want: ``softmax``,
    ``cumsum``, ``argmax``, ``transpose``...), normalized; a tuple is a TypeError rather than
    quietly its first entry."""
    axes = norm_axes(int_dim(dim, op), ndim, op)
    return axes[0] if axes else 0  # a 0-d tensor's dim 0 (or -1): its one element


def int_dim(dim, op: str) -> int:
    """``dim`` as an int, refusing a bool or a tuple (not range-checked)."""
    if isinstance(dim, (tuple, list)) or not hasattr(dim, "__index__"):
        raise TypeError(f"{op}(): argument 'dim' must be int, not {type(dim).__name__}")
    _not_bool(dim, op)
    return int(dim)


def check_keepdim(keepdim, op: str) -> bool:
    """torch's ``keepdim`` is a bool: ``x.sum(0, 1)`` (meant as dims 0 and 1?) is a TypeError
    there, not keepdim=True."""
    if not isinstance(keepdim, (bool, np.bool_)):
        raise TypeError(f"{op}(): argument 'keepdim' must be bool, not {type(keepdim).__name__}")
    return bool(keepdim)


def reduced_shape(shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def reads_other(needs: tuple) -> tuple:
    """For ``x * y``-like rules: x's gradient reads y, and y's reads x."""
    return needs[1], needs[0]


def no_derivative(op: str):
    """A VJP that refuses, as torch's for an op it does not differentiate: the result requires
    grad, and differentiating through it raises instead of treating it as a constant (a
    silently missing gradient)."""
    def vjp(g, out, *args, **params):
        raise RuntimeError(_no_derivative_message(op))
    return vjp


def no_derivative_jvp(op: str):
    """``no_derivative``'s forward-mode rule: no tangent in, none out; a tangent raises."""
    def jvp(out, primals, tangents, **params):
        if all(t is None for t in tangents):
            return None
        raise RuntimeError(_no_derivative_message(op))
    return jvp


def _no_derivative_message(op: str) -> str:
    return (f"the derivative for {op} is not implemented (torch has none either); detach its "
            "inputs to use it as a constant")
