"""Compile every CUDA kernel the backend generates for tests/test_cuda.py's programs to PTX with
the real CUDA compiler (NVVM through numba-cuda), without a GPU: the simulator runs kernels as
Python and would accept code that the GPU compiler rejects. Prints "ok N" or "skip: why"."""

import os
import sys

import numba
import numpy as np
from numba import cuda

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jitgrad  # noqa: E402
import jitgrad.nn.functional as F  # noqa: E402
from jitgrad.backends import _cuda_runtime as rt  # noqa: E402
from jitgrad.backends import disk_cache  # noqa: E402
from jitgrad.backends.numba_cuda import CudaCodegen  # noqa: E402
from tests.test_cuda import PROGRAMS, doubling, rand  # noqa: E402

CC = (9, 0)


def arr(dt: str):
    return numba.types.Array(numba.from_dtype(np.dtype(dt)), 1, "C")


def main() -> None:
    try:
        cuda.compile_ptx(rt._fill.py_func, (arr("float64"), numba.float64), cc=CC)
    except Exception as e:  # no NVRTC / libNVVM here
        print(f"skip: the CUDA compiler is not usable here ({type(e).__name__})")
        return
    n = 1
    for dt in ("float64", "float32"):
        a = arr(dt)
        cuda.compile_ptx(rt._matmul.py_func, (a, a, a, numba.int64, numba.int64, numba.int64,
                                              numba.boolean, numba.boolean), cc=CC)
        n += 1
    cases = [(fn, rand(6, 5, dtype=dt), "value_and_grad") for fn in PROGRAMS.values()
             for dt in (np.float64, np.float32)]
    cases.append((doubling, jitgrad.tensor([0.3, -0.2, 0.05]), "value_and_grad"))
    cases.append((lambda x: (x > 0, x.argmax(), x.sum(0) * 2), rand(3, 4), "jit"))
    cases.append((lambda x: (x.floor(), jitgrad.sign(x), x.clamp(-1.0, 1.0), x // 2.0,
                             (x * 10).to(jitgrad.int64) // 3, x % 0.7,
                             (x * 10).to(jitgrad.int64) % 3), rand(3, 4), "jit"))
    t = jitgrad.tensor(np.array([0, 2, 1, 1, 0, 2]))
    cases.append((lambda x: F.cross_entropy(x, t), rand(6, 5), "value_and_grad"))
    for fn, x, mode in cases:
        graph = getattr(jitgrad, mode)(fn, target="reference").lower(x).optimized
        source = CudaCodegen(graph).generate()
        path, k = disk_cache.source_path(source)
        mod = disk_cache.load(path, k)
        for name, dts in mod.SIGNATURES.items():
            cuda.compile_ptx(getattr(mod, name).py_func, tuple(arr(d) for d in dts), cc=CC)
            n += 1
    print(f"ok {n}")


if __name__ == "__main__":
    main()
