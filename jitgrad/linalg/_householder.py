"""Householder products: ``linalg.householder_product`` (``torch.orgqr``), ``torch.ormqr`` and
``torch.geqrf``, with torch's names and checks. ``geqrf`` is the LAPACK primitive of
``jitgrad.ops.linalg_householder`` (no gradient, as torch's); the products apply the reflectors
``H_i = I - tau_i v_i v_i^T`` one at a time, compositions of matmuls, so they differentiate in
both the reflectors and ``tau`` to any order and compile.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from jitgrad.ops.elementwise import where
from jitgrad.linalg._checks import floating, matrix, same_dtype, tensor_arg
from jitgrad.ops.linalg import _mT, matmul
from jitgrad.ops.linalg_householder import geqrf_parts
from jitgrad.ops.shape import _const
from jitgrad.ops.triangular import tril

GeqrfResult = namedtuple("geqrf", ["a", "tau"])


def geqrf(input):  # noqa: A002
    """``(a, tau)``: the QR factorization of each (m, n) matrix as LAPACK's ``geqrf`` leaves
    it: R on and above the diagonal of ``a``, and below it the Householder vectors whose
    reflectors, with the scalars ``tau``, multiply to Q (``householder_product(a, tau)``).
    Not differentiable, as torch's.

    >>> import jitgrad
    >>> A = jitgrad.tensor([[3.0, 1.0], [4.0, 2.0]], dtype=jitgrad.float64)
    >>> a, tau = jitgrad.geqrf(A)
    >>> bool((jitgrad.linalg.householder_product(a, tau) @ a.triu() - A).abs().max() < 1e-12)
    True
    """
    return GeqrfResult(*geqrf_parts(matrix(input, "geqrf", "input")))


def _reflectors(A, tau, op: str):  # noqa: N803
    """The unit lower trapezoidal (m, k) matrix of the Householder vectors, and ``tau``."""
    A = matrix(A, op, "input")
    tau = tensor_arg(tau, op, "tau")
    floating(tau, op)
    same_dtype(A, tau, op)
    m, n = A.shape[-2:]
    k = tau.shape[-1] if tau.ndim else -1
    if tau.ndim != A.ndim - 1 or tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise RuntimeError(f"torch.{op}: Expected batch dimensions of tau to be equal to "
                           f"input.shape[:-2], got tau of shape {tuple(tau.shape)} for input of "
                           f"shape {tuple(A.shape)}")
    if k > n or k > m:
        raise RuntimeError(f"torch.{op}: input.shape[-1] and input.shape[-2] must be greater "
                           f"than or equal to tau.shape[-1], got input of shape "
                           f"{tuple(A.shape)} and tau of shape {tuple(tau.shape)}")
    V = tril(A[..., :, :k], -1) + _const(np.eye(m, k, dtype=A.dtype.np))
    return A, V, tau


def _apply(V, tau, C, left: bool, order):  # noqa: N803
    """``C`` multiplied by the reflectors ``H_i`` in ``order``, each from the left (``H_i C``)
    or from the right (``C H_i``)."""
    for i in order:
        v = V[..., :, i:i + 1]
        t = tau[..., i].unsqueeze(-1).unsqueeze(-1)
        if left:
            C = C - t * matmul(v, matmul(_mT(v), C))
        else:
            C = C - t * matmul(matmul(C, v), _mT(v))
    return C


def householder_product(A, tau):  # noqa: N803
    """The first n columns of ``H_1 H_2 ... H_k`` for each (m, n) matrix of Householder
    vectors ``A`` (m >= n, unit diagonal implied, zeros above it) and k <= n scalars ``tau``:
    Q of a QR factorization from ``geqrf``'s result (``torch.orgqr``).

    >>> import jitgrad
    >>> v = jitgrad.tensor([[1.0], [1.0]])
    >>> jitgrad.linalg.householder_product(v, jitgrad.tensor([1.0]))
    tensor([[ 0.],
            [-1.]])
    """
    A, V, tau = _reflectors(A, tau, "linalg.householder_product")
    m, n = A.shape[-2:]
    if m < n:
        raise RuntimeError(f"torch.linalg.householder_product: input.shape[-2] must be greater "
                           f"than or equal to input.shape[-1], got shape {tuple(A.shape)}")
    eye = _const(np.eye(m, n, dtype=A.dtype.np)).expand(*A.shape)
    if tau.shape[-1] == 0:  # Q = I, still a function of A (its gradient 0), as torch's
        return where(_const(np.zeros((), dtype=bool)), A, eye)
    return _apply(V, tau, eye, True, range(tau.shape[-1] - 1, -1, -1))


def orgqr(input, tau):  # noqa: A002
    """``linalg.householder_product``."""
    return householder_product(input, tau)


def ormqr(input, tau, other, left: bool = True, transpose: bool = False):  # noqa: A002
    """``other`` multiplied by the (m, m) Q of the Householder vectors ``input`` and scalars
    ``tau`` (``geqrf``'s): ``Q @ other`` (``left=False``: ``other @ Q``; ``transpose=True``:
    Q^T in place of Q), without forming Q.

    >>> import jitgrad
    >>> v = jitgrad.tensor([[1.0], [1.0]])
    >>> jitgrad.ormqr(v, jitgrad.tensor([1.0]), jitgrad.tensor([[1.0], [2.0]]))
    tensor([[-2.],
            [-1.]])
    """
    A, V, tau = _reflectors(input, tau, "ormqr")
    C = matrix(other, "ormqr", "other")
    same_dtype(A, C, "ormqr")
    m = A.shape[-2]
    if (C.shape[-2] if left else C.shape[-1]) != m:
        side = "other.shape[-2]" if left else "other.shape[-1]"
        raise RuntimeError(f"torch.ormqr: {side} must be equal to input.shape[-2] = {m}, got "
                           f"other of shape {tuple(C.shape)}")
    k = tau.shape[-1]
    # Q = H_1 ... H_k: Q C applies H_k first; Q^T C = H_k ... H_1 C applies H_1 first; from the
    # right, C Q applies H_1 first and C Q^T H_k first.
    ascending = transpose if left else not transpose
    return _apply(V, tau, C, left, range(k) if ascending else range(k - 1, -1, -1))


from jitgrad.tensor import Tensor  # noqa: E402

Tensor.geqrf = geqrf
Tensor.orgqr = orgqr
Tensor.ormqr = ormqr
