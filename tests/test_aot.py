"""Kernels compiled ahead of time: built in the background, loaded by later processes without
importing Numba, equal to the JIT-compiled kernel and the interpreter; one builder per cache
folder, within its time budget, and none when the builds are off.

The suite starts no background builder (JITGRAD_AOT_BUILDS=0, conftest.py): the tests that need
a module build it with ``aot.wait()``, and those of the builder itself use jobs whose build is
faked, or already done, rather than pycc."""

import glob
import os
import shutil
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

import jitgrad
from jitgrad.backends import aot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

needs_cc = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc")) or
    subprocess.run([sys.executable, "-c", "import setuptools"], capture_output=True).returncode,
    reason="ahead-of-time builds need a C compiler and setuptools")

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import jitgrad as jg

    def f(x, n):
        y = x * 2
        while y.norm() < 1000:  # a lifted loop, compiled into the kernel
            y = y * 2
        return ((y * x).sum() * 1e-3 + (x / (x - x)).isinf().sum() * 1.0 + (n // (n + 1)).sum()
                + jg.tanh(x).sum())

    x = jg.tensor(np.linspace(0.5, 3.0, 257))  # positive terms: no cancellation in the gradient
    n = jg.tensor(np.arange(5))
    g = jg.value_and_grad(f)
    ref = jg.value_and_grad(f, target="reference")
    (v, d), (vr, dr) = g(x, n), ref(x, n)
    kernel = g.lower(x, n)._node.exe.kernel
    print("numba" in sys.modules, type(kernel).__name__)
    assert np.allclose(v.item(), vr.item(), rtol=1e-12) and v.dtype is vr.dtype, (v, vr)
    np.testing.assert_allclose(d.numpy(), dr.numpy(), rtol=1e-12, atol=0)
    print(repr(v.item()), repr(float(d.numpy().sum())))

    # A kernel in pieces (as a model's long one is: numba_pieces), each built ahead of time
    from jitgrad.backends import numba_cpu
    numba_cpu.PIECES_LINES = 1
    def mlp(w1, w2, x):
        h = jg.tanh(x @ w1) * 0.5 + 1.0
        return ((jg.tanh(h @ w2) - 0.25) ** 2).mean()
    rng = np.random.default_rng(0)
    w = [jg.tensor(rng.standard_normal(s)) for s in ((8, 16), (16, 4), (32, 8))]
    pg = jg.value_and_grad(mlp, argnums=(0, 1))
    (pv, pd), (pvr, pdr) = pg(*w), jg.value_and_grad(mlp, argnums=(0, 1), target="reference")(*w)
    assert len(pg.lower(*w)._node.exe.source.units) == 4
    for a, b in zip(pd, pdr):  # (BLAS rounds the elements near 0 apart: atol at their scale)
        b = b.numpy()
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    print("numba" in sys.modules, repr(pv.item()), repr(float(pd[0].numpy().sum())))
    if "retrace" in sys.argv:  # every piece built ahead of time: nothing left to compile
        assert pg._rt.backend.compile_cost(pg.lower(*w)._node.optimized) == 0.0
    if "build" in sys.argv:
        from jitgrad.backends import aot
        assert aot.wait(), "the build did not end"
    if "retrace" in sys.argv:  # another length: a new trace, compiled by Numba
        jg.config.aot = False
        x2 = x[:100] * 50
        g(x2, n)  # (a trace with guards compiles at its second call)
        (v, d), (vr, dr) = g(x2, n), ref(x2, n)
        np.testing.assert_allclose(d.numpy(), dr.numpy(), rtol=1e-12, atol=0)
        assert g.cache_info().traces == 2
        print("retraced", "numba" in sys.modules)
""")


def _run(cache, *flags):
    # Loading on, background builds off: "build" builds in the foreground (aot.wait()), and
    # the other runs show that a module built before loads with the builds off.
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(cache), JITGRAD_AOT="1", JITGRAD_AOT_BUILDS="0")
    r = subprocess.run([sys.executable, "-c", SCRIPT, *flags], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


@needs_cc
def test_a_later_process_loads_the_kernel_without_numba(tmp_path):
    first = _run(tmp_path, "build")
    assert first[0] == "True CPUDispatcher"  # compiled by Numba; the build ran meanwhile
    mods = glob.glob(str(tmp_path / "jg_aot_*.so")) + glob.glob(str(tmp_path / "jg_aot_*.pyd"))
    # the kernel, and the four pieces of the other
    assert len(mods) == 5 and all(os.path.exists(m + ".sha256") for m in mods), \
        os.listdir(tmp_path)
    assert aot._queued(str(tmp_path)) == [] and not glob.glob(str(tmp_path / ".aot-queue" / "*"))
    second = _run(tmp_path, "retrace")
    assert second[0] == "False builtin_function_or_method"  # no Numba at all
    assert second[1] == first[1]  # the same value and gradient sum as the JIT kernel gave
    assert first[2].startswith("True ") and second[2] == "False" + first[2][4:]  # pieces too
    assert second[3] == "retraced True"
    # A damaged module (loading a truncated one would crash the process) is deleted, and the
    # kernel loads through Numba's cache instead.
    kernel = min(mods, key=os.path.getmtime)  # the first queued, so the first built: f's
    with open(kernel, "r+b") as fh:
        fh.truncate(4096)
    third = _run(tmp_path, "build")
    assert third[0] == "True CPUDispatcher" and third[1] == first[1]
    assert os.path.getsize(kernel) > 4096  # built again
    assert _run(tmp_path)[:2] == second[:2]


def test_a_failed_build_is_not_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    k = "0" * 24
    marker = aot.module_path(k) + ".failed"
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    with open(marker, "w") as fh:
        fh.write("no compiler")
    aot.request("unused.py", k, None)  # returns before it needs a signature
    assert not aot._queue and aot.load(k) is None


def test_the_key_covers_the_cpu_and_the_source(monkeypatch):
    k = aot.key("def kernel(): pass")
    assert aot.key("def kernel(): return 1") != k
    monkeypatch.setattr(aot, "_cpu", "another cpu")
    assert aot.key("def kernel(): pass") != k


@needs_cc
def test_modules_swapped_with_their_digests_do_not_load(tmp_path):
    """Each module's digest covers the key it was built for: two modules swapped together with
    their digests are both refused (and built again), never run as the other kernel."""
    from .test_cache_faults import SCRIPT as TWO_KERNELS
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(tmp_path), JITGRAD_AOT="1", JITGRAD_AOT_BUILDS="0")

    def run(*flags):
        r = subprocess.run([sys.executable, "-c", TWO_KERNELS, *flags], env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    run("aot")
    mods = sorted(glob.glob(str(tmp_path / "jg_aot_*.so")))
    assert len(mods) == 2 and all(os.path.exists(m + ".sha256") for m in mods), os.listdir(tmp_path)
    a, b = mods
    for suffix in ("", ".sha256"):
        os.rename(a + suffix, a + suffix + ".tmp")
        os.rename(b + suffix, a + suffix)
        os.rename(a + suffix + ".tmp", b + suffix)
    run()  # the script checks both gradients against their formulas
    for m in mods:  # refused and deleted (and queued again, but no builder starts here)
        k = os.path.basename(m)[len("jg_aot_"):].split(".")[0]
        try:
            with open(m + ".sha256") as fh, open(m, "rb") as mod:
                assert fh.read().strip() == aot.module_digest(k, mod.read())
        except FileNotFoundError:
            pass


INTERPRETED = textwrap.dedent("""
    import sys
    import numpy as np
    import jitgrad as jg

    def f(x):
        y = x * 2
        while y.norm() < 1000:
            y = y * 2
        return (y * jg.sin(x)).sum()

    g = jg.grad(f)
    xs = [jg.tensor(np.linspace(0.5, 1.5, 7) * s) for s in (1.0, 3e-3, 20.0)]
    sums = [repr(float(g(x).numpy().sum())) for x in xs]
    print(g.cache_info().traces, g.cache_info().compiles, "numba" in sys.modules, *sums)
    if "build" in sys.argv:
        from jitgrad.backends import aot
        assert aot.wait(), "the build did not end"
""")


@needs_cc
def test_a_trace_the_interpreter_ran_runs_compiled_in_a_later_process(tmp_path):
    """A function called for less time than a compile takes never compiles (the default
    ``compile_after``); its trace is built ahead of time at exit, and a later process loads
    that kernel at its first call, without Numba, with the same values."""
    env = {k: v for k, v in os.environ.items() if k != "JITGRAD_COMPILE_AFTER"}
    env.update(JITGRAD_CACHE_DIR=str(tmp_path), JITGRAD_AOT="1", JITGRAD_AOT_BUILDS="0")

    def run(*flags):
        r = subprocess.run([sys.executable, "-c", INTERPRETED, *flags], env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.split()
    first = run("build")
    assert first[:3] == ["1", "0", "False"], first  # one trace, interpreted: Numba not imported
    assert glob.glob(str(tmp_path / "jg_aot_*.sha256")), os.listdir(tmp_path)
    second = run()
    assert second[:3] == ["1", "1", "False"], second  # the built kernel, loaded at once
    np.testing.assert_allclose([float(v) for v in second[3:]], [float(v) for v in first[3:]],
                               rtol=1e-12)


# --- the background builder: one per cache folder, within its budget, off on request ---

def _jobs(folder, *names):
    """Jobs as the queue holds them, for modules ``names`` (no kernel behind them: the tests
    fake the build, or mark the module built so the builder passes over it)."""
    return [(None, n, None, os.path.join(str(folder), f"jg_aot_{n}.so")) for n in names]


def _mark_built(jobs):
    for *_, path in jobs:
        with open(path + ".sha256", "w") as fh:
            fh.write("built")


@pytest.fixture
def fake_build(monkeypatch):
    """``_build`` writes the module's digest instead of compiling (no pycc, no Numba), records
    the keys it built, and calls ``fake_build.during(k)`` first; no waiting for a free core."""
    built = []

    def build(compiler, source_path, k, sig, path):
        built.append(k)
        build.during(k)
        _mark_built([(None, k, None, path)])
    build.during = lambda k: None
    monkeypatch.setattr(aot, "_build", build)
    monkeypatch.setattr(aot, "_compiler_class", lambda: object)
    monkeypatch.setattr(aot, "_quiet_cpu", lambda limit=600.0: True)
    build.built = built
    return build


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(aot, "_queue", [])
    yield str(tmp_path)
    # never leave a builder behind, even when the test failed part way
    assert aot.stop_builders() == []


def _builder(folder, **env):
    """Run ``python -m jitgrad.backends.aot folder`` (a background builder) to its end."""
    return subprocess.run([sys.executable, "-m", "jitgrad.backends.aot", folder], cwd=ROOT,
                          env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)


def test_one_builder_per_folder_the_others_queue_their_jobs(folder, fake_build):
    running = aot._BuilderLock(folder)
    assert running.acquire()  # a builder runs for the folder
    try:
        # A process that exits now queues its jobs and starts no second builder ...
        aot._queue[:] = _jobs(folder, "a1", "a2")
        n = len(aot.started)
        assert aot.start() is None and len(aot.started) == n and not aot._queue
        assert len(aot._queued(folder)) == 1
        # ... and a second builder started all the same leaves at once, the queue untouched.
        t0 = time.monotonic()
        r = _builder(folder)
        assert r.returncode == 0, r.stderr
        assert len(aot._queued(folder)) == 1 and time.monotonic() - t0 < 30
    finally:
        running.release()
    # The running builder takes the queue, and jobs queued while it builds (a process that
    # exited then found the lock held, and started no builder) before it ends.
    fake_build.during = lambda k: k == "a1" and aot._write_jobs(folder, _jobs(folder, "b1"))
    aot._build_queue(folder)
    assert fake_build.built == ["a1", "a2", "b1"] and aot._queued(folder) == []
    assert running.acquire()  # released at the end
    running.release()


def test_a_process_exiting_with_no_builder_running_starts_one_that_drains_the_queue(folder):
    jobs = _jobs(folder, "c1", "c2")
    _mark_built(jobs)  # so the builder, a real process, passes over them without Numba
    aot._write_jobs(folder, jobs[:1])  # left by an earlier builder
    aot._queue[:] = jobs[1:]
    p = aot.start()
    assert p is not None and p in aot.started
    assert p.wait(120) == 0 and aot._queued(folder) == []


def test_past_its_budget_a_builder_stops_and_leaves_the_jobs_queued(folder, fake_build,
                                                                    monkeypatch):
    jobs = _jobs(folder, "d1", "d2", "d3")
    aot._write_jobs(folder, jobs)
    with jitgrad.config.patch(aot_budget=0):
        aot._build_queue(folder)
        aot._queue[:] = _jobs(folder, "d4")
        assert aot.start() is None  # a builder with no time would build nothing: none starts
    assert fake_build.built == [] and len(aot._queued(folder)) == 2
    r = _builder(folder, JITGRAD_AOT_BUDGET="0")  # the variable, in a builder process
    assert r.returncode == 0 and len(aot._queued(folder)) == 2, r.stderr
    # Each build takes a second of a fake clock: a budget of 1.5 s builds two, and the next
    # builder the rest (not those two again).
    clock = [0.0]
    monkeypatch.setattr(aot, "time", types.SimpleNamespace(
        monotonic=lambda: clock[0], time=time.time, time_ns=time.time_ns, sleep=time.sleep))
    fake_build.during = lambda k: clock.__setitem__(0, clock[0] + 1.0)
    with jitgrad.config.patch(aot_budget=1.5):
        aot._build_queue(folder)
    assert fake_build.built == ["d1", "d2"] and len(aot._queued(folder)) == 2
    aot._build_queue(folder)
    assert fake_build.built == ["d1", "d2", "d3", "d4"] and aot._queued(folder) == []


def test_with_builds_off_no_builder_starts_at_exit(folder, monkeypatch):
    """(A module built before still loads with the builds off: the runs of
    test_a_later_process_loads_the_kernel_without_numba.)"""
    monkeypatch.setenv("JITGRAD_AOT", "1")
    aot._queue[:] = _jobs(folder, "e1")
    n = len(aot.started)
    with jitgrad.config.patch(aot=True, aot_builds=False):
        assert aot.enabled() and not aot.builds_enabled()
        aot._at_exit()
    assert len(aot.started) == n and aot._queued(folder) == []
    monkeypatch.setenv("JITGRAD_AOT", "0")  # the old switch: all off, builds too
    with jitgrad.config.patch(aot=True, aot_builds=True):
        assert not aot.enabled() and not aot.builds_enabled()


def test_wait_past_its_timeout_stops_the_build_and_queues_its_jobs(folder):
    running = aot._BuilderLock(folder)
    assert running.acquire()  # wait()'s builder waits for the folder's builder
    try:
        aot._queue[:] = _jobs(folder, "f1")
        assert aot.wait(timeout=1.0) is False
    finally:
        running.release()
    assert all(p.poll() is not None for p in aot.started)  # stopped, not left running
    assert len(aot._queued(folder)) == 1  # for a background builder


def test_bad_values_of_the_variables_raise_naming_them(monkeypatch):
    from jitgrad._settings import Config
    for var, bad in (("JITGRAD_AOT_BUDGET", "-1"), ("JITGRAD_AOT_BUDGET", "soon"),
                     ("JITGRAD_AOT_BUDGET", "nan"), ("JITGRAD_AOT_BUILDS", "maybe")):
        monkeypatch.setenv(var, bad)
        with pytest.raises(ValueError, match=var):
            Config()
        monkeypatch.delenv(var)
    monkeypatch.setenv("JITGRAD_AOT_BUDGET", "2.5")
    monkeypatch.setenv("JITGRAD_AOT_BUILDS", "0")
    assert (Config().aot_budget, Config().aot_builds) == (2.5, False)
    monkeypatch.delenv("JITGRAD_AOT_BUDGET")
    monkeypatch.delenv("JITGRAD_AOT_BUILDS")
    assert (Config().aot_budget, Config().aot_builds) == (120.0, True)


@pytest.mark.parametrize("flock", [True, False], ids=["flock", "no-fcntl"])
def test_the_folder_lock_is_held_by_one(tmp_path, monkeypatch, flock):
    if not flock:  # Windows: a file made with O_EXCL, taken over once stale
        monkeypatch.setattr(aot, "fcntl", None)
    elif aot.fcntl is None:
        pytest.skip("no fcntl here")
    a, b = aot._BuilderLock(str(tmp_path)), aot._BuilderLock(str(tmp_path))
    assert a.acquire() and not b.acquire()
    a.release()
    assert b.acquire() and not a.acquire()
    if not flock:
        old = time.time() - aot._LOCK_STALE - 1  # a builder that died holding it
        os.utime(b.path, (old, old))
        assert a.acquire()
        a.release()
    b.release()
