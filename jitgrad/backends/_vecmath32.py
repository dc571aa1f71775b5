"""Vectorizable exp and tanh in float32 arithmetic, for float32 loops.

The float64 versions (``_vecmath``) are accurate to 1e-16 and run four lanes wide; a float32
result needs neither, so these compute in float32 (eight lanes on AVX2) with polynomials just
long enough for float32: within 2 ulp of the correctly rounded result (tests/test_vecmath.py
checks every float32 in the ranges that matter, and the edge values). Constants are float32 so
Numba keeps every operation in float32.
"""

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_f = np.float32
_LOG2E = _f(1.4426950408889634)
_LN2_HI = _f(0.693145751953125)        # few mantissa bits: k * _LN2_HI is exact for |k| < 2**11
_LN2_LO = _f(1.4286067653301870e-06)   # ln 2 - _LN2_HI
_BIAS = _f(127.0 + 2.0 ** 23)          # k + _BIAS holds k + 127 in its low mantissa bits
_HALF, _ONE, _TWO = _f(0.5), _f(1.0), _f(2.0)
_EXP_HI, _EXP_LO = _f(88.8), _f(-104.0)  # clamps: exp overflows to inf, and rounds to 0
_TANH_SMALL = _f(0.55)
_TANH_ONE = _f(10.0)  # tanh(10) rounds to 1 in float32
# Taylor coefficients (1/n!) for exp on |r| <= ln(2)/2: degree 7 errs below 2e-9.
_E2, _E3, _E4, _E5, _E6, _E7 = (_f(1 / 2), _f(1 / 6), _f(1 / 24), _f(1 / 120), _f(1 / 720),
                                _f(1 / 5040))
# tanh(a) = a + a^3 * P(a^2) for a < 0.55: Taylor to a^17 (truncation below 3e-9 relative).
_T3, _T5, _T7, _T9 = _f(-1 / 3), _f(2 / 15), _f(-17 / 315), _f(62 / 2835)
_T11, _T13 = _f(-1382 / 155925), _f(21844 / 6081075)
_T15, _T17 = _f(-929569 / 638512875), _f(6404582 / 10854718875)


@intrinsic
def _f32_from_bits(typingctx, bits):
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _bits_of_f32(typingctx, x):
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


_jit = numba.njit(inline="always", error_model="numpy", cache=True)


@_jit
def _pow2(k):
    """2**k for a whole float32 k in [-126, 127], from its exponent bits (no float-to-int
    conversion)."""
    return _f32_from_bits(_bits_of_f32(k + _BIAS) << 23)


@_jit
def _exp_reduced(y):
    """exp(y) for y in [-104, 88.8]: overflows to inf past float32's range, and rounds a
    subnormal result once (2**k is applied as two normal factors)."""
    k = np.floor(y * _LOG2E + _HALF)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = _E7
    p = p * r + _E6
    p = p * r + _E5
    p = p * r + _E4
    p = p * r + _E3
    p = p * r + _E2
    p = p * r + _ONE
    p = p * r + _ONE
    k1 = np.floor(k * _HALF)
    return p * _pow2(k1) * _pow2(k - k1)


@_jit
def vexp32(x):
    x = np.float32(x)
    xc = _f(0.0) if x != x else (_EXP_HI if x > _EXP_HI else (_EXP_LO if x < _EXP_LO else x))
    y = _exp_reduced(xc)
    return x if x != x else y


@_jit
def vtanh32(x):
    x = np.float32(x)
    a = abs(x)
    small = a < _TANH_SMALL
    s = a if small else _f(0.0)
    z = s * s
    p = _T17
    p = p * z + _T15
    p = p * z + _T13
    p = p * z + _T11
    p = p * z + _T9
    p = p * z + _T7
    p = p * z + _T5
    p = p * z + _T3
    t_small = s + s * z * p
    e = _exp_reduced(_TWO * (a if a < _TANH_ONE else _TANH_ONE))
    t_big = _ONE - _TWO / (e + _ONE)
    t = t_small if small else t_big
    t = math.copysign(t, x)
    return x if x != x else np.float32(t)
