"""Scalar helpers the generated kernels call, with NumPy's semantics (NaN propagates)."""

import math

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
    return x  # 0, -0.0 and NaN keep their value, as np.sign (callers cast the result)


@numba.njit(cache=True, inline="always")
def isnan(x):
    return x != x


@numba.njit(cache=True, inline="always")
def isinf(x):
    return x == np.inf or x == -np.inf


@numba.njit(cache=True, inline="always")
def floor(x):
    return math.floor(x)  # callers cast the result back to the operand's dtype
