"""Shared shape/dtype rules for the registry's ``abstract`` slots."""

from __future__ import annotations

import functools

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


def norm_axes(axes, ndim: int, op: str = "reduction") -> tuple:
    """Normalize ``dim`` arguments (None, int, or a sequence) to a sorted tuple of axes."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, int) or hasattr(axes, "__index__") and not isinstance(axes, (tuple, list)):
        axes = (int(axes),)
    out = []
    for a in axes:
        a = int(a)
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise IndexError(f"{op}: dimension {a} is out of range for a tensor of {ndim} "
                             f"dimension{'s' if ndim != 1 else ''}")
        a = a % ndim if ndim else 0
        if a in out:
            raise RuntimeError(f"{op}: dim {a} appears multiple times in the list of dims")
        out.append(a)
    return tuple(sorted(out))


def reduced_shape(shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def reads_other(needs: tuple) -> tuple:
    """For ``x * y``-like rules: x's gradient reads y, and y's reads x."""
    return needs[1], needs[0]
