"""Vectorizable exp, tanh, sin and cos for generated kernels.

The llvmlite build has no vector math library, so ``math.exp``/``math.sin`` compile to scalar
libm calls and the loops around them stay scalar. These use arithmetic, roundings and a bit-cast
(``2**k`` is built from its exponent bits), so LLVM vectorizes the loops that call them. All
work in float64 (float32 loops round sin and cos once; their exp and tanh are ``_vecmath32``'s).
exp and tanh share one polynomial, in Estrin's scheme: the loops are bound by the latency of
dependent operations. sin/cos reduce by pi/2 in three exact pieces, which is accurate for
|x| < 2**19 (``trig_ok``); a kernel that meets a larger argument returns -2 and its twin with
libm's sin and cos runs instead.
tests/test_vecmath.py checks dense grids and edge values against NumPy.
"""

import math

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_2_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e+00  # pi/2 in three 33-bit parts: n * part is exact
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_PIO2_3T = 8.47842766036889956997e-32
_TRIG_MAX = 524288.0  # 2**19: beyond it, libm's full reduction


def bitcast(src, dst):
    """An intrinsic that reinterprets a ``src`` value's bits as ``dst`` (same width: no
    conversion, which AVX2 could not vectorize)."""
    def cast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))
        return dst(src), codegen
    cast.__name__ = f"bitcast_{src}_{dst}"  # intrinsics are told apart by name
    return intrinsic(cast)


_f64_from_bits = bitcast(types.int64, types.float64)
_bits_of_f64 = bitcast(types.float64, types.int64)
_TWO52 = 4503599627370496.0
_jit = numba.njit(inline="always", error_model="numpy", cache=True)


@_jit
def _pow2(k):
    """2**k for a whole float k in [-1022, 1023], without float-to-int conversion (which AVX2
    cannot vectorize): the bits of k + 1023 + 2**52 end in k + 1023; shift them into place."""
    return _f64_from_bits(_bits_of_f64(k + (1023.0 + _TWO52)) << 52)


# expm1(r) = r + r^2 * sum_n r^n / (n + 2)!, to n = 14 for |r| <= ln(2)/2 (below 1e-17).
(_Q0, _Q1, _Q2, _Q3, _Q4, _Q5, _Q6, _Q7, _Q8, _Q9, _Q10, _Q11, _Q12, _Q13, _Q14) = (
    1.0 / math.factorial(n + 2) for n in range(15))


@_jit
def _expm1_reduced(r):
    """exp(r) - 1 for |r| <= ln(2)/2, without cancellation. Estrin's scheme: a dependency chain
    of five multiply-adds instead of Horner's fifteen (the loops are latency-bound)."""
    r2 = r * r
    r4 = r2 * r2
    q0 = (_Q0 + _Q1 * r) + (_Q2 + _Q3 * r) * r2
    q1 = (_Q4 + _Q5 * r) + (_Q6 + _Q7 * r) * r2
    q2 = (_Q8 + _Q9 * r) + (_Q10 + _Q11 * r) * r2
    q3 = (_Q12 + _Q13 * r) + _Q14 * r2
    return r + r2 * ((q0 + q1 * r4) + (q2 + q3 * r4) * (r4 * r4))


@_jit
def vexp(x):
    x = float(x)
    # Clamp (NaN to 0) so k fits; the clamped ends still overflow to inf or round to 0.
    xc = 0.0 if x != x else (710.0 if x > 710.0 else (-746.0 if x < -746.0 else x))
    k = np.floor(xc * _LOG2E + 0.5)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 + _expm1_reduced(r)
    k1 = np.floor(k * 0.5)
    # Two power-of-two factors: each is a normal number, and a subnormal result is rounded
    # once, by the last multiplication.
    y = p * _pow2(k1) * _pow2(k - k1)
    return x if x != x else y


@_jit
def vtanh(x):
    x = float(x)
    a = abs(x)
    # tanh(a) = e / (e + 2) with e = expm1(2a) = 2**k (1 + expm1(r)) - 1, computed as
    # 2**k expm1(r) + (2**k - 1): exact for k = 0 (small a), one rounding otherwise. One
    # polynomial and one division (the slowest vector instruction here) for every a.
    u = 2.0 * (a if a < 22.0 else 22.0)  # tanh(22) rounds to 1
    k = np.floor(u * _LOG2E + 0.5)
    s = _pow2(k)
    e = s * _expm1_reduced((u - k * _LN2_HI) - k * _LN2_LO) + (s - 1.0)
    t = math.copysign(e / (e + 2.0), x)
    return x if x != x else t


@_jit
def _sin_kernel(r):
    z = r * r
    p = 1.58969099521155010221e-10
    p = p * z - 2.50507602534068634195e-08
    p = p * z + 2.75573137070700676789e-06
    p = p * z - 1.98412698298579493134e-04
    p = p * z + 8.33333333332248946124e-03
    p = p * z - 1.66666666666666324348e-01
    return r + r * z * p


@_jit
def _cos_kernel(r):
    z = r * r
    p = -1.13596475577881948265e-11
    p = p * z + 2.08757232129817482790e-09
    p = p * z - 2.75573143513906633035e-07
    p = p * z + 2.48015872894767294178e-05
    p = p * z - 1.38888888888741095749e-03
    p = p * z + 4.16666666666666019037e-02
    hz = 0.5 * z
    w = 1.0 - hz
    return w + (((1.0 - w) - hz) + z * z * p)


@_jit
def _reduce(x):
    """x = n pi/2 + r, |r| <= pi/4; returns (r, n mod 4 as a float). Exact pieces for
    |x| < 2**19 only: kernels check ``trig_ok`` and run libm's twin otherwise."""
    n = np.floor(x * _2_OVER_PI + 0.5)
    r = (((x - n * _PIO2_1) - n * _PIO2_2) - n * _PIO2_3) - n * _PIO2_3T
    return r, n - 4.0 * np.floor(n * 0.25)


@_jit
def trig_ok(x):
    """Whether vsin/vcos are exact for x (NaN and inf are: they give NaN)."""
    return not (abs(x) >= _TRIG_MAX) or abs(x) == math.inf


@_jit
def libm_ok(x):
    """``trig_ok`` for the libm twin of a kernel: every argument is fine there."""
    return True


@_jit
def vsin(x):
    x = float(x)
    r, q = _reduce(x)
    s, c = _sin_kernel(r), _cos_kernel(r)
    v = s if q == 0.0 else (c if q == 1.0 else (-s if q == 2.0 else -c))
    return x if x == 0.0 else v  # sin(-0.0) is -0.0


@_jit
def vsincos(x):
    """(sin x, cos x) with one range reduction."""
    x = float(x)
    r, q = _reduce(x)
    s, c = _sin_kernel(r), _cos_kernel(r)
    sv = s if q == 0.0 else (c if q == 1.0 else (-s if q == 2.0 else -c))
    cv = c if q == 0.0 else (-s if q == 1.0 else (-c if q == 2.0 else s))
    return (x if x == 0.0 else sv), cv


@_jit
def libm_sincos(x):
    """``vsincos`` for the libm twin of a kernel."""
    return math.sin(x), math.cos(x)


@_jit
def vcos(x):
    x = float(x)
    r, q = _reduce(x)
    s, c = _sin_kernel(r), _cos_kernel(r)
    return c if q == 0.0 else (-s if q == 1.0 else (-c if q == 2.0 else s))
