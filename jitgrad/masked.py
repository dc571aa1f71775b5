"""``torch.masked``: reductions and normalizations that skip the elements a mask leaves out.

Each function takes ``mask=`` (a tensor broadcastable to the input, read as bool; None keeps
every element) and works as torch's does on a plain tensor: the left-out elements are replaced
by the operation's identity (0 for ``sum``, 1 for ``prod``, ``-inf`` for ``amax``, ``argmax``,
``logsumexp``, ``softmax`` and ``log_softmax``, ``+inf`` for ``amin``, ``argmin`` and
``softmin``; the smallest or largest integer for integer inputs) and the plain operation runs on
the result. So a row with nothing left gives that identity: 0 for ``sum``, ``-inf`` for
``amax``; NaN for ``mean``, ``median``, ``var``, ``std`` and ``softmax``. Results are plain
tensors, and gradients reach only the elements the mask keeps.

>>> import jitgrad as torch
>>> x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
>>> m = torch.tensor([[True, False, True], [False, False, False]])
>>> torch.masked.sum(x, 1, mask=m)
tensor([4., 0.], grad_fn=<SumBackward0>)
>>> torch.masked.mean(x, 1, mask=m)
tensor([2., nan], grad_fn=<DivBackward0>)
>>> torch.masked.amax(x, 1, mask=m)
tensor([3., -inf], grad_fn=<MaxBackward1>)
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import dtypes
from jitgrad.ops.elementwise import abs as _abs
from jitgrad.ops.elementwise import exp, isinf, isnan, log1p, maximum, sqrt, where
from jitgrad.tensor import Tensor

__all__ = [
    "amax", "amin", "argmax", "argmin", "cumprod", "cumsum", "log_softmax", "logaddexp",
    "logsumexp", "mean", "median", "norm", "normalize", "prod", "softmax", "softmin", "std",
    "sum", "var",
]

_SMALL_INTS = (dtypes.bool_, dtypes.uint8, dtypes.int8, dtypes.int16, dtypes.int32)


def _tensor(x, name: str, arg: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"masked.{name}(): argument '{arg}' must be a Tensor, not "
                        f"{type(x).__name__}")
    return x


def _dtype(dtype):
    return None if dtype is None else dtypes.as_dtype(dtype)


def _mask_of(x: Tensor, mask, name: str):
    """``mask`` broadcast to ``x``'s shape, as bool (None stays None)."""
    if mask is None:
        return None
    mask = _tensor(mask, name, "mask")
    if mask.ndim > x.ndim:
        raise IndexError(f"masked.{name}(): the mask has more dimensions ({mask.ndim}) than the "
                         f"input ({x.ndim}); it must broadcast to the input's shape "
                         f"{tuple(x.shape)}")
    if tuple(mask.shape) != tuple(x.shape):
        mask = mask.broadcast_to(tuple(x.shape))
    return mask if mask.dtype is dtypes.bool_ else mask != 0


_REDUCTIONS = frozenset({"sum", "prod", "amax", "amin", "argmax", "argmin", "mean", "median",
                         "norm", "var", "std", "logsumexp"})
_NORMALIZATIONS = frozenset({"softmax", "log_softmax", "softmin", "normalize", "cumsum",
                             "cumprod"})


def _input_mask(input, *args, **kwargs) -> Tensor:  # noqa: A002
    """torch.masked's canonical input mask: ``mask=`` broadcast to the input, as bool.

    As torch's: the mask is required (``*args`` are the operation's other arguments, read
    only for their keyword ``mask``); tests wrap masked operations with it.
    """
    input = _tensor(input, "_input_mask")
    if kwargs.get("mask") is None:
        raise ValueError("_input_mask requires explicit mask")
    return _mask_of(input, kwargs["mask"], "_input_mask")


def _output_mask(op, input, *args, **kwargs) -> Tensor:  # noqa: A002
    """Which elements of ``op(input, *args, **kwargs)`` a masked operation defines.

    A reduction's output element is defined where any input element it reads is; a
    normalization's where the input's is (as torch.masked._output_mask).
    """
    name = getattr(op, "__name__", None)
    if not callable(op) or name not in _REDUCTIONS | _NORMALIZATIONS:
        raise ValueError(f"_output_mask expected a masked operation, got {op!r}")
    mask = _input_mask(input, *args, **kwargs)
    if name in _NORMALIZATIONS:
        return mask
    if name == "norm" and args:
        args = args[1:]  # the order comes before dim
    dim = args[0] if args else kwargs.get("dim")
    dims = _dims(dim, input.ndim, name)
    keepdim = bool(kwargs.get("keepdim", False))
    if not input.ndim:
        return mask
    return mask.any(dim=dims, keepdim=keepdim) if dims else mask


def _identity(name: str, dt: dtypes.DType):
    """The value a left-out element takes in reduction ``name``: one that does not change it."""
    if name in ("sum", "cumsum"):
        return 0
    if name in ("prod", "cumprod"):
        return 1
    lowest = name in ("amax", "argmax", "logsumexp", "logaddexp")
    if dt.is_floating_point:
        return -math.inf if lowest else math.inf
    if dt is dtypes.bool_:
        raise NotImplementedError(f"masked.{name}(): no identity on bool input")
    info = np.iinfo(dt.np)
    return int(info.min if lowest else info.max)


def _fill(x: Tensor, mask, value):
    """``x`` with its left-out elements replaced by ``value`` (in ``x``'s dtype)."""
    if mask is None:
        return x
    return where(mask, x, value)


def _dims(dim, ndim: int, name: str) -> tuple:
    """``dim`` as a sorted tuple of non-negative dimensions; None or () is every dimension."""
    if dim is None or dim == () or dim == []:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    bound = max(ndim, 1)
    out: list = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"masked.{name}(): dim must be an int or a tuple of ints, got {dim!r}")
        if not -bound <= d < bound:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-bound}, {bound - 1}], but got {d})")
        if d % bound in out:
            raise RuntimeError(f"dim={d} appears multiple times in the list of dims")
        out.append(d % bound)
    return tuple(sorted(out)) if ndim else ()


def _one_dim(dim, ndim: int, name: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"masked.{name}(): argument 'dim' must be int, not {type(dim).__name__}")
    _dims(dim, ndim, name)
    return dim % max(ndim, 1) if ndim else 0


def _reduce_arg(dims: tuple, ndim: int):
    """The ``dim`` argument of a plain reduction over ``dims`` (None for a 0-d tensor)."""
    return dims if ndim else None


def _sum_dtype(x: Tensor, dtype):
    """torch's result dtype of a sum or product: small integers and bool widen to int64."""
    if dtype is not None:
        return dtype
    return dtypes.int64 if x.dtype in _SMALL_INTS else x.dtype


def sum(input, dim=None, *, keepdim: bool = False, dtype=None, mask=None):  # noqa: A001,A002
    """The sum of the elements the mask keeps (0 where it keeps none).

    >>> import jitgrad
    >>> x = jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> jitgrad.masked.sum(x, 1, mask=jitgrad.tensor([True, False]))
    tensor([1., 3.])
    """
    x = _tensor(input, "sum")
    dims = _dims(dim, x.ndim, "sum")
    out_dt = _sum_dtype(x, _dtype(dtype))
    filled = _fill(x, _mask_of(x, mask, "sum"), 0)
    return filled.sum(_reduce_arg(dims, x.ndim), keepdim=bool(keepdim), dtype=out_dt)


def prod(input, dim=None, *, keepdim: bool = False, dtype=None, mask=None):  # noqa: A002
    """The product of the elements the mask keeps (1 where it keeps none).

    >>> import jitgrad
    >>> x = jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> jitgrad.masked.prod(x, 1, mask=jitgrad.tensor([[True, True], [False, False]]))
    tensor([2., 1.])
    """
    x = _tensor(input, "prod")
    dims = _dims(dim, x.ndim, "prod")
    out_dt = _sum_dtype(x, _dtype(dtype))
    filled = _fill(x, _mask_of(x, mask, "prod"), 1)
    return filled.prod(_reduce_arg(dims, x.ndim), keepdim=bool(keepdim)).to(out_dt)


def _cumulative(name: str, input, dim, dtype, mask):
    x = _tensor(input, name)
    d = _one_dim(dim, x.ndim, name)
    out_dt = _dtype(dtype) or x.dtype
    filled = _fill(x, _mask_of(x, mask, name), _identity(name, x.dtype))
    return getattr(filled, name)(d, dtype=out_dt).to(out_dt)


def cumsum(input, dim: int, *, dtype=None, mask=None):  # noqa: A002
    """The cumulative sum along ``dim``, left-out elements counting as 0.

    >>> import jitgrad
    >>> jitgrad.masked.cumsum(jitgrad.tensor([1.0, 2.0, 3.0]), 0,
    ...                       mask=jitgrad.tensor([True, False, True]))
    tensor([1., 1., 4.])
    """
    return _cumulative("cumsum", input, dim, dtype, mask)


def cumprod(input, dim: int, *, dtype=None, mask=None):  # noqa: A002
    """The cumulative product along ``dim``, left-out elements counting as 1.

    >>> import jitgrad
    >>> jitgrad.masked.cumprod(jitgrad.tensor([2.0, 5.0, 3.0]), 0,
    ...                        mask=jitgrad.tensor([True, False, True]))
    tensor([2., 2., 6.])
    """
    return _cumulative("cumprod", input, dim, dtype, mask)


def _extreme(name: str, input, dim, keepdim, dtype, mask):
    x = _tensor(input, name)
    dims = _dims(dim, x.ndim, name)
    out_dt = _dtype(dtype) or x.dtype
    m = _mask_of(x, mask, name)
    filled = _fill(x, m, _identity(name, x.dtype) if m is not None else 0)
    return getattr(filled, name)(_reduce_arg(dims, x.ndim), keepdim=bool(keepdim)).to(out_dt)


def amax(input, dim=None, *, keepdim: bool = False, dtype=None, mask=None):  # noqa: A002
    """The largest element the mask keeps (``-inf``, or the smallest integer, where none).

    >>> import jitgrad
    >>> jitgrad.masked.amax(jitgrad.tensor([1.0, 5.0, 3.0]), mask=jitgrad.tensor([True, False, True]))
    tensor(3.)
    """
    return _extreme("amax", input, dim, keepdim, dtype, mask)


def amin(input, dim=None, *, keepdim: bool = False, dtype=None, mask=None):  # noqa: A002
    """The smallest element the mask keeps (``inf``, or the largest integer, where none).

    >>> import jitgrad
    >>> jitgrad.masked.amin(jitgrad.tensor([1.0, 5.0, 3.0]), mask=jitgrad.tensor([False, True, True]))
    tensor(3.)
    """
    return _extreme("amin", input, dim, keepdim, dtype, mask)


def _arg_extreme(name: str, input, dim, keepdim, dtype, mask):
    x = _tensor(input, name)
    if dim is not None:
        dim = _one_dim(dim, x.ndim, name)
    out_dt = _dtype(dtype) or x.dtype  # torch's: the input's dtype, a float index for floats
    m = _mask_of(x, mask, name)
    filled = _fill(x, m, _identity(name, x.dtype) if m is not None else 0)
    return getattr(filled, name)(dim, keepdim=bool(keepdim)).to(out_dt)


def argmax(input, dim=None, *, keepdim: bool = False, dtype=None, mask=None):  # noqa: A002
    """The index of the largest element the mask keeps, in the input's dtype as torch's
    (``dtype`` chooses another); over the flattened input when ``dim`` is None.

    >>> import jitgrad
    >>> jitgrad.masked.argmax(jitgrad.tensor([1.0, 5.0, 3.0]), 0,
    ...                       mask=jitgrad.tensor([True, False, True]))
    tensor(2.)
    """
    return _arg_extreme("argmax", input, dim, keepdim, dtype, mask)


def argmin(input, dim=None, *, keepdim: bool = False, dtype=None, mask=None):  # noqa: A002
    """The index of the smallest element the mask keeps, in the input's dtype as torch's.

    >>> import jitgrad
    >>> jitgrad.masked.argmin(jitgrad.tensor([1.0, 5.0, 3.0]), 0,
    ...                       mask=jitgrad.tensor([False, True, True]))
    tensor(2.)
    """
    return _arg_extreme("argmin", input, dim, keepdim, dtype, mask)


def _count(x: Tensor, m, dims: tuple, keepdim: bool):
    """How many elements the mask keeps along ``dims`` (an int64 tensor, or a Python int)."""
    if m is None:
        n = 1
        for d in dims:
            n *= x.shape[d]
        return n
    return m.sum(_reduce_arg(dims, x.ndim), keepdim=keepdim)


def mean(input, dim=None, *, keepdim: bool = False, dtype=None, mask=None):  # noqa: A002
    """The mean of the elements the mask keeps (NaN where it keeps none).

    >>> import jitgrad
    >>> jitgrad.masked.mean(jitgrad.tensor([1.0, 5.0, 3.0]), mask=jitgrad.tensor([True, False, True]))
    tensor(2.)
    """
    x = _tensor(input, "mean")
    out_dt = _dtype(dtype)
    if not (out_dt or x.dtype).is_floating_point:
        source = "Input" if out_dt is None else "Optional"
        raise ValueError(f"mean(): Could not infer output dtype. {source} dtype must be either a "
                         f"floating point or complex dtype. Got: {out_dt or x.dtype}")
    dims = _dims(dim, x.ndim, "mean")
    m = _mask_of(x, mask, "mean")
    total = sum(x, dim, keepdim=keepdim, dtype=out_dt or x.dtype, mask=m)
    return total / _count(x, m, dims, bool(keepdim))


def median(input, dim: int = -1, *, keepdim: bool = False, dtype=None, mask=None):  # noqa: A002
    """The median (the lower of the middle two for an even count) of the elements the mask
    keeps along ``dim``, NaNs in the input skipped as torch's ``nanmedian``; NaN where none.

    >>> import jitgrad
    >>> jitgrad.masked.median(jitgrad.tensor([1.0, 9.0, 3.0, 2.0]),
    ...                       mask=jitgrad.tensor([True, False, True, True]))
    tensor(2.)
    """
    x = _tensor(input, "median")
    d = _one_dim(dim, x.ndim, "median")
    out_dt = _dtype(dtype) or x.dtype
    is_float = x.dtype.is_floating_point
    if not is_float:
        x = x.to(dtypes.float32)
    filled = _fill(x, _mask_of(x, mask, "median"), math.nan)
    if x.ndim == 0:
        out = filled
    else:
        values, indices = filled.sort(d)  # NaNs (left-out elements) sort last
        kept = (~isnan(filled)).sum(d, keepdim=True)
        middle = ((kept - 1) // 2).clamp(min=0)
        out = filled.take_along_dim(indices.take_along_dim(middle, d), d)
        if not keepdim:
            out = out.squeeze(d)
    if is_float:
        return out
    if bool(isnan(out).any()):
        raise ValueError("masked median expects no fully masked out rows if dtype is not "
                         "floating point")
    return out.to(out_dt)


def logsumexp(input, dim=None, *, keepdim: bool = False, dtype=None, mask=None):  # noqa: A002
    """``log(sum(exp(x)))`` over the elements the mask keeps (``-inf`` where none).

    >>> import jitgrad
    >>> jitgrad.masked.logsumexp(jitgrad.tensor([0.0, 9.0, 0.0]),
    ...                          mask=jitgrad.tensor([True, False, True]))
    tensor(0.6931)
    """
    x = _tensor(input, "logsumexp")
    dims = _dims(dim, x.ndim, "logsumexp")
    out_dt = _dtype(dtype) or x.dtype
    m = _mask_of(x, mask, "logsumexp")
    filled = _fill(x, m, _identity("logsumexp", x.dtype) if m is not None else 0)
    if not dims:  # a 0-d input: the element itself
        return filled.to(out_dt)
    return filled.logsumexp(dims, keepdim=bool(keepdim)).to(out_dt)


def _logaddexp(a: Tensor, b: Tensor) -> Tensor:
    """``log(exp(a) + exp(b))`` without overflow; equal infinities give themselves, and at a tie
    the gradient splits evenly, as torch's."""
    same_inf = (a == b) & isinf(a)
    d = where(same_inf, 0.0, a - b)
    return where(same_inf, a, maximum(a, b) + log1p(exp(-_abs(d))))


def logaddexp(input, other, *, dtype=None, input_mask=None, other_mask=None):  # noqa: A002
    """``log(exp(input) + exp(other))``, the left-out elements of each counting as ``-inf``.

    >>> import jitgrad
    >>> a, b = jitgrad.tensor([0.0, 1.0]), jitgrad.tensor([0.0, 2.0])
    >>> jitgrad.masked.logaddexp(a, b, input_mask=jitgrad.tensor([True, False]))
    tensor([0.6931, 2.0000])
    """
    x = _tensor(input, "logaddexp")
    y = _tensor(other, "logaddexp", "other")
    out_dt = _dtype(dtype) or x.dtype
    mx, my = _mask_of(x, input_mask, "logaddexp"), _mask_of(y, other_mask, "logaddexp")
    x = _fill(x, mx, _identity("logaddexp", x.dtype) if mx is not None else 0)
    y = _fill(y, my, _identity("logaddexp", y.dtype) if my is not None else 0)
    return _logaddexp(x, y).to(out_dt)


def norm(input, ord: float = 2.0, dim=None, *, keepdim: bool = False, dtype=None,  # noqa: A002
         mask=None):
    """The vector ``ord``-norm of the elements the mask keeps (0 where none; ``inf`` for
    ``ord=-inf``).

    >>> import jitgrad
    >>> jitgrad.masked.norm(jitgrad.tensor([3.0, 9.0, 4.0]), 2.0,
    ...                     mask=jitgrad.tensor([True, False, True]))
    tensor(5.)
    """
    from jitgrad.linalg import vector_norm
    x = _tensor(input, "norm")
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise TypeError(f"masked.norm(): argument 'ord' must be a number, not "
                        f"{type(ord).__name__}")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"masked.norm(): expected a floating point input, got {x.dtype}")
    dims = _dims(dim, x.ndim, "norm")
    filled = _fill(x, _mask_of(x, mask, "norm"), math.inf if ord == -math.inf else 0)
    return vector_norm(filled, ord, _reduce_arg(dims, x.ndim), bool(keepdim),
                       dtype=_dtype(dtype))


def normalize(input, ord: float, dim: int, *, eps: float = 1e-12, dtype=None,  # noqa: A002
              mask=None):
    """The input divided by its masked ``ord``-norm along ``dim`` (at least ``eps``); the
    left-out elements become 0.

    >>> import jitgrad
    >>> jitgrad.masked.normalize(jitgrad.tensor([3.0, 9.0, 4.0]), 2.0, 0,
    ...                          mask=jitgrad.tensor([True, False, True]))
    tensor([0.6000, 0.0000, 0.8000])
    """
    x = _tensor(input, "normalize")
    d = _one_dim(dim, x.ndim, "normalize")
    m = _mask_of(x, mask, "normalize")
    size = norm(x, ord, d, keepdim=True, dtype=dtype, mask=m)
    return _fill(x, m, 0) / maximum(size, eps)


def _std_var(name: str, input, dim, unbiased, correction, keepdim, dtype, mask, take_sqrt):
    x = _tensor(input, name)
    if unbiased is not None and correction is not None:
        raise ValueError(f"masked.{name}(): only one of unbiased and correction may be given")
    c = 1.0 if unbiased is None else float(bool(unbiased))
    if correction is not None:
        c = float(correction)
    out_dt = _dtype(dtype) or (x.dtype if x.dtype.is_floating_point else dtypes.float32)
    compute_dt = out_dt if out_dt.is_floating_point else dtypes.float32
    dims = _dims(dim, x.ndim, name)
    m = _mask_of(x, mask, name)
    count = _count(x, m, dims, True)
    centered = x - sum(x, dim, keepdim=True, dtype=out_dt, mask=m) / count
    total = sum(centered * centered, dim, keepdim=keepdim, dtype=compute_dt, mask=m)
    if isinstance(count, Tensor):
        if not keepdim:
            count = count.reshape(tuple(total.shape))
        count = count.to(compute_dt)
        if c != 0:
            count = maximum(count - c, 0.0)
    elif c != 0:
        count = max(count - c, 0.0)
    out = (total / count).to(out_dt)
    return sqrt(out) if take_sqrt else out


def var(input, dim=None, unbiased: bool | None = None, *, correction=None,  # noqa: A002
        keepdim: bool = False, dtype=None, mask=None):
    """The variance of the elements the mask keeps, divided by ``count - correction`` (1 unless
    ``unbiased=False`` or ``correction`` says otherwise; NaN where that is not positive).

    >>> import jitgrad
    >>> jitgrad.masked.var(jitgrad.tensor([1.0, 9.0, 3.0]), mask=jitgrad.tensor([True, False, True]))
    tensor(2.)
    """
    return _std_var("var", input, dim, unbiased, correction, keepdim, dtype, mask, False)


def std(input, dim=None, unbiased: bool | None = None, *, correction=None,  # noqa: A002
        keepdim: bool = False, dtype=None, mask=None):
    """The standard deviation: the square root of the masked ``var``.

    >>> import jitgrad
    >>> jitgrad.masked.std(jitgrad.tensor([1.0, 9.0, 5.0]), mask=jitgrad.tensor([True, False, True]),
    ...                    unbiased=False)
    tensor(2.)
    """
    return _std_var("std", input, dim, unbiased, correction, keepdim, dtype, mask, True)


def _softmax(name: str, input, dim, dtype, mask, fill_name: str, sign: float, log: bool):
    from jitgrad.ops.reduce import log_softmax as _log_softmax
    from jitgrad.ops.reduce import softmax as _plain_softmax
    x = _tensor(input, name)
    d = _one_dim(dim, x.ndim, name)
    m = _mask_of(x, mask, name)
    filled = _fill(x, m, _identity(fill_name, x.dtype) if m is not None else 0)
    if sign < 0:
        filled = -filled
    return (_log_softmax if log else _plain_softmax)(filled, d, _dtype(dtype) or x.dtype)


def softmax(input, dim: int, *, dtype=None, mask=None):  # noqa: A002
    """Softmax along ``dim`` over the elements the mask keeps: 0 at the left-out ones, NaN
    along a slice with none.

    >>> import jitgrad
    >>> jitgrad.masked.softmax(jitgrad.tensor([0.0, 5.0, 0.0]), 0,
    ...                        mask=jitgrad.tensor([True, False, True]))
    tensor([0.5000, 0.0000, 0.5000])
    """
    return _softmax("softmax", input, dim, dtype, mask, "amax", 1.0, False)


def log_softmax(input, dim: int, *, dtype=None, mask=None):  # noqa: A002
    """Log-softmax along ``dim`` over the elements the mask keeps (``-inf`` at the others).

    >>> import jitgrad
    >>> jitgrad.masked.log_softmax(jitgrad.tensor([0.0, 5.0, 0.0]), 0,
    ...                            mask=jitgrad.tensor([True, False, True]))
    tensor([-0.6931,    -inf, -0.6931])
    """
    return _softmax("log_softmax", input, dim, dtype, mask, "amax", 1.0, True)


def softmin(input, dim: int, *, dtype=None, mask=None):  # noqa: A002
    """Softmin (softmax of ``-x``) along ``dim`` over the elements the mask keeps.

    >>> import jitgrad
    >>> jitgrad.masked.softmin(jitgrad.tensor([0.0, -5.0, 0.0]), 0,
    ...                        mask=jitgrad.tensor([True, False, True]))
    tensor([0.5000, 0.0000, 0.5000])
    """
    return _softmax("softmin", input, dim, dtype, mask, "amin", -1.0, False)
