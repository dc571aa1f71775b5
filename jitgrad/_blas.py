"""The threads of the BLAS libraries jitgrad's code calls: NumPy's OpenBLAS (eager ops and the
interpreter) and SciPy's (compiled kernels, through Numba's ``np.dot``).

A small model's matmuls (a 512x64 by 64x16 product) gain nothing from a second thread, and an
OpenBLAS thread that spins beside a busy core costs far more: on a 2-core machine with another
process running, a GPT step on the interpreter took 3.2 s instead of 40 ms, and compiled ones
3-10x longer. So both run ``config.blas_threads`` threads (one by default; ``None``, or
``JITGRAD_BLAS_THREADS=auto``, leaves OpenBLAS's own choice). Set once per process, when
jitgrad is imported; a BLAS other than these OpenBLAS builds is left alone.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_done: list = []
# (library folder beside the package, file pattern, setter): the OpenBLAS builds the NumPy and
# SciPy wheels bundle
_LIBS = (("numpy.libs", "libscipy_openblas64_*", "scipy_openblas_set_num_threads64_"),
         ("scipy.libs", "libscipy_openblas*", "scipy_openblas_set_num_threads"))


def set_threads(n: int | None) -> None:
    """Give the bundled OpenBLAS libraries ``n`` threads (once per value)."""
    if n is None or _done == [n]:
        return
    _done[:] = [n]
    site = os.path.dirname(os.path.dirname(np.__file__))
    for folder, pattern, setter in _LIBS:
        for lib in glob.glob(os.path.join(site, folder, pattern)):
            try:
                getattr(ctypes.CDLL(lib), setter)(ctypes.c_int(n))
            except (OSError, AttributeError):  # another build: its own threads
                pass
