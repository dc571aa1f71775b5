"""The eager engine: accumulation, graphs, modes, hooks, version counters, custom Functions."""

import numpy as np
import pytest

import jitgrad as jg


def test_long_chain_is_iterative():
    x = jg.tensor(1.0, dtype=jg.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_gradients_accumulate_into_leaves():
    x = jg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 + 3, 4 + 3])


def test_fan_out_sums_once_per_node():
    x = jg.tensor(2.0, requires_grad=True)
    y = x * x
    z = y + y * y  # dz/dx = 2x + 4x^3 = 4 + 32
    z.backward()
    assert x.grad.item() == 36.0


def test_second_backward_through_freed_graph_raises():
    x = jg.tensor(2.0, requires_grad=True)
    y = x.exp()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = jg.tensor(2.0, requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 8.0


def test_create_graph_gives_higher_order():
    x = jg.tensor(1.5, dtype=jg.float64, requires_grad=True)
    y = x.sin() * x ** 3
    (g,) = jg.autograd.grad(y, x, create_graph=True)
    (h,) = jg.autograd.grad(g, x, create_graph=True)
    (t,) = jg.autograd.grad(h, x)
    v = 1.5
    d1 = np.cos(v) * v**3 + 3 * v**2 * np.sin(v)
    d2 = -np.sin(v) * v**3 + 6 * v**2 * np.cos(v) + 6 * v * np.sin(v)
    d3 = -np.cos(v) * v**3 - 9 * v**2 * np.sin(v) + 18 * v * np.cos(v) + 6 * np.sin(v)
    np.testing.assert_allclose([g.item(), h.item(), t.item()], [d1, d2, d3], rtol=1e-12)


def test_backward_with_gradient_for_non_scalar():
    x = jg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(jg.tensor([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 0.0])


def test_autograd_grad_leaves_dot_grad_untouched_and_handles_non_leaves():
    x = jg.tensor(3.0, requires_grad=True)
    h = x * 2
    y = h * h
    gx, gh = jg.autograd.grad(y, [x, h])
    assert (gx.item(), gh.item()) == (24.0, 12.0)
    assert x.grad is None


def test_autograd_grad_unused_input():
    x = jg.tensor(1.0, requires_grad=True)
    w = jg.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused"):
        jg.autograd.grad(x * 2, [x, w])
    assert jg.autograd.grad(x * 2, [x, w], allow_unused=True)[1] is None


def test_grad_modes_as_context_managers_and_decorators():
    x = jg.tensor(1.0, requires_grad=True)
    with jg.no_grad():
        assert not (x * 2).requires_grad
        with jg.enable_grad():
            assert (x * 2).requires_grad

    @jg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with jg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert jg.is_grad_enabled()
    jg.set_grad_enabled(False)
    assert not jg.is_grad_enabled()
    jg.set_grad_enabled(True)

    @jg.set_grad_enabled(False)
    def g(t):
        return t * 2

    assert jg.is_grad_enabled() and not g(x).requires_grad


def test_detach_shares_storage_and_cuts_graph():
    x = jg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad
    assert np.shares_memory(d.numpy(), y.detach().numpy())


def test_register_hook_on_leaf_and_non_leaf():
    x = jg.tensor(2.0, requires_grad=True)
    seen = []
    y = x * 3
    y.register_hook(lambda g: seen.append(g.item()))
    x.register_hook(lambda g: g * 10)
    (y * y).backward()  # d/dy = 2y = 12, d/dx = 12 * 3 = 36, doubled by the hook x10 -> 360
    assert seen == [12.0]
    assert x.grad.item() == 360.0


def test_retain_grad():
    x = jg.tensor(2.0, requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).backward()
    assert y.grad.item() == 12.0


def test_in_place_on_saved_tensor_raises_naming_the_op():
    x = jg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    z = y * y
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*MulBackward0"):
        z.sum().backward()


def test_in_place_on_unsaved_tensor_is_fine_and_exact():
    x = jg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.mul_(y)  # y <- (2x)^2, d/dx = 8x
    y += 1
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 16.0])
    assert y._version == 2


def test_in_place_on_leaf_requiring_grad_raises():
    w = jg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)
    with jg.no_grad():
        w -= 0.5
    assert w.item() == 0.5


def test_setitem_records_gradient():
    x = jg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    y[1] = x[0] * 10
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [11.0, 0.0, 1.0])


class Cube(jg.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x ** 3 * k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x ** 2 * g * ctx.k, None


def test_custom_function():
    x = jg.tensor([1.0, 2.0], requires_grad=True)
    y = Cube.apply(x, 2.0)
    assert type(y.grad_fn).__name__ == "CubeBackward"
    assert y.grad_fn.needs_input_grad == (True, False)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(jg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # should be 2 x g

    x = jg.tensor([0.5, 1.5], dtype=jg.float64, requires_grad=True)
    with pytest.raises(jg.autograd.GradcheckError):
        jg.autograd.gradcheck(Wrong.apply, (x,))
    assert not jg.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False)


def test_detect_anomaly_names_forward_op():
    x = jg.tensor([0.0, 1.0], requires_grad=True)
    with jg.autograd.detect_anomaly():
        y = x.sqrt() * 0.0  # 0 * inf -> nan in sqrt's backward
        with pytest.raises(RuntimeError, match="SqrtBackward0.*nan") as ei:
            y.sum().backward()
    assert "test_autograd.py" in str(ei.value)


def test_profile_of_names_and_reprs():
    x = jg.tensor(2.0, requires_grad=True)
    assert repr(x) == "tensor(2., requires_grad=True)"
    assert repr(x * 3) == "tensor(6., grad_fn=<MulBackward0>)"
    assert repr(jg.tensor([1.0, 2.5], dtype=jg.float64)) == \
        "tensor([1.0000, 2.5000], dtype=jitgrad.float64)"
    assert (x * 3).is_leaf is False and x.is_leaf


# -- bad input ---------------------------------------------------------------------------------
def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        jg.ones(2, 3) @ jg.ones(4, 5)


def test_broadcast_mismatch_names_both_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\) and \(4,\)"):
        jg.ones(2, 3) + jg.ones(4)


def test_requires_grad_on_integer_tensor():
    with pytest.raises(RuntimeError, match="floating point"):
        jg.tensor([1, 2], requires_grad=True)


def test_non_scalar_backward_without_gradient():
    x = jg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="must be a scalar"):
        (x * 2).backward()


def test_gradient_of_wrong_shape():
    x = jg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(2,\).*\(3,\)"):
        (x * 2).backward(jg.ones(2))


def test_unsupported_data_to_tensor():
    with pytest.raises(TypeError, match="unsupported"):
        jg.tensor("abc")
    with pytest.raises(TypeError, match="unsupported"):
        jg.tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError):
        jg.tensor({"a": 1})
    with pytest.raises(TypeError):
        jg.tensor([1.0], dtype="complex64")


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        jg.ones(1).sum().backward()


def test_reshape_and_index_errors():
    with pytest.raises(ValueError, match="invalid for input of size 6"):
        jg.ones(2, 3).reshape(4, 2)
    with pytest.raises(IndexError, match="shape"):
        jg.ones(2, 3)[5]


def test_reflected_operators_keep_the_tensor_first_as_torch():
    a = jg.linspace(0.0, 6.0, steps=5, requires_grad=True)
    d = 2 * jg.sin(a) + 1  # the tutorial's graph
    (mul, _), (const, _) = d.grad_fn.next_functions
    assert mul.name() == "MulBackward0" and const is None
    assert mul.next_functions[0][0].name() == "SinBackward0" and mul.next_functions[1][0] is None
    d.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * np.cos(np.linspace(0.0, 6.0, 5)), rtol=1e-6)
    assert (True ^ jg.tensor([True, False])).tolist() == [False, True]
    assert (3 ^ jg.tensor([1, 2])).tolist() == [2, 1]
    assert (1 - jg.tensor([1.0, 2.0])).tolist() == [0.0, -1.0]  # non-commutative: still other - t
