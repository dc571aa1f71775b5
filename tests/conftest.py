import numpy as np
import pytest

import jitgrad


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def t64(arr, requires_grad=True):
    return jitgrad.tensor(np.asarray(arr, dtype=np.float64), requires_grad=requires_grad)
