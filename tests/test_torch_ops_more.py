"""Sorting, gathers and scatters, einsum, rounding, inverse trigonometry, 0-d dims, memory
formats, loss options and unbatched convolutions: values and gradients against real torch, in
float32 and float64."""

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as JF

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def against_torch(jfn, tfn, arrays, dtype, seed=0):
    """Run ``jfn`` on jitgrad tensors and ``tfn`` on torch tensors of ``arrays``; compare the
    outputs (value, shape, dtype) and the gradients of a random weighting of the output."""
    rng = np.random.default_rng(seed)
    js = [jg.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    out, ref = jfn(*js), tfn(*ts)
    assert tuple(out.shape) == tuple(ref.shape)
    assert out.dtype.np == ref.detach().numpy().dtype
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), **TOL[dtype])
    w = rng.standard_normal(tuple(ref.shape)).astype(dtype)
    (out * jg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for j, t in zip(js, ts):
        np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), **TOL[dtype])


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


IDX = np.array([[0, 0, 3], [1, 2, 2]])
PERM = np.array([[0, 1, 3], [2, 1, 0]])

CASES = {
    "sort": (lambda x: jg.sort(x, 1).values, lambda x: torch.sort(x, 1).values, [(3, 5)]),
    "sort_desc": (lambda x: x.sort(0, descending=True)[0],
                  lambda x: x.sort(0, descending=True)[0], [(4, 3)]),
    "topk": (lambda x: x.topk(2).values, lambda x: x.topk(2).values, [(3, 5)]),
    "topk_small": (lambda x: jg.topk(x, 3, dim=0, largest=False)[0],
                   lambda x: torch.topk(x, 3, dim=0, largest=False)[0], [(4, 2)]),
    "gather": (lambda x: x.gather(1, jg.tensor(IDX)), lambda x: x.gather(1, torch.tensor(IDX)),
               [(3, 4)]),
    "scatter": (lambda x, s: x.scatter(1, jg.tensor(PERM), s),
                lambda x, s: x.scatter(1, torch.tensor(PERM), s), [(3, 4), (2, 3)]),
    "scatter_add": (lambda x, s: jg.scatter_add(x, 1, jg.tensor(IDX), s),
                    lambda x, s: torch.scatter_add(x, 1, torch.tensor(IDX), s), [(3, 4), (2, 3)]),
    "index_select": (lambda x: x.index_select(1, jg.tensor([3, 0, 0])),
                     lambda x: x.index_select(1, torch.tensor([3, 0, 0])), [(3, 4)]),
    "roll": (lambda x: x.roll((1, -5), (0, 1)), lambda x: x.roll((1, -5), (0, 1)), [(3, 4)]),
    "roll_flat": (lambda x: jg.roll(x, 5), lambda x: torch.roll(x, 5), [(3, 4)]),
    "flip": (lambda x: x.flip(0, 1), lambda x: x.flip(0, 1), [(3, 4)]),
    "fliplr_ud": (lambda x: jg.fliplr(x) * jg.flipud(x), lambda x: torch.fliplr(x) * torch.flipud(x),
                  [(3, 4)]),
    "repeat_interleave": (lambda x: x.repeat_interleave(jg.tensor([1, 0, 3, 2]), dim=1),
                          lambda x: x.repeat_interleave(torch.tensor([1, 0, 3, 2]), dim=1),
                          [(3, 4)]),
    "repeat_interleave_flat": (lambda x: jg.repeat_interleave(x, 2),
                               lambda x: torch.repeat_interleave(x, 2), [(2, 3)]),
    "diag": (lambda x: jg.diag(x, 1) + jg.diag(x.diag(-1), -1)[:3, :4],
             lambda x: torch.diag(x, 1) + torch.diag(x.diag(-1), -1)[:3, :4], [(3, 4)]),
    "diagonal": (lambda x: x.diagonal(1, 0, 2), lambda x: x.diagonal(1, 0, 2), [(2, 3, 4)]),
    "cumprod": (lambda x: x.cumprod(1), lambda x: x.cumprod(1), [(3, 4)]),
    "atan2": (jg.atan2, torch.atan2, [(3, 4), (4,)]),
    "inverse_trig": (lambda x: jg.asin(x.tanh()) + x.tanh().acos() + jg.atan(x) + x.asinh()
                     + jg.acosh(x * x + 1.5) + jg.atanh(x.tanh() * 0.9),
                     lambda x: torch.asin(x.tanh()) + x.tanh().acos() + torch.atan(x) + x.asinh()
                     + torch.acosh(x * x + 1.5) + torch.atanh(x.tanh() * 0.9), [(3, 4)]),
    "rounding": (lambda x: x * (jg.round(x * 2) + x.ceil() + jg.trunc(x) + x.floor() + x.sign())
                 + x.frac() + x.round(decimals=1),
                 lambda x: x * (torch.round(x * 2) + x.ceil() + torch.trunc(x) + x.floor()
                                + x.sign()) + x.frac() + x.round(decimals=1), [(3, 4)]),
    "div_trunc": (lambda x: jg.div(x * 3, 2, rounding_mode="trunc") + x,
                  lambda x: torch.div(x * 3, 2, rounding_mode="trunc") + x, [(3, 4)]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name, dtype):
    jfn, tfn, shapes = CASES[name]
    against_torch(jfn, tfn, [randn(*s, seed=i) for i, s in enumerate(shapes)], dtype)


EINSUMS = [("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
           ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]), ("i,i->", [(3,), (3,)]),
           ("ii->i", [(3, 3)]), ("ij->ji", [(2, 3)]), ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
           ("ij,jk", [(2, 3), (3, 4)]), ("i,j->ij", [(3,), (4,)]), ("iij->ji", [(3, 3, 2)]),
           ("ijk,ikl,lm->jm", [(2, 3, 4), (2, 4, 5), (5, 6)])]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("eq,shapes", EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum_matches_torch(eq, shapes, dtype):
    against_torch(lambda *xs: jg.einsum(eq, *xs), lambda *xs: torch.einsum(eq, *xs),
                  [randn(*s, seed=i) for i, s in enumerate(shapes)], dtype)


def test_einsum_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="subscript 'j'"):
        jg.einsum("ij,jk->ik", jg.ones(2, 3), jg.ones(4, 4))
    with pytest.raises(ValueError, match="2 operand subscripts"):
        jg.einsum("ij,jk->ik", jg.ones(2, 3))


def test_sort_indices_ties_and_nan_match_torch():
    x = randn(3, 6)
    x[0, 1] = x[0, 4]
    x[1, 2] = np.nan
    for desc in (False, True):
        a = jg.sort(jg.tensor(x), 1, desc)
        b = torch.sort(torch.tensor(x), dim=1, descending=desc, stable=True)
        np.testing.assert_array_equal(a.values.numpy(), b.values.numpy())
        np.testing.assert_array_equal(a.indices.numpy(), b.indices.numpy())
        np.testing.assert_array_equal(jg.argsort(jg.tensor(x), 1, desc).numpy(), b.indices.numpy())
    xi = np.random.default_rng(2).integers(-3, 3, (4, 6))
    a, b = jg.tensor(xi).sort(descending=True), torch.tensor(xi).sort(descending=True, stable=True)
    np.testing.assert_array_equal(a.indices.numpy(), b.indices.numpy())
    with pytest.raises(RuntimeError, match="out of range"):
        jg.topk(jg.ones(3), 4)


def test_sort_and_topk_compiled_equal_eager():
    x = randn(3, 5)
    x[1, 2] = x[1, 4]

    def f(t):
        return (jg.sort(t, 1, descending=True).values * jg.arange(5.0, dtype=t.dtype)).sum() + \
            jg.topk(t, 2, dim=0).values.sum()
    xe = jg.tensor(x, requires_grad=True)
    f(xe).backward()
    v, g = jg.value_and_grad(f, target="reference")(jg.tensor(x))
    np.testing.assert_allclose(v.item(), f(jg.tensor(x)).item(), rtol=1e-12)
    np.testing.assert_allclose(g.numpy(), xe.grad.numpy(), rtol=1e-12)


def test_new_elementwise_primitives_compile_on_numba_cpu():
    """One kernel over the new primitives and composites, against eager."""
    def f(x, y):
        return (jg.asin(x.tanh() * 0.9) + jg.acosh(x * x + 1.5) + jg.atan2(x, y)
                + x * (jg.round(x * 2) + jg.ceil(x) + jg.trunc(x) + x.sign()) + x.frac()).sum()
    x, y = randn(3, 4), randn(4, seed=1)
    xe, ye = jg.tensor(x, requires_grad=True), jg.tensor(y, requires_grad=True)
    f(xe, ye).backward()
    vg = jg.value_and_grad(f, argnums=(0, 1), target="numba-cpu")
    v, (gx, gy) = vg(jg.tensor(x), jg.tensor(y))
    np.testing.assert_allclose(v.item(), f(jg.tensor(x), jg.tensor(y)).item(), rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), xe.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(gy.numpy(), ye.grad.numpy(), rtol=1e-10)


def test_piecewise_constant_outputs_require_grad_with_zero_gradient():
    x = jg.tensor([1.5, -2.5, float("nan")], requires_grad=True)
    for fn in (jg.floor, jg.sign, jg.round, jg.ceil, jg.trunc,
               lambda t: jg.div(t, 2.0, rounding_mode="floor")):
        out = fn(x)
        assert out.requires_grad
        tx = torch.tensor([1.5, -2.5, float("nan")], requires_grad=True)
        x.grad = None
        out.backward(jg.tensor([float("nan"), 1.0, 1.0]))
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros(3, np.float32))
        torch.floor(tx).backward(torch.tensor([float("nan"), 1.0, 1.0]))
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_round_ties_to_even_and_negative_zero_like_torch():
    v = np.array([-2.5, -1.5, -0.5, -0.3, 0.5, 1.5, 2.5, 0.49999999999999994, np.inf])
    for fn in ("round", "ceil", "trunc", "floor"):
        got = getattr(jg, fn)(jg.tensor(v)).numpy()
        want = getattr(torch, fn)(torch.tensor(v)).numpy()
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("mode", ["trunc", "floor"])
def test_div_rounding_modes_on_integers(mode):
    a, b = [7, -7, 7, -7, 0, -9], [2, 2, -2, -2, 3, 3]
    got = jg.div(jg.tensor(a), jg.tensor(b), rounding_mode=mode)
    assert got.dtype is jg.int64
    assert got.tolist() == torch.div(torch.tensor(a), torch.tensor(b), rounding_mode=mode).tolist()
    with pytest.raises(ValueError, match="rounding_mode"):
        jg.div(jg.tensor(a), 2, rounding_mode="nearest")


REDUCTIONS_0D = [lambda t, d: t.sum(d), lambda t, d: t.mean(d), lambda t, d: t.prod(d),
                 lambda t, d: t.amax(d), lambda t, d: t.max(d)[0], lambda t, d: t.logsumexp(d),
                 lambda t, d: t.norm(dim=d), lambda t, d: t.softmax(d), lambda t, d: t.log_softmax(d),
                 lambda t, d: t.cumsum(d), lambda t, d: t.cumprod(d), lambda t, d: t.sort(d)[0],
                 lambda t, d: t.var(d, unbiased=False)]


@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("k", range(len(REDUCTIONS_0D)))
def test_dim_0_and_minus_1_on_0d_tensors(k, dim):
    fn = REDUCTIONS_0D[k]
    against_torch(lambda t: fn(t, dim), lambda t: fn(t, dim), [np.array(1.7)], np.float64)


def test_dim_out_of_range_on_0d_tensor_is_an_error():
    with pytest.raises(IndexError, match="out of range"):
        jg.tensor(1.0).sum(1)


def test_meshgrid_nonzero_unique_match_torch():
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0]
    for ind in ("ij", "xy"):
        got = jg.meshgrid(jg.tensor(a), jg.tensor(b), indexing=ind)
        want = torch.meshgrid(torch.tensor(a), torch.tensor(b), indexing=ind)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    m = [[0, 1, 0], [2, 0, 3]]
    np.testing.assert_array_equal(jg.tensor(m).nonzero().numpy(), torch.tensor(m).nonzero().numpy())
    for g, w in zip(jg.tensor(m).nonzero(as_tuple=True), torch.tensor(m).nonzero(as_tuple=True)):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    u = [3, 1, 3, 2, 1]
    for g, w in zip(jg.unique(jg.tensor(u), return_inverse=True, return_counts=True),
                    torch.unique(torch.tensor(u), return_inverse=True, return_counts=True)):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    with pytest.raises(jg.TraceError, match="shape depends on the values"):
        jg.jit(lambda t: t.nonzero().sum() * 1.0, target="reference")(jg.tensor([1.0, 0.0]))


def test_gather_scatter_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 0"):
        jg.gather(jg.ones(3), 0, jg.tensor([5]))
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        jg.gather(jg.ones(3, 2), 0, jg.tensor([0]))
    with pytest.raises(IndexError, match="out of bounds"):
        jg.index_select(jg.ones(3), 0, jg.tensor([3]))


def test_memory_format_arguments():
    x = jg.ones(2, 3).t()
    assert not x.clone().is_contiguous()
    fmt = jg.contiguous_format
    for y in (x.clone(memory_format=fmt), x.contiguous(), x.float(memory_format=fmt),
              x.double(memory_format=fmt), x.to(memory_format=fmt),
              jg.zeros_like(x, memory_format=fmt), jg.ones_like(x, memory_format=fmt),
              jg.randn_like(x, memory_format=fmt)):
        assert y.is_contiguous() and y.view(-1).shape == (6,)
    assert not x.double(memory_format=jg.preserve_format).is_contiguous()
    assert not jg.empty_like(x, memory_format=jg.preserve_format).is_contiguous()
    nchw = jg.ones(2, 3, 4, 5)
    cl = nchw.contiguous(memory_format=jg.channels_last)
    want = torch.ones(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    assert cl._value.strides == tuple(s * 4 for s in want.stride())
    with pytest.raises(TypeError, match="memory_format"):
        x.clone(memory_format="contiguous")


LOSS_CASES = [((4, 3), (4,), {}), ((5, 3), (5,), dict(ignore_index=1)),
              ((4, 3), (4,), dict(label_smoothing=0.2)),
              ((4, 3), (4,), dict(label_smoothing=0.2, weight=True, ignore_index=2)),
              ((2, 3, 4, 5), (2, 4, 5), dict(ignore_index=0, label_smoothing=0.1)),
              ((2, 3, 4), (2, 4), dict(weight=True)), ((3,), (), {}),
              ((3,), (), dict(weight=True, label_smoothing=0.3))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", range(len(LOSS_CASES)))
def test_cross_entropy_and_nll_loss_options(case, reduction, dtype):
    shape, tshape, kw = LOSS_CASES[case]
    kw = dict(kw)
    rng = np.random.default_rng(case)
    c = shape[1] if len(shape) > 1 else shape[0]
    t = rng.integers(0, c, tshape)
    if "ignore_index" in kw:
        t.reshape(-1)[0] = kw["ignore_index"]
    w = rng.random(c) + 0.5 if kw.pop("weight", False) else None
    for name in ("cross_entropy", "nll_loss"):
        args = dict(kw, reduction=reduction)
        if name == "nll_loss":
            args.pop("label_smoothing", None)

        def jf(x, name=name, args=args):
            return getattr(JF, name)(x, jg.tensor(t), weight=None if w is None else
                                     jg.tensor(w.astype(dtype)), **args)

        def tf(x, name=name, args=args):
            return getattr(TF, name)(x, torch.tensor(t), weight=None if w is None else
                                     torch.tensor(w.astype(dtype)), **args)
        against_torch(jf, tf, [randn(*shape, seed=case)], dtype)


def test_cross_entropy_module_and_legacy_flags():
    x, t = randn(4, 3), np.array([0, 2, 1, 1])
    got = jg.nn.CrossEntropyLoss(label_smoothing=0.1)(jg.tensor(x), jg.tensor(t))
    want = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(x), torch.tensor(t))
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-12)
    got = JF.nll_loss(jg.tensor(x), jg.tensor(t), reduce=False)
    np.testing.assert_allclose(got.numpy(), -x[np.arange(4), t])
    with pytest.raises(RuntimeError, match="integer"):
        JF.nll_loss(jg.tensor(x), jg.tensor(t * 1.0))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,kw", [((2, 3, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
                                      ((3, 6, 5), dict(kernel_size=2)),
                                      ((1, 2, 8, 8), dict(kernel_size=(3, 2), stride=(2, 1),
                                                          dilation=2, padding=1))])
def test_max_pool2d_return_indices(shape, kw, dtype):
    x = randn(*shape)
    out, idx = JF.max_pool2d(jg.tensor(x.astype(dtype)), return_indices=True, **kw)
    tout, tidx = TF.max_pool2d(torch.tensor(x.astype(dtype)), return_indices=True, **kw)
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert idx.dtype is jg.int64
    against_torch(lambda t: JF.max_pool2d(t, **kw), lambda t: TF.max_pool2d(t, **kw), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_unbatched_convolutions(dtype):
    against_torch(lambda x, w, b: JF.conv2d(x, w, b, padding=1),
                  lambda x, w, b: TF.conv2d(x, w, b, padding=1),
                  [randn(3, 8, 7), randn(4, 3, 3, 2, seed=1), randn(4, seed=2)], dtype)
    against_torch(lambda x, w: JF.conv1d(x, w, stride=2), lambda x, w: TF.conv1d(x, w, stride=2),
                  [randn(3, 9), randn(4, 3, 3, seed=1)], dtype)
    against_torch(lambda x: JF.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2), [randn(2, 4, 6)],
                  dtype)
    with pytest.raises(jg.ShapeError, match="3-D"):
        JF.conv2d(jg.ones(2, 2), jg.ones(1, 1, 1, 1))


def test_zero_d_tensors_stay_zero_d_and_logical_ops_read_truth(tmp_path):
    """Silent wrong values found by torch's operator samples: np.ascontiguousarray made 0-d
    arrays 1-d (a saved scalar loaded as shape (1,), x.float(memory_format=...) of a 0-d
    tensor); logical_and of ints was a bitwise and (2 and 1 gave 0)."""
    p = str(tmp_path / "s.pt")
    jg.save({"s": jg.tensor(2.5), "m": jg.ones(2, 3).t()}, p)
    d = jg.load(p)
    assert d["s"].shape == () and d["s"].item() == 2.5 and d["m"].shape == (3, 2)
    x = jg.tensor(2.5)
    for fmt in (jg.contiguous_format, jg.preserve_format):
        assert x.float(memory_format=fmt).shape == () and x.double(memory_format=fmt).shape == ()
    assert jg.index_select(x, 0, jg.tensor([0])).shape == ()
    assert jg.nn.functional.prelu(jg.tensor(-2.0), jg.tensor([0.25])).shape == ()
    a, b = [2, 0, 3, -1], [1, 1, 0, 0]
    for name in ("logical_and", "logical_or", "logical_xor"):
        want = getattr(torch, name)(torch.tensor(a), torch.tensor(b))
        got = getattr(jg, name)(jg.tensor(a), jg.tensor(b))
        assert got.tolist() == want.tolist() and got.dtype is jg.bool
        got = getattr(jg, name)(jg.tensor(a, dtype=jg.float32), jg.tensor(b, dtype=jg.float64))
        assert got.tolist() == want.tolist()


def test_diag_embed_take_along_dim_negative_and_empty_softmax_as_torch():
    x = np.random.default_rng(3).normal(size=(2, 3))
    w = np.arange(50.0)
    for off, d1, d2 in [(0, -2, -1), (1, -2, -1), (-2, 0, 2), (1, 2, 0)]:
        xj, xt = jg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        a, b = jg.diag_embed(xj, off, d1, d2), torch.diag_embed(xt, off, d1, d2)
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
        (a * jg.tensor(w[:a.numel()].reshape(a.shape))).sum().backward()
        (b * torch.tensor(w[:b.numel()].reshape(b.shape))).sum().backward()
        np.testing.assert_array_equal(xj.grad.numpy(), xt.grad.numpy())
    i = [[-1, 0, 2], [2, -3, 1]]
    np.testing.assert_array_equal(jg.take_along_dim(jg.tensor(x), jg.tensor(i), 1).numpy(),
                                  torch.take_along_dim(torch.tensor(x), torch.tensor(i), 1).numpy())
    with pytest.raises(IndexError, match="out of bounds"):
        jg.take_along_dim(jg.tensor(x), jg.tensor([[-4]]), 1)
    for op in ("softmax", "log_softmax"):
        e = jg.zeros(0, 3, requires_grad=True)
        out = getattr(e, op)(-1)
        out.sum().backward()
        assert out.shape == (0, 3) and e.grad.shape == (0, 3)
    assert jg.ones(2, 3).mH.shape == (3, 2) and jg.ones(2, 3).flip(dims=(0,)).shape == (2, 3)
