"""Every primitive: values against NumPy, gradcheck (float64, central differences) at several
shapes including broadcasting, and second order where defined."""

import numpy as np
import pytest

import jitgrad as jg
from jitgrad.ops import PRIMITIVES

from .table import ACCURACY, ROWS


def make_inputs(row, shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrs = []
    for s in shapes:
        a = rng.standard_normal(s)
        if row.domain == "positive":
            a = np.abs(a) + 0.5
        elif row.domain == "away0":
            a = np.where(np.abs(a) < 0.1, 0.3, a)
        elif row.domain == "away_half":
            a = np.where(np.abs(np.abs(a) - 0.5) < 0.05, 0.2, a)
        elif row.domain == "distinct":
            a = a + np.arange(a.size).reshape(s) * 0.37 if a.size else a
        arrs.append(a)
    return arrs


CASES = [(i, j) for i, row in enumerate(ROWS) for j in range(len(row.shapes))]


def _id(case):
    i, j = case
    row = ROWS[i]
    return f"{'+'.join(row.covers[:2])}-{i}-{'x'.join(map(str, row.shapes[j]))}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_values_match_numpy(case):
    row = ROWS[case[0]]
    arrs = make_inputs(row, row.shapes[case[1]])
    out = row.fn(*[jg.tensor(a) for a in arrs])
    tol = 1e-12 if row.gtol < 1e-4 else 1e-6
    np.testing.assert_allclose(out.numpy().astype(np.float64), row.ref(*arrs), rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_gradcheck(case):
    row = ROWS[case[0]]
    arrs = make_inputs(row, row.shapes[case[1]])
    xs = [jg.tensor(a, requires_grad=True) for a in arrs]
    eps = 1e-6 if row.gtol < 1e-4 else 1e-2
    assert jg.autograd.gradcheck(lambda *t: row.fn(*t), xs, eps=eps, atol=row.gtol, rtol=row.gtol)


@pytest.mark.parametrize("case", [c for c in CASES if ROWS[c[0]].order2],
                         ids=[_id(c) for c in CASES if ROWS[c[0]].order2])
def test_second_order(case):
    row = ROWS[case[0]]
    arrs = make_inputs(row, row.shapes[case[1]])
    xs = [jg.tensor(a, requires_grad=True) for a in arrs]
    assert jg.autograd.gradgradcheck(lambda *t: row.fn(*t), xs, eps=1e-6, atol=1e-5, rtol=1e-4)


# Primitives that only the compiler emits; tests/test_compiled.py, test_guards.py, test_loops.py
# and test_branches.py cover them.
# Primitives only traces make; ``uniform`` (random draws inside a trace) is tested in
# tests/test_random.py: its statistics, and the kernels' bits against its NumPy body.
COMPILER_ONLY = {"guard", "stop_gradient", "custom_vjp", "while", "tuple_get", "while_vjp", "cond",
                 "uniform"}


def test_every_primitive_has_a_row():
    covered = {name for row in ROWS for name in row.covers}
    assert set(PRIMITIVES) - covered == COMPILER_ONLY


def test_float32_stays_float32():
    for row in ROWS:
        arrs = make_inputs(row, row.shapes[0])
        xs = [jg.tensor(a.astype(np.float32), requires_grad=True) for a in arrs]
        out = row.fn(*xs)
        if out.dtype.is_floating_point and "astype" not in row.covers:
            assert out.dtype is jg.float32, row.covers
            out.sum().backward()
            for x in xs:
                assert x.grad is None or x.grad.dtype is jg.float32


_ULPS = {np.float32: 4e-7, np.float64: 4e-15}


@pytest.mark.parametrize("target", [None, "reference", "cpu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accuracy_near_zero_and_large(target, dtype):
    """Values of the primitives and composites in ACCURACY, eager and compiled, against stable
    float64 formulas, to a few ulps of the dtype. One compiled function per target and dtype
    computes every row (few compiles)."""
    xs = [jg.tensor(np.array(pts, dtype=dtype)) for _, _, _, pts in ACCURACY]
    fns = [fn for _, fn, _, _ in ACCURACY]

    def all_rows(*ts):
        return tuple(f(t) for f, t in zip(fns, ts))
    run = all_rows if target is None else jg.jit(all_rows, target=target)
    outs = run(*xs)
    for (name, _, ref, pts), out in zip(ACCURACY, outs):
        x64 = np.array(pts, dtype=np.float64)
        want = ref(x64.astype(dtype).astype(np.float64))
        assert out.dtype.np == dtype, name
        got = out.numpy().astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=_ULPS[dtype], atol=0, err_msg=f"{name} {target}")
