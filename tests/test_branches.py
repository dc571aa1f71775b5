"""Both sides of an ``if`` on data in one kernel: two traces that part at a bool guard merge into
one graph with a ``cond``. Every call is checked against eager autograd (1e-12 relative)."""

import numpy as np
import pytest

import jitgrad as jg

TARGETS = ["reference", "numba-cpu", "cuda"]


def branchy(x, w):
    y = x * w
    if y.sum() > 0:
        z = y.sin() * 2
    else:
        z = (y * y).exp()
    return (z * w).sum()


def nested(x, w):
    y = x * w
    if y.sum() > 0:
        if y.max() > 1.5:  # a guard inside a side stays there
            y = y * 3
        z = y.tanh()
    else:
        z = y * y
    return (z * w).sum() + x.sum()


def with_loop(x, w):
    y = x * w
    if y.sum() > 0:
        while y.norm() < 50:  # a lifted loop inside one side
            y = y * 1.7
    else:
        y = -y
    return (y * w).sum()


def shapes_differ(x, w):
    y = x * w
    z = y[:1] if y.sum() > 0 else y  # the sides differ inside, and end alike: merged
    return (z * z).sum()


def _eager(fn, x, w):
    xt, wt = jg.tensor(x, requires_grad=True), jg.tensor(w, requires_grad=True)
    out = fn(xt, wt)
    out.backward()
    return out.item(), xt.grad.numpy(), wt.grad.numpy()


def _host(t):
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def check(fn, points, target="numba-cpu", w=(0.7, -0.2, 0.4)):
    f = jg.value_and_grad(fn, argnums=(0, 1), target=target)
    w = np.array(w)
    for v in points:
        x = np.array([v, 0.5 * v, -0.25 * v])
        val, (gx, gw) = f(jg.tensor(x), jg.tensor(w))
        ve, gxe, gwe = _eager(fn, x, w)
        np.testing.assert_allclose(float(_host(val)), ve, rtol=1e-12)
        np.testing.assert_allclose(_host(gx), gxe, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(_host(gw), gwe, rtol=1e-12, atol=1e-300)
    return f


@pytest.mark.parametrize("target", TARGETS)
def test_both_sides_of_an_if_are_one_kernel(target):
    f = check(branchy, [1.0, -1.0, 2.0, -0.5, 0.3, -3.0], target)
    info = f.cache_info()
    assert info.traces == 2 and info.guard_failures == 1
    if target == "numba-cpu":
        assert info.compiles == 1 and info.fallbacks == ()
    text = f.lower(jg.tensor(np.ones(3)), jg.tensor(np.ones(3))).as_text("forward")
    assert "cond " in text and "true {" in text and "false {" in text and "guard" not in text


@pytest.mark.parametrize("target", TARGETS[:2])
def test_guards_and_loops_inside_a_side(target):
    check(nested, [1.0, -1.0, 0.2, 4.0, -2.0, 0.3, 5.0], target)
    f = check(with_loop, [1.0, -1.0, 3.0, -2.0, 0.01], target)
    assert any(": lifted (" in s for s in f.cache_info().loops)


def test_sides_of_other_shapes_inside_merge_and_other_results_do_not():
    f = check(shapes_differ, [1.0, -1.0, 2.0, -2.0])
    assert "cond" in f.lower(jg.tensor(np.ones(3)), jg.tensor(np.ones(3))).as_text("forward")
    g = jg.jit(lambda x: x[:1] * 2 if x.sum() > 0 else x * 3)
    for v in (1.0, -1.0, 2.0, -2.0):
        x = jg.tensor([v, 2 * v])
        np.testing.assert_allclose(g(x).numpy(), (x[:1] * 2 if v > 0 else x * 3).numpy())
    assert g.cache_info().traces == 2
    assert "cond" not in g.lower(jg.tensor([1.0, 1.0])).as_text("forward")


def test_merging_off_gives_a_kernel_per_side():
    jg.config.merge_branches = False
    try:
        f = check(branchy, [1.0, -1.0, 2.0, -2.0, 1.5, -1.5])
    finally:
        jg.config.merge_branches = True
    assert f.cache_info().compiles == 2


def test_jit_and_float32_through_a_cond():
    def g(x):
        return x.exp() if x.sum() > 0 else x * 3

    f = jg.jit(g)
    for v in (1.0, -1.0, 2.0, -2.0):
        x = jg.tensor([v, 2 * v])
        out = f(x)
        assert out.dtype is jg.float32
        np.testing.assert_allclose(out.numpy(), g(x).numpy(), rtol=1e-6)
    assert f.cache_info().compiles == 1


FLIP = jg.tensor(1.0)


def passes_on(x):
    y = x * 2 if FLIP > 0 else x.sin()
    return y, x


def twice(x):
    w = x * 2 if FLIP > 0 else x * 3
    v = w.sin()  # made in each side, after the if: each side gives (v, v)
    return v, v


def views(x):
    y = x.reshape(1, -1) if FLIP > 0 else x.reshape(1, -1) * 2
    return y, x.sin()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fn", [passes_on, twice, views])
def test_a_cond_gives_results_of_their_own(fn, target):
    # (found by the differential fuzzer: the reference backend returned the argument itself,
    # a side's one value as two results, and a view of the argument)
    global FLIP
    c = jg.jit(fn, target=target)
    x = jg.tensor(np.ones(3))
    for sign in (1.0, -1.0, 1.0, -1.0):
        FLIP = jg.tensor(sign)
        got = [_host(r) for r in c(x)]
        for k, (r, want) in enumerate(zip(got, fn(x))):
            np.testing.assert_allclose(r, _host(want))
            assert not any(np.shares_memory(r, o) for o in [x.numpy()] + got[:k])
    assert "cond" in c.lower(x).as_text("forward")
    FLIP = jg.tensor(1.0)
