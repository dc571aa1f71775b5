"""Sorting: ``sort``, ``argsort``, ``topk``; and the eager-only ops whose result's shape
depends on the data, ``nonzero`` and ``unique``.

The order is the ``argsort`` primitive, without a gradient (NumPy's stable sort; compiled code
runs it on the host), and the values are a ``gather`` of the input by it, so their gradient is
the incoming one scattered back to where each value came from, as torch's.

>>> import jitgrad
>>> x = jitgrad.tensor([3.0, 1.0, 2.0], requires_grad=True)
>>> v, i = jitgrad.sort(x, descending=True)
>>> v, i
(tensor([3., 2., 1.], grad_fn=<IndexBackward0>), tensor([0, 2, 1]))
>>> (v * jitgrad.tensor([1.0, 10.0, 100.0])).sum().backward()
>>> x.grad
tensor([  1., 100.,  10.])
>>> jitgrad.topk(x, 2).indices
tensor([0, 2])
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from jitgrad import dtypes
from jitgrad.errors import TraceError
from jitgrad.ops import _rules
from jitgrad.ops.elementwise import _tensor as _input
from jitgrad.ops.indexing import gather
from jitgrad.ops.registry import Aval, bind, register
from jitgrad.ops.shape import _const, narrow

# torch.return_types.sort / topk: (values, indices), also by name.
SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])


def _np_order(v: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """A stable argsort along ``axis``, NaN after every number ascending and before every
    number descending (torch treats NaN as the largest value)."""
    if v.dtype == np.bool_:
        v = v.astype(np.int8)
    elif v.dtype == np.uint8:
        v = v.astype(np.int16)
    if not descending:
        return np.argsort(v, axis=axis, kind="stable")
    if v.dtype.kind == "f":
        nan = np.isnan(v)
        return np.lexsort((-np.where(nan, 0, v), ~nan), axis=axis)  # the last key leads
    return np.argsort(~v, axis=axis, kind="stable")  # ~v = -v - 1 reverses ints, no overflow


def _argsort_impl(x, *, axis: int, descending: bool):
    return _np_order(x, axis, descending).astype(np.int64)


def _argsort_abstract(x: Aval, *, axis: int, descending: bool) -> Aval:
    return Aval(tuple(x.shape), dtypes.int64)


# No VJP: an order is piecewise constant (forward mode gives it a zero tangent).
argsort_p = register("argsort", _argsort_impl, _argsort_abstract, None, saves="none",
                     kind="scan")


def _order(x, dim: int, descending: bool):
    if x.ndim == 0:
        return _const(np.zeros((), dtype=np.int64))
    return bind(argsort_p, (x,), {"axis": dim, "descending": bool(descending)})


def _sort_args(x, dim, op):
    x = _input(x, op)
    return x, _rules.norm_axis(dim, x.ndim, op)


def sort(input, dim: int = -1, descending: bool = False, *, stable: bool = False):  # noqa: A002
    """``(values, indices)``: ``input`` sorted along ``dim`` and where each value came from.
    The sort is always stable (``stable=True`` costs nothing more)."""
    x, d = _sort_args(input, dim, "sort")
    idx = _order(x, d, bool(descending))
    return SortResult(gather(x, d, idx), idx)


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False):  # noqa: A002
    """The indices that sort ``input`` along ``dim`` (``sort(...).indices``)."""
    x, d = _sort_args(input, dim, "argsort")
    return _order(x, d, bool(descending))


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """``(values, indices)`` of the ``k`` largest (``largest=False``: smallest) elements along
    ``dim``, largest first; ``sorted=False`` gives them in that order too."""
    x, d = _sort_args(input, dim, "topk")
    _rules._not_bool(k, "topk", "k")
    k = int(k)
    n = x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk(): selected index k out of range (k={k}, dimension {d} has "
                           f"size {n})")
    idx = _order(x, d, bool(largest))
    if x.ndim and k != n:
        idx = narrow(idx, d, 0, k)
    return TopkResult(gather(x, d, idx), idx)


def _eager_only(x, op: str) -> np.ndarray:
    if x._ir is not None:
        raise TraceError(f"{op}() inside a compiled function: its result's shape depends on the "
                         "values, which compiled code must know in advance; call it outside, "
                         "or use a mask (jitgrad.where) instead")
    return x._value


def nonzero(input, *, as_tuple: bool = False):  # noqa: A002
    """The indices of the nonzero elements: an int64 tensor of shape (count, ndim), or with
    ``as_tuple=True`` one 1-D tensor per dimension (``x[x.nonzero(as_tuple=True)]`` selects
    them). Eager only."""
    v = _eager_only(_input(input, "nonzero"), "nonzero")
    if as_tuple:
        if v.ndim == 0:
            return (Tensor._wrap(np.zeros(int(v != 0), dtype=np.int64)),)
        return tuple(Tensor._wrap(i.astype(np.int64)) for i in np.nonzero(v))
    return Tensor._wrap(np.argwhere(v).astype(np.int64))  # (count, ndim), 0-d too


def argwhere(input):  # noqa: A002
    """``nonzero(input)``."""
    return nonzero(input)


def _slices(v: np.ndarray, dim, op: str):
    """``v``'s slices along ``dim`` as the rows of a 2-D array (one row per index of ``dim``),
    and ``dim`` normalized; torch's errors for a 0-d ``v`` and for an empty dim not selected."""
    if v.ndim == 0:
        _rules.int_dim(dim, op)
        raise IndexError(f"{op}(): Dimension specified as {dim} but tensor has no dimensions")
    d = _rules.norm_axis(dim, v.ndim, op)
    if v.size == 0 and any(n == 0 for i, n in enumerate(v.shape) if i != d):
        raise RuntimeError(f"{op}(): There are 0 sized dimensions, and they aren't selected, so "
                           "unique cannot be applied")
    return np.moveaxis(v, d, 0).reshape(v.shape[d], v.size // max(v.shape[d], 1)), d


def _runs(rows: np.ndarray) -> np.ndarray:
    """Where each run of equal consecutive rows starts (a bool per row)."""
    start = np.ones(rows.shape[0], dtype=bool)
    start[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    return start


def _unique_out(v, d, keep, inverse, start, return_inverse, return_counts):
    """The (values, inverse, counts) that were asked for: ``v``'s slices ``keep`` along
    ``d``, each slice's group, and the length of each run that ``start`` marks."""
    out = [Tensor._wrap(np.ascontiguousarray(np.take(v, keep, axis=d)))]
    if return_inverse:
        out.append(Tensor._wrap(inverse.astype(np.int64)))
    if return_counts:
        out.append(Tensor._wrap(np.diff(np.append(np.flatnonzero(start), start.size)).astype(
            np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def unique(input, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):
    """The distinct elements of ``input`` (or distinct slices along ``dim``), sorted; with the
    index of each element's value among them (``return_inverse``) and how many times each
    occurs (``return_counts``), as torch. Without ``dim`` each NaN is an entry of its own,
    after every number (in input order: torch's CPU sort is not stable past 16 elements, so
    which NaN entry an element's inverse names can differ from torch's there). With
    ``dim``, slices are ordered lexicographically and the inverse and counts have one entry
    per slice. Eager only, not differentiable.

    >>> import jitgrad
    >>> x = jitgrad.tensor([[3, 1], [1, 2], [3, 1]])
    >>> jitgrad.unique(x, dim=0, return_inverse=True, return_counts=True)
    (tensor([[1, 2],
            [3, 1]]), tensor([1, 0, 1]), tensor([1, 2]))
    """
    v = _eager_only(_input(input, "unique"), "unique")
    if dim is not None:
        rows, d = _slices(v, dim, "unique")
        src = v
    else:  # torch's: every element sorted (``sorted=False`` too), a new entry at every one
        # unlike (``!=``) the one before, so each NaN is one entry
        src, d = v.reshape(-1), 0
        rows = src.reshape(-1, 1)
    order = np.lexsort(rows.T[::-1]) if rows.size else np.arange(rows.shape[0])
    start = _runs(rows[order])
    inverse = np.empty(order.size, dtype=np.int64)
    inverse[order] = np.cumsum(start) - 1
    if dim is None:
        inverse = inverse.reshape(v.shape)
    return _unique_out(src, d, order[start], inverse, start, return_inverse, return_counts)


def unique_consecutive(input, return_inverse: bool = False,  # noqa: A002
                       return_counts: bool = False, dim=None):
    """Collapse each run of equal consecutive elements (of the flattened ``input``) or, with
    ``dim``, of equal consecutive slices along ``dim``, to one; with each element's (slice's)
    run index (``return_inverse``) and the runs' lengths (``return_counts``), as torch.
    Eager only, not differentiable.

    >>> import jitgrad
    >>> jitgrad.unique_consecutive(jitgrad.tensor([1, 1, 2, 1]), return_counts=True)
    (tensor([1, 2, 1]), tensor([2, 1, 1]))
    >>> x = jitgrad.tensor([[1, 1, 2], [3, 3, 4]])
    >>> jitgrad.unique_consecutive(x, return_inverse=True, dim=1)
    (tensor([[1, 2],
            [3, 4]]), tensor([0, 0, 1]))
    """
    v = _eager_only(_input(input, "unique_consecutive"), "unique_consecutive")
    if dim is not None:
        rows, d = _slices(v, dim, "unique_consecutive")
        start = _runs(rows)
        return _unique_out(v, d, np.flatnonzero(start), np.cumsum(start) - 1, start,
                           return_inverse, return_counts)
    start = _runs(v.reshape(-1, 1))
    inverse = (np.cumsum(start) - 1).reshape(v.shape)
    return _unique_out(v.reshape(-1), 0, np.flatnonzero(start), inverse, start,
                       return_inverse, return_counts)


from jitgrad.tensor import Tensor  # noqa: E402
