"""Writes into a copy of a tensor, as torch's out-of-place forms: ``index_add``, ``index_copy``,
``index_fill``, ``index_put``, ``index_reduce``, ``scatter_reduce``, ``diagonal_scatter``,
``select_scatter``, ``slice_scatter``, ``masked_fill``, ``masked_scatter``, ``masked_select``
and ``nonzero_static``; and the top-level spellings of ``torch.nn.functional``'s convolutions
and normalizations (``conv1d`` ... ``conv_transpose3d``, ``layer_norm``, ``group_norm``,
``rms_norm``).

All are composites of the indexing primitives (``getitem``, ``index_update``, ``scatter_add``),
``where``, ``cumsum`` and ``argsort``, so they differentiate, trace and compile as those do.
The segment reductions of ``scatter_reduce``/``index_reduce`` sort the sources by target and
combine neighbours in a log-depth segmented scan (no quadratic one-hot); ``amax``/``amin`` then
carry torch's gradient, shared evenly between every value equal to the result (a linear term
of value zero whose coefficients are that share).

>>> import jitgrad
>>> x = jitgrad.zeros(3)
>>> jitgrad.index_add(x, 0, jitgrad.tensor([0, 2, 0]), jitgrad.tensor([1.0, 2.0, 3.0]))
tensor([4., 0., 2.])
>>> src = jitgrad.tensor([5.0, 1.0, 7.0, 2.0])
>>> x.scatter_reduce(0, jitgrad.tensor([0, 0, 1, 1]), src, "amax", include_self=False)
tensor([5., 7., 0.])
>>> jitgrad.masked_scatter(x, jitgrad.tensor([True, False, True]), src)
tensor([5., 0., 1.])
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.errors import ShapeError
from jitgrad.ops import _rules
from jitgrad.ops.elementwise import _tensor as _input, floor_divide, isfinite, maximum, minimum, where
from jitgrad.ops.indexing import _check_range, _gather_args, _src_part, gather, scatter_add
from jitgrad.ops.reduce import cumsum
from jitgrad.ops.registry import Aval, bind, scalar, trace_state
from jitgrad.ops.shape import (_const, _index_abstract, cat, getitem, index_update, movedim, narrow,
                               parse_index, reshape, scatter_add_p, stack)
from jitgrad.ops.sorting import argsort

__all__ = [
    "index_add", "index_copy", "index_fill", "index_put", "index_reduce", "scatter_reduce",
    "diagonal_scatter", "select_scatter", "slice_scatter", "masked_fill", "masked_scatter",
    "masked_select", "nonzero_static",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "layer_norm", "group_norm", "rms_norm",
]


# -- index_add / index_copy / index_fill ---------------------------------------------------------
def _vector_index(index, op: str):
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}(): argument 'index' must be a Tensor, not {type(index).__name__}")
    if index.dtype not in (dtypes.int64, dtypes.int32):
        raise RuntimeError(f"{op}(): Expected dtype int32/int64 for index but got: "
                           f"{index.dtype.name}")
    if index.ndim > 1:
        raise IndexError(f"{op}(): Index is supposed to be a vector, but got dim: {index.ndim} "
                         f"with size: {list(index.shape)}")
    return reshape(index.to(dtypes.int64), (-1,))


def _index_args(input, dim, index, source, op: str):  # noqa: A002
    """``input`` (a 0-d one as shape (1,)), ``dim`` normalized, ``index`` as a 1-D int64
    tensor and ``source`` checked against both: torch's rules for the ``index_*`` ops."""
    x = _input(input, op)
    idx = _vector_index(index, op)
    d = _rules.norm_axis(dim, x.ndim, op)
    if not isinstance(source, Tensor):
        raise TypeError(f"{op}(): argument 'source' must be a Tensor, not "
                        f"{type(source).__name__}")
    if source.dtype is not x.dtype:
        raise RuntimeError(f"{op}(): self ({x.dtype.name}) and source ({source.dtype.name}) "
                           "must have the same scalar type")
    if x.ndim == 0 and source.ndim == 0:
        x, source = reshape(x, (1,)), reshape(source, (1,))
    if source.ndim != x.ndim or any(a != b for k, (a, b) in enumerate(zip(x.shape, source.shape))
                                    if k != d):
        raise RuntimeError(f"{op}(): source tensor shape must match self tensor shape, excluding "
                           f"the specified dimension. Got self.shape = {list(input.shape)} "
                           f"source.shape = {list(source.shape)}")
    if idx.shape[0] != source.shape[d]:
        raise RuntimeError(f"{op}(): Number of indices ({idx.shape[0]}) should be equal to "
                           f"source.size(dim): ({source.shape[d]}), for dim: {d}")
    _check_range(idx, x.shape[d], d, op, IndexError)
    return x, d, idx, source


def _back(out, input):  # noqa: A002
    return reshape(out, ()) if input.ndim == 0 else out


def index_add(input, dim: int, index, source, *, alpha=1):  # noqa: A002
    """``input`` with ``alpha * source``'s slices along ``dim`` added at the positions
    ``index`` names; repeated positions add up.

    >>> import jitgrad
    >>> jitgrad.ones(2, 2).index_add(1, jitgrad.tensor([1, 1]), jitgrad.ones(2, 2), alpha=2)
    tensor([[1., 5.],
            [1., 5.]])
    """
    x, d, idx, src = _index_args(input, dim, index, source, "index_add")
    if alpha != 1:
        src = src * (alpha if x.dtype.is_floating_point else int(alpha))
    spec, tensors = parse_index((slice(None),) * d + (idx,))
    added = bind(scatter_add_p, (src, *tensors), {"shape": tuple(x.shape), "index": spec})
    return _back(x + added, input)


def index_copy(input, dim: int, index, source):  # noqa: A002
    """``input`` with ``source``'s slices along ``dim`` written at the positions ``index``
    names (where one repeats, the last write wins, as torch on the CPU).

    >>> import jitgrad
    >>> jitgrad.zeros(3).index_copy(0, jitgrad.tensor([2, 0]), jitgrad.tensor([1.0, 2.0]))
    tensor([2., 0., 1.])
    """
    x, d, idx, src = _index_args(input, dim, index, source, "index_copy")
    return _back(index_update(x, (slice(None),) * d + (idx,), src), input)


def _fill_value(value, x, op: str):
    """A fill value as a 0-d tensor of ``x``'s dtype (a tensor one keeps its gradient)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"{op} only supports a 0-dimensional value tensor, but got tensor "
                               f"with {value.ndim} dimension(s).")
        return value.to(x.dtype)
    return scalar(value, x.dtype)


def index_fill(input, dim: int, index, value):  # noqa: A002
    """``input`` with every element of the slices along ``dim`` that ``index`` names set to
    ``value`` (a number or a 0-d tensor, whose gradient sums those elements' once each).

    >>> import jitgrad
    >>> jitgrad.zeros(2, 3).index_fill(1, jitgrad.tensor([0, -1]), 7.0)
    tensor([[7., 0., 7.],
            [7., 0., 7.]])
    """
    x = _input(input, "index_fill")
    idx = _vector_index(index, "index_fill")
    d = _rules.norm_axis(dim, x.ndim, "index_fill")
    n = x.shape[d] if x.ndim else 1
    _check_range(idx, n, d, "index_fill", IndexError, negative=True)
    idx = where(idx < 0, idx + n, idx)
    v = _fill_value(value, x, "index_fill_")
    # which slices are filled, as a mask: a where needs no write, and counts each slice once
    hits = bind(scatter_add_p, (_const(np.ones(idx.shape[0], np.int64)), idx),
                {"shape": (n,), "index": (("t", 0),)})
    view = [1] * x.ndim
    if x.ndim:
        view[d] = n
    return where(reshape(hits > 0, tuple(view)), v, x)


# -- index_put -----------------------------------------------------------------------------------
def index_put(input, indices, values, accumulate: bool = False):  # noqa: A002
    """``input`` with ``input[indices] = values`` (``values`` broadcast to the indexed
    shape), or ``+=`` with ``accumulate`` (repeated positions add up; without it the last
    write wins). ``indices`` is a tuple of integer or bool tensors, one per leading dim.

    >>> import jitgrad
    >>> i = (jitgrad.tensor([0, 0, 2]),)
    >>> jitgrad.zeros(3).index_put(i, jitgrad.tensor([1.0, 2.0, 3.0]), accumulate=True)
    tensor([3., 0., 3.])
    """
    x = _input(input, "index_put")
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put(): argument 'indices' must be a tuple of Tensors, not "
                        f"{type(indices).__name__}")
    if not isinstance(values, Tensor):
        raise TypeError(f"index_put(): argument 'values' must be a Tensor, not "
                        f"{type(values).__name__}")
    idx, width = [], 0
    for k, t in enumerate(indices):
        if not isinstance(t, Tensor):
            raise TypeError(f"index_put(): expected Tensor as element {k} in argument 'indices', "
                            f"but got {type(t).__name__}")
        if t.dtype.is_floating_point:
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        if t.dtype in (dtypes.bool_, dtypes.uint8):
            t = t if t.dtype is dtypes.bool_ else t != 0
            if t._ir is None:  # eagerly, a mask is the positions it holds (torch's meaning)
                idx += list(_nonzero_columns(t))
                width += t.ndim
                continue
            width += t.ndim
        else:
            t = t.to(dtypes.int64)
            if width < x.ndim:
                _check_range(t, x.shape[width], width, "index_put", IndexError, negative=True)
            width += 1
        idx.append(t)
    if width > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim} (got {width})")
    if values.dtype is not x.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{x.dtype.name} for the destination and {values.dtype.name} for the "
                           "source.")
    spec, tensors = parse_index(tuple(idx))
    target = _index_abstract(Aval(tuple(x.shape), x.dtype),
                             *[Aval(tuple(t.shape), t.dtype) for t in tensors], index=spec).shape
    try:
        fits = _rules.broadcast_shapes(tuple(values.shape), target) == target
    except ShapeError:
        fits = False
    if not fits:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(values.shape)} cannot be "
                           f"broadcast to indexing result of shape {list(target)}") from None
    if not accumulate:
        return index_update(x, tuple(idx), values)
    v = values if tuple(values.shape) == target else values.expand(*target)
    return x + bind(scatter_add_p, (v, *tensors), {"shape": tuple(x.shape), "index": spec})


def _nonzero_columns(mask):
    """The int64 index tensors, one per dim, of ``mask``'s True elements (eager)."""
    where_ = np.nonzero(mask._value)
    return tuple(_const(w.astype(np.int64)) for w in where_)


# -- scatter_reduce / index_reduce --------------------------------------------------------------
_REDUCTIONS = {"sum": "sum", "prod": "prod", "mean": "mean", "amax": "amax", "amin": "amin",
               "max": "amax", "min": "amin"}  # torch still takes the old names max and min


def _shift(v, s: int, fill):
    """``v`` moved ``s`` places along its last dim, ``fill`` coming in at the front."""
    from jitgrad.factories import full
    m = v.shape[-1]
    return cat([full(tuple(v.shape[:-1]) + (s,), fill, dtype=v.dtype), narrow(v, -1, 0, m - s)],
               -1)


def _segment_scan(v, key, combine, identity):
    """The inclusive scan by ``combine`` of ``v`` within runs of equal ``key`` (sorted, so
    each target's sources are one run), in log2(m) steps (Hillis and Steele): at step ``s``
    each element takes in the partial result ``s`` places back when that one is of its run."""
    m, s = v.shape[-1], 1
    while s < m:
        same = _shift(key, s, -1) == key
        v = combine(v, where(same, _shift(v, s, identity), identity))
        s *= 2
    return v


def _identity(reduce: str, dtype):
    """The value ``reduce`` leaves the other operand unchanged with."""
    if reduce == "prod":
        return 1
    if dtype.is_floating_point:
        return -np.inf if reduce == "amax" else np.inf
    if dtype is dtypes.bool_:
        return reduce == "amin"
    info = np.iinfo(dtype.np)
    return info.min if reduce == "amax" else info.max


def _combined(x, d: int, index, src, reduce: str):
    """Per target position of ``x`` (along ``d``), the ``reduce`` of the sources sent there,
    or 0 where none are: the sources sorted by target, scanned within each target's run, and
    the run's last partial result scattered to it."""
    from jitgrad.factories import zeros_like
    im, sm = movedim(index, d, -1), movedim(src, d, -1)
    order = argsort(im, -1, stable=True)
    key, val = gather(im, -1, order), gather(sm, -1, order)
    combine = {"prod": lambda a, b: a * b, "amax": maximum, "amin": minimum}[reduce]
    scan = _segment_scan(val, key, combine, _identity(reduce, val.dtype))
    m = key.shape[-1]
    last = cat([narrow(key, -1, 0, m - 1) != narrow(key, -1, 1, m - 1),
                _const(np.ones(tuple(key.shape[:-1]) + (1,), np.bool_))], -1)
    one = where(last, scan, 0)  # one contribution per target: the sum below is exact
    return movedim(scatter_add(zeros_like(movedim(x, d, -1)), -1, key, one), -1, d)


def _records(*tensors) -> bool:
    from jitgrad.autograd import grad_mode
    return trace_state.builder is not None or grad_mode.state.enabled and any(
        t.requires_grad for t in tensors)


def _extreme_grad(out, x, d: int, index, src, hit, include_self: bool):
    """``out`` (the detached amax/amin) plus a term of value zero whose gradient is torch's:
    the incoming gradient of each result shared evenly by every value equal to it (self's
    share counted even without ``include_self``, as torch, then dropped)."""
    from jitgrad.factories import zeros_like
    xd, sd = x.detach(), src.detach()
    self_hit = (xd == out).to(x.dtype)
    n = scatter_add(self_hit, d, index, (sd == gather(out, d, index)).to(x.dtype))
    share = where(n > 0, 1 / where(n > 0, n, 1), 0)
    c_self = self_hit * share
    if not include_self:
        c_self = where(hit, 0, c_self)
    c_src = (sd == gather(out, d, index)).to(x.dtype) * gather(share, d, index)
    # x - x.detach() is 0 for finite x (an infinite one would make it NaN, so it is left out)
    dx = where(isfinite(xd), x, 0)
    ds = where(isfinite(sd), src, 0)
    zero = c_self * (dx - dx.detach()) + scatter_add(zeros_like(xd), d, index,
                                                     c_src * (ds - ds.detach()))
    return out + zero


def _reduce_into(x, d: int, index, src, reduce: str, include_self: bool):
    """``scatter_reduce`` of ``src`` into ``x`` with ``index`` of ``src``'s shape, whose other
    dims are ``x``'s."""
    from jitgrad.factories import zeros_like
    if src.shape[d] == 0 or src.numel() == 0:
        return x.clone()
    if x.dtype is dtypes.bool_:  # or, and, ...: the same reductions of 0s and 1s
        if reduce == "mean":
            raise NotImplementedError("scatter_reduce(): reduce='mean' is not implemented for "
                                      "bool tensors")
        wide = _reduce_into(x.to(dtypes.int64), d, index, src.to(dtypes.int64), reduce,
                            include_self)
        return wide != 0
    count = scatter_add(zeros_like(x, dtype=dtypes.int64), d, index,
                        _const(np.ones(tuple(index.shape), np.int64)))
    hit = count > 0
    if reduce == "sum":
        if include_self:
            return scatter_add(x, d, index, src)
        return where(hit, scatter_add(zeros_like(x), d, index, src), x)
    if reduce == "mean":
        total = scatter_add(x if include_self else zeros_like(x), d, index, src)
        n = count + 1 if include_self else count
        n = where(n > 0, n, 1).to(x.dtype)
        mean = total / n if x.dtype.is_floating_point else floor_divide(total, n)
        return where(hit, mean, x)
    if reduce == "prod":
        r = _combined(x, d, index, src, "prod")
        return where(hit, x * r if include_self else r, x)
    grad = x.dtype.is_floating_point and _records(x, src)
    xv, sv = (x.detach(), src.detach()) if grad else (x, src)
    r = _combined(xv, d, index, sv, reduce)
    if include_self:
        r = (maximum if reduce == "amax" else minimum)(xv, r)
    out = where(hit, r, xv)
    return _extreme_grad(out, x, d, index, src, hit, include_self) if grad else out


def _reduce_name(reduce, names, op: str) -> str:
    r = _REDUCTIONS.get(reduce) if isinstance(reduce, str) else None
    if r is None or r not in names:
        raise RuntimeError(f"{op}(): reduce argument must be one of {', '.join(names)}, got "
                           f"{reduce!r}")
    return r


def scatter_reduce(input, dim: int, index, src, reduce: str, *,  # noqa: A002
                   include_self: bool = True):
    """``input`` with each ``src[i][j][k]`` combined into ``out[i][index[i][j][k]][k]`` (for
    ``dim=1``) by ``reduce``: ``"sum"``, ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``;
    ``include_self=False`` leaves ``input``'s own values out where something is sent.

    >>> import jitgrad
    >>> x = jitgrad.tensor([1.0, 2.0])
    >>> x.scatter_reduce(0, jitgrad.tensor([0, 0, 1]), jitgrad.tensor([3.0, 5.0, 4.0]), "mean")
    tensor([3., 3.])
    """
    r = _reduce_name(reduce, ("sum", "prod", "mean", "amax", "amin"), "scatter_reduce")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce(): argument 'src' must be a Tensor, not "
                        f"{type(src).__name__}")
    x, d, idx = _gather_args(input, dim, index, "scatter_reduce")
    s = _src_part(src, idx, x, "scatter_reduce")
    if x.ndim == 0 or all(a == b for k, (a, b) in enumerate(zip(idx.shape, x.shape)) if k != d):
        return _back(_reduce_into(x, d, idx, s, r, bool(include_self)), input)
    # an index smaller than input in other dims: reduce into that block, put it back
    box = tuple(slice(None) if k == d else slice(0, n) for k, n in enumerate(idx.shape))
    part = _reduce_into(getitem(x, box), d, idx, s, r, bool(include_self))
    return index_update(x, box, part)


def index_reduce(input, dim: int, index, source, reduce: str, *,  # noqa: A002
                 include_self: bool = True):
    """``input`` with ``source``'s slices along ``dim`` combined into the slices ``index``
    names by ``reduce``: ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``.

    >>> import jitgrad
    >>> jitgrad.ones(2).index_reduce(0, jitgrad.tensor([1, 1]), jitgrad.tensor([2.0, 3.0]), "prod")
    tensor([1., 6.])
    """
    r = _reduce_name(reduce, ("prod", "mean", "amax", "amin"), "index_reduce")
    x, d, idx, src = _index_args(input, dim, index, source, "index_reduce")
    view = [1] * x.ndim
    view[d] = idx.shape[0]
    full_index = reshape(idx, tuple(view)).expand(*src.shape)  # the scatter form of the index
    return _back(_reduce_into(x, d, full_index, src, r, bool(include_self)), input)


# -- diagonal / select / slice scatter -----------------------------------------------------------
def _same_shape(src, want: tuple, op: str):
    if not isinstance(src, Tensor):
        raise TypeError(f"{op}(): argument 'src' must be a Tensor, not {type(src).__name__}")
    if tuple(src.shape) != tuple(want):
        raise RuntimeError(f"{op}(): expected src to have a size equal to the slice of self. src "
                           f"size = {list(src.shape)}, slice size = {list(want)}")


def diagonal_scatter(input, src, offset: int = 0, dim1: int = 0, dim2: int = 1):  # noqa: A002
    """``input`` with its ``offset``-th diagonal in dims ``dim1``/``dim2`` replaced by
    ``src`` (of the shape ``diagonal`` gives).

    >>> import jitgrad
    >>> jitgrad.zeros(2, 3).diagonal_scatter(jitgrad.ones(2), 1)
    tensor([[0., 1., 0.],
            [0., 0., 1.]])
    """
    from jitgrad.ops.indexing import diagonal
    x = _input(input, "diagonal_scatter")
    _same_shape(src, tuple(diagonal(x, offset, dim1, dim2).shape), "diagonal_scatter")
    d1, d2 = _rules.norm_axis(dim1, x.ndim, "diagonal_scatter"), _rules.norm_axis(
        dim2, x.ndim, "diagonal_scatter")
    y = movedim(x, (d1, d2), (-2, -1))
    n, m, k = y.shape[-2], y.shape[-1], int(offset)
    rows = np.arange(max(0, -k), n, dtype=np.int64)
    keep = (rows + k >= 0) & (rows + k < m)
    rows = rows[keep]
    y = index_update(y, (Ellipsis, _const(rows), _const(rows + k)), src.to(x.dtype))
    return movedim(y, (-2, -1), (d1, d2))


def select_scatter(input, src, dim: int, index: int):  # noqa: A002
    """``input`` with the slice ``input.select(dim, index)`` replaced by ``src``.

    >>> import jitgrad
    >>> jitgrad.zeros(2, 2).select_scatter(jitgrad.ones(2), 0, -1)
    tensor([[0., 0.],
            [1., 1.]])
    """
    x = _input(input, "select_scatter")
    if x.ndim == 0:
        raise IndexError("select_scatter(): cannot be applied to a 0-dim tensor.")
    d = _rules.norm_axis(dim, x.ndim, "select_scatter")
    i, n = int(index), x.shape[d]
    if not -n <= i < n:
        raise IndexError(f"select_scatter(): index {i} out of range for tensor of size "
                         f"{list(x.shape)} at dimension {d}")
    _same_shape(src, tuple(x.shape[:d] + x.shape[d + 1:]), "select_scatter")
    return index_update(x, (slice(None),) * d + (i % n,), src.to(x.dtype))


def slice_scatter(input, src, dim: int = 0, start=None, end=None, step: int = 1):  # noqa: A002
    """``input`` with the slice ``start:end:step`` along ``dim`` replaced by ``src``.

    >>> import jitgrad
    >>> jitgrad.zeros(4).slice_scatter(jitgrad.ones(2), start=0, step=2)
    tensor([1., 0., 1., 0.])
    """
    x = _input(input, "slice_scatter")
    if x.ndim == 0:
        raise RuntimeError("slice_scatter(): cannot be applied to a 0-dim tensor.")
    d = _rules.norm_axis(dim, x.ndim, "slice_scatter")
    if int(step) <= 0:
        raise RuntimeError("slice_scatter(): slice step must be positive")
    sl = slice(None if start is None else int(start), None if end is None else int(end),
               int(step))
    want = tuple(x.shape[:d]) + (len(range(*sl.indices(x.shape[d]))),) + tuple(x.shape[d + 1:])
    _same_shape(src, want, "slice_scatter")
    return index_update(x, (slice(None),) * d + (sl,), src.to(x.dtype))


# -- masks ---------------------------------------------------------------------------------------
def _bool_mask(mask, op: str, what: str):
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}(): argument 'mask' must be a Tensor, not {type(mask).__name__}")
    if mask.dtype is not dtypes.bool_:
        raise RuntimeError(what.format(mask.dtype.name))
    return mask


def masked_fill(input, mask, value):  # noqa: A002
    """``input`` (broadcast with ``mask``) with ``value`` where ``mask`` is True; ``value``
    is a number or a 0-d tensor, cast to ``input``'s dtype.

    >>> import jitgrad
    >>> jitgrad.masked_fill(jitgrad.tensor([1, 2]), jitgrad.tensor([True, False]), 2.7)
    tensor([2, 2])
    """
    x = _input(input, "masked_fill")
    m = _bool_mask(mask, "masked_fill", "masked_fill_ only supports boolean masks, but got mask "
                   "with dtype {}")
    return where(m, _fill_value(value, x, "masked_fill_"), x)


def masked_select(input, mask):  # noqa: A002
    """The elements of ``input`` where ``mask`` is True (both broadcast), as a 1-D tensor (its
    length depends on the data: eager only).

    >>> import jitgrad
    >>> jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]).masked_select(jitgrad.tensor([True, False]))
    tensor([1., 3.])
    """
    x = _input(input, "masked_select")
    m = _bool_mask(mask, "masked_select", "masked_select: expected BoolTensor for mask, got {}")
    shape = _rules.broadcast_shapes(tuple(x.shape), tuple(m.shape), "masked_select")
    xb = x if tuple(x.shape) == shape else x.expand(*shape)
    mb = m if tuple(m.shape) == shape else m.expand(*shape)
    return getitem(reshape(xb, (-1,)), (reshape(mb, (-1,)),))


def masked_scatter(input, mask, source):  # noqa: A002
    """``input`` (broadcast with ``mask``) with the positions where ``mask`` is True filled
    by ``source``'s leading elements, in row-major order. The gradient of ``source`` is the
    incoming one at those positions (zero for its elements left unused).

    >>> import jitgrad
    >>> m = jitgrad.tensor([[True, False], [True, True]])
    >>> jitgrad.zeros(2, 2).masked_scatter(m, jitgrad.tensor([1.0, 2.0, 3.0, 4.0]))
    tensor([[1., 0.],
            [2., 3.]])
    """
    x = _input(input, "masked_scatter")
    m = _bool_mask(mask, "masked_scatter", "masked_scatter_ only supports boolean masks, but got "
                   "mask with dtype {}")
    if not isinstance(source, Tensor):
        raise TypeError(f"masked_scatter(): argument 'source' must be a Tensor, not "
                        f"{type(source).__name__}")
    if source.dtype is not x.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got "
                           f"{x.dtype.name} and {source.dtype.name}")
    shape = _rules.broadcast_shapes(tuple(x.shape), tuple(m.shape), "masked_scatter")
    mb = reshape(m.expand(*shape), (-1,))
    if mb._ir is None and int(mb._value.sum()) > source.numel():
        raise RuntimeError(f"masked_scatter: Number of elements of source ({source.numel()}) < "
                           f"number of ones in mask ({int(mb._value.sum())})")
    if source.numel() == 0:
        return where(m, scalar(0, x.dtype), x.expand(*shape))
    # the k-th True position takes source's k-th element: a gather, so no data-dependent shape
    at = cumsum(mb.to(dtypes.int64), 0) - 1
    at = where(at < 0, 0, where(at >= source.numel(), source.numel() - 1, at))
    picked = reshape(getitem(reshape(source, (-1,)), (at,)), shape)
    return where(m, picked, x)


def nonzero_static(input, *, size: int, fill_value: int = -1):  # noqa: A002
    """``nonzero(input)`` as a (``size``, ndim) tensor: the first ``size`` indices, padded
    with ``fill_value`` rows. Its shape does not depend on the data, so it also traces.

    >>> import jitgrad
    >>> jitgrad.tensor([0, 3, 0, 4]).nonzero_static(size=3)
    tensor([[ 1],
            [ 3],
            [-1]])
    """
    from jitgrad.factories import arange, full, zeros
    x = _input(input, "nonzero_static")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise RuntimeError(f"nonzero_static: 'size' must be an non-negative integer, got {size!r}")
    size, n = int(size), x.numel()
    if x.ndim == 0:
        return zeros(size, 0, dtype=dtypes.int64)
    if n == 0 or size == 0:
        return full((size, x.ndim), fill_value, dtype=dtypes.int64)
    nz = reshape(x != 0, (-1,)).to(dtypes.int64)
    k = cumsum(nz, 0) - 1  # the rank of each nonzero among them
    slot = where((nz > 0) & (k < size), k, size)  # slot `size` takes everything dropped
    flat = scatter_add(zeros(size + 1, dtype=dtypes.int64), 0, slot, arange(n) * nz)
    flat = narrow(flat, 0, 0, size)
    strides = np.cumprod((1,) + tuple(x.shape[:0:-1]))[::-1]
    cols = [(flat // int(st)) % int(dim) for st, dim in zip(strides, x.shape)]
    valid = reshape(arange(size) < nz.sum(), (size, 1))
    return where(valid, stack(cols, 1), scalar(fill_value, dtypes.int64))


# -- torch's top-level spellings of nn.functional's convolutions and normalizations -----------
# nn sits above ops, so each forwards at call time.
def _same_padding(x, weight, stride, padding, dilation, nd: int):
    """``padding='same'`` as torch pads it: ``dilation * (k - 1)`` in all, the odd one after
    (an explicit pad first where the two sides differ); anything else unchanged."""
    if not (isinstance(padding, str) and padding == "same" and isinstance(x, Tensor)
            and isinstance(weight, Tensor) and weight.ndim == nd + 2):
        return x, padding
    tup = lambda v: (int(v),) * nd if isinstance(v, (int, np.integer)) else tuple(v)  # noqa: E731
    if any(a != 1 for a in tup(stride)):
        return x, padding  # the error nn.functional gives
    total = [d * (k - 1) for d, k in zip(tup(dilation), weight.shape[2:])]
    if all(t % 2 == 0 for t in total):
        return x, tuple(t // 2 for t in total)
    from jitgrad.nn import functional as F
    pads = [a for t in reversed(total) for a in (t // 2, t - t // 2)]
    return F.pad(x, tuple(pads)), 0


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
           groups: int = 1):
    """``torch.conv1d``: ``jitgrad.nn.functional.conv1d``.

    >>> import jitgrad
    >>> jitgrad.conv1d(jitgrad.ones(1, 1, 4), jitgrad.ones(1, 1, 2)).tolist()
    [[[2.0, 2.0, 2.0]]]
    """
    from jitgrad.nn import functional as F
    input, padding = _same_padding(input, weight, stride, padding, dilation, 1)
    return F.conv1d(input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
           groups: int = 1):
    """``torch.conv2d``: ``jitgrad.nn.functional.conv2d``.

    >>> import jitgrad
    >>> jitgrad.conv2d(jitgrad.ones(1, 1, 3, 3), jitgrad.ones(1, 1, 2, 2)).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    from jitgrad.nn import functional as F
    input, padding = _same_padding(input, weight, stride, padding, dilation, 2)
    return F.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0,  # noqa: A002
                     output_padding=0, groups: int = 1, dilation=1):
    """``torch.conv_transpose1d``: ``jitgrad.nn.functional.conv_transpose1d``.

    >>> import jitgrad
    >>> jitgrad.conv_transpose1d(jitgrad.ones(1, 1, 2), jitgrad.ones(1, 1, 2)).tolist()
    [[[1.0, 2.0, 1.0]]]
    """
    from jitgrad.nn import functional as F
    return F.conv_transpose1d(input, weight, bias, stride, padding, output_padding, groups,
                              dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0,  # noqa: A002
                     output_padding=0, groups: int = 1, dilation=1):
    """``torch.conv_transpose2d``: ``jitgrad.nn.functional.conv_transpose2d``.

    >>> import jitgrad
    >>> jitgrad.conv_transpose2d(jitgrad.ones(1, 1, 1, 1), jitgrad.ones(1, 2, 2, 2)).shape
    jitgrad.Size([1, 2, 2, 2])
    """
    from jitgrad.nn import functional as F
    return F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups,
                              dilation)


def _triple(v, name: str) -> tuple:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * 3
    v = tuple(int(a) for a in v)
    if len(v) != 3:
        raise ValueError(f"{name} must be an int or a tuple of 3 ints, got {v}")
    return v


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
           groups: int = 1):
    """3-D convolution (cross-correlation, as torch) of ``input`` (N, C, D, H, W), or unbatched
    (C, D, H, W), with ``weight`` (OC, C / groups, KD, KH, KW): a sum over the kernel's depth
    (im2col and a matrix product, as ``conv2d``).

    >>> import jitgrad
    >>> jitgrad.conv3d(jitgrad.ones(1, 1, 3, 3, 3), jitgrad.ones(2, 1, 2, 2, 2)).shape
    jitgrad.Size([1, 2, 2, 2, 2])
    """
    from jitgrad.nn import functional as F
    if isinstance(input, Tensor) and isinstance(weight, Tensor) and input.ndim == 4 \
            and weight.ndim == 5:  # unbatched: a batch of one, as torch
        return conv3d(input.unsqueeze(0), weight, bias, stride, padding, dilation,
                      groups).squeeze(0)
    x = _input(input, "conv3d")
    if x.ndim != 5 or not isinstance(weight, Tensor) or weight.ndim != 5:
        raise ShapeError(f"conv3d: expected a 4-D (unbatched) or 5-D (batched) input and a 5-D "
                         f"weight, got shapes {list(x.shape)} and "
                         f"{list(getattr(weight, 'shape', ()))}")
    n, c = x.shape[:2]
    oc, cg, kd, kh, kw = weight.shape
    if groups < 1 or oc % groups or cg * groups != c:
        raise ShapeError(f"conv3d: weight of shape {list(weight.shape)} with groups={groups} "
                         f"expects input to have {cg * groups} channels, but got {c} channels "
                         f"(input shape {list(x.shape)})")
    s, dl = _triple(stride, "stride"), _triple(dilation, "dilation")
    if min(s + dl) < 1:
        raise ValueError("conv3d: stride and dilation must be positive")
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * 3
        elif padding == "same":
            if s != (1, 1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            # as torch: the odd one of an even total goes after
            pads = tuple((t // 2, t - t // 2) for t in (dl[i] * (k - 1)
                                                       for i, k in enumerate((kd, kh, kw))))
        else:
            raise ValueError(f"invalid padding string {padding!r}: use 'valid' or 'same'")
    else:
        p = _triple(padding, "padding")
        if min(p) < 0:
            raise ValueError("conv3d: padding must be non-negative")
        pads = tuple((a, a) for a in p)
    if any(a for pair in pads for a in pair):
        x = F.pad(x, (*pads[2], *pads[1], *pads[0]))
    dp, hp, wp = x.shape[2:]
    k3, size = (kd, kh, kw), (dp, hp, wp)
    o = [(size[i] - dl[i] * (k3[i] - 1) - 1) // s[i] + 1 for i in range(3)]
    if min(o) < 1:
        raise ShapeError(f"conv3d: the kernel {kd}x{kh}x{kw} (dilation {dl}) is larger than the "
                         f"padded input {dp}x{hp}x{wp} (input shape {list(input.shape)})")
    # im2col, as conv2d's: each window's elements by one gather on the flattened (D, H, W)
    # (an index computed from the shapes), then one matrix product per group
    pos = [(np.arange(o[i]) * s[i])[None, :] + (np.arange(k3[i]) * dl[i])[:, None]
           for i in range(3)]  # (k, o) per axis
    flat = (pos[0][:, None, None, :, None, None] * (hp * wp)
            + pos[1][None, :, None, None, :, None] * wp + pos[2][None, None, :, None, None, :])
    at = _const(flat.reshape(-1).astype(np.int64))
    kk, od, oh, ow = kd * kh * kw, *o
    win = getitem(x.permute(2, 3, 4, 0, 1).reshape(dp * hp * wp, n, c), (at,))
    cols = win.reshape(kk, od, oh, ow, n, c).permute(4, 1, 2, 3, 5, 0)  # (N, od, oh, ow, C, kk)
    og = oc // groups
    outs = []
    for g in range(groups):
        part = cols[:, :, :, :, g * cg:(g + 1) * cg].reshape(n * od * oh * ow, cg * kk)
        outs.append(part @ weight[g * og:(g + 1) * og].reshape(og, cg * kk).permute(1, 0))
    out = outs[0] if groups == 1 else cat(outs, 1)
    out = out.reshape(n, od, oh, ow, oc).permute(0, 4, 1, 2, 3).contiguous()
    return out if bias is None else out + bias.reshape(1, oc, 1, 1, 1)


def check_transposed(name: str, x, weight, groups: int, s, p, op, d) -> None:
    """torch's checks of a transposed convolution's channels, groups, stride, padding,
    output padding and dilation (each a tuple per spatial dimension)."""
    c, cin = x.shape[1], weight.shape[0]
    if groups < 1 or cin != c or c % groups:
        raise ShapeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                         f"input{list(x.shape)} to have {cin} channels, but got {c} channels "
                         f"instead (groups={groups})")
    if min(s + d) < 1 or min(p) < 0:
        raise ValueError(f"{name}: stride and dilation must be positive and padding "
                         "non-negative")
    if any(o >= max(si, di) for o, si, di in zip(op, s, d)):
        raise ValueError(f"output padding must be smaller than either stride or dilation, but "
                         f"got output_padding={op}, stride={s} and dilation={d}")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0,  # noqa: A002
                     output_padding=0, groups: int = 1, dilation=1):
    """Transposed 3-D convolution of (N, C, D, H, W) or (C, D, H, W) with ``weight``
    (C, OC / groups, KD, KH, KW): ``conv3d`` of the input spread out by ``stride`` and padded
    by ``dilation * (k - 1) - padding``, with the kernel flipped and its channels swapped.

    >>> import jitgrad
    >>> x, w = jitgrad.ones(1, 1, 2, 2, 2), jitgrad.ones(1, 1, 1, 1, 1)
    >>> jitgrad.conv_transpose3d(x, w, stride=2).shape
    jitgrad.Size([1, 1, 3, 3, 3])
    """
    if isinstance(input, Tensor) and isinstance(weight, Tensor) and input.ndim == 4 \
            and weight.ndim == 5:
        return conv_transpose3d(input.unsqueeze(0), weight, bias, stride, padding,
                                output_padding, groups, dilation).squeeze(0)
    x = _input(input, "conv_transpose3d")
    if x.ndim != 5 or not isinstance(weight, Tensor) or weight.ndim != 5:
        raise ShapeError(f"conv_transpose3d: expected a 4-D (unbatched) or 5-D (batched) input "
                         f"and a 5-D weight, got shapes {list(x.shape)} and "
                         f"{list(getattr(weight, 'shape', ()))}")
    s, p = _triple(stride, "stride"), _triple(padding, "padding")
    op, d = _triple(output_padding, "output_padding"), _triple(dilation, "dilation")
    check_transposed("conv_transpose3d", x, weight, groups, s, p, op, d)
    cin, og, kd, kh, kw = weight.shape
    n, (cg, kk) = x.shape[0], (cin // groups, kd * kh * kw)
    size, k3 = tuple(x.shape[2:]), (kd, kh, kw)
    o = [(size[i] - 1) * s[i] - 2 * p[i] + d[i] * (k3[i] - 1) + op[i] + 1 for i in range(3)]
    if min(o) < 1:
        raise ShapeError(f"conv_transpose3d: the output size {o} is too small (input shape "
                         f"{list(x.shape)}, weight shape {list(weight.shape)})")
    # as torch's: a matrix product gives every (input position, kernel offset) its column,
    # then each column is added where it lands (col2vol; positions the padding crops drop)
    cols = [weight[g * cg:(g + 1) * cg].reshape(cg, og * kk).permute(1, 0)
            @ x[:, g * cg:(g + 1) * cg].reshape(n, cg, -1) for g in range(groups)]
    cols = (cols[0] if groups == 1 else cat(cols, 1)).reshape(n, groups * og, -1)
    pos = [(np.arange(size[i]) * s[i])[None, :] + (np.arange(k3[i]) * d[i])[:, None] - p[i]
           for i in range(3)]  # (k, in) per axis: where each lands along it
    ok = [(q >= 0) & (q < o[i]) for i, q in enumerate(pos)]
    def axis(a, i):  # a (k, in) table of axis i laid out as the columns: (kd, kh, kw, D, H, W)
        return a.reshape([a.shape[0] if j == i else 1 for j in range(3)]
                         + [a.shape[1] if j == i else 1 for j in range(3)])
    land = axis(pos[0], 0) * (o[1] * o[2]) + axis(pos[1], 1) * o[2] + axis(pos[2], 2)
    keep = axis(ok[0], 0) & axis(ok[1], 1) & axis(ok[2], 2)
    land = land.reshape(-1)
    keep = keep.reshape(-1)
    vals = cols if keep.all() else getitem(cols, (slice(None), slice(None),
                                                  _const(np.flatnonzero(keep))))
    out = bind(scatter_add_p, (vals, _const(land[keep].astype(np.int64))),
               {"shape": (n, groups * og, o[0] * o[1] * o[2]),
                "index": (("s", None, None, None), ("s", None, None, None), ("t", 0))})
    out = out.reshape(n, groups * og, *o)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1, 1)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5,  # noqa: A002
               cudnn_enable: bool = True):
    """``torch.layer_norm``: ``jitgrad.nn.functional.layer_norm`` (``cudnn_enable`` has no
    meaning here).

    >>> import jitgrad
    >>> jitgrad.layer_norm(jitgrad.tensor([[1.0, 3.0]]), (2,))
    tensor([[-1.0000,  1.0000]])
    """
    from jitgrad.nn import functional as F
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5,  # noqa: A002
               cudnn_enabled: bool = True):
    """``torch.group_norm``: ``jitgrad.nn.functional.group_norm``.

    >>> import jitgrad
    >>> jitgrad.group_norm(jitgrad.tensor([[1.0, 3.0]]), 1)
    tensor([[-1.0000,  1.0000]])
    """
    from jitgrad.nn import functional as F
    return F.group_norm(input, num_groups, weight, bias, eps)


def rms_norm(input, normalized_shape, weight=None, eps: float | None = None):  # noqa: A002
    """``torch.rms_norm``: ``jitgrad.nn.functional.rms_norm``.

    >>> import jitgrad
    >>> jitgrad.rms_norm(jitgrad.tensor([[3.0, 4.0]]), (2,), eps=0.0)
    tensor([[0.8485, 1.1314]])
    """
    from jitgrad.nn import functional as F
    return F.rms_norm(input, normalized_shape, weight, eps)


# -- Tensor methods, as torch's (in-place ones write through the same function) -----------------
def _attach() -> None:
    from jitgrad._tensor_methods import _inplace
    for name in ("index_add", "index_copy", "index_fill", "index_put", "index_reduce",
                 "scatter_reduce", "masked_scatter"):
        fn = globals()[name]
        setattr(Tensor, name, fn)
        setattr(Tensor, name + "_", _inplace(name + "_", fn))
    for name in ("diagonal_scatter", "select_scatter", "slice_scatter", "masked_select",
                 "nonzero_static"):
        setattr(Tensor, name, globals()[name])


from jitgrad.tensor import Tensor  # noqa: E402

_attach()
