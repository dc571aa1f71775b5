"""Inverse trigonometric and hyperbolic functions, and ``atan2``: elementwise primitives with a
libm scalar template each, their derivatives written with jitgrad ops beside them.

>>> import jitgrad
>>> x = jitgrad.tensor([0.0, 0.5], requires_grad=True)
>>> jitgrad.asin(x).sum().backward()
>>> x.grad
tensor([1.0000, 1.1547])
>>> jitgrad.atan2(jitgrad.tensor([1.0]), jitgrad.tensor([-1.0]))
tensor([2.3562])
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.ops import _rules
from jitgrad.ops.elementwise import _binary, _quiet, _unary, sqrt
from jitgrad.ops.registry import promote, register


def _one_minus_sq(x):
    return 1 - x * x


asin_p = register("asin", _quiet(np.arcsin), _rules.same,
                  lambda g, out, x: (g / sqrt(_one_minus_sq(x)),), expr="math.asin({0})")
acos_p = register("acos", _quiet(np.arccos), _rules.same,
                  lambda g, out, x: (-(g / sqrt(_one_minus_sq(x))),), expr="math.acos({0})")
atan_p = register("atan", _quiet(np.arctan), _rules.same,
                  lambda g, out, x: (g / (x * x + 1),), expr="math.atan({0})")
asinh_p = register("asinh", _quiet(np.arcsinh), _rules.same,
                   lambda g, out, x: (g / sqrt(x * x + 1),), expr="math.asinh({0})")
acosh_p = register("acosh", _quiet(np.arccosh), _rules.same,
                   lambda g, out, x: (g / sqrt(x * x - 1),), expr="math.acosh({0})")
atanh_p = register("atanh", _quiet(np.arctanh), _rules.same,
                   lambda g, out, x: (g / _one_minus_sq(x),), expr="math.atanh({0})")


def _atan2_vjp(g, out, y, x):
    # atan2(y, x) is the angle of the point (x, y): d/dy = x / r^2, d/dx = -y / r^2.
    r2 = y * y + x * x
    return g * x / r2, -(g * y) / r2


atan2_p = register("atan2", _quiet(np.arctan2), _rules.binary, _atan2_vjp,
                   expr="math.atan2({0}, {1})")

asin = _unary(asin_p)
acos = _unary(acos_p)
atan = _unary(atan_p)
asinh = _unary(asinh_p)
acosh = _unary(acosh_p)
atanh = _unary(atanh_p)
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def atan2(input, other):  # noqa: A002  (torch's argument names)
    """The angle of the point (``other``, ``input``) in radians, in [-pi, pi], elementwise
    with broadcasting; integers give float32, as torch."""
    if not isinstance(input, Tensor):
        raise TypeError(f"atan2(): argument 'input' must be a Tensor, not {type(input).__name__}")
    y, x = promote(input, other)
    if not y.dtype.is_floating_point:
        y, x = y.to(dtypes.float32), x.to(dtypes.float32)
    return _binary(atan2_p, y, x)


arctan2 = atan2

from jitgrad.tensor import Tensor  # noqa: E402
