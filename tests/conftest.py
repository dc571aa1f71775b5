import os
import sys

# The CUDA backend's tests run on a real GPU when there is one and in Numba's CUDA simulator
# otherwise; the simulator has to be chosen before numba.cuda is first imported.
if not os.path.exists("/dev/nvidia0") and "NUMBA_ENABLE_CUDASIM" not in os.environ:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if "numba" in sys.modules:
        sys.modules["numba"].core.config.reload_config()

# Each trace compiles at once (one with guards at its second call), not after the interpreter
# has run it for as long as a compile takes: the suite's calls would mostly be interpreted.
# Processes the tests start inherit it; tests/test_tiers.py tests the default, and the docs'
# blocks run with the defaults a reader has (tests/test_docs.py).
os.environ.setdefault("JITGRAD_COMPILE_AFTER", "0")

# No ahead-of-time builder may outlive the session (left running, they made the next program on
# a 2-core machine several times slower): none starts at exit, here or in the processes the
# tests start; a test that needs a module calls aot.wait(), which builds in the foreground.
# Set before jitgrad is imported, which reads it (and again below, should it be imported first).
os.environ.setdefault("JITGRAD_AOT_BUILDS", "0")
# Tests of when a trace compiles expect the compile in place; tests/test_tiers.py turns the
# build process on for its own tests of it.
os.environ.setdefault("JITGRAD_BACKGROUND_COMPILE", "0")

import atexit
import shutil
import signal
import tempfile

import numpy as np
import pytest

import jitgrad
from jitgrad._settings import _switch


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def t64(arr, requires_grad=True):
    return jitgrad.tensor(np.asarray(arr, dtype=np.float64), requires_grad=requires_grad)

# Ahead-of-time builds take seconds of CPU each in the background: the suite compiles many
# kernels, so they stay off here; tests/test_aot.py turns the loading on for its own processes
# (and builds with aot.wait()).
os.environ.setdefault("JITGRAD_AOT", "0")
jitgrad.config.aot_builds = _switch("JITGRAD_AOT_BUILDS")

# The suite's kernels go to a folder of its own, removed at the end, never the user's cache
# (~/.cache/jitgrad); JITGRAD_CACHE_DIR set outside is kept (to reuse compiles across runs).
_OWN_FOLDERS = []  # where a builder can only be this session's (a user's cache is not)
if "JITGRAD_CACHE_DIR" not in os.environ:
    os.environ["JITGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="jitgrad-tests-")
    os.environ["JITGRAD_TESTS_OWN_CACHE"] = os.environ["JITGRAD_CACHE_DIR"]
    atexit.register(shutil.rmtree, os.environ["JITGRAD_CACHE_DIR"], ignore_errors=True)
    _OWN_FOLDERS.append(os.environ["JITGRAD_CACHE_DIR"])
elif os.environ.get("PYTEST_XDIST_WORKER") and (
        os.environ["JITGRAD_CACHE_DIR"] == os.environ.get("JITGRAD_TESTS_OWN_CACHE")):
    # A worker of a parallel run (pytest -n): a folder of its own inside the run's, so that one
    # worker's builders and locks never meet another's (a test that expects a builder to start
    # would find the other worker's holding the folder); the run's folder is removed at the end.
    own = os.path.join(os.environ["JITGRAD_CACHE_DIR"], os.environ["PYTEST_XDIST_WORKER"])
    os.makedirs(own, exist_ok=True)
    os.environ["JITGRAD_CACHE_DIR"] = os.environ["JITGRAD_TESTS_OWN_CACHE"] = own
    _OWN_FOLDERS.append(own)


@pytest.fixture(scope="session", autouse=True)
def _session_folders(tmp_path_factory):
    _OWN_FOLDERS.append(str(tmp_path_factory.getbasetemp()))


def _builders_in(folders: list) -> list:
    """The pids of ahead-of-time builders (started by any process) building for a cache folder
    in ``folders``: a builder's first argument is its folder. Linux only (/proc)."""
    pids = []
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return pids
    for e in entries:
        try:
            with open(f"/proc/{e}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "jitgrad.backends.aot" in argv[:-1]:
            folder = argv[argv.index("jitgrad.backends.aot") + 1]
            if any(folder == d or folder.startswith(d.rstrip(os.sep) + os.sep) for d in folders):
                pids.append(int(e))
    return pids


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    """Kill any builder this session left running (its own, or one a process it started left)
    and fail the run, loudly: a builder must never outlive the tests."""
    left = []
    aot = sys.modules.get("jitgrad.backends.aot")
    if aot is not None:
        left += [f"{p.pid} ({' '.join(p.args[3:])})" for p in aot.stop_builders()]
    for pid in _builders_in(_OWN_FOLDERS):
        try:  # a builder leads a session of its own: its C compiler goes too
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            continue  # it ended meanwhile
        left.append(str(pid))
    if left:
        msg = (f"ahead-of-time builder(s) left running by the tests, now killed: {', '.join(left)}; "
               "a test that starts one must wait for it (aot.wait()) or stop it")
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\nERROR: {msg}", red=True, bold=True)
        else:
            print(f"ERROR: {msg}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def no_lifting():
    """Loops stay unrolled, one trace per trip count (what a loop that cannot be lifted does):
    for the tests of guards and re-tracing themselves."""
    jitgrad.config.lift_loops = False
    yield
    jitgrad.config.lift_loops = True
