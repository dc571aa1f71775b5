"""Loops whose body has an ``if`` where a side leaves a carried value as it is (no ``else``), or
hands on a value made before the ``if``: one cond in one lifted loop, decided from the variables
live at the loop's header (``trace/liveness.py``). Each program is checked against eager over
inputs that take the sides in other orders than the trace did; the programs the trace cannot
tell apart must stay unrolled and right."""

import numpy as np
import pytest

import jitgrad as jg
from jitgrad.trace.liveness import live_at

from .test_loops import _host, check


def if_without_else(x, z):
    y = x  # y starts as the argument itself: a read of that tensor is of y
    while z.sum() < 100:
        if z.sum().sin() > 0:
            y = y * 2
            z = z + y
        else:
            z = z + y
    return z.sum() + y.sum() * 0.5


def handed_on(x):
    y = x * 1.0
    while y.abs().sum() < 25.0:
        t = y * 1.5 + 0.1
        if t.sum() > 0.0:
            y = t.sin() + t
        else:
            y = t  # the value made before the if, as it is
    return (y * y).sum()


def temporary_in_a_side(x):
    y, k = x.abs() + 0.2, x * 0.5
    while y.sum() < 15.0:
        if (y.sum() * 2.0).cos() > 0.0:
            d = k * 0.3  # dead at the header: written again before any read
            k = k + d.tanh()
        y = y * 1.4 + k.abs() * 0.1
    return y.sum() + k.sum()


def invariant_or_carried(x, w):
    y = w  # y and w are one tensor until a side changes y
    z = x
    while z.sum() < 30:
        if (z.sum() * 0.3).sin() > 0:
            y = y * 2
        z = z + w  # w, not y: a trace whose other side ran only before y changed cannot tell
    return z.sum() + y.sum()


def kept_in_a_list(x):
    box = [x * 1.0]
    y, c = x * 1.0, x * 0.0
    while c.sum() < 5:
        if y.sum() > 20:
            box[0] = box[0] * 1.5  # a carried value no variable at the header shows
            y = y - 10
        else:
            y = y * 2.5 + box[0] * 0.1
        c = c + 1
    return y.sum()


def _pairs(n, seed=0):
    rng = np.random.default_rng(seed)
    return [[np.array([rng.uniform(1, 10)]), np.array([rng.uniform(-20, 20)])]
            for _ in range(n)]


def _singles(n, lo, hi, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.uniform(lo, hi, 2)] for _ in range(n)]


@pytest.mark.parametrize("target", ["reference", "numba-cpu"])
def test_an_if_without_else_is_one_lifted_loop(target):
    f = check(if_without_else, _pairs(40), argnums=(0, 1), target=target)
    info = f.cache_info()
    assert info.traces == 1 and info.guard_failures == 0, info
    assert ": lifted (" in info.loops[0]
    text = f.lower(*[jg.tensor(a) for a in _pairs(1)[0]]).as_text("forward")
    assert "while[" in text and "cond " in text and "guard" not in text


@pytest.mark.parametrize("fn,args,target", [
    (handed_on, _singles(30, -2, 2), "reference"),
    (handed_on, _singles(12, -2, 2), "numba-cpu"),
    (temporary_in_a_side, _singles(30, -1, 1), "reference"),
])
def test_sides_that_hand_on_or_keep_values_lift(fn, args, target):
    f = check(fn, args, target=target)
    info = f.cache_info()
    assert any(": lifted (" in s for s in info.loops), info
    assert info.traces <= 3, info


def test_a_value_the_trace_cannot_place_stays_right():
    # The first trace takes the side without the change only before y changes (z = 11, 15,
    # 19, then 23, 27); z = -5 takes it after (-5, -1 one way, 3, 7 the other, 11 back).
    args = [[np.array([v]), np.array([4.0])] for v in [11.0] + list(np.linspace(-5, 45, 26))]
    f = check(invariant_or_carried, args, argnums=(0, 1), target="reference")
    why = f.cache_info().loops[0]
    assert "could not become a cond" in why and "cannot tell" in why, why


def test_a_carried_value_in_a_list_stays_unrolled_and_right():
    # The first trace changes box[0] in its last iteration only; 25 changes it first.
    args = [[np.array([v])] for v in (1.0, 25.0, 22.0, 30.0, 0.5)]
    f = check(kept_in_a_list, args, target="reference")
    assert "kept in a container" in f.cache_info().loops[0]


def test_liveness_sees_a_side_temporary_as_dead_and_the_carried_values_as_live():
    code = temporary_in_a_side.__code__
    assert live_at(code, _header(code, 2)) == {"y", "k"}


@pytest.mark.parametrize("seed,target", [(1, "numba-cpu"), (32, "numba-cpu"), (1, "cuda")])
def test_generated_loops_with_every_kind_of_side_compile(seed, target):
    # From the loop fuzzer: sides that leave a value as it is or copy another slot (1), set one
    # to a value from before the loop (32); handed_on hands on a value made before the if.
    # Each is a side that returns one of its inputs; one on CUDA (simulated here) is enough.
    from .test_fuzz_loops import _eager, make_program
    ns: dict = {}
    exec(compile(make_program(seed), f"<loop program {seed}>", "exec"), ns)
    f = jg.value_and_grad(ns["prog"], argnums=(0, 1), target=target)
    rng = np.random.default_rng(10_000 + seed)
    for _ in range(10):
        x, w = rng.uniform(-3, 3, 2), rng.uniform(-2, 2, 2)
        v, grads = f(jg.tensor(x), jg.tensor(w))
        want = _eager(ns["prog"], x, w)
        for got, exp in zip([v, *grads], want):
            np.testing.assert_allclose(_host(got), exp, rtol=1e-12, atol=1e-14)
    assert any(": lifted (" in s for s in f.cache_info().loops), f.cache_info().loops


def _header(code, line_offset):
    import dis
    return next(i.offset for i in dis.get_instructions(code)
                if "JUMP" in i.opname and "IF" in i.opname and i.positions.lineno ==
                code.co_firstlineno + line_offset)


def test_liveness_errs_towards_live():
    def captured(x):
        y = x
        while y < 3:  # y is read by the closure, whenever it runs: a cell is always live
            y = y + 1
            t = y
        return lambda: (y, t)

    def handler(x):
        y, keep = x, x
        try:
            while y < 3:
                y = y + 1
                keep = y
        except ValueError:
            return keep  # read only in the handler, which the loop can reach
        return y

    assert {"y", "t"} <= live_at(captured.__code__, _header(captured.__code__, 2))
    assert "keep" in live_at(handler.__code__, _header(handler.__code__, 3))


def resets(x, w):
    c = w
    n = x.sum() * 0.0
    while n < 5:
        if (x.sum() + n * 1.3).sin() > 0:
            c = w  # while c is still w, this and leaving c as it is look the same
        else:
            c = c * 0.5 + 0.1
        n = n + 1
    return (c * c).sum()


def test_a_side_that_sets_a_value_it_may_have_left_stays_right():
    # The first trace resets c only while it is still w (x summing to 0.8: the reset, the
    # reset, then the other side three times); -1.0 resets after the other side.
    args = [(np.array([v / 2, v / 2]), np.array([0.7, -0.4])) for v in (0.8, -1.0, 2.0, -2.2)]
    f = check(resets, args, argnums=(1,), target="reference")
    why = f.cache_info().loops[0]
    assert "could not become a cond" in why and "cannot tell" in why, why
