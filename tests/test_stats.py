"""Statistics and order statistics (jitgrad/ops/stats.py) against torch: values, indices on
ties and NaN, gradients, keyword forms, errors, 0-d and empty tensors, and a few traced runs."""

import numpy as np
import pytest

import jitgrad
from jitgrad.errors import TraceError

torch = pytest.importorskip("torch")

NAN = float("nan")


def jt(a, **kw):
    return jitgrad.tensor(np.asarray(a), **kw)


def tt(a, **kw):
    return torch.tensor(np.asarray(a), **kw)


def same(got, want, atol=1e-6):
    """Values, shape and dtype as torch's (NaN where torch has NaN)."""
    got_np, want_np = np.asarray(got.detach().numpy()), want.detach().numpy()
    assert got_np.shape == want_np.shape, (got_np.shape, want_np.shape)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], (got.dtype,
                                                                              want.dtype)
    np.testing.assert_allclose(got_np, want_np, atol=atol, rtol=1e-6, equal_nan=True)


def grads(fn_j, fn_t, x, cot_seed=0):
    """The gradient of sum(out * cotangent) in jitgrad and in torch, for the first output."""
    xj = jt(x, requires_grad=True)
    xt = tt(x, requires_grad=True)
    oj, ot = fn_j(xj), fn_t(xt)
    cot = np.random.default_rng(cot_seed).standard_normal(tuple(ot.shape))
    (oj * jt(cot.astype(x.dtype))).sum().backward()
    (ot * tt(cot.astype(x.dtype))).sum().backward()
    return xj.grad.numpy(), xt.grad.numpy()


TIES = np.array([[1., 3, 3, 2, 1, 3, 1], [2, 2, 2, 2, 2, 2, 2], [0, 1, 0, 1, 0, 1, 5]])
WITH_NAN = np.array([[1., NAN, 3, NAN, 0], [NAN, 1, NAN, 2, 2], [4, 1, 2, 3, 0]])


# -- order statistics ---------------------------------------------------------------------------
@pytest.mark.parametrize("dim,keepdim", [(1, False), (0, True), (-1, True)])
def test_median_and_nanmedian_values_and_indices_with_ties_and_nan(dim, keepdim):
    for data in (TIES, WITH_NAN):
        for name in ("median", "nanmedian"):
            got = getattr(jitgrad, name)(jt(data), dim, keepdim)
            want = getattr(torch, name)(tt(data), dim, keepdim)
            same(got.values, want.values)
            same(got.indices, want.indices)
            assert type(got).__name__ == name and got.values is got[0]


def test_median_indices_on_random_ties_match_torch():
    rng = np.random.default_rng(1)
    for n in (4, 9, 30):
        a = rng.integers(0, 3, (20, n)).astype(np.float64)
        same(jitgrad.median(jt(a), 1).indices, torch.median(tt(a), 1).indices)


def test_median_whole_tensor_shares_gradient_among_ties():
    x = np.array([[2., 1, 2], [3, 2, 0]])
    gj, gt = grads(lambda t: jitgrad.median(t), lambda t: torch.median(t), x)
    np.testing.assert_allclose(gj, gt)
    same(jitgrad.median(jt(x)), torch.median(tt(x)))
    same(jitgrad.nanmedian(jt(WITH_NAN)), torch.nanmedian(tt(WITH_NAN)))
    same(jitgrad.median(jt(WITH_NAN)), torch.median(tt(WITH_NAN)))
    same(jitgrad.median(jt([], dtype=jitgrad.float32)), torch.median(torch.ones(0)))


def test_median_dim_gradient_goes_to_the_selected_element():
    x = np.random.default_rng(0).standard_normal((4, 5))
    for name in ("median", "nanmedian"):
        gj, gt = grads(lambda t: getattr(jitgrad, name)(t, 1).values,
                       lambda t: getattr(torch, name)(t, 1).values, x)
        np.testing.assert_allclose(gj, gt)


def test_kthvalue_values_indices_gradient_and_errors():
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    for k, dim, keepdim in ((1, -1, False), (3, 1, True), (2, 0, False)):
        got, want = jitgrad.kthvalue(jt(x), k, dim, keepdim), torch.kthvalue(tt(x), k, dim, keepdim)
        same(got.values, want.values)
        same(got.indices, want.indices)
    gj, gt = grads(lambda t: t.kthvalue(2, dim=1).values,
                   lambda t: t.kthvalue(2, dim=1).values, x)
    np.testing.assert_allclose(gj, gt)
    # NaN is the largest value
    got, want = jitgrad.kthvalue(jt(WITH_NAN), 4), torch.kthvalue(tt(WITH_NAN), 4)
    same(got.values, want.values)
    same(jitgrad.kthvalue(jt(3.5), 1).values, torch.kthvalue(tt(3.5), 1).values)
    with pytest.raises(RuntimeError, match="k out of range"):
        jitgrad.kthvalue(jt([1.0, 2.0]), 3)
    with pytest.raises(RuntimeError, match="k out of range"):
        jitgrad.kthvalue(jt([1.0, 2.0]), 0)


def test_mode_picks_smallest_most_frequent_and_its_last_index():
    rng = np.random.default_rng(3)
    for data in (TIES, rng.integers(0, 4, (6, 15)).astype(np.float64),
                 np.array([[1., NAN, 3, NAN, 0]])):
        got, want = jitgrad.mode(jt(data)), torch.mode(tt(data))
        same(got.values, want.values)
        same(got.indices, want.indices)
    got, want = jitgrad.mode(jt(TIES), 0, keepdim=True), torch.mode(tt(TIES), 0, keepdim=True)
    same(got.values, want.values)
    same(got.indices, want.indices)
    ints = rng.integers(0, 3, (4, 7))
    same(jitgrad.mode(jt(ints)).values, torch.mode(tt(ints)).values)
    gj, gt = grads(lambda t: jitgrad.mode(t, 1).values, lambda t: torch.mode(t, 1).values, TIES)
    np.testing.assert_allclose(gj, gt)


def test_order_statistics_errors_on_empty_dims():
    for name in ("median", "nanmedian", "mode"):
        with pytest.raises(IndexError, match="non-zero size"):
            getattr(jitgrad, name)(jitgrad.ones(0, 2), 0)
    with pytest.raises(TypeError, match="Tensor"):
        jitgrad.median([1.0, 2.0])


def test_msort_sorts_the_first_dimension():
    x = np.random.default_rng(4).standard_normal((5, 3))
    same(jitgrad.msort(jt(x)), torch.msort(tt(x)))
    same(jt(x).msort(), tt(x).msort())


# -- running scans ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_indices_on_ties_and_nan(name):
    for data in (TIES, WITH_NAN, TIES.astype(np.int64)):
        for dim in (0, 1, -1):
            got, want = getattr(jitgrad, name)(jt(data), dim), getattr(torch, name)(tt(data), dim)
            same(got.values, want.values)
            same(got.indices, want.indices)
    b = np.array([True, False, True, True])
    got, want = getattr(jitgrad, name)(jt(b), 0), getattr(torch, name)(tt(b), 0)
    same(got.values, want.values)
    same(got.indices, want.indices)
    for x in (np.float64(2.5), np.zeros((0, 3))):
        got, want = getattr(jitgrad, name)(jt(x), 0), getattr(torch, name)(tt(x), 0)
        same(got.values, want.values)
        same(got.indices, want.indices)


def test_cummax_gradient_goes_to_the_running_winner():
    x = np.random.default_rng(5).integers(0, 4, (3, 17)).astype(np.float64)
    for name in ("cummax", "cummin"):
        gj, gt = grads(lambda t: getattr(t, name)(1).values, lambda t: getattr(t, name)(1).values, x)
        np.testing.assert_allclose(gj, gt)


def test_logcumsumexp_values_gradient_and_extremes():
    x = np.random.default_rng(6).standard_normal((4, 9)) * 30
    same(jitgrad.logcumsumexp(jt(x), 1), torch.logcumsumexp(tt(x), 1))
    same(jt(x).logcumsumexp(0), tt(x).logcumsumexp(0))
    gj, gt = grads(lambda t: jitgrad.logcumsumexp(t, 1), lambda t: torch.logcumsumexp(t, 1), x)
    np.testing.assert_allclose(gj, gt, rtol=1e-10, atol=1e-12)
    # -inf contributes nothing, inf dominates, large values do not overflow
    odd = np.array([-np.inf, -np.inf, 0.0, 1e4, 1e4, np.inf, 3.0])
    same(jitgrad.logcumsumexp(jt(odd), 0), torch.logcumsumexp(tt(odd), 0))
    same(jitgrad.logcumsumexp(jt(1.5), 0), torch.logcumsumexp(tt(1.5), 0))
    with pytest.raises(RuntimeError, match="floating point"):
        jitgrad.logcumsumexp(jt([1, 2]), 0)


# -- searches -----------------------------------------------------------------------------------
def test_searchsorted_forms_against_torch():
    rng = np.random.default_rng(7)
    seq = np.sort(rng.integers(0, 6, 9)).astype(np.float64)
    v = rng.integers(-1, 7, (3, 4)).astype(np.float64)
    for kw in ({}, {"right": True}, {"side": "right"}, {"side": "left"}, {"out_int32": True}):
        same(jitgrad.searchsorted(jt(seq), jt(v), **kw), torch.searchsorted(tt(seq), tt(v), **kw))
    rows = np.sort(rng.standard_normal((3, 6)), axis=1)
    vals = rng.standard_normal((3, 5))
    same(jitgrad.searchsorted(jt(rows), jt(vals)), torch.searchsorted(tt(rows), tt(vals)))
    perm = rng.permutation(9)
    shuffled = seq[np.argsort(perm)]
    sorter = np.argsort(shuffled, kind="stable")
    same(jitgrad.searchsorted(jt(shuffled), jt(v), sorter=jt(sorter)),
         torch.searchsorted(tt(shuffled), tt(v), sorter=tt(sorter)))
    same(jitgrad.searchsorted(jt(seq), 3.0), torch.searchsorted(tt(seq), 3.0))
    # NaN: the same binary search as torch's
    nan_seq = np.array([1.0, 2.0, 3.0, NAN])
    probe = np.array([2.0, NAN, 5.0])
    for right in (False, True):
        same(jitgrad.searchsorted(jt(nan_seq), jt(probe), right=right),
             torch.searchsorted(tt(nan_seq), tt(probe), right=right))
    same(jitgrad.searchsorted(jt(np.zeros(0)), jt(v)), torch.searchsorted(torch.zeros(0,
         dtype=torch.float64), tt(v)))


def test_searchsorted_and_bucketize_errors():
    with pytest.raises(RuntimeError, match="side and right"):
        jitgrad.searchsorted(jt([1.0, 2.0]), jt([1.0]), right=True, side="left")
    with pytest.raises(RuntimeError, match="first N-1 dimensions"):
        jitgrad.searchsorted(jitgrad.zeros(2, 3), jitgrad.zeros(3, 3))
    with pytest.raises(RuntimeError, match="same size"):
        jitgrad.searchsorted(jt([1.0, 2.0]), jt([1.0]), sorter=jt([0]))
    with pytest.raises(RuntimeError, match="1 dimension"):
        jitgrad.bucketize(jt([1.0]), jitgrad.zeros(2, 2))


def test_bucketize_and_isin():
    b = np.array([1.0, 3.0, 5.0, 7.0])
    x = np.array([[0.0, 1.0, 3.5], [7.0, 9.0, 5.0]])
    for right in (False, True):
        same(jitgrad.bucketize(jt(x), jt(b), right=right), torch.bucketize(tt(x), tt(b),
                                                                          right=right))
    same(jitgrad.bucketize(3.0, jt(b)), torch.bucketize(3.0, tt(b)))
    e = np.array([[1, 5, 2], [9, 2, 2]])
    t = np.array([2, 9, 4, 2])
    for invert in (False, True):
        same(jitgrad.isin(jt(e), jt(t), invert=invert), torch.isin(tt(e), tt(t), invert=invert))
    same(jitgrad.isin(jt(e), 2), torch.isin(tt(e), 2))
    same(jitgrad.isin(5, jt(t)), torch.isin(5, tt(t)))
    same(jitgrad.isin(jt([1.0, NAN]), jt([NAN, 1.0])), torch.isin(tt([1.0, NAN]), tt([NAN, 1.0])))
    same(jitgrad.isin(jt(e), jt(np.zeros(0, np.int64))), torch.isin(tt(e), tt(np.zeros(0, np.int64))))


def test_searches_and_scans_run_traced_on_later_inputs():
    def f(seq, v, x):
        return (jitgrad.searchsorted(seq, v), jitgrad.isin(v, seq), x.cummax(0).indices,
                jitgrad.median(x, 0).values, jitgrad.quantile(x, 0.3, dim=0))
    c = jitgrad.jit(f, target="reference")
    rng = np.random.default_rng(8)
    for _ in range(2):  # the second call reuses the trace on new values
        seq = np.sort(rng.integers(0, 9, 7)).astype(np.float64)
        v = rng.integers(0, 9, 5).astype(np.float64)
        x = rng.standard_normal((6, 3))
        got = c(jt(seq), jt(v), jt(x))
        same(got[0], torch.searchsorted(tt(seq), tt(v)))
        same(got[1], torch.isin(tt(v), tt(seq)))
        same(got[2], torch.cummax(tt(x), 0).indices)
        same(got[3], torch.median(tt(x), 0).values)
        same(got[4], torch.quantile(tt(x), 0.3, dim=0))
    assert c.cache_info().traces == 1


# -- counting and histograms --------------------------------------------------------------------
def test_count_nonzero_and_bincount():
    x = np.array([[0, 1, 2], [0, 0, 3]])
    for dim in (None, 0, -1, (0, 1)):
        same(jitgrad.count_nonzero(jt(x), dim=dim), torch.count_nonzero(tt(x), dim=dim))
    same(jt(x).count_nonzero(), tt(x).count_nonzero())
    v = np.array([0, 3, 3, 1])
    same(jitgrad.bincount(jt(v)), torch.bincount(tt(v)))
    same(jt(v).bincount(minlength=7), tt(v).bincount(minlength=7))
    for w in (np.array([0.5, 1, 2, 3], np.float32), np.array([1, 2, 3, 4])):
        same(jitgrad.bincount(jt(v), jt(w)), torch.bincount(tt(v), tt(w)))
    same(jitgrad.bincount(jitgrad.zeros(0, dtype=jitgrad.int64)),
         torch.bincount(torch.zeros(0, dtype=torch.int64)))
    with pytest.raises(RuntimeError, match="non-negative integral"):
        jitgrad.bincount(jt([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="non-negative integral"):
        jitgrad.bincount(jt([1, -2]))
    with pytest.raises(RuntimeError, match="same length"):
        jitgrad.bincount(jt(v), jt([1.0]))
    with pytest.raises(TraceError, match="bincount"):
        jitgrad.jit(lambda t: jitgrad.bincount(t), target="reference")(jt(v))


def test_histogramdd_and_histogram_methods():
    pts = np.random.default_rng(9).standard_normal((50, 2))
    w = np.random.default_rng(10).uniform(size=50)
    for kw in ({"bins": [3, 4]}, {"bins": 5, "density": True}, {"bins": [2, 2],
               "range": [-1.0, 1.0, -2.0, 2.0]}):
        got, want = jitgrad.histogramdd(jt(pts), **kw), torch.histogramdd(tt(pts), **kw)
        same(got.hist, want.hist)
        assert len(got.bin_edges) == len(want.bin_edges)
        for a, b in zip(got.bin_edges, want.bin_edges):
            same(a, b)
    edges = [tt(np.array([-1.0, 0.0, 2.0])), tt(np.array([-3.0, 3.0]))]
    same(jitgrad.histogramdd(jt(pts), [jt(e.numpy()) for e in edges], weight=jt(w)).hist,
         torch.histogramdd(tt(pts), edges, weight=tt(w)).hist)
    x = np.array([1.0, 2.0, 1.0, 4.0])
    same(jt(x).histc(bins=4, min=0, max=4), tt(x).histc(bins=4, min=0, max=4))
    same(jt(x).histogram(3).hist, tt(x).histogram(3).hist)
    with pytest.raises(RuntimeError, match="floating"):
        jitgrad.histogramdd(jt([[1, 2]]), bins=2)


# -- quantiles ----------------------------------------------------------------------------------
@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile_and_nanquantile_interpolations(interpolation):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 7))
    xn = x.copy()
    xn[0, 2] = xn[2, :] = NAN
    q = np.array([0.0, 0.2, 0.5, 0.75, 1.0])
    for name in ("quantile", "nanquantile"):
        for data in (x, xn):
            for dim, keepdim in ((None, False), (None, True), (1, False), (0, True)):
                for qq in (q, 0.35):
                    qa = tt(qq) if isinstance(qq, np.ndarray) else qq
                    qj = jt(qq) if isinstance(qq, np.ndarray) else qq
                    want = getattr(torch, name)(tt(data), qa, dim, keepdim,
                                                interpolation=interpolation)
                    got = getattr(jitgrad, name)(jt(data), qj, dim, keepdim,
                                                 interpolation=interpolation)
                    same(got, want)


def test_quantile_gradients_wrt_input_and_q():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 6))
    q = np.array([0.1, 0.5, 0.9])
    xj, qj = jt(x, requires_grad=True), jt(q, requires_grad=True)
    xt, qt = tt(x, requires_grad=True), tt(q, requires_grad=True)
    cot = rng.standard_normal((3, 3))
    (jitgrad.quantile(xj, qj, dim=1) * jt(cot)).sum().backward()
    (torch.quantile(xt, qt, dim=1) * tt(cot)).sum().backward()
    np.testing.assert_allclose(xj.grad.numpy(), xt.grad.numpy())
    np.testing.assert_allclose(qj.grad.numpy(), qt.grad.numpy())


def test_quantile_errors():
    x = jt([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"range \[0, 1\]"):
        jitgrad.quantile(x, 1.5)
    with pytest.raises(RuntimeError, match=r"range \[0, 1\]"):
        jitgrad.quantile(x, jt([0.5, -0.1]))
    with pytest.raises(RuntimeError, match="same dtype"):
        jitgrad.quantile(x, jitgrad.tensor([0.5], dtype=jitgrad.float32))
    with pytest.raises(RuntimeError, match="interpolation"):
        jitgrad.quantile(x, 0.5, interpolation="cubic")
    with pytest.raises(RuntimeError, match="float or double"):
        jitgrad.quantile(jt([1, 2]), 0.5)
    with pytest.raises(RuntimeError, match="non-empty"):
        jitgrad.quantile(jitgrad.ones(0), 0.5)
    with pytest.raises(RuntimeError, match="scalar or 1D"):
        jitgrad.quantile(x, jitgrad.ones(1, 1))


# -- NaN-skipping reductions and moments --------------------------------------------------------
def test_nansum_nanmean_values_gradients_and_dtypes():
    x = WITH_NAN
    for dim, keepdim in ((None, False), (1, True), ((0, 1), False), (0, False)):
        same(jitgrad.nansum(jt(x), dim, keepdim), torch.nansum(tt(x), dim, keepdim))
        same(jitgrad.nanmean(jt(x), dim, keepdim), torch.nanmean(tt(x), dim, keepdim))
    for name in ("nansum", "nanmean"):
        gj, gt = grads(lambda t: getattr(t, name)(1), lambda t: getattr(t, name)(1), x)
        np.testing.assert_allclose(gj, gt)
    ints = np.array([[1, 2], [3, 4]])
    same(jitgrad.nansum(jt(ints), 0), torch.nansum(tt(ints), 0))
    same(jitgrad.nansum(jt(ints), dtype=jitgrad.float64), torch.nansum(tt(ints),
                                                                      dtype=torch.float64))
    same(jitgrad.nanmean(jt([NAN, NAN])), torch.nanmean(tt([NAN, NAN])))
    with pytest.raises(RuntimeError, match="floating point"):
        jitgrad.nanmean(jt(ints))


def test_var_mean_std_mean_forms():
    x = np.random.default_rng(13).standard_normal((3, 4))
    for args, kw in (((), {}), ((1,), {}), ((1, False, True), {}), ((False,), {}),
                     ((), {"dim": 0, "correction": 2, "keepdim": True})):
        for name in ("var_mean", "std_mean"):
            got = getattr(jitgrad, name)(jt(x), *args, **kw)
            want = getattr(torch, name)(tt(x), *args, **kw)
            assert isinstance(got, tuple) and len(got) == 2
            same(got[0], want[0])
            same(got[1], want[1])


def test_aminmax():
    x = np.array([[3.0, 1.0, 3.0], [0.0, 5.0, 0.0]])
    for kw in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"keepdim": True}):
        got, want = jitgrad.aminmax(jt(x), **kw), torch.aminmax(tt(x), **kw)
        same(got.min, want.min)
        same(got.max, want.max)
    gj, gt = grads(lambda t: sum(t.aminmax(dim=1)), lambda t: sum(t.aminmax(dim=1)), x)
    np.testing.assert_allclose(gj, gt)
    with pytest.raises(RuntimeError, match="empty"):
        jitgrad.aminmax(jitgrad.ones(0))


# -- covariance ---------------------------------------------------------------------------------
def test_cov_and_corrcoef_values_weights_and_gradients():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((3, 6))
    fw = rng.integers(0, 4, 6)
    aw = rng.uniform(0.1, 1, 6)
    for kw in ({}, {"correction": 0}, {"fweights": fw}, {"aweights": aw},
               {"fweights": fw, "aweights": aw, "correction": 2}):
        jkw = {k: jt(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        tkw = {k: tt(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        same(jitgrad.cov(jt(x), **jkw), torch.cov(tt(x), **tkw))
    same(jitgrad.cov(jt(x[0])), torch.cov(tt(x[0])))
    same(jt(x).corrcoef(), tt(x).corrcoef())
    same(jitgrad.corrcoef(jt(x[0])), torch.corrcoef(tt(x[0])))
    same(jitgrad.cov(jt([[1, 2, 4], [3, 1, 0]])), torch.cov(tt([[1, 2, 4], [3, 1, 0]])))
    for fj, ft in ((jitgrad.cov, torch.cov), (jitgrad.corrcoef, torch.corrcoef)):
        gj, gt = grads(fj, ft, x)
        np.testing.assert_allclose(gj, gt, atol=1e-12)


def test_cov_errors_and_degrees_of_freedom_warning():
    x = jitgrad.ones(2, 3)
    with pytest.raises(RuntimeError, match="two or fewer"):
        jitgrad.cov(jitgrad.ones(1, 2, 3))
    with pytest.raises(RuntimeError, match="integral"):
        jitgrad.cov(x, fweights=jt([1.0, 1.0, 1.0]))
    with pytest.raises(RuntimeError, match="floating point"):
        jitgrad.cov(x, aweights=jt([1, 1, 1]))
    with pytest.raises(RuntimeError, match="negative"):
        jitgrad.cov(x, fweights=jt([1, -1, 1]))
    with pytest.raises(RuntimeError, match="same numel"):
        jitgrad.cov(x, aweights=jt([1.0, 1.0]))
    with pytest.warns(RuntimeWarning, match="degrees of freedom"):
        jitgrad.cov(jitgrad.ones(2, 1))


# -- integration, differentiation of samples, renorm --------------------------------------------
def test_trapezoid_trapz_cumulative_forms():
    rng = np.random.default_rng(15)
    y = rng.standard_normal((3, 5))
    x1 = np.sort(rng.standard_normal(5))
    x2 = np.sort(rng.standard_normal((3, 5)), axis=1)
    for jf, tf in ((jitgrad.trapezoid, torch.trapezoid), (jitgrad.trapz, torch.trapz),
                   (jitgrad.cumulative_trapezoid, torch.cumulative_trapezoid)):
        same(jf(jt(y)), tf(tt(y)))
        same(jf(jt(y), jt(x1)), tf(tt(y), tt(x1)))
        same(jf(jt(y), jt(x2)), tf(tt(y), tt(x2)))
        same(jf(jt(y), dx=0.5, dim=0), tf(tt(y), dx=0.5, dim=0))
        same(jf(jt([1, 2, 4])), tf(tt([1, 2, 4])))
        same(jf(jitgrad.zeros(2, 0)), tf(torch.zeros(2, 0)))
        gj, gt = grads(lambda t: jf(t, jt(x1)), lambda t: tf(t, tt(x1)), y)
        np.testing.assert_allclose(gj, gt)
    with pytest.raises(RuntimeError, match="one `x` value"):
        jitgrad.trapezoid(jt(y), jt(x1[:3]))


def test_gradient_spacings_and_edge_orders():
    rng = np.random.default_rng(16)
    f = rng.standard_normal((4, 5, 3))
    c0, c2 = np.sort(rng.uniform(0, 5, 4)), np.sort(rng.uniform(0, 5, 3))
    for kw in ({}, {"spacing": 2.0}, {"edge_order": 2}, {"dim": 1},
               {"spacing": [2.0, 0.5], "dim": (0, -1), "edge_order": 2},
               {"spacing": [1.0, 2.0, 3.0]}):
        got, want = jitgrad.gradient(jt(f), **kw), torch.gradient(tt(f), **kw)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            same(a, b, atol=1e-10)
    for order in (1, 2):
        kw = {"dim": (0, 2), "edge_order": order}
        got = jitgrad.gradient(jt(f), spacing=(jt(c0), jt(c2)), **kw)
        want = torch.gradient(tt(f), spacing=(tt(c0), tt(c2)), **kw)
        for a, b in zip(got, want):
            same(a, b, atol=1e-10)
    gj, gt = grads(lambda t: jitgrad.gradient(t, edge_order=2)[1],
                   lambda t: torch.gradient(t, edge_order=2)[1], f)
    np.testing.assert_allclose(gj, gt)
    with pytest.raises(RuntimeError, match="edge_order"):
        jitgrad.gradient(jt(f), edge_order=3)
    with pytest.raises(RuntimeError, match="at least edge_order"):
        jitgrad.gradient(jt([1.0, 2.0]), edge_order=2)
    with pytest.raises(RuntimeError, match="spacing"):
        jitgrad.gradient(jt(f), spacing=[1.0, 2.0])


def test_renorm_values_gradient_inplace_and_errors():
    x = np.random.default_rng(17).standard_normal((3, 4, 2)) * 2
    for p, dim, maxnorm in ((2, 0, 1.0), (1, -1, 2.5), (float("inf"), 1, 0.7), (3, 2, 100.0)):
        same(jitgrad.renorm(jt(x), p, dim, maxnorm), torch.renorm(tt(x), p, dim, maxnorm))
        gj, gt = grads(lambda t: t.renorm(p, dim, maxnorm), lambda t: t.renorm(p, dim, maxnorm), x)
        np.testing.assert_allclose(gj, gt, atol=1e-10)
    a, b = jt(x), tt(x)
    assert a.renorm_(2, 1, 1.0) is a
    same(a, b.renorm_(2, 1, 1.0))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        jitgrad.renorm(jt([1.0, 2.0]), 2, 0, 1.0)
    with pytest.raises(RuntimeError, match="non-positive"):
        jitgrad.renorm(jt(x), 0, 0, 1.0)
    with pytest.raises(RuntimeError, match="maxnorm"):
        jitgrad.renorm(jt(x), 2, 0, -1.0)
