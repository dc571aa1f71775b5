"""Compiled functions never give a stale or shared answer: tensors and Python values reached
through helpers' globals, closure cells, defaults and Module attributes are live; results share
no memory; the caller's grad mode changes nothing; arguments that are also globals stay
arguments. Each test is one reproducer of a wrong answer once given, on every target (CUDA in
the simulator where there is no GPU)."""

import importlib.util

import numpy as np
import pytest

import jitgrad as jg
from jitgrad import nn

TARGETS = ["reference", "cpu"] + (["cuda"] if importlib.util.find_spec("numba_cuda") else [])


def host(x):
    return np.asarray(x.numpy() if isinstance(x, jg.Tensor) else x)


W = jg.tensor([1.0, 2.0, 3.0])


def _helper(x):
    return x * W


@pytest.mark.parametrize("target", TARGETS)
def test_rebound_global_of_a_helper_is_live(target):
    global W
    f = jg.grad(lambda x: _helper(x).sum(), target=target)
    x = jg.ones(3)
    np.testing.assert_array_equal(host(f(x)), [1, 2, 3])
    old = W
    try:
        W = jg.tensor([10.0, 20.0, 30.0])
        np.testing.assert_array_equal(host(f(x)), [10, 20, 30])
        W.mul_(2)  # in place, after the rebinding
        np.testing.assert_array_equal(host(f(x)), [20, 40, 60])
    finally:
        W = old


class _Shifted(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", jg.tensor([1.0, 2.0, 3.0]))
        self.scale = 1.0

    def forward(self, x):
        return (((x - self.shift) ** 2) * self.scale).sum()


@pytest.mark.parametrize("target", TARGETS)
def test_reassigned_buffer_and_attribute_are_live(target):
    m = _Shifted()
    x = jg.ones(3)
    for g in (jg.grad(lambda x: m(x), target=target), jg.grad(m, target=target)):
        m.shift = jg.tensor([1.0, 2.0, 3.0])
        m.scale = 1.0
        np.testing.assert_allclose(host(g(x)), [0, -2, -4])
        m.shift = jg.tensor([0.0, 0.0, 0.0])  # replaces the registered buffer, as in torch
        assert "shift" in dict(m.named_buffers())
        np.testing.assert_allclose(host(g(x)), [2, 2, 2])
        m.shift.fill_(5.0)
        np.testing.assert_allclose(host(g(x)), [-8, -8, -8])
        m.scale = 0.5  # a Python value the trace baked in: the next call re-traces
        np.testing.assert_allclose(host(g(x)), [-4, -4, -4])


@pytest.mark.parametrize("target", TARGETS)
def test_buffers_of_a_module_argument_are_live(target):
    m = _Shifted()
    f = jg.value_and_grad(lambda m, x: m(x), argnums=1, target=target)
    x = jg.ones(3)
    np.testing.assert_allclose(host(f(m, x)[1]), [0, -2, -4])
    m.shift = jg.tensor([0.0, 0.0, 0.0])
    np.testing.assert_allclose(host(f(m, x)[1]), [2, 2, 2])


@pytest.mark.parametrize("target", TARGETS)
def test_closure_cell_and_default_are_live(target):
    def make():
        c = jg.tensor([1.0, 2.0])

        def rebind(v):
            nonlocal c
            c = v

        def fn(x, d=jg.tensor([3.0, 3.0])):
            return (x * c * d).sum()
        return fn, rebind
    fn, rebind = make()
    f = jg.grad(fn, target=target)
    x = jg.ones(2)
    np.testing.assert_allclose(host(f(x)), [3, 6])
    rebind(jg.tensor([5.0, 7.0]))
    np.testing.assert_allclose(host(f(x)), [15, 21])
    fn.__defaults__ = (jg.tensor([1.0, -1.0]),)
    np.testing.assert_allclose(host(f(x)), [5, -7])


K = 2.0


@pytest.mark.parametrize("target", TARGETS)
def test_rebound_python_global_retraces(target):
    global K
    f = jg.grad(lambda x: (x * K).sum(), target=target)
    x = jg.ones(2)
    np.testing.assert_allclose(host(f(x)), [2, 2])
    try:
        K = 3.0
        np.testing.assert_allclose(host(f(x)), [3, 3])
    finally:
        K = 2.0
    assert f.cache_info().traces == 2


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_gradients_of_two_arguments_do_not_share_memory(target):
    b, c = jg.tensor([0.1, 0.2, 0.3]), jg.tensor([0.5, 0.6, 0.7])
    f = jg.grad(lambda b, c: (b + c).sin().sum(), argnums=(0, 1), target=target)
    gb, gc = f(b, c)
    assert not np.shares_memory(gb.numpy(), gc.numpy())
    want = np.cos(b.numpy() + c.numpy())
    gb.mul_(10)
    np.testing.assert_allclose(gc.numpy(), want)
    # clip_grad_norm_ on such gradients clips to the norm asked for
    p1, p2 = jg.nn.Parameter(jg.zeros(3)), jg.nn.Parameter(jg.zeros(3))
    p1.grad, p2.grad = f(b, c)
    jg.nn.utils.clip_grad_norm_([p1, p2], 1.0)
    norm = np.sqrt((p1.grad.numpy() ** 2).sum() + (p2.grad.numpy() ** 2).sum())
    np.testing.assert_allclose(norm, 1.0, rtol=1e-6)
    # an identity-like result never aliases the argument, nor an earlier call's result
    g = jg.jit(lambda x: x.reshape(-1), target=target)
    x = jg.tensor([[1.0, 2.0]])
    r1 = g(x)
    assert not np.shares_memory(r1.numpy(), x.numpy())
    r2 = g(x)
    assert not np.shares_memory(r1.numpy(), r2.numpy())


@pytest.mark.parametrize("target", TARGETS)
def test_no_grad_at_the_call_site_changes_nothing(target):
    f = jg.grad(lambda x: (x * x).sum(), target=target)
    x = jg.tensor([1.0, 2.0])
    with jg.no_grad():
        np.testing.assert_allclose(host(f(x)), [2, 4])
    np.testing.assert_allclose(host(f(x)), [2, 4])
    # no_grad inside the function is still honoured
    h = jg.grad(lambda x: (x * x).sum() + (x.detach() * 0 + x * 3).sum() * 0 +
                _no_grad_part(x), target=target)
    np.testing.assert_allclose(host(h(x)), [2, 4])


def _no_grad_part(x):
    with jg.no_grad():
        return (x * 100).sum()


@pytest.mark.parametrize("target", TARGETS)
def test_argument_that_is_also_the_global(target):
    f = jg.value_and_grad(lambda x: (x * W).sum(), target=target)
    v, g = f(W)
    np.testing.assert_allclose([host(v)] + list(host(g)), [14, 1, 2, 3])
    v, g = f(jg.ones(3))
    np.testing.assert_allclose([host(v)] + list(host(g)), [6, 1, 2, 3])


def test_numpy_conversion_copies_as_torch():
    t = jg.tensor([1.0, 2.0])
    a = np.array(t)
    a[0] = 99
    assert t[0].item() == 1.0
    np.asarray(t)[1] = 5  # asarray shares, as torch.Tensor.__array__ does
    assert t[1].item() == 5.0
    with pytest.raises(ValueError, match="copy"):
        np.array(t, dtype=np.float64, copy=False)  # t is float32: a cast needs a copy
    assert np.shares_memory(np.array(t, copy=False), t.numpy())
    s = np.sin(t)  # a ufunc gives a tensor back, with no deprecation warning
    assert isinstance(s, jg.Tensor)


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_numpy_arrays_as_operands(target):
    t = jg.tensor([1.0, 2.0], dtype=jg.float32)
    r = t * np.ones(2)
    assert r.dtype is jg.float64  # promoted as a float64 tensor would be
    np.testing.assert_allclose((np.ones((2, 2)) @ t).numpy(), [3, 3])
    np.testing.assert_allclose((np.ones(2, dtype=np.float32) - t).numpy(), [0, -1])
    assert (t * np.array(2.0)).dtype is jg.float32  # a 0-d array promotes like a 0-d tensor
    C = np.array([2.0, 3.0])
    f = jg.grad(lambda x: (x * C).sum(), target=target)  # a closed-over array is a constant
    np.testing.assert_allclose(host(f(jg.tensor([1.0, 1.0]))), [2, 3])
    with pytest.raises(TypeError, match="float16"):
        t * np.ones(2, dtype=np.float16)


@pytest.mark.parametrize("target", TARGETS)
def test_log1p_expm1_accurate_in_float32(target):
    s = jg.tensor([1e-8, -1e-8], dtype=jg.float32)
    for out in (s.log1p(), s.expm1(),
                *jg.jit(lambda s: (s.log1p(), s.expm1()), target=target)(s)):
        got = host(out)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, [1e-8, -1e-8], rtol=1e-6)


class _Loss:
    def __init__(self):
        self.w = jg.tensor([1.0, 2.0])
        self.scale = 1.0

    def __call__(self, x):
        return (x * self.w).sum() * self.scale


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_attributes_of_a_callable_object_are_live(target):
    loss = _Loss()
    f = jg.grad(loss, target=target)
    x = jg.ones(2)
    np.testing.assert_allclose(host(f(x)), [1, 2])
    loss.w = jg.tensor([5.0, 6.0])
    np.testing.assert_allclose(host(f(x)), [5, 6])
    loss.scale = 2.0
    np.testing.assert_allclose(host(f(x)), [10, 12])


# -- state past the walk's bounds, and NumPy arrays ---------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
def test_element_of_a_big_list_replaced_between_calls(target):
    big = [jg.tensor([float(i)]) for i in range(1500)]  # past the scan's size bound
    f = jg.jit(lambda x: x * big[1234], target=target)
    x = jg.ones(1)
    for k in range(24):
        big[1234] = jg.tensor([float(k)])
        np.testing.assert_array_equal(host(f(x)), [k])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("depth", [4, 9])
def test_leaf_of_a_deeply_nested_dict_replaced_between_calls(target, depth):
    tree: dict = {}
    node = tree
    for k in range(depth - 1):
        node = node.setdefault(f"k{k}", {})
    node["leaf"] = jg.tensor([2.0])

    def leaf():
        n = tree
        for k in range(depth - 1):
            n = n[f"k{k}"]
        return n

    g = jg.grad(lambda x: (x * leaf()["leaf"]).sum(), target=target)
    x = jg.ones(1)
    for k in range(24):
        leaf()["leaf"] = jg.tensor([float(k)])
        np.testing.assert_array_equal(host(g(x)), [k])


class _Inner:
    def __init__(self, t):
        self.t = t


class _Outer:
    def __init__(self, t):
        self.inner = _Inner(t)


@pytest.mark.parametrize("target", TARGETS)
def test_tensor_in_attributes_of_attributes_and_a_namespace(target):
    import types
    obj = _Outer(jg.tensor([1.0, 2.0]))
    ns = types.SimpleNamespace(w=jg.tensor([3.0, 4.0]))  # not a class of the user's: located
    f = jg.grad(lambda x: (x * obj.inner.t * ns.w).sum(), target=target)
    x = jg.ones(2)
    np.testing.assert_allclose(host(f(x)), [3, 8])
    obj.inner.t = jg.tensor([10.0, 20.0])
    np.testing.assert_allclose(host(f(x)), [30, 80])
    obj.inner = _Inner(jg.tensor([1.0, 1.0]))
    ns.w = jg.tensor([5.0, 6.0])
    np.testing.assert_allclose(host(f(x)), [5, 6])
    assert f.cache_info().traces <= 3


TABLE = np.array([1.0, 2.0, 3.0])


def _uses_table(x):
    return (x * jg.tensor(TABLE)).sum() + (x * TABLE).sum() + (x * jg.from_numpy(TABLE)).sum()


@pytest.mark.parametrize("target", TARGETS)
def test_global_numpy_array_is_a_live_input(target):
    global TABLE
    old = TABLE.copy()
    f = jg.jit(_uses_table, target=target)
    x = jg.ones(3, dtype=jg.float64)
    try:
        for k in range(6):
            TABLE[0] = 10.0 * k  # in place
            assert host(f(x)) == pytest.approx(3 * TABLE.sum())
        TABLE = np.array([5.0, 5.0, 5.0])  # rebound
        assert host(f(x)) == pytest.approx(45.0)
        # (each change re-traces: the function might read TABLE with NumPy code too)
        assert f.cache_info().traces <= 8
    finally:
        TABLE = old


@pytest.mark.parametrize("target", TARGETS)
def test_numpy_array_read_by_numpy_code_retraces_when_it_changes(target):
    arr = np.array([1.0, 2.0])
    f = jg.jit(lambda x: x * float(arr.sum()), target=target)  # NumPy reads it at trace time
    x = jg.ones(1)
    np.testing.assert_allclose(host(f(x)), [3.0])
    np.testing.assert_allclose(host(f(x)), [3.0])
    arr[0] = 5.0
    np.testing.assert_allclose(host(f(x)), [7.0])
    assert f.cache_info().traces == 2


def test_tensor_held_where_the_walk_cannot_look_runs_eagerly_with_a_warning():
    import itertools
    src = itertools.repeat(jg.tensor([3.0]))  # an iterator: no path leads back to its tensor
    f = jg.jit(lambda x: x * next(src))
    x = jg.ones(1)
    with pytest.warns(UserWarning, match="not looked into"):
        np.testing.assert_array_equal(host(f(x)), [3.0])
    np.testing.assert_array_equal(host(f(x)), [3.0])
    assert f.cache_info().eager_fallback


def test_numbers_past_the_walk_warn_once():
    coeffs = [float(i) for i in range(2000)]
    f = jg.jit(lambda x: x * coeffs[7])
    from jitgrad.trace.implicit import LiveStateWarning
    with pytest.warns(LiveStateWarning, match="fixed when the function is traced"):
        np.testing.assert_array_equal(host(f(jg.ones(1))), [7.0])


TABLE2 = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize("target", TARGETS)
def test_numpy_array_read_by_jitgrad_and_by_numpy_code_stays_live(target):
    """The same global array read through jitgrad and by NumPy code (found by the fuzzer):
    an in-place edit must reach the value NumPy computed at trace time too."""
    def f(x):
        return (x + jg.from_numpy(TABLE2)).sum() * float(TABLE2.mean())

    g = jg.jit(f, target=target)
    x = jg.zeros(3, dtype=jg.float64)
    old = TABLE2.copy()
    try:
        for k in range(4):
            TABLE2[0] = float(k)
            want = TABLE2.sum() * TABLE2.mean()
            np.testing.assert_allclose(host(g(x)), want, rtol=1e-12)
    finally:
        TABLE2[:] = old
