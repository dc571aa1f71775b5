"""Lifted loops: a data-dependent ``while`` compiled once for every trip count and
differentiated in reverse. Each program runs eagerly and on the reference, CPU and CUDA
(simulator) targets, over inputs whose trip counts differ; loops that cannot be lifted must stay
right (one trace per trip count)."""

import numpy as np
import pytest

import jitgrad as jg

TARGETS = ["reference", "numba-cpu", "cuda"]


def seed(x):
    y = x * 2
    while y.norm() < 1000:
        y = y * 2
    return y.sum()


def damped(w, y):
    # The VJP of each iteration reads its carried value (sin, and w * y): a tape.
    while y.abs().sum() > 1e-3:
        y = 0.5 * w * y + 0.01 * jg.sin(y)
    return (y * y).sum() * 1e6


def newton_sqrt(a, x):
    # Newton's method for sqrt(a), stopped when the residual is small: d/da ~ 1 / (2 sqrt a).
    while ((x * x - a).abs() > 1e-12 * a).any():
        x = x - (x * x - a) / (2 * x)
    return x.sum()


def counter_changes_body(x):
    y = x
    i = 0
    while y.norm() < 100:
        y = y * 2 if i < 3 else y * 3  # a Python counter the trace cannot see steers the body
        i += 1
    return y.sum()


def _small(y):
    return bool(y.norm() < 100)  # the guard is in this helper; the counter is in its caller


def counter_in_the_caller(x):
    y = x
    i = 0
    while _small(y):
        y = y * (2.0 if i < 3 else 3.0)
        i += 1
    return y.sum()


_STEPS = [0]


def _bump(y):
    _STEPS[0] += 1  # state of a helper's module the loop's own frames never name
    return y * (2.0 if _STEPS[0] <= 3 else 3.0)


def counter_in_a_helper_global(x):
    _STEPS[0] = 0
    y = x
    while y.norm() < 100:
        y = _bump(y)
    return y.sum()


def appends(x):
    y, ys = x, []
    while y.norm() < 100:
        y = y * 2
        ys.append(y)
    return sum((v * v).sum() for v in ys) if ys else y.sum()


def branchy(x):
    y = x
    while y.norm() < 50:
        if y[0] > 1:  # a branch on data inside the body: a guard kept in it
            y = y * 2
        else:
            y = y + 1
    return (y * y).sum()


def nested(x):
    y = x
    while y.norm() < 1000:
        z = y
        while z.norm() < 2 * y.norm():
            z = z * 1.2
        y = y + z
    return y.sum()


def swap(x):
    y = x
    z = x  # the same tensor: the second iteration reads x where y was rebound to z
    while (y * z).sum() < 1e4:
        y, z = z, y + z
    return z.sum()


def counted(x, n):
    y = x
    for _ in range(int(n.item())):
        y = jg.tanh(y * 1.5)
    return y.sum()


def growing(x):
    y = x
    while y.numel() < 64:  # the carried value changes shape: not liftable
        y = jg.cat([y, y * 0.5])
        if y.sum() > 1e6:
            break
    return y.sum()


def growing_norm(x):
    y = x
    while y.norm() < 100:
        y = jg.cat([y, y])
    return y.sum()


def _inputs(shape, scales, seed_=0):
    rng = np.random.default_rng(seed_)
    return [rng.uniform(0.5, 1.5, shape) * s for s in scales]


def _eager_grads(fn, args, argnums):
    ts = [jg.tensor(a, requires_grad=i in argnums) for i, a in enumerate(args)]
    out = fn(*ts)
    out.backward()
    return out.item(), [ts[i].grad.numpy() for i in argnums]


def _host(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def check(fn, arg_sets, argnums=(0,), target="numba-cpu"):
    """Every call equals eager (1e-12 relative in float64); returns the compiled function."""
    f = jg.value_and_grad(fn, argnums=argnums, target=target)
    if target == "cuda" and len(arg_sets) >= 3:  # the simulator launches each iteration's
        arg_sets = arg_sets[::2]  # kernels in Python: half the inputs, still two or more
    for args in arg_sets:
        v, g = f(*[jg.tensor(a) for a in args])
        ve, ge = _eager_grads(fn, args, argnums)
        np.testing.assert_allclose(float(_host(v)), ve, rtol=1e-12)
        for got, want in zip(g, ge):
            np.testing.assert_allclose(_host(got), want, rtol=1e-12, atol=1e-300)
    return f


@pytest.mark.parametrize("target", TARGETS)
def test_seed_loop_is_one_trace_for_every_trip_count(target):
    xs = [[a] for a in _inputs((3,), [1e-6, 1e-3, 0.1, 1.0, 7.0, 300.0, 2e3])]
    f = check(seed, xs, target=target)
    info = f.cache_info()
    assert info.traces == 1 and info.guard_failures == 0
    assert len(info.loops) == 1 and "lifted" in info.loops[0] and "test_loops.py:16" in info.loops[0]
    text = f.lower(jg.tensor(xs[0][0])).as_text("forward")
    assert "while[" in text and "body {" in text and "guard" not in text


def test_trip_count_zero_first_then_lifted_on_the_second_trace():
    f = check(seed, [[a] for a in _inputs((3,), [2e3, 1e-3, 1.0, 1e-5])])
    assert f.cache_info().traces == 2


@pytest.mark.parametrize("target", TARGETS)
def test_a_loop_whose_vjp_needs_every_iteration_uses_a_tape(target):
    args = [(w, y) for w, y in zip(_inputs((2,), [0.9, 1.1, 1.4], 1), _inputs((2,), [1, 30, 1e-2], 2))]
    f = check(damped, args, argnums=(0, 1), target=target)
    assert f.cache_info().traces == 1
    assert "tape=True" in f.lower(*[jg.tensor(a) for a in args[0]]).as_text("optimized")


@pytest.mark.parametrize("target", TARGETS)
def test_a_tape_past_its_budget_keeps_every_sth_iteration_and_recomputes_the_rest(target):
    # Two iterations' carried values (2 float64 each) fit in 64 bytes: the tape holds 4 entries
    # (config.loop_tape_budget / 16 bytes), so the loops of 25, 61 and 22 iterations thin it to
    # strides 8 and 16, none dividing the trip count, and the reverse sweep recomputes the
    # segments. Values equal eager's to the last digit, as without a budget.
    args = [(w, y) for w, y in zip(_inputs((2,), [0.9, 1.1, 1.2], 1), _inputs((2,), [30, 1e3, 2e2], 2))]
    if target == "cuda":
        args = args[:1]  # (the simulator runs each iteration's kernels in Python)
    with jg.config.patch(loop_tape_budget=64):
        f = check(damped, args, argnums=(0, 1), target=target)
    assert f.cache_info().traces == 1
    assert "tape_limit=4" in f.lower(*[jg.tensor(a) for a in args[0]]).as_text("optimized")


def test_a_tape_keeps_the_iterations_its_stride_says():
    from jitgrad.loops.primitives import Tape
    for n in (1, 4, 5, 9, 31, 100):
        tape = Tape(4, None, [])
        for i in range(n):
            tape.keep(i, [i])
        kept = [c[0] for c in tape.saved]
        # The smallest power-of-two stride whose multiples below n fit in 4 entries.
        stride = next(s for s in (1, 2, 4, 8, 16, 32) if -(-n // s) <= 4)
        assert tape.stride == stride and kept == list(range(0, n, stride))


def test_without_residuals_there_is_no_tape():
    f = check(seed, [[a] for a in _inputs((3,), [0.1, 10.0])])
    assert "tape=False" in f.lower(jg.tensor(np.ones(3))).as_text("optimized")


@pytest.mark.parametrize("target", TARGETS)
def test_newton_gradient_wrt_the_parameter(target):
    args = [(np.array([a]), np.array([1.0])) for a in (2.0, 50.0, 1e4)]
    f = check(newton_sqrt, args, target=target)
    assert f.cache_info().traces == 1
    for a, x in args:
        _, (g,) = f(jg.tensor(a), jg.tensor(x))
        np.testing.assert_allclose(g.numpy(), 0.5 / np.sqrt(a), rtol=1e-8)


@pytest.mark.parametrize("fn,why", [(counter_changes_body, "the local 'i' of"),
                                    (counter_in_the_caller, "the local 'i' of counter_in"),
                                    (counter_in_a_helper_global, "the global '_STEPS'"),
                                    (appends, "the local 'ys' of")])
def test_python_state_that_changes_keeps_the_loop_unrolled(fn, why):
    f = check(fn, [[a] for a in _inputs((3,), [1e-3, 0.1, 1.0, 20.0])])
    info = f.cache_info()
    assert info.traces >= 3 and any(why in s and "not lifted" in s for s in info.loops)


def test_a_branch_inside_the_body_is_a_guard_that_retraces():
    xs = [[a] for a in [np.array([2.0, 1.0]), np.array([3.0, 0.5]), np.array([0.2, 0.1]),
                        np.array([0.5, 5.0]), np.array([8.0, 1.0])]]
    f = check(branchy, xs)
    info = f.cache_info()
    assert any(": lifted (" in s for s in info.loops)
    assert info.traces < len(xs)


@pytest.mark.parametrize("target", TARGETS)
def test_a_nested_loop_is_lifted_inside_the_outer_one(target):
    # the CUDA simulator launches each kernel of each iteration in Python: fewer iterations there
    # (one input there: the lifted structure is the same, and the CPU checks every count)
    scales = [400.0] if target == "cuda" else [1e-3, 0.5, 10.0, 400.0]
    f = check(nested, [[a] for a in _inputs((3,), scales)], target=target)
    assert f.cache_info().traces == 1
    text = f.lower(jg.tensor(np.ones(3))).as_text("forward")
    assert text.count("while[") == 2


@pytest.mark.parametrize("target", ["reference", "numba-cpu"])
def test_a_rebinding_two_iterations_cannot_tell_is_not_lifted(target):
    """y, z = z, y + z with y and z the same tensor at first: after two iterations it looks like
    a loop reading x as a constant; lifting it so gave wrong answers at other trip counts."""
    xs = [[np.array([1.0, 2.0]) * s] for s in (30.0, 1.0, 0.1, 30.0, 3.0)]
    f = check(swap, xs, target=target)
    assert not any(": lifted (" in s for s in f.cache_info().loops)


def test_for_over_range_of_item_stays_right():
    args = [(x, np.array(n)) for x, n in zip(_inputs((3,), [1, 1, 1, 1]), [0, 3, 5, 3])]
    check(counted, args)


def counted_int(x, n):
    y = x
    for _ in range(int(n)):
        y = y * 0.5 + jg.sin(y)
    return y.sum()


def counted_tensor(x, n):
    y = x
    for _ in range(n):
        y = jg.tanh(y) * 1.2
    return y.sum()


def counted_nested(x, n, m):
    y = x
    for _ in range(int(n.item())):
        for _ in range(int(m.item())):
            y = jg.sin(y) * 1.1
        y = y + 0.25
    return y.sum()


def counted_reads_index(x, n):
    y = x
    for i in range(int(n.item())):
        y = y * (1 + (i == 4))  # the index steers the body: not a loop to lift
    return y.sum()


def counted_python_counter(x, n):
    y, c = x, 0
    for _ in range(int(n.item())):
        c += 1
        y = y * 2 if c < 4 else y * 3
    return y.sum()


def counted_break(x, n):
    y = x
    for _ in range(int(n.item())):
        y = y * 1.5
        if y.sum() > 40:
            break
    return y.sum()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fn", [counted, counted_int, counted_tensor])
def test_for_over_range_of_a_tensor_is_one_compile_for_every_count(fn, target):
    ns = [3, 5, 0, 2, 9, 1, 4]
    args = [(x, np.array(n, dtype=np.int64)) for x, n in zip(_inputs((3,), [1] * 7), ns)]
    f = check(fn, args, target=target)
    info = f.cache_info()
    assert info.traces == 1 and info.guard_failures == 0, info
    assert len(info.loops) == 1 and ": lifted (" in info.loops[0]
    assert info.compiles <= 1


def test_for_over_range_of_a_float_truncates_as_int_does():
    args = [(x, np.array(n)) for x, n in zip(_inputs((3,), [1] * 5), [3.0, 4.7, -1.5, 0.2, 6.9])]
    f = check(counted, args)
    assert f.cache_info().traces == 1
    with pytest.raises(ValueError, match="NaN"):
        f(jg.tensor(np.ones(3)), jg.tensor(float("nan")))


def test_nested_for_over_ranges_lift_inside_out():
    args = [(x, np.array(n), np.array(m)) for x, n, m in
            zip(_inputs((2,), [1] * 5), [2, 3, 4, 1, 5], [3, 2, 4, 6, 2])]
    f = check(counted_nested, args)
    info = f.cache_info()
    assert info.traces == 1, info
    assert sum(": lifted (" in s for s in info.loops) == 2


@pytest.mark.parametrize("fn", [counted_reads_index, counted_python_counter, counted_break])
def test_for_over_a_range_the_body_steers_stays_right(fn):
    ns = [3, 6, 2, 5, 8, 3]
    check(fn, [(x, np.array(n)) for x, n in zip(_inputs((2,), [1] * 6), ns)])


@pytest.mark.parametrize("fn", [growing, growing_norm])
def test_shapes_that_change_per_iteration_fall_back_and_stay_right(fn):
    # (scales whose trip counts are few: growing_norm doubles its length every iteration)
    f = check(fn, [[a] for a in _inputs((2,), [1.0, 5.0, 30.0])])
    assert not any(": lifted (" in s for s in f.cache_info().loops)


def test_loops_off_gives_one_trace_per_trip_count(no_lifting):
    f = check(seed, [[a] for a in _inputs((3,), [1e-3, 1.0, 300.0])])
    assert f.cache_info().traces == 3 and f.cache_info().loops == ()


def test_float32_stays_float32_through_the_loop():
    f = jg.value_and_grad(damped, argnums=(0, 1), target="numba-cpu")
    w = jg.tensor([0.9, 0.8], dtype=jg.float32)
    y = jg.tensor([1.0, 2.0], dtype=jg.float32)
    v, (gw, gy) = f(w, y)
    assert v.dtype is jg.float32 and gw.dtype is jg.float32 and gy.dtype is jg.float32
    ve, (gwe, gye) = _eager_grads(damped, [w.numpy(), y.numpy()], (0, 1))
    np.testing.assert_allclose(gw.numpy(), gwe, rtol=1e-5)


def test_jit_of_a_loop_and_the_log(monkeypatch, capsys):
    monkeypatch.setenv("JITGRAD_LOG", "retrace")
    f = jg.jit(lambda x: seed(x) * 1.0, target="numba-cpu")
    for s in (1e-3, 1.0, 100.0):
        x = jg.tensor(np.ones(3) * s)
        np.testing.assert_allclose(f(x).numpy(), seed(x).numpy(), rtol=1e-12)
    assert f.cache_info().traces == 1
    assert "loop at test_loops.py:16: lifted" in capsys.readouterr().err


def test_the_result_never_shares_memory_with_the_argument():
    f = jg.jit(lambda x: _ident_loop(x), target="numba-cpu")
    x = jg.tensor(np.full(3, 5000.0))  # no iteration: the carried value is the argument
    f(jg.tensor(np.ones(3)))
    out = f(x)
    assert not np.shares_memory(out.numpy(), x.numpy())
    np.testing.assert_array_equal(out.numpy(), x.numpy())


def _ident_loop(x):
    while x.norm() < 1000:
        x = x * 2
    return x


# -- a branch on data inside the body: one cond in one lifted loop ---------------------------------
def alternating(x):
    y = x
    while y.abs().sum() < 100:
        if y.sum() > 0:
            y = y * -1.5 - 1
        else:
            y = y * -2.0 + 1
    return y.sum()


def branch_with_tape(w, y):
    while y.abs().max() > 0.05:
        if y.sum() > 0:  # (the sides flip the sign: they alternate)
            y = -0.5 * w * y + 0.01 * jg.sin(y)
        else:
            y = -0.4 * w * y
    return (y * y).sum()


def two_carried(x):
    a, b = x, x * 0.5
    while a.abs().sum() < 50:
        if (a - b).sum() > 0:
            a, b = b * -1.7, a + 1
        else:
            a, b = a * -1.3 + b, b * 0.9
    return a.sum() + b.sum()


def side_without_else(x):
    y = x
    while y.abs().sum() < 100:
        if y.sum() > 0:  # no else: that side leaves y as it is
            y = -y * 1.5
        y = y - 1
    return y.sum()


def side_sets_a_flag(x):
    y, seen = x, False
    while y.abs().sum() < 100:
        if y.sum() > 0:
            y = y * -1.5 - 1
            seen = True
        else:
            y = y * (-3.0 if seen else -2.0) + 1  # the flag steers a later iteration
    return y.sum()


@pytest.mark.parametrize("target", TARGETS)
def test_a_branch_in_the_body_is_one_lifted_loop(target):
    args = [[np.array([v])] for v in (1.0, -3.0, 0.5, 20.0, -0.01, 99.0, 150.0, -60.0)]
    f = check(alternating, args, target=target)
    info = f.cache_info()
    assert info.traces == 1 and info.guard_failures == 0, info
    assert ": lifted (" in info.loops[0]
    text = f.lower(jg.tensor(np.ones(1))).as_text("forward")
    assert "while[" in text and "cond " in text and "guard" not in text


@pytest.mark.parametrize("target", TARGETS[:2])
def test_a_branch_in_the_body_with_a_tape(target):
    args = [(np.array([w, 0.9]), np.array([y, -0.7])) for w, y in
            ((0.9, 1.0), (1.1, -2.0), (0.7, 3.0), (1.3, -0.5), (0.95, 0.2))]
    f = check(branch_with_tape, args, argnums=(0, 1), target=target)
    assert f.cache_info().traces == 1 and ": lifted (" in f.cache_info().loops[0]
    text = f.lower(*[jg.tensor(a) for a in args[1]]).as_text("optimized")
    assert "cond " in text and "tape=True" in text


def test_two_carried_values_through_a_branch():
    f = check(two_carried, [[np.array([v, 0.3])] for v in (1.0, -2.0, 0.4, 5.0, -0.3)])
    assert any(": lifted (" in s for s in f.cache_info().loops)


def test_a_side_without_else_is_a_cond_in_the_lifted_loop():
    f = check(side_without_else, [[np.array([v])] for v in (1.0, -3.0, 0.5, 20.0, -0.01, 2.0)])
    assert f.cache_info().traces == 1 and ": lifted (" in f.cache_info().loops[0]


def test_a_flag_a_side_sets_keeps_the_loop_unrolled_and_right():
    f = check(side_sets_a_flag, [[np.array([v])] for v in (1.0, -3.0, 0.5, 20.0, -0.01, 2.0)])
    assert "the local 'seen' of side_sets_a_flag changes" in f.cache_info().loops[0]


def dead_loop_with_a_branch(x, w):
    n = x.abs().sum() * 0.7
    c = w
    while n < 6.0:
        if (w.sum() * 1.96 + n * 0.74).sin() > 0:
            c = c * -0.82 + 0.56
        n = n + 1.0
    return (c * 0.48).sum()


@pytest.mark.parametrize("target", TARGETS)
def test_a_lifted_loop_whose_results_are_unused_still_checks_its_guards(target):
    # (found by the loop fuzzer: traced where the if never held, the loop carries only n,
    # which nothing reads; it was dropped with the guard in its body, and every later input
    # got the first trace's answer)
    args = [(np.array([1.12897119, 1.42874565]), np.array([1.99225045, -1.01602916])),
            (np.array([0.38115522, -1.12887071]), np.array([-0.58421392, -1.12738668]))]
    check(dead_loop_with_a_branch, args, argnums=(1,), target=target)


def adds_an_invariant(x, w):
    y = x * 1.0
    while y.sum() < 10.0:
        y = y * 0.95 + w  # w's cotangent in the body is y's, passed on as it is
    return (y * 0.3).sum()


@pytest.mark.parametrize("target", TARGETS)
def test_an_invariant_whose_cotangent_is_the_carried_one(target):
    # (found by the loop fuzzer: the CPU kernel's reverse loop added to w's gradient the
    # cotangent the iteration had just handed back, not the one it received)
    args = [(np.array([0.3, -0.5]), np.array([0.7, 1.1])),
            (np.array([2.0, 1.0]), np.array([0.4, 0.2]))]
    check(adds_an_invariant, args, argnums=(0, 1), target=target)


def test_a_loop_in_a_function_transform_inside_grad_lifts_and_equals_eager():
    """grad of ``func.grad`` through a data-dependent loop: the reverse of its reverse loop is
    a loop too (``loops/second_reverse.py``), one trace for every trip count, equal to eager's
    second derivative (create_graph)."""
    def inner(y):
        return damped(jg.tensor([1.1, 0.9], dtype=jg.float64), y)

    f = jg.grad(lambda y: jg.func.grad(inner)(y).sum(), target="reference")
    for y in _inputs((2,), [0.3, 2.0]):
        ye = jg.tensor(y, requires_grad=True)
        (g,) = jg.autograd.grad(inner(ye), ye, create_graph=True)
        g.sum().backward()
        np.testing.assert_allclose(f(jg.tensor(y)).numpy(), ye.grad.numpy(), rtol=1e-12)
    loops = f.cache_info().loops
    assert f.cache_info().traces == 1 and len(loops) == 1, loops
    assert "test_loops.py:23: lifted (" in loops[0], loops


def _scaled(w, x):
    y = w
    while y.norm() < 1000:
        y = y * 2
    return (y * x).sum()


@pytest.mark.parametrize("target", TARGETS)
def test_a_lifted_loop_that_runs_no_iteration_gives_a_gradient_of_its_own(target):
    """The reverse loop of a loop that ran no iteration hands on the cotangent it got, here
    the argument ``x`` itself (the reference backend returned ``x`` as the gradient)."""
    g = jg.grad(_scaled, target=target)
    x = jg.tensor(np.array([1.0, 2.0, 3.0]))
    for s in (1.0, 3000.0, 0.5, 5000.0):
        w = np.array([0.3, 0.2, 0.1]) * s
        n = 0
        while np.linalg.norm(w * 2.0 ** n) < 1000:
            n += 1
        got = _host(g(jg.tensor(w), x))
        np.testing.assert_allclose(got, x.numpy() * 2.0 ** n, rtol=1e-12)
        assert not np.shares_memory(got, x.numpy()), s
    assert g.cache_info().traces == 1
