"""``fractional_max_pool2d``/``3d`` (functional and Modules) and ``unique``/``unique_consecutive``
with ``dim``, each against PyTorch: the pooled values, the indices and the input gradient for
the same ``_random_samples``; unique slices, inverse and counts for several shapes and dims;
and the errors for bad arguments."""

import itertools

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


# --- fractional max pooling --------------------------------------------------------------------

POOL_CASES = [
    # (nd, input shape, kernel_size, output_size)
    (2, (2, 3, 7, 8), 3, (5, 5)),
    (2, (2, 3, 7, 8), 2, (6, 7)),
    (2, (1, 2, 10, 9), (2, 3), (4, 3)),
    (2, (3, 11, 12), 2, (5, 6)),  # unbatched
    (2, (2, 2, 5, 5), 2, (1, 1)),
    (2, (2, 2, 5, 5), 1, (5, 5)),
    (2, (1, 2, 50, 32), 3, (13, 12)),
    (3, (2, 3, 5, 6, 7), 2, (3, 4, 5)),
    (3, (2, 5, 6, 7), (1, 2, 3), (3, 4, 4)),  # unbatched
    (3, (1, 1, 9, 9, 9), 3, (5, 4, 6)),  # overlapping windows
]


def _pool_pair(nd, a, k, u, **kw):
    """The same pooling (with indices) in torch and jitgrad, and the gradients of a weighted
    sum of each: ((out, idx, grad) torch, (out, idx, grad) jitgrad)."""
    g = np.random.default_rng(7).standard_normal(
        getattr(TF, f"fractional_max_pool{nd}d")(torch.tensor(a), k, _random_samples=torch.tensor(u),
                                                 **kw).shape).astype(a.dtype)
    res = []
    for lib, fn in ((torch, getattr(TF, f"fractional_max_pool{nd}d")),
                    (jg, getattr(F, f"fractional_max_pool{nd}d"))):
        x = lib.tensor(a, requires_grad=True)
        out, idx = fn(x, k, return_indices=True, _random_samples=lib.tensor(u), **kw)
        (out * lib.tensor(g)).sum().backward()
        res.append((out.detach().numpy(), idx.numpy(), x.grad.numpy(), out.shape, idx.dtype))
    return res


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd,shape,k,o", POOL_CASES)
def test_fractional_max_pool_matches_torch(nd, shape, k, o, dtype):
    rng = np.random.default_rng(hash((shape, o)) % 2**32)
    n = shape[0] if len(shape) == nd + 2 else 1
    c = shape[-nd - 1]
    for trial in range(3):
        a = rng.standard_normal(shape).astype(dtype)
        if trial == 1:
            a = np.round(a)  # ties: the first largest element wins, as torch's
        u = rng.random((n, c, nd)).astype(dtype)
        if trial == 2:
            u[..., 0] = 0.0
        t, j = _pool_pair(nd, a, k, u, output_size=o)
        assert tuple(j[3]) == tuple(t[3])
        np.testing.assert_array_equal(j[0], t[0])
        np.testing.assert_array_equal(j[1], t[1])
        assert j[4] == jg.int64
        np.testing.assert_allclose(j[2], t[2], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("nd,shape,ratio", [(2, (2, 3, 9, 8), 0.5), (2, (1, 1, 10, 12), (0.4, 0.7)),
                                            (3, (1, 2, 6, 7, 8), 0.5)])
def test_fractional_max_pool_output_ratio(nd, shape, ratio):
    rng = np.random.default_rng(3)
    a = rng.standard_normal(shape).astype(np.float32)
    u = rng.random((shape[0], shape[1], nd)).astype(np.float32)
    t_ratio = ratio if isinstance(ratio, tuple) or nd == 3 else (ratio, ratio)
    t = getattr(TF, f"fractional_max_pool{nd}d")(torch.tensor(a), 2, output_ratio=t_ratio,
                                                 _random_samples=torch.tensor(u))
    j = getattr(F, f"fractional_max_pool{nd}d")(jg.tensor(a), 2, output_ratio=ratio,
                                                _random_samples=jg.tensor(u))
    assert tuple(j.shape) == tuple(t.shape)
    np.testing.assert_array_equal(j.numpy(), t.numpy())


def test_fractional_max_pool_with_indices_and_samples_larger_than_batch():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    u = rng.random((4, 3, 2)).astype(np.float32)  # torch reads the first N rows
    t = TF.fractional_max_pool2d_with_indices(torch.tensor(a), 2, output_size=5,
                                              _random_samples=torch.tensor(u))
    j = F.fractional_max_pool2d_with_indices(jg.tensor(a), 2, output_size=5,
                                             _random_samples=jg.tensor(u))
    for x, y in zip(t, j):
        np.testing.assert_array_equal(y.numpy(), x.numpy())
    a3 = rng.standard_normal((1, 2, 5, 6, 7)).astype(np.float64)
    u3 = rng.random((1, 2, 3))
    t3 = TF.fractional_max_pool3d_with_indices(torch.tensor(a3), 2, output_size=(3, 3, 3),
                                               _random_samples=torch.tensor(u3))
    j3 = F.fractional_max_pool3d_with_indices(jg.tensor(a3), 2, output_size=(3, 3, 3),
                                              _random_samples=jg.tensor(u3))
    for x, y in zip(t3, j3):
        np.testing.assert_array_equal(y.numpy(), x.numpy())


def test_fractional_max_pool_empty_output_and_batch():
    x = jg.randn(2, 3, 7, 8)
    assert tuple(F.fractional_max_pool2d(x, 3, output_size=0).shape) == (2, 3, 0, 0)
    assert tuple(F.fractional_max_pool2d(x[:0], 3, output_size=2).shape) == (0, 3, 2, 2)


def test_fractional_max_pool_draws_from_the_generator():
    x = jg.randn(2, 3, 11, 11)
    jg.manual_seed(5)
    a, ia = F.fractional_max_pool2d(x, 2, output_size=6, return_indices=True)
    jg.manual_seed(5)
    b, ib = F.fractional_max_pool2d(x, 2, output_size=6, return_indices=True)
    assert bool((ia == ib).all()) and bool((a == b).all())
    # the draw is N x C x 2 uniforms in the input's dtype, as torch's
    jg.manual_seed(5)
    u = jg.rand(2, 3, 2)
    c = F.fractional_max_pool2d(x, 2, output_size=6, _random_samples=u)
    assert bool((a == c).all())


def test_fractional_max_pool_modules():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    u = rng.random((2, 3, 2)).astype(np.float32)
    tm = torch.nn.FractionalMaxPool2d(3, output_size=(5, 6), return_indices=True,
                                      _random_samples=torch.tensor(u))
    jm = jg.nn.FractionalMaxPool2d(3, output_size=(5, 6), return_indices=True,
                                   _random_samples=jg.tensor(u))
    for x, y in zip(tm(torch.tensor(a)), jm(jg.tensor(a))):
        np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert repr(jm) == repr(tm) == "FractionalMaxPool2d()"
    assert list(jm.state_dict()) == list(tm.state_dict()) == ["_random_samples"]
    assert jm.kernel_size == tm.kernel_size and jm.output_size == tm.output_size
    a3 = rng.standard_normal((1, 2, 6, 7, 8)).astype(np.float32)
    u3 = rng.random((1, 2, 3)).astype(np.float32)
    tm3 = torch.nn.FractionalMaxPool3d(2, output_ratio=0.5, _random_samples=torch.tensor(u3))
    jm3 = jg.nn.FractionalMaxPool3d(2, output_ratio=0.5, _random_samples=jg.tensor(u3))
    np.testing.assert_array_equal(jm3(jg.tensor(a3)).numpy(), tm3(torch.tensor(a3)).numpy())
    assert jm3.output_ratio == tm3.output_ratio
    # without samples, each call draws afresh
    out = jg.nn.FractionalMaxPool2d(2, output_ratio=0.5)(jg.randn(1, 2, 8, 8))
    assert tuple(out.shape) == (1, 2, 4, 4)
    from jitgrad.nn.modules.pooling import FractionalMaxPool3d
    assert FractionalMaxPool3d is jg.nn.FractionalMaxPool3d


def test_fractional_max_pool_compiled_with_given_samples():
    u = jg.rand(2, 3, 2)
    x = jg.randn(2, 3, 7, 8)

    def f(x):
        return F.fractional_max_pool2d(x, 2, output_size=4, _random_samples=u).sum()

    g = jg.grad(f)(x)
    x2 = x.detach().requires_grad_()
    f(x2).backward()
    np.testing.assert_allclose(g.numpy(), x2.grad.numpy())


@pytest.mark.parametrize("call,exc,match", [
    (lambda x, s: F.fractional_max_pool2d(x, 3, output_size=6, _random_samples=s),
     RuntimeError, "pool height 3 too large relative to input height 7"),
    (lambda x, s: F.fractional_max_pool2d(x, 3, output_size=(5, 7), _random_samples=s),
     RuntimeError, "pool width 3 too large relative to input width 8"),
    (lambda x, s: F.fractional_max_pool2d(x, 3, output_size=5, _random_samples=jg.rand(2, 3, 3)),
     RuntimeError, r"_random_samples.size\(2\) equals to 2; got 3"),
    (lambda x, s: F.fractional_max_pool2d(x, 3, output_size=5, _random_samples=jg.rand(1, 3, 2)),
     RuntimeError, r"_random_samples.size\(0\) no less then input batch size"),
    (lambda x, s: F.fractional_max_pool2d(x, 3, output_size=5, _random_samples=jg.rand(2, 2, 2)),
     RuntimeError, r"_random_samples.size\(1\) equals to input channel size"),
    (lambda x, s: F.fractional_max_pool2d(x, 3, output_size=5, _random_samples=jg.rand(2, 3)),
     RuntimeError, "_random_samples to have 3 dimensions, got 2"),
    (lambda x, s: F.fractional_max_pool2d(x, 3, output_size=5, _random_samples=s.double()),
     RuntimeError, "same dtype as input"),
    (lambda x, s: F.fractional_max_pool2d(x, 3), ValueError,
     "requires specifying either an output_size or an output_ratio"),
    (lambda x, s: F.fractional_max_pool2d(x, 0, output_size=2), RuntimeError,
     "kernel size should be greater than zero, but got 0x0"),
    (lambda x, s: F.fractional_max_pool2d(x[:, :, :0], 3, output_size=1), RuntimeError,
     "non-zero size for non-batch dimensions"),
    (lambda x, s: F.fractional_max_pool2d(x.long(), 3, output_size=2), NotImplementedError,
     "floating point"),
    (lambda x, s: F.fractional_max_pool2d(x[0, 0], 3, output_size=2), RuntimeError, "3-D"),
    # torch's 3-D check is strict: o + k - 1 must be smaller than the input
    (lambda x, s: F.fractional_max_pool3d(jg.randn(2, 3, 5, 6, 7), 2, output_size=(4, 4, 4)),
     RuntimeError, "pool time 2 too large relative to input time 5"),
    (lambda x, s: jg.nn.FractionalMaxPool2d(2, output_ratio=1.5), ValueError,
     r"output_ratio must be between 0 and 1 \(got 1.5\)"),
    (lambda x, s: jg.nn.FractionalMaxPool2d(2), ValueError,
     "FractionalMaxPool2d requires specifying either an output size, or a pooling ratio"),
    (lambda x, s: jg.nn.FractionalMaxPool3d(2, output_size=3, output_ratio=0.5), ValueError,
     "only one of output_size and output_ratio may be specified"),
    (lambda x, s: jg.nn.FractionalMaxPool3d(0, output_size=3), ValueError,
     "kernel_size must be greater than 0, but got 0"),
])
def test_fractional_max_pool_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(jg.randn(2, 3, 7, 8), jg.rand(2, 3, 2))


def test_fractional_max_pool_inside_jit_needs_samples():
    def h(x):
        return F.fractional_max_pool2d(x, 2, output_size=4).sum()

    with pytest.raises(RuntimeError, match="_random_samples"):
        jg.jit(h)(jg.randn(1, 1, 6, 6))


# --- unique / unique_consecutive with dim ------------------------------------------------------

UNIQUE_SHAPES = [(5,), (4, 3), (3, 4, 2), (2, 3, 2, 2), (6, 1), (1, 1), (0, 3), (2, 0), (0,)]


def _same(t, j):
    t = t if isinstance(t, tuple) else (t,)
    j = j if isinstance(j, tuple) else (j,)
    assert len(t) == len(j)
    for x, y in zip(t, j):
        assert tuple(y.shape) == tuple(x.shape)
        assert y.dtype.name == str(x.dtype).split(".")[1]
        np.testing.assert_array_equal(y.numpy(), x.numpy())


@pytest.mark.parametrize("fn", ["unique", "unique_consecutive"])
@pytest.mark.parametrize("shape", UNIQUE_SHAPES)
def test_unique_dim_matches_torch(fn, shape):
    rng = np.random.default_rng(len(shape) * 10 + sum(shape))
    for dtype in (np.int64, np.float32, np.bool_):
        a = rng.integers(0, 2, size=shape)
        if len(shape) > 1 and shape[0] > 2:
            a[1] = a[0]  # a run of equal slices
        a = a.astype(dtype)
        for dim in range(-len(shape), len(shape)):
            for ri, rc in itertools.product((False, True), repeat=2):
                kw = dict(return_inverse=ri, return_counts=rc, dim=dim)
                try:
                    t = getattr(torch, fn)(torch.tensor(a), **kw)
                except RuntimeError as e:  # an empty dim that is not the one selected
                    with pytest.raises(RuntimeError, match="0 sized dimensions"):
                        getattr(jg, fn)(jg.tensor(a), **kw)
                    assert "0 sized dimensions" in str(e)
                    continue
                _same(t, getattr(jg, fn)(jg.tensor(a), **kw))


def test_unique_consecutive_dim_examples():
    a = np.array([[1, 2, 1], [1, 2, 1], [3, 0, 3], [1, 2, 1]])
    for dim in (0, 1, -1, -2):
        _same(torch.unique_consecutive(torch.tensor(a), return_inverse=True,
                                       return_counts=True, dim=dim),
              jg.unique_consecutive(jg.tensor(a), return_inverse=True, return_counts=True,
                                    dim=dim))
        _same(torch.tensor(a).unique_consecutive(dim=dim),
              jg.tensor(a).unique_consecutive(dim=dim))
        _same(torch.tensor(a).unique(dim=dim, return_inverse=True),
              jg.tensor(a).unique(dim=dim, return_inverse=True))
    f = np.array([[-0.0, 1.5], [0.0, 1.5], [2.0, -1.0]], dtype=np.float32)
    _same(torch.unique(torch.tensor(f), dim=0, return_counts=True),
          jg.unique(jg.tensor(f), dim=0, return_counts=True))
    # sorted=False still sorts slices, as torch
    _same(torch.unique(torch.tensor(a), sorted=False, dim=1),
          jg.unique(jg.tensor(a), sorted=False, dim=1))
    # dim=None keeps working (0-d too)
    _same(torch.unique_consecutive(torch.tensor(3.0), return_inverse=True, return_counts=True),
          jg.unique_consecutive(jg.tensor(3.0), return_inverse=True, return_counts=True))
    _same(torch.unique_consecutive(torch.tensor(a), return_inverse=True, return_counts=True),
          jg.unique_consecutive(jg.tensor(a), return_inverse=True, return_counts=True))


@pytest.mark.parametrize("fn", ["unique", "unique_consecutive"])
@pytest.mark.parametrize("x,dim,exc,match", [
    ([[1, 2], [3, 4]], 2, IndexError, "out of range"),
    ([[1, 2], [3, 4]], -3, IndexError, "out of range"),
    (3.0, 0, IndexError, "Dimension specified as 0 but tensor has no dimensions"),
    (3.0, -1, IndexError, "Dimension specified as -1 but tensor has no dimensions"),
    ([[1, 2], [3, 4]], 1.0, TypeError, "argument 'dim' must be int, not float"),
    ([[1, 2], [3, 4]], True, TypeError, "argument 'dim' must be int, not bool"),
    ([[1, 2], [3, 4]], (0,), TypeError, "argument 'dim' must be int"),
])
def test_unique_dim_errors(fn, x, dim, exc, match):
    with pytest.raises(exc, match=match):
        getattr(jg, fn)(jg.tensor(x), dim=dim)
    with pytest.raises(exc):
        getattr(torch, fn)(torch.tensor(x), dim=dim)


def test_unique_dim_inside_jit_is_an_error():
    def f(x):
        return jg.unique_consecutive(x, dim=0).sum()

    with pytest.raises(RuntimeError, match="compiled"):
        jg.jit(f)(jg.tensor([[1.0, 2.0], [1.0, 2.0]]))
