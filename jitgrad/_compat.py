"""Names PyTorch programs reach for that are spelled in terms of the rest: the legacy typed
constructors (``FloatTensor``), ``all``/``any``/``allclose``/``isclose`` as functions.

>>> import jitgrad as torch
>>> torch.allclose(torch.FloatTensor([1, 2]), torch.tensor([1.0, 2.0 + 1e-9]))
True
"""

from __future__ import annotations

import builtins

import numpy as np

from jitgrad import dtypes, ops
from jitgrad.tensor import Tensor


def _typed(dtype, name: str):
    def make(*args):
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            return ops.tensor(args[0], dtype=dtype)
        return ops.zeros(*args, dtype=dtype)  # sizes, as the legacy constructor takes them
    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"The legacy constructor: a {dtype.name} tensor from data, or zeros of a size."
    return make


FloatTensor = _typed(dtypes.float32, "FloatTensor")
DoubleTensor = _typed(dtypes.float64, "DoubleTensor")
LongTensor = _typed(dtypes.int64, "LongTensor")
BoolTensor = _typed(dtypes.bool_, "BoolTensor")


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether every element (along ``dim``) is nonzero: a bool tensor, as torch."""
    return x.all(dim, keepdim)


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether some element (along ``dim``) is nonzero: a bool tensor, as torch."""
    return x.any(dim, keepdim)


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """Elementwise ``|a - b| <= atol + rtol * |b|`` (and equal infinities), as torch."""
    av, bv = _values(a), _values(b)
    with np.errstate(invalid="ignore"):
        return ops.tensor(np.isclose(av, bv, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether ``isclose`` holds everywhere (shapes must broadcast), as torch."""
    return builtins.bool(isclose(a, b, rtol, atol, equal_nan)._value.all())


def _values(x) -> np.ndarray:
    return x._concrete("allclose") if isinstance(x, Tensor) else np.asarray(x)
