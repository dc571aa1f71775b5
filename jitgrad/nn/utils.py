"""Gradient clipping: ``clip_grad_norm_`` (returns the total norm) and ``clip_grad_value_``.

>>> import jitgrad
>>> p = jitgrad.nn.Parameter(jitgrad.zeros(2))
>>> p.grad = jitgrad.tensor([3.0, 4.0])
>>> jitgrad.nn.utils.clip_grad_norm_([p], max_norm=1.0)
tensor(5.)
>>> p.grad
tensor([0.6000, 0.8000])
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad.tensor import Tensor


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    grads = _grads(parameters)
    if not grads:
        return Tensor._wrap(np.array(0.0, dtype=np.float32))
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g._value))) for g in grads)
    else:
        total = float(sum(np.sum(np.abs(g._value.astype(np.float64)) ** norm_type)
                          for g in grads) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           "is non-finite, so it cannot be clipped.")
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g._value *= g._value.dtype.type(coef)
            g._vc[0] += 1
    return Tensor._wrap(np.array(total, dtype=grads[0]._value.dtype))


def clip_grad_value_(parameters, clip_value: float) -> None:
    for g in _grads(parameters):
        np.clip(g._value, -clip_value, clip_value, out=g._value)
        g._vc[0] += 1
