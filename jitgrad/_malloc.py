"""Keep the memory a step frees for the next one: glibc's malloc set for a loop of big arrays.

glibc's malloc serves each block of 128 KiB or more with an ``mmap`` of its own and unmaps it
when it is freed (the threshold rises as such blocks come back, up to 32 MiB), and it gives the
top of its heap back to the system once more than twice that is free there. A model's training
step allocates and frees the same few hundred arrays of 0.1-10 MB on every call, so every call
faulted its whole working set in again, a page at a time, each page zeroed by the system.
Measured on the GPT step of ``benchmarks/models.py`` on a 2-core x86-64 machine (medians):

============  ===========  ==================
tier          as glibc is  with blocks kept
============  ===========  ==================
interpreter   43.2 ms      14.5 ms
eager         31.5 ms      26.1 ms
compiled      14.0 ms      11.1 ms
============  ===========  ==================

with the same peak memory (93, 57 and 88 MiB): the process keeps what a step's peak needs, as
PyTorch's and JAX's caching allocators do on a GPU. So when jitgrad is imported,
``M_MMAP_THRESHOLD`` becomes 32 MiB (smaller blocks come from the heap, and are reused) and
``M_TRIM_THRESHOLD`` 256 MiB (a free top of the heap up to that size is kept). This is the
whole process's malloc: NumPy arrays of the program's own, and torch's CPU tensors, allocate
through it too. Only with glibc (Linux); ``JITGRAD_MALLOC_TUNING=0`` leaves malloc as it is.

>>> from jitgrad import _malloc
>>> _malloc.tuned in (True, False)
True
"""

from __future__ import annotations

import ctypes
import os
import platform

MMAP_THRESHOLD = 32 << 20  # glibc's largest (its dynamic threshold's maximum on 64-bit)
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h

tuned = False  # whether tune() set the thresholds


def tune() -> bool:
    """Set glibc's thresholds as the module says, unless ``JITGRAD_MALLOC_TUNING=0`` or the C
    library is not glibc; whether they are set."""
    global tuned
    setting = os.environ.get("JITGRAD_MALLOC_TUNING", "1").strip().lower()
    if setting not in ("0", "1", "", "off", "on", "false", "true"):
        raise ValueError(f"JITGRAD_MALLOC_TUNING={setting!r}: expected 0 or 1")
    if setting in ("0", "off", "false") or platform.libc_ver()[0] != "glibc":
        return tuned
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return tuned
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; a value glibc refuses leaves its default in place
    tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return tuned
