"""Scalar helpers the generated kernels call, with NumPy's semantics (NaN propagates)."""

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def max2(a, b):
    if a > b or a != a:
        return a
    return b


@numba.njit(cache=True, inline="always")
def min2(a, b):
    if a < b or a != a:
        return a
    return b


@numba.njit(cache=True, inline="always")
def clamp(x, lo, hi):
    if x != x:
        return x
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@numba.njit(cache=True, inline="always")
def sign(x):
    if x > 0:
        return 1
    if x < 0:
        return -1
    if x == 0:
        return 0  # -0.0 too, as np.sign
    return x  # NaN (callers cast the result)


@numba.njit(cache=True, inline="always")
def floordiv(a, b):
    # Integer floor division as NumPy's: Numba's own gives 0 for the one quotient that
    # overflows, min // -1, where NumPy (and torch) wrap around to min. -a wraps too.
    if b == -1:
        return -a
    return a // b


@numba.njit(cache=True, inline="always")
def isnan(x):
    return x != x


@numba.njit(cache=True, inline="always")
def isinf(x):
    return x == np.inf or x == -np.inf


@numba.njit(cache=True, inline="always")
def floor(x):
    # np.floor keeps a float a float: math.floor converts to int64, which turns inf, NaN and
    # values beyond 2**63 into garbage (and keeps AVX2 from vectorizing the loop).
    return np.floor(x)  # callers cast the result back to the operand's dtype
