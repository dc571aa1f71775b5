"""Vectorizable exp and tanh in float32 arithmetic, for float32 loops.

The float64 versions (``_vecmath``) are accurate to 1e-16 and run four lanes wide; a float32
result needs neither, so these compute in float32 (eight lanes on AVX2) with polynomials just
long enough for float32: within 2 ulp of the correctly rounded result (tests/test_vecmath.py
checks dense grids over the ranges that matter, and the edge values). Constants are float32 so
Numba keeps every operation in float32.
"""

import math

import numpy as np
from numba import types

from jitgrad.backends._vecmath import _jit, bitcast

_f = np.float32
_LOG2E = _f(1.4426950408889634)
_LN2_HI = _f(0.693145751953125)        # few mantissa bits: k * _LN2_HI is exact for |k| < 2**11
_LN2_LO = _f(1.4286067653301870e-06)   # ln 2 - _LN2_HI
_BIAS = _f(127.0 + 2.0 ** 23)          # k + _BIAS holds k + 127 in its low mantissa bits
_HALF, _ONE, _TWO = _f(0.5), _f(1.0), _f(2.0)
_EXP_HI, _EXP_LO = _f(88.8), _f(-104.0)  # clamps: exp overflows to inf, and rounds to 0
_TANH_ONE = _f(10.0)  # tanh(10) rounds to 1 in float32
# expm1(r) = r + r^2 * sum_n r^n / (n + 2)!, to n = 6 for |r| <= ln(2)/2 (below 1e-9).
(_Q0, _Q1, _Q2, _Q3, _Q4, _Q5, _Q6) = (_f(1 / math.factorial(n + 2)) for n in range(7))


_f32_from_bits = bitcast(types.int32, types.float32)
_bits_of_f32 = bitcast(types.float32, types.int32)


@_jit
def _pow2(k):
    """2**k for a whole float32 k in [-126, 127], from its exponent bits (no float-to-int
    conversion)."""
    return _f32_from_bits(_bits_of_f32(k + _BIAS) << 23)


@_jit
def _expm1_reduced(r):
    """exp(r) - 1 for |r| <= ln(2)/2, without cancellation (Estrin's scheme, as _vecmath)."""
    r2 = r * r
    q = ((_Q0 + _Q1 * r) + (_Q2 + _Q3 * r) * r2) + ((_Q4 + _Q5 * r) + _Q6 * r2) * (r2 * r2)
    return r + r2 * q


@_jit
def vexp32(x):
    x = np.float32(x)
    # Clamp (NaN to 0) so k fits: exp overflows to inf, and rounds to 0, at the clamped ends.
    xc = _f(0.0) if x != x else (_EXP_HI if x > _EXP_HI else (_EXP_LO if x < _EXP_LO else x))
    k = np.floor(xc * _LOG2E + _HALF)
    p = _ONE + _expm1_reduced((xc - k * _LN2_HI) - k * _LN2_LO)
    k1 = np.floor(k * _HALF)
    # Two normal power-of-two factors: a subnormal result is rounded once, by the last one.
    y = p * _pow2(k1) * _pow2(k - k1)
    return x if x != x else y


@_jit
def vtanh32(x):
    x = np.float32(x)
    a = abs(x)
    # tanh(a) = e / (e + 2), e = expm1(2a) = 2**k expm1(r) + (2**k - 1), as _vecmath.vtanh.
    u = _TWO * (a if a < _TANH_ONE else _TANH_ONE)
    k = np.floor(u * _LOG2E + _HALF)
    s = _pow2(k)
    e = s * _expm1_reduced((u - k * _LN2_HI) - k * _LN2_LO) + (s - _ONE)
    # t = h / (1 + h), h = e / 2. The rounding of 1 + h would add up to 1 ulp near 0: its
    # error (exact, Fast2Sum) corrects the quotient, using 1 / (1 + h) = 1 - t.
    h = e * _HALF
    d = _ONE + h
    err = (_ONE - d) + h if h <= _ONE else (h - d) + _ONE
    q = h / d
    t = math.copysign(q - q * (err * (_ONE - q)), x)
    return x if x != x else t
