"""Products, stacks, splits and rearrangements that torch offers beyond the basics: the ``add*``
family (``addmm``, ``baddbmm``...), ``kron``, ``tensordot``, ``cdist``, the ``*stack`` and
``*split`` families, ``rot90``, ``diff``, ``Tensor.unfold``, ``take``/``put`` and the index
factories. Each is a composition of existing primitives (matmul, reshape, permute, getitem,
index_update, cat, norm), so it differentiates, traces, batches and compiles as they do.

>>> import jitgrad
>>> x = jitgrad.arange(6.0).reshape(2, 3)
>>> jitgrad.hstack([x, x]).shape, jitgrad.vstack([x, x]).shape
(jitgrad.Size([2, 6]), jitgrad.Size([4, 3]))
>>> jitgrad.addmm(jitgrad.ones(2, 2), x, x.T, beta=0.5)
tensor([[ 5.5000, 14.5000],
        [14.5000, 50.5000]])
>>> x.unfold(1, 2, 1)
tensor([[[0., 1.],
         [1., 2.]],
<BLANKLINE>
        [[3., 4.],
         [4., 5.]]])
"""

from __future__ import annotations

import itertools

import numpy as np

from jitgrad import dtypes
from jitgrad._out import with_out
from jitgrad._tensor_methods import _inplace, _write
from jitgrad.devices import check_host
from jitgrad.errors import ShapeError
from jitgrad.factories import from_array, space_bound
from jitgrad.ops import _rules
from jitgrad.ops.elementwise import _tensor, floor_divide, ne, remainder, where
from jitgrad.ops.indexing import diag, diagonal, flip, meshgrid
from jitgrad.ops.linalg import matmul
from jitgrad.ops.reduce import norm, sum_to
from jitgrad.ops.reduce import sum as _sum
from jitgrad.ops.registry import bind, promote, scalar
from jitgrad.ops.shape import (cat, expand, getitem, index_update, movedim, narrow, permute,
                               reshape, scatter_add_p, stack, transpose)
from jitgrad.tensor import Size, Tensor

__all__ = [
    "addbmm", "addmm", "addmv", "addmv_", "addr", "baddbmm", "ger", "outer", "inner", "vdot",
    "kron", "tensordot", "block_diag", "cartesian_prod", "combinations", "cdist", "dist",
    "atleast_1d", "atleast_2d", "atleast_3d", "column_stack", "dstack", "hstack", "vstack",
    "row_stack", "concat", "dsplit", "hsplit", "vsplit", "tensor_split", "split_with_sizes",
    "swapaxes", "swapdims", "unflatten", "ravel", "rot90", "diagflat", "diff",
    "broadcast_shapes", "broadcast_tensors", "adjoint", "tril_indices", "triu_indices",
    "unravel_index", "scalar_tensor", "logspace", "fill", "fill_", "zero_", "take", "put",
]


def _shape(x) -> list:
    return list(x.shape)


def _same_dtype(op: str, **named) -> None:
    """torch's BLAS-backed products refuse mixed dtypes rather than promote."""
    (n0, t0), *rest = named.items()
    for n, t in rest:
        if t.dtype is not t0.dtype:
            raise RuntimeError(f"{op}: {n0} and {n} must have the same dtype, but got "
                               f"{t0.dtype.name} and {t.dtype.name}")


def _check_ndim(op: str, name: str, t, ndim: int) -> None:
    if t.ndim != ndim:
        raise ShapeError(f"{op}: expected {name} to be {ndim}-D, but got a {t.ndim}-D tensor of "
                         f"shape {_shape(t)}")


# -- beta * input + alpha * product -------------------------------------------------------------
def _scaled_sum(op: str, input, prod, beta, alpha):  # noqa: A002
    """``beta * input + alpha * prod`` as torch's ``add*`` ops: ``input`` broadcasts to the
    product's shape (never the other way), and ``beta == 0`` ignores ``input`` (nan included)."""
    if not prod.dtype.is_floating_point:
        for name, v in (("beta", beta), ("alpha", alpha)):
            if isinstance(v, float):
                raise RuntimeError(f"{op}: for integral input tensors, argument {name} must not "
                                   "be a floating point number")
    shape = tuple(prod.shape)
    try:
        fits = _rules.broadcast_shapes(tuple(input.shape), shape, op) == shape
    except ShapeError:
        fits = False
    if not fits:
        raise ShapeError(f"{op}: input of shape {_shape(input)} cannot be broadcast to the "
                         f"product's shape {list(shape)}")
    term = prod if alpha == 1 else prod * alpha
    if beta == 0:
        return term
    return (input if beta == 1 else input * beta) + term


def addmm(input, mat1, mat2, *, beta=1, alpha=1):  # noqa: A002  (torch's argument names)
    """``beta * input + alpha * (mat1 @ mat2)`` for 2-D ``mat1`` and ``mat2``.

    >>> import jitgrad
    >>> jitgrad.addmm(jitgrad.zeros(2), jitgrad.eye(2), jitgrad.ones(2, 2), alpha=3)
    tensor([[3., 3.],
            [3., 3.]])
    """
    _tensor(input, "addmm")
    _check_ndim("addmm", "mat1", mat1, 2)
    _check_ndim("addmm", "mat2", mat2, 2)
    _same_dtype("addmm", self=input, mat1=mat1, mat2=mat2)
    if mat1.shape[1] != mat2.shape[0]:
        raise ShapeError(f"addmm: mat1 and mat2 shapes cannot be multiplied "
                         f"({mat1.shape[0]}x{mat1.shape[1]} and {mat2.shape[0]}x{mat2.shape[1]})")
    return _scaled_sum("addmm", input, matmul(mat1, mat2), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):  # noqa: A002
    """``beta * input + alpha * (mat @ vec)`` for a 2-D ``mat`` and a 1-D ``vec``.

    >>> import jitgrad
    >>> jitgrad.addmv(jitgrad.ones(2), jitgrad.eye(2), jitgrad.tensor([2.0, 3.0]))
    tensor([3., 4.])
    """
    _tensor(input, "addmv")
    _check_ndim("addmv", "mat", mat, 2)
    _check_ndim("addmv", "vec", vec, 1)
    _same_dtype("addmv", self=input, mat=mat, vec=vec)
    if mat.shape[1] != vec.shape[0]:
        raise ShapeError(f"addmv: size mismatch, got mat of shape {_shape(mat)} and vec of "
                         f"shape {_shape(vec)}")
    return _scaled_sum("addmv", input, matmul(mat, vec), beta, alpha)


def addr(input, vec1, vec2, *, beta=1, alpha=1):  # noqa: A002
    """``beta * input + alpha * outer(vec1, vec2)``; dtypes promote, as torch's.

    >>> import jitgrad
    >>> jitgrad.addr(jitgrad.zeros(2, 2), jitgrad.tensor([1.0, 2.0]), jitgrad.tensor([1.0, 3.0]))
    tensor([[1., 3.],
            [2., 6.]])
    """
    _tensor(input, "addr")
    _check_ndim("addr", "vec1", vec1, 1)
    _check_ndim("addr", "vec2", vec2, 1)
    input, vec1, vec2 = promote(input, vec1, vec2)
    return _scaled_sum("addr", input, outer(vec1, vec2), beta, alpha)


def _batches(op: str, input, batch1, batch2) -> None:
    _tensor(input, op)
    _check_ndim(op, "batch1", batch1, 3)
    _check_ndim(op, "batch2", batch2, 3)
    _same_dtype(op, self=input, batch1=batch1, batch2=batch2)
    if batch1.shape[0] != batch2.shape[0]:
        raise ShapeError(f"{op}: batch1 and batch2 must have the same number of batches, got "
                         f"{batch1.shape[0]} and {batch2.shape[0]}")
    if batch1.shape[2] != batch2.shape[1]:
        raise ShapeError(f"{op}: batch1 and batch2 shapes cannot be multiplied "
                         f"({_shape(batch1)} and {_shape(batch2)})")


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):  # noqa: A002
    """``beta * input + alpha * sum_i(batch1[i] @ batch2[i])``.

    >>> import jitgrad
    >>> jitgrad.addbmm(jitgrad.zeros(1, 1), jitgrad.ones(3, 1, 2), jitgrad.ones(3, 2, 1))
    tensor([[6.]])
    """
    _batches("addbmm", input, batch1, batch2)
    return _scaled_sum("addbmm", input, _sum(matmul(batch1, batch2), 0), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):  # noqa: A002
    """``beta * input + alpha * (batch1 @ batch2)``, batch by batch.

    >>> import jitgrad
    >>> jitgrad.baddbmm(jitgrad.ones(1, 1), jitgrad.ones(3, 1, 2), jitgrad.ones(3, 2, 1)).shape
    jitgrad.Size([3, 1, 1])
    """
    _batches("baddbmm", input, batch1, batch2)
    return _scaled_sum("baddbmm", input, matmul(batch1, batch2), beta, alpha)


# -- products ------------------------------------------------------------------------------------
def outer(input, vec2):  # noqa: A002
    """The outer product of two 1-D tensors (``ger`` is its old name); dtypes promote.

    >>> import jitgrad
    >>> jitgrad.outer(jitgrad.tensor([1.0, 2.0]), jitgrad.tensor([1.0, 10.0, 100.0]))
    tensor([[  1.,  10., 100.],
            [  2.,  20., 200.]])
    """
    _tensor(input, "outer")
    _check_ndim("outer", "self", input, 1)
    _check_ndim("outer", "vec2", vec2, 1)
    return reshape(input, (-1, 1)) * reshape(vec2, (1, -1))


ger = outer


def inner(input, other):  # noqa: A002
    """Sums of products over the last dimension of both (a plain product when either is 0-d):
    the result's shape is ``input.shape[:-1] + other.shape[:-1]``.

    >>> import jitgrad
    >>> jitgrad.inner(jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]), jitgrad.tensor([1.0, 1.0]))
    tensor([3., 7.])
    """
    _tensor(input, "inner")
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    _same_dtype("inner", input=input, other=other)
    if input.shape[-1] != other.shape[-1]:
        raise ShapeError(f"inner: the last dimension must match on both input tensors but got "
                         f"shapes {_shape(input)} and {_shape(other)}")
    return tensordot(input, other, ([-1], [-1]))


def vdot(input, other):  # noqa: A002
    """The dot product of two 1-D tensors of one dtype (no complex conjugation: jitgrad has
    no complex dtype).

    >>> import jitgrad
    >>> jitgrad.vdot(jitgrad.tensor([1.0, 2.0]), jitgrad.tensor([3.0, 4.0]))
    tensor(11.)
    """
    _tensor(input, "vdot")
    _check_ndim("vdot", "input", input, 1)
    _check_ndim("vdot", "other", other, 1)
    _same_dtype("vdot", input=input, other=other)
    if input.shape[0] != other.shape[0]:
        raise ShapeError(f"vdot: expected both vectors to have the same number of elements, "
                         f"got {input.shape[0]} and {other.shape[0]}")
    return matmul(input, other)


def kron(input, other):  # noqa: A002
    """The Kronecker product: block ``i`` of the result is ``input[i] * other`` (shapes padded
    with leading ones to the same rank).

    >>> import jitgrad
    >>> jitgrad.kron(jitgrad.eye(2), jitgrad.tensor([[1.0, 2.0]]))
    tensor([[1., 2., 0., 0.],
            [0., 0., 1., 2.]])
    """
    _tensor(input, "kron")
    n = max(input.ndim, other.ndim)
    a = (1,) * (n - input.ndim) + tuple(input.shape)
    b = (1,) * (n - other.ndim) + tuple(other.shape)
    # Each dim of input gets a partner of size 1 after it, other's before it: the product
    # broadcasts to (a0, b0, a1, b1, ...), which reshapes to (a0 * b0, a1 * b1, ...).
    x = reshape(input, tuple(d for s in a for d in (s, 1)))
    y = reshape(other, tuple(d for s in b for d in (1, s)))
    return reshape(x * y, tuple(i * j for i, j in zip(a, b)))


def _tensordot_dims(dims, na: int, nb: int) -> tuple[list, list]:
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, (int, np.integer)) and not isinstance(dims, bool):
        d = int(dims)
        if d < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={d}")
        if d > na or d > nb:
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={d}")
        return list(range(na - d, na)), list(range(d))
    if not isinstance(dims, (tuple, list)) or len(dims) != 2:
        raise TypeError(f"tensordot(): dims must be an int or a pair of lists of dims, got "
                        f"{dims!r}")
    da, db = ([d] if isinstance(d, (int, np.integer)) else list(d) for d in dims)
    if len(da) != len(db):
        raise RuntimeError(f"tensordot: both dimension lists should have same length, got "
                           f"{da} and {db}")
    return da, db


def tensordot(a, b, dims=2):
    """Sums of products over the dimensions ``dims`` names: an int ``n`` (the last ``n`` of
    ``a`` with the first ``n`` of ``b``) or a pair of lists. The result has ``a``'s remaining
    dims, then ``b``'s.

    >>> import jitgrad
    >>> a, b = jitgrad.ones(2, 3, 4), jitgrad.ones(4, 3, 5)
    >>> jitgrad.tensordot(a, b, dims=([1, 2], [1, 0])).shape
    jitgrad.Size([2, 5])
    """
    _tensor(a, "tensordot")
    _tensor(b, "tensordot")
    da, db = _tensordot_dims(dims, a.ndim, b.ndim)
    _same_dtype("tensordot", a=a, b=b)
    da = [_rules.norm_axis(d, a.ndim, "tensordot") for d in da]
    db = [_rules.norm_axis(d, b.ndim, "tensordot") for d in db]
    if len(set(da)) != len(da) or len(set(db)) != len(db):
        raise RuntimeError(f"tensordot: a dimension is contracted twice (dims {da} and {db})")
    for i, j in zip(da, db):
        sa, sb = a.shape[i], b.shape[j]
        if sa != sb:
            if sa != 1 and sb != 1:
                raise ShapeError(f"tensordot: contracted dimensions need to match, but first has "
                                 f"size {sa} in dim {i} and second has size {sb} in dim {j}")
            # torch broadcasts a contracted dim of size 1: sum the other side's dim first
            if sa == 1:
                b = _sum(b, j, keepdim=True)
            else:
                a = _sum(a, i, keepdim=True)
    fa = [d for d in range(a.ndim) if d not in da]
    fb = [d for d in range(b.ndim) if d not in db]
    def size(t, ds) -> int:
        return int(np.prod([t.shape[d] for d in ds], dtype=np.int64))

    # one matrix product: (a's free dims, contracted) @ (contracted, b's free dims)
    k = size(a, da)
    x = reshape(permute(a, fa + da), (size(a, fa), k))
    y = reshape(permute(b, db + fb), (k, size(b, fb)))
    return reshape(matmul(x, y), tuple(a.shape[d] for d in fa) + tuple(b.shape[d] for d in fb))


def block_diag(*tensors):
    """A block-diagonal matrix of the tensors (0-d: a 1x1 block, 1-D: a row); dtypes promote.

    >>> import jitgrad
    >>> jitgrad.block_diag(jitgrad.ones(1, 2), jitgrad.tensor(5.0))
    tensor([[1., 1., 0.],
            [0., 0., 5.]])
    """
    if not tensors:
        return from_array(np.zeros((1, 0), dtypes.default_float.np))
    for i, t in enumerate(tensors):
        _tensor(t, "block_diag")
        if t.ndim > 2:
            raise ShapeError(f"block_diag: input tensors must have 2 or fewer dimensions; input "
                             f"{i} has {t.ndim} dimensions")
    ts = [reshape(t, (1, 1) if t.ndim == 0 else (1, -1) if t.ndim == 1 else tuple(t.shape))
          for t in (promote(*tensors) if len(tensors) > 1 else tensors)]
    width = sum(t.shape[1] for t in ts)
    rows, left = [], 0
    for t in ts:
        r, c = t.shape
        np_dt = t.dtype.np
        rows.append(cat([from_array(np.zeros((r, left), np_dt)), t,
                         from_array(np.zeros((r, width - left - c), np_dt))], 1))
        left += c
    return cat(rows, 0)


def cartesian_prod(*tensors):
    """Every combination of one element from each 1-D tensor, one per row (one tensor:
    itself).

    >>> import jitgrad
    >>> jitgrad.cartesian_prod(jitgrad.tensor([1, 2]), jitgrad.tensor([3, 4]))
    tensor([[1, 3],
            [1, 4],
            [2, 3],
            [2, 4]])
    """
    for t in tensors:
        _tensor(t, "cartesian_prod")
        if t.ndim != 1:
            raise ShapeError(f"cartesian_prod: expected 1-D tensors, but got shape {_shape(t)}")
    if not tensors:
        raise ValueError("cartesian_prod: expected at least one tensor")
    if len(tensors) == 1:
        return tensors[0]
    if any(t.dtype is not tensors[0].dtype for t in tensors):
        raise RuntimeError("cartesian_prod: expects all tensors to have the same dtype, got "
                           + ", ".join(t.dtype.name for t in tensors))
    return stack([reshape(g, (-1,)) for g in meshgrid(*tensors, indexing="ij")], 1)


def combinations(input, r: int = 2, with_replacement: bool = False):  # noqa: A002
    """The length-``r`` combinations of a 1-D tensor's elements, one per row, in
    ``itertools.combinations`` order (``with_replacement``: elements may repeat).

    >>> import jitgrad
    >>> jitgrad.combinations(jitgrad.tensor([1.0, 2.0, 3.0]))
    tensor([[1., 2.],
            [1., 3.],
            [2., 3.]])
    """
    _tensor(input, "combinations")
    if input.ndim != 1:
        raise ShapeError(f"combinations: expected a 1-D tensor, but got shape {_shape(input)}")
    r = int(r)
    if r < 0:
        raise ValueError(f"combinations: r must be non-negative, but got {r}")
    if r == 0:
        return from_array(np.zeros((0,), input.dtype.np))
    pick = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    idx = np.array(list(pick(range(input.shape[0]), r)), np.int64).reshape(-1, r)
    return getitem(input, from_array(idx))


_CDIST_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                "donot_use_mm_for_euclid_dist")


def cdist(x1, x2, p: float = 2.0, compute_mode: str = "use_mm_for_euclid_dist_if_necessary"):
    """The ``p``-norm distance between each row of ``x1`` (``(..., P, M)``) and each row of
    ``x2`` (``(..., R, M)``): shape ``(..., P, R)``, batch dims broadcasting. Computed from the
    differences whatever ``compute_mode`` says (exact, where torch's matrix-product shortcut
    loses digits).

    >>> import jitgrad
    >>> jitgrad.cdist(jitgrad.tensor([[0.0, 0.0]]), jitgrad.tensor([[3.0, 4.0], [1.0, 0.0]]))
    tensor([[5., 1.]])
    """
    for name, t in (("x1", x1), ("x2", x2)):
        _tensor(t, "cdist")
        if t.ndim < 2:
            raise ShapeError(f"cdist: expected {name} with at least 2 dims, got {t.ndim}-D")
        if not t.dtype.is_floating_point:
            raise RuntimeError(f"cdist: only floating-point dtypes are supported, {name} is "
                               f"{t.dtype.name}")
    _same_dtype("cdist", x1=x1, x2=x2)
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: x1 and x2 must have the same number of columns, got "
                         f"{x1.shape[-1]} and {x2.shape[-1]}")
    p = float(p)
    if not p >= 0:
        raise ValueError(f"cdist: p must be non-negative, got {p}")
    if compute_mode not in _CDIST_MODES:
        raise ValueError(f"cdist: {compute_mode!r} is not a valid compute_mode; use one of "
                         f"{', '.join(map(repr, _CDIST_MODES))}")
    d = reshape(x1, tuple(x1.shape[:-1]) + (1, x1.shape[-1])) - \
        reshape(x2, tuple(x2.shape[:-2]) + (1,) + tuple(x2.shape[-2:]))
    return norm(d, p, -1)


def dist(input, other, p=2):  # noqa: A002
    """``norm(input - other, p)``, broadcasting.

    >>> import jitgrad
    >>> jitgrad.dist(jitgrad.tensor([3.0, 4.0]), jitgrad.zeros(2)), jitgrad.dist(
    ...     jitgrad.tensor([3.0, 4.0]), jitgrad.zeros(2), p=1)
    (tensor(5.), tensor(7.))
    """
    _tensor(input, "dist")
    a, b = promote(input, other)
    if not a.dtype.is_floating_point:
        raise RuntimeError(f"dist: expected floating point tensors, got {a.dtype.name}")
    return norm(a - b, float(p))


# -- at least n dims, stacks ---------------------------------------------------------------------
def _atleast(tensors: tuple, op: str, shape_of):
    one = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    out = []
    for t in tensors:
        shape = shape_of(tuple(_tensor(t, op).shape))
        out.append(t if shape == tuple(t.shape) else reshape(t, shape))
    return out[0] if one else tuple(out)


def atleast_1d(*tensors):
    """Each tensor with at least one dim (a 0-d one becomes shape ``(1,)``); one tensor in,
    one out, several (or a list) in, a tuple out.

    >>> import jitgrad
    >>> jitgrad.atleast_1d(jitgrad.tensor(1.0))
    tensor([1.])
    """
    return _atleast(tensors, "atleast_1d", lambda s: s or (1,))


def atleast_2d(*tensors):
    """Each tensor with at least two dims: ``()`` becomes ``(1, 1)``, ``(n,)`` ``(1, n)``.

    >>> import jitgrad
    >>> jitgrad.atleast_2d(jitgrad.ones(3)).shape
    jitgrad.Size([1, 3])
    """
    return _atleast(tensors, "atleast_2d", lambda s: (1,) * (2 - len(s)) + s)


def atleast_3d(*tensors):
    """Each tensor with at least three dims: ``()`` becomes ``(1, 1, 1)``, ``(n,)``
    ``(1, n, 1)`` and ``(m, n)`` ``(m, n, 1)``.

    >>> import jitgrad
    >>> jitgrad.atleast_3d(jitgrad.ones(2, 3)).shape
    jitgrad.Size([2, 3, 1])
    """
    return _atleast(tensors, "atleast_3d",
                    lambda s: (1, 1, 1) if not s else (1,) + s + (1,) if len(s) == 1
                    else s + (1,) if len(s) == 2 else s)


def _tensor_list(tensors, op: str) -> list:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (tuple, list)):
        raise TypeError(f"{op}(): argument 'tensors' must be a tuple or list of Tensors, not "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op} expects a non-empty list of tensors")
    return list(tensors)


def hstack(tensors):
    """Concatenate along the first dim for 1-D tensors, the second otherwise.

    >>> import jitgrad
    >>> jitgrad.hstack([jitgrad.tensor([1, 2]), jitgrad.tensor(3)])
    tensor([1, 2, 3])
    """
    ts = atleast_1d(_tensor_list(tensors, "hstack"))
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    """Concatenate along the first dim, 0-d and 1-D tensors made rows first.

    >>> import jitgrad
    >>> jitgrad.vstack([jitgrad.tensor([1, 2]), jitgrad.tensor([3, 4])])
    tensor([[1, 2],
            [3, 4]])
    """
    return cat(atleast_2d(_tensor_list(tensors, "vstack")), 0)


row_stack = vstack


def dstack(tensors):
    """Concatenate along the third dim, after ``atleast_3d``.

    >>> import jitgrad
    >>> jitgrad.dstack([jitgrad.ones(2, 2), jitgrad.zeros(2, 2)]).shape
    jitgrad.Size([2, 2, 2])
    """
    return cat(atleast_3d(_tensor_list(tensors, "dstack")), 2)


def column_stack(tensors):
    """Side by side as columns: 0-d and 1-D tensors become ``(n, 1)`` columns.

    >>> import jitgrad
    >>> jitgrad.column_stack([jitgrad.tensor([1, 2]), jitgrad.tensor([3, 4])])
    tensor([[1, 3],
            [2, 4]])
    """
    ts = _tensor_list(tensors, "column_stack")
    return cat([reshape(_tensor(t, "column_stack"), (-1, 1)) if t.ndim <= 1 else t
                for t in ts], 1)


def concat(tensors, dim: int = 0):
    """``cat`` under its other name. As torch's, it skips 1-D empty tensors (shape ``(0,)``)
    among tensors of other ranks, though their dtypes still take part in the result's.

    >>> import jitgrad
    >>> jitgrad.concat([jitgrad.ones(1), jitgrad.zeros(1)])
    tensor([1., 0.])
    """
    ts = _tensor_list(tensors, "concat")
    kept = [t for t in ts if not (t.ndim == 1 and t.shape[0] == 0)]
    if kept and len(kept) < len(ts):
        dt = promote(*ts)[0].dtype
        ts = [t.to(dt) for t in kept]
    return cat(ts, dim)


# -- splits --------------------------------------------------------------------------------------
def _slice(x, dim: int, start, stop):
    idx = [slice(None)] * x.ndim
    idx[dim] = slice(start, stop)
    return getitem(x, tuple(idx))


def tensor_split(input, indices_or_sections, dim: int = 0):  # noqa: A002
    """Split into ``n`` nearly equal parts (an int: the first ``size % n`` one longer) or at
    the given indices (a list: ``x[:i0], x[i0:i1], ..., x[ik:]``, Python slicing rules).

    >>> import jitgrad
    >>> [t.tolist() for t in jitgrad.tensor_split(jitgrad.arange(5), 2)]
    [[0, 1, 2], [3, 4]]
    >>> [t.tolist() for t in jitgrad.tensor_split(jitgrad.arange(5), [1, 4])]
    [[0], [1, 2, 3], [4]]
    """
    _tensor(input, "tensor_split")
    if input.ndim == 0:
        raise ShapeError("tensor_split expected at least a 1-dimensional tensor, but got a "
                         "tensor with 0 dims")
    dim = _rules.norm_axis(dim, input.ndim, "tensor_split")
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios.dtype is not dtypes.int64:
            raise RuntimeError(f"tensor_split expected indices_or_sections to have dtype of "
                               f"long, but got {ios.dtype.name}")
        if ios.ndim > 1:
            raise RuntimeError(f"tensor_split expected indices_or_sections to be a 0- or 1-D "
                               f"tensor, but got a {ios.ndim}-D tensor")
        ios = ios.tolist()
    if isinstance(ios, (int, np.integer)) and not isinstance(ios, bool):
        n = int(ios)
        if n <= 0:
            raise RuntimeError(f"tensor_split: number of sections must be larger than 0, got {n}")
        q, r = divmod(input.shape[dim], n)
        bounds = list(itertools.accumulate([q + 1] * r + [q] * (n - r - 1)))
    elif isinstance(ios, (tuple, list)):
        bounds = [int(i) for i in ios]
    else:
        raise TypeError(f"tensor_split(): indices_or_sections must be an int, a list of ints or "
                        f"a tensor, not {type(ios).__name__}")
    edges = [None] + bounds + [None]
    return tuple(_slice(input, dim, a, b) for a, b in zip(edges[:-1], edges[1:]))


def _split_at(op: str, input, ios, dim: int, min_ndim: int):  # noqa: A002
    _tensor(input, op)
    if input.ndim < min_ndim:
        raise ShapeError(f"{op} requires a tensor with at least {min_ndim} dimension"
                         f"{'s' if min_ndim > 1 else ''}, but got a tensor with {input.ndim} "
                         "dimensions")
    if isinstance(ios, (int, np.integer)) and not isinstance(ios, bool):
        size = input.shape[dim]
        if ios <= 0 or size % ios:
            raise RuntimeError(f"{op} attempted to split along dimension {dim}, but the size of "
                               f"the dimension {size} is not divisible by the split_size {ios}")
    return tensor_split(input, ios, dim)


def hsplit(input, indices_or_sections):  # noqa: A002
    """``tensor_split`` along dim 1 (dim 0 for a 1-D tensor); an int must divide the size.

    >>> import jitgrad
    >>> [t.shape for t in jitgrad.hsplit(jitgrad.ones(2, 4), 2)]
    [jitgrad.Size([2, 2]), jitgrad.Size([2, 2])]
    """
    dim = 1 if getattr(input, "ndim", 0) > 1 else 0
    return _split_at("hsplit", input, indices_or_sections, dim, 1)


def vsplit(input, indices_or_sections):  # noqa: A002
    """``tensor_split`` along dim 0 of a tensor of 2 or more dims.

    >>> import jitgrad
    >>> [t.shape for t in jitgrad.vsplit(jitgrad.ones(4, 2), [1])]
    [jitgrad.Size([1, 2]), jitgrad.Size([3, 2])]
    """
    return _split_at("vsplit", input, indices_or_sections, 0, 2)


def dsplit(input, indices_or_sections):  # noqa: A002
    """``tensor_split`` along dim 2 of a tensor of 3 or more dims.

    >>> import jitgrad
    >>> len(jitgrad.dsplit(jitgrad.ones(1, 1, 4), 4))
    4
    """
    return _split_at("dsplit", input, indices_or_sections, 2, 3)


def split_with_sizes(input, split_sizes, dim: int = 0):  # noqa: A002
    """Pieces of the given sizes along ``dim``, which must add up to its size.

    >>> import jitgrad
    >>> [t.tolist() for t in jitgrad.split_with_sizes(jitgrad.arange(5), [2, 3])]
    [[0, 1], [2, 3, 4]]
    """
    _tensor(input, "split_with_sizes")
    dim = _rules.norm_axis(dim, input.ndim, "split_with_sizes")
    sizes = [int(s) for s in split_sizes]
    size = input.shape[dim] if input.ndim else 1
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"split_with_sizes expects split_sizes to have only non-negative "
                           f"entries, but got split_sizes={sizes}")
    if sum(sizes) != size:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} (the "
                           f"input's size at dimension {dim}), but got split_sizes={sizes}")
    starts = [0] + list(itertools.accumulate(sizes))
    return tuple(narrow(input, dim, a, s) for a, s in zip(starts, sizes))


# -- rearrangements ------------------------------------------------------------------------------
def swapaxes(input, axis0: int, axis1: int):  # noqa: A002
    """``transpose`` under NumPy's name.

    >>> import jitgrad
    >>> jitgrad.swapaxes(jitgrad.ones(2, 3), 0, 1).shape
    jitgrad.Size([3, 2])
    """
    return transpose(_tensor(input, "swapaxes"), axis0, axis1)


def swapdims(input, dim0: int, dim1: int):  # noqa: A002
    """``transpose`` under another name.

    >>> import jitgrad
    >>> jitgrad.swapdims(jitgrad.ones(2, 3, 4), 0, 2).shape
    jitgrad.Size([4, 3, 2])
    """
    return transpose(_tensor(input, "swapdims"), dim0, dim1)


def unflatten(input, dim: int, sizes):  # noqa: A002
    """Dim ``dim`` split into dims of ``sizes`` (one may be -1, inferred).

    >>> import jitgrad
    >>> jitgrad.ones(2, 6).unflatten(1, (3, -1)).shape
    jitgrad.Size([2, 3, 2])
    """
    _tensor(input, "unflatten")
    d = _rules.norm_axis(dim, input.ndim, "unflatten")
    sizes = [int(s) for s in sizes]
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    shape = tuple(input.shape) or (1,)
    n = shape[d]
    known = int(np.prod([s for s in sizes if s != -1], dtype=np.int64))
    if sizes.count(-1) > 1:
        raise RuntimeError(f"unflatten: only one dimension can be inferred, got sizes {sizes}")
    if -1 in sizes:
        if known == 0 or n % known:
            raise RuntimeError(f"unflatten: sizes {sizes} cannot be made to multiply up to the "
                               f"size of dim {d} ({n}) in the input tensor")
        sizes = [n // known if s == -1 else s for s in sizes]
    elif known != n:
        raise RuntimeError(f"unflatten: provided sizes {sizes} don't multiply up to the size of "
                           f"dim {d} ({n}) in the input tensor")
    return reshape(input, shape[:d] + tuple(sizes) + shape[d + 1:])


def ravel(input):  # noqa: A002
    """The elements as a 1-D tensor, in row-major order.

    >>> import jitgrad
    >>> jitgrad.ravel(jitgrad.tensor([[1, 2], [3, 4]]))
    tensor([1, 2, 3, 4])
    """
    return reshape(_tensor(input, "ravel"), (-1,))


def rot90(input, k: int = 1, dims=(0, 1)):  # noqa: A002
    """Rotate by 90 degrees ``k`` times in the plane of ``dims``, from the first dim toward
    the second.

    >>> import jitgrad
    >>> jitgrad.rot90(jitgrad.tensor([[1, 2], [3, 4]]))
    tensor([[2, 4],
            [1, 3]])
    """
    _tensor(input, "rot90")
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"rot90: expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = (_rules.norm_axis(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise RuntimeError(f"rot90: expected rotation dims to be different, but got dim0 = "
                           f"{dims[0]} and dim1 = {dims[1]}")
    k = int(k) % 4
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return transpose(flip(input, (d0,)), d0, d1)
    return input.clone()


def diagflat(input, offset: int = 0):  # noqa: A002
    """A square matrix with the flattened input on diagonal ``offset``.

    >>> import jitgrad
    >>> jitgrad.diagflat(jitgrad.tensor([[1, 2]]))
    tensor([[1, 0],
            [0, 2]])
    """
    return diag(reshape(_tensor(input, "diagflat"), (-1,)), offset)


def diff(input, n: int = 1, dim: int = -1, prepend=None, append=None):  # noqa: A002
    """The ``n``-th forward difference along ``dim`` (``x[1:] - x[:-1]``; for bools, where
    neighbours differ), after putting ``prepend`` and ``append`` on either end.

    >>> import jitgrad
    >>> jitgrad.diff(jitgrad.tensor([1, 4, 9, 16])), jitgrad.diff(jitgrad.tensor([1, 4, 9]), 2)
    (tensor([3, 5, 7]), tensor([2]))
    """
    _tensor(input, "diff")
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    n = int(n)
    if n < 0:
        raise RuntimeError(f"diff: order must be non-negative but got {n}")
    d = _rules.norm_axis(dim, input.ndim, "diff")
    if n == 0:  # as torch: nothing to difference, prepend and append unused
        return input.clone()
    parts = [input]
    for name, t in (("prepend", prepend), ("append", append)):
        if t is None:
            continue
        _tensor(t, "diff")
        if t.ndim != input.ndim:
            raise ShapeError(f"diff expects {name} to have as many dims as input ({input.ndim}), "
                             f"got {t.ndim}")
        parts.insert(0 if name == "prepend" else len(parts), t)
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        hi, lo = _slice(x, d, 1, None), _slice(x, d, None, -1)
        x = ne(hi, lo) if x.dtype is dtypes.bool_ else hi - lo
    return x


def adjoint(input):  # noqa: A002
    """The conjugate transpose of the last two dims (a transpose: jitgrad has no complex
    dtype).

    >>> import jitgrad
    >>> jitgrad.adjoint(jitgrad.ones(4, 2, 3)).shape
    jitgrad.Size([4, 3, 2])
    """
    _tensor(input, "adjoint")
    if input.ndim < 2:
        raise RuntimeError(f"adjoint() is only supported on matrices or batches of matrices; got "
                           f"a {input.ndim}-D tensor")
    return transpose(input, -2, -1)


def _trace(input):  # noqa: A002
    """The sum of the main diagonal of a 2-D tensor (integers sum to int64).

    >>> import jitgrad
    >>> jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]).trace()
    tensor(5.)
    """
    _tensor(input, "trace")
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got a tensor with {input.ndim} dims")
    if input.dtype is dtypes.bool_:
        raise RuntimeError("trace: not implemented for bool tensors")
    return _sum(diagonal(input))


# -- broadcasting --------------------------------------------------------------------------------
def broadcast_shapes(*shapes):
    """The shape that tensors of all ``shapes`` broadcast to (an int stands for ``(n,)``).

    >>> import jitgrad
    >>> jitgrad.broadcast_shapes((2, 1), (3,), 1)
    jitgrad.Size([2, 3])
    """
    out: tuple = ()
    for s in shapes:
        s = (int(s),) if isinstance(s, (int, np.integer)) else tuple(int(d) for d in s)
        if any(d < 0 for d in s):
            raise ValueError(f"broadcast_shapes: a shape has a negative size: {list(s)}")
        out = _rules.broadcast_shapes(out, s, "broadcast_shapes")
    return Size(out)


def broadcast_tensors(*tensors):
    """The tensors expanded to their common broadcast shape (views, as ``expand``'s).

    >>> import jitgrad
    >>> [t.shape for t in jitgrad.broadcast_tensors(jitgrad.ones(2, 1), jitgrad.ones(3))]
    [jitgrad.Size([2, 3]), jitgrad.Size([2, 3])]
    """
    for t in tensors:
        _tensor(t, "broadcast_tensors")
    shape = broadcast_shapes(*(tuple(t.shape) for t in tensors))
    return tuple(expand(t, *shape) for t in tensors)


# -- index factories -----------------------------------------------------------------------------
def _indices(op: str, row: int, col: int, offset: int, dtype, device, np_fn):
    check_host(device)
    dt = dtypes.as_dtype(dtype)
    if dt.is_floating_point or dt is dtypes.bool_:
        raise RuntimeError(f"{op}: dtype must be an integer dtype, got {dt.name}")
    row, col, offset = int(row), int(col), int(offset)
    for name, v in (("row", row), ("col", col)):
        if v < 0:
            raise RuntimeError(f"{op}: {name} must be non-negative, got {v}")
    return from_array(np.stack(np_fn(row, offset, col)).astype(dt.np).reshape(2, -1))


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=dtypes.int64, device=None,
                 layout=None):
    """The (row, column) indices of the lower triangle of a ``row x col`` matrix, on and below
    diagonal ``offset``, as a ``2 x N`` tensor in row-major order.

    >>> import jitgrad
    >>> jitgrad.tril_indices(3, 3)
    tensor([[0, 1, 1, 2, 2, 2],
            [0, 0, 1, 0, 1, 2]])
    """
    return _indices("tril_indices", row, col, offset, dtype, device, np.tril_indices)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=dtypes.int64, device=None,
                 layout=None):
    """The (row, column) indices of the upper triangle, on and above diagonal ``offset``.

    >>> import jitgrad
    >>> jitgrad.triu_indices(2, 3, 1)
    tensor([[0, 0, 1],
            [1, 2, 2]])
    """
    return _indices("triu_indices", row, col, offset, dtype, device, np.triu_indices)


def unravel_index(indices, shape):
    """Flat indices into a tensor of ``shape`` as a tuple of coordinate tensors (int64, each of
    ``indices``' shape). As torch, an index out of range wraps around (Python's ``//`` and
    ``%``) rather than raising.

    >>> import jitgrad
    >>> jitgrad.unravel_index(jitgrad.tensor([4, 5]), (2, 3))
    (tensor([1, 1]), tensor([1, 2]))
    """
    if not isinstance(indices, Tensor):
        raise TypeError(f"unravel_index(): expected 'indices' to be a Tensor, got "
                        f"{type(indices).__name__}")
    if indices.dtype.is_floating_point or indices.dtype is dtypes.bool_:
        raise TypeError(f"unravel_index(): expected 'indices' to be integer dtype, but got "
                        f"{indices.dtype.name}")
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"unravel_index(): 'shape' cannot have negative values, but got "
                         f"{shape}")
    if 0 in shape:
        raise RuntimeError(f"unravel_index(): 'shape' {shape} has a zero-size dim, which no "
                           "index can fall in")
    idx = indices.to(dtypes.int64)
    out, stride = [], 1
    for s in reversed(shape):
        # floor division and remainder (not C's truncation) give torch's wrap-around
        out.append(remainder(floor_divide(idx, stride) if stride != 1 else idx, s))
        stride *= s
    return tuple(reversed(out))


# -- factories and fills -------------------------------------------------------------------------
def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                  pin_memory: bool = False):
    """A 0-d tensor holding ``s``, of the default float dtype unless ``dtype`` says.

    >>> import jitgrad
    >>> jitgrad.scalar_tensor(3), jitgrad.scalar_tensor(3, dtype=jitgrad.int64)
    (tensor(3.), tensor(3))
    """
    check_host(device)
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
    if isinstance(s, Tensor):
        s = s.item()
    return from_array(np.array(s, dt.np), requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, layout=None,
             device=None, requires_grad: bool = False):
    """``steps`` values from ``base ** start`` to ``base ** end``, evenly spaced in the
    exponent (integer dtypes truncate, as torch).

    >>> import jitgrad
    >>> jitgrad.logspace(0, 3, 4)
    tensor([   1.,   10.,  100., 1000.])
    """
    check_host(device)
    start, end = space_bound(start, "start", "logspace"), space_bound(end, "end", "logspace")
    start, end, steps = float(start), float(end), int(steps)
    if steps < 0:
        raise RuntimeError(f"logspace: number of steps must be non-negative, got {steps}")
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
    # The exponents grow from start over the first half and back from end over the second,
    # so both ends are exact (as torch's linspace is).
    i = np.arange(steps, dtype=np.float64)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    exps = np.where(i < steps // 2, start + step * i, end - step * (steps - 1 - i)) \
        if steps > 1 else np.full(steps, start)
    with np.errstate(all="ignore"):
        vals = np.power(float(base), exps)
    return from_array(vals.astype(dt.np), requires_grad)


def fill(input, value):  # noqa: A002
    """A tensor of ``input``'s shape and dtype filled with ``value`` (a number or a 0-d tensor,
    whose gradient is the sum of the result's).

    >>> import jitgrad
    >>> jitgrad.fill(jitgrad.ones(2, dtype=jitgrad.int64), 2.5)
    tensor([2, 2])
    """
    _tensor(input, "fill")
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"fill only supports a 0-dimension value tensor but got a tensor "
                               f"with {value.ndim} dimensions")
        v = value.to(input.dtype)
    else:
        v = scalar(value, input.dtype)
    # where() keeps input in the graph (with a zero gradient, as torch's) and makes a new
    # tensor of its shape; a constant true condition costs nothing per element.
    return where(scalar(True, dtypes.bool_), v, input)


def fill_(input, value):  # noqa: A002
    """``input.fill_(value)``: every element of ``input`` set to ``value``, in place.

    >>> import jitgrad
    >>> jitgrad.fill_(jitgrad.zeros(2), 7)
    tensor([7., 7.])
    """
    return _write(_tensor(input, "fill_"), lambda src: fill(src, value), "fill_", (value,))


def zero_(input):  # noqa: A002
    """``input.zero_()``: every element of ``input`` set to zero, in place.

    >>> import jitgrad
    >>> jitgrad.zero_(jitgrad.ones(2))
    tensor([0., 0.])
    """
    return _write(_tensor(input, "zero_"), lambda src: fill(src, 0), "zero_")


def addmv_(input, mat, vec, *, beta=1, alpha=1):  # noqa: A002
    """``addmv`` written into ``input``.

    >>> import jitgrad
    >>> x = jitgrad.ones(2)
    >>> _ = jitgrad.addmv_(x, jitgrad.eye(2), jitgrad.ones(2))
    >>> x
    tensor([2., 2.])
    """
    return _tensor(input, "addmv_").addmv_(mat, vec, beta=beta, alpha=alpha)


# -- gathers and scatters on the flattened tensor ------------------------------------------------
def _flat_index(op: str, index, numel: int):
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}(): argument 'index' must be a Tensor, not {type(index).__name__}")
    if index.dtype is not dtypes.int64:
        raise RuntimeError(f"{op}(): expected a long tensor for index, but got "
                           f"{index.dtype.name}")
    v = index._value
    if index._ir is None and v is not None and v.size:
        bad = (v < -numel) | (v >= numel)
        if bad.any():
            raise IndexError(f"{op}(): out of range: tried to access index "
                             f"{int(v[bad].reshape(-1)[0])} on a tensor of {numel} elements")
    return index


def take(input, index):  # noqa: A002
    """The elements of the flattened ``input`` at ``index`` (negative counts from the end), in
    ``index``'s shape.

    >>> import jitgrad
    >>> jitgrad.take(jitgrad.tensor([[1, 2], [3, 4]]), jitgrad.tensor([0, -1]))
    tensor([1, 4])
    """
    _tensor(input, "take")
    index = _flat_index("take", index, input.numel())
    return getitem(reshape(input, (-1,)), index)


def put(input, index, source, accumulate: bool = False):  # noqa: A002
    """A copy of ``input`` whose flattened elements at ``index`` are ``source``'s (added to
    them with ``accumulate``, repeated indices adding up).

    >>> import jitgrad
    >>> x = jitgrad.zeros(2, 2)
    >>> x.put(jitgrad.tensor([0, 3]), jitgrad.tensor([1.0, 2.0]))
    tensor([[1., 0.],
            [0., 2.]])
    >>> x.put(jitgrad.tensor([1, 1]), jitgrad.tensor([1.0, 2.0]), accumulate=True)
    tensor([[0., 3.],
            [0., 0.]])
    """
    _tensor(input, "put")
    index = _flat_index("put", index, input.numel())
    if not isinstance(source, Tensor):
        raise TypeError(f"put(): argument 'source' must be a Tensor, not "
                        f"{type(source).__name__}")
    if source.dtype is not input.dtype:
        raise RuntimeError(f"put(): self and source expected to have the same dtype, but got "
                           f"{input.dtype.name} and {source.dtype.name}")
    if source.numel() != index.numel():
        raise ShapeError(f"put(): expected source and index to have the same number of "
                         f"elements, but got {source.numel()} and {index.numel()}")
    flat, idx, src = reshape(input, (-1,)), reshape(index, (-1,)), reshape(source, (-1,))
    if accumulate:
        added = bind(scatter_add_p, (src, idx), {"shape": (input.numel(),), "index": (("t", 0),)})
        out = flat + added
    else:
        out = index_update(flat, idx, src)
    return reshape(out, tuple(input.shape))


# -- methods only ------------------------------------------------------------------------------
def _sum_to_size(self, *size):
    """``self`` summed down to ``size`` (which must broadcast to ``self``'s shape).

    >>> import jitgrad
    >>> jitgrad.ones(2, 3).sum_to_size(1, 3)
    tensor([[2., 2., 2.]])
    """
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    own = tuple(self.shape)
    lead = len(own) - len(shape)
    if lead < 0 or any(s != 1 and s != own[lead + i] for i, s in enumerate(shape)):
        raise RuntimeError(f"sum_to_size: size {list(shape)} is not expandable to size "
                           f"{list(own)}")
    return sum_to(self, shape)


def _unfold(self, dimension: int, size: int, step: int):
    """Every slice of length ``size`` along ``dimension``, ``step`` apart: that dim becomes the
    number of slices and a new last dim of ``size`` holds each.

    >>> import jitgrad
    >>> jitgrad.arange(5.0).unfold(0, 2, 2)
    tensor([[0., 1.],
            [2., 3.]])
    """
    if self.ndim == 0:
        return reshape(_unfold(reshape(self, (1,)), dimension, size, step), (-1,))
    d = _rules.norm_axis(dimension, self.ndim, "unfold")
    n, size, step = self.shape[d], int(size), int(step)
    if size < 0:
        raise RuntimeError(f"unfold: size is {size} but must be >= 0")
    if size > n:
        raise RuntimeError(f"unfold: maximum size for tensor at dimension {d} is {n} but size is "
                           f"{size}")
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")
    count = (n - size) // step + 1
    idx = np.arange(count, dtype=np.int64)[:, None] * step + np.arange(size, dtype=np.int64)
    windows = getitem(movedim(self, d, -1), (Ellipsis, from_array(idx)))
    return movedim(windows, -2, d)


Tensor.sum_to_size = _sum_to_size
Tensor.unfold = _unfold
Tensor.trace = _trace  # jitgrad.trace, the subpackage, is callable too (jitgrad/__init__.py)
for _name, _fn in (("addbmm", addbmm), ("addmm", addmm), ("addmv", addmv), ("addr", addr),
                   ("baddbmm", baddbmm), ("put", put)):
    setattr(Tensor, _name, _fn)
    setattr(Tensor, _name + "_", _inplace(_name + "_", _fn))
for _name in ("outer", "ger", "inner", "vdot", "kron", "dist", "dsplit", "hsplit", "vsplit",
              "tensor_split", "split_with_sizes", "swapaxes", "swapdims", "unflatten", "ravel",
              "rot90", "diagflat", "diff", "adjoint", "take"):
    setattr(Tensor, _name, globals()[_name])

# The top-level functions that take out=, as torch's do (the methods do not).
for _name in ("addbmm", "addmm", "addmv", "addr", "baddbmm", "outer", "ger", "inner", "vdot",
              "kron", "tensordot", "column_stack", "dstack", "hstack", "vstack", "row_stack",
              "concat", "diff", "logspace", "take"):
    globals()[_name] = with_out(globals()[_name])
del _name, _fn
