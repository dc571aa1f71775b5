"""Reductions and the normalizations built on them (softmax, log_softmax).

>>> import jitgrad
>>> x = jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> x.sum(dim=0)
tensor([4., 6.], grad_fn=<SumBackward0>)
"""

from __future__ import annotations

from collections import namedtuple

import math

import numpy as np

from jitgrad import dtypes
from jitgrad.ops import _rules
from jitgrad.ops.registry import Aval, Reduction, bind, register

_NO = {}


def _red_abstract(x: Aval, axes: tuple, keepdims: bool) -> Aval:
    return Aval(_rules.reduced_shape(x.shape, axes, keepdims), x.dtype)


def _kept(g, x, axes, keepdims):
    """``g`` reshaped so it broadcasts against ``x`` (reduced axes kept as size 1)."""
    if keepdims:
        return g
    return reshape(g, _rules.reduced_shape(x.shape, axes, True))


def _sum_impl(x, axes, keepdims):
    out = np.sum(x, axis=axes, keepdims=keepdims)
    if x.dtype.kind in "biu":  # integers and bools sum as int64 (torch's rule)
        out = np.asarray(out).astype(np.int64)
    return out


def _sum_abstract(x: Aval, axes, keepdims) -> Aval:
    dt = x.dtype if x.dtype.is_floating_point else dtypes.int64
    return Aval(_rules.reduced_shape(x.shape, axes, keepdims), dt)


sum_p = register("sum", _sum_impl, _sum_abstract,
                 lambda g, out, x, axes, keepdims: (expand(_kept(g, x, axes, keepdims), x.shape),),
                 saves="none", kind="reduce", reduction=Reduction("add"))


def _mean_vjp(g, out, x, axes, keepdims):
    n = int(math.prod([x.shape[a] for a in axes]))
    return (expand(_kept(g, x, axes, keepdims), x.shape) / n,)


mean_p = register("mean", lambda x, axes, keepdims: np.mean(x, axis=axes, keepdims=keepdims),
                  _red_abstract, _mean_vjp, saves="none", kind="reduce",
                  reduction=Reduction("add", finish="{0} / {n}"))


def _extreme_vjp(g, out, x, axes, keepdims):
    # Ties share the gradient evenly (torch's amax/amin rule).
    hit = (x == _kept(out, x, axes, keepdims)).to(x.dtype)
    w = hit / hit.sum(dim=axes, keepdim=True)
    return (_kept(g, x, axes, keepdims) * w,)


max_p = register("max", lambda x, axes, keepdims: np.max(x, axis=axes, keepdims=keepdims),
                 _red_abstract, _extreme_vjp, saves="both", kind="reduce",
                 reduction=Reduction("max", atomic="max"),
                 backward_name="MaxBackward1")
min_p = register("min", lambda x, axes, keepdims: np.min(x, axis=axes, keepdims=keepdims),
                 _red_abstract, _extreme_vjp, saves="both", kind="reduce",
                 reduction=Reduction("min", atomic="min"),
                 backward_name="MinBackward1")


def _prod_others_impl(x, axes):
    """For each element, the product of the others along ``axes`` (exact with zeros)."""
    if x.size == 0:  # (an empty axis: nothing to multiply, and no element to give it to)
        return np.array(x)
    moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0)))
    lead = moved.shape[:moved.ndim - len(axes)]
    flat = moved.reshape(lead + (-1,))
    ones = np.ones(lead + (1,), dtype=x.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    res = (left * right).reshape(moved.shape)
    return np.moveaxis(res, tuple(range(-len(axes), 0)), axes)


def _prod_others_vjp(g, out, x, axes):
    # d out_i / d x_j is the product of all but x_i and x_j (0 for j == i). With the reduced
    # axes flattened last (n elements): row j of ``rows`` is x with x_j set to 1, so its own
    # products of the others hold those for every i (and out_j at i == j, taken back out).
    # Exact with zeros, and written in jitgrad ops, so it differentiates again.
    from jitgrad.factories import eye
    from jitgrad.ops.shape import movedim
    k = len(axes)
    last = tuple(range(x.ndim - k, x.ndim))
    xm, gm, om = (movedim(v, axes, last) for v in (x, g, out))
    lead = tuple(xm.shape[:x.ndim - k])
    n = int(math.prod(xm.shape[x.ndim - k:]))
    xf, gf, of = (v.reshape(*lead, n) for v in (xm, gm, om))
    mask = eye(n, dtype=dtypes.bool_)
    rows = where(mask, 1.0, xf.reshape(*lead, 1, n)).to(x.dtype)
    po = bind(prod_others_p, (rows,), {"axes": (len(lead) + 1,)})
    ct = (po * gf.reshape(*lead, 1, n)).sum(dim=-1) - gf * of
    return (movedim(ct.reshape(*xm.shape), last, axes),)


prod_others_p = register("prod_others", _prod_others_impl, lambda x, axes: x, _prod_others_vjp,
                         saves="both", kind="reduce")
prod_p = register("prod", lambda x, axes, keepdims: np.asarray(
                      np.prod(x, axis=axes, keepdims=keepdims)).astype(
                      x.dtype if x.dtype.kind == "f" else np.int64),
                  _sum_abstract,
                  lambda g, out, x, axes, keepdims: (
                      _kept(g, x, axes, keepdims) * bind(prod_others_p, (x,), {"axes": axes}),),
                  kind="reduce", reduction=Reduction("mul", atomic=None))


def _arg_abstract(x: Aval, axis, keepdims) -> Aval:
    axes = tuple(range(len(x.shape))) if axis is None else (axis,)
    shape = _rules.reduced_shape(x.shape, axes, keepdims) if axis is not None else (
        (1,) * len(x.shape) if keepdims else ())
    return Aval(shape, dtypes.int64)


def _arg_impl(fn):
    def impl(x, axis, keepdims):
        return fn(x, axis=axis, keepdims=keepdims).astype(np.int64)
    return impl


argmax_p = register("argmax", _arg_impl(np.argmax), _arg_abstract, None, saves="none",
                    kind="reduce")
argmin_p = register("argmin", _arg_impl(np.argmin), _arg_abstract, None, saves="none",
                    kind="reduce")


def _norm_vjp(g, out, x, axes, keepdims):
    # The subgradient 0 at the origin, as torch gives, instead of 0/0.
    o = _kept(out, x, axes, keepdims)
    safe = where(o == 0, 1.0, o)
    return (_kept(g, x, axes, keepdims) * where(o == 0, 0.0, x / safe),)


norm_p = register("norm",
                  lambda x, axes, keepdims: np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims)),
                  _red_abstract, _norm_vjp, saves="both", kind="reduce",
                  reduction=Reduction("add", map="{0} * {0}", finish="{m}.sqrt({0})"),
                  backward_name="LinalgVectorNormBackward0")


def _softmax_impl(x, axis):
    if not x.size:  # (np.max of nothing has no identity): an empty result, as torch's
        return np.empty_like(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_impl(x, axis):
    if not x.size:
        return np.empty_like(x)
    s = x - np.max(x, axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


softmax_p = register("softmax", _softmax_impl, lambda x, axis: x,
                     lambda g, out, x, axis: (out * (g - (g * out).sum(dim=axis, keepdim=True)),),
                     saves="output", kind="reduce")
log_softmax_p = register("log_softmax", _log_softmax_impl, lambda x, axis: x,
                         lambda g, out, x, axis: (g - exp(out) * g.sum(dim=axis, keepdim=True),),
                         saves="output", kind="reduce")


# -- the functional API ------------------------------------------------------------------------
def _reduce(prim, x, dim, keepdim, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be a Tensor, not {type(x).__name__}")
    axes = _rules.norm_axes(dim, x.ndim, op)
    return bind(prim, (x,), {"axes": axes, "keepdims": _rules.check_keepdim(keepdim, op)})


def numpy_keywords(fn):
    """Accept NumPy's spellings as torch does: ``axis`` for ``dim``, ``keepdims`` for
    ``keepdim`` (``x.sum(axis=0, keepdims=True)``)."""
    def with_aliases(*args, **kw):
        if kw:
            for np_name, name in (("axis", "dim"), ("keepdims", "keepdim")):
                if np_name in kw:
                    if name in kw:
                        raise TypeError(f"{fn.__name__}(): got both {name}= and {np_name}=")
                    kw[name] = kw.pop(np_name)
        return fn(*args, **kw)
    with_aliases.__name__ = fn.__name__
    with_aliases.__qualname__ = fn.__qualname__
    with_aliases.__doc__ = fn.__doc__
    with_aliases.__wrapped__ = fn
    return with_aliases


def sum(x, dim=None, keepdim: bool = False, dtype=None):  # noqa: A001
    """Sum over ``dim`` (all dimensions by default)."""
    if dtype is not None:
        x = x.to(dtype)
    return _reduce(sum_p, x, dim, keepdim, "sum")


def mean(x, dim=None, keepdim: bool = False, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating "
                           f"point, got {x.dtype.name}")
    return _reduce(mean_p, x, dim, keepdim, "mean")


MinMax = namedtuple("MinMax", ["values", "indices"])


def _extreme(prim, argprim, x, dim, keepdim, op):
    if isinstance(dim, Tensor):  # torch.max(a, b) is the elementwise maximum
        from jitgrad.ops.elementwise import maximum, minimum
        return (maximum if op == "max" else minimum)(x, dim)
    if dim is None:
        if x.numel() == 0:
            raise RuntimeError(f"{op}(): expected a non-empty tensor")
        return _reduce(prim, x, None, False, op)
    axis = _rules.norm_axis(dim, x.ndim, op)  # one dim: max((0, 1)) is a TypeError in torch
    values = _reduce(prim, x, axis, keepdim, op)
    indices = bind(argprim, (x,), {"axis": axis, "keepdims": bool(keepdim)})
    return MinMax(values, indices)


def max(x, dim=None, keepdim: bool = False):  # noqa: A001
    """The maximum; with ``dim``, a ``(values, indices)`` pair as in torch."""
    return _extreme(max_p, argmax_p, x, dim, keepdim, "max")


def min(x, dim=None, keepdim: bool = False):  # noqa: A001
    return _extreme(min_p, argmin_p, x, dim, keepdim, "min")


def amax(x, dim=None, keepdim: bool = False):
    return _reduce(max_p, x, dim, keepdim, "amax")


def amin(x, dim=None, keepdim: bool = False):
    return _reduce(min_p, x, dim, keepdim, "amin")


def _argextreme(prim, x, dim, keepdim, op):
    keepdim = _rules.check_keepdim(keepdim, op)
    if dim is None:
        # The index into the flattened tensor; keepdim=True keeps every dim as size 1 (torch).
        out = bind(prim, (reshape(x, (-1,)),), {"axis": 0, "keepdims": False})
        return reshape(out, (1,) * x.ndim) if keepdim else out
    return bind(prim, (x,), {"axis": _rules.norm_axis(dim, x.ndim, op), "keepdims": keepdim})


def argmax(x, dim=None, keepdim: bool = False):
    return _argextreme(argmax_p, x, dim, keepdim, "argmax")


def argmin(x, dim=None, keepdim: bool = False):
    return _argextreme(argmin_p, x, dim, keepdim, "argmin")


def prod(x, dim=None, keepdim: bool = False, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    return _reduce(prod_p, x, dim, keepdim, "prod")


def norm(x, p="fro", dim=None, keepdim: bool = False):
    """The vector p-norm of ``x`` over ``dim`` (every element by default), as ``torch.norm``:
    any number ``p`` (inf: the largest ``|x|``, -inf: the smallest, 0: the count of nonzeros)
    and ``"fro"`` (2) are vector norms, a matrix flattened, whatever ``dim`` is.

    >>> import jitgrad
    >>> x = jitgrad.tensor([[3.0, -4.0], [0.0, 1.0]])
    >>> x.norm(), x.norm(1), x.norm(float("inf")), x.norm(float("-inf")), x.norm(0)
    (tensor(5.0990), tensor(8.), tensor(4.), tensor(0.), tensor(3.))
    """
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"norm(): expected a floating point tensor, got {x.dtype.name}")
    if isinstance(p, str):
        if p == "nuc":  # the sum of the singular values of a matrix (the dim planes)
            if dim is None and x.ndim != 2:
                raise RuntimeError(f"norm(p='nuc'): expected a 2-D tensor or dim of two "
                                   f"dimensions, got shape {list(x.shape)}")
            from jitgrad.linalg._norms import matrix_norm  # (linalg builds on these ops)
            return matrix_norm(x, "nuc", (-2, -1) if dim is None else tuple(dim), keepdim)
        if p != "fro":
            raise ValueError(f"norm(): unsupported norm type {p!r}: use a number, 'fro' or 'nuc'")
        p = 2
    p = 2.0 if p is None else float(p)
    if p == 2:
        return _reduce(norm_p, x, dim, keepdim, "norm")
    a = abs(x)
    if p == 1:
        return sum(a, dim, keepdim)
    if p == float("inf"):
        return amax(a, dim, keepdim)
    if p == float("-inf"):
        return amin(a, dim, keepdim)
    if p == 0:
        # The count of nonzeros; 0 * x keeps it in the graph with torch's zero gradient.
        return sum(where(x != 0, 1.0, x * 0), dim, keepdim)
    # sum(|x|^p)^(1/p), written so that the gradient is torch's where the plain powers would
    # give 0 * inf = nan: 0 at zero elements (|x|^(p-1) is inf there for p < 1), and 0
    # everywhere when the sum is 0 or inf (the norm is 0 or inf; s^(1/p - 1) is inf or 0 there).
    # |0|^p is 0 for p > 0 and inf for p < 0, as torch.
    zero = a == 0
    powered = where(zero, 0.0 if p > 0 else float("inf"), where(zero, 1.0, a) ** p)
    s = sum(powered, dim, keepdim)
    flat = (s == 0) | isinf(s)
    return where(flat, s.detach() ** (1.0 / p), where(flat, 1.0, s) ** (1.0 / p))


def _var_args(dim, unbiased, keepdim, correction, op):
    """torch's three overloads, ``(input, unbiased: bool)``, ``(input, dim, unbiased=True,
    keepdim=False)`` and ``(input, dim=None, *, correction=1, keepdim=False)``, as ``(dim,
    ddof)``. A bool in the first place is ``unbiased``, never dim 0 or 1: ``x.std(False)`` is
    the population deviation over every element."""
    if isinstance(dim, (bool, np.bool_)):
        if unbiased is not None or keepdim is not False or correction is not None:
            raise TypeError(f"{op}(): the (input, unbiased: bool) form takes no other "
                            f"arguments; use {op}(dim, unbiased, keepdim) or "
                            f"{op}(dim, correction=..., keepdim=...)")
        dim, unbiased = None, bool(dim)
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}(): pass either unbiased or correction, not both")
    ddof = correction if correction is not None else (0 if unbiased is False else 1)
    return dim, ddof


def var(x, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """The variance over ``dim`` (all elements by default) with ``correction`` (Bessel's, 1,
    unless ``unbiased=False`` or ``correction=`` says otherwise), as torch.

    >>> import jitgrad
    >>> x = jitgrad.tensor([1.0, 2.0, 3.0, 4.0])
    >>> x.var(), x.var(False)
    (tensor(1.6667), tensor(1.2500))
    """
    dim, ddof = _var_args(dim, unbiased, keepdim, correction, "var")
    axes = _rules.norm_axes(dim, x.ndim, "var")
    keepdim = _rules.check_keepdim(keepdim, "var")
    n = int(math.prod([x.shape[a] for a in axes]))
    d = x - mean(x, axes, keepdim=True)
    return sum(d * d, axes, keepdim) / (n - ddof)


def std(x, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """The standard deviation: ``sqrt(var(...))``, with ``var``'s arguments."""
    dim, ddof = _var_args(dim, unbiased, keepdim, correction, "std")
    return sqrt(var(x, dim, keepdim=keepdim, correction=ddof))


def logsumexp(x, dim, keepdim: bool = False):
    axes = _rules.norm_axes(dim, x.ndim, "logsumexp")
    keepdim = _rules.check_keepdim(keepdim, "logsumexp")
    m = amax(x, axes, keepdim=True).detach()
    m = where(isinf(m), 0.0, m)
    out = log(sum(exp(x - m), axes, keepdim=True)) + m
    return out if keepdim else reshape(out, _rules.reduced_shape(x.shape, axes, False))


def _one_axis(x, dim, op):
    if dim is None:
        raise TypeError(f"{op}(): argument 'dim' is required")
    return _rules.norm_axis(dim, x.ndim, op)


def softmax(x, dim=None, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        x = x.to(dtypes.float32)
    return bind(softmax_p, (x,), {"axis": _one_axis(x, dim, "softmax")})


def log_softmax(x, dim=None, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        x = x.to(dtypes.float32)
    return bind(log_softmax_p, (x,), {"axis": _one_axis(x, dim, "log_softmax")})


def sum_to(g, shape: tuple):
    """Sum ``g`` down to ``shape``: the adjoint of broadcasting ``shape`` up to ``g.shape``."""
    shape = tuple(shape)
    gs = g.shape
    if tuple(gs) == shape:
        return g
    lead = len(gs) - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and gs[i + lead] != 1)
    out = bind(sum_p, (g,), {"axes": axes, "keepdims": True}) if axes else g
    return reshape(out, shape)


def _cumsum_vjp(g, out, x, axis):
    # Each input reaches the outputs at and after it: a reversed cumulative sum of g, written
    # with jitgrad ops (so it differentiates again).
    return (sum(g, axis, keepdim=True) - cumsum(g, axis) + g,)


cumsum_p = register("cumsum", lambda x, axis: np.cumsum(x, axis=axis, dtype=x.dtype if
                                                        x.dtype.kind == "f" else np.int64),
                    lambda x, axis: Aval(x.shape, x.dtype if x.dtype.is_floating_point
                                         else dtypes.int64),
                    _cumsum_vjp, saves="none", kind="scan")


def cumsum(x, dim, dtype=None):
    """Cumulative sum along ``dim``, as torch (bools sum as int64).

    >>> import jitgrad
    >>> jitgrad.tensor([1, 2, 3]).cumsum(0)
    tensor([1, 3, 6])
    """
    if dtype is not None:
        x = x.to(dtype)
    axis = _rules.norm_axis(dim, x.ndim, "cumsum")
    if x.ndim == 0:
        return x.clone()
    return bind(cumsum_p, (x,), {"axis": axis})


def cumprod(x, dim, dtype=None):
    """Cumulative product along ``dim``, as torch (integers and bools multiply as int64).

    A composite: output k is the product of a row that holds the first k + 1 elements and ones
    after them, so the gradient is ``prod``'s, exact where elements are 0. It costs n^2 along
    ``dim`` (cumulative products run along short dimensions).

    >>> import jitgrad
    >>> jitgrad.tensor([1.0, 2.0, 3.0]).cumprod(0)
    tensor([1., 2., 6.])
    """
    if dtype is not None:
        x = x.to(dtype)
    axis = _rules.norm_axis(dim, x.ndim, "cumprod")
    if x.ndim == 0:
        return x.clone() if x.dtype.is_floating_point else x.to(dtypes.int64)
    from jitgrad.ops.shape import _const, movedim
    xm = movedim(x, axis, -1)
    n = xm.shape[-1]
    upto = _const(np.tril(np.ones((n, n), dtype=bool)))  # [k, j]: j <= k
    rows = where(upto, xm.unsqueeze(-2), 1)  # (..., n, n)
    return movedim(prod(rows, -1), -1, axis)


for _f in ("sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "prod", "norm", "var",
           "std", "logsumexp", "softmax", "log_softmax", "cumsum", "cumprod"):
    globals()[_f] = numpy_keywords(globals()[_f])

from jitgrad.ops.elementwise import abs, exp, isinf, log, sqrt, where  # noqa: E402,A004
from jitgrad.ops.shape import expand, reshape  # noqa: E402
from jitgrad.tensor import Tensor  # noqa: E402
