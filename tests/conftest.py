import os
import sys

# The CUDA backend's tests run on a real GPU when there is one and in Numba's CUDA simulator
# otherwise; the simulator has to be chosen before numba.cuda is first imported.
if not os.path.exists("/dev/nvidia0") and "NUMBA_ENABLE_CUDASIM" not in os.environ:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if "numba" in sys.modules:
        sys.modules["numba"].core.config.reload_config()

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
