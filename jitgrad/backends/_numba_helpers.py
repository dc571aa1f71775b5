"""Scalar helpers the generated kernels call, with NumPy's semantics (NaN propagates)."""

import sys

import llvmlite.ir as lir
import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic


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


# Large arrays made inside a kernel come from malloc, in 4 KiB pages that fault in one by one
# on first write: writing 100 MB of fresh pages took 4x as long as writing NumPy's arrays,
# which NumPy asks the kernel to back with 2 MiB pages. ``hugepages(a)`` asks the same for the
# 2 MiB-aligned part of ``a`` (Linux only; a hint, ignored where transparent huge pages are off).
# Kernels call it on arrays of 4 MiB or more (numba_cpu.HUGEPAGE_MIN_BYTES), as NumPy does.
_MADV_HUGEPAGE = 14
_HUGE = 1 << 21


@intrinsic
def _madvise(typingctx, addr, length, advice):
    def codegen(context, builder, signature, args):
        i8p = lir.IntType(8).as_pointer()
        fnty = lir.FunctionType(lir.IntType(32), [i8p, lir.IntType(64), lir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "madvise")
        return builder.call(fn, [builder.inttoptr(args[0], i8p), args[1], args[2]])
    return types.int32(types.intp, types.intp, types.int32), codegen


if sys.platform.startswith("linux"):
    @numba.njit(cache=True, inline="always")
    def hugepages(a):
        p = a.ctypes.data
        start = (p + _HUGE - 1) & ~(_HUGE - 1)
        end = (p + a.nbytes) & ~(_HUGE - 1)
        if end > start:
            _madvise(start, end - start, np.int32(_MADV_HUGEPAGE))
else:
    @numba.njit(cache=True, inline="always")
    def hugepages(a):
        pass


# -- counter-based random draws (ops/random.py is their definition) -------------------------
@numba.njit(cache=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def _rand_key(state, salt):
    k = _mix64(np.uint64(state[0]) ^ np.uint64(0x5851F42D4C957F2D))
    k = _mix64(k + np.uint64(state[1]) * np.uint64(0x9E3779B97F4A7C15))
    return _mix64(k + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15))


@numba.njit(cache=True)
def rand_u64(state, salt, n):
    """``n`` float64 samples in [0, 1) of the draw ``salt`` from ``state`` ([seed, stream])."""
    k = _rand_key(state, salt)
    out = np.empty(n, np.float64)
    for i in range(n):
        z = _mix64(k + np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15))
        out[i] = np.float64(z >> np.uint64(11)) * 1.1102230246251565e-16
    return out


@numba.njit(cache=True)
def rand_u32(state, salt, n):
    """``rand_u64`` in float32: the top 24 bits of each word."""
    k = _rand_key(state, salt)
    out = np.empty(n, np.float32)
    for i in range(n):
        z = _mix64(k + np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15))
        out[i] = np.float32(z >> np.uint64(40)) * np.float32(5.960464477539063e-08)
    return out


# -- batched matmul: one compiled loop for every kernel, instead of a slice assignment per call
# site (Numba types each ``out[i] = np.dot(...)`` anew, with its shape-mismatch error path:
# 0.4 s of compile each)
@numba.njit(cache=True)
def bmm(a, b, out):
    """``out[i] = a[i] @ b[i]`` for 3-D ``a``, ``b``, ``out`` (C-contiguous)."""
    for i in range(out.shape[0]):
        np.dot(a[i], b[i], out[i])
    return out


@numba.njit(cache=True)
def bmm_left(a, b, out):
    """``out[i] = a @ b[i]`` for 2-D ``a``."""
    for i in range(out.shape[0]):
        np.dot(a, b[i], out[i])
    return out
