"""The older top-level forms torch keeps beside ``torch.linalg`` (``torch.inverse``,
``torch.svd``, ``torch.cholesky_solve`` ...), and the Tensor methods of the same names, in terms
of ``jitgrad.linalg``."""

from __future__ import annotations

from collections import namedtuple

from jitgrad.linalg import _decomp, _norms
from jitgrad.linalg._checks import matrix
from jitgrad.ops import linalg as _la
from jitgrad.ops.linalg import _mT

SvdResult = namedtuple("svd", ["U", "S", "V"])
QrResult = namedtuple("qr", ["Q", "R"])
TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])


def inverse(input):  # noqa: A002
    """``linalg.inv``."""
    return _decomp.inv(input)


def det(input):  # noqa: A002
    """``linalg.det``."""
    return _decomp.det(input)


def slogdet(input):  # noqa: A002
    """``linalg.slogdet``."""
    return _decomp.slogdet(input)


def matrix_power(input, n: int):  # noqa: A002
    """``linalg.matrix_power``."""
    return _norms.matrix_power(input, n)


def cholesky(input, upper: bool = False):  # noqa: A002
    """``linalg.cholesky`` (``torch.cholesky``, upper as a positional argument)."""
    return _decomp.cholesky(input, upper=upper)


def pinverse(input, rcond: float = 1e-15):  # noqa: A002
    """``linalg.pinv`` with the relative tolerance ``rcond``."""
    return _decomp.pinv(input, rtol=rcond)


def svd(input, some: bool = True, compute_uv: bool = True):  # noqa: A002
    """``(U, S, V)`` with ``input = U diag(S) V^T``: V, not its transpose (``torch.svd``);
    ``some=False`` gives square U and V; without ``compute_uv``, U and V are zeros."""
    U, S, Vh = _decomp.svd(input, full_matrices=not some)
    if not compute_uv:
        return SvdResult(U.detach() * 0, S, Vh.detach() * 0)
    return SvdResult(U, S, _mT(Vh))


def qr(input, some: bool = True):  # noqa: A002
    """``linalg.qr`` in mode ``"reduced"`` (``some=True``) or ``"complete"``."""
    return QrResult(*_decomp.qr(input, "reduced" if some else "complete"))


def cholesky_solve(B, L, upper: bool = False):  # noqa: N803
    """The solution of ``A X = B`` given the Cholesky factor ``L`` of ``A`` (``upper``: ``U``
    with ``A = U^T U``): two triangular solves."""
    L = matrix(L, "cholesky_solve", "L", square=True)
    if upper:
        L = _mT(L)
    y = _decomp.solve_triangular(L, B, upper=False)
    return _decomp.solve_triangular(_mT(L), y, upper=True)


def cholesky_inverse(L, upper: bool = False):  # noqa: N803
    """The inverse of ``A`` given its Cholesky factor ``L`` (``upper``: ``U``)."""
    L = matrix(L, "cholesky_inverse", "L", square=True)
    eye = _la._eye(L.shape[-1], L.dtype).expand(*L.shape)
    return cholesky_solve(eye, L, upper)


def triangular_solve(b, A, upper: bool = True, transpose: bool = False,  # noqa: N803
                     unitriangular: bool = False):
    """``(solution, cloned_coefficient)`` of ``A X = b`` (``A^T X = b`` with ``transpose``)
    for triangular ``A``, as ``torch.triangular_solve``."""
    A = matrix(A, "triangular_solve", square=True)
    M, up = (_mT(A), not upper) if transpose else (A, upper)
    x = _decomp.solve_triangular(M, b, upper=up, unitriangular=unitriangular)
    return TriangularSolveResult(x, A.clone())


def cross(input, other, dim=None):  # noqa: A002
    """``linalg.cross`` along ``dim``; without it, along the first dimension of size 3, as
    ``torch.cross``."""
    if dim is None:
        sizes = [i for i, (p, q) in enumerate(zip(input.shape, other.shape)) if p == 3 and q == 3]
        if not sizes:
            raise RuntimeError(f"cross: no dimension of size 3 in input of shape "
                               f"{tuple(input.shape)}")
        dim = sizes[0]
    return _norms.cross(input, other, dim=dim)
