"""Compiles off the caller's path: a build process fills Numba's disk cache while the
interpreter keeps serving calls, and the kernel swaps in when the build is done.

A thread cannot do this (Numba holds the GIL while it compiles), so a trace's kernel, or each
of its pieces (``numba_pieces``), is written to the disk cache and compiled for its signature by
``python -m jitgrad.backends.numba_build JOBFILE``. The caller's process then loads the kernel
from the cache, which takes a fraction of a second where the compile took tens of seconds. A
build that fails leaves the compile to the caller's process, which falls back to the
interpreter as a compile in place would. Builds still running when the process exits are
stopped: what they compiled so far stays cached for the next process.
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import tempfile

from jitgrad import _blas

_running: list = []  # the build processes this process started


class Build:
    """Build processes: ``done()`` once all ended (``ok`` says whether they compiled all)."""

    def __init__(self, procs: list) -> None:
        self.procs = procs
        self._counted = True  # in _blas's count of running builds until seen done
        _blas.building(+1)

    def done(self) -> bool:
        finished = all(p.poll() is not None for p in self.procs)
        if finished and self._counted:
            self._counted = False
            _blas.building(-1)
        return finished

    def wait(self) -> bool:
        for p in self.procs:
            p.wait()
        self.done()
        return self.ok

    @property
    def ok(self) -> bool:
        return all(p.returncode == 0 for p in self.procs)


def workers() -> int:
    """Build processes for one kernel's pieces: one per core, as many as BLAS threads at most
    (pieces compile independently)."""
    return _blas.cores()


def start(jobs: list, processes: int = 1) -> Build | None:
    """Start ``processes`` processes compiling ``jobs`` between them: (module path in the disk
    cache, its key, function name, argument types as (NumPy dtype name, dimensions) pairs)
    each. None where there is no disk cache to fill."""
    from jitgrad.backends import disk_cache
    from jitgrad.backends.aot import child_env
    d = disk_cache.cache_dir()
    if d is None or not jobs or any(job[0] is None for job in jobs):
        return None
    # The longest first, dealt out in turn: the processes finish at about the same time.
    todo = sorted(jobs, key=lambda t: -os.path.getsize(t[0]))
    shares = [todo[i::processes] for i in range(min(processes, len(todo)))]
    env = child_env()
    procs = []
    for share in shares:
        fd, job = tempfile.mkstemp(dir=d, prefix=".build-", suffix=".job")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(share, f)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "jitgrad.backends.numba_build", job],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=env))
        except OSError:  # a full disk, no fork: the caller compiles in place
            disk_cache._remove(job)
            for p in procs:
                p.kill()
            return None
    _running.extend(procs)
    return Build(procs)


@atexit.register
def stop_builds() -> None:
    """Stop the builds still running (tests, and the process's exit)."""
    for p in _running:
        if p.poll() is None:
            p.kill()
            p.wait()
    _running.clear()


def _main(jobfile: str) -> int:
    from jitgrad.backends import disk_cache
    from jitgrad.backends.aot import numba_type
    with open(jobfile, "rb") as f:
        todo = pickle.load(f)
    disk_cache._remove(jobfile)
    for path, k, fname, sig in todo:
        mod = disk_cache.load(path, k)
        getattr(mod, fname).compile(tuple(numba_type(d, n) for d, n in sig))
        disk_cache.record_numba_cache(path)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
