"""Python induction variables in lifted loops (``loops/induction.py``): an iteration cap
becomes a carried int64 and its test part of the loop's condition, so one trace serves every trip
count, capped or not. Each program is checked against eager at every call; the ones the bytecode
does not prove stay one trace per trip count and stay right."""

import numpy as np
import pytest

import jitgrad as jg
from tests.test_loops import _inputs, check

CAP = 7


def newton_capped(a, x):
    # The shape: a residual test and an iteration cap, in that order.
    it = 0
    while ((x * x - a).abs() > 1e-10 * a).any() and it < 8:
        x = x - (x * x - a) / (2 * x)
        it += 1
    return x.sum()


def cap_first(x):
    it = 0
    while it < 6 and x.sum() < 100:
        x = x * 2
        it += 1
    return x.sum()


def cap_global(x):
    n = 0
    while x.sum() < 100 and n < CAP:
        x = x * 1.5 + 0.1
        n = n + 1
    return (x * x).sum()


def cap_local_down(x, limit=5):
    k = limit
    while x.sum() < 100 and k > 0:
        x = x * 2
        k -= 1
    return x.sum()


def counter_read_after(x):
    it = 0
    while x.sum() < 100 and it < 6:
        x = x * 2
        it += 1
    return x.sum() * it  # the count is used: not a counter the loop may hide


def counter_stepped_sometimes(x):
    it = 0
    while x.sum() < 100 and it < 6:
        x = x * 2
        if x.sum() > 20:
            it += 1
    return x.sum()


def cap_or(x):
    it = 0
    while x.sum() < 100 or it < 3:
        x = x * 2
        it += 1
    return x.sum()


def counter_read_in_body(x):
    it = 0
    while x.sum() < 100 and it < 6:
        x = x * (1.5 if it < 2 else 2.0)
        it += 1
    return x.sum()


def newton_decayed(a, x):
    # a counter the body reads: a damped step that relaxes with the count
    it = 0
    while ((x * x - a).abs() > 1e-10 * a).any() and it < 40:
        x = x - (1.0 - 0.5 ** (it + 1)) * (x * x - a) / (2 * x)
        it += 1
    return x.sum()


def cap_first_indexing(x):
    # the cap tested first; the count read as an index and in a power
    it = 0
    while it < 8 and x.sum() < 100:
        x = x * 1.5 + x[it % 2] * 0.5 ** it
        it += 1
    return (x * x).sum()


def _capped(x):
    k = 0
    while x.sum() < 40 and k < 5:
        x = x * 2 + 0.25 * k
        k += 1
    return x


def cap_in_a_helper(x):
    # a capped loop in a helper called twice: two loops, each counter from 0
    return _capped(x).sum() + (_capped(x * 0.5) ** 2).sum()


SCALES = [1e-3, 30.0, 0.5, 60.0, 200.0, 1e-5, 3.0]


@pytest.mark.parametrize("target", ["reference", "numba-cpu"])
def test_newton_with_an_iteration_cap_is_one_trace(target):
    rng = np.random.default_rng(0)
    arg_sets = [[rng.uniform(1, 9, 3) * s, np.full(3, x0)]
                for s, x0 in [(1.0, 1.0), (100.0, 1.0), (1e4, 1.0), (2.0, 1.5), (1e8, 1.0)]]
    f = check(newton_capped, arg_sets, argnums=(0, 1), target=target)
    info = f.cache_info()
    assert info.traces == 1, info
    assert "lifted" in info.loops[0]
    text = f.lower(*[jg.tensor(a) for a in arg_sets[0]]).as_text("forward")
    assert "while[" in text and "8:i64" in text


@pytest.mark.parametrize("fn", [cap_first, cap_global, cap_local_down])
def test_caps_in_every_form_stay_right_and_lift(fn):
    f = check(fn, [[a] for a in _inputs((2,), SCALES)], target="reference")
    info = f.cache_info()
    # A trace that leaves by the cap before the data test is evaluated cannot show the loop's
    # exit; one that leaves by the data test can, and serves every later call.
    assert info.traces <= 2 and any("lifted" in s for s in info.loops), info


@pytest.mark.parametrize("fn", [counter_read_after, counter_stepped_sometimes, cap_or,
                                counter_read_in_body])
def test_counters_the_bytecode_does_not_prove_stay_unlifted_and_right(fn):
    f = check(fn, [[a] for a in _inputs((2,), SCALES)], target="reference")
    info = f.cache_info()
    assert not any(": lifted (" in s for s in info.loops), info.loops
    assert info.traces > 1


def test_the_cap_in_a_module_constant_is_read_from_the_trace():
    f = check(cap_global, [[a] for a in _inputs((2,), [1e-3, 50.0])], target="reference")
    text = f.lower(jg.tensor(np.ones(2))).as_text("forward")
    assert f"{CAP}:i64" in text


def sweep(x, a):
    # A fixed-point sweep with an iteration cap and a break on data (Heron's square root).
    y = x
    for _ in range(12):
        y = 0.5 * (x + a / x)
        if ((y - x).abs() < 1e-9 * y.abs()).all():
            break
        x = y
    return y.sum()


def sweep_count_read(x, a):
    y = x
    for i in range(12):
        y = 0.5 * (x + a / x) + 0.0 * i  # the loop variable is read: a traced number
        if ((y - x).abs() < 1e-9 * y.abs()).all():
            break
        x = y
    return y.sum()


def fixed_three(x):
    for _ in range(3):  # no break: unrolled as before
        x = x * 2
    return x.sum()


@pytest.mark.parametrize("target", ["reference", "numba-cpu"])
def test_a_for_range_with_a_break_is_one_lifted_loop(target):
    # 1e8 and 1e12 need more than 12 iterations from 1: the range runs out before the break
    scales = [4.0, 100.0, 1e8, 2.0, 1e4, 1e12, 0.25]
    arg_sets = [[np.ones(3), np.array([1.0, 2.0, 3.0]) * s] for s in scales]
    f = check(sweep, arg_sets, argnums=(0, 1), target=target)
    info = f.cache_info()
    assert any("lifted" in s for s in info.loops), info.loops
    # one trace for every count that breaks, one more for a run through all 12
    assert info.traces <= 2, info


def test_a_range_whose_variable_the_ir_computes_lifts_one_that_cannot_break_is_unchanged():
    # (tests/test_loop_counter_reads.py has the counter's reads in their every form)
    arg_sets = [[np.ones(3), np.array([1.0, 2.0, 3.0]) * s] for s in (4.0, 100.0, 2.0)]
    f = check(sweep_count_read, arg_sets, argnums=(0, 1), target="reference")
    assert any(": lifted (" in s for s in f.cache_info().loops)
    assert f.cache_info().traces == 1
    g = check(fixed_three, [[np.ones(2)], [np.full(2, 3.0)]], target="reference")
    assert "while[" not in g.lower(jg.tensor(np.ones(2))).as_text("forward")
    assert g.cache_info().traces == 1


_HELPER_MODULE = """
N = 4

def helper(x):
    it = 0
    while x.sum() < 1e4 and it < N:
        x = x * 2
        it += 1
    return x
"""

_TOP_MODULE = """
N = 50

def top(x):
    return helper_mod.helper(x * N).sum()
"""


def test_a_cap_named_by_two_modules_is_not_taken_from_the_wrong_one():
    """The Python state holds the globals of every frame by name: a cap ``N`` that the
    helper's module and its caller's give different values is not known to be the header's,
    so the loop is not lifted with it (it was, with the caller's 50, and answered wrongly)."""
    import types
    helper_mod = types.ModuleType("helper_mod")
    exec(compile(_HELPER_MODULE, "helper_mod.py", "exec"), helper_mod.__dict__)
    top_mod = types.ModuleType("top_mod")
    top_mod.helper_mod = helper_mod
    exec(compile(_TOP_MODULE, "top_mod.py", "exec"), top_mod.__dict__)
    f = jg.jit(top_mod.top, target="reference")
    for v in (50.0, 1e-3, 1.0, 1e-5, 3.0):
        x = jg.tensor([v])
        assert f(x).item() == pytest.approx(top_mod.top(x).item(), rel=1e-12)


@pytest.mark.parametrize("target", ["reference", "numba-cpu"])
def test_a_capped_newton_that_reads_its_counter_is_one_trace(target):
    # the counter becomes a traced number from the header's first test on (a second trace
    # of the first call, which replaces the first): 0.5 ** (it + 1) is computed in the loop
    rng = np.random.default_rng(1)
    arg_sets = [[rng.uniform(1, 9, 3) * s, np.full(3, 1.0)] for s in (1.0, 100.0, 1e4, 1e8)]
    f = check(newton_decayed, arg_sets, argnums=(0, 1), target=target)
    info = f.cache_info()
    assert info.traces == 1 and ": lifted (" in info.loops[0], info
    assert "pow" in f.lower(*[jg.tensor(a) for a in arg_sets[0]]).as_text("forward")


def test_a_counter_read_as_an_index_and_a_power_lifts_and_stays_right():
    f = check(cap_first_indexing, [[a] for a in _inputs((2,), SCALES)], target="reference")
    info = f.cache_info()
    # (at most a trace for each way out: the cap, the data test, the data test at once)
    assert info.traces <= 3 and all(": lifted (" in s for s in info.loops), info


def test_two_capped_loops_that_read_their_counters_stay_right():
    # each call of the helper is a loop of its own, its counter from 0 (a trace for each
    # combination of the ways the two loops leave)
    f = check(cap_in_a_helper, [[a] for a in _inputs((2,), SCALES)], target="reference")
    assert any(": lifted (" in s for s in f.cache_info().loops)
