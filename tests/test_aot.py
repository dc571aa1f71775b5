"""Kernels compiled ahead of time: built in the background, loaded by later processes without
importing Numba, equal to the JIT-compiled kernel and the interpreter."""

import glob
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
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
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(cache), JITGRAD_AOT="1")
    r = subprocess.run([sys.executable, "-c", SCRIPT, *flags], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def test_a_later_process_loads_the_kernel_without_numba(tmp_path):
    first = _run(tmp_path, "build")
    assert first[0] == "True CPUDispatcher"  # compiled by Numba; the build ran meanwhile
    mods = glob.glob(str(tmp_path / "jg_aot_*.so")) + glob.glob(str(tmp_path / "jg_aot_*.pyd"))
    assert len(mods) == 1 and os.path.exists(mods[0] + ".sha256"), os.listdir(tmp_path)
    second = _run(tmp_path, "retrace")
    assert second[0] == "False builtin_function_or_method"  # no Numba at all
    assert second[1] == first[1]  # the same value and gradient sum as the JIT kernel gave
    assert second[2] == "retraced True"
    # A damaged module (loading a truncated one would crash the process) is deleted, and the
    # kernel loads through Numba's cache instead.
    with open(mods[0], "r+b") as fh:
        fh.truncate(4096)
    third = _run(tmp_path, "build")
    assert third[0] == "True CPUDispatcher" and third[1] == first[1]
    assert os.path.getsize(mods[0]) > 4096  # built again
    assert _run(tmp_path)[:2] == second[:2]


def test_a_failed_build_is_not_retried(tmp_path, monkeypatch):
    from jitgrad.backends import aot
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    k = "0" * 24
    marker = aot.module_path(k) + ".failed"
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    with open(marker, "w") as fh:
        fh.write("no compiler")
    aot.request("unused.py", k, None)  # returns before it needs a signature
    assert not aot._queue and aot.load(k) is None


def test_the_key_covers_the_cpu_and_the_source(monkeypatch):
    from jitgrad.backends import aot
    k = aot.key("def kernel(): pass")
    assert aot.key("def kernel(): return 1") != k
    monkeypatch.setattr(aot, "_cpu", "another cpu")
    assert aot.key("def kernel(): pass") != k


def test_modules_swapped_with_their_digests_do_not_load(tmp_path):
    """Each module's digest covers the key it was built for: two modules swapped together with
    their digests are both refused (and built again), never run as the other kernel."""
    from .test_cache_faults import SCRIPT as TWO_KERNELS
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(tmp_path), JITGRAD_AOT="1")

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
    from jitgrad.backends import aot
    for m in mods:  # refused and deleted (or, by the builder at exit, built again rightly)
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


def test_a_trace_the_interpreter_ran_runs_compiled_in_a_later_process(tmp_path):
    """A function called for less time than a compile takes never compiles (the default
    ``compile_after``); its trace is built ahead of time at exit, and a later process loads
    that kernel at its first call, without Numba, with the same values."""
    env = {k: v for k, v in os.environ.items() if k != "JITGRAD_COMPILE_AFTER"}
    env.update(JITGRAD_CACHE_DIR=str(tmp_path), JITGRAD_AOT="1")

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
