"""``linalg.ldl_factor`` (``_ex``) and ``linalg.ldl_solve``: the Bunch-Kaufman factorization
``A = P L D L^T P^T`` of symmetric matrices and solves with it, in torch's (LAPACK's ``sytrf``)
compact format: ``LD`` holds L below the diagonal (its unit diagonal implied) and D's 1x1 and
2x2 blocks on and next to it, 0 above; ``pivots`` (int32, 1-based) are LAPACK's interchanges,
negative for a 2x2 block. Only the lower triangle of ``A`` is read. Not differentiable (torch's
are not either): the primitives (``jitgrad.ops.linalg_ldl``) have no gradient rule.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from jitgrad import dtypes
from jitgrad.linalg._checks import matrix, same_dtype, tensor_arg
from jitgrad.linalg._lu import _zero_info
from jitgrad.ops import linalg_ldl as _ldl

LdlFactorResult = namedtuple("linalg_ldl_factor", ["LD", "pivots"])
LdlFactorExResult = namedtuple("linalg_ldl_factor_ex", ["LD", "pivots", "info"])


def ldl_factor_ex(A, *, hermitian: bool = False, check_errors: bool = False):  # noqa: N803
    """``(LD, pivots, info)``: the LDL^T factorization of each symmetric (n, n) matrix of
    ``A`` (its lower triangle), as LAPACK's ``sytrf``; ``info`` (int32) is 0, or the 1-based
    index of an exactly zero diagonal block of D (the matrix is singular; an error instead with
    ``check_errors=True``). ``hermitian`` is the same for real matrices.

    >>> import jitgrad
    >>> A = jitgrad.tensor([[4.0, 2.0], [2.0, 3.0]])
    >>> LD, pivots, info = jitgrad.linalg.ldl_factor_ex(A)
    >>> LD
    tensor([[4.0000, 0.0000],
            [0.5000, 2.0000]])
    >>> pivots, info
    (tensor([1, 2], dtype=jitgrad.int32), tensor(0, dtype=jitgrad.int32))
    """
    A = matrix(A, "ldl_factor_ex", square=True)
    LD, pivots = _ldl.ldl_parts(A, check_errors)
    # (checked, a singular D has raised: no second factorization for the info)
    info = _zero_info(A) if check_errors else _ldl.ldl_info(A)
    return LdlFactorExResult(LD, pivots, info)


def ldl_factor(A, *, hermitian: bool = False):  # noqa: N803
    """``(LD, pivots)``: ``ldl_factor_ex`` that raises ``LinAlgError`` where D is singular.

    >>> import jitgrad
    >>> A = jitgrad.tensor([[0.0, 1.0], [1.0, 0.0]])
    >>> LD, pivots = jitgrad.linalg.ldl_factor(A)  # a 2x2 block: pivots negative
    >>> pivots
    tensor([-2, -2], dtype=jitgrad.int32)
    """
    A = matrix(A, "ldl_factor", square=True)
    return LdlFactorResult(*_ldl.ldl_parts(A, True))


def ldl_solve(LD, pivots, B, *, hermitian: bool = False):  # noqa: N803
    """The solution ``X`` of ``A X = B`` given ``ldl_factor(A)``; batch dimensions broadcast.

    >>> import jitgrad
    >>> A = jitgrad.tensor([[4.0, 2.0], [2.0, 3.0]])
    >>> LD, pivots = jitgrad.linalg.ldl_factor(A)
    >>> jitgrad.linalg.ldl_solve(LD, pivots, jitgrad.tensor([[10.0], [11.0]]))
    tensor([[1.],
            [3.]])
    """
    LD = matrix(LD, "ldl_solve", "LD", square=True)
    pivots = tensor_arg(pivots, "ldl_solve", "pivots")
    B = tensor_arg(B, "ldl_solve", "B")
    if pivots.dtype not in (dtypes.int32, dtypes.int64):
        raise RuntimeError(f"linalg.ldl_solve: Expected pivots to be integers (as ldl_factor "
                           f"returns them, int32), got {pivots.dtype.name}")
    if tuple(pivots.shape) != tuple(LD.shape[:-1]):
        raise RuntimeError(f"linalg.ldl_solve: Expected LD.shape[:-1] and pivots.shape to be "
                           f"the same, but got pivots with shape {list(pivots.shape)} instead")
    if B.ndim < 2:
        raise RuntimeError(f"linalg.ldl_solve: Expected B to have at least 2 dimensions, but "
                           f"it has {B.ndim} dimensions instead")
    same_dtype(LD, B, "ldl_solve")
    n = LD.shape[-1]
    if B.shape[-2] != n:
        raise RuntimeError(f"Incompatible matrix sizes for linalg.ldl_solve: each A matrix is "
                           f"{n} by {n} but each b matrix is {B.shape[-2]} by {B.shape[-1]}")
    try:
        np.broadcast_shapes(tuple(LD.shape[:-2]), tuple(B.shape[:-2]))
    except ValueError:
        raise RuntimeError(f"linalg.ldl_solve: the batch dimensions of LD "
                           f"{list(LD.shape[:-2])} and B {list(B.shape[:-2])} do not "
                           f"broadcast") from None
    return _ldl.ldl_solve(LD, pivots.to(dtypes.int32), B)
