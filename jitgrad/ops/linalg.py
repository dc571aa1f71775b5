"""Matrix multiplication (NumPy ``matmul`` semantics: 1-D, 2-D, and batched with broadcasting).

>>> import jitgrad
>>> a = jitgrad.ones(2, 3, requires_grad=True)
>>> (a @ jitgrad.ones(3)).sum().backward()
>>> a.grad
tensor([[1., 1., 1.],
        [1., 1., 1.]])
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import _blas
from jitgrad.errors import ShapeError
from jitgrad.ops import _rules
from jitgrad.ops.registry import Aval, bind, promote, register

_NO = {}


def matmul_shape(a: tuple, b: tuple) -> tuple:
    if len(a) == 0 or len(b) == 0:
        raise ShapeError(f"matmul: both arguments need at least 1 dimension, got shapes {tuple(a)} "
                         f"and {tuple(b)}")
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if a2[-1] != b2[-2]:
        raise ShapeError(f"matmul: shapes {tuple(a)} and {tuple(b)} cannot be multiplied "
                         f"({a2[-2]}x{a2[-1]} and {b2[-2]}x{b2[-1]})")
    batch = _rules.broadcast_shapes(a2[:-2], b2[:-2], "matmul")
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _mT(x):
    return x.transpose(-1, -2)


def _matmul_vjp(g, out, a, b):
    # Lift 1-D operands to matrices so one rule covers every case; the engine sums batch
    # broadcasting back down to each operand's shape.
    a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    g2 = g.reshape(matmul_shape(tuple(a2.shape), tuple(b2.shape)))
    ga = gb = None
    if a.requires_grad:
        ga = matmul(g2, _mT(b2))
        if a.ndim == 1:
            ga = ga.reshape(tuple(ga.shape[:-2]) + (a.shape[0],))
    if b.requires_grad and b2.ndim == 2 and a2.ndim > 2:
        # A matrix applied to a batch (a Linear layer on (B, T, C)): its gradient sums over the
        # batch, so the batch's rows are one (B*M, K) matrix and the sum is the GEMM's own.
        k, n = a2.shape[-1], g2.shape[-1]
        rows = int(math.prod(a2.shape[:-1]))  # (not -1: k or n may be 0)
        gb = matmul(_mT(a2.reshape(rows, k)), g2.reshape(rows, n))
        if b.ndim == 1:
            gb = gb.reshape((b.shape[0],))
    elif b.requires_grad:
        gb = matmul(_mT(a2), g2)
        if b.ndim == 1:
            gb = gb.reshape(tuple(gb.shape[:-2]) + (b.shape[0],))
    return ga, gb


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul``, with a stack of row-major matrices times a transposed matrix (a linear
    layer's ``x @ W.T`` on (B, T, C)) as one (B*T, C) product: NumPy copies the transposed
    matrix for each matrix of the stack (a (16, 32, 64) input times a (64, 192) ``W.T``:
    256 µs, against 149 µs as one product). Times a row-major matrix NumPy's own loop is the
    faster (119 against 141 µs), so it keeps it."""
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous and not b.flags.c_contiguous:
        rows = math.prod(a.shape[:-1])  # (not -1: the inner size may be 0)
        return np.matmul(a.reshape(rows, a.shape[-1]), b).reshape(a.shape[:-1] + b.shape[-1:])
    return np.matmul(a, b)


matmul_p = register("matmul", _matmul,
                    lambda a, b: Aval(matmul_shape(a.shape, b.shape), a.dtype),
                    _matmul_vjp, kind="linalg", backward_name="MmBackward0",
                    reads=_rules.reads_other)


def matmul(input, other):  # noqa: A002  (torch's argument names: matmul(input=, other=))
    """Matrix product with NumPy semantics; both shapes appear in any mismatch error.

    >>> import jitgrad
    >>> jitgrad.matmul(input=jitgrad.ones(2, 3), other=jitgrad.ones(3)).tolist()
    [3.0, 3.0]
    """
    a, b = promote(input, other)
    matmul_shape(tuple(a.shape), tuple(b.shape))
    _blas.tick()  # eager products: the BLAS threads follow the machine's load
    return bind(matmul_p, (a, b), _NO)


def mm(input, mat2):  # noqa: A002
    a, b = input, mat2
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: expected 2-D tensors, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return matmul(a, b)


def bmm(input, mat2):  # noqa: A002
    a, b = input, mat2
    if a.ndim != 3 or b.ndim != 3:
        raise ShapeError(f"bmm: expected 3-D tensors, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return matmul(a, b)


def dot(input, tensor):  # noqa: A002
    a, b = input, tensor
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"dot: expected 1-D tensors, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return matmul(a, b)


def mv(input, vec):  # noqa: A002
    return matmul(input, vec)


# -- factorizations and solves ---------------------------------------------------------------
# Each is a primitive with a LAPACK body (NumPy's, SciPy's where NumPy has none) and a VJP and
# JVP written with jitgrad ops, the standard adjoint formulas. A factorization with several
# results (eigh, svd, qr, slogdet) is one primitive whose result packs them into one array, read
# back by slicing: every stage of the pipeline deals in single results, and the slices' VJPs
# hand the rule one packed cotangent, zeros standing for unused parts.

from jitgrad import dtypes  # noqa: E402

class LinAlgError(RuntimeError):
    """A matrix the operation cannot handle: singular (``inv``, ``solve``) or not positive
    definite (``cholesky``); ``jitgrad.linalg.LinAlgError``, a ``RuntimeError`` as torch's.

    >>> import jitgrad
    >>> try:
    ...     jitgrad.linalg.inv(jitgrad.zeros(2, 2))
    ... except jitgrad.linalg.LinAlgError as e:
    ...     print(e)
    linalg.inv: The diagonal element 1 is zero, the inversion could not be completed ...
    """


def _lapack_info(a: np.ndarray, routine: str) -> np.ndarray:
    """LAPACK's ``info`` of ``getrf`` (the first zero pivot, 1-based) or ``potrf`` (the order of
    the first minor that is not positive definite) for each matrix of the batch ``a``."""
    from scipy.linalg import lapack
    count = int(math.prod(a.shape[:-2]))  # (not -1: a matrix may be empty)
    flat = a.reshape((count,) + a.shape[-2:])
    info = np.zeros(count, dtype=np.int32)
    if a.shape[-1] == 0 or _all_succeed(a, routine):
        return info.reshape(a.shape[:-2])
    fn = lapack.get_lapack_funcs((routine,), (flat,))[0]
    for i, m in enumerate(flat):
        r = fn(m, lower=1) if routine == "potrf" else fn(m)
        info[i] = max(int(r[-1]), 0)
    return info.reshape(a.shape[:-2])


def _all_succeed(a: np.ndarray, routine: str) -> bool:
    """Whether every matrix factors: one batched call, the common case, before any loop."""
    try:
        if routine == "potrf":
            np.linalg.cholesky(a)
            return True
        with np.errstate(all="ignore"):
            return bool(np.all(np.linalg.det(a) != 0))  # a zero pivot makes it exactly 0
    except np.linalg.LinAlgError:
        return False


def _failure(a: np.ndarray, routine: str, op: str, what: str) -> LinAlgError:
    info = _lapack_info(a, routine).reshape(-1)
    bad = np.flatnonzero(info)
    i = int(bad[0]) if bad.size else 0
    where = f"(Batch element {i}): " if a.ndim > 2 else ""
    return LinAlgError(f"{op}: {where}{what.format(info=int(info[i]) if bad.size else 0)}")


_SINGULAR = ("The diagonal element {info} is zero, the inversion could not be completed "
             "because the input matrix is singular.")
_NOT_PD = ("The factorization could not be completed because the input is not positive-definite "
           "(the leading minor of order {info} is not positive-definite).")


def _eye(n: int, dtype):
    from jitgrad.ops.shape import _const
    return _const(np.eye(n, dtype=dtype.np))


def _diag_embed(v):
    return v.unsqueeze(-1) * _eye(v.shape[-1], v.dtype)


def _sym(x):
    return (x + _mT(x)) * 0.5


def _safe_div(num, den):
    """``num / den``, 0 where ``den`` is 0 (the pairs of equal eigen/singular values, and the
    diagonal, where the standard formulas divide 0 by 0)."""
    from jitgrad.ops.elementwise import where
    zero = den == 0
    return where(zero, 0.0, num / where(zero, 1.0, den))


def _batch_abstract(a: Aval, b: Aval, op: str) -> tuple:
    return _rules.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]), op)


# inv: X = A^-1; dX = -X dA X.
def _inv_impl(a, *, check: bool):
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        if check:
            raise _failure(a, "getrf", "linalg.inv", _SINGULAR) from None
    # (inv_ex): the singular matrices of the batch give infinities, as LAPACK's getri does
    flat = a.reshape((-1,) + a.shape[-2:])
    out = np.empty_like(flat)
    for i, m in enumerate(flat):
        try:
            out[i] = np.linalg.inv(m)
        except np.linalg.LinAlgError:
            out[i] = np.inf
    return out.reshape(a.shape)


def _inv_vjp(g, x, a, *, check):
    xt = _mT(x)
    return (-matmul(xt, matmul(g, xt)),)


inv_p = register("linalg_inv", _inv_impl, lambda a, check: Aval(tuple(a.shape), a.dtype),
                 _inv_vjp, saves="output", kind="linalg", backward_name="LinalgInvExBackward0")


def _inv(a, check: bool = True):
    return bind(inv_p, (a,), {"check": check})


# solve: X = A^-1 B for B (..., n, k), batch dimensions broadcast.
def _solve_impl(a, b):
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        a = np.broadcast_to(a, np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + a.shape[-2:])
        raise _failure(a, "getrf", "linalg.solve", "The solver failed because the input matrix "
                       "is singular.") from None


def _solve_vjp(g, x, a, b):
    gb = _solve(_mT(a), g)
    ga = -matmul(gb, _mT(x)) if a.requires_grad else None
    return ga, gb if b.requires_grad else None


solve_p = register("linalg_solve", _solve_impl,
                   lambda a, b: Aval(_batch_abstract(a, b, "linalg.solve") + tuple(b.shape[-2:]),
                                     a.dtype),
                   _solve_vjp, saves="both", kind="linalg", backward_name="LinalgSolveExBackward0")


def _solve(a, b):
    return bind(solve_p, (a, b), _NO)


# solve_triangular: X = A^-1 B reading one triangle of A (and not its diagonal if unitriangular).
def _solve_triangular_impl(a, b, *, upper: bool, unitriangular: bool):
    import scipy.linalg
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    if 0 in a.shape or 0 in b.shape:
        return np.zeros(batch + b.shape[-2:], dtype=b.dtype)
    try:
        x = scipy.linalg.solve_triangular(a, b, lower=not upper, unit_diagonal=unitriangular,
                                          check_finite=False)
        return np.asarray(x, dtype=b.dtype)
    except np.linalg.LinAlgError:  # a zero on the diagonal: infinities and NaNs, as torch's
        return _substitute(a, b, upper, unitriangular)


def _substitute(a, b, upper: bool, unit: bool):
    n = a.shape[-1]
    x = np.zeros(np.broadcast_shapes(a.shape[:-1] + (1,), b.shape), dtype=b.dtype)
    rows = range(n - 1, -1, -1) if upper else range(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in rows:
            r = b[..., i, :] - np.einsum("...j,...jk->...k", a[..., i, :], x)
            x[..., i, :] = r if unit else r / a[..., i, i, None]
    return x


def _triangle(m, upper: bool, unit: bool):
    from jitgrad.ops.triangular import tril, triu
    return triu(m, 1 if unit else 0) if upper else tril(m, -1 if unit else 0)


def _solve_triangular_vjp(g, x, a, b, *, upper, unitriangular):
    gb = _solve_triangular(_mT(a), g, not upper, unitriangular)
    ga = None
    if a.requires_grad:
        ga = _triangle(-matmul(gb, _mT(x)), upper, unitriangular)
    return ga, gb if b.requires_grad else None


solve_triangular_p = register(
    "linalg_solve_triangular", _solve_triangular_impl,
    lambda a, b, upper, unitriangular: Aval(
        _batch_abstract(a, b, "linalg.solve_triangular") + tuple(b.shape[-2:]), a.dtype),
    _solve_triangular_vjp, saves="both", kind="linalg",
    backward_name="LinalgSolveTriangularBackward0")


def _solve_triangular(a, b, upper: bool, unitriangular: bool = False):
    return bind(solve_triangular_p, (a, b),
                {"upper": bool(upper), "unitriangular": bool(unitriangular)})


# det and slogdet: d det = det tr(A^-1 dA), d log|det| = tr(A^-1 dA).
def _det_vjp(g, d, a):
    return (g.unsqueeze(-1).unsqueeze(-2) * _cofactors(a, d),)


def _cofactors(a, d):
    """The gradient of det at ``a`` (``d`` its det): det(a) inv(a)^T, or where a is exactly
    singular (its inverse infinite; a rank n-1 matrix still has nonzero cofactors) the same
    through the SVD, as JAX gives (torch 2.13 gives 0 there). The identity stands in for a
    singular matrix in the inverse, so that no inf or NaN reaches the unselected side."""
    from jitgrad.ops.elementwise import where
    if a._ir is None and d._ir is None and np.all(d._value != 0):
        # eager, and no matrix singular: the SVD would be computed only to be discarded
        return d.unsqueeze(-1).unsqueeze(-2) * _mT(_inv(a, False))
    singular = (d == 0).unsqueeze(-1).unsqueeze(-2)
    safe = where(singular, _eye(a.shape[-1], a.dtype), a)
    regular = d.unsqueeze(-1).unsqueeze(-2) * _mT(_inv(safe, False))
    return where(singular, _cofactors_svd(a), regular)


def _cofactors_svd(a):
    """det(U) det(V) U diag(prod of the other singular values) V^T, with a = U diag(s) V^T:
    the cofactor matrix, defined (and computed without a division) for every square a."""
    from jitgrad.ops.elementwise import where
    n = a.shape[-1]
    u, s, v = _svd_parts(bind(svd_p, (a,), {"full_matrices": False}), n, n)
    others = where(_eye(n, dtypes.bool_), 1.0,
                   s.unsqueeze(-2).expand(*s.shape[:-1], n, n)).prod(-1)
    sign = bind(det_p, (u,), _NO) * bind(det_p, (v,), _NO)
    return sign.unsqueeze(-1).unsqueeze(-1) * matmul(u * others.unsqueeze(-2), _mT(v))


det_p = register("linalg_det", np.linalg.det, lambda a: Aval(tuple(a.shape[:-2]), a.dtype),
                 _det_vjp, saves="both", kind="linalg", backward_name="LinalgDetBackward0")


def _slogdet_impl(a):
    sign, logabs = np.linalg.slogdet(a)
    return np.stack([sign, logabs], axis=-1).astype(a.dtype)


def _slogdet_vjp(g, out, a):
    gl = g[..., 1].unsqueeze(-1).unsqueeze(-2)  # the sign is piecewise constant
    return (gl * _mT(_inv(a, False)),)


slogdet_p = register("linalg_slogdet", _slogdet_impl,
                     lambda a: Aval(tuple(a.shape[:-2]) + (2,), a.dtype), _slogdet_vjp,
                     saves="inputs", kind="linalg", backward_name="LinalgSlogdetBackward0")


# cholesky: A = L L^T. With phi(X) the lower triangle of X and half its diagonal,
# dL = L phi(L^-1 dA L^-T), so gA = sym(L^-T phi(L^T gL) L^-1).
def _cholesky_impl(a, *, check: bool):
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        if check:
            raise _failure(a, "potrf", "linalg.cholesky", _NOT_PD) from None
    from scipy.linalg import lapack
    flat = a.reshape((-1,) + a.shape[-2:])
    out = np.zeros_like(flat)
    fn = lapack.get_lapack_funcs(("potrf",), (flat,))[0]
    for i, m in enumerate(flat):  # LAPACK's partial factor where it stops, as torch's
        out[i] = np.tril(fn(m, lower=1, clean=1)[0])
    return out.reshape(a.shape)


def _phi(x):
    from jitgrad.ops.triangular import tril
    return tril(x) - _diag_embed(_diagonal(x)) * 0.5


def _diagonal(x):
    from jitgrad.ops.indexing import diagonal
    return diagonal(x, 0, -2, -1)


def _cholesky_vjp(g, lo, a, *, check):
    from jitgrad.ops.triangular import tril
    p = _phi(matmul(_mT(lo), tril(g)))
    y = _solve_triangular(_mT(lo), p, upper=True)  # L^-T P
    s = _mT(_solve_triangular(_mT(lo), _mT(y), upper=True))  # L^-T P L^-1
    return (_sym(s),)


cholesky_p = register("linalg_cholesky", _cholesky_impl,
                      lambda a, check: Aval(tuple(a.shape), a.dtype), _cholesky_vjp,
                      saves="output", kind="linalg", backward_name="LinalgCholeskyExBackward0")


# LAPACK's info per matrix (inv_ex, cholesky_ex): an int32 result without a gradient.
info_p = register("linalg_info", lambda a, *, routine: _lapack_info(a, routine),
                  lambda a, routine: Aval(tuple(a.shape[:-2]), dtypes.int32), None,
                  saves="none", kind="linalg")


# eigh: A = V diag(w) V^T, packed as (..., n + 1, n): w in row 0, V below it. With
# E_ij = w_j - w_i: dw = diag(V^T dA V), dV = V ((V^T dA V) / E) (0 on the diagonal), so
# gA = V (skew(V^T gV) / E + diag(gw)) V^T with skew(X) = (X - X^T) / 2.
def _eigh_impl(a, *, upper: bool):
    w, v = np.linalg.eigh(a, UPLO="U" if upper else "L")
    return np.concatenate([w[..., None, :], v], axis=-2)


def _eigh_parts(out):
    return out[..., 0, :], out[..., 1:, :]


def _gaps(w):
    return w.unsqueeze(-2) - w.unsqueeze(-1)  # E_ij = w_j - w_i


def _eigh_vjp(g, out, a, *, upper):
    w, v = _eigh_parts(out)
    gw, gv = _eigh_parts(g)
    vg = matmul(_mT(v), gv)
    inner = _safe_div((vg - _mT(vg)) * 0.5, _gaps(w)) + _diag_embed(gw)
    return (matmul(v, matmul(inner, _mT(v))),)


eigh_p = register("linalg_eigh", _eigh_impl,
                  lambda a, upper: Aval(tuple(a.shape[:-2]) + (a.shape[-1] + 1, a.shape[-1]),
                                        a.dtype),
                  _eigh_vjp, saves="output", kind="linalg", backward_name="LinalgEighBackward0")


# svd: A = U diag(S) V^T, packed as (..., m + 1 + n, q): U in the first m rows, S in row m, V
# below (q = min(m, n); with full_matrices, q = max(m, n) and narrower parts padded with 0).
def _svd_impl(a, *, full_matrices: bool):
    m, n = a.shape[-2:]
    k = min(m, n)
    q = max(m, n) if full_matrices else k
    out = np.zeros(a.shape[:-2] + (m + 1 + n, q), dtype=a.dtype)
    if k:
        u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
        out[..., :m, :u.shape[-1]] = u
        out[..., m, :k] = s
        out[..., m + 1:, :vh.shape[-2]] = np.swapaxes(vh, -1, -2)
    elif full_matrices:  # no singular values: the identities
        out[..., :m, :m] = np.eye(m, dtype=a.dtype)
        out[..., m + 1:, :n] = np.eye(n, dtype=a.dtype)
    return out


def _svd_parts(p, m: int, n: int):
    """U, S, V of a packed svd, narrowed to the k = min(m, n) vectors that the gradient uses
    (the others of full_matrices are any completion of the basis, as torch's)."""
    k = min(m, n)
    return p[..., :m, :k], p[..., m, :k], p[..., m + 1:, :k]


def _svd_vjp(g, out, a, *, full_matrices):
    m, n = a.shape[-2:]
    u, s, v = _svd_parts(out, m, n)
    gu, gs, gv = _svd_parts(g, m, n)
    utgu = matmul(_mT(u), gu)
    vtgv = matmul(_mT(v), gv)
    s2 = s * s
    row, col = s.unsqueeze(-2), s.unsqueeze(-1)  # s_j across, s_i down
    inner = _safe_div((utgu - _mT(utgu)) * row + col * (vtgv - _mT(vtgv)), _gaps(s2))
    inner = inner + _diag_embed(gs)
    if m > n:  # the part of gU outside U's span
        left = matmul(u, inner) + (gu - matmul(u, utgu)) / row
        return (matmul(left, _mT(v)),)
    if m < n:
        gvt = _mT(gv)
        right = matmul(inner, _mT(v)) + (gvt - matmul(matmul(gvt, v), _mT(v))) / col
        return (matmul(u, right),)
    return (matmul(u, matmul(inner, _mT(v))),)


svd_p = register("linalg_svd", _svd_impl,
                 lambda a, full_matrices: Aval(tuple(a.shape[:-2]) + (
                     a.shape[-2] + 1 + a.shape[-1],
                     (max if full_matrices else min)(a.shape[-2], a.shape[-1])), a.dtype),
                 _svd_vjp, saves="output", kind="linalg", backward_name="LinalgSvdBackward0")


# qr: A = Q R, packed as (..., m + n, q): Q above R^T (q = min(m, n), or m when complete).
def _qr_impl(a, *, complete: bool):
    q, r = np.linalg.qr(a, mode="complete" if complete else "reduced")
    return np.concatenate([q, np.swapaxes(r, -1, -2)], axis=-2)


def _qr_parts(p, m: int):
    return p[..., :m, :], _mT(p[..., m:, :])


def _qr_square_vjp(gq, gr, q, r):
    """gA for A = QR with m >= n (R square): [Q (tril(M - M^T, -1) - M) + gQ] R^-T, where
    M = Q^T gQ - gR R^T."""
    from jitgrad.ops.triangular import tril
    mm_ = matmul(_mT(q), gq) - matmul(gr, _mT(r))
    b = matmul(q, tril(mm_ - _mT(mm_), -1) - mm_) + gq
    return _mT(_solve_triangular(r, _mT(b), upper=True))


def _qr_check(m: int, n: int, complete: bool, op: str) -> None:
    if complete and m > n:
        raise NotImplementedError(f"{op} of linalg.qr: the QR decomposition is not "
                                  "differentiable when mode='complete' and nrows > ncols")


def _qr_vjp(g, out, a, *, complete):
    m, n = a.shape[-2:]
    _qr_check(m, n, complete, "the gradient")
    q, r = _qr_parts(out, m)
    gq, gr = _qr_parts(g, m)
    if m >= n:
        return (_qr_square_vjp(gq, gr, q, r),)
    # A = [X Y] with X = Q R1 square and Y = Q R2: R2 = Q^T Y feeds Q's gradient and Y's
    from jitgrad.ops.shape import cat
    y, r1, gr1, gr2 = a[..., m:], r[..., :m], gr[..., :m], gr[..., m:]
    gx = _qr_square_vjp(gq + matmul(y, _mT(gr2)), gr1, q, r1)
    return (cat([gx, matmul(q, gr2)], -1),)


qr_p = register("linalg_qr", _qr_impl,
                lambda a, complete: Aval(tuple(a.shape[:-2]) + (
                    a.shape[-2] + a.shape[-1],
                    a.shape[-2] if complete else min(a.shape[-2], a.shape[-1])), a.dtype),
                _qr_vjp, saves="both", kind="linalg", backward_name="LinalgQrBackward0")


# pinv: singular values at most max(atol, rtol * largest) count as 0. Where the rank holds,
# dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P (Golub and Pereyra).
def _pinv_impl(a, *, atol: float, rtol: float, hermitian: bool):
    if 0 in a.shape:
        return np.zeros(a.shape[:-2] + (a.shape[-1], a.shape[-2]), dtype=a.dtype)
    if hermitian:
        w, v = np.linalg.eigh(a)
        big = np.abs(w).max(-1, keepdims=True)
        keep = np.abs(w) > np.maximum(atol, rtol * big)
        winv = np.where(keep, 1 / np.where(keep, w, 1), 0)
        return (v * winv[..., None, :]) @ np.swapaxes(v, -1, -2)
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    keep = s > np.maximum(atol, rtol * s[..., :1])
    sinv = np.where(keep, 1 / np.where(keep, s, 1), 0)
    return (np.swapaxes(vh, -1, -2) * sinv[..., None, :]) @ np.swapaxes(u, -1, -2)


def _pinv_vjp(g, p, a, **params):
    pt, gt = _mT(p), _mT(g)
    out = -matmul(pt, matmul(g, pt))
    out = out + matmul(gt - matmul(a, matmul(p, gt)), matmul(p, pt))
    return (out + matmul(matmul(pt, p), gt - matmul(matmul(gt, p), a)),)


pinv_p = register("linalg_pinv", _pinv_impl,
                  lambda a, **params: Aval(tuple(a.shape[:-2]) + (a.shape[-1], a.shape[-2]),
                                           a.dtype),
                  _pinv_vjp, saves="both", kind="linalg", backward_name="LinalgPinvBackward0")


# -- forward mode and batching of the primitives above -----------------------------------------
def _tangent(t, like):
    if t is not None:
        return t
    from jitgrad.factories import zeros
    return zeros(*like.shape, dtype=like.dtype)


def _inv_jvp(x, primals, tangents, check):
    return -matmul(x, matmul(tangents[0], x))


def _solve_jvp(x, primals, tangents):
    a, _ = primals
    ta, tb = tangents
    rhs = _tangent(tb, x) if ta is None else _tangent(tb, x) - matmul(ta, x)
    return _solve(a, rhs)


def _solve_triangular_jvp(x, primals, tangents, upper, unitriangular):
    a, _ = primals
    ta, tb = tangents
    rhs = _tangent(tb, x)
    if ta is not None:
        rhs = rhs - matmul(_triangle(ta, upper, unitriangular), x)
    return _solve_triangular(a, rhs, upper, unitriangular)


def _trace_inv_times(a, t):
    """tr(A^-1 T) over the batch."""
    return (_mT(_inv(a, False)) * t).sum(dim=(-2, -1))


def _det_jvp(d, primals, tangents):
    return (_cofactors(primals[0], d) * tangents[0]).sum((-2, -1))


def _slogdet_jvp(out, primals, tangents):
    dl = _trace_inv_times(primals[0], tangents[0]).unsqueeze(-1)
    return dl * _const_row(out, (0.0, 1.0))


def _const_row(like, values):
    from jitgrad.ops.shape import _const
    return _const(np.array(values, dtype=like.dtype.np))


def _cholesky_jvp(lo, primals, tangents, check):
    # L^-1 sym(dA) L^-T, both solves on the left: L^-1 (L^-1 sym(dA))^T
    y = _solve_triangular(lo, _sym(tangents[0]), upper=False)
    c = _solve_triangular(lo, _mT(y), upper=False)
    return matmul(lo, _phi(c))


def _eigh_jvp(out, primals, tangents, upper):
    w, v = _eigh_parts(out)
    c = matmul(_mT(v), matmul(_sym(tangents[0]), v))
    dv = matmul(v, _safe_div(c, _gaps(w)))
    from jitgrad.ops.shape import cat
    return cat([_diagonal(c).unsqueeze(-2), dv], -2)


def _svd_jvp(out, primals, tangents, full_matrices):
    a, ta = primals[0], tangents[0]
    m, n = a.shape[-2:]
    if full_matrices and m != n:
        raise NotImplementedError("forward mode through linalg.svd(full_matrices=True) of a "
                                  "matrix that is not square: the completed bases are not "
                                  "differentiable; use full_matrices=False")
    u, s, v = _svd_parts(out, m, n)
    ds = matmul(_mT(u), matmul(ta, v))
    row, col = s.unsqueeze(-2), s.unsqueeze(-1)
    gaps = _gaps(s * s)
    dss, sds = ds * row, col * ds
    du = matmul(u, _safe_div(dss + _mT(dss), gaps))
    dv = matmul(v, _safe_div(sds + _mT(sds), gaps))
    if m > n:
        dav = matmul(ta, v)
        du = du + (dav - matmul(u, matmul(_mT(u), dav))) / row
    elif n > m:
        dau = matmul(_mT(ta), u)
        dv = dv + (dau - matmul(v, matmul(_mT(v), dau))) / row
    from jitgrad.ops.shape import cat
    return cat([du, _diagonal(ds).unsqueeze(-2), dv], -2)


def _qr_square_jvp(q, r, da):
    from jitgrad.ops.triangular import tril
    w = _mT(_solve_triangular(_mT(r), _mT(da), upper=False))  # dA R^-1
    c = matmul(_mT(q), w)
    lo = tril(c, -1)
    omega = lo - _mT(lo)
    return matmul(q, omega - c) + w, matmul(c - omega, r)


def _qr_jvp(out, primals, tangents, complete):
    a, ta = primals[0], tangents[0]
    m, n = a.shape[-2:]
    _qr_check(m, n, complete, "forward mode")
    q, r = _qr_parts(out, m)
    from jitgrad.ops.shape import cat
    if m >= n:
        dq, dr = _qr_square_jvp(q, r, ta)
    else:
        dq, dr1 = _qr_square_jvp(q, r[..., :m], ta[..., :m])
        dr2 = matmul(_mT(dq), a[..., m:]) + matmul(_mT(q), ta[..., m:])
        dr = cat([dr1, dr2], -1)
    return cat([dq, _mT(dr)], -2)


def _pinv_jvp(p, primals, tangents, **params):
    a, ta = primals[0], tangents[0]
    tat = _mT(ta)
    out = -matmul(p, matmul(ta, p))
    out = out + matmul(matmul(p, _mT(p)), tat - matmul(tat, matmul(a, p)))
    return out + matmul(tat - matmul(matmul(p, a), tat), matmul(_mT(p), p))


# matrix_exp: expm(A). Its derivative in direction H is the top-right block of
# expm([[A, H], [0, A]]) (the Frechet derivative as a block exponential), and its VJP is that
# of A^T in direction G: both are written with the primitive itself, so they differentiate again.
def _expm_impl(a):
    if a.size == 0:
        return np.array(a)
    from scipy.linalg import expm  # (batched; float32 computed in float64 and rounded once)
    return np.asarray(expm(a.astype(np.float64)), dtype=a.dtype)


def _expm_frechet(a, h):
    from jitgrad.ops.shape import cat
    n = a.shape[-1]
    zero = a * 0.0
    big = cat([cat([a, h], -1), cat([zero, a], -1)], -2)
    return bind(expm_p, (big,), {})[..., :n, n:]


expm_p = register("linalg_matrix_exp", _expm_impl, lambda a: Aval(tuple(a.shape), a.dtype),
                  lambda g, out, a: (_expm_frechet(_mT(a), g),), saves="inputs", kind="linalg",
                  backward_name="LinalgMatrixExpBackward0")


def _expm_jvp(out, primals, tangents):
    return _expm_frechet(primals[0], tangents[0])


# The LU and LDL factorizations and geqrf live in modules of their own (ops/linalg_lu.py,
# ops/linalg_ldl.py, ops/linalg_householder.py).
from jitgrad.ops import linalg_householder as _householder  # noqa: E402
from jitgrad.ops import linalg_ldl as _ldl  # noqa: E402
from jitgrad.ops import linalg_lu as _lu  # noqa: E402

# (registered by jitgrad.transforms.forward)
JVP_RULES = {inv_p: _inv_jvp, solve_p: _solve_jvp, solve_triangular_p: _solve_triangular_jvp,
             det_p: _det_jvp, slogdet_p: _slogdet_jvp, cholesky_p: _cholesky_jvp,
             eigh_p: _eigh_jvp, svd_p: _svd_jvp, qr_p: _qr_jvp, pinv_p: _pinv_jvp,
             expm_p: _expm_jvp, **_lu.JVP_RULES, **_householder.JVP_RULES, **_ldl.JVP_RULES}


def _batch_matrices(prim, args, batched, size, **params):
    """Each primitive here maps the last two axes of its operands and broadcasts the leading
    ones: batched operands of lower rank get unit axes after the batch axis, so the batch axis
    leads the result."""
    ranks = [x.ndim - 1 if b else x.ndim for x, b in zip(args, batched)]
    top = max(ranks)
    lifted = [x.reshape(x.shape[0], *((1,) * (top - r)), *x.shape[1:]) if b and r < top else x
              for x, b, r in zip(args, batched, ranks)]
    return bind(prim, tuple(lifted), params)


# (registered by jitgrad.transforms.batching)
LAPACK_PRIMITIVES = (inv_p, solve_p, solve_triangular_p, det_p, slogdet_p, cholesky_p, info_p,
                     eigh_p, svd_p, qr_p, pinv_p, expm_p, *_lu.LAPACK_PRIMITIVES,
                     *_householder.LAPACK_PRIMITIVES, *_ldl.LAPACK_PRIMITIVES)
BATCH_RULES = {**{p: _batch_matrices for p in LAPACK_PRIMITIVES}, **_ldl.BATCH_RULES}
