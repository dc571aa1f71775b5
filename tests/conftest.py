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

import atexit
import shutil
import tempfile

import numpy as np
import pytest

import jitgrad


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def t64(arr, requires_grad=True):
    return jitgrad.tensor(np.asarray(arr, dtype=np.float64), requires_grad=requires_grad)

# Ahead-of-time builds take seconds of CPU each in the background: the suite compiles many
# kernels, so they stay off here; tests/test_aot.py turns them on for its own processes.
os.environ.setdefault("JITGRAD_AOT", "0")

# The suite's kernels go to a folder of its own, removed at the end, never the user's cache
# (~/.cache/jitgrad); JITGRAD_CACHE_DIR set outside is kept (to reuse compiles across runs).
if "JITGRAD_CACHE_DIR" not in os.environ:
    os.environ["JITGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="jitgrad-tests-")
    atexit.register(shutil.rmtree, os.environ["JITGRAD_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def no_lifting():
    """Loops stay unrolled, one trace per trip count (what a loop that cannot be lifted does):
    for the tests of guards and re-tracing themselves."""
    jitgrad.config.lift_loops = False
    yield
    jitgrad.config.lift_loops = True
