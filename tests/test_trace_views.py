"""In-place writes through views inside compiled functions (``jitgrad/trace/views.py``): a write
through ``c[0]``, ``c.t()``, ``c.view(-1)`` or ``c.diagonal()`` reaches ``c``, and a view taken
before the write reads the new values, as eagerly. Before, a compiled function silently
dropped such writes. References: the same program run eagerly, and PyTorch for gradients."""

import numpy as np
import pytest

import jitgrad


def _program(lib):
    def f(x):
        c = x * 2
        row = c[2]  # taken before the writes: must see them
        c[0].mul_(x[1])
        c.t()[1].add_(x[0] ** 2)
        c.diagonal().mul_(3.0)
        c.view(-1)[4:6].sub_(0.5)
        c.unsqueeze(0)[0, 2].div_(4.0)
        return (c * c).sum() + (row * x[2]).sum()
    return f


X = np.random.default_rng(0).normal(size=(3, 3))
F = jitgrad.jit(_program(jitgrad))


def test_compiled_writes_through_views_match_eager():
    for scale in (1.0, -2.0):  # a second call runs the compiled code, not the trace
        x = jitgrad.tensor(X * scale)
        want = float(_program(jitgrad)(x))
        np.testing.assert_allclose(float(F(x)), want, rtol=1e-12)


def test_compiled_gradient_through_views_matches_torch():
    torch = pytest.importorskip("torch")
    xt = torch.tensor(X, requires_grad=True)
    _program(torch)(xt).backward()
    got = jitgrad.grad(_program(jitgrad))(jitgrad.tensor(X))
    np.testing.assert_allclose(got.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_a_view_returned_after_its_base_changed_is_fresh():
    def f(x):
        c = x + 0
        first = c[0]
        c.add_(1.0)
        return first, c.diagonal()

    a, d = jitgrad.jit(f)(jitgrad.tensor(X))
    np.testing.assert_allclose(a.numpy(), X[0] + 1.0, rtol=1e-12)
    np.testing.assert_allclose(d.numpy(), np.diagonal(X) + 1.0, rtol=1e-12)


def test_a_write_through_a_view_of_an_input_is_refused():
    with pytest.raises(jitgrad.errors.TraceError, match="cannot modify its inputs"):
        jitgrad.jit(lambda x: x[0].add_(1.0).sum())(jitgrad.tensor(X))


def test_a_write_into_an_expanded_view_is_refused_as_eagerly():
    def f(x):
        c = (x + 0)[:1].expand(3, 3)
        c.add_(1.0)
        return c.sum()

    with pytest.raises(RuntimeError, match="expanded view"):
        f(jitgrad.tensor(X))
    with pytest.raises(RuntimeError, match="expanded view"):
        jitgrad.jit(f)(jitgrad.tensor(X))
