"""The Bunch-Kaufman LDL^T factorization of symmetric matrices and its solve, as primitives
with LAPACK bodies (``sytrf``, ``sytrs``), in torch's format (no gradient, as torch's):

- ``linalg_ldl_factor`` packs ``sytrf``'s two outputs (lower triangle) into one array of shape
  (..., n + 1, n): the rows of ``LD`` (L's strict lower part, its unit diagonal implied, and
  D's 1x1 and 2x2 blocks on and next to the diagonal; 0 above), then the 1-based pivots (exact
  small integers, negative where a 2x2 block starts or ends) in the last row. ``jitgrad.linalg``
  slices them apart.
- ``linalg_ldl_info``: ``sytrf``'s ``info`` per matrix (the 1-based index of an exactly zero
  diagonal block of D, else 0).
- ``linalg_ldl_solve``: ``sytrs`` on (LD, pivots, B), batch dimensions broadcast.

>>> import numpy as np
>>> packed = _ldl_impl(np.array([[4.0, 2.0], [2.0, 3.0]]))
>>> packed.tolist()
[[4.0, 0.0], [0.5, 2.0], [1.0, 2.0]]
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.ops.linalg import LinAlgError
from jitgrad.ops._rules import no_derivative, no_derivative_jvp
from jitgrad.ops.registry import Aval, bind, register


def _sytrf(dtype):
    from scipy.linalg import lapack
    return lapack.get_lapack_funcs(("sytrf",), (np.zeros((1, 1), dtype=dtype),))[0]


def _each(a):
    """The matrices of the batch ``a`` as (count, n, n), and the batch shape."""
    batch = a.shape[:-2]
    count = int(np.prod(batch, dtype=np.int64))
    return a.reshape((count,) + a.shape[-2:]), batch


def _ldl_impl(a, *, check: bool = False):
    n = a.shape[-1]
    flat, batch = _each(a)
    out = np.zeros((flat.shape[0], n + 1, n), dtype=a.dtype)
    if n:
        sytrf = _sytrf(a.dtype)
        for i, m in enumerate(flat):
            ld, piv, info = sytrf(m, lower=1)  # (SciPy's pivots are LAPACK's: 1-based)
            if check and info > 0:
                where = f"(Batch element {i}): " if batch else ""
                raise LinAlgError(f"linalg.ldl_factor: {where}D[{info},{info}] is exactly zero: "
                                  "the matrix is singular and ldl_solve would divide by zero. "
                                  "linalg.ldl_factor_ex factors it anyway and returns info")
            out[i, :n] = np.tril(ld)
            out[i, n] = piv
    return out.reshape(batch + (n + 1, n))


def _info_impl(a):
    flat, batch = _each(a)
    info = np.zeros(flat.shape[0], dtype=np.int32)
    if a.shape[-1]:
        sytrf = _sytrf(a.dtype)
        for i, m in enumerate(flat):
            info[i] = max(int(sytrf(m, lower=1)[-1]), 0)
    return info.reshape(batch)


def _batch_shape(ld, b) -> tuple:
    return tuple(np.broadcast_shapes(tuple(ld.shape[:-2]), tuple(b.shape[:-2])))


def _solve_impl(ld, piv, b):
    from scipy.linalg import lapack
    batch = _batch_shape(ld, b)
    n, k = ld.shape[-1], b.shape[-1]
    count = int(np.prod(batch, dtype=np.int64))
    ld = np.broadcast_to(ld, batch + (n, n)).reshape((count, n, n))
    piv = np.broadcast_to(piv, batch + (n,)).reshape((count, n)).astype(np.int32)
    b = np.broadcast_to(b, batch + (n, k)).reshape((count, n, k))
    out = np.zeros(b.shape, dtype=b.dtype)
    if n and k:
        sytrs = lapack.get_lapack_funcs(("sytrs",), (ld,))[0]
        for i in range(out.shape[0]):
            out[i] = sytrs(ld[i], piv[i], b[i], lower=1)[0]
    return out.reshape(batch + (n, k))


ldl_p = register("linalg_ldl_factor", _ldl_impl,
                 lambda a, check: Aval(tuple(a.shape[:-2]) + (a.shape[-1] + 1, a.shape[-1]),
                                       a.dtype),
                 no_derivative("linalg.ldl_factor"), saves="none", kind="linalg")
ldl_info_p = register("linalg_ldl_info", _info_impl,
                      lambda a: Aval(tuple(a.shape[:-2]), dtypes.int32), None, saves="none",
                      kind="linalg")
ldl_solve_p = register("linalg_ldl_solve", _solve_impl,
                       lambda ld, piv, b: Aval(_batch_shape(ld, b) + tuple(b.shape[-2:]),
                                               b.dtype),
                       no_derivative("linalg.ldl_solve"), saves="none", kind="linalg")


def ldl_parts(a, check: bool):
    """``(LD, pivots)`` of the factorization of the (batch of) symmetric matrices ``a``; the
    pivots int32, as torch's; with ``check``, a ``LinAlgError`` where D is singular."""
    packed = bind(ldl_p, (a,), {"check": bool(check)})
    n = a.shape[-1]
    return packed[..., :n, :], packed[..., n, :].detach().to(dtypes.int32)


def ldl_info(a):
    return bind(ldl_info_p, (a,), {})


def ldl_solve(ld, pivots, b):
    return bind(ldl_solve_p, (ld, pivots, b), {})


def _batch_solve(prim, args, batched, size, **params):
    """vmap of ``ldl_solve``: as ``ops.linalg``'s rule for matrices, but its pivots have one
    core axis, not two: batched operands with fewer leading axes get unit axes after the batch
    axis, so that the batch axis leads the broadcast result."""
    core = (2, 1, 2)  # (LD, pivots, B)
    lead = [x.ndim - c - b for x, c, b in zip(args, core, batched)]
    top = max(lead)
    lifted = [x.reshape(x.shape[0], *((1,) * (top - r)), *x.shape[1:]) if b and r < top else x
              for x, b, r in zip(args, batched, lead)]
    return bind(prim, tuple(lifted), params)


LAPACK_PRIMITIVES = (ldl_p, ldl_info_p, ldl_solve_p)
BATCH_RULES = {ldl_solve_p: _batch_solve}  # (in place of the shared rule for matrices)
JVP_RULES = {ldl_p: no_derivative_jvp("linalg.ldl_factor"),
             ldl_solve_p: no_derivative_jvp("linalg.ldl_solve")}
