"""Compiled gradients (reference backend) against eager autograd: the whole op table, random
programs, pytrees, argnums, has_aux, Modules, live closure tensors, changing shapes, dtypes."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jitgrad as jg
from jitgrad.ir import verify

from .ops.table import ROWS
from .ops.test_table import CASES, _id, make_inputs


@pytest.fixture(autouse=True)
def _verify_every_pass():
    prev = jg.config.verify
    jg.config.verify = True
    yield
    jg.config.verify = prev


def eager_value_and_grads(fn, arrays):
    xs = [jg.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*xs)
    gs = jg.autograd.grad(out, xs, allow_unused=True)
    return out.item(), [np.zeros_like(a) if g is None else g.numpy() for g, a in zip(gs, arrays)]


def weighted(row, out_shape, seed=1):
    w = jg.tensor(np.random.default_rng(seed).standard_normal(out_shape))
    return lambda *xs: (row.fn(*xs) * w).sum()


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_op_table_compiled_equals_eager(case):
    row = ROWS[case[0]]
    arrays = make_inputs(row, row.shapes[case[1]])
    out_shape = tuple(row.fn(*[jg.tensor(a) for a in arrays]).shape)
    f = weighted(row, out_shape)
    v_ref, g_ref = eager_value_and_grads(f, arrays)
    vg = jg.value_and_grad(f, argnums=tuple(range(len(arrays))), target="reference")
    v, gs = vg(*[jg.tensor(a) for a in arrays])
    np.testing.assert_allclose(v.item(), v_ref, rtol=1e-12, atol=1e-300)
    for g, r in zip(gs, g_ref):
        assert g.dtype is jg.float64
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-12, atol=1e-13)


# -- random programs ---------------------------------------------------------------------------
UNARY = [jg.sin, jg.tanh, jg.sigmoid, lambda t: t * t, lambda t: t.exp() * 0.1,
         lambda t: (t.abs() + 1).log(), lambda t: t.relu(), lambda t: t.softmax(-1),
         lambda t: -t, lambda t: (t * t + 1).sqrt(), lambda t: jg.clamp(t, -1.0, 1.0),
         lambda t: t.T.T, lambda t: t - t.mean(-1, keepdim=True)]
BINARY = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b * 0.5,
          lambda a, b: jg.maximum(a, b), lambda a, b: a / (b * b + 1), lambda a, b: a @ b.T @ b]
REDUCE = [lambda t: t.sum(-1, keepdim=True), lambda t: t.amax(0, keepdim=True),
          lambda t: t.mean(0, keepdim=True), lambda t: t.norm(dim=-1, keepdim=True)]


def build(program):
    def f(x, y):
        a, b = x, y
        for kind, i in program:
            if kind == 0:
                a = UNARY[i % len(UNARY)](a)
            elif kind == 1:
                a = BINARY[i % len(BINARY)](a, b)
            elif kind == 2:
                a = a + REDUCE[i % len(REDUCE)](a)  # reduce, then broadcast back
            else:
                a, b = b * 1.0, a
        return (a.sum() + b.sum() * 0.5) if a.shape == b.shape else a.sum() + b.sum()
    return f


programs = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 20)), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs, st.integers(0, 2**16))
def test_random_programs_compiled_equals_eager(program, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]
    f = build(program)
    v_ref, g_ref = eager_value_and_grads(f, arrays)
    v, (gx, gy) = jg.value_and_grad(f, argnums=(0, 1), target="reference")(
        *[jg.tensor(a) for a in arrays])
    np.testing.assert_allclose(v.item(), v_ref, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(gx.numpy(), g_ref[0], rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(gy.numpy(), g_ref[1], rtol=1e-12, atol=1e-12, equal_nan=True)


# -- arguments and results ---------------------------------------------------------------------
def test_pytree_arguments_and_results():
    @jg.grad
    def f(p):
        return (p["w"] * p["xs"][0]).sum() + p["xs"][1] ** 2 * p["scale"]

    p = {"w": jg.tensor([1.0, 2.0]), "xs": [jg.tensor([3.0, 4.0]), jg.tensor(5.0)],
         "scale": 2.0, "none": None}
    g = f(p)
    assert set(g) == {"w", "xs", "scale", "none"} and g["none"] is None
    assert g["w"].tolist() == [3.0, 4.0] and g["xs"][0].tolist() == [1.0, 2.0]
    assert g["xs"][1].item() == 20.0 and g["scale"].item() == 25.0


def test_numpy_arguments_keep_dtype():
    g = jg.grad(lambda x: (x * x).sum())(np.array([1.0, 2.0]))
    assert g.dtype is jg.float64 and g.tolist() == [2.0, 4.0]


def test_argnums_and_has_aux():
    def f(x, y, z):
        return (x * y * z).sum(), {"prod": x * y}

    x, y, z = jg.tensor([1.0, 2.0]), jg.tensor([3.0, 4.0]), jg.tensor([5.0, 6.0])
    (gy, gz), aux = jg.grad(f, argnums=(1, 2), has_aux=True)(x, y, z)
    assert gy.tolist() == [5.0, 12.0] and gz.tolist() == [3.0, 8.0]
    assert aux["prod"].tolist() == [3.0, 8.0]
    (v, aux2), gx = jg.value_and_grad(f, has_aux=True)(x, y, z)
    assert v.item() == 15 + 48 and gx.tolist() == [15.0, 24.0]


def test_module_gradient_is_a_dict_like_named_parameters():
    jg.manual_seed(0)
    model = jg.nn.Sequential(jg.nn.Linear(4, 5), jg.nn.Tanh(), jg.nn.Linear(5, 3)).double()
    x = jg.randn(6, 4, dtype=jg.float64)
    t = jg.tensor([0, 1, 2, 0, 1, 2])
    g = jg.grad(lambda m, x, t: jg.nn.functional.cross_entropy(m(x), t))(model, x, t)
    assert list(g) == [n for n, _ in model.named_parameters()]
    jg.nn.functional.cross_entropy(model(x), t).backward()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(g[n].numpy(), p.grad.numpy(), rtol=1e-12, atol=1e-15)



def test_parameters_swapped_in_a_module_argument_are_seen():
    # Module arguments' parameter lists are kept between calls until a registry changes;
    # direct edits of _parameters/_modules (torch style) count as changes.
    jg.manual_seed(2)
    model = jg.nn.Sequential(jg.nn.Linear(3, 2), jg.nn.Tanh()).double()
    x = jg.randn(4, 3, dtype=jg.float64)
    f = jg.value_and_grad(lambda m, x: m(x).sum())

    def check():
        v, g = f(model, x)
        model.zero_grad()
        out = model(x).sum()
        out.backward()
        assert v.item() == pytest.approx(out.item(), rel=1e-12)
        assert list(g) == [n for n, _ in model.named_parameters()]
        for n, p in model.named_parameters():
            np.testing.assert_allclose(g[n].numpy(), p.grad.numpy(), rtol=1e-12, atol=1e-15)

    check()
    model[0]._parameters["weight"] = jg.nn.Parameter(jg.randn(2, 3, dtype=jg.float64))
    check()
    model[0].bias = jg.nn.Parameter(jg.randn(2, dtype=jg.float64) + 5)
    check()
    model._modules["1"] = jg.nn.Linear(2, 1).double()
    check()
    model[0]._parameters["bias"] = None  # no bias from now on
    check()

def test_live_closure_and_module_parameters_are_read_every_call():
    jg.manual_seed(1)
    model = jg.nn.Linear(3, 1).double()
    W = jg.randn(3, 3, dtype=jg.float64)

    @jg.grad
    def f(x):
        return model(x @ W).sum()

    x = jg.randn(2, 3, dtype=jg.float64)

    def eager():
        xx = x.detach().requires_grad_()
        model(xx @ W).sum().backward()
        return xx.grad.numpy()

    np.testing.assert_allclose(f(x).numpy(), eager(), rtol=1e-12)
    with jg.no_grad():
        model.weight.mul_(3)  # an optimizer-style in-place update
        W.add_(1)
    np.testing.assert_allclose(f(x).numpy(), eager(), rtol=1e-12)
    W = W * 2  # noqa: F841  (rebinding the closure name to a new tensor)
    np.testing.assert_allclose(f(x).numpy(), eager(), rtol=1e-12)
    assert f.cache_info().traces == 1


def test_shapes_changed_between_calls_retrace_with_reason():
    f = jg.grad(lambda x: (x.sin() * x).sum())
    for n in (3, 4, 3):
        x = np.linspace(-1, 1, n)
        np.testing.assert_allclose(f(jg.tensor(x)).numpy(), np.sin(x) + x * np.cos(x), rtol=1e-12)
    info = f.cache_info()
    assert (info.traces, info.hits, info.misses) == (2, 1, 2)
    assert info.retraces == ("new signature: input 0 was f64[3], now f64[4]",)


def test_float32_preserved_end_to_end():
    f = jg.value_and_grad(lambda x, w: jg.tanh(x @ w).sum(), argnums=(0, 1))
    v, (gx, gw) = f(jg.ones(2, 3), jg.ones(3, 4))
    assert v.dtype is gx.dtype is gw.dtype is jg.float32
    lowered = f.lower(jg.ones(2, 3), jg.ones(3, 4))
    assert "f64" not in lowered.as_text("optimized")


def test_jit_returns_forward_values():
    @jg.jit
    def f(x, n):
        return {"y": x * n, "z": (x.exp(), x.sum())}

    out = f(jg.tensor([0.0, 1.0]), 3)
    assert out["y"].tolist() == [0.0, 3.0] and out["z"][1].item() == 1.0
    assert not out["y"].requires_grad


def test_static_scalars_are_part_of_the_key():
    f = jg.grad(lambda x, k: (x ** k).sum())
    assert f(jg.tensor([2.0]), 2).tolist() == [4.0]
    assert f(jg.tensor([2.0]), 3).tolist() == [12.0]
    assert f.cache_info().traces == 2


def test_no_grad_and_detach_inside_compiled_function():
    @jg.grad
    def f(x):
        with jg.no_grad():
            scale = x.sum()
        return (x * scale).sum() + (x * x.detach()).sum()

    x = jg.tensor([1.0, 2.0])
    assert f(x).tolist() == [3.0 + 1.0, 3.0 + 2.0]
    assert "stop_gradient" in f.lower(x).as_text("forward")


def test_function_without_dependence_on_input_has_zero_gradient():
    g = jg.grad(lambda x, y: (y * 2).sum())(jg.ones(3), jg.ones(2))
    assert g.tolist() == [0.0, 0.0, 0.0]


def test_outputs_never_alias_inputs():
    x = jg.tensor([1.0, 2.0])
    y = jg.jit(lambda t: t)(x)
    y.add_(1)
    assert x.tolist() == [1.0, 2.0]


def test_lower_stages_kernels_and_verifier():
    f = jg.grad(lambda x: (x * 2).exp().sum(), target="reference")
    lw = f.lower(jg.ones(3))
    for stage in ("forward", "adjoint", "optimized"):
        verify(getattr(lw, stage))
        assert lw.as_text(stage).startswith("{ lambda")
    assert "reference backend" in lw.as_text("kernel")
    assert lw.kernels == [] and lw.guards == []
    with pytest.raises(ValueError, match="unknown stage"):
        lw.as_text("bogus")


# -- bad input ---------------------------------------------------------------------------------
def test_unsupported_argument_type_names_the_argument():
    with pytest.raises(TypeError, match=r"argument 1 \('label'\)"):
        jg.grad(lambda x, label: x.sum())(jg.ones(2), "cat")
    from fractions import Fraction
    # Another library's type is named with its module (another "Tensor" must not read as ours).
    with pytest.raises(TypeError, match=r"has type fractions\.Fraction, which jitgrad"):
        jg.jit(lambda x: x)(Fraction(1, 2))


def test_grad_of_non_scalar_output():
    with pytest.raises(ValueError, match="must be a scalar"):
        jg.grad(lambda x: x * 2)(jg.ones(3))


def test_shape_mismatch_names_shapes_and_user_line():
    def f(x):
        return (x @ jg.ones(4, 2)).sum()

    with pytest.raises(ValueError, match=r"\(3,\) and \(4, 2\).*test_compiled.py:\d+"):
        jg.grad(f)(jg.ones(3))


def test_argnums_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        jg.grad(lambda x: x.sum(), argnums=1)
    with pytest.raises(ValueError, match="out of range"):
        jg.grad(lambda *xs: xs[0].sum(), argnums=2)(jg.ones(1))


def test_function_returning_nothing():
    def f(x):
        x.sum()

    with pytest.raises(TypeError, match="returned None"):
        jg.grad(f)(jg.ones(2))


def test_numpy_on_a_tracer_is_an_error_that_says_what_to_do():
    with pytest.raises(jg.TraceError, match="jitgrad's own ops"):
        jg.grad(lambda x: jg.tensor(np.exp(x)).sum())(jg.ones(2))


def test_integer_argument_cannot_be_differentiated():
    with pytest.raises(TypeError, match="int64"):
        jg.grad(lambda x: x.sum().float())(jg.tensor([1, 2]))


def test_in_place_on_an_input_is_refused():
    def f(x):
        x += 1
        return x.sum()

    with pytest.raises(jg.TraceError, match="in place"):
        jg.grad(f)(jg.ones(2))


def test_higher_order_compiled_gradients():
    f = lambda x: x.sin() * x ** 3  # noqa: E731
    v = 1.5
    x = jg.tensor(v, dtype=jg.float64)
    d2 = -np.sin(v) * v**3 + 6 * v**2 * np.cos(v) + 6 * v * np.sin(v)
    d3 = -np.cos(v) * v**3 - 9 * v**2 * np.sin(v) + 18 * v * np.cos(v) + 6 * np.sin(v)
    np.testing.assert_allclose(jg.grad(jg.grad(f))(x).item(), d2, rtol=1e-12)
    np.testing.assert_allclose(jg.grad(jg.grad(jg.grad(f)))(x).item(), d3, rtol=1e-12)


def test_compiled_gradient_closing_over_an_outer_traced_value():
    def f(x, y):
        return jg.grad(lambda t: (t * y).sin().sum())(x).sum()

    x, y = np.array([1.0, 2.0]), np.array([0.5, 0.1])
    gx, gy = jg.grad(f, argnums=(0, 1))(jg.tensor(x), jg.tensor(y))
    np.testing.assert_allclose(gx.numpy(), -y * y * np.sin(x * y), rtol=1e-12)
    np.testing.assert_allclose(gy.numpy(), np.cos(x * y) - x * y * np.sin(x * y), rtol=1e-12)


def test_simplify_cancels_transposes_and_transposes_products():
    f = jg.grad(lambda x, w: jg.tanh(x @ w.T).sum(), argnums=1, target="reference")
    rng = np.random.default_rng(4)
    x, w = jg.tensor(rng.standard_normal((5, 3))), jg.tensor(rng.standard_normal((4, 3)))
    opt = f.lower(x, w).optimized
    made_by = {id(e.out): e.prim.name for e in opt.eqns if e.out is not None}
    for e in opt.eqns:
        if e.prim.name == "permute":
            assert made_by.get(id(e.inputs[0])) not in ("permute", "matmul")
    wt = w.detach().requires_grad_()
    jg.tanh(x @ wt.T).sum().backward()
    np.testing.assert_allclose(f(x, w).numpy(), wt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("target", ["cpu", "reference"])
def test_results_never_alias_the_arguments_even_through_views(target):
    f = jg.jit(lambda x: (x.reshape(6), x.expand(2, 2, 3), x.t(), x[0], x.detach(), x),
               target=target)
    t = jg.ones(2, 3)
    outs = f(t)
    t.add_(1)  # an in-place change to the argument must not show through any result
    for o in outs:
        assert np.all(o.numpy() == 1.0)


_SCALE = None  # a global the function below reads: rebinding it to a tensor changes the trace


def _scaled(x, y):
    s = _SCALE if _SCALE is not None else 1.0
    return (x * y * s).sum() if x.sum() > 0 else (x - y).sum() * 3


def test_steady_state_fast_path_sees_every_change():
    # The last plain call's whole path is one generated function that checks argument types,
    # shapes and dtypes, guards, and closure/global tensors itself; each change must reach the
    # general path.
    global _SCALE
    f = jg.value_and_grad(_scaled, argnums=(0, 1))
    ref = jg.value_and_grad(_scaled, argnums=(0, 1), target="reference")

    def check(x, y):
        (v, (gx, gy)), (rv, (rgx, rgy)) = f(x, y), ref(x, y)
        assert v.dtype is rv.dtype and gx.dtype is rgx.dtype
        np.testing.assert_allclose(v.numpy(), rv.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gx.numpy(), rgx.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gy.numpy(), rgy.numpy(), rtol=1e-12)

    pos, neg = np.array([1.0, 2.0, 3.0]), np.array([-1.0, -2.0, 0.5])
    y = jg.tensor([0.5, -1.5, 2.0])
    for _ in range(2):
        check(jg.tensor(pos), y)                    # steady
    check(jg.tensor(pos.astype(np.float32)), y.float())   # dtype
    check(jg.tensor(np.ones((2, 3))), jg.tensor(np.ones((2, 3))))  # shape
    check(jg.nn.Parameter(jg.tensor(pos)), y)       # a Parameter argument
    check(jg.tensor(neg), y)                        # a guard fails: a child trace
    check(jg.tensor(pos), y)                        # and the tree is walked from then on
    _SCALE = jg.tensor(2.0)
    try:
        check(jg.tensor(pos), y)                    # a global now holds a tensor
    finally:
        _SCALE = None
    check(jg.tensor(pos), y)
    assert f.cache_info().traces >= 5


class _Cube(jg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x ** 2 * g


class _StraightThroughClamp(jg.autograd.Function):
    """Its gradient is 1 everywhere: differentiating forward instead would give 0 outside."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.scale = 2.0  # a plain attribute
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.scale / 2.0, None, None


class _ScaleAndSin(jg.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        ctx.w_again = w  # a tensor kept as an attribute
        return x * w, x.sin()

    @staticmethod
    def backward(ctx, ga, gb):
        x, w = ctx.saved_tensors
        return ga * ctx.w_again + gb * x.cos(), (ga * x).sum(0)


def _uses_functions(x, w):
    a, b = _ScaleAndSin.apply(x, w)
    return _Cube.apply(a).sum() + _StraightThroughClamp.apply(b * 3, -0.5, 0.5).sum()


@pytest.mark.parametrize("target", ["cpu", "reference"])
def test_custom_functions_compile_with_their_own_backward(target):
    f = jg.value_and_grad(_uses_functions, argnums=(0, 1), target=target)
    for seed in (0, 1):  # a second call with new values: saved tensors are read per call
        rng = np.random.default_rng(seed)
        xn, wn = rng.standard_normal((4, 3)), rng.standard_normal(3)
        v, (gx, gw) = f(jg.tensor(xn), jg.tensor(wn))
        a = xn * wn
        want_v = (a ** 3).sum() + np.clip(3 * np.sin(xn), -0.5, 0.5).sum()
        da = 3 * a ** 2                      # Cube's rule
        db = 3.0 * np.ones_like(xn)          # the straight-through rule, not clamp's derivative
        np.testing.assert_allclose(v.item(), want_v, rtol=1e-12)
        np.testing.assert_allclose(gx.numpy(), da * wn + db * np.cos(xn), rtol=1e-12)
        np.testing.assert_allclose(gw.numpy(), (da * xn).sum(0), rtol=1e-12)
    assert f.cache_info().traces == 1


def test_custom_function_backward_that_reads_values_is_a_clear_error():
    class Peek(jg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2 if float(x.sum()) > 0 else g

    with pytest.raises(jg.TraceError, match="VJP rule must not branch on data"):
        jg.grad(lambda x: Peek.apply(x).sum())(jg.tensor([1.0, 2.0]))
    # Eagerly it is fine.
    x = jg.tensor([1.0, 2.0], requires_grad=True)
    Peek.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_custom_function_non_differentiable_output_and_jit():
    class ArgAndMax(jg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            i = x.argmax()
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(x)
            return x.max(), i

        @staticmethod
        def backward(ctx, g, gi):
            (x,) = ctx.saved_tensors
            return g * (x == x.max()).to(x.dtype)

    def f(x):
        m, i = ArgAndMax.apply(x)
        return m * 2 + i.to(x.dtype)

    x = jg.tensor([0.5, 3.0, -1.0], dtype=jg.float64)
    v, g = jg.value_and_grad(f)(x)
    assert v.item() == 7.0 and g.tolist() == [0.0, 2.0, 0.0]
    assert jg.jit(f)(x).item() == 7.0


def test_custom_function_second_order():
    g1 = jg.grad(lambda x: _Cube.apply(x).sum())
    g2 = jg.grad(lambda x: g1(x).sum())
    x = jg.tensor([1.0, -2.0, 0.5], dtype=jg.float64)
    np.testing.assert_allclose(g1(x).numpy(), 3 * x.numpy() ** 2, rtol=1e-12)
    np.testing.assert_allclose(g2(x).numpy(), 6 * x.numpy(), rtol=1e-12)


def test_custom_function_gradient_of_the_wrong_shape_is_named():
    class Bad(jg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum().reshape(1).expand(5)

    msg = r"BadBackward returned an invalid gradient at index 0: got shape \[5\], expected a " \
          r"shape compatible with \[2\]"
    with pytest.raises(RuntimeError, match=msg):
        jg.grad(lambda x: Bad.apply(x).sum())(jg.tensor([1.0, 2.0]))
    x = jg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=msg):
        Bad.apply(x).sum().backward()


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_python_number_arguments_take_the_fast_path(target):
    """Differentiated floats are inputs (one trace for any value); static numbers are part of
    the trace (a new value re-traces); mixing them with tensors, or switching to a tensor,
    gives the same answers as the general path."""
    f = jg.value_and_grad(lambda x, y: x * y + y ** 2, argnums=(0, 1), target=target)
    for x, y in ((2.0, 3.0), (2.5, -1.0), (2.0, 3.0)):
        v, (dx, dy) = f(x, y)
        assert (v.item(), dx.item(), dy.item()) == (x * y + y * y, y, x + 2 * y)
        assert dx.dtype is jg.float32
    assert f.cache_info().traces == 1
    v, (dx, dy) = f(jg.tensor(2.0), 3.0)
    assert (v.item(), dx.item(), dy.item()) == (15.0, 3.0, 8.0)
    h = jg.grad(lambda x, k, flag: (x * k).sum() if flag else (x / k).sum(), target=target)
    x = jg.ones(2, dtype=jg.float64)
    np.testing.assert_allclose(h(x, 3.0, True).numpy(), [3, 3])
    np.testing.assert_allclose(h(x, 4, True).numpy(), [4, 4])  # another type: another trace
    np.testing.assert_allclose(h(x, 4.0, False).numpy(), [0.25, 0.25])
    np.testing.assert_allclose(h(x, 3.0, True).numpy(), [3, 3])
    assert h.cache_info().traces == 3


def test_numpy_arrays_and_scalars_take_the_steady_path():
    """NumPy arrays and scalars are tensors of their dtype, as in the general path, and their
    calls run through one generated function (no flattening)."""
    f = jg.value_and_grad(lambda x, y: (x * y).sum() + y ** 2, argnums=(0, 1),
                               target="numba-cpu")
    for x, y in [(np.arange(3.0), np.float64(2.0)), (np.arange(3.0) * 2, np.float64(3.0)),
                 (np.arange(3.0, dtype=np.float32), np.float32(2.0))]:
        v, (gx, gy) = f(x, y)
        assert v.dtype.np == x.dtype and gx.dtype.np == x.dtype and gy.dtype.np == x.dtype
        np.testing.assert_allclose(v.item(), (x * y).sum() + y ** 2, rtol=1e-6)
        np.testing.assert_allclose(gx.numpy(), np.full(3, y), rtol=1e-6)
        np.testing.assert_allclose(gy.item(), x.sum() + 2 * y, rtol=1e-6)
        assert not np.shares_memory(gx.numpy(), x)
    assert f.cache_info().traces == 2  # float64 and float32
    hits = f.cache_info().hits
    assert f._rt._last_steady is not None
    f(np.arange(3.0), np.float64(5.0))
    assert f.cache_info().hits == hits + 1
    assert f.lower(np.arange(3.0), np.float64(2.0)).as_text("call").count("is not ndarray") == 1


SCALE = jg.tensor([1.0, 2.0, 3.0], dtype=jg.float64)


def test_a_closure_or_global_tensor_takes_the_steady_path_and_stays_live():
    """The generated call function reads the tensors of globals itself: their new values,
    rebinding and in-place updates are seen; a new shape or a new tensor count re-traces."""
    global SCALE
    f = jg.grad(lambda x: (x * SCALE).sum() + (x * x).sum(), target="numba-cpu")
    x = jg.tensor([1.0, 1.0, 1.0], dtype=jg.float64)
    np.testing.assert_allclose(f(x).numpy(), [3.0, 4.0, 5.0])
    f(x)
    assert f._rt._last_steady is not None
    SCALE = jg.tensor([10.0, 20.0, 30.0], dtype=jg.float64)  # rebound
    np.testing.assert_allclose(f(x).numpy(), [12.0, 22.0, 32.0])
    SCALE.mul_(0.5)  # updated in place
    np.testing.assert_allclose(f(x).numpy(), [7.0, 12.0, 17.0])
    SCALE = jg.tensor(2.0, dtype=jg.float64)  # another shape: a new signature
    np.testing.assert_allclose(f(x).numpy(), [4.0, 4.0, 4.0])
    assert f.cache_info().traces == 2
    SCALE = jg.tensor([1.0, 2.0, 3.0], dtype=jg.float64)


def test_a_numpy_scalar_before_a_tensor_checks_that_tensors_shape():
    """The steady function checked the tensor after a NumPy scalar against the scalar's shape,
    so it never matched and such calls always took the general path."""
    f = jg.value_and_grad(lambda s, t: (t * s).sum(), argnums=1, target="numba-cpu")
    for _ in range(2):
        f(np.float64(2.0), jg.tensor([1.0, 2.0, 3.0], dtype=jg.float64))
    assert f._rt._last_steady is not None
    v, g = f(np.float64(3.0), jg.tensor(2.0, dtype=jg.float64))
    assert v.item() == 6.0 and g.shape == () and g.item() == 3.0
