"""Data-dependent Python control flow: guards, trace trees, re-tracing, eager fallback."""

import warnings

import numpy as np
import pytest

import jitgrad as jg


def doubling(x):
    y = x * 2
    while y.norm() < 1000:
        y = y * 2
    return y


def eager_vjp(fn, x, v):
    x = jg.tensor(x, requires_grad=True)
    y = fn(x)
    y.backward(jg.tensor(v))
    return x.grad.numpy()


@pytest.mark.usefixtures("no_lifting")
def test_while_loop_over_many_magnitudes_equals_eager_and_traces_once_per_path():
    rng = np.random.default_rng(0)
    v = np.array([0.1, 1.0, 0.0001])
    f = jg.grad(lambda x: (doubling(x) * jg.tensor(v)).sum(), target="reference")
    trip_counts = set()
    for _ in range(40):
        x = rng.standard_normal(3) * 10.0 ** rng.uniform(-4, 2)
        g = f(jg.tensor(x))
        np.testing.assert_allclose(g.numpy(), eager_vjp(doubling, x, v), rtol=1e-12)
        trip_counts.add(int(round(np.log2(g.numpy()[0] / v[0]))))
    assert f.cache_info().traces == len(trip_counts)
    assert not f.cache_info().eager_fallback


def test_if_branches():
    def f(x):
        if x.sum() > 0:
            return (x.sin() * x).sum()
        return (x.exp() * 2).sum()

    cf = jg.grad(f, target="reference")
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.standard_normal(4)
        xt = jg.tensor(x, requires_grad=True)
        f(xt).backward()
        np.testing.assert_allclose(cf(jg.tensor(x)).numpy(), xt.grad.numpy(), rtol=1e-12)
    assert cf.cache_info().traces == 2


def test_float_used_in_arithmetic_is_guarded():
    def f(x):
        s = float(x.max())  # a Python number: its derivative does not flow
        return (x * s).sum()

    cf = jg.grad(f, target="reference")
    x = jg.tensor([1.0, 3.0, 2.0], dtype=jg.float64)
    assert cf(x).tolist() == [3.0, 3.0, 3.0]
    assert cf(x * 2).tolist() == [6.0, 6.0, 6.0]  # new max: a new trace, not a stale result
    assert cf.cache_info().traces == 2


def test_nested_loops_and_early_return():
    def f(x):
        total = x.sum() * 0
        for i in range(3):
            y = x * (i + 1)
            while y.abs().max() < 10:
                y = y * 3
                if y.sum() > 50:
                    return total + y.sum()
            total = total + (y * y).mean()
        return total

    cf = jg.grad(f, target="reference")
    rng = np.random.default_rng(2)
    for _ in range(25):
        x = rng.standard_normal(3) * 10.0 ** rng.uniform(-1, 1)
        xt = jg.tensor(x, requires_grad=True)
        f(xt).backward()
        np.testing.assert_allclose(cf(jg.tensor(x)).numpy(), xt.grad.numpy(), rtol=1e-12)


def test_item_int_index_and_tolist_are_guarded():
    def f(x):
        k = int(x.argmax())        # __int__ of a traced value
        w = x.detach().tolist()    # a Python list of floats
        return x[k] * 2 + x.sum() * w[0] + x[x.argmin().item()]

    cf = jg.grad(f, target="reference")
    for arr in ([1.0, 5.0, 2.0], [7.0, 5.0, 2.0], [1.0, 5.0, 2.0]):
        xt = jg.tensor(arr, requires_grad=True)
        f(xt).backward()
        np.testing.assert_allclose(cf(jg.tensor(arr)).numpy(), xt.grad.numpy())
    assert cf.cache_info().traces == 2


@pytest.mark.usefixtures("no_lifting")
def test_retrace_limit_warns_once_and_falls_back_to_eager():
    f = jg.grad(lambda x: (doubling(x) * 1.0).sum(), retrace_limit=3, target="reference")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for s in (1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e-3):
            x = np.array([0.3, -0.2, 0.05]) * s
            np.testing.assert_allclose(f(jg.tensor(x)).numpy(),
                                       eager_vjp(doubling, x, np.ones(3)), rtol=1e-12)
    msgs = [w for w in caught if issubclass(w.category, jg.RetraceWarning)]
    assert len(msgs) == 1
    assert "test_guards.py" in str(msgs[0].message) and "eagerly" in str(msgs[0].message)
    info = f.cache_info()
    assert info.traces == 3 and info.eager_fallback and info.eager_calls >= 3


@pytest.mark.usefixtures("no_lifting")
def test_eager_fallback_takes_numpy_arguments_as_compiled_code_does():
    # Compiled code takes NumPy arrays for tensors; the eager fallback once passed them on to
    # the function as they were ('numpy.ndarray' object has no attribute 'norm').
    f = jg.jit(lambda x: doubling(x) * 1.0, retrace_limit=1, target="reference")
    g = jg.grad(lambda x: doubling(x).sum(), retrace_limit=1, target="reference")
    with pytest.warns(jg.RetraceWarning):
        for s in (1e-2, 1.0, 10.0):
            x = np.array([0.3, -0.2, 0.05]) * s
            out = f(x)
            assert isinstance(out, jg.Tensor)
            np.testing.assert_allclose(out.numpy(), doubling(jg.tensor(x)).numpy(), rtol=1e-12)
            np.testing.assert_allclose(g(x).numpy(), eager_vjp(doubling, x, np.ones(3)),
                                       rtol=1e-12)
    assert f.cache_info().eager_fallback and g.cache_info().eager_fallback


def test_unstable_value_guard_is_detected_early():
    def f(x):
        return x.sum() * float(x.sum())

    cf = jg.grad(f, target="reference")
    rng = np.random.default_rng(3)
    with pytest.warns(jg.RetraceWarning, match="changes on nearly every call"):
        for _ in range(jg.config.unstable_guard_limit + 2):
            x = rng.standard_normal(3)
            np.testing.assert_allclose(cf(jg.tensor(x)).numpy(), np.full(3, x.sum()), rtol=1e-12)
    assert cf.cache_info().traces <= jg.config.unstable_guard_limit


@pytest.mark.usefixtures("no_lifting")
def test_cache_info_and_lowered_guards_name_the_site():
    f = jg.grad(lambda x: doubling(x).sum(), target="reference")
    f(jg.tensor([1.0, 1.0]))
    f(jg.tensor([10.0, 10.0]))
    info = f.cache_info()
    assert info.traces == 2 and info.guard_failures == 1
    assert len(info.retraces) == 1 and "test_guards.py:13" in info.retraces[0]
    guards = f.lower(jg.tensor([1.0, 1.0])).guards
    assert guards[0][1] == "test_guards.py:13" and guards[-1][2] is False


def test_jitgrad_log_retrace(monkeypatch, capsys):
    monkeypatch.setenv("JITGRAD_LOG", "retrace,compile")
    f = jg.grad(lambda x: doubling(x).sum(), target="reference")
    f(jg.tensor([1.0]))
    f(jg.tensor([100.0]))
    err = capsys.readouterr().err
    assert "[jitgrad retrace]" in err and "test_guards.py:13" in err
    assert "[jitgrad compile]" in err


def test_guard_on_bool_of_tensor_without_comparison():
    def f(x):
        return (x * 2).sum() if x.sum() else (x * 3).sum()

    cf = jg.grad(f, target="reference")
    assert cf(jg.tensor([1.0, -1.0])).tolist() == [3.0, 3.0]
    assert cf(jg.tensor([1.0, 1.0])).tolist() == [2.0, 2.0]
