"""The tutorial example programs print the right numbers."""

import importlib.util
import pathlib

import numpy as np

import jitgrad

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scalar_example_prints_true_derivatives(capsys):
    load("autograd_basics").scalar_example()
    out = capsys.readouterr().out
    assert "dz/dx: 3.0" in out
    assert "dz/dy: 8.0" in out  # x + 2y at (2, 3), not the widely copied 7.0


def test_graph_example(capsys):
    c, gx, gy = load("autograd_basics").graph_example()
    out = capsys.readouterr().out
    assert "c.grad_fn: <MulBackward0" in out and "a.grad_fn: <AddBackward0" in out
    assert "['AddBackward0', 'MulBackward0']" in out
    assert (c.item(), gx.item(), gy.item()) == (6.0, 8.0, 5.0)


def test_no_grad_and_polynomial_examples(capsys):
    mod = load("autograd_basics")
    y, d = mod.no_grad_example()
    assert not y.requires_grad and not d.requires_grad
    y, loss, g = mod.polynomial_example()
    assert (y.item(), loss.item(), g.item()) == (16.0, 256.0, 256.0)


def test_while_loop_example_vjp_is_power_of_two_times_v():
    mod = load("while_loop")
    x0 = [0.3, -0.2, 0.05]
    v = [0.1, 1.0, 0.0001]
    y, g = mod.eager(x0, v)
    k = y.detach().numpy() / np.asarray(x0, dtype=np.float32)
    assert np.allclose(k, k[0]) and np.log2(k[0]) == int(np.log2(k[0]))
    assert np.linalg.norm(y.detach().numpy()) >= 1000 > np.linalg.norm(y.detach().numpy()) / 2
    np.testing.assert_allclose(g.numpy(), k[0] * np.asarray(v, dtype=np.float32), rtol=1e-6)


def test_while_loop_example_compiled_matches_eager():
    mod = load("while_loop")
    x0 = [0.3, -0.2, 0.05]
    v = [0.1, 1.0, 0.0001]
    _, g = mod.eager(x0, v)
    vjp = mod.compiled_vjp(v)
    import jitgrad
    np.testing.assert_allclose(vjp(jitgrad.tensor(x0)).numpy(), g.numpy())
    for s in (1e-3, 1.0, 1e-3, 30.0):
        np.testing.assert_allclose(vjp(jitgrad.tensor(x0) * s).numpy(),
                                   mod.eager([a * s for a in x0], v)[1].numpy(), rtol=1e-6)
    assert vjp.cache_info().traces == 1 and "lifted" in vjp.cache_info().loops[0]


def test_train_digits_reaches_95_percent(tmp_path):
    import pytest
    pytest.importorskip("sklearn")
    mod = load("train_digits")
    _, history, acc = mod.train(epochs=12, progress=False)
    assert acc >= 0.95
    assert history["loss"][-1] < history["loss"][0] / 5


def test_train_digits_cnn_reaches_90_percent():
    import pytest
    pytest.importorskip("sklearn")
    mod = load("train_digits_cnn")
    # on the interpreter (the compiled CNN step is tests/test_nn_conv.py's): 2 s, not 16
    with jitgrad.config.patch(compile_after=float("inf")):
        _, losses, acc = mod.train(epochs=6)
    assert acc >= 0.9 and losses[-1] < losses[0] / 4


def test_train_gpt_smoke():
    """A few steps of the GPT example at tiny settings, on the interpreter (no compile)."""
    mod = load("train_gpt")
    model, losses, val, chars, dropout = mod.train(steps=30, n_layer=1, n_embd=16, block=8,
                                                   batch=4, compile_after=float("inf"),
                                                   progress=False, log=lambda *a: None)
    assert len(chars) == 63 and dropout == 0.1 and len(losses) == 30
    assert abs(losses[0] - np.log(len(chars))) < 0.3  # near uniform at the start
    assert np.mean(losses[-10:]) < losses[0] and np.isfinite(val)
    text = mod.sample(model, chars, 40)
    assert len(text) == 41 and set(text) <= set(chars)


def test_gpt_model_matches_torch():
    """examples/gpt_model.py builds the same network with torch and jitgrad: with torch's
    weights loaded, jitgrad gives torch's loss and gradients."""
    import pytest
    torch = pytest.importorskip("torch")
    import jitgrad
    build = load("gpt_model").build
    torch.manual_seed(0)
    tm = build(torch, 65, n_layer=2, n_embd=16, block=8, dropout=0.0)
    jm = build(jitgrad, 65, n_layer=2, n_embd=16, block=8, dropout=0.0)
    jm.load_state_dict({k: jitgrad.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 65, (3, 8)), rng.integers(0, 65, (3, 7))
    _, tloss = tm(torch.tensor(x[:, :7]), torch.tensor(y))  # T = 7 < block: a cut of the mask
    _, jloss = jm(jitgrad.tensor(x[:, :7]), jitgrad.tensor(y))
    tloss.backward()
    jloss.backward()
    np.testing.assert_allclose(jloss.item(), tloss.item(), rtol=1e-5)
    tgrads = dict(tm.named_parameters())
    for name, p in jm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[name].grad.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=name)
