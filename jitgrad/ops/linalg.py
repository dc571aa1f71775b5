"""Matrix multiplication (NumPy ``matmul`` semantics: 1-D, 2-D, and batched with broadcasting).

>>> import jitgrad
>>> a = jitgrad.ones(2, 3, requires_grad=True)
>>> (a @ jitgrad.ones(3)).sum().backward()
>>> a.grad
tensor([[1., 1., 1.],
        [1., 1., 1.]])
"""

from __future__ import annotations

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
        gb = matmul(_mT(a2.reshape(-1, k)), g2.reshape(-1, n))
        if b.ndim == 1:
            gb = gb.reshape((b.shape[0],))
    elif b.requires_grad:
        gb = matmul(_mT(a2), g2)
        if b.ndim == 1:
            gb = gb.reshape(tuple(gb.shape[:-2]) + (b.shape[0],))
    return ga, gb


matmul_p = register("matmul", np.matmul,
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


def outer(input, vec2):  # noqa: A002
    return input.reshape(-1, 1) * vec2.reshape(1, -1)
