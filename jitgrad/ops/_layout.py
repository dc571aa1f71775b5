"""The memory layout (strides) of each eager result, as torch lays it out.

A tensor's value is a NumPy array, and ``view`` succeeds exactly when NumPy can reshape that
array without a copy, which is torch's own rule (``computeStride``) applied to the same strides.
So ``view`` raises where torch's does only if every op leaves its result with torch's strides.
NumPy's choices differ (a reduction of a permuted array comes out permuted, ``x.t() + y`` comes
out row-major, fancy indexing and ``concatenate`` keep their own orders), so each primitive
declares, in the registry, which rule gives its result torch's layout:

- ``elementwise`` (an elementwise primitive's default): torch's TensorIterator, which follows
  the strides of its first operand that orders two dims ("preserve format": ``x.t() * 2`` stays
  transposed, and so cannot be viewed flat, in torch as here);
- ``contiguous`` (reductions, scans, matmul, cat): row-major, as torch allocates them;
- ``index``: torch's ``index`` kernel, a TensorIterator over the source with the indexed dims
  replaced by the index tensors' (``x[:, idx]`` is row-major, ``x.t()[:, idx]`` follows x.t());
- ``like_first``: the first input's layout (``index_update``: a clone of it, written to);
- none: views, whose NumPy strides are torch's.

A rule gets the result and the input arrays and gives back the result, copied into torch's
layout only where it differs (values never change).
"""

from __future__ import annotations

import numpy as np


def _same_layout(a: np.ndarray, strides: tuple) -> bool:
    # Only dims longer than 1 matter: neither torch nor NumPy reads the stride of a dim of 1
    # when it decides whether a reshape can be a view.
    return all(s == t for n, s, t in zip(a.shape, a.strides, strides) if n > 1)


def _dense_strides(shape: tuple, perm: list, itemsize: int) -> tuple:
    """Strides of a dense array whose dims, fastest first, are ``perm``."""
    strides = [0] * len(shape)
    step = itemsize
    for d in perm:
        strides[d] = step
        step *= max(shape[d], 1)
    return tuple(strides)


def _into(out: np.ndarray, strides: tuple) -> np.ndarray:
    """``out`` itself if it already has ``strides`` (where they matter), else a copy that has."""
    if out.size <= 1 or _same_layout(out, strides):
        return out
    res = np.lib.stride_tricks.as_strided(np.empty(out.size, out.dtype), out.shape, strides)
    res[...] = out
    return res


def non_overlapping_dense(a: np.ndarray) -> bool:
    """torch's ``is_non_overlapping_and_dense``: the dims, by stride, tile memory exactly."""
    need = a.itemsize
    for d in sorted((d for d in range(a.ndim) if a.shape[d] > 1), key=lambda d: a.strides[d]):
        if a.strides[d] != need:
            return False
        need *= a.shape[d]
    return True


def channels_last(a: np.ndarray) -> bool:
    """torch's ``is_contiguous(memory_format=torch.channels_last)`` for a 4-D array (NHWC)."""
    if a.ndim != 4:
        return False
    need = a.itemsize
    for d in (1, 3, 2, 0):
        if a.shape[d] != 1:
            if a.strides[d] != need:
                return False
            need *= a.shape[d]
    return True


def _iter_order(shape: tuple, operands: list) -> list:
    """TensorIterator's ``reorder_dimensions``: the dims of ``shape``, fastest first, from the
    operands' byte strides (broadcast dims have stride 0 and take no part); the first operand
    that orders two dims decides, ties go to the shorter dim, and nothing ordering them keeps
    row-major order."""
    nd = len(shape)
    strides = []
    for shp, st in operands:
        lead = nd - len(shp)
        strides.append([0] * lead + [0 if n == 1 and shape[lead + i] != 1 else s
                                     for i, (n, s) in enumerate(zip(shp, st))])

    def should_swap(d0: int, d1: int) -> int:
        for st in strides:
            s0, s1 = st[d0], st[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 != s1:
                return 1 if s0 > s1 else -1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = list(range(nd - 1, -1, -1))
    for i in range(1, nd):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    return perm


def _iter_strides(shape: tuple, arrays: list, itemsize: int) -> tuple | None:
    """The strides TensorIterator gives its output (None: row-major), from its inputs."""
    if all(a.shape == shape for a in arrays):  # its fast set-up, for operands of one shape
        if all(a.flags.c_contiguous for a in arrays):
            return None
        if all(channels_last(a) for a in arrays):
            return _dense_strides(shape, [1, 3, 2, 0], itemsize)
        first = arrays[0]
        if all(non_overlapping_dense(a) for a in arrays) and all(
                _same_layout(a, first.strides) for a in arrays[1:]):
            return tuple(s // first.itemsize * itemsize for s in first.strides)
    return _dense_strides(shape, _iter_order(shape, [(a.shape, a.strides) for a in arrays]),
                          itemsize)


def for_grad(g: np.ndarray, leaf: np.ndarray) -> np.ndarray:
    """A fresh copy of ``g`` laid out as the ``.grad`` of ``leaf`` is in torch (its gradient
    layout contract, ``AccumulateGrad``): with the leaf's strides when the leaf is dense, else
    row-major. So ``x.grad`` of a row-major ``x`` is row-major even when the gradient came
    through a transpose (``(x.t() * w).sum()``)."""
    if g.shape == leaf.shape and leaf.flags.c_contiguous:
        # Both rules give a row-major array here (empty_like keeps a row-major leaf's order).
        return g.copy()
    out = np.empty_like(leaf, dtype=g.dtype) if non_overlapping_dense(leaf) else \
        np.empty(g.shape, g.dtype)
    np.copyto(out, g)
    return out


def elementwise(out: np.ndarray, inputs: list, params: dict) -> np.ndarray:
    if out.ndim < 2:
        return out
    if out.flags.c_contiguous:  # and every operand row-major: the common case, decided at once
        for a in inputs:
            if a.ndim and not a.flags.c_contiguous:
                break
        else:
            return out
    arrays = [a for a in inputs if a.ndim]  # 0-d operands (scalars) order nothing
    strides = _iter_strides(out.shape, arrays, out.itemsize) if arrays else None
    return np.ascontiguousarray(out) if strides is None else _into(out, strides)


def like_first(out: np.ndarray, inputs: list, params: dict) -> np.ndarray:
    return elementwise(out, inputs[:1], params)


def contiguous(out: np.ndarray, inputs: list, params: dict) -> np.ndarray:
    return out if out.flags.c_contiguous else np.ascontiguousarray(out)


def cat(out: np.ndarray, inputs: list, params: dict) -> np.ndarray:
    # torch's cat keeps channels-last when every input is (4-D, and not also row-major);
    # anything else is row-major.
    if all(channels_last(a) and not a.flags.c_contiguous for a in inputs):
        return _into(out, _dense_strides(out.shape, [1, 3, 2, 0], out.itemsize))
    return contiguous(out, inputs, params)


def index(out: np.ndarray, inputs: list, params: dict, np_index) -> np.ndarray:
    """``x[...]`` with index tensors: torch applies the basic part (slices, None, Ellipsis) as a
    view, then runs a TensorIterator over that view restrided, its indexed dims replaced by the
    broadcast index shape with stride 0, and over the index tensors (a bool mask as the columns
    of its ``nonzero()``); see ``AdvancedIndex`` in ATen's ``TensorAdvancedIndexing.cpp``."""
    x, idx = inputs[0], inputs[1:]
    if not idx or out.ndim < 2:  # without index tensors, a view: NumPy's strides are torch's
        return out
    spec = params["index"]
    used = sum(1 for s in spec if s[0] in "is") + sum(
        idx[s[1]].ndim if idx[s[1]].dtype == np.bool_ else 1 for s in spec if s[0] == "t")
    basic, found, d = [], [], 0  # found: (first dim in the view, index arrays)
    for s in spec:
        if s[0] == "t":
            a = idx[s[1]]
            if a.dtype == np.bool_:
                nz = np.stack(np.nonzero(a), axis=1).astype(np.int64)  # (count, a.ndim)
                cols = [nz[:, j] for j in range(a.ndim)]
            else:
                cols = [a]
            found.append((d, cols))
            basic += [slice(None)] * len(cols)
            d += len(cols)
        elif s[0] == "e":
            basic.append(Ellipsis)
            d += x.ndim - used
        else:
            basic.append(np_index((s,), ())[0])
            d += s[0] != "i"
    view = x[tuple(basic)]
    dims = [(d0 + j, c) for d0, cols in found for j, c in enumerate(cols)]
    rep = np.broadcast_shapes(*[c.shape for _, c in dims])
    at = [d_ for d_, _ in dims]
    order = list(range(view.ndim))
    if at != list(range(at[0], at[0] + len(at))):  # not adjacent: indexed dims go first
        order = at + [k for k in range(view.ndim) if k not in at]
        at = list(range(len(at)))
    before, after = at[0], view.ndim - at[-1] - 1
    vs = [view.shape[k] for k in order]
    vst = [view.strides[k] for k in order]
    shape = tuple(vs[:before]) + rep + tuple(vs[at[-1] + 1:])
    if shape != out.shape:  # not the layout we model: leave NumPy's
        return out
    src = (shape, tuple(vst[:before]) + (0,) * len(rep) + tuple(vst[at[-1] + 1:]))
    operands = [src]
    for _, c in dims:
        b = np.broadcast_to(c, rep)
        operands.append(((1,) * before + rep + (1,) * after,
                         (0,) * before + b.strides + (0,) * after))
    return _into(out, _dense_strides(shape, _iter_order(shape, operands), out.itemsize))
