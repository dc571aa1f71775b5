"""jitgrad/ops/pointwise_more.py against torch: values, dtypes and gradients at the edges op_db's
samples miss (signed zeros, infinities, NaN, subnormals, integer extremes, 0-d and empty
tensors), keyword forms, in-place methods, and the errors for bad input."""

import math

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch")

EDGES = [0.0, -0.0, 1.5, -3.25, 8.0, 0.75, 1e-310, -5e-324, 1.7e308, math.inf, -math.inf,
         math.nan]


def _pair(data, dtype="float64", requires_grad=False):
    with np.errstate(over="ignore"):  # (1.7e308 is inf in float32, as intended)
        arr = np.asarray(data, dtype=dtype)
    return (jg.tensor(arr, requires_grad=requires_grad),
            torch.tensor(arr, requires_grad=requires_grad))


def _same(got, want, rtol=1e-12, atol=0.0):
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], (got.dtype, want.dtype)
    assert tuple(got.shape) == tuple(want.shape)
    # (force: torch's gradient of a piecewise-constant op is a lazy ZeroTensor)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(force=True), rtol=rtol,
                               atol=atol, equal_nan=True)


def _bits(t) -> np.ndarray:
    a = t.detach().numpy()
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32)


# -- floats: values and gradients --------------------------------------------------------------
@pytest.mark.parametrize("name", ["cosh", "sinh", "tan", "deg2rad", "rad2deg", "angle", "sgn"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_values_and_gradients(name, dtype):
    data = np.random.default_rng(0).uniform(-1.4, 1.4, size=(3, 4))
    x, tx = _pair(data, dtype, requires_grad=True)
    out, tout = getattr(jg, name)(x), getattr(torch, name)(tx)
    _same(out, tout, rtol=2e-6 if dtype == "float32" else 1e-13)
    out.backward(jg.ones_like(out))
    tout.backward(torch.ones_like(tout))
    _same(x.grad, tx.grad, rtol=2e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("name", ["cosh", "sinh", "tan", "deg2rad", "angle", "sgn", "signbit",
                                  "isposinf", "isneginf", "isreal", "nan_to_num"])
def test_unary_edges_0d_empty_and_integers(name):
    # (torch's sgn of NaN is 0, its sign's too; jitgrad's sign keeps NaN)
    edges = [v for v in EDGES if name != "sgn" or not math.isnan(v)]
    for data in (edges, 2.5, np.zeros((0, 3))):
        x, tx = _pair(data)
        _same(getattr(jg, name)(x), getattr(torch, name)(tx))
    x, tx = _pair([-3, 0, 7], "int64")
    # float32 results within an ulp: jitgrad's computed in float64 and rounded once
    _same(getattr(jg, name)(x), getattr(torch, name)(tx), rtol=2e-7)
    # methods, as torch's
    x, tx = _pair(edges, "float32")
    _same(getattr(x, name)(), getattr(tx, name)(), rtol=3e-7)


def test_signbit_sees_signed_zeros_and_nan():
    x, tx = _pair([-0.0, 0.0, -math.nan, math.nan, -math.inf, 2.0])
    assert jg.signbit(x).tolist() == torch.signbit(tx).tolist() == [True, False, True, False,
                                                                     True, False]
    assert not jg.signbit(x).requires_grad


def test_nan_to_num_keywords_and_gradient():
    x, tx = _pair([math.nan, math.inf, -math.inf, 2.0], "float32", requires_grad=True)
    out = jg.nan_to_num(x, nan=1.0, posinf=9.0, neginf=-9.0)
    tout = torch.nan_to_num(tx, nan=1.0, posinf=9.0, neginf=-9.0)
    _same(out, tout)
    _same(jg.nan_to_num(x, posinf=5.0), torch.nan_to_num(tx, posinf=5.0))
    out.sum().backward()
    tout.sum().backward()
    _same(x.grad, tx.grad)
    y = jg.tensor([math.nan, 1.0])
    assert y.nan_to_num_(nan=-1.0) is y and y.tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("name", ["copysign", "hypot", "fmod", "nextafter", "logaddexp",
                                  "logaddexp2", "fmax", "fmin", "ldexp", "float_power",
                                  "igamma", "igammac"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_values_and_gradients(name, dtype):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.2, 3.0, size=(3, 4)), rng.uniform(0.5, 2.0, size=(4,))
    if name not in ("igamma", "igammac", "float_power"):
        a = a * rng.choice([-1, 1], size=a.shape)
    if name == "ldexp":
        b = np.round(b * 4) - 3
    (x, tx), (y, ty) = _pair(a, dtype, True), _pair(b, dtype, name not in ("igamma", "igammac"))
    if name in ("igamma", "igammac"):
        (x, tx), (y, ty) = (y, ty), (x, tx)  # differentiable in 'other' only
    out, tout = getattr(jg, name)(x, y), getattr(torch, name)(tx, ty)
    tol = 3e-6 if dtype == "float32" else 1e-12
    _same(out, tout, rtol=tol, atol=tol if name in ("igamma", "igammac") else 0.0)
    cot = rng.normal(size=tuple(out.shape))
    out.backward(jg.tensor(cot, dtype=out.dtype))
    tout.backward(torch.tensor(cot, dtype=tout.dtype))
    for g, tg in ((x.grad, tx.grad), (y.grad, ty.grad)):
        if tg is not None:
            _same(g, tg, rtol=10 * tol, atol=10 * tol)


def test_binary_edges_match_torch_bit_for_bit():
    a = np.array(EDGES)
    x, tx = _pair(a[:, None])
    y, ty = _pair(a[None, :])
    for name in ("copysign", "hypot", "fmod", "nextafter", "fmax", "fmin"):
        got, want = getattr(jg, name)(x, y), getattr(torch, name)(tx, ty)
        keep = np.ones(tuple(want.shape), bool)
        if name == "fmod":
            # torch's fmod gives NaN where x / y overflows (1.7e308 / 0.75); C's fmod, as
            # jitgrad's, the exact remainder there.
            with np.errstate(all="ignore"):
                keep = np.isfinite(a[:, None] / a[None, :]) | ~np.isfinite(a[:, None])
        nan = np.isnan(want.numpy())
        assert (np.isnan(got.numpy()) == nan)[keep].all(), name
        assert (_bits(got) == _bits(want))[keep & ~nan].all(), name
    for name in ("logaddexp", "logaddexp2"):
        _same(getattr(jg, name)(x, y), getattr(torch, name)(tx, ty), rtol=1e-15)


def test_copysign_gradient_is_zero_at_zero_and_for_the_sign():
    x, tx = _pair([0.0, -0.0, 2.0, -3.0], requires_grad=True)
    y, ty = _pair([-1.0, 1.0, -0.0, 2.0], requires_grad=True)
    jg.copysign(x, y).sum().backward()
    torch.copysign(tx, ty).sum().backward()
    _same(x.grad, tx.grad)
    _same(y.grad, ty.grad)


def test_fmax_fmin_ties_and_nan_route_the_gradient_as_torch():
    """The gradient goes to the operand the result is (the first on a tie, and where both are
    NaN), as torch up to 2.13. Torch 2.14 gives 1 to both operands where either is NaN (a
    gradient of 2 for a slope of 1) and 0.5 to each on a tie: torch is compared away from those."""
    a, b = [1.0, 2.0, math.nan, 3.0, math.nan], [1.0, math.nan, 4.0, 5.0, math.nan]
    want = {"fmax": ([1, 1, 0, 0, 1], [0, 0, 1, 1, 0]), "fmin": ([1, 1, 0, 1, 1], [0, 0, 1, 0, 0])}
    plain = np.array([3])  # neither a NaN nor a tie
    for name in ("fmax", "fmin"):
        (x, tx), (y, ty) = _pair(a, requires_grad=True), _pair(b, requires_grad=True)
        out, tout = getattr(jg, name)(x, y), getattr(torch, name)(tx, ty)
        _same(out, tout)
        out.sum().backward()
        tout.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), want[name][0])
        np.testing.assert_array_equal(y.grad.numpy(), want[name][1])
        np.testing.assert_array_equal(x.grad.numpy()[plain], tx.grad.numpy()[plain])
        np.testing.assert_array_equal(y.grad.numpy()[plain], ty.grad.numpy()[plain])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_frexp_is_exact_at_the_edges(dtype):
    data = EDGES + [2.0 ** k for k in range(-10, 11)] + [np.nextafter(1.0, 0.0), 3e-39, 3e38]
    x, tx = _pair(data, dtype)
    m, e = jg.frexp(x)
    tm, te = torch.frexp(tx)
    assert e.dtype is jg.int32
    assert e.tolist() == te.tolist()
    assert (_bits(m)[~np.isnan(tm.numpy())] == _bits(tm)[~np.isnan(tm.numpy())]).all()
    assert jg.frexp(x).mantissa is not None and x.frexp().exponent.tolist() == te.tolist()


def test_frexp_gradient_and_errors():
    x, tx = _pair([3.0, 0.5, -10.0], requires_grad=True)
    jg.frexp(x).mantissa.sum().backward()
    torch.frexp(tx).mantissa.sum().backward()
    _same(x.grad, tx.grad)
    with pytest.raises(RuntimeError, match="floating-point"):
        jg.frexp(jg.tensor([1, 2]))


def test_dtypes_of_mixed_and_integer_operands():
    i, ti = _pair([1, -2, 3], "int64")
    f, tf = _pair([0.5, 2.0, -1.0], "float32")
    d, td = _pair([0.5, 2.0, -1.0], "float64")
    for name in ("copysign", "ldexp", "float_power", "fmax", "fmin", "fmod"):
        for a, b, ta, tb in ((i, i, ti, ti), (i, f, ti, tf), (f, d, tf, td), (d, 2, td, 2)):
            if name in ("ldexp", "fmax", "fmin") and not isinstance(b, jg.Tensor):
                continue  # (torch's take tensors only)
            _same(getattr(jg, name)(a, b), getattr(torch, name)(ta, tb), rtol=1e-6)
    _same(jg.deg2rad(i), torch.deg2rad(ti), rtol=1e-6)
    _same(jg.float_power(2, d), torch.float_power(2, td))
    _same(jg.hypot(f, d), torch.hypot(tf, td))


def test_igamma_is_not_differentiable_in_the_shape():
    a = jg.tensor([1.0, 2.0], requires_grad=True)
    out = jg.igamma(a, jg.tensor([1.0, 3.0]))
    with pytest.raises(NotImplementedError, match="igamma"):
        out.sum().backward()


# -- integers ------------------------------------------------------------------------------------
def test_gcd_lcm_signs_zeros_and_methods():
    a, ta = _pair([[-4], [0], [6], [-7], [12]], "int64")
    b, tb = _pair([6, 0, -9, 7, -1], "int64")
    _same(jg.gcd(a, b), torch.gcd(ta, tb))
    _same(jg.lcm(a, b), torch.lcm(ta, tb))
    _same(a.gcd(b), ta.gcd(tb))
    c, tc = _pair([12, -18, 0], "int32")
    _same(c.lcm_(jg.tensor(8, dtype=jg.int32)), tc.lcm_(torch.tensor(8, dtype=torch.int32)))


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8"])
def test_shifts_wrap_and_saturate_as_torch(dtype):
    info = np.iinfo(dtype)
    vals = np.array([info.min, -3, -1, 0, 1, 5, info.max], dtype=dtype if info.min < 0 else "int64")
    vals = vals[(vals >= info.min) & (vals <= info.max)].astype(dtype)
    shifts = np.arange(0, 8 * info.bits // 8 + 3).astype(dtype)
    x, tx = _pair(vals[:, None], dtype)
    s, ts = _pair(shifts[None, :], dtype)
    _same(jg.bitwise_left_shift(x, s), torch.bitwise_left_shift(tx, ts))
    _same(jg.bitwise_right_shift(x, s), torch.bitwise_right_shift(tx, ts))
    _same(x << 3, tx << 3)
    _same(x >> 2, tx >> 2)


def test_negative_shift_amounts_and_inplace_operators():
    x, tx = _pair([-3, 5, 7], "int64")
    s, ts = _pair([-1, -2, -70], "int64")
    _same(jg.bitwise_left_shift(x, s), torch.bitwise_left_shift(tx, ts))
    _same(jg.bitwise_right_shift(x, s), torch.bitwise_right_shift(tx, ts))
    y = x.clone()
    y <<= 2
    y >>= 1
    ty = tx.clone()
    ty <<= 2
    ty >>= 1
    _same(y, ty)
    _same(1 << s.abs(), 1 << ts.abs())


def test_bitwise_ops_on_ints_and_bools():
    a, ta = _pair([12, -1, 0], "int64")
    b, tb = _pair([10, 7, 3], "int64")
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        _same(getattr(jg, name)(a, b), getattr(torch, name)(ta, tb))
        _same(getattr(jg, name)(a, 6), getattr(torch, name)(ta, 6))
        _same(getattr(a, name)(b), getattr(ta, name)(tb))
    p, tp = _pair([True, False], "bool")
    _same(jg.bitwise_xor(p, True), torch.bitwise_xor(tp, True))
    _same(jg.bitwise_not(a), torch.bitwise_not(ta))
    _same(jg.bitwise_not(p), torch.bitwise_not(tp))
    c = a.clone()
    c.bitwise_and_(b)
    _same(c, ta & tb)


@pytest.mark.parametrize("call", [
    lambda m: m.bitwise_and(m.tensor([1.0]), m.tensor([2.0])),
    lambda m: m.bitwise_not(m.tensor([1.0])),
    lambda m: m.bitwise_left_shift(m.tensor([1.0]), 1),
    lambda m: m.gcd(m.tensor([1.0]), m.tensor([2.0])),
    lambda m: m.hypot(m.tensor([1]), m.tensor([2])),
    lambda m: m.logaddexp(m.tensor([1]), m.tensor([2])),
    lambda m: m.nextafter(m.tensor([1]), m.tensor([2])),
    lambda m: m.igamma(m.tensor([1]), m.tensor([2])),
    lambda m: m.fmod(m.tensor([1]), 0),
    lambda m: m.frexp(m.tensor([1])),
    lambda m: m.heaviside(m.tensor([1.0]), m.tensor([1.0], dtype=m.float64)),
    lambda m: m.lerp(m.tensor([1.0]), m.tensor([2.0], dtype=m.float64), 0.5),
    lambda m: m.lerp(m.tensor([1]), m.tensor([2]), 0.5),
    lambda m: m.addcdiv(m.tensor([1]), m.tensor([2]), m.tensor([3])),
    lambda m: m.negative(m.tensor([True])),
    lambda m: m.positive(m.tensor([True])),
    lambda m: m.tensor([1.0]).float_power_(2),
])
def test_bad_input_raises_as_torch_does(call):
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(Exception) as got:
        call(jg)
    assert isinstance(got.value, (type(want.value), RuntimeError, TypeError))
    assert str(got.value)


# -- arithmetic, keywords, in place ------------------------------------------------------------
def test_lerp_addcmul_addcdiv_rsub_with_keywords_and_gradients():
    rng = np.random.default_rng(2)
    (a, ta), (b, tb) = (_pair(rng.normal(size=(2, 3)), requires_grad=True) for _ in range(2))
    (w, tw), (c, tc) = (_pair(rng.uniform(-0.5, 1.5, size=(3,)), requires_grad=True)
                        for _ in range(2))
    outs = [jg.lerp(a, b, w), jg.lerp(input=a, end=b, weight=0.75), a.lerp(b, -0.25),
            jg.addcmul(a, b, c, value=0.5), jg.addcdiv(a, b, c, value=-2),
            jg.rsub(a, b, alpha=3), jg.rsub(a, 2.0), jg.clamp_min(a, 0.1), jg.clamp_max(a, w)]
    touts = [torch.lerp(ta, tb, tw), torch.lerp(input=ta, end=tb, weight=0.75), ta.lerp(tb, -0.25),
             torch.addcmul(ta, tb, tc, value=0.5), torch.addcdiv(ta, tb, tc, value=-2),
             torch.rsub(ta, tb, alpha=3), torch.rsub(ta, 2.0), torch.clamp_min(ta, 0.1),
             torch.clamp_max(ta, tw)]
    for o, t in zip(outs, touts):
        _same(o, t, rtol=1e-14)
    sum(o.sum() for o in outs).backward()
    sum(t.sum() for t in touts).backward()
    for g, tg in ((a.grad, ta.grad), (b.grad, tb.grad), (w.grad, tw.grad), (c.grad, tc.grad)):
        _same(g, tg, rtol=1e-12)
    _same(jg.addcmul(jg.tensor([1]), jg.tensor([2]), jg.tensor([2]), value=2),
          torch.addcmul(torch.tensor([1]), torch.tensor([2]), torch.tensor([2]), value=2))


def test_inplace_methods_record_gradients():
    x, tx = _pair([0.3, -0.7, 1.1], requires_grad=True)
    sgn = [-1.0, 1.0, -1.0]
    y, ty = x * 1.0, tx * 1.0
    y.cosh_().addcmul_(x, x, value=2).lerp_(x, 0.3).fmod_(0.9).copysign_(jg.tensor(sgn))
    ty.cosh_().addcmul_(tx, tx, value=2).lerp_(tx, 0.3).fmod_(0.9).copysign_(
        torch.tensor(sgn, dtype=torch.float64))
    w, tw = x * 1.0, tx * 1.0
    w.tan_()
    tw.tan_()
    _same(y, ty)
    _same(w, tw)
    (y + w).sum().backward()
    (ty + tw).sum().backward()
    _same(x.grad, tx.grad, rtol=1e-12)
    w.add_(1.0)  # tan saved its output: a later write must make backward refuse, as torch's
    tw.add_(1.0)
    with pytest.raises(RuntimeError):
        tw.sum().backward()
    with pytest.raises(RuntimeError):
        w.sum().backward()
    z, tz = _pair([1.0, 2.0, 3.0], "float32")
    assert z.gt_(2.0) is z
    _same(z, tz.gt_(2.0))
    _same(z.double().float_power_(2), tz.double().float_power_(2))


def test_method_aliases_and_comparison_names():
    a, ta = _pair([[1.0, -2.0, 3.0]])
    b, tb = _pair([[2.0], [-2.0]])
    for name in ("divide", "multiply", "subtract", "true_divide", "floor_divide", "remainder",
                 "fmod", "greater", "greater_equal", "less", "less_equal", "not_equal"):
        _same(getattr(a, name)(b), getattr(ta, name)(tb))
        _same(getattr(jg, name)(a, b), getattr(torch, name)(ta, tb))
    for name in ("absolute", "negative", "positive"):
        _same(getattr(a, name)(), getattr(ta, name)())
    c, tc = a.clone(), ta.clone()
    for name in ("divide_", "multiply_", "subtract_", "floor_divide_", "remainder_", "ge_"):
        getattr(c, name)(jg.tensor(1.5, dtype=jg.float64))
        getattr(tc, name)(torch.tensor(1.5, dtype=torch.float64))
    _same(c, tc)
    _same(jg.divide(a, b, rounding_mode="trunc"), torch.divide(ta, tb, rounding_mode="trunc"))


def test_real_identities_equal_and_heaviside():
    x = jg.tensor([1.0, -2.0], requires_grad=True)
    for name in ("conj", "conj_physical", "resolve_conj", "resolve_neg", "real", "positive"):
        assert getattr(jg, name)(x) is x
    assert x.real is x and x.conj() is x and not x.is_conj() and not x.is_neg()
    assert jg.isreal(x).tolist() == [True, True]
    assert jg.equal(x, jg.tensor([1.0, -2.0])) is True
    assert jg.equal(x, jg.tensor([1.0, 2.0])) is False
    assert jg.equal(x, jg.tensor([1.0])) is False
    assert jg.equal(jg.tensor([math.nan]), jg.tensor([math.nan])) is False
    assert x.equal(jg.tensor([1, -2])) == torch.equal(torch.tensor([1.0, -2.0]),
                                                      torch.tensor([1, -2]))
    h, th = _pair([math.nan, 0.0, -1.0, 2.0, -0.0])
    v, tv = _pair([0.5])
    _same(jg.heaviside(h, v), torch.heaviside(th, tv))
    _same(h.heaviside(v), th.heaviside(tv))


def test_out_keyword():
    out = jg.empty(3)
    res = jg.hypot(jg.tensor([3.0, 5.0, 8.0]), jg.tensor([4.0, 12.0, 15.0]), out=out)
    assert res is out and out.tolist() == [5.0, 13.0, 17.0]


# -- compiled, forward mode and vmap (the reference interpreter: no Numba compile) ------------
def test_compiled_reference_matches_eager_values_and_gradients():
    def f(x, y, i):
        m, e = jg.frexp(x)
        return (x.cosh() + x.sinh() + jg.copysign(x, y) + jg.hypot(x, y) + jg.fmod(x, y)
                + jg.logaddexp(x, y) + m * e + jg.nextafter(x, y) + jg.ldexp(x, i)
                + jg.igammac(jg.tensor(2.0, dtype=jg.float64), x.abs())
                + (jg.gcd(i, 6) + (i << 2) + (i >> 1)) * x + jg.fmax(x, y) * 1.0).sum()

    rng = np.random.default_rng(3)
    x = jg.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    y = jg.tensor(rng.normal(size=(3,)), dtype=jg.float64)
    x = x.double().detach().requires_grad_()
    i = jg.tensor(rng.integers(-9, 9, size=(4, 3)))
    want = f(x, y, i)
    want.backward()
    val, g = jg.value_and_grad(f, target="reference")(x, y, i)
    np.testing.assert_allclose(float(val), float(want), rtol=1e-13)
    np.testing.assert_allclose(g.numpy(), x.grad.numpy(), rtol=1e-12)
    assert jg.jit(lambda a, b: jg.equal(a, b), target="reference")(x, x) is True
