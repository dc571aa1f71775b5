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
IntTensor = _typed(dtypes.int32, "IntTensor")
ShortTensor = _typed(dtypes.int16, "ShortTensor")
CharTensor = _typed(dtypes.int8, "CharTensor")
ByteTensor = _typed(dtypes.uint8, "ByteTensor")
BoolTensor = _typed(dtypes.bool_, "BoolTensor")


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether every element (along ``dim``) is nonzero: a bool tensor, as torch."""
    return x.all(dim, keepdim)


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether some element (along ``dim``) is nonzero: a bool tensor, as torch."""
    return x.any(dim, keepdim)


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """Elementwise ``|a - b| <= atol + rtol * |b|`` (and equal infinities), as torch."""
    # With jitgrad's ops, so that a compiled function computes it too (its values were read
    # at trace time before): equal values (infinities included), finite ones within the
    # tolerance, and NaNs where asked.
    a = a if isinstance(a, Tensor) else ops.tensor(np.asarray(a))
    b = b if isinstance(b, Tensor) else ops.tensor(np.asarray(b))
    if rtol < 0 or atol < 0:
        raise RuntimeError(f"isclose: rtol and atol must be non-negative, got rtol={rtol}, "
                           f"atol={atol}")
    if a.dtype is dtypes.bool_ or b.dtype is dtypes.bool_:
        return a == b
    fa, fb = (a, b) if a.dtype.is_floating_point or b.dtype.is_floating_point else \
        (a.to(dtypes.float64), b.to(dtypes.float64))
    finite = ops.isfinite(fa) & ops.isfinite(fb)
    nans = ops.isnan(fa) & ops.isnan(fb)
    fa, fb = ops.where(finite, fa, 0), ops.where(finite, fb, 0)  # (no inf - inf)
    close = (a == b) | (finite & ((fa - fb).abs() <= atol + rtol * fb.abs()))
    return close | nans if equal_nan else close


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether ``isclose`` holds everywhere (shapes must broadcast), as torch."""
    # bool() of the tensor, not of its value: inside a compiled function that is a guard, so
    # a later call whose answer differs re-traces instead of reusing this one's
    return builtins.bool(isclose(a, b, rtol, atol, equal_nan).all())


Tensor.isclose = isclose
Tensor.allclose = allclose


class histogram_result(tuple):  # noqa: N801  (torch.return_types.histogram)
    """``(hist, bin_edges)``, also as attributes."""

    __slots__ = ()

    def __new__(cls, hist, bin_edges):
        return super().__new__(cls, (hist, bin_edges))

    hist = property(lambda self: self[0])
    bin_edges = property(lambda self: self[1])

    def __repr__(self) -> str:
        return f"histogram(hist={self[0]!r}, bin_edges={self[1]!r})"


def _host_values(x, name: str) -> np.ndarray:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"{name}: input tensor and bins tensors should have the same dtype, "
                           f"and a floating one; got {x.dtype.name}")
    return x.detach().numpy()  # (inside a compiled function this is refused by name)


def histogram(input, bins=100, *, range=None, weight=None, density: bool = False):  # noqa: A002
    """Counts of ``input``'s values in ``bins`` equal bins over ``range`` (the data's span by
    default) or between the edges of a tensor ``bins``, as ``torch.histogram``; not
    differentiable.

    >>> import jitgrad
    >>> jitgrad.histogram(jitgrad.tensor([1.0, 2, 1]), bins=4, range=(0.0, 3.0)).hist
    tensor([0., 2., 1., 0.])
    """
    v = _host_values(input, "histogram")
    edges = bins.detach().numpy() if isinstance(bins, Tensor) else int(bins)
    w = weight.detach().numpy().reshape(-1) if weight is not None else None
    hist, out_edges = np.histogram(v.reshape(-1), bins=edges, range=range, weights=w,
                                   density=density)
    return histogram_result(Tensor._wrap(hist.astype(v.dtype)),
                            Tensor._wrap(out_edges.astype(v.dtype)))


def histc(input, bins: int = 100, min=0, max=0):  # noqa: A002
    """Counts of ``input``'s values in ``bins`` equal bins over ``[min, max]`` (the data's span
    when both are 0); values outside are ignored, as ``torch.histc``.

    >>> import jitgrad
    >>> jitgrad.histc(jitgrad.tensor([1.0, 2, 1, 5]), bins=4, min=0, max=3)
    tensor([0., 2., 1., 0.])
    """
    v = _host_values(input, "histc").reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi:
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError(f"histc: max must be larger than min, got min={min} max={max}")
    v = v[(v >= lo) & (v <= hi)]
    hist, _ = np.histogram(v, bins=int(bins), range=(lo, hi))
    return Tensor._wrap(hist.astype(input.dtype.np))
