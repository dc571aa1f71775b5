"""The LU family: ``linalg.lu_factor`` (``_ex``), ``linalg.lu``, ``linalg.lu_solve``,
``linalg.solve_ex``, and the older ``torch.lu``, ``torch.lu_unpack``, ``torch.lu_solve``, with
torch's names, result tuples, pivots (1-based, int32) and errors. The factorization is the
primitive of ``jitgrad.ops.linalg_lu`` (which carries the gradient); the rest are compositions
of it with triangular solves, so everything differentiates to any order and compiles.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from jitgrad import dtypes
from jitgrad.linalg._checks import matrix, same_dtype, tensor_arg
from jitgrad.ops import linalg_lu as _lu
from jitgrad.ops.linalg import _mT, _solve_triangular, info_p, matmul
from jitgrad.ops.registry import bind
from jitgrad.ops.shape import _const
from jitgrad.tensor import Tensor

LuFactorResult = namedtuple("linalg_lu_factor", ["LU", "pivots"])
LuFactorExResult = namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LuResult = namedtuple("linalg_lu", ["P", "L", "U"])
SolveExResult = namedtuple("linalg_solve_ex", ["result", "info"])
LuUnpackResult = namedtuple("lu_unpack", ["P", "L", "U"])
LuWithInfoResult = namedtuple("_lu_with_info", ["LU", "pivots", "info"])


def _no_pivot(pivot: bool, op: str) -> None:
    if not pivot:
        raise RuntimeError(f"linalg.{op}: LU without pivoting is not implemented on the CPU "
                           "(torch's CPU has none either); use pivot=True")


def _zero_info(A):  # noqa: N803
    return _const(np.zeros(tuple(A.shape[:-2]), dtype=np.int32))


def lu_factor_ex(A, *, pivot: bool = True, check_errors: bool = False):  # noqa: N803
    """``(LU, pivots, info)``: the LU factorization with partial pivoting of each (m, n) matrix
    of ``A`` (``A = P L U``), packed as LAPACK's ``getrf``: ``LU`` holds U on and above the
    diagonal and L (its unit diagonal implied) below; ``pivots`` (int32, 1-based) says row i was
    swapped with row ``pivots[i]``; ``info`` (int32) is 0, or the 1-based index of the first
    zero on U's diagonal (an error instead with ``check_errors=True``).

    >>> import jitgrad
    >>> LU, pivots, info = jitgrad.linalg.lu_factor_ex(jitgrad.tensor([[1.0, 2.0], [2.0, 4.0]]))
    >>> LU
    tensor([[2.0000, 4.0000],
            [0.5000, 0.0000]])
    >>> info
    tensor(2, dtype=jitgrad.int32)
    """
    A = matrix(A, "lu_factor_ex")
    _no_pivot(pivot, "lu_factor_ex")
    LU, pivots = _lu.lu_parts(_lu.lu_factor_packed(A, check_errors))
    info = _zero_info(A) if check_errors else bind(info_p, (A,), {"routine": "getrf"})
    return LuFactorExResult(LU, pivots, info)


def lu_factor(A, *, pivot: bool = True):  # noqa: N803
    """``(LU, pivots)``: ``lu_factor_ex`` that raises ``LinAlgError`` where U has a zero on its
    diagonal (a singular square matrix), as ``lu_solve`` would divide by it.

    >>> import jitgrad
    >>> LU, pivots = jitgrad.linalg.lu_factor(jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]))
    >>> pivots
    tensor([2, 2], dtype=jitgrad.int32)
    """
    A = matrix(A, "lu_factor")
    _no_pivot(pivot, "lu_factor")
    return LuFactorResult(*_lu.lu_parts(_lu.lu_factor_packed(A, True)))


def _unpack(LU, pivots, unpack_data: bool, unpack_pivots: bool, op: str):  # noqa: N803
    LU = matrix(LU, op, "LU")
    if unpack_pivots:
        _check_pivots(LU, pivots, op, min(LU.shape[-2:]))
    empty = _const(np.zeros((0,), dtype=LU.dtype.np))
    P = (_lu.permutation(pivots, LU.shape[-2], LU.dtype) if unpack_pivots else empty)
    L, U = _lu.unpack(LU) if unpack_data else (empty, empty)
    return P, L, U


def _check_pivots(LU, pivots, op: str, k: int) -> None:  # noqa: N803
    pivots = tensor_arg(pivots, op, "pivots")
    if pivots.dtype is not dtypes.int32:
        raise RuntimeError(f"{op}: pivots should be a Tensor of scalar type int32 (as "
                           f"lu_factor returns them), got {pivots.dtype.name}")
    want = tuple(LU.shape[:-2]) + (k,)
    if tuple(pivots.shape) != want:
        raise RuntimeError(f"{op}: pivots of shape {tuple(pivots.shape)} do not match LU of "
                           f"shape {tuple(LU.shape)}: expected pivots of shape {want}")


def lu(A, *, pivot: bool = True):  # noqa: N803
    """``(P, L, U)`` with ``A = P L U`` for each (m, n) matrix of ``A``: P an (m, m)
    permutation, L (m, k) unit lower triangular, U (k, n) upper triangular, k = min(m, n).

    >>> import jitgrad
    >>> P, L, U = jitgrad.linalg.lu(jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]))
    >>> L
    tensor([[1.0000, 0.0000],
            [0.3333, 1.0000]])
    """
    A = matrix(A, "lu")
    _no_pivot(pivot, "lu")
    LU, pivots = _lu.lu_parts(_lu.lu_factor_packed(A, False))
    return LuResult(*_unpack(LU, pivots, True, True, "linalg.lu"))


def lu_unpack(LU_data, LU_pivots, unpack_data: bool = True,  # noqa: N803
              unpack_pivots: bool = True):
    """``(P, L, U)`` of a packed factorization (``linalg.lu_factor``'s); with
    ``unpack_data=False`` L and U are empty, with ``unpack_pivots=False`` P is.

    >>> import jitgrad
    >>> LU, pivots = jitgrad.linalg.lu_factor(jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]))
    >>> jitgrad.lu_unpack(LU, pivots).P
    tensor([[0., 1.],
            [1., 0.]])
    """
    return LuUnpackResult(*_unpack(LU_data, LU_pivots, unpack_data, unpack_pivots,
                                   "lu_unpack"))


def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False):  # noqa: N803
    """The solution ``X`` of ``A X = B`` given ``lu_factor(A)`` (``X A = B`` with
    ``left=False``; ``A^T`` in place of ``A`` with ``adjoint=True``); batch dimensions
    broadcast. Differentiable in ``LU`` and ``B``.

    >>> import jitgrad
    >>> A = jitgrad.tensor([[3.0, 1.0], [1.0, 2.0]])
    >>> LU, pivots = jitgrad.linalg.lu_factor(A)
    >>> jitgrad.linalg.lu_solve(LU, pivots, jitgrad.tensor([[9.0], [8.0]]))
    tensor([[2.],
            [3.]])
    """
    LU = matrix(LU, "lu_solve", "LU", square=True)
    B = matrix(B, "lu_solve", "B")
    same_dtype(LU, B, "lu_solve")
    n = LU.shape[-1]
    _check_pivots(LU, pivots, "linalg.lu_solve", n)
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise RuntimeError(f"linalg.lu_solve: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({n}x{n} and "
                           f"{B.shape[-2]}x{B.shape[-1]})")
    if not left:  # X A = B is A^T X^T = B^T
        return _mT(_solve_left(LU, pivots, _mT(B), not adjoint))
    return _solve_left(LU, pivots, B, adjoint)


def _solve_left(LU, pivots, B, adjoint: bool):  # noqa: N803
    P = _lu.permutation(pivots, LU.shape[-1], LU.dtype)
    if not adjoint:  # A = P L U: X = U^-1 L^-1 P^T B
        y = _solve_triangular(LU, matmul(_mT(P), B), False, True)
        return _solve_triangular(LU, y, True)
    lut = _mT(LU)  # A^T = U^T L^T P^T: X = P L^-T U^-T B
    y = _solve_triangular(lut, B, False)
    return matmul(P, _solve_triangular(lut, y, True, True))


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False):  # noqa: N803
    """``(result, info)``: ``linalg.solve`` through ``lu_factor_ex`` and ``lu_solve`` (as
    torch computes it) without the error: where a matrix is singular, ``info`` (int32) is the
    index of U's first zero pivot and ``result`` is not finite (an error instead with
    ``check_errors=True``).

    >>> import jitgrad
    >>> A = jitgrad.tensor([[3.0, 1.0], [1.0, 2.0]])
    >>> jitgrad.linalg.solve_ex(A, jitgrad.tensor([9.0, 8.0]))
    linalg_solve_ex(result=tensor([2., 3.]), info=tensor(0, dtype=jitgrad.int32))
    """
    from jitgrad.linalg._decomp import solve_args
    A, B2, vector = solve_args(A, B, left, "solve_ex")
    LU, pivots, info = lu_factor_ex(A)
    if check_errors and bool((info != 0).any()):
        from jitgrad.ops.linalg import LinAlgError
        i = int(np.flatnonzero(info.numpy().reshape(-1))[0])
        where = f"(Batch element {i}): " if A.ndim > 2 else ""
        raise LinAlgError(f"linalg.solve_ex: {where}The solver failed because the input "
                          "matrix is singular.")
    if vector:  # (x^T A = b^T is A^T x = b)
        X = lu_solve(LU, pivots, B2, adjoint=not left)
    else:
        X = lu_solve(LU, pivots, B2, left=left)
    return SolveExResult(X.squeeze(-1) if vector else X, info)


# -- the older top-level forms -----------------------------------------------------------------
def lu_legacy(A, pivot: bool = True, get_infos: bool = False):  # noqa: N803
    """``torch.lu`` (``Tensor.lu``): ``(LU, pivots)`` as ``linalg.lu_factor``, or with
    ``get_infos=True`` ``(LU, pivots, info)`` as ``linalg.lu_factor_ex``.

    >>> import jitgrad
    >>> jitgrad.lu(jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]))[1]
    tensor([2, 2], dtype=jitgrad.int32)
    """
    if not isinstance(A, Tensor) or A.ndim < 2:
        shape = list(A.shape) if isinstance(A, Tensor) else type(A).__name__
        raise RuntimeError(f"torch.lu: Expected a tensor with 2 or more dimensions, got "
                           f"{shape}")
    if get_infos:
        return LuWithInfoResult(*lu_factor_ex(A, pivot=pivot))
    return tuple(lu_factor(A, pivot=pivot))


def lu_solve_legacy(b, LU_data, LU_pivots):  # noqa: N803
    """``torch.lu_solve`` (``Tensor.lu_solve``): ``linalg.lu_solve(LU_data, LU_pivots, b)``.

    >>> import jitgrad
    >>> A = jitgrad.tensor([[2.0, 0.0], [0.0, 4.0]])
    >>> jitgrad.lu_solve(jitgrad.tensor([[2.0], [2.0]]), *jitgrad.linalg.lu_factor(A))
    tensor([[1.0000],
            [0.5000]])
    """
    return lu_solve(LU_data, LU_pivots, b)
