"""A loop's counter read in its body (``trace/numbers.py``): the variable of a ``for`` over a
range that the lifted loop carries, used in arithmetic (``lr * 0.9 ** i``, ``i * dt``), as a
dynamic index (``x[i]``) or in comparisons that feed tensor code, is computed by the IR from the
carried int64, so one trace serves every trip count. Read as a Python value (``if i < 2:``, a
list's index, ``math.exp(-i)``), it is guarded and the loop stays one trace per trip count. Each
program is checked against eager at every call, values and gradients."""

import math

import numpy as np
import pytest

import jitgrad as jg
from tests.test_loops import check


def decay(x, n):
    # gradient steps on (x^2 - 2)^2 / 4 with a decaying rate: Python floats from the counter
    lr = 0.3
    for i in range(int(n.item())):
        x = x - lr * 0.9 ** i * (x * x - 2.0) * x
    return x.sum()


def rows(x, n):
    # the counter indexes a tensor from both ends: a dynamic index, gradients scattered back
    y = x[0]
    for i in range(int(n.item())):
        y = jg.tanh(y * x[i] + x[n - 1 - i] * 0.5 * 0.9 ** i)
    return y.sum()


def clock(x, n):
    # Python's arithmetic on ints and floats: true and floor division, remainder, powers
    dt = 0.1
    for i in range(int(n.item())):
        t = i * dt
        x = x + dt * jg.sin(x * (1 + t)) + i / 3 * 1e-2 + (i // 2) * (i % 3) * 1e-3 \
            - (-i) ** 2 * 1e-3 + 2 ** i * 1e-4
    return x.sum()


def masked(x, n):
    # comparisons that feed tensor code: a tensor against the counter, a bool as a factor
    for i in range(int(n.item())):
        x = jg.where(x > i, x * 0.5, x * 1.5) + x * (i < 2) * 0.25 + (i == 3)
    return x.sum()


def relax(x, a):
    # a for-range with a break on data whose step grows with the counter (Heron's root)
    y = x
    for i in range(40):
        w = 1 - 0.5 ** (i + 1)
        y = x + w * (0.5 * (x + a / x) - x)
        if ((y - x).abs() < 1e-12 * y.abs()).all():
            break
        x = y
    return y.sum()


def python_if(x, n):
    for i in range(int(n.item())):
        if i < 2:
            x = x * 1.5
        else:
            x = x * 2.0
    return x.sum()


WEIGHTS = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]


def list_index(x, n):
    for i in range(int(n.item())):
        x = x * WEIGHTS[i]
    return x.sum()


def math_float(x, n):
    for i in range(int(n.item())):
        x = x * math.exp(-i)
    return x.sum()


def count_after(x, n):
    i = 0
    for i in range(int(n.item())):
        x = x * (1.0 + 0.1 * i)
    return x.sum() * i  # read after the loop: Python's own range


COUNTS = [3, 5, 0, 2, 7, 1, 4]


def _args(counts, shape=(3,)):
    base = np.linspace(0.6, 1.4, int(np.prod(shape))).reshape(shape)
    return [(base, np.array(k, dtype=np.int64)) for k in counts]


@pytest.mark.parametrize("fn", [decay, rows, clock, masked])
def test_a_counter_the_ir_computes_is_one_trace_for_every_count(fn):
    args = _args([k for k in COUNTS if k] if fn is rows else COUNTS,
                  (8, 3) if fn is rows else (3,))
    f = check(fn, args, target="reference")
    info = f.cache_info()
    assert info.traces == 1 and info.guard_failures == 0, info
    assert len(info.loops) == 1 and ": lifted (" in info.loops[0], info.loops


def test_the_counter_is_carried_int64_arithmetic_in_the_ir():
    f = jg.jit(decay, target="reference")
    text = f.lower(jg.ones(3), jg.tensor(3)).as_text("forward")
    assert "while[" in text and "astype[dtype=f64]" in text and "pow 0.9:f64" in text
    assert "guard" not in text  # a float base's power needs no guard on the counter


@pytest.mark.parametrize("target", ["numba-cpu", "cuda"])
def test_counter_reads_compile_once_on_the_cpu_and_the_gpu(target):
    f = check(rows, _args([2, 5, 1, 7], (8, 3)), target=target)
    assert f.cache_info().traces == 1 and f.cache_info().compiles <= 1


def test_a_for_range_with_a_break_reads_its_counter_and_lifts():
    scales = [4.0, 100.0, 2.0, 1e4, 0.25, 9.0]
    f = check(relax, [[np.ones(3), np.array([1.0, 2.0, 3.0]) * s] for s in scales],
              argnums=(0, 1), target="reference")
    info = f.cache_info()
    assert any(": lifted (" in s for s in info.loops), info.loops
    assert info.traces == 1, info


@pytest.mark.parametrize("fn", [list_index, math_float, count_after])
def test_a_counter_read_as_a_python_value_stays_one_trace_per_count(fn):
    f = check(fn, _args(COUNTS), target="reference")
    info = f.cache_info()
    assert not any(": lifted (" in s for s in info.loops), info.loops
    assert info.traces == len(set(COUNTS)), info
    if fn is not count_after:
        assert any("as a different Python number" in s for s in info.loops), info.loops


def test_an_if_on_the_counter_is_guarded_and_right():
    # the trace's guards on i < 2 keep every call right, lifted where the traced iterations
    # took one side (a cond where the branch rewrite can make one)
    f = check(python_if, _args(COUNTS), target="reference")
    assert f.cache_info().traces < len(COUNTS)
