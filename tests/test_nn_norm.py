"""LayerNorm, BatchNorm1d, Embedding and Dropout against torch: values, gradients, running
statistics, train/eval, and compiled where they can be."""

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch", reason="checked against PyTorch")


def _pair(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    return jg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _copy_params(ours, theirs):
    with torch.no_grad():
        for (n, p), (m, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert n == m
            q.copy_(torch.tensor(p.detach().numpy()))


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,norm", [((4, 6), 6), ((2, 3, 4), (3, 4))])
def test_layer_norm_values_and_gradients(shape, norm):
    x, tx = _pair(shape)
    ln, tln = jg.nn.LayerNorm(norm).double(), torch.nn.LayerNorm(norm).double()
    with jg.no_grad():
        ln.weight.copy_(jg.tensor(np.linspace(0.5, 1.5, ln.weight.numel()).reshape(ln.weight.shape)))
    _copy_params(ln, tln)
    w = jg.tensor(np.random.default_rng(1).standard_normal(shape))
    (ln(x) * w).sum().backward()
    (tln(tx) * torch.tensor(w.numpy())).sum().backward()
    _close(ln(x), tln(tx))
    _close(x.grad, tx.grad)
    _close(ln.weight.grad, tln.weight.grad)
    g = jg.grad(lambda m, v: (m(v) * w).sum())(ln, x.detach())
    _close(g["weight"], tln.weight.grad)
    with pytest.raises(ValueError, match="does not match"):
        ln(jg.ones(4, 5))


def test_batch_norm_train_updates_running_stats_and_eval_uses_them():
    bn, tbn = jg.nn.BatchNorm1d(3).double(), torch.nn.BatchNorm1d(3).double()
    for step in range(3):
        x, tx = _pair((8, 3), seed=step)
        (bn(x) ** 2).sum().backward()
        (tbn(tx) ** 2).sum().backward()
        _close(x.grad, tx.grad)
    _close(bn.running_mean, tbn.running_mean)
    _close(bn.running_var, tbn.running_var)
    _close(bn.weight.grad, tbn.weight.grad)
    bn.eval()
    tbn.eval()
    x, tx = _pair((5, 3), seed=9)
    _close(bn(x), tbn(tx))
    f = jg.jit(lambda m, v: m(v))  # eval mode compiles (running stats are inputs)
    _close(f(bn, x.detach()), tbn(tx))
    x3, tx3 = _pair((4, 3, 5), seed=3)
    bn.train()
    tbn.train()
    _close(bn(x3), tbn(tx3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(jg.ones(1, 3))


def test_embedding_lookup_gradient_and_padding_row():
    emb, temb = jg.nn.Embedding(6, 3, padding_idx=0).double(), \
        torch.nn.Embedding(6, 3, padding_idx=0).double()
    assert np.all(emb.weight.detach().numpy()[0] == 0)
    _copy_params(emb, temb)
    idx = [[0, 2, 5], [2, 2, 1]]
    out, tout = emb(jg.tensor(idx)), temb(torch.tensor(idx))
    _close(out, tout)
    (out * jg.arange(18.0, dtype=jg.float64).reshape(2, 3, 3)).sum().backward()
    (tout * torch.arange(18.0, dtype=torch.float64).reshape(2, 3, 3)).sum().backward()
    _close(emb.weight.grad, temb.weight.grad)
    g = jg.grad(lambda m, i: (m(i) ** 2).sum())(emb, jg.tensor(idx))
    (temb(torch.tensor(idx)) ** 2).sum().backward()  # (accumulates onto the first gradient)
    np.testing.assert_allclose(g["weight"].numpy()[0], 0.0)
    with pytest.raises(RuntimeError, match="integer"):
        emb(jg.ones(2))


def test_dropout_train_eval_and_seeded_masks():
    d = jg.nn.Dropout(0.25)
    x = jg.ones(2000, requires_grad=True)
    jg.manual_seed(0)
    y = d(x)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.05
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.75)
    jg.manual_seed(0)
    assert np.array_equal(d(x).detach().numpy() != 0, kept)  # the same seed, the same mask
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        jg.nn.Dropout(1.5)
    # compiled, the mask is a fresh draw at each call (tests/test_random.py)
    masks = [jg.jit(lambda v: jg.nn.functional.dropout(v, 0.5))(jg.ones(1000)).numpy() != 0
             for _ in range(2)]
    assert (masks[0] != masks[1]).any() and abs(masks[0].mean() - 0.5) < 0.1
