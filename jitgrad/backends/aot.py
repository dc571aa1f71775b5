"""Kernels compiled ahead of time: a fresh process loads them without importing Numba.

Loading a kernel through Numba's own cache first imports and initializes Numba, 0.5-0.9 s before
the first cached call can run. So the serial kernels (those without ``prange``) a process
compiles are queued, and when it exits one background process at idle priority compiles them
again with Numba's ahead-of-time compiler (``numba.pycc``; a few seconds each) into standalone
extension modules in the disk cache, for this CPU. (Builds beside a running benchmark, at nice
10, made its 2-thread MLP step 40x slower; an idle-priority CPU burner beside it changed nothing
measurable.) A later process that needs such a kernel imports its module (about a millisecond)
and never imports Numba. The module is keyed by the kernel's source, the helpers it inlines, the
jitgrad and NumPy versions and the CPU (Python's ABI is in the file name); it does not depend on
Numba at run time, so Numba's version is not part of the key.

Builds need a C compiler and setuptools; where a build fails, a marker file stops later
processes from trying again and kernels keep loading through Numba's cache. Files appear with
``os.replace``, the module's SHA-256 last: a module loads only when it matches (loading a damaged
shared library can crash the process), and one that does not is deleted and built again. A
process queues at most ``MAX_BUILDS`` kernels; ``wait()`` builds the queue at once (tests,
benchmarks). ``JITGRAD_AOT=0`` (or ``jitgrad.config.aot = False``) turns both the builds and
the loading off.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.machinery
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

import jitgrad

_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # the ABI tag, e.g. .cpython-311-x86_64...
_LOCK_STALE = 600.0  # seconds after which a build's lock is taken to be left by a dead build
_cpu: str | None = None
_queue: list = []  # (source path, key, signature, module path) to build
MAX_BUILDS = 16  # per process: a long run with many re-traces does not build without end
_requested = 0
_mutex = threading.Lock()


def enabled() -> bool:
    from jitgrad.runtime import config
    return config.aot and os.environ.get("JITGRAD_AOT", "1") != "0"


def cpu_tag() -> str:
    """Names this CPU's model and instruction sets (an AOT module uses them all)."""
    global _cpu
    if _cpu is None:
        h = hashlib.sha256()
        try:  # Linux: cheap, and llvmlite (~40 ms to import) is not needed
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith(("model name", "flags", "Features", "CPU part")):
                        h.update(line.encode())
                    elif not line.strip():
                        break  # the first processor describes them all
        except OSError:
            import llvmlite.binding as ll
            h.update(ll.get_host_cpu_name().encode())
            h.update(ll.get_host_cpu_features().flatten().encode())
        _cpu = h.hexdigest()[:12]
    return _cpu


def key(source: str) -> str:
    from jitgrad.backends.disk_cache import _helpers
    h = hashlib.sha256()
    for part in (jitgrad.__version__, np.__version__, _helpers(), cpu_tag(), source):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def module_path(k: str) -> str:
    from jitgrad.backends.disk_cache import cache_dir
    return os.path.join(cache_dir(), f"jg_aot_{k}{_SUFFIX}")


def load(k: str):
    """The AOT-compiled ``kernel`` for key ``k``, or None where there is none (or it does not
    load: it is deleted, and built again)."""
    path = module_path(k)
    name = f"jg_aot_{k}"
    mod = sys.modules.get(name)
    if mod is None:
        # Loading a damaged shared library can crash the process (a truncated one raises
        # SIGBUS), so the module loads only when its digest, written after it, matches.
        try:
            with open(path + ".sha256", encoding="ascii") as f:
                want = f.read().strip()
            with open(path, "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            return None  # not built (or being built)
        if got != want:
            _remove(path)
            _remove(path + ".sha256")
            return None
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        except Exception:  # noqa: BLE001  (it does not load here: build it again)
            _remove(path)
            _remove(path + ".sha256")
            return None
        sys.modules[name] = mod
        from jitgrad.runtime import _log
        _log("compile", f"loaded the ahead-of-time kernel {path}")
    return getattr(mod, "kernel", None)


def request(source_path: str, k: str, signature) -> None:
    """Queue the AOT build of the kernel in ``source_path`` for Numba ``signature``, unless its
    module exists or failed to build before. Builds start when this process exits (or at
    ``wait()``): while it runs, they would take CPU from it."""
    global _requested
    path = module_path(k)
    if os.path.exists(path + ".sha256") or os.path.exists(path + ".failed"):
        return
    with _mutex:
        if any(q[1] == k for q in _queue) or _requested >= MAX_BUILDS:
            return
        _requested += 1
        _queue.append((source_path, k, _plain(signature), path))
    from jitgrad.runtime import _log
    _log("compile", f"queued an ahead-of-time build, to run at exit: {path}")


def start():
    """Start one background process that builds the queued kernels, one after the other, at
    idle priority, and outlives this process; return it (None when nothing is queued)."""
    with _mutex:
        if not _queue:
            return None
        jobs = list(_queue)
        _queue.clear()
    from jitgrad.backends.disk_cache import cache_dir
    fd, job = tempfile.mkstemp(dir=cache_dir(), prefix=".aot-", suffix=".job")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(jobs, f)
    root = os.path.dirname(os.path.dirname(jitgrad.__file__))  # the child imports this jitgrad
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=os.pathsep.join(
        [root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.Popen([sys.executable, "-m", "jitgrad.backends.aot", job],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env)


@atexit.register
def _at_exit() -> None:
    try:
        p = start()
    except OSError:  # an unwritable cache, no fork: the kernels load through Numba's cache
        return
    if p is not None:
        p.returncode = 0  # it outlives us on purpose (init reaps it): not a leak to warn of


def wait(timeout: float = 300.0) -> bool:
    """Start the queued builds now and wait for them; True if they ended in time."""
    p = start()
    if p is None:
        return True
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.returncode = 0
        return False
    return True


def _plain(t):
    """``t`` with literal types widened (a kernel that only returns -1 types it as Literal)."""
    from numba.core import types
    from numba.core.typing.templates import Signature
    if isinstance(t, Signature):
        return Signature(_plain(t.return_type), tuple(_plain(a) for a in t.args), None)
    if isinstance(t, types.UniTuple):
        return types.UniTuple(_plain(t.dtype), t.count)
    if isinstance(t, types.BaseTuple):
        return types.Tuple([_plain(x) for x in t.types])
    return types.unliteral(t)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _idle() -> None:
    """Run at idle priority: only on CPU time nobody else wants."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except (AttributeError, OSError):
            pass


def _build_all(jobfile: str) -> None:
    """In the build process: build each job's kernel into its module file."""
    import warnings

    warnings.simplefilter("ignore")
    _idle()
    try:
        with open(jobfile, "rb") as f:
            jobs = pickle.load(f)
    finally:
        _remove(jobfile)
    for source_path, k, sig, path in jobs:
        lock = path + ".lock"
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                if time.time() - os.path.getmtime(lock) < _LOCK_STALE:
                    continue  # another process builds it
                _remove(lock)
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except OSError:
                continue
        os.close(fd)
        try:
            if not os.path.exists(path + ".sha256"):
                _build(source_path, k, sig, path)
        except Exception:  # noqa: BLE001  (recorded in the marker; go on with the next)
            import traceback
            with open(path + ".failed", "w", encoding="utf-8") as f:
                f.write(traceback.format_exc())
        finally:
            _remove(lock)


def _build(source_path: str, k: str, sig, path: str) -> None:
    import glob
    import shutil

    import llvmlite.binding as ll
    from numba.core import compiler as core_compiler
    from numba.pycc import CC
    from numba.pycc import compiler as pycc_compiler

    class _Flags(core_compiler.Flags):
        # The kernels are written for NumPy's error model (x / 0 is inf, not an exception),
        # as their @njit(error_model='numpy') says; pycc's default is Python's.
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.error_model = "numpy"

    pycc_compiler.Flags = _Flags
    from jitgrad.backends import disk_cache
    mod = disk_cache.load(source_path, f"aot_{k}")
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=".aot-")
    try:
        cc = CC(f"jg_aot_{k}")
        cc.output_dir = tmp
        cc.target_cpu = ll.get_host_cpu_name()
        cc.verbose = False
        cc.export("kernel", sig)(mod.kernel.py_func)
        cc.compile()
        built = glob.glob(os.path.join(tmp, f"jg_aot_{k}*"))
        if len(built) != 1:
            raise RuntimeError(f"the build left {built}")
        with open(built[0], "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        os.replace(built[0], path)
        with open(os.path.join(tmp, "digest"), "w", encoding="ascii") as f:
            f.write(digest)
        os.replace(os.path.join(tmp, "digest"), path + ".sha256")  # last: the module is whole
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    _build_all(sys.argv[1])
