"""Golden tests: the printed IR of a few functions at every stage, pinned as text.

Regenerate after an intended change with JITGRAD_UPDATE_GOLDEN=1 and review the diff."""

import os
import pathlib

import numpy as np
import pytest

import jitgrad as jg

from . import golden_fns

HERE = pathlib.Path(__file__).resolve().parent / "golden"
STAGES = ("forward", "adjoint", "optimized")

CASES = {
    "mlp_loss": (golden_fns.mlp_loss, (0, 1, 2),
                 lambda: (np.ones((4, 3)), np.ones((3, 5)), np.ones((5, 2)))),
    "softplus_sum": (golden_fns.softplus_sum, 0, lambda: (np.ones(3, dtype=np.float32),)),
    "branchy": (golden_fns.branchy, 0, lambda: (np.ones(2),)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("stage", STAGES)
def test_golden_ir(name, stage):
    fn, argnums, make = CASES[name]
    text = jg.grad(fn, argnums=argnums, target="reference").lower(*make()).as_text(stage) + "\n"
    path = HERE / f"{name}.{stage}.txt"
    if os.environ.get("JITGRAD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
