"""Kernels compiled ahead of time: a fresh process loads them without importing Numba.

Loading a kernel through Numba's own cache first imports and initializes Numba, 0.5-0.9 s before
the first cached call can run. So the serial kernels (those without ``prange``) a process
compiles are queued, and when it exits one background process compiles them again with Numba's
ahead-of-time compiler (``numba.pycc``) into standalone extension modules in the disk cache, for
this CPU. A later process that needs such a kernel imports its module (about a millisecond) and
never imports Numba. The module is keyed by the kernel's source and argument types, the helpers
it inlines, the jitgrad and NumPy versions and the CPU (Python's ABI is in the file name); it
does not depend on Numba at run time, so Numba's version is not part of the key.

The builder keeps out of the way: it runs at idle priority, and before each kernel it waits
until other processes leave a core free (idle priority alone did not do: beside two builds, a
2-thread BLAS GEMM ran 4-9x slower). One builder at most runs per cache folder: it holds a lock
there, and a process that exits while it runs writes its jobs to the folder's queue
(``.aot-queue/``) for it rather than start another (a test run used to leave a queue of
builders, each taking a core). It stops after ``config.aot_budget`` seconds (the wait for a free
core included), leaving the remaining jobs queued for the next builder: a short run must not
leave minutes of compiling behind. The C runtime every module links (Numba's helperlib and NRT,
about 5 s of C compiling) is compiled once into the cache; each kernel then takes 1-2 s.

Builds need a C compiler and setuptools; where a build fails, a marker file stops later
processes from trying again and kernels keep loading through Numba's cache. Files appear with
``os.replace``, the module's SHA-256 last: a module loads only when it matches (loading a damaged
shared library can crash the process), and one that does not is deleted and built again. A
process queues at most ``MAX_BUILDS`` kernels; ``wait()`` builds the queue at once (tests,
benchmarks). ``JITGRAD_AOT_BUILDS=0`` (or ``jitgrad.config.aot_builds = False``) turns the
background builds off and still loads the modules built before; ``JITGRAD_AOT=0`` (or
``jitgrad.config.aot = False``) turns both the builds and the loading off.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.machinery
import importlib.util
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from jitgrad._version import __version__
from jitgrad.backends.disk_cache import _remove

try:
    import fcntl
except ImportError:  # Windows: a lock file made with O_EXCL stands in (_BuilderLock)
    fcntl = None

_CNAME = "jg_aot"  # the extension modules' C-level name
_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # the ABI tag, e.g. .cpython-311-x86_64...
_LOCK_STALE = 600.0  # without fcntl: seconds after which the lock is taken to be a dead builder's
_QUEUE = ".aot-queue"  # the cache folder's jobs waiting for a builder, one file per process
_LOCK = ".aot-builder.lock"  # held by the cache folder's one builder
_cpu: str | None = None
_queue: list = []  # (source path, key, signature, module path) to build
MAX_BUILDS = 16  # per process: a long run with many re-traces does not build without end
_requested = 0
_mutex = threading.Lock()
# The builder processes this process started: tests stop those still running (stop_builders).
started: list = []


def enabled() -> bool:
    from jitgrad._settings import config
    return config.aot and os.environ.get("JITGRAD_AOT", "1") != "0"


def builds_enabled() -> bool:
    """Whether a builder starts in the background at exit (``wait()`` builds either way)."""
    from jitgrad._settings import config
    return enabled() and config.aot_builds


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
    from jitgrad.backends.disk_cache import _helpers, digest
    return digest(__version__, np.__version__, _helpers(), cpu_tag(), source)


def module_path(k: str) -> str | None:
    """Where the module for key ``k`` lives; None without a usable disk cache."""
    from jitgrad.backends.disk_cache import cache_dir
    d = cache_dir()
    return None if d is None else os.path.join(d, f"jg_aot_{k}{_SUFFIX}")


def module_digest(k: str, data: bytes) -> str:
    """The digest a module's ``.sha256`` file holds: of its key and its bytes, so a module
    (with its digest) moved to another key's name does not load there."""
    return hashlib.sha256(k.encode() + b"\0" + data).hexdigest()


def built(k: str) -> bool:
    """Whether the module for key ``k`` was built (its digest, written last, is there)."""
    path = module_path(k)
    return path is not None and os.path.exists(path + ".sha256")


def load(k: str):
    """The AOT-compiled ``kernel`` for key ``k``, or None where there is none (or it does not
    load: it is deleted, and built again)."""
    path = module_path(k)
    if path is None:
        return None
    # Every module's C name is "jg_aot" (so one compiled runtime serves all builds); the
    # spec's last component picks PyInit_jg_aot, the rest keeps the modules apart.
    name = f"jitgrad_aot_{k}.{_CNAME}"
    mod = sys.modules.get(name)
    if mod is None:
        # Loading a damaged shared library can crash the process (a truncated one raises
        # SIGBUS), so the module loads only when its digest, written after it, matches.
        try:
            with open(path + ".sha256", encoding="ascii") as f:
                want = f.read().strip()
            with open(path, "rb") as f:
                got = module_digest(k, f.read())
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
        from jitgrad._settings import log as _log
        _log("compile", f"loaded the ahead-of-time kernel {path}")
    return getattr(mod, "kernel", None)


def request(source_path: str, k: str, signature, counted: bool = True) -> bool:
    """Queue the AOT build of the kernel in ``source_path`` for Numba ``signature``, unless its
    module exists or failed to build before. Builds start when this process exits (or at
    ``wait()``): while it runs, they would take CPU from it. ``counted=False``: a further
    piece of a kernel already counted towards ``MAX_BUILDS`` (its pieces build together).
    Whether it queued the build."""
    return _enqueue(k, lambda path: (source_path, k, _plain(signature), path), "", counted)


def request_source(source: str, k: str, arg_types: list, counted: bool = True) -> bool:
    """``request`` for the kernel ``source`` (one the interpreter ran in place of a compile)
    and arguments of ``arg_types``, (NumPy dtype name, number of dimensions) each: the build
    process writes it to the disk cache and compiles it with Numba for its signature."""
    return _enqueue(k, lambda path: (None, k, (source, list(arg_types)), path),
                    " of an interpreted trace", counted)


def _enqueue(k: str, job, what: str, counted: bool = True) -> bool:
    """Queue ``job(module path)`` unless the module for ``k`` exists, failed to build before,
    is queued, or this process queued ``MAX_BUILDS`` (``counted`` ones); whether it did."""
    global _requested
    path = module_path(k)
    if path is None or os.path.exists(path + ".sha256") or os.path.exists(path + ".failed"):
        return False
    with _mutex:
        if any(q[1] == k for q in _queue) or (counted and _requested >= MAX_BUILDS):
            return False
        _requested += counted
        _queue.append(job(path))
    from jitgrad._settings import log as _log
    _log("compile", f"queued an ahead-of-time build{what}, to run at exit: {path}")
    return True


# Called at exit before the builds start, to queue more (kernels that never compiled here).
before_exit: list = []


def start(wait_for_free_core: bool = True):
    """Start the background process that builds the queued kernels, one after the other, at
    idle priority, and outlives this process; return it. None when there is nothing to build,
    or when a builder already runs for the cache folder: this process's jobs then join the
    folder's queue, which that builder takes before it ends. ``wait_for_free_core=False``
    (``wait()``): a builder for this process's jobs alone, that builds as soon as the folder's
    builder (if any) is done, busy machine or not, and within no budget."""
    from jitgrad._settings import config
    with _mutex:
        jobs = list(_queue)
        _queue.clear()
    from jitgrad.backends.disk_cache import cache_dir
    if not jobs and not _queue_left():
        return None
    d = cache_dir()
    if d is None:
        return None
    if not wait_for_free_core:
        if not jobs:
            return None
        # a name the background builders pass over: this file is the waiting builder's alone
        return _spawn(d, _write_jobs(d, jobs, f".now-{time.time_ns():020d}-{os.getpid()}.job"))
    if jobs:
        _write_jobs(d, jobs)  # before looking at the lock: see _build_queue's last look
    if not config.aot_budget > 0:
        return None  # it could build nothing: the jobs wait in the queue
    lock = _BuilderLock(d)
    if not lock.acquire():
        return None  # the folder's builder takes the jobs from the queue
    lock.release()
    return _spawn(d)


def _queue_left() -> bool:
    """Whether the cache folder this process used has jobs queued (a builder left them past
    its budget, or the machine stayed busy): then exiting starts a builder for them. Only a
    folder already in use is looked at: exit never makes one, nor warns about one."""
    from jitgrad.backends import disk_cache
    d = disk_cache._state.get(disk_cache.configured_dir())
    return d is not None and bool(_queued(d))


def child_env(**extra: str) -> dict:
    """The environment of a build process: this one's, importing this jitgrad, quiet."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return dict(os.environ, PYTHONWARNINGS="ignore", **extra, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


def _spawn(folder: str, job: str | None = None):
    from jitgrad._settings import config
    # JITGRAD_AOT_BUILDS=0: a builder never starts another at its exit (it imports this
    # module again, and jobs it left past its budget would start one with a fresh budget).
    env = child_env(JITGRAD_CACHE_DIR=folder, JITGRAD_AOT_BUILDS="0",
                    JITGRAD_AOT_BUDGET=repr(float(config.aot_budget)))
    argv = [sys.executable, "-m", "jitgrad.backends.aot", folder] + ([job] if job else [])
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    except OSError:
        if job is not None:
            _requeue(job)
        raise
    p.job = job
    started.append(p)
    from jitgrad._settings import log as _log
    _log("compile", f"started the ahead-of-time builder {p.pid} for {folder}")
    return p


@atexit.register
def _at_exit() -> None:
    if not builds_enabled():
        return  # the jobs are dropped: the kernels keep loading through Numba's cache
    for queue_more in before_exit:
        queue_more()
    try:
        p = start()
    except OSError:  # an unwritable cache, no fork: the kernels load through Numba's cache
        return
    if p is not None:
        p.returncode = 0  # it outlives us on purpose (init reaps it): not a leak to warn of


def wait(timeout: float = 300.0) -> bool:
    """Build the queued kernels now, busy machine or not, and wait; True if done in time.
    Past ``timeout`` the build is stopped (never left running) and its kernels are queued for
    a background builder."""
    for queue_more in before_exit:
        queue_more()
    p = start(wait_for_free_core=False)
    if p is None:
        return True
    try:
        p.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        _kill(p)
        return False
    finally:
        _requeue(p.job)  # what it did not build (killed, or it died)


def stop_builders() -> list:
    """Kill the builders this process started that still run, with the compilers they run,
    and return them: a test must not leave one behind."""
    running = [p for p in started if p.poll() is None]
    for p in running:
        _kill(p)
    return running


def _kill(p) -> None:
    try:  # the builder leads a session of its own: its C compiler goes too
        os.killpg(p.pid, signal.SIGKILL)
    except (AttributeError, OSError):
        p.kill()
    p.wait()


class _BuilderLock:
    """The one-builder-per-folder lock: ``flock`` on a file in the cache folder, held while
    its descriptor is open, so a builder that dies (killed, crashed) releases it at once.
    Without fcntl (or where the file system refuses flock) a file made with O_EXCL stands in;
    a builder refreshes it before each kernel, and one untouched for ``_LOCK_STALE`` seconds
    is taken to be a dead builder's."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, _LOCK)
        self._fd: int | None = None
        self._flock = fcntl is not None

    def acquire(self, block: bool = False) -> bool:
        if self._flock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
                self._fd = fd
                return True
            except BlockingIOError:
                os.close(fd)
                return False  # held
            except OSError:  # no flock on this file system
                os.close(fd)
                self._flock = False
        self.path = self.path.removesuffix(".lock") + ".pid"  # not the flock's file: it stays
        while True:
            try:
                self._fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                return True
            except FileExistsError:
                try:
                    if time.time() - os.path.getmtime(self.path) > _LOCK_STALE:
                        _remove(self.path)
                        continue
                except OSError:
                    continue  # released meanwhile
            if not block:
                return False
            time.sleep(0.5)

    def touch(self) -> None:
        if not self._flock and self._fd is not None:
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        if not self._flock:
            _remove(self.path)


def _write_jobs(folder: str, jobs: list, name: str | None = None) -> str:
    """Write ``jobs`` to a new file in the folder's queue and return its path. It appears
    whole (a temporary file, then ``os.replace``): a builder may list the queue at any time.
    Names start with the time, so the builder takes the oldest first."""
    q = os.path.join(folder, _QUEUE)
    os.makedirs(q, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=q, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(jobs, f)
        path = os.path.join(q, name or f"{time.time_ns():020d}-{os.getpid()}.job")
        os.replace(tmp, path)
    except BaseException:  # a full disk: no builds; the kernels load through Numba's cache
        _remove(tmp)
        raise
    return path


def _queued(folder: str) -> list:
    """The job files waiting in the folder's queue, oldest first."""
    q = os.path.join(folder, _QUEUE)
    try:
        names = os.listdir(q)
    except OSError:
        return []
    return [os.path.join(q, n) for n in sorted(names)
            if n.endswith(".job") and not n.startswith(".")]


def _requeue(job: str | None) -> None:
    """Give a waiting builder's job file, if still there, to the background builders."""
    if job is not None and os.path.exists(job):
        try:
            os.replace(job, os.path.join(os.path.dirname(job),
                                         os.path.basename(job).removeprefix(".now-")))
        except OSError:
            _remove(job)


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


def _idle() -> None:
    """Run at idle priority: only on CPU time nobody else wants."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except (AttributeError, OSError):
            pass


def _cpu_times():
    """(busy, total) CPU time of the whole machine so far, or None where unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: time the hypervisor stole is not
    # this machine's processes at work, so it counts as neither
    busy = sum(fields[:3]) + sum(fields[5:7])
    return busy, busy + sum(fields[3:5])


def _quiet_cpu(limit: float = 600.0) -> bool:
    """Wait until other processes leave a core free, up to ``limit`` seconds. Idle priority
    alone is not enough: BLAS threads that spin and yield hand their core to an idle-priority
    build for a whole time slice (a 2-thread GEMM ran 4-9x slower beside two builds)."""
    cores = os.cpu_count() or 1
    end = time.time() + limit
    while True:
        a = _cpu_times()
        time.sleep(0.5)
        b = _cpu_times()
        if a is None or b is None or b[1] == a[1]:
            return True
        if (b[0] - a[0]) / (b[1] - a[1]) * cores <= cores - 0.75:
            return True
        if time.time() > end:
            return False
        time.sleep(2.0)


def _build_queue(folder: str) -> None:
    """In the background builder: build the folder's queued jobs, oldest first, within
    ``config.aot_budget`` seconds; return at once where another builder holds the folder."""
    from jitgrad._settings import config
    deadline = time.monotonic() + config.aot_budget
    compiler: list = [None]  # Numba and pycc, set up once for all the jobs
    lock = _BuilderLock(folder)
    done: set = set()  # job files taken (one that cannot be removed is not taken again)

    def waiting() -> list:
        return [f for f in _queued(folder) if f not in done]
    while time.monotonic() < deadline:
        if not lock.acquire():
            return  # another builder runs: the queue is its
        try:
            while files := waiting():  # until the queue is empty, looked at under the lock
                for path in files:
                    if not _build_jobs(_read_jobs(path), lock, compiler, deadline):
                        return  # out of time: the rest waits in the queue for the next
                    _remove(path)
                    done.add(path)
        finally:
            lock.release()
        # A process that exited between the last look and the release found the lock held,
        # so it queued its jobs and started no builder: look once more, with the lock free.
        if not waiting():
            return


def _build_now(folder: str, jobfile: str) -> None:
    """In the builder ``wait()`` starts: build the jobs in ``jobfile`` once the folder's
    builder, if one runs, is done (never two at once), busy machine or not."""
    lock = _BuilderLock(folder)
    lock.acquire(block=True)
    try:
        _build_jobs(_read_jobs(jobfile), lock, [None], None)
        _remove(jobfile)
    finally:
        lock.release()


def _read_jobs(path: str) -> list:
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # noqa: BLE001  (unreadable, or from another Numba: those are dropped)
        _remove(path)
        return []


def _build_jobs(jobs: list, lock: _BuilderLock, compiler: list, deadline: float | None) -> bool:
    """Build each job's kernel into its module file; False where time ran out first (a
    ``deadline``: the background builder, which also waits for a free core before each)."""
    for source_path, k, sig, path in jobs:
        if os.path.exists(path + ".sha256") or os.path.exists(path + ".failed"):
            continue
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not _quiet_cpu(left):
                return False
        lock.touch()
        try:
            if compiler[0] is None:
                compiler[0] = _compiler_class()
            _build(compiler[0], source_path, k, sig, path)
        except Exception:  # noqa: BLE001  (recorded in the marker; go on with the next)
            import traceback
            try:
                with open(path + ".failed", "w", encoding="utf-8") as f:
                    f.write(traceback.format_exc())
            except OSError:  # a full disk: the marker is lost, the build is tried again later
                _remove(path + ".failed")
    return True


def _build(compiler, source_path: str, k: str, sig, path: str) -> None:
    import glob
    import shutil

    import llvmlite.binding as ll

    from jitgrad.backends import disk_cache
    if source_path is None:  # a kernel this build compiles first, for its signature
        source, arg_types = sig
        source_path, sig = _compiled_signature(source, arg_types)
    mod = disk_cache.load(source_path, f"aot_{k}")
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=".aot-")
    try:
        cc = compiler(_CNAME)
        cc.output_dir = tmp
        cc.output_file = os.path.basename(path)
        cc.target_cpu = ll.get_host_cpu_name()
        cc.verbose = False
        cc.export("kernel", sig)(entry(mod).py_func)
        cc.compile()
        built = glob.glob(os.path.join(tmp, os.path.basename(path)))
        if len(built) != 1:
            raise RuntimeError(f"the build left {os.listdir(tmp)}")
        with open(built[0], "rb") as f:
            digest = module_digest(k, f.read())
        os.replace(built[0], path)
        with open(os.path.join(tmp, "digest"), "w", encoding="ascii") as f:
            f.write(digest)
        os.replace(os.path.join(tmp, "digest"), path + ".sha256")  # last: the module is whole
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def entry(mod):
    """The compiled function of a module in the disk cache: a whole kernel's ``kernel``, or a
    piece's ``unit`` (``numba_pieces``). Its AOT module exports it as ``kernel`` either way."""
    return mod.kernel if hasattr(mod, "kernel") else mod.unit


def numba_type(dtype: str, ndim: int):
    """Numba's type of a kernel argument: a C-contiguous array of NumPy ``dtype`` with ``ndim``
    dimensions, or a scalar for none."""
    import numba
    scalar = numba.boolean if dtype == "bool" else getattr(numba, dtype)
    return numba.types.Array(scalar, ndim, "C") if ndim else scalar


def _compiled_signature(source: str, arg_types: list):
    """The disk cache's file of kernel ``source``, compiled with Numba for ``arg_types``, and
    the signature it compiled to."""
    from jitgrad.backends import disk_cache
    path, k = disk_cache.source_path(source)
    if path is None:
        raise RuntimeError("the disk cache cannot be written")
    args = tuple(numba_type(dtype, ndim) for dtype, ndim in arg_types)
    kernel = entry(disk_cache.load(path, k, source))
    kernel.compile(args)
    return path, _plain(next(s for s in kernel.nopython_signatures if s.args == args))


def _numpy_errors_flags():
    from numba.core import compiler as core_compiler

    class _Flags(core_compiler.Flags):
        # The kernels are written for NumPy's error model (x / 0 is inf, not an exception),
        # as their @njit(error_model='numpy') says; pycc's default is Python's.
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.error_model = "numpy"
    return _Flags


def _compiler_class():
    """numba.pycc's CC with its C runtime (helperlib, NRT: about 5 s of C compiling) compiled
    once into the cache and linked into every module, rather than compiled for each; and
    pycc set to compile with NumPy's error model."""
    import shutil

    from numba.pycc import CC
    from numba.pycc import compiler as pycc_compiler

    pycc_compiler.Flags = _numpy_errors_flags()

    class _CC(CC):
        def _compile_mixins(self, build_dir):
            from jitgrad.backends.disk_cache import cache_dir
            import numba
            tag = hashlib.sha256(repr((numba.__version__, sys.version, np.__version__,
                                       self._get_mixin_defines(), self._get_extra_cflags(),
                                       self._get_mixin_sources())).encode()).hexdigest()[:16]
            done = os.path.join(cache_dir(), f".aot-runtime-{tag}")
            if not os.path.isdir(done):
                tmp = tempfile.mkdtemp(dir=cache_dir(), prefix=".aot-runtime-")
                try:
                    super()._compile_mixins(tmp)
                except BaseException:  # a full disk, a failed compile: leave nothing half-made
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                try:
                    os.rename(tmp, done)  # whole or not at all; a concurrent builder's wins
                except OSError:
                    shutil.rmtree(tmp, ignore_errors=True)
            objects = []
            for root, _, files in os.walk(done):
                objects += [os.path.join(root, f) for f in files if f.endswith((".o", ".obj"))]
            if len(objects) != len(self._get_mixin_sources()):
                shutil.rmtree(done, ignore_errors=True)
                raise RuntimeError(f"the C runtime in {done} is incomplete")
            return sorted(objects)
    return _CC


def _main(argv: list) -> None:
    import warnings

    warnings.simplefilter("ignore")
    _idle()
    if len(argv) > 1:
        _build_now(argv[0], argv[1])
    else:
        _build_queue(argv[0])


if __name__ == "__main__":
    _main(sys.argv[1:])
