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


def unique(input, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):
    """The distinct elements of ``input`` (or distinct slices along ``dim``), sorted; with the
    index of each element's value among them (``return_inverse``) and how many times each
    occurs (``return_counts``), as torch. Eager only, not differentiable."""
    v = _eager_only(_input(input, "unique"), "unique")
    axis = None if dim is None else _rules.norm_axis(dim, v.ndim, "unique")
    vals, inv, counts = np.unique(v, return_inverse=True, return_counts=True, axis=axis)
    out = [Tensor._wrap(vals.astype(v.dtype))]
    if return_inverse:
        shape = v.shape if axis is None else (v.shape[axis],)
        out.append(Tensor._wrap(inv.astype(np.int64).reshape(shape)))
    if return_counts:
        out.append(Tensor._wrap(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(input, return_inverse: bool = False,  # noqa: A002
                       return_counts: bool = False, dim=None):
    """``unique`` of each run of equal consecutive elements (1-D or flattened; eager only)."""
    if dim is not None:
        raise NotImplementedError("unique_consecutive(): dim= is not supported")
    v = _eager_only(_input(input, "unique_consecutive"), "unique_consecutive").reshape(-1)
    start = np.ones(v.size, dtype=bool)
    start[1:] = v[1:] != v[:-1]
    out = [Tensor._wrap(v[start].copy())]
    if return_inverse:
        out.append(Tensor._wrap((np.cumsum(start) - 1).astype(np.int64).reshape(input.shape)))
    if return_counts:
        out.append(Tensor._wrap(np.diff(np.append(np.flatnonzero(start), v.size)).astype(
            np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


from jitgrad.tensor import Tensor  # noqa: E402
