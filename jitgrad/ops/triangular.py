"""``tril`` and ``triu``: composites, not primitives. The triangle is a constant boolean mask of
the last two dimensions (known from the shape alone), applied with ``where``; so the pair
differentiates, traces and compiles as ``where`` does, with nothing to register.

>>> import jitgrad
>>> jitgrad.tril(jitgrad.ones(3, 3))
tensor([[1., 0., 0.],
        [1., 1., 0.],
        [1., 1., 1.]])
>>> jitgrad.ones(2, 3).triu(diagonal=1)
tensor([[0., 1., 1.],
        [0., 0., 1.]])
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.ops.elementwise import where
from jitgrad.ops.registry import scalar
from jitgrad.ops.shape import _const
from jitgrad.tensor import Tensor


def _triangle(x, diagonal: int, lower: bool, op: str):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be a Tensor, not {type(x).__name__}")
    if x.ndim < 2:
        raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions, got a tensor of "
                           f"shape {tuple(x.shape)}")
    n, m = x.shape[-2], x.shape[-1]
    tri = np.tril if lower else np.triu
    keep = tri(np.ones((n, m), dtype=bool), int(diagonal))
    zero = scalar(False if x.dtype is dtypes.bool_ else 0, x.dtype)  # keeps x's dtype, bool too
    return where(_const(keep), x, zero)


def tril(input, diagonal: int = 0):  # noqa: A002  (torch's argument name)
    """The lower triangle of the last two dimensions of ``input``: elements with column index at
    most row index + ``diagonal`` kept, the rest 0."""
    return _triangle(input, diagonal, True, "tril")


def triu(input, diagonal: int = 0):  # noqa: A002
    """The upper triangle of the last two dimensions of ``input``: elements with column index at
    least row index + ``diagonal`` kept, the rest 0."""
    return _triangle(input, diagonal, False, "triu")
