"""Statistics, order statistics, searches, histograms and numerical integration, as torch's:
``median kthvalue mode quantile cummax logcumsumexp searchsorted cov trapezoid gradient ...``.

Every op that yields a tensor of fixed shape is a composition of jitgrad's ops, so it
differentiates, traces and compiles as those do:

- order statistics (``median``, ``kthvalue``, ``mode``, ``quantile``) read a stable ``sort``
  and ``gather`` the input at the index they pick, so the gradient goes to that element (torch's
  rule), and ties pick the element a stable sort puts there;
- running scans (``cummax``, ``cummin``, ``logcumsumexp``) are log-depth prefix scans: at step
  ``s`` each position combines with the one ``s`` before it, for ``s = 1, 2, 4, ...``;
- ``searchsorted``, ``bucketize`` and ``isin`` are a binary search run for every element at
  once: ``ceil(log2(n + 1))`` rounds of ``gather`` and compare.

``bincount``, ``histogramdd`` (and ``histc``, ``histogram``) return a shape that depends on the
data or count into bins with no gradient: they run in NumPy and refuse, by name, to run inside
a compiled function.

>>> import jitgrad
>>> x = jitgrad.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]], requires_grad=True)
>>> jitgrad.median(x, dim=1)
median(values=tensor([2., 4.], grad_fn=<...>), indices=tensor([2, 2]))
>>> x.cummax(1).values
tensor([[3., 3., 3.],
        [0., 5., 5.]], grad_fn=<...>)
>>> jitgrad.quantile(x, 0.25, dim=1).sum().backward()
>>> x.grad
tensor([[0.0000, 0.5000, 0.5000],
        [0.5000, 0.0000, 0.5000]])
>>> jitgrad.searchsorted(jitgrad.tensor([1.0, 2.0, 3.0]), jitgrad.tensor([0.5, 2.0, 9.0]))
tensor([0, 1, 3])
"""

from __future__ import annotations

import builtins
import warnings
from collections import namedtuple

import numpy as np

from jitgrad import dtypes
from jitgrad.errors import TraceError
from jitgrad.ops import _rules
from jitgrad.ops import reduce as _red
from jitgrad.ops.elementwise import (_tensor as _input, clamp, exp, floor, isfinite, isnan, log1p,
                                     logical_not, maximum, minimum, sqrt, where)
from jitgrad.ops.indexing import gather
from jitgrad.ops.rounding import round as _round
from jitgrad.ops.shape import _const, cat, movedim, narrow, reshape, squeeze, unsqueeze
from jitgrad.ops.sorting import argsort, sort
from jitgrad.tensor import Tensor

__all__ = [
    "aminmax", "bincount", "bucketize", "searchsorted", "count_nonzero", "corrcoef", "cov",
    "cummax", "cummin", "logcumsumexp", "histogramdd", "kthvalue", "median", "nanmedian", "mode",
    "msort", "nanmean", "nansum", "quantile", "nanquantile", "std_mean", "var_mean", "trapezoid",
    "trapz", "cumulative_trapezoid", "gradient", "renorm", "isin",
]

# torch.return_types.*: (values, indices) pairs, also by name.
AminmaxResult = namedtuple("aminmax", ["min", "max"])
CummaxResult = namedtuple("cummax", ["values", "indices"])
CumminResult = namedtuple("cummin", ["values", "indices"])
KthvalueResult = namedtuple("kthvalue", ["values", "indices"])
MedianResult = namedtuple("median", ["values", "indices"])
NanmedianResult = namedtuple("nanmedian", ["values", "indices"])
ModeResult = namedtuple("mode", ["values", "indices"])
HistogramddResult = namedtuple("histogramdd", ["hist", "bin_edges"])


def _traced(*xs) -> bool:
    return any(isinstance(x, Tensor) and x._ir is not None for x in xs)


def _eager_only(op: str, *xs) -> None:
    if _traced(*xs):
        raise TraceError(f"{op}() inside a compiled function: its result's shape depends on "
                         "the values, which compiled code must know in advance; call it outside")


def _iota(n: int, ndim: int):
    """0, 1, ..., n-1 along the last of ``ndim`` dimensions (int64)."""
    return _const(np.arange(n, dtype=np.int64).reshape((1,) * (ndim - 1) + (n,)))


def _is_float(x) -> bool:
    return x.dtype.is_floating_point


# -- min and max together -----------------------------------------------------------------------
def aminmax(input, *, dim=None, keepdim: bool = False):  # noqa: A002
    """``(min, max)`` over ``dim`` (every element by default); ties share the gradient evenly,
    as ``amin``/``amax``.

    >>> import jitgrad
    >>> jitgrad.aminmax(jitgrad.tensor([[1, 5], [3, 2]]), dim=0)
    aminmax(min=tensor([1, 2]), max=tensor([3, 5]))
    """
    x = _input(input, "aminmax")
    if dim is not None:
        d = _rules.norm_axis(dim, x.ndim, "aminmax")
        if x.ndim and x.shape[d] == 0:
            raise IndexError(f"aminmax(): cannot compute aminmax over an empty dimension "
                             f"(dim {d} of a tensor of shape {tuple(x.shape)})")
        return AminmaxResult(_red.amin(x, d, keepdim), _red.amax(x, d, keepdim))
    if x.numel() == 0:
        raise RuntimeError("aminmax(): cannot compute aminmax of an empty tensor as the "
                           "operation has no identity")
    lo, hi = _red.amin(x), _red.amax(x)
    if keepdim:
        lo, hi = reshape(lo, (1,) * x.ndim), reshape(hi, (1,) * x.ndim)
    return AminmaxResult(lo, hi)


# -- prefix scans -------------------------------------------------------------------------------
def _last(x, d: int):
    return movedim(x, d, -1) if x.ndim > 1 and d != x.ndim - 1 else x


def _back(x, d: int, ndim: int):
    return movedim(x, -1, d) if ndim > 1 and d != ndim - 1 else x


def _scan(v, combine):
    """Inclusive prefix scan of ``v`` along its last dimension: ``combine(earlier, later)``
    must be associative. Hillis-Steele: log2(n) rounds over the whole tensor."""
    n = v.shape[-1]
    s = 1
    while s < n:
        head = narrow(v, -1, 0, s)
        v = cat([head, combine(narrow(v, -1, 0, n - s), narrow(v, -1, s, n - s))], -1)
        s *= 2
    return v


def _running_extreme(input, dim, op: str, beats, result):
    x = _input(input, op)
    d = _rules.norm_axis(dim, x.ndim, op)
    if x.ndim == 0:
        return result(x.clone(), _const(np.zeros((), dtype=np.int64)))
    xl = _last(x.detach(), d)
    n = xl.shape[-1]
    idx = _iota(n, xl.ndim).expand(*xl.shape) if n else _const(np.zeros(xl.shape, np.int64))
    nan_aware = _is_float(x)

    def combine(earlier, later):
        (ev, ei), (lv, li) = earlier, later
        # The earlier element wins only when strictly better, so ties go to the later index;
        # NaN beats every number and a later NaN beats an earlier one (torch's indices).
        win = beats(ev, lv)
        if nan_aware:
            win = win | (isnan(ev) & logical_not(isnan(lv)))
        return where(win, ev, lv), where(win, ei, li)

    # The scan carries (value, index) pairs: stack them as two tensors scanned together.
    vals, inds = xl, idx
    s = 1
    while s < n:
        m = n - s
        nv, ni = combine((narrow(vals, -1, 0, m), narrow(inds, -1, 0, m)),
                         (narrow(vals, -1, s, m), narrow(inds, -1, s, m)))
        vals = cat([narrow(vals, -1, 0, s), nv], -1)
        inds = cat([narrow(inds, -1, 0, s), ni], -1)
        s *= 2
    inds = _back(inds, d, x.ndim)
    return result(gather(x, d, inds), inds)


def cummax(input, dim: int):  # noqa: A002
    """``(values, indices)``: the running maximum along ``dim`` and where it was found (the
    last of equal maxima; NaN counts as the largest). The gradient goes to that element.

    >>> import jitgrad
    >>> jitgrad.cummax(jitgrad.tensor([1, 3, 2, 3]), 0)
    cummax(values=tensor([1, 3, 3, 3]), indices=tensor([0, 1, 1, 3]))
    """
    return _running_extreme(input, dim, "cummax", lambda a, b: a > b, CummaxResult)


def cummin(input, dim: int):  # noqa: A002
    """``(values, indices)``: the running minimum along ``dim`` and where it was found (the
    last of equal minima; NaN propagates as in ``cummax``).

    >>> import jitgrad
    >>> jitgrad.cummin(jitgrad.tensor([3.0, 1.0, 2.0, 1.0]), 0).indices
    tensor([0, 1, 1, 3])
    """
    return _running_extreme(input, dim, "cummin", lambda a, b: a < b, CumminResult)


def _logaddexp(a, b):
    hi, lo = maximum(a, b), minimum(a, b)
    # hi == lo covers the equal infinities (inf - inf would be NaN); there the derivative is
    # 1/2 each, which maximum/minimum's even split of ties gives.
    eq = hi == lo
    return hi + log1p(exp(where(eq, 0.0, lo) - where(eq, 0.0, hi)))


def logcumsumexp(input, dim: int):  # noqa: A002
    """``log(cumsum(exp(input), dim))`` without overflow: a prefix scan of ``logaddexp``.

    >>> import jitgrad
    >>> jitgrad.logcumsumexp(jitgrad.tensor([0.0, 0.0, 1000.0]), 0)
    tensor([0.0000e+00, 6.9315e-01, 1.0000e+03])
    """
    x = _input(input, "logcumsumexp")
    d = _rules.norm_axis(dim, x.ndim, "logcumsumexp")
    if not _is_float(x):
        raise RuntimeError(f"logcumsumexp(): expected a floating point tensor, got "
                           f"{x.dtype.name}")
    if x.ndim == 0:
        return x.clone()
    xl = _last(x, d)
    if xl.shape[-1] == 0:
        return x.clone()
    # The value is the plain scan's: each step rounds at its own result's scale (log 2 next to
    # 1000 stays 0.6931 in float32). The gradient flows through the scan of the slice shifted
    # by its largest value, whose exp(x - out) factors do not cancel at the inputs' scale.
    c = _red.amax(xl.detach(), -1, keepdim=True)
    c = where(isfinite(c), c, 0.0)
    shifted = _scan(xl - c, _logaddexp) + c
    plain = _scan(xl.detach(), _logaddexp)
    fix = plain - shifted.detach()
    out = where(isfinite(fix), shifted + fix, shifted)  # -inf and inf: the shifted scan's
    return _back(out, d, x.ndim)


# -- binary search ------------------------------------------------------------------------------
def _bound(seq, v, right: bool, nan_largest: bool = False):
    """For each element of ``v``, the first index ``i`` of the sorted last dimension of ``seq``
    with ``seq[i] > v`` (``right``) or ``seq[i] >= v``: the lower/upper bound binary search,
    run on every element at once. ``seq`` is 1-D, or has ``v``'s leading dimensions.
    ``nan_largest`` orders NaN after every number (as ``sort`` puts it)."""
    m = seq.shape[-1]
    lo = _const(np.zeros(v.shape, dtype=np.int64))
    hi = _const(np.full(v.shape, m, dtype=np.int64))
    if m == 0:
        return lo
    one_d = seq.ndim == 1
    for _ in range(int(m).bit_length()):
        active = lo < hi
        mid = clamp((lo + hi) // 2, max=m - 1)
        at = seq[mid] if one_d else gather(seq, -1, mid)
        # NaN compares false either way, as in torch's search: ``not (at >= v)`` moves right.
        if nan_largest:
            go_right = (at < v) | (isnan(v) & logical_not(isnan(at)))
        else:
            go_right = logical_not(at > v) if right else logical_not(at >= v)
        lo = where(active & go_right, mid + 1, lo)
        hi = where(active & logical_not(go_right), mid, hi)
    return lo


def _search_value(v, op: str):
    if isinstance(v, Tensor):
        return v
    if isinstance(v, (bool, int, float, np.number)):
        from jitgrad.factories import tensor
        return tensor(v)
    raise TypeError(f"{op}(): argument 'input' must be a Tensor or a number, not "
                    f"{type(v).__name__}")


def searchsorted(sorted_sequence, input, *, out_int32: bool = False,  # noqa: A002
                 right: bool = False, side: str | None = None, sorter=None):
    """Where each element of ``input`` would go in ``sorted_sequence`` (its last dimension,
    sorted ascending) to keep it sorted: the first index whose element is ``>=`` (``right``:
    ``>``) it. A 1-D sequence serves every element; otherwise the leading dimensions match.

    >>> import jitgrad
    >>> seq = jitgrad.tensor([1, 3, 3, 5])
    >>> jitgrad.searchsorted(seq, jitgrad.tensor([3, 4])), jitgrad.searchsorted(seq, 3, right=True)
    (tensor([1, 3]), tensor(3))
    """
    seq = _input(sorted_sequence, "searchsorted")
    scalar = not isinstance(input, Tensor)
    v = _search_value(input, "searchsorted")
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"searchsorted(): side can only be 'left' or 'right' but got "
                               f"{side!r}")
        if right and side == "left":
            raise RuntimeError("searchsorted(): side and right can't be set to opposites, got "
                               "side of left while right was True")
        right = side == "right"
    if seq.ndim == 0:
        raise RuntimeError("searchsorted(): boundaries tensor should have 1 or more dimensions")
    if seq.ndim > 1 and (scalar or seq.shape[:-1] != v.shape[:-1]):
        raise RuntimeError(f"searchsorted(): boundaries tensor should be 1 dimension or the "
                           f"first N-1 dimensions of boundaries tensor and input value tensor "
                           f"must match, but we got boundaries tensor {list(seq.shape)} and "
                           f"input value tensor {list(v.shape)}")
    if sorter is not None:
        if not isinstance(sorter, Tensor) or sorter.dtype.is_floating_point or \
                sorter.dtype is dtypes.bool_:
            raise RuntimeError("searchsorted(): sorter must be a tensor of long dtype")
        if tuple(sorter.shape) != tuple(seq.shape):
            raise RuntimeError(f"searchsorted(): boundary and sorter must have the same size, "
                               f"but got boundary tensor {list(seq.shape)} and got sorter "
                               f"tensor {list(sorter.shape)}")
        seq = gather(seq, -1, sorter.to(dtypes.int64))
    out = _bound(seq.detach(), v.detach(), bool(right))
    return out.to(dtypes.int32) if out_int32 else out


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False):  # noqa: A002
    """The index of the bucket of each element of ``input`` between the sorted 1-D
    ``boundaries``: ``boundaries[i-1] < x <= boundaries[i]`` (``right``: ``<= x <``).

    >>> import jitgrad
    >>> jitgrad.bucketize(jitgrad.tensor([0.5, 1.0, 7.0]), jitgrad.tensor([1.0, 5.0]))
    tensor([0, 0, 2])
    """
    b = _input(boundaries, "bucketize")
    if b.ndim != 1:
        raise RuntimeError(f"bucketize(): boundaries tensor must be 1 dimension but got dim("
                           f"{b.ndim})")
    return searchsorted(b, input, out_int32=out_int32, right=right)


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False):
    """Whether each element of ``elements`` occurs in ``test_elements`` (either may be a
    number): a bool tensor of ``elements``' shape; ``invert`` negates it.

    >>> import jitgrad
    >>> jitgrad.isin(jitgrad.tensor([1, 2, 3, 4]), jitgrad.tensor([4, 2]))
    tensor([False,  True, False,  True])
    """
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin(): expected at least one of elements and test_elements to be a "
                        "Tensor")
    e = _search_value(elements, "isin")
    t = _search_value(test_elements, "isin").detach().reshape(-1)
    if t.numel() == 0:
        found = _const(np.zeros(tuple(e.shape), dtype=bool))
    else:
        t = sort(t).values
        ed = e.detach()
        nan_aware = t.dtype.is_floating_point or ed.dtype.is_floating_point
        pos = clamp(_bound(t, ed, False, nan_aware), max=t.shape[0] - 1)
        found = t[pos] == ed
    return logical_not(found) if invert else found


# -- counting -----------------------------------------------------------------------------------
def count_nonzero(input, dim=None):  # noqa: A002
    """The number of nonzero elements over ``dim`` (an int, a tuple, or every dimension).

    >>> import jitgrad
    >>> jitgrad.count_nonzero(jitgrad.tensor([[0, 1], [2, 3]]), dim=0)
    tensor([1, 2])
    """
    x = _input(input, "count_nonzero")
    return _red.sum(x != 0, dim)


def bincount(input, weights=None, minlength: int = 0):  # noqa: A002
    """How many times each value 0, 1, ... occurs in the 1-D non-negative integer ``input``
    (with ``weights``: their sum per value), at least ``minlength`` long. Eager only (the
    length depends on the data); not differentiable.

    >>> import jitgrad
    >>> jitgrad.bincount(jitgrad.tensor([0, 2, 2, 5]))
    tensor([1, 0, 2, 0, 0, 1])
    """
    x = _input(input, "bincount")
    _eager_only("bincount", x, weights)
    if x.ndim != 1 or _is_float(x) or x.dtype is dtypes.bool_:
        raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs, got a "
                           f"{x.ndim}-d {x.dtype.name} tensor")
    _rules._not_bool(minlength, "bincount", "minlength")
    if int(minlength) < 0:
        raise RuntimeError(f"bincount(): minlength should be >= 0, got {minlength}")
    v = x._value.astype(np.int64)
    if v.size and v.min() < 0:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs, got a "
                           "negative value")
    if weights is None:
        return Tensor._wrap(np.bincount(v, minlength=int(minlength)).astype(np.int64))
    w = _input(weights, "bincount")
    if w.ndim != 1 or w.shape[0] != x.shape[0]:
        raise RuntimeError(f"bincount(): weights should be 1-d and have the same length as "
                           f"input, got weights of shape {list(w.shape)} and input of shape "
                           f"{list(x.shape)}")
    dt = w.dtype if _is_float(w) else dtypes.float64  # integer weights count in float64
    out = np.bincount(v, weights=w.detach()._value.astype(np.float64), minlength=int(minlength))
    return Tensor._wrap(out.astype(dt.np))


def histogramdd(input, bins=10, *, range=None, weight=None, density: bool = False):  # noqa: A002
    """The D-dimensional histogram of the points in the last dimension of ``input`` (shape
    ``(..., D)``): ``(hist, bin_edges)``, one tuple of edges per dimension; ``bins`` is an int,
    one int per dimension, or one tensor of edges per dimension. Eager only, not
    differentiable.

    >>> import jitgrad
    >>> pts = jitgrad.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    >>> jitgrad.histogramdd(pts, bins=[2, 2]).hist
    tensor([[1., 0.],
            [1., 1.]])
    """
    x = _input(input, "histogramdd")
    _eager_only("histogramdd", x, weight, *(bins if isinstance(bins, (list, tuple)) else ()))
    if not _is_float(x):
        raise RuntimeError(f"histogramdd(): input tensor should have a floating dtype, got "
                           f"{x.dtype.name}")
    if x.ndim < 1:
        raise RuntimeError("histogramdd(): input tensor should have at least 1 dimension")
    dims = x.shape[-1]
    pts = x.detach()._value.reshape(-1, dims)
    if isinstance(bins, Tensor):
        raise TypeError("histogramdd(): bins must be an int, a sequence of ints or a sequence "
                        "of tensors")
    if isinstance(bins, (list, tuple)):
        if len(bins) != dims:
            raise RuntimeError(f"histogramdd(): expected {dims} sequences of bin edges or bin "
                               f"counts, one per dimension, got {len(bins)}")
        np_bins = [b.detach()._value if isinstance(b, Tensor) else int(b) for b in bins]
    else:
        np_bins = int(bins)
    np_range = None
    if range is not None:
        if len(range) != 2 * dims:
            raise RuntimeError(f"histogramdd(): range should have {2 * dims} elements, got "
                               f"{len(range)}")
        np_range = [(float(range[2 * i]), float(range[2 * i + 1])) for i in builtins.range(dims)]
    w = None if weight is None else weight.detach()._value.reshape(-1)
    dt = x.dtype.np
    hist, edges = _np_histogramdd(pts, np_bins, np_range, w, density, dt)
    return HistogramddResult(Tensor._wrap(hist.astype(dt)),
                             tuple(Tensor._wrap(e.astype(dt)) for e in edges))



def _np_upper_bound(edges: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The first index whose edge is > v, by the plain binary search (also on edges that are
    not sorted, where NumPy's searchsorted answers differently)."""
    lo = np.zeros(v.shape, dtype=np.int64)
    hi = np.full(v.shape, edges.size, dtype=np.int64)
    for _ in builtins.range(int(edges.size).bit_length()):
        active = lo < hi
        mid = np.minimum((lo + hi) // 2, edges.size - 1)
        right = ~(edges[mid] > v)
        lo = np.where(active & right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)
    return lo


def _np_histogramdd(pts, bins, rng, weights, density: bool, dt):
    dims = pts.shape[1]
    edges = []
    for i in builtins.range(dims):
        b = bins[i] if isinstance(bins, list) else bins
        if isinstance(b, np.ndarray):
            edges.append(b.astype(dt))
            continue
        if int(b) < 1:
            raise RuntimeError(f"histogramdd(): bins must be > 0, but got {b} for dimension {i}")
        if rng is not None:
            lo, hi = rng[i]
        elif pts.shape[0]:
            lo, hi = float(pts[:, i].min()), float(pts[:, i].max())
        else:  # no points: [0, 1], as torch
            lo, hi = 0.0, 1.0
        if lo > hi:
            raise RuntimeError(f"histogramdd(): max must be larger than min, got min={lo} "
                               f"max={hi} for dimension {i}")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges.append(np.linspace(lo, hi, int(b) + 1).astype(dt))
    keep = np.ones(pts.shape[0], dtype=bool)
    where_ = []
    for i, e in enumerate(edges):
        v = pts[:, i]
        keep &= (v >= e[0]) & (v <= e[-1])
        # The last bin holds its right edge too.
        where_.append(np.minimum(_np_upper_bound(e, v) - 1, e.size - 2))
    hist = np.zeros(tuple(e.size - 1 for e in edges), dtype=np.float64)
    w = np.ones(pts.shape[0]) if weights is None else weights.astype(np.float64)
    np.add.at(hist, tuple(p[keep] for p in where_), w[keep])
    if density:
        vol = np.ones(())
        for e in edges:
            vol = np.multiply.outer(vol, np.diff(e).astype(np.float64))
        hist = hist / hist.sum() / vol
    return hist.astype(dt), edges


# -- order statistics ---------------------------------------------------------------------------
def _pick(x, d: int, pos, keepdim: bool, result):
    """``(values, indices)`` of the element at sorted position ``pos`` (an int64 tensor shaped
    like ``x`` with dim ``d`` of size 1, counted along the stable ascending order)."""
    if x.ndim == 0:
        return result(x.clone(), _const(np.zeros((), dtype=np.int64)))
    order = argsort(x.detach(), d)
    idx = gather(order, d, pos)
    vals = gather(x, d, idx)
    if not keepdim:
        vals, idx = squeeze(vals, d), squeeze(idx, d)
    return result(vals, idx)


def _reduce_dim(x, dim, op: str):
    d = _rules.norm_axis(dim, x.ndim, op)
    if x.ndim and x.shape[d] == 0:
        raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")
    return d


def _kept_shape(x, d: int) -> tuple:
    return tuple(1 if i == d else s for i, s in enumerate(x.shape))


def kthvalue(input, k: int, dim: int = -1, keepdim: bool = False):  # noqa: A002
    """``(values, indices)`` of the ``k``-th smallest element along ``dim`` (from 1; NaN
    counts as the largest). Among equal values it is the one a stable sort puts ``k``-th
    (torch's CPU kernel may pick another of them).

    >>> import jitgrad
    >>> jitgrad.kthvalue(jitgrad.tensor([4.0, 1.0, 3.0]), 2)
    kthvalue(values=tensor(3.), indices=tensor(2))
    """
    x = _input(input, "kthvalue")
    d = _rules.norm_axis(dim, x.ndim, "kthvalue")
    _rules._not_bool(k, "kthvalue", "k")
    n = x.shape[d] if x.ndim else 1
    if not 1 <= int(k) <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d} "
                           f"(k={k}, size {n})")
    pos = _const(np.full(_kept_shape(x, d), int(k) - 1, dtype=np.int64))
    return _pick(x, d, pos, _rules.check_keepdim(keepdim, "kthvalue"), KthvalueResult)


def _nan_count(x, d: int):
    if not _is_float(x):
        return _const(np.zeros(_kept_shape(x, d), dtype=np.int64))
    return _red.sum(isnan(x.detach()), d, keepdim=True)


def _median_pos(x, d: int, ignore_nan: bool):
    """The sorted position of the (lower) median along ``d``: of every element, or with
    ``ignore_nan`` of the numbers; a slice with a NaN (``median``) gives its first NaN."""
    n = x.shape[d]
    nans = _nan_count(x, d)
    if ignore_nan:
        # All-NaN slices: position 0, a NaN.
        return clamp((n - nans - 1) // 2, min=0)
    return where(nans > 0, n - nans, (n - 1) // 2)


def _global_median(x, ignore_nan: bool, op: str):
    if x.numel() == 0:
        return _const(np.array(np.nan, dtype=x.dtype.np)) if _is_float(x) else \
            _fail_empty(op)
    flat = reshape(x, (-1,))
    pos = reshape(_median_pos(flat, 0, ignore_nan), (1,))
    v = gather(flat.detach(), 0, gather(argsort(flat.detach()), 0, pos))
    # The gradient shares out evenly among the elements equal to the median (torch's rule for
    # the median of a whole tensor): amax of those elements has that value and that gradient.
    # (-inf medians take amin of them instead, the only case where the fill could tie.)
    hit = (flat == v) | (isnan(flat) & isnan(v)) if _is_float(x) else flat == v
    if not _is_float(x):
        return reshape(v, ())
    up = _red.amax(where(hit, flat, float("-inf")))
    down = _red.amin(where(hit, flat, float("inf")))
    return where(reshape(v, ()) == float("-inf"), down, up)


def _fail_empty(op: str):
    raise IndexError(f"{op}(): cannot compute the median of an empty integer tensor")


def _median(input, dim, keepdim, ignore_nan: bool, op: str, result):
    x = _input(input, op)
    if dim is None:
        return _global_median(x, ignore_nan, op)
    d = _reduce_dim(x, dim, op)
    keepdim = _rules.check_keepdim(keepdim, op)
    if x.ndim == 0:
        return result(x.clone(), _const(np.zeros((), dtype=np.int64)))
    return _pick(x, d, _median_pos(x, d, ignore_nan), keepdim, result)


def median(input, dim=None, keepdim: bool = False):  # noqa: A002
    """The lower median: of every element (a tensor), or along ``dim`` as ``(values,
    indices)``. A NaN makes the median NaN (``nanmedian`` skips them). Among equal values the
    index is the one a stable sort puts in the middle.

    >>> import jitgrad
    >>> jitgrad.median(jitgrad.tensor([4.0, 1.0, 3.0, 2.0]))
    tensor(2.)
    """
    return _median(input, dim, keepdim, False, "median", MedianResult)


def nanmedian(input, dim=None, keepdim: bool = False):  # noqa: A002
    """``median`` of the elements that are not NaN (NaN where every one is).

    >>> import jitgrad
    >>> jitgrad.nanmedian(jitgrad.tensor([float("nan"), 1.0, 3.0]))
    tensor(1.)
    """
    return _median(input, dim, keepdim, True, "nanmedian", NanmedianResult)


def mode(input, dim: int = -1, keepdim: bool = False):  # noqa: A002
    """``(values, indices)``: the most frequent value along ``dim`` (the smallest of equally
    frequent ones) and the index of its last occurrence, as torch.

    >>> import jitgrad
    >>> jitgrad.mode(jitgrad.tensor([3, 1, 3, 1, 2]))
    mode(values=tensor(1), indices=tensor(3))
    """
    x = _input(input, "mode")
    d = _reduce_dim(x, dim, "mode")
    keepdim = _rules.check_keepdim(keepdim, "mode")
    if x.ndim == 0:
        return ModeResult(x.clone(), _const(np.zeros((), dtype=np.int64)))
    xl = _last(x.detach(), d)
    order = argsort(xl, -1)
    s = gather(xl, -1, order)
    n = s.shape[-1]
    # Runs of equal values in sorted order (NaN never equals itself: a run of its own). The
    # running count peaks first at the end of the smallest most frequent value's run, which
    # is also its last occurrence (the sort is stable).
    pos = _iota(n, s.ndim)
    if n > 1:
        starts = cat([_const(np.ones(s.shape[:-1] + (1,), dtype=bool)),
                      narrow(s, -1, 1, n - 1) != narrow(s, -1, 0, n - 1)], -1)
    else:
        starts = _const(np.ones(tuple(s.shape), dtype=bool))
    run_start = _scan(where(starts, pos, 0), maximum)
    count = pos - run_start
    best = unsqueeze(_red.argmax(count, -1), -1)
    idx = _back(gather(order, -1, best), d, x.ndim)
    vals = gather(x, d, idx)
    if not keepdim:
        vals, idx = squeeze(vals, d), squeeze(idx, d)
    return ModeResult(vals, idx)


def msort(input):  # noqa: A002
    """``input`` sorted along its first dimension (``sort(input, 0).values``).

    >>> import jitgrad
    >>> jitgrad.msort(jitgrad.tensor([[2, 1], [0, 3]]))
    tensor([[0, 1],
            [2, 3]])
    """
    return sort(_input(input, "msort"), 0).values


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _lerp(a, b, w):
    if not isinstance(w, Tensor):
        return a + w * (b - a) if w < 0.5 else b - (b - a) * (1 - w)
    # Two forms, each exact at its end (w = 0 gives a, w = 1 gives b), as torch's lerp.
    return where(w < 0.5, a + w * (b - a), b - (b - a) * (1 - w))


def _quantile(input, q, dim, keepdim, interpolation: str, ignore_nan: bool, op: str):
    x = _input(input, op)
    if not _is_float(x):
        raise RuntimeError(f"{op}() input tensor must be either float or double dtype, got "
                           f"{x.dtype.name}")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{op}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest. Got {interpolation!r}")
    keepdim = _rules.check_keepdim(keepdim, op)
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise RuntimeError(f"{op}() q must be a scalar or 1D tensor, got {q.ndim} dims")
        if q.dtype is not x.dtype:
            raise RuntimeError(f"{op}() q tensor must be same dtype as the input tensor, got "
                               f"{q.dtype.name} and {x.dtype.name}")
        qt, q_dim = q, q.ndim == 1
        bad = q._ir is None and ((q._value < 0) | (q._value > 1)).any()
    elif isinstance(q, (int, float, np.number)) and not isinstance(q, bool):
        qt, q_dim = _const(np.array(q, dtype=x.dtype.np)), False
        bad = not 0 <= float(q) <= 1
    else:
        raise TypeError(f"{op}(): argument 'q' must be a float or a Tensor, not "
                        f"{type(q).__name__}")
    if bad:
        raise RuntimeError(f"{op}() q values must be in the range [0, 1]")
    if x.numel() == 0:
        raise RuntimeError(f"{op}() input tensor must be non-empty")
    if dim is None:
        xs, out_shape = reshape(x, (-1,)), ((1,) * x.ndim if keepdim else ())
    else:
        d = _rules.norm_axis(dim, x.ndim, op)
        xs = _last(x, d) if x.ndim else reshape(x, (1,))
        out_shape = _rules.reduced_shape(tuple(x.shape), (d,) if x.ndim else (), keepdim)
    s = sort(xs, -1).values  # NaN last
    n = s.shape[-1]
    lead = tuple(s.shape[:-1])
    nq = qt.shape[0] if q_dim else 1
    qv = reshape(qt, (nq,) + (1,) * len(lead) + (1,))
    s = unsqueeze(s, 0).expand(nq, *lead, n)
    nans = _red.sum(isnan(s.detach()), -1, keepdim=True)
    if ignore_nan:
        ranks = qv * (n - nans - 1).to(x.dtype)
        ranks = where(ranks < 0, 0.0, ranks)  # all NaN: position 0, a NaN
    else:
        ranks = where(nans > 0, float(n - 1), qv * float(n - 1))  # a NaN: the last, a NaN
    ranks = ranks.expand(nq, *lead, 1)
    if interpolation == "lower":
        ranks = floor(ranks)
    elif interpolation == "higher":
        ranks = -floor(-ranks)
    elif interpolation == "nearest":
        ranks = _round(ranks)
    below = floor(ranks)
    out = gather(s, -1, below.to(dtypes.int64))
    if interpolation in ("linear", "midpoint"):
        w = ranks - below if interpolation == "linear" else 0.5
        above = gather(s, -1, (-floor(-ranks)).to(dtypes.int64))
        out = _lerp(out, above, w)
    out = reshape(out, ((nq,) if q_dim else ()) + out_shape)
    return out


def quantile(input, q, dim=None, keepdim: bool = False, *,  # noqa: A002
             interpolation: str = "linear"):
    """The ``q``-th quantiles (``q`` a number or a 1-D tensor in [0, 1], whose values make a
    new first dimension) of every element or along ``dim``, interpolating between the two
    nearest sorted values (``interpolation``: linear, lower, higher, midpoint, nearest), as
    torch. A NaN makes the result NaN (``nanquantile`` skips them).

    >>> import jitgrad
    >>> jitgrad.quantile(jitgrad.tensor([1.0, 2.0, 3.0, 4.0]), jitgrad.tensor([0.25, 0.5]))
    tensor([1.7500, 2.5000])
    """
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input, q, dim=None, keepdim: bool = False, *,  # noqa: A002
                interpolation: str = "linear"):
    """``quantile`` of the elements that are not NaN (NaN where every one is).

    >>> import jitgrad
    >>> jitgrad.nanquantile(jitgrad.tensor([1.0, float("nan"), 3.0]), 0.5)
    tensor(2.)
    """
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


# -- NaN-skipping reductions, moments -----------------------------------------------------------
def nansum(input, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: A002
    """``sum`` treating NaN as 0 (their gradient is 0).

    >>> import jitgrad
    >>> jitgrad.nansum(jitgrad.tensor([1.0, float("nan"), 2.0]))
    tensor(3.)
    """
    x = _input(input, "nansum")
    if dtype is not None:
        x = x.to(dtype)
    if _is_float(x):
        x = where(isnan(x), 0.0, x)
    return _red.sum(x, dim, keepdim)


def nanmean(input, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: A002
    """``mean`` of the elements that are not NaN (NaN where there are none).

    >>> import jitgrad
    >>> jitgrad.nanmean(jitgrad.tensor([1.0, float("nan"), 2.0]))
    tensor(1.5000)
    """
    x = _input(input, "nanmean")
    if dtype is not None:
        x = x.to(dtype)
    if not _is_float(x):
        raise RuntimeError(f"nanmean(): expected input to have floating point dtype but got "
                           f"{x.dtype.name}")
    count = _red.sum(logical_not(isnan(x)), dim, keepdim)
    return nansum(x, dim, keepdim) / count.to(x.dtype)


def _moment_mean(fn, input, dim, unbiased, keepdim, correction, op):
    x = _input(input, op)
    dim, ddof = _red._var_args(dim, unbiased, keepdim, correction, op)
    return fn(x, dim, keepdim=keepdim, correction=ddof), _red.mean(x, dim, keepdim)


def var_mean(input, dim=None, unbiased=None, keepdim: bool = False, *,  # noqa: A002
             correction=None):
    """``(var, mean)`` over ``dim``, with ``var``'s arguments.

    >>> import jitgrad
    >>> jitgrad.var_mean(jitgrad.tensor([1.0, 2.0, 3.0, 4.0]))
    (tensor(1.6667), tensor(2.5000))
    """
    return _moment_mean(_red.var, input, dim, unbiased, keepdim, correction, "var_mean")


def std_mean(input, dim=None, unbiased=None, keepdim: bool = False, *,  # noqa: A002
             correction=None):
    """``(std, mean)`` over ``dim``, with ``std``'s arguments.

    >>> import jitgrad
    >>> jitgrad.std_mean(jitgrad.tensor([1.0, 3.0]), correction=0)
    (tensor(1.), tensor(2.))
    """
    return _moment_mean(_red.std, input, dim, unbiased, keepdim, correction, "std_mean")


# -- covariance ---------------------------------------------------------------------------------
def cov(input, *, correction: int = 1, fweights=None, aweights=None):  # noqa: A002
    """The covariance matrix of the variables in the rows of ``input`` (observations in its
    columns; a 1-D input is one variable, giving a 0-d result), with ``correction`` (1:
    Bessel's) and integer frequency (``fweights``) and float observation (``aweights``)
    weights, as torch.

    >>> import jitgrad
    >>> jitgrad.cov(jitgrad.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]))
    tensor([[ 1., -1.],
            [-1.,  1.]])
    """
    x = _input(input, "cov")
    if x.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an "
                           f"input with {x.ndim} dimensions")
    if not _is_float(x):
        x = x.to(dtypes.float32)
    x2 = reshape(x, (1, -1)) if x.ndim < 2 else x
    n = x2.shape[1]
    w = None
    if fweights is not None:
        fw = _input(fweights, "cov")
        _check_weights(fw, n, "fweights")
        if _is_float(fw):
            raise RuntimeError(f"cov(): expected fweights to have integral dtype but got "
                               f"fweights with {fw.dtype.name} dtype")
        if fw._ir is None and (fw._value < 0).any():
            raise RuntimeError("cov(): fweights cannot be negative")
        w = fw
    if aweights is not None:
        aw = _input(aweights, "cov")
        _check_weights(aw, n, "aweights")
        if not _is_float(aw):
            raise RuntimeError(f"cov(): expected aweights to have floating point dtype but "
                               f"got aweights with {aw.dtype.name} dtype")
        if aw._ir is None and (aw._value < 0).any():
            raise RuntimeError("cov(): aweights cannot be negative")
        w = aw if w is None else w * aw
    if w is None:
        avg = _red.mean(x2, 1, keepdim=True)
        norm = _const(np.array(n - correction, dtype=x2.dtype.np))
    else:
        w_sum = _red.sum(w)
        avg = _red.sum(x2 * w, 1, keepdim=True) / w_sum
        norm = w_sum - correction if aweights is None else \
            w_sum - correction * _red.sum(w * aweights) / w_sum
    if not _traced(norm) and float(norm._value) <= 0:
        warnings.warn("cov(): degrees of freedom is <= 0. Correction should be strictly less "
                      "than the number of observations.", RuntimeWarning, stacklevel=2)
    norm = clamp(norm, min=0)
    xm = x2 - avg
    out = ((xm * w if w is not None else xm) @ xm.t()) / norm
    return reshape(out, ()) if x2.shape[0] == 1 else out  # one variable: a 0-d result


def _check_weights(w, n: int, name: str) -> None:
    if w.ndim > 1:
        raise RuntimeError(f"cov(): expected {name} to have one or fewer dimensions but got "
                           f"{name} with {w.ndim} dimensions")
    if w.numel() != n:
        raise RuntimeError(f"cov(): expected {name} to have the same numel as there are "
                           f"observations in the input but got {w.numel()} != {n}")


def corrcoef(input):  # noqa: A002
    """The Pearson correlation coefficients of the variables in the rows of ``input``: the
    covariance scaled by both standard deviations, clipped to [-1, 1].

    >>> import jitgrad
    >>> jitgrad.corrcoef(jitgrad.tensor([[0.0, 1.0, 2.0], [1.0, 3.0, 5.0]]))
    tensor([[1., 1.],
            [1., 1.]])
    """
    x = _input(input, "corrcoef")
    if x.ndim > 2:
        raise RuntimeError(f"corrcoef(): expected input to have two or fewer dimensions but "
                           f"got an input with {x.ndim} dimensions")
    c = cov(x)
    if c.ndim == 0:
        return c / c
    from jitgrad.ops.indexing import diagonal
    sd = sqrt(diagonal(c))
    c = c / reshape(sd, (-1, 1)) / reshape(sd, (1, -1))
    return clamp(c, -1, 1)


# -- integration and differentiation of samples -------------------------------------------------
def _float_y(y, op: str):
    y = _input(y, op)
    return y if _is_float(y) else y.to(dtypes.float32)


def _diff(x, d: int):
    n = x.shape[d]
    return narrow(x, d, 1, n - 1) - narrow(x, d, 0, n - 1)


def _spacing_along(x, y, d: int, op: str):
    """``x``'s differences lined up with ``y``'s pairs along ``d`` (a 1-D ``x`` runs along
    ``d``; any other broadcasts against ``y``)."""
    x = _input(x, op)
    if x.ndim == 1:
        if x.shape[0] != y.shape[d]:
            raise RuntimeError(f"{op}: There must be one `x` value for each sample point, got "
                               f"{x.shape[0]} x values and {y.shape[d]} samples along dim {d}")
        shape = [1] * y.ndim
        shape[d] = x.shape[0]
        return _diff(reshape(x, tuple(shape)), d)
    return _diff(x, d - y.ndim + x.ndim if x.ndim < y.ndim else d)


def _ends(y, d: int):
    n = y.shape[d]
    return narrow(y, d, 0, n - 1), narrow(y, d, 1, n - 1)


def trapezoid(y, x=None, *, dx=None, dim: int = -1):
    """The integral of the samples ``y`` along ``dim`` by the trapezoidal rule, at points
    ``x`` (1-D along ``dim``, or broadcasting against ``y``) or ``dx`` apart (default 1).

    >>> import jitgrad
    >>> jitgrad.trapezoid(jitgrad.tensor([1.0, 2.0, 4.0])), jitgrad.trapezoid(
    ...     jitgrad.tensor([1.0, 2.0, 4.0]), jitgrad.tensor([0.0, 1.0, 3.0]))
    (tensor(4.5000), tensor(7.5000))
    """
    y = _float_y(y, "trapezoid")
    if x is not None and dx is not None:
        raise TypeError("trapezoid(): pass either x or dx, not both")
    d = _rules.norm_axis(dim, y.ndim, "trapezoid")
    if y.ndim == 0:
        raise IndexError("trapezoid(): expected y to have at least one dimension")
    if y.shape[d] == 0:
        return _red.sum(y, d)
    if x is None:
        h = 1.0 if dx is None else dx
        ends = narrow(y, d, 0, 1) + narrow(y, d, y.shape[d] - 1, 1)
        return (_red.sum(y, d) - squeeze(ends, d) * 0.5) * h
    left, right = _ends(y, d)
    return _red.sum(_spacing_along(x, y, d, "trapezoid") * (left + right), d) / 2


def trapz(y, x=None, *, dx=None, dim: int = -1):
    """``trapezoid`` (its older name).

    >>> import jitgrad
    >>> jitgrad.trapz(jitgrad.tensor([1.0, 1.0]), dx=3.0)
    tensor(3.)
    """
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim: int = -1):
    """The running ``trapezoid`` integral along ``dim``: one element fewer than ``y`` there.

    >>> import jitgrad
    >>> jitgrad.cumulative_trapezoid(jitgrad.tensor([1.0, 2.0, 4.0]))
    tensor([1.5000, 4.5000])
    """
    y = _float_y(y, "cumulative_trapezoid")
    if x is not None and dx is not None:
        raise TypeError("cumulative_trapezoid(): pass either x or dx, not both")
    d = _rules.norm_axis(dim, y.ndim, "cumulative_trapezoid")
    if y.ndim == 0:
        raise IndexError("cumulative_trapezoid(): expected y to have at least one dimension")
    if y.shape[d] == 0:
        return y.clone()
    left, right = _ends(y, d)
    if x is None:
        parts = (left + right) * ((1.0 if dx is None else dx) / 2)
    else:
        parts = _spacing_along(x, y, d, "cumulative_trapezoid") * (left + right) / 2
    return _red.cumsum(parts, d)


def _gradient_1d(f, d: int, h, edge_order: int):
    """The derivative of the samples ``f`` along ``d``: central differences inside, one-sided
    ones of order ``edge_order`` at the ends; ``h`` a number (uniform spacing) or a 1-D tensor
    of coordinates."""
    n = f.shape[d]

    def at(i, length=1):
        return narrow(f, d, i if i >= 0 else n + i, length)

    if not isinstance(h, Tensor):
        inner = (at(2, n - 2) - at(0, n - 2)) / (2 * h)
        if edge_order == 1:
            first = (at(1) - at(0)) / h
            last = (at(-1) - at(-2)) / h
        else:
            first = (at(0) * -1.5 + at(1) * 2 - at(2) * 0.5) / h
            last = (at(-3) * 0.5 - at(-2) * 2 + at(-1) * 1.5) / h
        return cat([first, inner, last], d)
    shape = [1] * f.ndim
    shape[d] = n
    hx = _diff(reshape(h, tuple(shape)), d)
    h1, h2 = narrow(hx, d, 0, n - 2), narrow(hx, d, 1, n - 2)
    inner = (at(0, n - 2) * (-h2 / (h1 * (h1 + h2))) + at(1, n - 2) * ((h2 - h1) / (h1 * h2))
             + at(2, n - 2) * (h1 / (h2 * (h1 + h2))))
    a, b = narrow(hx, d, 0, 1), narrow(hx, d, n - 2, 1)
    if edge_order == 1:
        first = (at(1) - at(0)) / a
        last = (at(-1) - at(-2)) / b
    else:
        a2, b2 = narrow(hx, d, 1, 1), narrow(hx, d, n - 3, 1)
        first = (at(0) * (-(2 * a + a2) / (a * (a + a2))) + at(1) * ((a + a2) / (a * a2))
                 + at(2) * (-a / (a2 * (a + a2))))
        last = (at(-3) * (b / (b2 * (b2 + b))) + at(-2) * (-(b + b2) / (b2 * b))
                + at(-1) * ((2 * b + b2) / (b * (b2 + b))))
    return cat([first, inner, last], d)


def gradient(input, *, spacing=1, dim=None, edge_order: int = 1):  # noqa: A002
    """The derivative of the samples ``input`` along each of ``dim`` (every dimension by
    default), one tensor each, as ``numpy.gradient``: second-order central differences inside
    and one-sided differences of order ``edge_order`` (1 or 2) at the ends. ``spacing`` is the
    distance between samples (a number, one per dimension) or their coordinates (one 1-D tensor
    per dimension).

    >>> import jitgrad
    >>> jitgrad.gradient(jitgrad.tensor([1.0, 2.0, 4.0, 8.0]))
    (tensor([1.0000, 1.5000, 3.0000, 4.0000]),)
    >>> jitgrad.gradient(jitgrad.tensor([0.0, 1.0, 4.0]), spacing=(jitgrad.tensor([0.0, 1.0, 2.0]),))
    (tensor([1., 2., 3.]),)
    """
    f = _float_y(input, "gradient")
    if edge_order not in (1, 2) or isinstance(edge_order, bool):
        raise RuntimeError(f"torch.gradient only supports edge_order=1 and edge_order=2, got "
                           f"{edge_order}")
    if dim is None:
        dims = tuple(builtins.range(f.ndim))
    elif isinstance(dim, (list, tuple)):
        dims = tuple(_rules.norm_axis(d, f.ndim, "gradient") for d in dim)
    else:
        dims = (_rules.norm_axis(dim, f.ndim, "gradient"),)
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"gradient(): dim {dim} appears multiple times in the list of dims")
    if spacing is None:
        spacing = 1
    if isinstance(spacing, Tensor) and spacing.ndim == 0:
        spacing = spacing.item()
    if isinstance(spacing, (list, tuple)):
        if len(spacing) != len(dims):
            raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar, "
                               f"or a list of length equal to 'self.dim() = {f.ndim}', since "
                               f"dim argument was not given, but got a list of length "
                               f"{len(spacing)}" if dim is None else
                               f"torch.gradient expected spacing to be unspecified, a scalar, "
                               f"or its length to match the length of dim ({len(dims)}), got "
                               f"{len(spacing)}")
        hs = list(spacing)
    else:
        hs = [spacing] * len(dims)
    out = []
    for d, h in zip(dims, hs):
        if f.shape[d] < edge_order + 1:
            raise RuntimeError(f"torch.gradient expected each dimension size to be at least "
                               f"edge_order+1, got size {f.shape[d]} along dim {d}")
        if isinstance(h, Tensor):
            if h.ndim == 0:
                h = float(h.item())
            elif h.ndim != 1 or h.shape[0] != f.shape[d]:
                raise RuntimeError(f"torch.gradient expected each tensor in spacing to be 1-D "
                                   f"with one coordinate per sample along its dim, got shape "
                                   f"{list(h.shape)} for dim {d} of size {f.shape[d]}")
        out.append(_gradient_1d(f, d, h, edge_order))
    return tuple(out)


# -- renormalization ----------------------------------------------------------------------------
def renorm(input, p, dim: int, maxnorm):  # noqa: A002
    """``input`` with each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` scaled down
    to norm ``maxnorm`` (the others unchanged), as torch (which divides by ``norm + 1e-7``).

    >>> import jitgrad
    >>> jitgrad.renorm(jitgrad.tensor([[3.0, 4.0], [0.3, 0.4]]), 2, 0, 1.0)
    tensor([[0.6000, 0.8000],
            [0.3000, 0.4000]])
    """
    x = _input(input, "renorm")
    if not _is_float(x):
        raise RuntimeError(f"renorm(): expected a floating point tensor, got {x.dtype.name}")
    if x.ndim < 2:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {x.ndim} "
                           "dimensions")
    d = _rules.norm_axis(dim, x.ndim, "renorm")
    if not float(p) > 0:
        raise RuntimeError(f"renorm: non-positive-norm not supported, got p={p}")
    if float(maxnorm) < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    others = tuple(i for i in builtins.range(x.ndim) if i != d)
    norm = _red.norm(x, float(p), others, keepdim=True)
    scale = where(norm > maxnorm, maxnorm / (norm + 1e-7), 1.0)
    return x * scale.to(x.dtype)


def _attach() -> None:
    from jitgrad import _compat
    from jitgrad._tensor_methods import _inplace
    for name in ("aminmax", "bincount", "count_nonzero", "corrcoef", "cov", "cummax", "cummin",
                 "logcumsumexp", "kthvalue", "median", "nanmedian", "mode", "msort", "nanmean",
                 "nansum", "quantile", "nanquantile", "renorm"):
        setattr(Tensor, name, globals()[name])
    Tensor.histc = _compat.histc
    Tensor.histogram = _compat.histogram
    Tensor.renorm_ = _inplace("renorm_", renorm)


_attach()
