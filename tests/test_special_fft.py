"""torch.special and torch.fft against torch: values in float32 and float64, gradients (first and
second order), dtypes, argument forms and errors; one compiled gradient through the fused and
the host-run special functions."""

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch")

# name -> (the inputs' range, where the function is smooth and torch's float32 is accurate)
UNARY = {
    "erf": (-2.5, 2.5), "erfc": (-2.5, 2.5), "erfinv": (-0.95, 0.95), "erfcx": (-2.0, 5.0),
    "expit": (-6.0, 6.0), "log1p": (-0.5, 3.0), "expm1": (-2.0, 2.0), "exp2": (-4.0, 4.0),
    "gammaln": (0.1, 6.0), "digamma": (0.1, 6.0), "psi": (0.1, 6.0), "i0": (-4.0, 4.0),
    "i0e": (-4.0, 4.0), "i1": (-4.0, 4.0), "i1e": (-4.0, 4.0), "ndtr": (-5.0, 3.0),
    "ndtri": (0.02, 0.98), "log_ndtr": (-8.0, 6.0), "sinc": (-2.5, 2.5), "entr": (0.05, 3.0),
    "logit": (0.05, 0.95), "bessel_j0": (-8.0, 8.0), "bessel_j1": (-8.0, 8.0),
}
NO_TORCH_GRAD = {"bessel_j0", "bessel_j1"}  # torch gives these no derivative
# torch's float64 trigamma (the derivative of digamma) is good to ~1e-9 only; SciPy's is exact.
GRAD_RTOL = {"digamma": 1e-8, "psi": 1e-8}


def _sample(lo, hi, shape=(4, 3), seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape)


def _pair(arr, dtype, grad=False):
    j = jg.tensor(arr, dtype=getattr(jg, dtype), requires_grad=grad)
    t = torch.tensor(arr, dtype=getattr(torch, dtype), requires_grad=grad)
    return j, t


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_values_and_dtype_match_torch(name, dtype):
    j, t = _pair(_sample(*UNARY[name]), dtype)
    got, want = getattr(jg.special, name)(j), getattr(torch.special, name)(t)
    assert got.dtype is getattr(jg, dtype) and tuple(got.shape) == tuple(want.shape)
    tol = 2e-5 if dtype == "float32" else 1e-12
    if name in NO_TORCH_GRAD:  # torch's float64 Bessel j0, j1 are good to ~1e-6 only
        tol = 1e-5
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(set(UNARY) - NO_TORCH_GRAD))
def test_unary_gradients_match_torch(name):
    arr = _sample(*UNARY[name], seed=1)
    j, t = _pair(arr, "float64", grad=True)
    w = _sample(-1.0, 1.0, seed=2)
    (getattr(jg.special, name)(j) * jg.tensor(w)).sum().backward()
    (getattr(torch.special, name)(t) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), rtol=GRAD_RTOL.get(name, 1e-10),
                               atol=1e-12)


@pytest.mark.parametrize("name, deriv", [("bessel_j0", lambda x: -torch.special.bessel_j1(x)),
                                         ("bessel_j1", lambda x: torch.special.bessel_j0(x)
                                          - torch.special.bessel_j1(x) / x)])
def test_bessel_gradients_match_the_analytic_derivative(name, deriv):
    arr = np.array([-7.0, -1.5, 0.3, 2.0, 5.5])
    x = jg.tensor(arr, dtype=jg.float64, requires_grad=True)
    getattr(jg.special, name)(x).sum().backward()
    # (torch's float64 Bessel functions are good to ~1e-6)
    np.testing.assert_allclose(x.grad.numpy(), deriv(torch.tensor(arr)).numpy(), rtol=1e-5)
    z = jg.tensor([0.0], dtype=jg.float64, requires_grad=True)
    jg.special.bessel_j1(z).sum().backward()
    eps = 1e-6  # j1'(0) = 1/2, taken as its limit
    fd = (torch.special.bessel_j1(torch.tensor(eps, dtype=torch.float64))
          - torch.special.bessel_j1(torch.tensor(-eps, dtype=torch.float64))) / (2 * eps)
    np.testing.assert_allclose(z.grad.numpy(), [fd.item()], rtol=1e-5)


@pytest.mark.parametrize("name", ["lgamma", "digamma", "erfinv", "i1", "i0e", "erfc", "ndtri"])
def test_second_derivatives_match_torch(name):
    arr = np.array([0.15, 0.4, 0.7, 0.9])
    j, t = _pair(arr, "float64", grad=True)
    jf, tf = getattr(jg.special, name), getattr(torch.special, name, None) or getattr(torch, name)
    (gj,) = jg.autograd.grad(jf(j).sum(), j, create_graph=True)
    (gt,) = torch.autograd.grad(tf(t).sum(), t, create_graph=True)
    (hj,) = jg.autograd.grad(gj.sum(), j)
    (ht,) = torch.autograd.grad(gt.sum(), t)
    np.testing.assert_allclose(hj.numpy(), ht.numpy(), rtol=1e-9)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_polygamma_values_and_gradients(n):
    arr = _sample(0.2, 5.0)
    j, t = _pair(arr, "float64", grad=True)
    got, want = jg.special.polygamma(n, j), torch.special.polygamma(n, t)
    tol = 1e-8 if n < 2 else 1e-11  # (torch's trigamma: ~1e-9)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=tol)
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), rtol=tol)
    np.testing.assert_allclose(j.detach().polygamma(n).numpy(), want.detach().numpy(), rtol=tol)
    with pytest.raises(RuntimeError, match="negative n"):
        jg.polygamma(-1, j)


def test_special_values_at_the_edges_match_torch():
    cases = {
        "digamma": [0.0, -0.0, -1.0, -2.5, 1e-300], "gammaln": [0.0, -1.0, -2.5, 1e30],
        "erfinv": [-1.0, 1.0, 1.5, 0.0], "ndtri": [0.0, 1.0, -1.0, 0.5, 1e-300],
        "sinc": [0.0, 1.0, -3.0, 1e-20], "entr": [0.0, -1.0, float("nan"), float("inf")],
        "log_ndtr": [-40.0, -1.0, 0.0, 10.0, 40.0], "erfcx": [-30.0, 30.0, 1e5],
        "logit": [0.0, 1.0, 0.5, 2.0], "ndtr": [-40.0, 40.0, 0.0],
    }
    for name, vals in cases.items():
        got = getattr(jg.special, name)(jg.tensor(vals, dtype=jg.float64))
        want = getattr(torch.special, name)(torch.tensor(vals, dtype=torch.float64))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, err_msg=name)


def test_tail_gradients_of_log_ndtr_and_sinc_at_zero_are_finite_and_match():
    arr = np.array([-30.0, -5.0, -1.0, 0.0, 3.0, 12.0])
    j, t = _pair(arr, "float64", grad=True)
    jg.special.log_ndtr(j).sum().backward()
    torch.special.log_ndtr(t).sum().backward()
    np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), rtol=1e-10)
    j, t = _pair(np.array([0.0, 0.5]), "float64", grad=True)
    jg.special.sinc(j).sum().backward()
    torch.special.sinc(t).sum().backward()
    np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), atol=1e-15)


def test_logit_eps_clamps_and_zeroes_the_gradient_outside():
    arr = np.array([0.0, 1e-8, 0.3, 0.999999, 1.0])
    for eps in (None, 1e-6, 0.25):
        j, t = _pair(arr, "float64", grad=True)
        got, want = jg.special.logit(j, eps=eps), torch.special.logit(t, eps=eps)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
        if eps is not None:
            got.sum().backward()
            want.sum().backward()
            np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    with pytest.raises(TypeError, match="eps"):
        jg.special.logit(jg.tensor([0.5]), eps="a")


@pytest.mark.parametrize("name", ["xlogy", "xlog1py"])
def test_xlogy_and_xlog1py_match_torch_with_tensors_and_numbers(name):
    x = np.array([[0.0, 0.0, 2.0, -1.5], [0.0, 1.0, 3.0, 0.5]])
    y = np.array([0.0, float("nan"), 3.0, 0.7])
    jx, tx = _pair(x, "float64", grad=True)
    jy, ty = _pair(y, "float64", grad=True)
    jf, tf = getattr(jg.special, name), getattr(torch.special, name)
    got, want = jf(jx, jy), tf(tx, ty)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    for a, b in ((2.0, y), (x, 3.0)):
        ja = a if isinstance(a, float) else jg.tensor(a, dtype=jg.float64)
        jb = b if isinstance(b, float) else jg.tensor(b, dtype=jg.float64)
        ta = a if isinstance(a, float) else torch.tensor(a, dtype=torch.float64)
        tb = b if isinstance(b, float) else torch.tensor(b, dtype=torch.float64)
        np.testing.assert_allclose(jf(ja, jb).numpy(), tf(ta, tb).numpy(), rtol=1e-12)
    # Gradients where both are defined (not at x == 0, y == 0: torch's 0/0 there is NaN).
    xs, ys = np.array([0.0, 2.0, -1.5, 0.4]), np.array([0.5, 3.0, 0.7, 2.0])
    jx, tx = _pair(xs, "float64", grad=True)
    jy, ty = _pair(ys, "float64", grad=True)
    jf(jx, jy).sum().backward()
    tf(tx, ty).sum().backward()
    np.testing.assert_allclose(jx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(jy.grad.numpy(), ty.grad.numpy(), rtol=1e-12)
    ints = jf(jg.tensor([1, 0]), jg.tensor([2, 3]))
    assert ints.dtype is jg.float32
    np.testing.assert_allclose(ints.numpy(), tf(torch.tensor([1, 0]), torch.tensor([2, 3])).numpy())
    with pytest.raises(TypeError, match="Tensor"):
        jf(1.0, 2.0)


def test_zeta_values_and_gradient_in_other_only():
    s, q = np.array([2.0, 3.5, 1.5]), np.array([[1.0], [2.5]])
    js, ts = _pair(s, "float64")
    jq, tq = _pair(q, "float64", grad=True)
    got, want = jg.special.zeta(js, jq), torch.special.zeta(ts, tq)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(jq.grad.numpy(), tq.grad.numpy(), rtol=1e-11)
    np.testing.assert_allclose(jg.special.zeta(2.0, jg.tensor([1.0, 2.0])).numpy(),
                               torch.special.zeta(2.0, torch.tensor([1.0, 2.0])).numpy())
    x = jg.tensor([2.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="zeta"):
        jg.special.zeta(x, 1.0).sum().backward()


def test_multigammaln_matches_torch_and_checks_p():
    arr = _sample(2.0, 6.0)
    for p in (1, 2, 4):
        j, t = _pair(arr, "float64", grad=True)
        got, want = jg.special.multigammaln(j, p), torch.special.multigammaln(t, p)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
        got.sum().backward()
        want.sum().backward()
        np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), rtol=1e-11)
        np.testing.assert_allclose(j.detach().mvlgamma(p).numpy(), want.detach().numpy())
    with pytest.raises(RuntimeError, match="p has to be greater than or equal to 1"):
        jg.mvlgamma(jg.tensor([3.0]), 0)


def test_softmax_family_and_round_take_torch_arguments():
    arr = _sample(-3.0, 3.0)
    j, t = _pair(arr, "float32")
    for name, kw in (("softmax", {"dim": 1}), ("log_softmax", {"dim": 0, "dtype": "float64"}),
                     ("logsumexp", {"dim": 1, "keepdim": True})):
        jkw = {k: getattr(jg, v) if k == "dtype" else v for k, v in kw.items()}
        tkw = {k: getattr(torch, v) if k == "dtype" else v for k, v in kw.items()}
        got, want = getattr(jg.special, name)(j, **jkw), getattr(torch.special, name)(t, **tkw)
        assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(jg.special.round(jg.tensor([0.5, 1.5, -2.5])).numpy(),
                                  torch.special.round(torch.tensor([0.5, 1.5, -2.5])).numpy())


def test_top_level_method_and_in_place_forms_agree_with_torch():
    arr = _sample(0.1, 0.9)
    for name in ("erfc", "erfinv", "lgamma", "digamma", "i0", "sinc", "exp2", "logit"):
        j, t = _pair(arr, "float64")
        want = getattr(torch, name)(t).numpy()
        np.testing.assert_allclose(getattr(jg, name)(j).numpy(), want, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(getattr(j, name)().numpy(), want, rtol=1e-12, err_msg=name)
        getattr(j, name + "_")()
        np.testing.assert_allclose(j.numpy(), want, rtol=1e-12, err_msg=name)
    j, t = _pair(arr, "float64")
    np.testing.assert_allclose(j.xlogy(j + 1).numpy(), t.xlogy(t + 1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(jg.polygamma(1, j).numpy(), torch.polygamma(1, t).numpy(),
                               rtol=1e-8)
    j.polygamma_(2)
    np.testing.assert_allclose(j.numpy(), torch.polygamma(2, t).numpy(), rtol=1e-12)
    assert jg.special.expit is not None and jg.special.psi is jg.special.digamma


@pytest.mark.parametrize("name", ["erfc", "erfinv", "gammaln", "digamma", "i0e", "ndtr", "sinc",
                                  "exp2", "expit", "logit", "entr", "bessel_j0"])
def test_integer_and_bool_inputs_give_float32_as_torch(name):
    for data in ([0, 1, 2], [True, False]):
        got = getattr(jg.special, name)(jg.tensor(data))
        want = getattr(torch.special, name)(torch.tensor(data))
        assert got.dtype is jg.float32 and want.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)


def test_non_tensor_input_is_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match="'input' must be a Tensor"):
        jg.special.erfinv([0.5])
    with pytest.raises(TypeError, match="'n' must be int"):
        jg.special.polygamma(1.5, jg.tensor([1.0]))


def test_compiled_gradient_through_fused_and_host_special_functions():
    def f(x):
        return (jg.special.erfc(x) * jg.special.gammaln(x + 1) + jg.special.digamma(x + 1)
                + jg.special.xlogy(x, x + 2)).sum()

    arr = np.array([0.3, 1.2, 2.5, 0.0])
    g = jg.grad(f, target="numba-cpu")
    got = g(jg.tensor(arr, dtype=jg.float64))
    t = torch.tensor(arr, dtype=torch.float64, requires_grad=True)
    (torch.special.erfc(t) * torch.special.gammaln(t + 1) + torch.special.digamma(t + 1)
     + torch.special.xlogy(t, t + 2)).sum().backward()
    np.testing.assert_allclose(got.numpy(), t.grad.numpy(), rtol=1e-8)  # (torch's trigamma)
    kernels = "\n".join(g.lower(jg.tensor(arr, dtype=jg.float64)).kernels)
    assert "math.erfc(" in kernels and "math.lgamma(" in kernels  # fused into the loops
    assert "run_host(" in kernels  # digamma and its derivative polygamma: SciPy's, on the host


# -- torch.fft ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 8])
@pytest.mark.parametrize("d", [1.0, 0.1])
def test_fftfreq_and_rfftfreq_match_torch(n, d):
    for name in ("fftfreq", "rfftfreq"):
        got, want = getattr(jg.fft, name)(n, d), getattr(torch.fft, name)(n, d)
        assert got.dtype is jg.float32
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        got = getattr(jg.fft, name)(n, d=d, dtype=jg.float64)
        want = getattr(torch.fft, name)(n, d=d, dtype=torch.float64)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-15)
    with pytest.raises(RuntimeError, match="positive"):
        jg.fft.fftfreq(0)


@pytest.mark.parametrize("dim", [None, 0, -1, (0, 1), (1,)])
def test_fftshift_and_ifftshift_match_torch_and_pass_gradients(dim):
    arr = np.arange(35.0).reshape(5, 7)
    for name in ("fftshift", "ifftshift"):
        j, t = _pair(arr, "float64", grad=True)
        got, want = getattr(jg.fft, name)(j, dim=dim), getattr(torch.fft, name)(t, dim=dim)
        np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
        w = _sample(-1.0, 1.0, shape=(5, 7))
        (got * jg.tensor(w)).sum().backward()
        (want * torch.tensor(w)).sum().backward()
        np.testing.assert_array_equal(j.grad.numpy(), t.grad.numpy())
    x = jg.tensor(arr)
    np.testing.assert_array_equal(jg.fft.ifftshift(jg.fft.fftshift(x, dim), dim).numpy(), arr)


@pytest.mark.parametrize("name", ["fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2",
                                  "irfft2", "fftn", "ifftn", "rfftn", "irfftn", "hfft", "ihfft"])
def test_complex_transforms_raise_a_clear_error(name):
    with pytest.raises(NotImplementedError, match=f"no complex dtype: torch.fft.{name} "):
        getattr(jg.fft, name)(jg.ones(4), n=4, dim=-1, norm="ortho")
