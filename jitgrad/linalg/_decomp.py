"""Inverses, solves, determinants and factorizations: thin functions over the LAPACK primitives
of ``jitgrad.ops.linalg`` (which carry the gradients), with torch's argument names, checks and
result tuples.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from jitgrad import dtypes
from jitgrad.linalg._checks import floating, matrix, same_dtype, tensor_arg
from jitgrad.ops import linalg as _la
from jitgrad.ops.elementwise import where
from jitgrad.ops.linalg import _mT, matmul
from jitgrad.ops.registry import bind, promote
from jitgrad.ops.shape import _const

# torch.return_types.linalg_*: tuples whose parts have names too.
SlogdetResult = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
SvdResult = namedtuple("linalg_svd", ["U", "S", "Vh"])
QrResult = namedtuple("linalg_qr", ["Q", "R"])
LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
CholeskyExResult = namedtuple("linalg_cholesky_ex", ["L", "info"])
InvExResult = namedtuple("linalg_inv_ex", ["inverse", "info"])


def inv(A):  # noqa: N803  (torch's argument names)
    """The inverse of each square matrix of ``A``; ``LinAlgError`` if one is singular.

    >>> import jitgrad
    >>> jitgrad.linalg.inv(jitgrad.tensor([[2.0, 0.0], [0.0, 4.0]]))
    tensor([[0.5000, 0.0000],
            [0.0000, 0.2500]])
    """
    return bind(_la.inv_p, (matrix(A, "inv", square=True),), {"check": True})


def inv_ex(A, *, check_errors: bool = False):  # noqa: N803
    """``(inverse, info)``: ``info`` (int32) is 0 where the matrix is invertible and else the
    1-based index of the zero pivot, where ``inverse`` is not finite (an error instead with
    ``check_errors=True``).

    >>> import jitgrad
    >>> jitgrad.linalg.inv_ex(jitgrad.zeros(2, 2)).info
    tensor(1, dtype=jitgrad.int32)
    """
    A = matrix(A, "inv_ex", square=True)
    out = bind(_la.inv_p, (A,), {"check": bool(check_errors)})
    return InvExResult(out, bind(_la.info_p, (A,), {"routine": "getrf"}))


def _is_vector_rhs(A, B) -> bool:
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def solve_args(A, B, left: bool, op: str) -> tuple:  # noqa: N803
    """``linalg.solve``'s (and ``solve_ex``'s) arguments checked: ``(A, B2, vector)``, ``B2``
    with a last axis of its own where ``B`` is a (batch of) vector(s)."""
    A = matrix(A, op, square=True)
    B = tensor_arg(B, op, "B")
    floating(B, op)
    same_dtype(A, B, op)
    vector = _is_vector_rhs(A, B)
    B2 = B.unsqueeze(-1) if vector else B
    n = A.shape[-1]
    need = B2.shape[-2] if left or vector else B2.shape[-1]
    if B2.ndim < 2 or need != n:
        eq = "AX = B" if left else "XA = B"
        raise RuntimeError(f"linalg.{op}: Incompatible shapes of A and B for the equation {eq} "
                           f"({n}x{n} and {'x'.join(str(s) for s in B2.shape[-2:])})")
    return A, B2, vector


def solve(A, B, *, left: bool = True):  # noqa: N803
    """The solution ``X`` of ``A X = B`` (``X A = B`` with ``left=False``) for square ``A``;
    ``B`` is a (batch of) vector(s) when it has one dimension fewer than ``A`` and matches it.

    >>> import jitgrad
    >>> A = jitgrad.tensor([[3.0, 1.0], [1.0, 2.0]])
    >>> jitgrad.linalg.solve(A, jitgrad.tensor([9.0, 8.0]))
    tensor([2., 3.])
    """
    A, B2, vector = solve_args(A, B, left, "solve")
    if left or vector:  # (x^T A = b^T is A^T x = b)
        X = _la._solve(A if left else _mT(A), B2)
    else:
        X = _mT(_la._solve(_mT(A), _mT(B2)))
    return X.squeeze(-1) if vector else X


def solve_triangular(A, B, *, upper: bool, left: bool = True,  # noqa: N803
                     unitriangular: bool = False):
    """The solution of ``A X = B`` (``X A = B`` with ``left=False``) reading only the upper or
    lower triangle of ``A`` (and not its diagonal, taken as ones, if ``unitriangular``).

    >>> import jitgrad
    >>> A = jitgrad.tensor([[2.0, 1.0], [0.0, 4.0]])
    >>> jitgrad.linalg.solve_triangular(A, jitgrad.tensor([[4.0], [8.0]]), upper=True)
    tensor([[1.],
            [2.]])
    """
    A = matrix(A, "solve_triangular", square=True)
    B = matrix(B, "solve_triangular", "B")
    same_dtype(A, B, "solve_triangular")
    n = A.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the "
                           f"equation {'AX = B' if left else 'XA = B'} ({n}x{n} and "
                           f"{B.shape[-2]}x{B.shape[-1]})")
    if left:
        return _la._solve_triangular(A, B, upper, unitriangular)
    return _mT(_la._solve_triangular(_mT(A), _mT(B), not upper, unitriangular))


def det(A):  # noqa: N803
    """The determinant of each square matrix of ``A``.

    >>> import jitgrad
    >>> jitgrad.linalg.det(jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor(-2.)
    """
    return bind(_la.det_p, (matrix(A, "det", square=True),), {})


def slogdet(A):  # noqa: N803
    """``(sign, logabsdet)``: the sign of each determinant (0 when singular) and the log of its
    absolute value, which stays finite where the determinant itself under- or overflows.

    >>> import jitgrad
    >>> jitgrad.linalg.slogdet(jitgrad.tensor([[-2.0, 0.0], [0.0, 0.5]]))
    linalg_slogdet(sign=tensor(-1.), logabsdet=tensor(0.))
    """
    packed = bind(_la.slogdet_p, (matrix(A, "slogdet", square=True),), {})
    return SlogdetResult(packed[..., 0].detach(), packed[..., 1])


def logdet(A):  # noqa: N803
    """The log of each determinant: NaN where it is negative, -inf where it is 0 (``torch.logdet``).

    >>> import jitgrad
    >>> jitgrad.logdet(jitgrad.tensor([[2.0, 0.0], [0.0, 0.5]]))
    tensor(0.)
    """
    sign, logabs = slogdet(A)
    return where(sign < 0, float("nan"), logabs)


def cholesky(A, *, upper: bool = False):  # noqa: N803
    """The lower triangular ``L`` with ``A = L L^T`` of each symmetric positive-definite matrix
    of ``A``, read from its lower triangle (``upper=True``: ``U`` with ``A = U^T U``, from the
    upper triangle); ``LinAlgError`` where one is not positive definite.

    >>> import jitgrad
    >>> jitgrad.linalg.cholesky(jitgrad.tensor([[4.0, 2.0], [2.0, 2.0]]))
    tensor([[2., 0.],
            [1., 1.]])
    """
    return cholesky_ex(A, upper=upper, check_errors=True).L


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False):  # noqa: N803
    """``(L, info)``: ``cholesky`` without the error: ``info`` (int32) is the order of the first
    leading minor that is not positive definite, 0 where the factorization succeeded.

    >>> import jitgrad
    >>> jitgrad.linalg.cholesky_ex(-jitgrad.eye(2)).info
    tensor(1, dtype=jitgrad.int32)
    """
    A = matrix(A, "cholesky", square=True)
    src = _mT(A) if upper else A
    L = bind(_la.cholesky_p, (src,), {"check": bool(check_errors)})
    info = None if check_errors else bind(_la.info_p, (src,), {"routine": "potrf"})
    if info is None:
        info = _const(np.zeros(tuple(A.shape[:-2]), dtype=np.int32))
    return CholeskyExResult(_mT(L) if upper else L, info)


def _uplo(UPLO: str, op: str) -> bool:  # noqa: N803
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"linalg.{op}: Expected UPLO argument to be 'L' or 'U', but got "
                           f"{UPLO!r}")
    return UPLO == "U"


def eigh(A, UPLO: str = "L"):  # noqa: N803
    """``(eigenvalues, eigenvectors)`` of each symmetric matrix of ``A`` (read from the triangle
    ``UPLO`` names), eigenvalues ascending, eigenvectors as columns. Each eigenvector is unique
    up to its sign, so only sign-free uses of them have a defined gradient.

    >>> import jitgrad
    >>> jitgrad.linalg.eigh(jitgrad.tensor([[2.0, 1.0], [1.0, 2.0]])).eigenvalues
    tensor([1., 3.])
    """
    A = matrix(A, "eigh", square=True)
    packed = bind(_la.eigh_p, (A,), {"upper": _uplo(UPLO, "eigh")})
    return EighResult(*_la._eigh_parts(packed))


def eigvalsh(A, UPLO: str = "L"):  # noqa: N803
    """The eigenvalues of each symmetric matrix of ``A``, ascending (``eigh(A).eigenvalues``).

    >>> import jitgrad
    >>> jitgrad.linalg.eigvalsh(jitgrad.tensor([[2.0, 0.0], [0.0, -1.0]]))
    tensor([-1.,  2.])
    """
    return eigh(matrix(A, "eigvalsh", square=True), UPLO).eigenvalues


def _svd_packed(A, full_matrices: bool, op: str):
    A = matrix(A, op)
    return A, bind(_la.svd_p, (A,), {"full_matrices": bool(full_matrices)})


def svd(A, full_matrices: bool = True, *, driver=None):  # noqa: N803
    """``(U, S, Vh)`` with ``A = U diag(S) Vh``, singular values descending. With
    ``full_matrices=False`` U and Vh have min(m, n) columns and rows; else they are square,
    and only their first min(m, n) vectors take part in gradients, as torch's.

    >>> import jitgrad
    >>> jitgrad.linalg.svd(jitgrad.tensor([[3.0, 0.0], [0.0, -4.0]])).S
    tensor([4., 3.])
    """
    if driver is not None:
        raise RuntimeError("linalg.svd: keyword argument `driver=` is only supported on CUDA "
                           "inputs with cuSOLVER backend.")
    A, p = _svd_packed(A, full_matrices, "svd")
    m, n = A.shape[-2:]
    k = min(m, n)
    u_cols, v_cols = (m, n) if full_matrices else (k, k)
    return SvdResult(p[..., :m, :u_cols], p[..., m, :k], _mT(p[..., m + 1:, :v_cols]))


def svdvals(A, *, driver=None):  # noqa: N803
    """The singular values of each matrix of ``A``, descending.

    >>> import jitgrad
    >>> jitgrad.linalg.svdvals(jitgrad.tensor([[0.0, 2.0], [1.0, 0.0]]))
    tensor([2., 1.])
    """
    return svd(matrix(A, "svdvals"), False, driver=driver).S


def qr(A, mode: str = "reduced"):  # noqa: N803
    """``(Q, R)`` with ``A = Q R``, ``Q`` orthonormal columns and ``R`` upper triangular, as
    LAPACK's (no sign normalization, as torch's). ``mode``: ``"reduced"`` (min(m, n) columns
    of Q), ``"complete"`` (Q square) or ``"r"`` (Q empty).

    >>> import jitgrad
    >>> jitgrad.linalg.qr(jitgrad.tensor([[3.0, 1.0], [4.0, 2.0]])).R.abs()
    tensor([[5.0000, 2.2000],
            [0.0000, 0.4000]])
    """
    A = matrix(A, "qr")
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           "'reduced' (default), 'r', or 'complete'")
    packed = bind(_la.qr_p, (A,), {"complete": mode == "complete"})
    m = A.shape[-2]
    Q, R = _la._qr_parts(packed, m)
    if mode == "r":
        Q = _const(np.zeros((0,), dtype=A.dtype.np))
    return QrResult(Q, R)


def _tolerances(A, atol, rtol, op: str) -> tuple[float, float]:
    """torch's defaults: with neither given, rtol = eps * max(m, n); with atol > 0 alone,
    rtol = 0."""
    def num(v, name):
        if v is None:
            return None
        if hasattr(v, "ndim") and v.ndim != 0:
            raise NotImplementedError(f"linalg.{op}: a tensor {name} of shape "
                                      f"{tuple(v.shape)}; pass one number for the batch")
        return float(v)
    atol, rtol = num(atol, "atol"), num(rtol, "rtol")
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else (
            float(np.finfo(A.dtype.np).eps) * max(A.shape[-2], A.shape[-1]))
    return (0.0 if atol is None else atol), rtol


def pinv(A, *, atol=None, rtol=None, hermitian: bool = False, rcond=None):  # noqa: N803
    """The pseudo-inverse of each matrix of ``A``: singular values at most
    ``max(atol, rtol * largest)`` count as 0 (``rcond`` is the older name of ``rtol``).
    ``hermitian=True`` reads a symmetric ``A`` through its eigenvalues.

    >>> import jitgrad
    >>> jitgrad.linalg.pinv(jitgrad.tensor([[1.0, 0.0], [0.0, 0.0]]))
    tensor([[1., 0.],
            [0., 0.]])
    """
    A = matrix(A, "pinv", square=bool(hermitian))
    if rcond is not None:
        if rtol is not None:
            raise TypeError("linalg.pinv(): pass rtol or rcond, not both")
        rtol = rcond
    atol, rtol = _tolerances(A, atol, rtol, "pinv")
    return bind(_la.pinv_p, (A,), {"atol": atol, "rtol": rtol, "hermitian": bool(hermitian)})


def matrix_rank(A, *, atol=None, rtol=None, hermitian: bool = False, tol=None):  # noqa: N803
    """The number of singular values of each matrix above ``max(atol, rtol * largest)``, as
    int64 (``tol`` is the older name of ``atol``).

    >>> import jitgrad
    >>> jitgrad.linalg.matrix_rank(jitgrad.tensor([[1.0, 2.0], [2.0, 4.0]]))
    tensor(1)
    """
    A = matrix(A, "matrix_rank", square=bool(hermitian))
    if tol is not None:
        atol = tol
    atol, rtol = _tolerances(A, atol, rtol, "matrix_rank")
    s = eigvalsh(A).abs() if hermitian else svdvals(A)
    s = s.detach()
    if s.shape[-1] == 0:
        return _const(np.zeros(tuple(A.shape[:-2]), dtype=np.int64))
    big = s.amax(dim=-1, keepdim=True)
    from jitgrad.ops.elementwise import maximum
    tol_ = maximum(big * rtol, atol)
    return (s > tol_).to(dtypes.int64).sum(dim=-1)


_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A, B, rcond=None, *, driver=None):  # noqa: N803
    """``(solution, residuals, rank, singular_values)`` of the least-squares problem
    min ||A X - B|| for each matrix of ``A`` (m x n), the solution of least norm where the rank
    is deficient. As torch's CPU drivers: ``rank`` for all but ``"gels"``; ``singular_values``
    for ``"gelsd"``/``"gelss"``; ``residuals`` (squared, per column) when m > n, the driver is
    not ``"gelsy"`` (the default) and every matrix has full rank; empty tensors otherwise.
    Gradients flow through the pseudo-inverse, as torch's.

    >>> import jitgrad
    >>> A = jitgrad.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> jitgrad.linalg.lstsq(A, jitgrad.tensor([[1.0], [2.0], [3.0]]), driver="gelsd").residuals
    tensor([9.])
    """
    A = matrix(A, "lstsq")
    B = matrix(B, "lstsq", "B") if tensor_arg(B, "lstsq", "B").ndim >= 2 else B
    floating(B, "lstsq")
    same_dtype(A, B, "lstsq")
    driver = "gelsy" if driver is None else driver
    if driver not in _DRIVERS:
        raise RuntimeError(f"torch.linalg.lstsq: parameter `driver` should be one of "
                           f"{_DRIVERS}, got {driver!r}")
    vector = B.ndim == A.ndim - 1
    B2 = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2:]
    if B2.shape[-2] != m:
        raise RuntimeError(f"torch.linalg.lstsq: input.size(-2) should match other.size(-2), "
                           f"got A of shape {tuple(A.shape)} and B of shape {tuple(B.shape)}")
    rtol = None if rcond is None or rcond < 0 else rcond
    X = matmul(pinv(A, rtol=rtol), B2)
    empty = _const(np.zeros((0,), dtype=A.dtype.np))
    rank = _const(np.zeros((0,), dtype=np.int64))
    if driver != "gels":
        rank = matrix_rank(A, rtol=rtol)
    sv = svdvals(A).detach() if driver in ("gelsd", "gelss") else empty
    residuals = empty
    if driver != "gelsy" and m > n and (driver == "gels" or bool((rank == n).all())):
        residuals = ((matmul(A, X) - B2) ** 2).sum(dim=-2)
        if vector:
            residuals = residuals.squeeze(-1)
    return LstsqResult(X.squeeze(-1) if vector else X, residuals, rank, sv)


def cond(A, p=None):  # noqa: N803
    """The condition number of each matrix of ``A`` in the norm ``p`` (None or 2: the ratio of
    the largest singular value to the smallest; -2 its inverse; the others, square matrices
    only: ``matrix_norm(A, p) * matrix_norm(inv(A), p)``).

    >>> import jitgrad
    >>> jitgrad.linalg.cond(jitgrad.tensor([[4.0, 0.0], [0.0, 2.0]]))
    tensor(2.)
    """
    from jitgrad.linalg._norms import matrix_norm
    A = matrix(A, "cond")
    if p is None or p == 2 or p == -2:
        s = svdvals(A)
        big, small = s[..., 0], s[..., -1]
        return big / small if p is None or p == 2 else small / big
    A = matrix(A, "cond", square=True)
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


def tensorinv(A, ind: int = 2):  # noqa: N803
    """The tensor whose ``tensordot`` with ``A`` over ``ind`` dimensions is the identity: ``A``
    reshaped to a square matrix (its first ``ind`` dimensions against the rest), inverted.

    >>> import jitgrad
    >>> jitgrad.linalg.tensorinv(2 * jitgrad.eye(4).reshape(4, 2, 2), ind=1).shape
    jitgrad.Size([2, 2, 4])
    """
    A = tensor_arg(A, "tensorinv")
    if ind <= 0:
        raise RuntimeError(f"linalg.tensorinv: Expected a strictly positive integer for 'ind', "
                           f"but got {ind}")
    rows, cols = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    r, c = int(np.prod(rows)), int(np.prod(cols))
    if r != c:
        raise RuntimeError(f"linalg.tensorinv: Expected self to satisfy the requirement "
                           f"prod(self.shape[ind:]) == prod(self.shape[:ind]), but got {c} != {r}")
    return inv(A.reshape(r, c)).reshape(*cols, *rows)


def tensorsolve(A, B, dims=None):  # noqa: N803
    """The ``X`` with ``tensordot(A, X, X.ndim) = B``: ``A``'s dimensions beyond ``B``'s are
    ``X``'s (``dims``: dimensions of ``A`` moved to the end first).

    >>> import jitgrad
    >>> A = 2 * jitgrad.eye(6).reshape(2, 3, 6)
    >>> jitgrad.linalg.tensorsolve(A, jitgrad.ones(2, 3)).shape
    jitgrad.Size([6])
    """
    A = tensor_arg(A, "tensorsolve")
    B = tensor_arg(B, "tensorsolve", "B")
    if dims is not None:
        dims = [d % A.ndim for d in dims]
        rest = [d for d in range(A.ndim) if d not in dims]
        A = A.permute(*rest, *dims)
    xshape = tuple(A.shape[B.ndim:])
    n = int(np.prod(tuple(B.shape)))
    if int(np.prod(xshape)) != n or tuple(A.shape[:B.ndim]) != tuple(B.shape):
        raise RuntimeError(f"linalg.tensorsolve: Expected self to satisfy the requirement "
                           f"prod(self.shape[other.ndim:]) == prod(self.shape[:other.ndim]), "
                           f"but got shapes {tuple(A.shape)} and {tuple(B.shape)}")
    A, B = promote(A, B)
    return solve(A.reshape(n, n), B.reshape(n)).reshape(*xshape)


def matrix_exp(A):  # noqa: N803
    """The matrix exponential of a square (batch of) matrix, as ``torch.linalg.matrix_exp``;
    its gradient is the exponential of a block matrix (differentiable again).

    >>> import jitgrad
    >>> jitgrad.linalg.matrix_exp(jitgrad.tensor([[0.0, 1.0], [0.0, 0.0]]))
    tensor([[1., 1.],
            [0., 1.]])
    """
    A = matrix(A, "matrix_exp", square=True)
    return bind(_la.expm_p, (A,), {})


from jitgrad.tensor import Tensor  # noqa: E402

Tensor.matrix_exp = matrix_exp
