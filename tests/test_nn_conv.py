"""Convolution and pooling against torch: values and gradients (input, weight, bias) over
strides, padding, dilation and groups, eager and compiled."""

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as F

torch = pytest.importorskip("torch", reason="checked against PyTorch")
TF = torch.nn.functional

CASES = [  # (N, C, H, W), (OC, KH, KW), stride, padding, dilation, groups
    ((2, 3, 7, 6), (4, 3, 3), 1, 0, 1, 1),
    ((1, 4, 8, 8), (6, 3, 2), (2, 1), (1, 2), 1, 2),
    ((2, 2, 9, 7), (2, 2, 3), 2, 1, (2, 1), 1),
    ((1, 4, 5, 5), (4, 1, 1), 1, 0, 1, 4),
]


def _rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("case", CASES, ids=[str(c[:1]) for c in CASES])
def test_conv2d_values_and_gradients_equal_torch(case):
    xs, (oc, kh, kw), stride, padding, dilation, groups = case
    xa, wa = _rand(xs, 0), _rand((oc, xs[1] // groups, kh, kw), 1)
    ba = _rand(oc, 2)
    x, w, b = (jg.tensor(a, requires_grad=True) for a in (xa, wa, ba))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba))
    out = F.conv2d(x, w, b, stride, padding, dilation, groups)
    tout = TF.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10,
                               atol=1e-10)
    up = _rand(tuple(tout.shape), 3)
    (out * jg.tensor(up)).sum().backward()
    (tout * torch.tensor(up)).sum().backward()
    for a, t in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)
    if case is not CASES[1]:  # (compiles cost seconds each: one case with every option)
        return
    f = jg.grad(lambda x, w, b: (F.conv2d(x, w, b, stride, padding, dilation, groups)
                                 * jg.tensor(up)).sum(), argnums=(0, 1, 2), target="numba-cpu")
    got = f(jg.tensor(xa), jg.tensor(wa), jg.tensor(ba))
    for g, t in zip(got, (tx, tw, tb)):
        np.testing.assert_allclose(g.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)
    assert f.cache_info().fallbacks == ()


def test_conv1d_and_modules_with_torchs_initialisation_shapes():
    xa = _rand((2, 3, 10), 4)
    c1 = jg.nn.Conv1d(3, 5, 3, stride=2, padding=1).double()
    t1 = torch.nn.Conv1d(3, 5, 3, stride=2, padding=1).double()
    with torch.no_grad():
        t1.weight.copy_(torch.tensor(c1.weight.detach().numpy()))
        t1.bias.copy_(torch.tensor(c1.bias.detach().numpy()))
    np.testing.assert_allclose(c1(jg.tensor(xa)).detach().numpy(),
                               t1(torch.tensor(xa)).detach().numpy(), rtol=1e-10)
    c2 = jg.nn.Conv2d(3, 8, (3, 5), padding="same")
    assert c2(jg.ones(1, 3, 6, 7)).shape == (1, 8, 6, 7)
    bound = 1 / np.sqrt(3 * 15)
    assert np.abs(c2.weight.detach().numpy()).max() <= bound + 1e-7
    with pytest.raises(jg.ShapeError, match="expects input to have 3 channels"):
        c2(jg.ones(1, 4, 6, 7))
    with pytest.raises(jg.ShapeError, match="larger than the padded input"):
        jg.nn.Conv2d(1, 1, 5)(jg.ones(1, 1, 3, 3))


@pytest.mark.parametrize("k,s,p,d", [(2, None, 0, 1), (3, 2, 1, 1), ((2, 3), 1, 0, (1, 2))])
def test_max_pool_routes_the_gradient_to_one_element_as_torch(k, s, p, d):
    xa = np.maximum(_rand((2, 3, 7, 8), 5), 0.0)  # ReLU'd: windows full of equal zeros
    x, tx = jg.tensor(xa, requires_grad=True), torch.tensor(xa, requires_grad=True)
    out = F.max_pool2d(x, k, s, p, d)
    tout = TF.max_pool2d(tx, k, s, p, d)
    np.testing.assert_array_equal(out.detach().numpy(), tout.detach().numpy())
    up = _rand(tuple(tout.shape), 6)
    (out * jg.tensor(up)).sum().backward()
    (tout * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    if k != 3:  # (one compiled case)
        return
    g = jg.grad(lambda v: (F.max_pool2d(v, k, s, p, d) * jg.tensor(up)).sum(),
                target="numba-cpu")(jg.tensor(xa))
    np.testing.assert_allclose(g.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_avg_pool_and_a_small_cnn_step_compiled():
    xa = _rand((2, 3, 6, 6), 7)
    x, tx = jg.tensor(xa, requires_grad=True), torch.tensor(xa, requires_grad=True)
    (F.avg_pool2d(x, 2, padding=1) ** 2).sum().backward()
    (TF.avg_pool2d(tx, 2, padding=1) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    jg.manual_seed(0)
    net = jg.nn.Sequential(jg.nn.Conv2d(1, 4, 3, padding=1), jg.nn.ReLU(), jg.nn.MaxPool2d(2),
                           jg.nn.Flatten(), jg.nn.Linear(4 * 4 * 4, 10))
    imgs, labels = jg.randn(8, 1, 8, 8), jg.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    loss = lambda m, x, y: F.cross_entropy(m(x), y)  # noqa: E731
    got = jg.value_and_grad(loss, target="numba-cpu")(net, imgs, labels)
    want = jg.value_and_grad(loss, target="reference")(net, imgs, labels)
    np.testing.assert_allclose(got[0].item(), want[0].item(), rtol=1e-5)
    for k in want[1]:
        np.testing.assert_allclose(got[1][k].numpy(), want[1][k].numpy(), rtol=1e-4, atol=1e-6)
