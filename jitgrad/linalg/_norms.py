"""Norms and the products built from existing ops (``matrix_power``, ``multi_dot``, ``cross``,
``vecdot``, ``diagonal``): compositions, so they differentiate, trace and compile with nothing of
their own; the spectral norms go through the singular values."""

from __future__ import annotations

import math

import numpy as np

from jitgrad import dtypes
from jitgrad.linalg._checks import floating, matrix, tensor_arg
from jitgrad.ops import _rules, linalg as _la
from jitgrad.ops.linalg import matmul
from jitgrad.ops.registry import promote
from jitgrad.ops.reduce import amax, amin, norm as _vector_norm, sum as _sum
from jitgrad.ops.shape import movedim, stack


def _cast(x, dtype, op: str):
    if dtype is not None:
        x = x.to(dtypes.as_dtype(dtype))
    floating(x, op)
    return x


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: A002
    """The vector ``ord``-norm over ``dim`` (every element by default): any number, inf (the
    largest ``|x|``), -inf (the smallest), 0 (the count of nonzeros).

    >>> import jitgrad
    >>> jitgrad.linalg.vector_norm(jitgrad.tensor([3.0, -4.0])), jitgrad.linalg.vector_norm(
    ...     jitgrad.tensor([3.0, -4.0]), ord=1)
    (tensor(5.), tensor(7.))
    """
    x = _cast(tensor_arg(x, "vector_norm", "x"), dtype, "vector_norm")
    if isinstance(ord, str) or isinstance(ord, bool):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    if isinstance(dim, (list, tuple)) and len(dim) == 0:
        dim = None
    if x.ndim == 0:
        x = x.reshape(1)
        out = _vector_norm(x, float(ord), None, False)
        return out
    return _vector_norm(x, float(ord), dim, keepdim)


def _matrix_dims(A, dim, op: str) -> tuple[int, int]:
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise RuntimeError(f"linalg.{op}: dim must be a 2-tuple. Got {dim!r}")
    d0 = _rules.norm_axis(dim[0], A.ndim, op)
    d1 = _rules.norm_axis(dim[1], A.ndim, op)
    if d0 == d1:
        raise RuntimeError(f"linalg.{op}: dims must be different. Got ({dim[0]}, {dim[1]})")
    return d0, d1


def _keep(v, d0: int, d1: int, keepdim: bool):
    """``v`` reduced over both matrix dims with keepdim=True, squeezed unless ``keepdim``."""
    return v if keepdim else v.squeeze(max(d0, d1)).squeeze(min(d0, d1))


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *,  # noqa: N803,A002
                dtype=None):
    """The matrix ``ord``-norm of the ``dim`` planes of ``A``: ``"fro"``, ``"nuc"`` (the sum
    of the singular values), 2 / -2 (the largest / smallest singular value), 1 / -1 (the
    largest / smallest column sum of ``|A|``), inf / -inf (the same of row sums).

    >>> import jitgrad
    >>> A = jitgrad.tensor([[1.0, -2.0], [3.0, 4.0]])
    >>> jitgrad.linalg.matrix_norm(A, 1), jitgrad.linalg.matrix_norm(A, float("inf"))
    (tensor(6.), tensor(7.))
    """
    A = _cast(matrix(A, "matrix_norm"), dtype, "matrix_norm")
    d0, d1 = _matrix_dims(A, dim, "matrix_norm")
    if ord == "fro":
        return _vector_norm(A, 2.0, (d0, d1), keepdim)
    if ord == "nuc" or ord in (2, -2):
        from jitgrad.linalg._decomp import svdvals
        s = svdvals(movedim(A, (d0, d1), (-2, -1)))
        if ord == "nuc":
            v = s.sum(-1)
        else:
            # amax/amin, not the first or last value: where singular values tie (a zero
            # matrix) the gradient is shared evenly among them, as torch's
            v = amax(s, -1) if ord == 2 else amin(s, -1)
        if keepdim:
            for d in sorted((d0, d1)):
                v = v.unsqueeze(d)
        return v
    if ord in (1, -1, math.inf, -math.inf):
        inner, outer = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = _sum(A.abs(), inner, True)
        pick = amax if ord > 0 else amin
        return _keep(pick(sums, outer, True), d0, d1, keepdim)
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: N803,A002
    """A vector norm (``dim`` an int or one dimension, or a 1-D input) or a matrix norm
    (``dim`` two dimensions, or a 2-D input); with neither ``ord`` nor ``dim``, the 2-norm of
    every element.

    >>> import jitgrad
    >>> jitgrad.linalg.norm(jitgrad.tensor([[3.0, 0.0], [0.0, 4.0]]), "nuc")
    tensor(7.)
    """
    A = tensor_arg(A, "norm")
    if dim is not None and not isinstance(dim, (tuple, list)):
        dim = (dim,)
    if dim is None:
        if ord is None:
            return vector_norm(A, 2, None, keepdim, dtype=dtype)
        if A.ndim not in (1, 2):
            raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input "
                               f"must be 1D or 2D. Got {A.ndim}D.")
        dim = tuple(range(A.ndim))
    if len(dim) == 1:
        if isinstance(ord, str):
            raise RuntimeError(f"linalg.norm: ord={ord!r} is a matrix norm and needs two "
                               f"dimensions, got dim={tuple(dim)}")
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got "
                       f"{list(dim)}")


def matrix_power(A, n: int):  # noqa: N803
    """``A`` multiplied by itself ``n`` times (by repeated squaring); ``n = 0`` gives the
    identity, a negative ``n`` the power of the inverse.

    >>> import jitgrad
    >>> jitgrad.linalg.matrix_power(jitgrad.tensor([[1.0, 1.0], [0.0, 1.0]]), 3)
    tensor([[1., 3.],
            [0., 1.]])
    """
    A = tensor_arg(A, "matrix_power")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, got "
                           f"shape {tuple(A.shape)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"linalg.matrix_power(): argument 'n' must be int, not "
                        f"{type(n).__name__}")
    n = int(n)
    if n == 0:
        eye = _la._eye(A.shape[-1], A.dtype)
        return eye.expand(*A.shape) + A * 0  # (A * 0: the result depends on A, with gradient 0)
    if n < 0:
        from jitgrad.linalg._decomp import inv
        A, n = inv(A), -n
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def multi_dot(tensors):
    """The product of the matrices in ``tensors``; the first may be a 1-D row vector and the
    last a 1-D column vector (their dimension is dropped from the result).

    >>> import jitgrad
    >>> jitgrad.linalg.multi_dot([jitgrad.ones(2), jitgrad.ones(2, 3), jitgrad.ones(3)])
    tensor(6.)
    """
    ts = list(tensors)
    if len(ts) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(ts)}")
    for i, t in enumerate(ts):
        tensor_arg(t, "multi_dot", f"tensors[{i}]")
        edge = i in (0, len(ts) - 1)
        if t.ndim != 2 and not (edge and t.ndim == 1):
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D"
                               f"{' or 1D' if edge else ''} but got {t.ndim}D")
    ts = list(promote(*ts))
    out = ts[0]
    for i, t in enumerate(ts[1:], 1):
        if out.shape[-1] != t.shape[0]:
            raise RuntimeError(f"multi_dot(): tensors {i - 1} and {i} with shapes "
                               f"{tuple(ts[i - 1].shape)} and {tuple(t.shape)} cannot be "
                               "multiplied")
        out = matmul(out, t)
    return out


def cross(input, other, *, dim: int = -1):  # noqa: A002
    """The cross product of 3-vectors along ``dim``, the other dimensions broadcast.

    >>> import jitgrad
    >>> jitgrad.linalg.cross(jitgrad.tensor([1.0, 0.0, 0.0]), jitgrad.tensor([0.0, 1.0, 0.0]))
    tensor([0., 0., 1.])
    """
    a = tensor_arg(input, "cross", "input")
    b = tensor_arg(other, "cross", "other")
    if a.ndim != b.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions, got "
                           f"shapes {tuple(a.shape)} and {tuple(b.shape)}")
    d = _rules.norm_axis(dim, a.ndim, "cross")
    if a.shape[d] != 3 or b.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{a.shape[d]} and {b.shape[d]}")
    a, b = promote(a, b)
    a, b = movedim(a, d, -1), movedim(b, d, -1)
    x = [a[..., i] for i in range(3)]
    y = [b[..., i] for i in range(3)]
    out = stack([x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2],
                 x[0] * y[1] - x[1] * y[0]], -1)
    return movedim(out, -1, d)


def vecdot(x, y, *, dim: int = -1):
    """The dot product of vectors along ``dim``, the other dimensions broadcast.

    >>> import jitgrad
    >>> jitgrad.linalg.vecdot(jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]), jitgrad.ones(2))
    tensor([3., 7.])
    """
    x = tensor_arg(x, "vecdot", "x")
    y = tensor_arg(y, "vecdot", "y")
    if x.shape[dim] != y.shape[dim]:
        raise RuntimeError(f"linalg.vecdot: Expected x and y to have the same size in dimension "
                           f"{dim}, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    return (x * y).sum(dim)


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1):  # noqa: N803
    """The ``offset``-th diagonal of the ``dim1``/``dim2`` planes of ``A`` as its last
    dimension (``torch.diagonal`` with the matrix dimensions last by default).

    >>> import jitgrad
    >>> jitgrad.linalg.diagonal(jitgrad.arange(4.0).reshape(2, 2))
    tensor([0., 3.])
    """
    from jitgrad.ops.indexing import diagonal as _diagonal
    return _diagonal(tensor_arg(A, "diagonal"), offset, dim1, dim2)


def vander(x, *, N: int | None = None):  # noqa: N803
    """The Vandermonde matrix of ``x``'s last dimension: powers ``x ** 0 ... x ** (N - 1)``
    along a new last dimension (``N``: the length of ``x``'s last dimension if None), as
    ``torch.linalg.vander``. A running product, so its gradient at ``x = 0`` is exact.

    >>> import jitgrad
    >>> jitgrad.linalg.vander(jitgrad.tensor([2.0, 3.0]), N=3)
    tensor([[1., 2., 4.],
            [1., 3., 9.]])
    """
    x = tensor_arg(x, "linalg.vander", "x")
    if x.ndim == 0:
        x = x.reshape(1)  # (as torch: a 0-d x is one value)
    n = x.shape[-1] if N is None else N
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 1:
        raise RuntimeError(f"linalg.vander: N must be greater than 1, got {N!r}")
    if x.dtype is dtypes.bool_ or x.dtype in (dtypes.uint8, dtypes.int8, dtypes.int16,
                                              dtypes.int32):
        x = x.to(dtypes.int64)  # (torch widens small integers as its products do)
    from jitgrad.factories import ones_like
    from jitgrad.ops.shape import cat
    col = x.unsqueeze(-1)
    return cat([ones_like(col), col.expand(*x.shape, int(n) - 1)], -1).cumprod(-1)
