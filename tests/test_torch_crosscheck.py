"""The same programs under jitgrad and PyTorch give the same values and gradients (skipped when
PyTorch is not installed)."""

import numpy as np
import pytest

import jitgrad

torch = pytest.importorskip("torch")


def program(M, x, w, b, t):
    h = M.tanh(x @ w.T + b)
    logits = h * M.sigmoid(h) - h.abs().sqrt()
    loss = M.nn.functional.cross_entropy(logits, t)
    return loss + (logits.softmax(-1).max(-1).values ** 2).mean() + x.norm() * 0.1 \
        + M.clamp(h, -0.5, 0.3).sum() + M.cat([h, logits], 1).prod(1).sum()


def run(M, arrays, target):
    ts = [M.tensor(a, dtype=M.float64, requires_grad=True) for a in arrays]
    out = program(M, *ts, M.tensor(target))
    out.backward()
    return out.item(), [t.grad.detach().numpy() for t in ts]


def test_program_matches_torch():
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)]
    target = rng.integers(0, 3, 5)
    v1, g1 = run(jitgrad, arrays, target)
    v2, g2 = run(torch, arrays, target)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_linear_default_init_distribution_matches_torch_bounds():
    layer = jitgrad.nn.Linear(100, 10)
    w = layer.weight.detach().numpy()
    assert np.abs(w).max() <= 1 / np.sqrt(100) + 1e-7
    assert np.abs(layer.bias.detach().numpy()).max() <= 1 / np.sqrt(100) + 1e-7


def test_while_loop_vjp_matches_torch():
    x0 = np.array([0.3, -0.2, 0.05])
    v = np.array([0.1, 1.0, 0.0001])
    res = []
    for M in (jitgrad, torch):
        x = M.tensor(x0, requires_grad=True)
        y = x * 2
        while y.norm() < 1000:
            y = y * 2
        y.backward(M.tensor(v))
        res.append(x.grad.numpy())
    np.testing.assert_allclose(res[0], res[1])
