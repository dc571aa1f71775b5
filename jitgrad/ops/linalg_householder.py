"""``geqrf``: LAPACK's QR factorization in Householder form, one primitive. Its result packs
LAPACK's two outputs into one array of shape (..., m + 1, n): the rows of ``a`` (R on and above
the diagonal, the reflectors' vectors below it), then the k = min(m, n) scalars ``tau`` in the
first k columns of the last row. It has no gradient, as torch's has none; the functions that
consume its result (``householder_product``, ``ormqr``) are compositions and differentiate.

>>> import jitgrad
>>> a, tau = jitgrad.geqrf(jitgrad.tensor([[3.0, 1.0], [4.0, 2.0]], dtype=jitgrad.float64))
>>> a.triu().abs()  # R (its signs are LAPACK's)
tensor([[5.0000, 2.2000],
        [0.0000, 0.4000]], dtype=jitgrad.float64)
"""

from __future__ import annotations

import numpy as np

from jitgrad.ops._rules import no_derivative, no_derivative_jvp
from jitgrad.ops.registry import Aval, bind, register


def _geqrf_impl(a):
    from scipy.linalg import lapack
    m, n = a.shape[-2:]
    k, batch = min(m, n), a.shape[:-2]
    out = np.zeros(batch + (m + 1, n), dtype=a.dtype)
    out[..., :m, :] = a
    count = int(np.prod(batch, dtype=np.int64))
    if count == 0 or k == 0:
        return out
    flat = out.reshape((count, m + 1, n))
    geqrf = lapack.get_lapack_funcs(("geqrf",), (flat,))[0]
    for i in range(count):
        qr, tau, _, _ = geqrf(flat[i, :m])
        flat[i, :m] = qr
        flat[i, m, :k] = tau
    return out


geqrf_p = register("linalg_geqrf", _geqrf_impl,
                   lambda a: Aval(tuple(a.shape[:-2]) + (a.shape[-2] + 1, a.shape[-1]), a.dtype),
                   no_derivative("geqrf"), saves="none", kind="linalg")


def geqrf_parts(a):
    """``(a, tau)`` of ``geqrf`` on the (batch of) matrix ``a``."""
    packed = bind(geqrf_p, (a,), {})
    m, n = a.shape[-2:]
    return packed[..., :m, :], packed[..., m, :min(m, n)]


LAPACK_PRIMITIVES = (geqrf_p,)
JVP_RULES = {geqrf_p: no_derivative_jvp("geqrf")}
