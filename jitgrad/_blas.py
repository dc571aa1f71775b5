"""The threads of the BLAS libraries jitgrad's code calls: NumPy's OpenBLAS (eager ops and the
interpreter) and SciPy's (compiled kernels, through Numba's ``np.dot``).

A model's larger products (a 512x64 by 64x256 one) run about twice as fast on two threads, as
torch's do; but an OpenBLAS thread that spins beside a busy core costs far more than it gains:
on a 2-core machine with a build process running, a GPT step on the interpreter took 3.2 s
instead of 40 ms, and compiled ones 3-10x longer (and a GPT step 3.6x longer beside two busy
processes). So by default (``config.blas_threads = "adaptive"``) both use a thread per core (up
to 4) only while the rest of the machine is idle: ``tick()``, called where matmuls run, looks at
most four times a second at how busy the cores were apart from this process (Linux's
``/proc/stat`` against the process's own CPU time), and switches to one thread when other work
took more than a third of a core (niced processes included), or while this process has a
build process compiling (``numba_build``). Without ``/proc/stat``, one thread. A number fixes
the count; ``None`` (or ``JITGRAD_BLAS_THREADS=auto``) leaves OpenBLAS's own choice. A BLAS
other than these OpenBLAS builds is left alone.
"""

from __future__ import annotations

import ctypes
import glob
import os
import time

import numpy as np

ADAPTIVE = "adaptive"
_done: list = []
_building = [0]  # build processes of this process still running
_PERIOD = 0.25  # seconds between looks at the machine
_OTHERS = 0.34  # cores busy with other work past which the threads spin against it
try:
    _HZ = float(os.sysconf("SC_CLK_TCK"))
except (AttributeError, ValueError, OSError):
    _HZ = 100.0
_state: dict = {"next": 0.0, "last": None, "idle": False, "on": False}
# (library folder beside the package, file pattern, setter): the OpenBLAS builds the NumPy and
# SciPy wheels bundle
_LIBS = (("numpy.libs", "libscipy_openblas64_*", "scipy_openblas_set_num_threads64_"),
         ("scipy.libs", "libscipy_openblas*", "scipy_openblas_set_num_threads"))


def cores() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def apply(setting) -> None:
    """Set the threads as ``setting`` (``config.blas_threads``) says, now."""
    _state["on"] = setting == ADAPTIVE and cores() > 1
    if setting == ADAPTIVE:
        set_threads(cores() if _state["idle"] and not _building[0] else 1)
    else:
        set_threads(setting)


def _sample():
    """(seconds the machine's cores were busy, seconds this process ran), or None."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    # user nice system irq softirq steal: niced work counts too (this process may be the
    # niced one, and its own time, which is subtracted, is then in that column)
    busy = sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7) if i < len(fields))
    t = os.times()
    return busy / _HZ, t.user + t.system


def tick() -> None:
    """Where matmuls are about to run: every ``_PERIOD`` at most, look whether the other
    processes left the cores idle, and set the adaptive thread count to match."""
    if not _state["on"]:
        return
    now = time.monotonic()
    if now < _state["next"]:
        return
    _state["next"] = now + _PERIOD
    from jitgrad._settings import config
    if config.blas_threads != ADAPTIVE:  # set to a count (or None) since: that from now on
        apply(config.blas_threads)
        return
    s = _sample()
    if s is None:
        _state["on"] = False
        return
    last, _state["last"] = _state["last"], (now, *s)
    if last is None:
        return
    dt = now - last[0]
    others = ((s[0] - last[1]) - (s[1] - last[2])) / dt if dt > 0 else 1.0
    idle = others < _OTHERS
    if idle != _state["idle"]:
        _state["idle"] = idle
        apply(ADAPTIVE)


def building(delta: int) -> None:
    """A build process of this process started (+1) or ended (-1): adaptive threads follow."""
    from jitgrad._settings import config
    _building[0] = max(0, _building[0] + delta)
    if config.blas_threads == ADAPTIVE:
        apply(ADAPTIVE)


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
