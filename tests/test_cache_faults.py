"""A disk cache can never break a run: unusable folders (a file, below a file, unwritable, a
parent that cannot be written), a full disk (writes fail part way: RLIMIT_FSIZE stands in for
ENOSPC, with no root needed), and Numba cache files swapped between kernels. Each case runs in
a fresh process and must give the right gradients with at most one warning."""

import glob
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys, warnings
    import numpy as np
    import jitgrad as jg
    warnings.simplefilter("always")
    x = jg.tensor([0.5, 1.0, 2.0], dtype=jg.float64)
    f = jg.grad(lambda x: (x.sin() * x).sum())
    h = jg.grad(lambda x: (x.cos() * x * 3).sum())  # the same signature: swappable kernels
    for _ in range(2):
        np.testing.assert_allclose(f(x).numpy(), np.sin(x.numpy()) + x.numpy() * np.cos(x.numpy()),
                                   rtol=1e-12)
        np.testing.assert_allclose(h(x).numpy(),
                                   3 * (np.cos(x.numpy()) - x.numpy() * np.sin(x.numpy())),
                                   rtol=1e-12)
    if "aot" in sys.argv:
        from jitgrad.backends import aot
        aot.wait()
    print("ok")
""")

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def run(cache, *flags, fsize=None, aot=False):
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(cache), JITGRAD_AOT="1" if aot else "0")

    def limit():
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    r = subprocess.run([sys.executable, "-c", SCRIPT, *flags], env=env, capture_output=True,
                       text=True, timeout=600, preexec_fn=limit, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    return [line for line in r.stderr.splitlines() if "CacheWarning" in line]


def _readonly(tmp_path, name):
    """An empty folder this process cannot write (as root, permissions do not stop writes:
    a folder of sysfs, which refuses new files to everyone, stands in)."""
    if ROOT:
        return "/sys"
    d = tmp_path / name
    d.mkdir()
    d.chmod(0o555)
    return d


def _cases(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    return {
        "read-only folder": _readonly(tmp_path, "ro"),
        "below a regular file": a_file / "cache",
        "unwritable path": "/proc/jitgrad-cache",
        "parent cannot be written": os.path.join(str(_readonly(tmp_path, "ro_parent")), "cache"),
        "names a regular file": a_file,
    }


def test_unusable_folders_compile_in_memory_with_one_warning(tmp_path):
    for what, cache in _cases(tmp_path).items():
        warned = run(cache)
        assert len(warned) == 1, (what, warned)
        assert "not caching compiled kernels" in warned[0] and str(cache) in warned[0], what


@pytest.mark.parametrize("fsize", [100, 3000, 60000])
def test_a_full_disk_compiles_in_memory(tmp_path, fsize):
    """100 bytes: the kernel source cannot be written; 3000: Numba's cache cannot; 60000:
    everything but the ahead-of-time build at exit (which must fail quietly)."""
    has_cc = bool(shutil.which("cc") or shutil.which("gcc"))
    warned = run(tmp_path / "c", "aot", fsize=fsize, aot=has_cc)
    assert len(warned) <= 1, warned
    assert run(tmp_path / "c") == []  # the next, unlimited, process: right answers, no warning


def test_numba_files_swapped_between_kernels_are_not_run(tmp_path):
    run(tmp_path)
    kernels = sorted(glob.glob(str(tmp_path / "__pycache__" / "*.nbc")))
    assert len(kernels) == 2, os.listdir(tmp_path / "__pycache__")
    a, b = kernels
    os.rename(a, a + ".tmp")
    os.rename(b, a)
    os.rename(a + ".tmp", b)
    assert run(tmp_path) == []  # each kernel compiled again, and right
    # and the cache serves again after that
    before = {f: os.path.getmtime(f) for f in glob.glob(str(tmp_path / "__pycache__" / "*"))}
    run(tmp_path)
    after = {f: os.path.getmtime(f) for f in glob.glob(str(tmp_path / "__pycache__" / "*"))}
    assert before == after
