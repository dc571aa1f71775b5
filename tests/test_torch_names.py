"""PyTorch names learners type, checked against torch: NumPy-style keywords (axis=, keepdims=,
size=), log10/log2, cumsum, movedim, all/any/allclose/isclose, the legacy typed constructors,
autograd.Variable, new_* with a dtype."""

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch", reason="checked against PyTorch")

X = np.arange(6.0).reshape(2, 3) / 5 + 0.1
CASES = {
    "sum(axis=)": lambda m, x: x.sum(axis=1),
    "sum(dim, keepdims=)": lambda m, x: x.sum(1, keepdims=True),
    "torch.sum(axis=, keepdims=)": lambda m, x: m.sum(x, axis=0, keepdims=True),
    "mean(axis=)": lambda m, x: x.mean(axis=0),
    "max(axis=).values": lambda m, x: x.max(axis=1).values,
    "amax(axis=)": lambda m, x: x.amax(axis=1),
    "argmax(axis=)": lambda m, x: x.argmax(axis=1),
    "std(axis=)": lambda m, x: x.std(axis=0),
    "logsumexp(axis=)": lambda m, x: m.logsumexp(x, axis=1),
    "softmax(axis=)": lambda m, x: x.softmax(axis=1),
    "zeros(size=)": lambda m, x: m.zeros(size=(2, 3)),
    "full(size=, fill_value=)": lambda m, x: m.full(size=(2,), fill_value=3.0),
    "log10": lambda m, x: m.log10(x * 100),
    "log2": lambda m, x: x.log2(),
    "cumsum": lambda m, x: x.cumsum(1),
    "cumsum of bools": lambda m, x: m.cumsum(x > 0.5, 1),
    "movedim": lambda m, x: x.reshape(1, 2, 3).movedim(0, 2),
    "movedim of sequences": lambda m, x: x.reshape(1, 2, 3).movedim((0, 1), (2, 0)),
    "all": lambda m, x: m.all(x > 0),
    "any(dim)": lambda m, x: (x > 0.5).any(dim=1),
    "isclose": lambda m, x: m.isclose(x, x + 1e-9),
    "FloatTensor": lambda m, x: m.FloatTensor([1, 2]),
    "LongTensor": lambda m, x: m.LongTensor([1, 2]),
    # (torch leaves it unset: filled, as NaN * 0 would be NaN where the memory held one)
    "FloatTensor(sizes)": lambda m, x: m.FloatTensor(2, 3).zero_(),
    "new_ones(dtype=)": lambda m, x: x.new_ones(3, dtype=m.int64),
    "Variable": lambda m, x: m.autograd.Variable(x, requires_grad=True) * 2,
}


@pytest.mark.parametrize("name", list(CASES))
def test_as_torch(name):
    fn = CASES[name]
    got = fn(jg, jg.tensor(X))
    want = fn(torch, torch.tensor(X))
    assert tuple(got.shape) == tuple(want.shape), name
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], name
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)


def test_allclose_and_gradients_of_cumsum_and_movedim():
    assert jg.allclose(jg.tensor(X), jg.tensor(X + 1e-9)) and not jg.allclose(
        jg.tensor(X), jg.tensor(X + 1e-3))
    w = np.random.default_rng(0).standard_normal((3, 1, 2))
    x = jg.tensor(X, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    (x.cumsum(1).reshape(1, 2, 3).movedim(0, 2) * jg.tensor(w.transpose(1, 0, 2).reshape(2, 3, 1))
     ).sum().backward()
    (tx.cumsum(1).reshape(1, 2, 3).movedim(0, 2) * torch.tensor(
        w.transpose(1, 0, 2).reshape(2, 3, 1))).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    for target in ("reference", "cpu"):
        g = jg.grad(lambda x: (x.cumsum(0) * x).sum(), target=target)(jg.tensor(X))
        tx = torch.tensor(X, requires_grad=True)
        (tx.cumsum(0) * tx).sum().backward()
        np.testing.assert_allclose(g.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_generator_and_multinomial():
    """A seeded Generator reproduces its draws and leaves the global one alone; multinomial
    samples categories by weight (with or without replacement), and refuses what torch refuses."""
    a = jg.randn(4, generator=jg.Generator().manual_seed(7))
    jg.manual_seed(1)
    b = jg.randn(4, generator=jg.Generator().manual_seed(7))
    c = jg.randn(4)  # the global stream, untouched by the generators
    jg.manual_seed(1)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(c.numpy(), jg.randn(4).numpy())
    g = jg.Generator().manual_seed(0)
    p = jg.tensor([0.2, 0.0, 0.8])
    draws = jg.multinomial(p, 4000, replacement=True, generator=g)
    assert draws.dtype is jg.int64 and tuple(draws.shape) == (4000,)
    freq = np.bincount(draws.numpy(), minlength=3) / 4000
    assert freq[1] == 0 and abs(freq[2] - 0.8) < 0.03
    rows = jg.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
    two = jg.multinomial(rows[:1], 2, generator=g)
    assert sorted(two.tolist()[0]) == [0, 1]  # without replacement: both nonzero categories
    assert jg.multinomial(rows, 1).tolist()[1] == [3]
    # past the positive categories, torch (and jitgrad) draw the zero-weight ones
    assert sorted(jg.multinomial(jg.tensor([0.5, 0.0]), 2).tolist()) == [0, 1]
    for bad in (lambda m: m.multinomial(m.tensor([0.5, 0.5]), 3),
                lambda m: m.multinomial(m.tensor([-1.0, 2.0]), 1),
                lambda m: m.multinomial(m.tensor([0.0, 0.0]), 1, replacement=True)):
        with pytest.raises(RuntimeError):
            bad(torch)
        with pytest.raises(RuntimeError, match="multinomial"):
            bad(jg)


def test_matmul_family_takes_torchs_keyword_names():
    a, b = jg.ones(2, 3), jg.ones(3)
    assert jg.matmul(input=a, other=b).tolist() == [3.0, 3.0]
    assert jg.mm(a, mat2=jg.ones(3, 2)).shape == (2, 2)
    assert jg.dot(input=b, tensor=b).item() == 3.0
    assert jg.outer(input=b, vec2=jg.ones(2)).shape == (3, 2)


def test_assigning_grad_is_checked_as_torch_checks_it():
    torch = pytest.importorskip("torch")
    ours, theirs = jg.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    for bad, kind in [(0.0, TypeError), (jg.zeros(3), RuntimeError)]:
        with pytest.raises(kind) as got:
            ours.grad = bad
        with pytest.raises(kind) as want:
            theirs.grad = torch.zeros(3) if isinstance(bad, jg.Tensor) else bad
        assert str(got.value) == str(want.value)
    with pytest.raises(RuntimeError, match="different type"):
        ours.grad = jg.zeros(2, dtype=jg.float64)
    ours.grad = jg.full((2,), 3.0)
    ours.grad = None
    assert ours.grad is None


def test_default_device_accelerator_and_profiler_arguments():
    jg.set_default_device("cpu")
    jg.set_default_device(None)
    assert jg.get_default_device() == "cpu"
    with pytest.raises(ValueError, match="target='cuda'"):
        jg.set_default_device("cuda")
    dev = jg.accelerator.current_accelerator().type if jg.accelerator.is_available() else "cpu"
    assert dev == "cpu" and jg.accelerator.device_count() == 0
    with jg.autograd.profiler.profile(use_cuda=False, profile_memory=True) as prof:
        (jg.ones(3) * 2).sum()
    assert "mul" in prof.key_averages().table()
    with pytest.raises(TypeError):
        jg.autograd.profiler.profile(use_cdua=True)  # a misspelling is not swallowed


INDEXES = [(1,), (slice(1, 3),), (0, slice(1, 3)), (slice(1, 3), 0), ([0, 1],), (None,),
           (Ellipsis,), (slice(None),), (0, 1), (range(2),), ([0, 2], slice(1, 3))]


@pytest.mark.parametrize("idx", INDEXES, ids=[repr(i) for i in INDEXES])
def test_indexing_grad_fn_names_values_and_gradients_as_torch(idx):
    torch = pytest.importorskip("torch")
    base = np.arange(12.0).reshape(3, 4)
    x = jg.tensor(base, requires_grad=True)
    t = torch.tensor(base, requires_grad=True)
    tidx = tuple(torch.tensor(i) if isinstance(i, list) else i for i in idx)
    y, ty = x[idx], t[tidx]
    assert y.grad_fn.name() == ty.grad_fn.name()
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    if isinstance(idx[0], range):  # compiled too: the range is a constant index
        g = jg.grad(lambda v: (v[idx] ** 2).sum())(jg.tensor(base))
        np.testing.assert_array_equal(g.numpy(), t.grad.numpy())


def test_histogram_and_histc_equal_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(200)
    for bins, rng in [(10, None), (7, (-1.0, 1.0))]:
        a = jg.histogram(jg.tensor(x), bins=bins, range=rng)
        b = torch.histogram(torch.tensor(x), bins=bins, range=rng)
        np.testing.assert_array_equal(a.hist.numpy(), b.hist.numpy())
        np.testing.assert_allclose(a.bin_edges.numpy(), b.bin_edges.numpy(), rtol=1e-12)
        assert a.hist.dtype is jg.float64
    edges = jg.tensor([-2.0, 0.0, 0.5, 3.0], dtype=jg.float64)
    np.testing.assert_array_equal(jg.histogram(jg.tensor(x), bins=edges).hist.numpy(),
                                  torch.histogram(torch.tensor(x), bins=torch.tensor(
                                      edges.numpy())).hist.numpy())
    for bins, lo, hi in [(10, 0, 0), (6, -1, 1), (3, 5, 5)]:
        np.testing.assert_array_equal(jg.histc(jg.tensor(x), bins, lo, hi).numpy(),
                                      torch.histc(torch.tensor(x), bins, lo, hi).numpy())
    with pytest.raises(RuntimeError, match="floating"):
        jg.histc(jg.tensor([1, 2]))


LOSSES = {
    "mse_loss": lambda F, x, t, c: F.mse_loss(x, t, reduction=c),
    "l1_loss": lambda F, x, t, c: F.l1_loss(x, t, reduction=c),
    "smooth_l1_loss": lambda F, x, t, c: F.smooth_l1_loss(x, t, reduction=c),
    "huber_loss": lambda F, x, t, c: F.huber_loss(x, t, reduction=c),
    "binary_cross_entropy": lambda F, x, t, c: F.binary_cross_entropy(x.sigmoid(), t.sigmoid(),
                                                                      reduction=c),
    "binary_cross_entropy_with_logits":
        lambda F, x, t, c: F.binary_cross_entropy_with_logits(x, t.sigmoid(), reduction=c),
    "nll_loss": lambda F, x, t, c: F.nll_loss(x.log_softmax(1), (t > 0.5).long()[:, 0],
                                              reduction=c),
    "cross_entropy": lambda F, x, t, c: F.cross_entropy(x, (t > 0.5).long()[:, 0], reduction=c),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", list(LOSSES))
def test_loss_grad_fn_names_values_and_gradients_as_torch(loss, reduction):
    """A loss written as several ops names its grad_fn as torch's fused node does
    (BinaryCrossEntropyWithLogitsBackward0...), and backward through it is unchanged."""
    import jitgrad.nn.functional as F

    base = np.random.default_rng(3).standard_normal((4, 3))
    target = np.random.default_rng(4).standard_normal((4, 3))
    x, t = jg.tensor(base, requires_grad=True), torch.tensor(base, requires_grad=True)
    y = LOSSES[loss](F, x, jg.tensor(target), reduction)
    ty = LOSSES[loss](torch.nn.functional, t, torch.tensor(target), reduction)
    assert y.grad_fn.name() == ty.grad_fn.name()
    assert repr(y.grad_fn).startswith(f"<{ty.grad_fn.name()} object")
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["float32", "float64", "int64", "int32", "int16", "int8",
                                  "uint8", "bool"])
def test_tensor_type_names_and_casts_as_torch(name):
    """``x.type()`` is torch's legacy name under jitgrad's prefix, and ``x.type(...)`` casts
    from a dtype or from such a name, spelled as torch code spells it."""
    x = jg.ones(2).to(getattr(jg, name))
    t = torch.ones(2).to(getattr(torch, name))
    assert x.type() == t.type().replace("torch.", "jitgrad.")
    legacy = t.type()
    assert jg.ones(2).type(legacy).dtype == x.dtype
    assert jg.ones(2).type(legacy.replace("torch.", "jitgrad.")).dtype == x.dtype
    assert jg.ones(2).type(getattr(jg, name)).dtype == x.dtype
    with pytest.raises(ValueError, match="invalid type: 'torch.HalfTensor'"):
        x.type("torch.HalfTensor")


@pytest.mark.parametrize("reps", [(2, 1), (1, 2), (2, 2, 3), (3, 1, 1), (0, 2)])
def test_repeat_and_tile_values_and_gradients_as_torch(reps):
    base = np.arange(6.0).reshape(2, 3)
    x, t = jg.tensor(base, requires_grad=True), torch.tensor(base, requires_grad=True)
    y, ty = x.repeat(*reps), t.repeat(*reps)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    w = np.random.default_rng(0).standard_normal(tuple(ty.shape))
    (y * jg.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    g = jg.grad(lambda v: (v.repeat(reps) * jg.tensor(w)).sum())(jg.tensor(base))  # compiled
    np.testing.assert_allclose(g.numpy(), t.grad.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(jg.tile(jg.tensor(base), reps[1:]).numpy(),
                                  torch.tile(torch.tensor(base), reps[1:]).numpy())
    with pytest.raises(jg.ShapeError, match="repeat dims"):
        x.repeat(2)


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_traced_allclose_item_and_a_function_of_no_arguments(target):
    """allclose read its arguments' values at trace time (a later call reused that answer);
    now it is a guard on a traced isclose. jit of a function of no arguments compiles."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to the interpreter, no warning
        g = jg.jit(lambda x, y: x * 2 if jg.allclose(x, y) else x * 3, target=target)
        ones, zeros = jg.ones(3), jg.zeros(3)
        assert g(ones, ones).tolist() == [2.0] * 3 and g(ones, zeros).tolist() == [3.0] * 3
        assert g(ones, ones + 1e-9).tolist() == [2.0] * 3
        assert g.cache_info().fallbacks == ()
        f = jg.jit(lambda x: x.sum().item() * x, target=target)
        assert f(ones).tolist() == [3.0] * 3 and f(ones * 2).tolist() == [12.0] * 3
        assert jg.jit(lambda: jg.ones(3) * 2, target=target)().tolist() == [2.0] * 3


def test_isclose_matches_torch_on_infinities_nans_and_ints():
    torch = pytest.importorskip("torch")
    a = np.array([1.0, np.inf, -np.inf, np.nan, 1e-9, 5.0, np.inf, 1.0])
    b = np.array([1.0 + 1e-7, np.inf, np.inf, np.nan, 0.0, np.inf, 5.0, 1.1])
    for equal_nan in (False, True):
        for rtol, atol in ((1e-5, 1e-8), (0.2, 0.0)):
            want = torch.isclose(torch.tensor(a), torch.tensor(b), rtol, atol, equal_nan)
            got = jg.isclose(jg.tensor(a), jg.tensor(b), rtol, atol, equal_nan)
            assert got.tolist() == want.tolist()
    i, j = [1, 2, 3], [1, 2, 4]
    assert jg.isclose(jg.tensor(i), jg.tensor(j)).tolist() == \
        torch.isclose(torch.tensor(i), torch.tensor(j)).tolist()
