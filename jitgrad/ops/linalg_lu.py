"""The LU factorization with partial pivoting, ``A = P L U``, as two primitives:

- ``linalg_lu_factor``: LAPACK's ``getrf`` on each (m, n) matrix. Its result packs LAPACK's two
  outputs into one array of shape (..., m + 1, n): the rows of ``LU`` (L below the diagonal,
  its unit diagonal implied; U on and above it), then the 1-based pivots (k = min(m, n) of them,
  exact small integers) in the first k columns of the last row. ``jitgrad.linalg`` slices them
  apart, as ``eigh`` and ``svd`` are read (``jitgrad.ops.linalg``).
- ``linalg_lu_pivots_to_permutation``: LAPACK's row interchanges as the permutation matrix P
  (no gradient: the pivots are integers).

The VJP and JVP are the standard adjoint formulas (square, wide and tall), written with
``solve_triangular``, ``matmul``, ``tril``/``triu`` and P, so they differentiate again.

>>> import jitgrad
>>> A = jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=jitgrad.float64)
>>> P, L, U = jitgrad.linalg.lu(A)
>>> bool(((P @ L @ U) - A).abs().max() < 1e-12)
True
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.ops.linalg import LinAlgError, _mT, _solve_triangular, matmul
from jitgrad.ops.registry import Aval, bind, register
from jitgrad.ops.shape import _const, cat
from jitgrad.ops.triangular import tril, triu


def _count(shape: tuple) -> int:
    return int(np.prod(shape, dtype=np.int64))


# -- the factorization -----------------------------------------------------------------------
def _lu_impl(a, *, check: bool):
    from scipy.linalg import lapack
    m, n = a.shape[-2:]
    k, batch = min(m, n), a.shape[:-2]
    out = np.zeros(batch + (m + 1, n), dtype=a.dtype)
    out[..., :m, :] = a
    count = _count(batch)
    if count == 0 or k == 0:
        return out
    flat = out.reshape((count, m + 1, n))
    getrf = lapack.get_lapack_funcs(("getrf",), (flat,))[0]
    for i in range(count):
        lu, piv, info = getrf(flat[i, :m])
        flat[i, :m] = lu
        flat[i, m, :k] = piv + 1  # (SciPy's are 0-based; LAPACK's and torch's 1-based)
        if check and info > 0:
            where = f"(Batch element {i}): " if batch else ""
            raise LinAlgError(f"linalg.lu_factor: {where}U[{info},{info}] is zero and using it "
                              "on lu_solve would result in a division by zero. If you still "
                              "want to perform the factorization, consider calling "
                              "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")
    return out


def lu_parts(packed):
    """``(LU, pivots)`` of a packed factorization; the pivots int32, as torch's."""
    m, n = packed.shape[-2] - 1, packed.shape[-1]
    return packed[..., :m, :], packed[..., m, :min(m, n)].detach().to(dtypes.int32)


def unpack(lu):
    """``(L, U)`` of a packed ``LU`` (m, n): L (m, k) unit lower trapezoidal, U (k, n) upper."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    low = tril(lu[..., :, :k], -1) + _const(np.eye(m, k, dtype=lu.dtype.np))
    return low, triu(lu[..., :k, :])


def permutation(pivots, m: int, dtype):
    """The (m, m) permutation matrix P, of ``dtype``, of LAPACK's 1-based row interchanges."""
    return bind(perm_p, (pivots,), {"m": int(m), "dtype": dtype.name})


def _lu_vjp(g, out, a, *, check):
    m, n = a.shape[-2:]
    k = min(m, n)
    lu, piv = lu_parts(out)
    low, up = unpack(lu)
    glu = g[..., :m, :]
    gl, gu = tril(glu[..., :, :k], -1), triu(glu[..., :k, :])
    lt = _mT(low)
    if m == n:  # gA' = L^-T (tril(L^T gL, -1) + triu(gU U^T)) U^-T
        inner = tril(matmul(lt, gl), -1) + triu(matmul(gu, _mT(up)))
        ga = _solve_triangular(lt, _right_solve_upper(inner, up), True, True)
    elif m < n:  # A = L [U1 U2]: U2 = L^-1 A2 carries gU2 into L's gradient and A2's
        u1, u2, gu1, gu2 = up[..., :m], up[..., m:], gu[..., :m], gu[..., m:]
        inner = tril(matmul(lt, gl) - matmul(gu2, _mT(u2)), -1) + triu(matmul(gu1, _mT(u1)))
        ga = _solve_triangular(lt, cat([_right_solve_upper(inner, u1), gu2], -1), True, True)
    else:  # A = [L1; L2] U: L2 = A2 U^-1 carries gL2 into U's gradient and A2's
        l1, l2, gl1, gl2 = low[..., :n, :], low[..., n:, :], gl[..., :n, :], gl[..., n:, :]
        inner = tril(matmul(_mT(l1), gl1), -1) + triu(matmul(gu, _mT(up)) - matmul(_mT(l2), gl2))
        top = _solve_triangular(_mT(l1), inner, True, True)
        ga = _right_solve_upper(cat([top, gl2], -2), up)
    return (matmul(permutation(piv, m, a.dtype), ga),)


def _right_solve_upper(x, up):
    """``x U^-T`` for upper triangular U: (U^-1 x^T)^T."""
    return _mT(_solve_triangular(up, _mT(x), True))


def _lu_abstract(a, check):
    return Aval(tuple(a.shape[:-2]) + (a.shape[-2] + 1, a.shape[-1]), a.dtype)


lu_p = register("linalg_lu_factor", _lu_impl, _lu_abstract, _lu_vjp, saves="output",
                kind="linalg", backward_name="LinalgLuFactorExBackward0")


def lu_factor_packed(a, check: bool):
    return bind(lu_p, (a,), {"check": bool(check)})


# -- the permutation of the pivots -----------------------------------------------------------
def _perm_impl(piv, *, m: int, dtype: str):
    batch, k = piv.shape[:-1], piv.shape[-1]
    count = _count(batch)
    p = piv.reshape((count, k)).astype(np.int64) - 1
    if p.size and (p.min() < 0 or p.max() >= m):
        raise RuntimeError(f"Pivots given to lu_solve must all be smaller or equal to "
                           f"LU.size(-2) = {m} and at least 1. Did you properly pass the result "
                           "of lu_factor?")
    rows = np.arange(count)
    perm = np.tile(np.arange(m), (count, 1))
    for i in range(min(k, m)):  # LAPACK's interchanges in order: row i <-> row p_i
        j = p[:, i]
        a, b = perm[rows, i].copy(), perm[rows, j].copy()
        perm[rows, i], perm[rows, j] = b, a
    out = np.zeros((count, m, m), dtype=dtypes.as_dtype(dtype).np)
    out[rows[:, None], perm, np.arange(m)[None, :]] = 1  # (P A)[perm] = L U: P[perm[j], j] = 1
    return out.reshape(batch + (m, m))


perm_p = register("linalg_lu_pivots_to_permutation", _perm_impl,
                  lambda piv, m, dtype: Aval(tuple(piv.shape[:-1]) + (m, m),
                                             dtypes.as_dtype(dtype)),
                  None, saves="none", kind="linalg")


# -- forward mode -------------------------------------------------------------------------------
def _lu_jvp(out, primals, tangents, check):
    a, ta = primals[0], tangents[0]
    m, n = a.shape[-2:]
    lu, piv = lu_parts(out)
    low, up = unpack(lu)
    da = matmul(_mT(permutation(piv, m, a.dtype)), ta)  # P^T dA = dL U + L dU

    def core(l_sq, u_sq, d):  # X = L^-1 d U^-1; dL = L tril(X, -1), dU = triu(X) U
        x = _mT(_solve_triangular(_mT(u_sq), _mT(_solve_triangular(l_sq, d, False, True)),
                                  False))
        return matmul(l_sq, tril(x, -1)), matmul(triu(x), u_sq)

    if m == n:
        dl, du = core(low, up, da)
        dlu = dl + du
    elif m < n:
        u2 = up[..., m:]
        dl, du1 = core(low, up[..., :m], da[..., :m])
        du2 = _solve_triangular(low, da[..., m:] - matmul(dl, u2), False, True)
        dlu = cat([dl + du1, du2], -1)
    else:
        l1, l2 = low[..., :n, :], low[..., n:, :]
        dl1, du = core(l1, up, da[..., :n, :])
        dl2 = _right_solve_upper_t(da[..., n:, :] - matmul(l2, du), up)
        dlu = cat([dl1 + du, dl2], -2)
    return cat([dlu, dlu[..., :1, :] * 0.0], -2)


def _right_solve_upper_t(x, up):
    """``x U^-1`` for upper triangular U: (U^-T x^T)^T."""
    return _mT(_solve_triangular(_mT(up), _mT(x), False))


JVP_RULES = {lu_p: _lu_jvp}
LAPACK_PRIMITIVES = (lu_p, perm_p)
