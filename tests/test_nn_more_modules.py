"""Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout, Unflatten, Conv3d and ConvTranspose3d
against torch: reprs, shapes, mask statistics, gradients, errors."""

import math
import warnings

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch")
F = jg.nn.functional
TF = torch.nn.functional

ALPHA = 1.7580993408473766
DROPOUTS = ["Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
FUNCTIONALS = ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
# an input each functional takes without a warning
SHAPES = {"dropout1d": (4, 6, 5), "dropout2d": (4, 6, 3, 3), "dropout3d": (4, 6, 2, 2, 2),
          "alpha_dropout": (4, 6), "feature_alpha_dropout": (4, 6, 3)}


@pytest.fixture(autouse=True)
def _seeded():
    jg.manual_seed(0)  # the statistical checks below have margins of several sigmas


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _alpha_scale(p):
    return 1.0 / math.sqrt((ALPHA * ALPHA * p + 1) * (1 - p))


@pytest.mark.parametrize("name", DROPOUTS)
def test_dropout_modules_repr_defaults_and_p_range(name):
    jm, tm = getattr(jg.nn, name), getattr(torch.nn, name)
    for args in [(), (0.2,), (0.0, True), (1.0,)]:
        assert repr(jm(*args)) == repr(tm(*args))
    assert jm().p == 0.5 and jm().inplace is False and jm().training
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError) as want:
            tm(bad)
        with pytest.raises(ValueError, match=str(want.value)):
            jm(bad)
    assert getattr(jg.nn.modules.dropout, name) is jm


@pytest.mark.parametrize("name", FUNCTIONALS)
def test_functionals_identity_in_eval_and_p0_and_p_range(name, rng):
    jf, tf = getattr(F, name), getattr(TF, name)
    x = jg.tensor(rng.standard_normal(SHAPES[name]))
    assert jf(x, 0.5, training=False) is x
    assert jf(x, 0.0, training=True) is x
    with pytest.raises(ValueError) as want:
        tf(torch.from_numpy(x.numpy()), 1.5)
    with pytest.raises(ValueError, match=str(want.value)):
        jf(x, 1.5)
    # p = 1 zeroes everything, alpha dropout included (as ATen)
    np.testing.assert_array_equal(jf(x, 1.0, training=True).numpy(),
                                  tf(torch.from_numpy(x.numpy()), 1.0, training=True).numpy())
    # the alpha dropouts default to training=False, the others to True (torch's defaults)
    assert (jf(x) is x) == (name in ("alpha_dropout", "feature_alpha_dropout"))


@pytest.mark.parametrize("name", DROPOUTS)
def test_modules_eval_identity(name, rng):
    x = jg.tensor(rng.standard_normal(SHAPES[FUNCTIONALS[DROPOUTS.index(name)]]))
    m = getattr(jg.nn, name)(0.5)
    assert m.eval()(x) is x
    assert getattr(jg.nn, name)(0.0)(x) is x


@pytest.mark.parametrize("name,shape,chan_axes", [
    ("dropout1d", (50, 40, 7), (0, 1)), ("dropout1d", (2000, 9), (0,)),
    ("dropout2d", (40, 50, 3, 3), (0, 1)), ("dropout2d", (40, 50, 7), (0, 1)),
    ("dropout3d", (40, 50, 2, 2, 2), (0, 1)), ("dropout3d", (2000, 2, 2, 2), (0,)),
])
def test_channel_dropout_masks(name, shape, chan_axes):
    p = 0.3
    x = jg.ones(*shape, dtype=jg.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropout2d's 3-D (N, C, L) warning
        y = getattr(F, name)(x, p).numpy()
    assert y.shape == shape
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - p)])
    # whole channels: constant over every axis past the channel axes
    rest = tuple(range(len(chan_axes), len(shape)))
    assert (y.min(axis=rest) == y.max(axis=rest)).all()
    assert abs((y == 0).mean() - p) < 0.04


def test_dropout2d_and_3d_rank_warnings_and_errors_as_torch():
    for jf, tf, shape in [(F.dropout2d, TF.dropout2d, (3, 4)), (F.dropout2d, TF.dropout2d, (2, 3, 4)),
                          (F.dropout3d, TF.dropout3d, (2, 3, 4)), (F.dropout2d, TF.dropout2d, (2,) * 5)]:
        with pytest.warns(UserWarning) as want:
            tf(torch.ones(shape))
        with pytest.warns(UserWarning) as got:
            out = jf(jg.ones(*shape))
        assert [str(w.message) for w in got] == [str(w.message) for w in want]
        assert out.shape == shape
    # dropout3d of 3-D input: unbatched (C, D, H) → whole dim-0 slices
    with pytest.warns(UserWarning):
        y = F.dropout3d(jg.ones(200, 3, 3), 0.5).numpy()
    assert (y.min(axis=(1, 2)) == y.max(axis=(1, 2))).all()
    # a 1-D input has no channels: torch raises while training, passes it through in eval
    for jf, tf in [(F.dropout2d, TF.dropout2d), (F.feature_alpha_dropout, TF.feature_alpha_dropout)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError) as want:
                tf(torch.ones(3), 0.5, True)
            with pytest.raises(RuntimeError, match=str(want.value)):
                jf(jg.ones(3), 0.5, True)
            x = jg.ones(3)
            assert jf(x, 0.5, False) is x
    # dropout1d takes 2-D or 3-D only, even in eval
    for shape in [(3,), (2, 3, 4, 5)]:
        with pytest.raises(RuntimeError) as want:
            TF.dropout1d(torch.ones(shape), 0.5, False)
        with pytest.raises(RuntimeError) as got:
            F.dropout1d(jg.ones(*shape), 0.5, False)
        assert str(got.value) == str(want.value)


@pytest.mark.parametrize("name,shape", [("dropout1d", (3, 5, 4)), ("dropout1d", (5, 4)),
                                        ("dropout2d", (3, 5, 2, 2)), ("dropout3d", (5, 2, 2, 2))])
def test_channel_dropout_gradient_is_mask_times_scale(name, shape, rng):
    p = 0.4
    x = jg.tensor(rng.standard_normal(shape) + 3.0, requires_grad=True)  # no zeros
    y = getattr(F, name)(x, p)
    mask = y.detach().numpy() != 0
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() * mask / (1 - p))
    w = rng.standard_normal(shape)
    (y * jg.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), w * mask / (1 - p))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_alpha_dropout_statistics_and_gradient(p, rng):
    x = jg.tensor(rng.standard_normal(200_000), requires_grad=True)
    y = F.alpha_dropout(x, p, training=True)
    out = y.detach().numpy()
    a = _alpha_scale(p)
    dropped_value = -ALPHA * a * (1 - p)
    dropped = np.isclose(out, dropped_value, rtol=0, atol=1e-9)
    assert abs(dropped.mean() - p) < 0.01
    # self-normalizing: zero mean, unit variance kept (as torch's output does)
    tout = TF.alpha_dropout(torch.from_numpy(x.detach().numpy()), p, True).numpy()
    for o in (out, tout):
        assert abs(o.mean()) < 0.02 and abs(o.std() - 1) < 0.02
    kept = ~dropped
    np.testing.assert_allclose(out[kept], x.detach().numpy()[kept] * a + ALPHA * a * p)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept * a)
    m = jg.nn.AlphaDropout(p)
    assert (m(x).detach().numpy() != x.detach().numpy()).any()
    assert m.eval()(x) is x


def test_feature_alpha_dropout_whole_channels(rng):
    p = 0.5
    x = jg.tensor(rng.standard_normal((40, 50, 4, 4)), requires_grad=True)
    y = jg.nn.FeatureAlphaDropout(p)(x)
    out = y.detach().numpy()
    a = _alpha_scale(p)
    dropped = np.isclose(out, -ALPHA * a * (1 - p), rtol=0, atol=1e-9)
    per_channel = dropped.all(axis=(2, 3))
    assert (dropped.any(axis=(2, 3)) == per_channel).all()  # a channel goes whole, or not
    assert abs(per_channel.mean() - p) < 0.05
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(~per_channel[..., None, None] * a,
                                                                out.shape))


@pytest.mark.parametrize("name", FUNCTIONALS)
def test_inplace_and_seed_reproducible(name, rng):
    shape = SHAPES[name]
    x0 = rng.standard_normal(shape) + 5.0
    jg.manual_seed(7)
    a = getattr(F, name)(jg.tensor(x0), 0.5, True).numpy()
    jg.manual_seed(7)
    x = jg.tensor(x0)
    b = getattr(F, name)(x, 0.5, True, inplace=True)
    assert b is x
    np.testing.assert_array_equal(a, x.numpy())
    assert not np.array_equal(a, getattr(F, name)(jg.tensor(x0), 0.5, True).numpy())


def test_channel_dropout_under_jit_fresh_and_seeded():
    f = jg.jit(lambda v: F.dropout2d(v, 0.5), target="reference")
    x = jg.ones(8, 64, 2, 2)
    jg.manual_seed(3)
    a, b = f(x).numpy(), f(x).numpy()
    jg.manual_seed(3)
    c = f(x).numpy()
    assert (a != b).any() and np.array_equal(a, c)
    assert (a.min(axis=(2, 3)) == a.max(axis=(2, 3))).all()
    np.testing.assert_allclose(np.unique(a), [0.0, 2.0])
    g = jg.grad(lambda v: F.alpha_dropout(v, 0.5, True).sum(), target="reference")
    np.testing.assert_allclose(np.unique(g(jg.ones(200)).numpy()), [0.0, _alpha_scale(0.5)])


# --- Unflatten ---

@pytest.mark.parametrize("dim,sizes,shape", [
    (1, (2, 5, 5), (3, 50)), (-1, [2, -1], (3, 4, 6)), (0, (3, 1), (3, 4)),
    (-2, (-1, 2), (6, 4)), (1, torch.Size([2, 3]), (2, 6, 1)),
])
def test_unflatten_matches_torch(dim, sizes, shape, rng):
    xn = rng.standard_normal(shape)
    jm, tm = jg.nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    x = jg.tensor(xn, requires_grad=True)
    y = jm(x)
    t = tm(torch.from_numpy(xn))
    assert tuple(y.shape) == tuple(t.shape)
    np.testing.assert_array_equal(y.detach().numpy(), t.numpy())
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(shape))
    if not isinstance(sizes, torch.Size):  # jitgrad's Size prints as jitgrad.Size
        assert repr(jm) == repr(tm)
    assert jm.dim == dim and jm.unflattened_size == sizes


def test_unflatten_inverts_flatten_and_errors():
    x = jg.randn(2, 3, 4, 5)
    seq = jg.nn.Sequential(jg.nn.Flatten(1, 2), jg.nn.Unflatten(1, (3, 4)))
    np.testing.assert_array_equal(seq(x).numpy(), x.numpy())
    assert jg.nn.modules.flatten.Unflatten is jg.nn.Unflatten
    for bad in [2, (2.0, 3), "ab", (2, None)]:
        with pytest.raises(TypeError) as want:
            torch.nn.Unflatten(1, bad)
        with pytest.raises(TypeError) as got:
            jg.nn.Unflatten(1, bad)
        assert str(got.value) == str(want.value)
    t, j = torch.zeros(2, 6), jg.zeros(2, 6)
    for dim, sizes, err in [(1, (4, 2), RuntimeError), (1, (-1, -1), RuntimeError),
                            (1, (4, -1), RuntimeError), (1, (), RuntimeError),
                            (5, (2, 3), IndexError), (-3, (2, 3), IndexError)]:
        with pytest.raises(err):
            torch.nn.Unflatten(dim, sizes)(t)
        with pytest.raises(err):
            jg.nn.Unflatten(dim, sizes)(j)
    with pytest.raises(RuntimeError, match="don't multiply up to the size of dim 1"):
        jg.nn.Unflatten(1, (4, 2))(j)


# --- Conv3d / ConvTranspose3d ---

def _copy(jm, tm):
    with torch.no_grad():
        tm.weight.copy_(torch.from_numpy(jm.weight.detach().numpy()))
        if jm.bias is not None:
            tm.bias.copy_(torch.from_numpy(jm.bias.detach().numpy()))


def _check_fwd_bwd(jm, tm, xn, rng, **kw):
    _copy(jm, tm)
    x, tx = jg.tensor(xn, requires_grad=True), torch.tensor(xn, requires_grad=True)
    y, ty = jm(x, **kw), tm(tx, **kw)
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-10)
    w = rng.standard_normal(tuple(ty.shape))
    (y * jg.tensor(w)).sum().backward()
    (ty * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(jm.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-9,
                               atol=1e-10)
    if jm.bias is not None:
        np.testing.assert_allclose(jm.bias.grad.numpy(), tm.bias.grad.numpy(), rtol=1e-9,
                                   atol=1e-10)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("args,kw,shape", [
    ((2, 3, 3), {}, (2, 2, 5, 5, 5)),
    ((2, 4, (1, 2, 3)), dict(stride=2, padding=1, dilation=(1, 2, 1), groups=2),
     (1, 2, 5, 6, 7)),
    ((2, 3, 2), dict(padding="same", bias=False), (1, 2, 4, 4, 4)),
    ((2, 3, 3), dict(padding="valid"), (2, 4, 4, 4)),  # unbatched
    ((2, 2, 3), dict(padding=1, padding_mode="reflect"), (1, 2, 4, 4, 4)),
    ((2, 2, 3), dict(padding=(1, 0, 2), padding_mode="circular"), (1, 2, 4, 4, 4)),
    ((2, 2, 2), dict(padding="same", padding_mode="replicate"), (1, 2, 3, 4, 4)),
])
def test_conv3d_matches_torch(args, kw, shape, rng):
    jm, tm = jg.nn.Conv3d(*args, **kw).double(), torch.nn.Conv3d(*args, **kw).double()
    assert repr(jm) == repr(tm)
    _check_fwd_bwd(jm, tm, rng.standard_normal(shape), rng)


def test_conv3d_init_and_errors():
    m = jg.nn.Conv3d(4, 6, (2, 3, 3), groups=2)
    fan_in = 2 * 2 * 3 * 3
    bound = 1 / math.sqrt(fan_in)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert w.shape == (6, 2, 2, 3, 3) and b.shape == (6,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(b).max() <= bound
    assert sorted(dict(m.named_parameters())) == ["bias", "weight"]
    assert jg.nn.modules.conv.Conv3d is jg.nn.Conv3d
    for kw in [dict(stride=2, padding="same"), dict(padding="full"), dict(padding_mode="foo"),
               dict(groups=3)]:
        with pytest.raises(ValueError):
            torch.nn.Conv3d(2, 4, 3, **kw)
        with pytest.raises(ValueError):
            jg.nn.Conv3d(2, 4, 3, **kw)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        jg.nn.Conv3d(2, 4, 3, stride=2, padding="same")


@pytest.mark.parametrize("args,kw,shape,out_size", [
    ((2, 3, 3), dict(stride=2, output_padding=1), (1, 2, 3, 3, 3), None),
    ((4, 2, (2, 3, 1)), dict(stride=(1, 2, 2), padding=1, groups=2, bias=False),
     (2, 4, 3, 3, 4), None),
    ((2, 2, 3), dict(stride=2), (2, 3, 3, 3), [7, 8, 7]),  # unbatched, output_size
])
def test_conv_transpose3d_matches_torch(args, kw, shape, out_size, rng):
    jm = jg.nn.ConvTranspose3d(*args, **kw).double()
    tm = torch.nn.ConvTranspose3d(*args, **kw).double()
    assert repr(jm) == repr(tm)
    extra = {} if out_size is None else {"output_size": out_size}
    _check_fwd_bwd(jm, tm, rng.standard_normal(shape), rng, **extra)
