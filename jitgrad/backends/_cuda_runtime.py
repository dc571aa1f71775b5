"""What generated CUDA drivers call: launch sizes, block reductions, fills, the tiled matmul,
device transfers, and host evaluation of the few equations that have no CUDA kernel.

Every device value is a flat, C-ordered device array (a 0-d value has one element); the code
generator tracks logical shapes, so reshapes cost nothing and kernels index with flat offsets.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from jitgrad.backends.device_array import to_device  # noqa: F401  (rt.to_device)
from jitgrad.ops.memory_format import dense

SIM = bool(numba.config.ENABLE_CUDASIM)
# The simulator runs every thread as a Python thread: small blocks and grids keep it usable.
# Grid-stride loops make any grid size correct.
THREADS = 8 if SIM else 256
MAX_BLOCKS = 2 if SIM else 4096
TILE = 4 if SIM else 16  # matmul tile edge (threads per block: TILE * TILE)


if SIM:  # threads run as Python: NumPy's floor
    floor = np.floor
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True, inline=True)
    def floor(x):
        """A float's floor as a float (math.floor converts to int64, which wrecks inf, NaN and
        huge values; numba-cuda has no np.floor). float32 goes through float64 exactly."""
        return libdevice.floor(x)


def blocks(n: int) -> int:
    return max(1, min(MAX_BLOCKS, -(-n // THREADS)))


@cuda.jit
def _fill(a, value):
    i = cuda.grid(1)
    while i < a.size:
        a[i] = value
        i += cuda.gridsize(1)


def full(n: int, value, dtype) -> object:
    a = cuda.device_array(n, dtype=dtype)
    _fill[blocks(n), THREADS](a, dtype(value))
    return a


def scratch(pool: dict, key: str, n: int, dtype, fill=None) -> object:
    """The executable's reusable buffer ``key`` (allocated on first use), ``fill``ed if given.
    Work is ordered on one stream, so a call's kernels never overtake the previous call's."""
    a = pool.get(key)
    if a is None:
        a = pool[key] = cuda.device_array(n, dtype=dtype)
    if fill is not None:
        _fill[blocks(n), THREADS](a, dtype(fill))
    return a


def status() -> object:
    """[failed guard index or -1, the value it saw]."""
    return cuda.to_device(np.array([-1.0, 0.0]))


@cuda.jit
def _matmul(a, b, c, m, k, n, ta, tb):
    """C[m, n] = A[m, k] @ B[k, n] over flat arrays, one TILE x TILE output tile per block; A is
    stored transposed ([k, m]) when ``ta``, B ([n, k]) when ``tb``."""
    sa = cuda.shared.array((TILE, TILE), numba.float64)
    sb = cuda.shared.array((TILE, TILE), numba.float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    acc = 0.0
    for t0 in range(0, k, TILE):
        ka, kb = t0 + tx, t0 + ty
        if row < m and ka < k:
            sa[ty, tx] = a[ka * m + row] if ta else a[row * k + ka]
        else:
            sa[ty, tx] = 0.0
        if kb < k and col < n:
            sb[ty, tx] = b[col * k + kb] if tb else b[kb * n + col]
        else:
            sb[ty, tx] = 0.0
        cuda.syncthreads()
        for j in range(TILE):
            acc += sa[ty, j] * sb[j, tx]
        cuda.syncthreads()
    if row < m and col < n:
        c[row * n + col] = acc


def matmul(a, b, m: int, k: int, n: int, c, ta: bool = False, tb: bool = False):
    """The flat [m, n] product of flat operands, written into ``c`` (cuBLAS through CuPy when
    it is installed)."""
    cp = _cupy()
    if cp is not None:
        x = cp.asarray(a).reshape((k, m) if ta else (m, k))
        y = cp.asarray(b).reshape((n, k) if tb else (k, n))
        cp.matmul(x.T if ta else x, y.T if tb else y, out=cp.asarray(c).reshape(m, n))
        return c
    grid = (-(-n // TILE), -(-m // TILE))
    _matmul[grid, (TILE, TILE)](a, b, c, m, k, n, ta, tb)
    return c


_CUPY: list = []


def _cupy():
    if not _CUPY:
        try:
            import cupy
            _CUPY.append(None if SIM else cupy)
        except Exception:  # absent, or no usable CUDA runtime for it
            _CUPY.append(None)
    return _CUPY[0]


def host_eqn(e, inputs: list) -> object:
    """Run one equation with its NumPy body: ``inputs`` are (flat device array or Python value,
    root shape, logical shape) triples; the result comes back as a flat device array."""
    vals = []
    for v, root_shape, shape in inputs:
        if hasattr(v, "copy_to_host"):
            arr = v.copy_to_host().reshape(root_shape)
            arr = np.broadcast_to(arr, shape) if tuple(root_shape) != tuple(shape) else arr
        else:
            arr = np.broadcast_to(np.asarray(v), shape)
        vals.append(dense(arr))  # (0-d stays 0-d)
    out = np.asarray(e.prim.impl(*vals, **e.params))
    return cuda.to_device(np.ascontiguousarray(out, dtype=e.out.aval.dtype.np).reshape(-1))
