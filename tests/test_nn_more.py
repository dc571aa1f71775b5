"""Losses (SmoothL1, Huber, KLDiv), SiLU, BatchNorm2d, the recurrent cells and LBFGS, each
against PyTorch: values, gradients, running statistics, optimizer trajectories."""

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(a, requires_grad=True):
    return (jg.tensor(a, dtype=jg.float64, requires_grad=requires_grad),
            torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad))


def _close(a, b, tol=1e-12):
    np.testing.assert_allclose(np.asarray(a.detach().numpy()), b.detach().numpy(), rtol=tol,
                               atol=tol)


@pytest.mark.filterwarnings("ignore:reduction")
@pytest.mark.parametrize("name,kw", [
    ("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}), ("smooth_l1_loss", {"beta": 0.0}),
    ("huber_loss", {}), ("huber_loss", {"delta": 2.0}),
    ("kl_div", {"reduction": "batchmean"}), ("kl_div", {"reduction": "sum"}),
    ("kl_div", {"reduction": "none"}), ("kl_div", {"log_target": True, "reduction": "mean"}),
])
def test_losses_match_torch(name, kw, rng):
    a = rng.normal(size=(4, 3)) * 2
    b = rng.normal(size=(4, 3)) * 2
    if name == "kl_div":
        a = np.log(np.abs(a) / np.abs(a).sum(1, keepdims=True))
        b = np.abs(b) / np.abs(b).sum(1, keepdims=True)
        b[0, 0] = 0.0  # a zero target contributes nothing (torch's xlogy)
        if kw.get("log_target"):
            b = np.log(np.abs(b) + 0.1)
    (x, tx), (y, ty) = _pair(a), _pair(b, requires_grad=False)
    out, tout = getattr(F, name)(x, y, **kw), getattr(TF, name)(tx, ty, **kw)
    _close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    _close(x.grad, tx.grad)


def test_loss_modules_and_silu(rng):
    a, b = rng.normal(size=(5,)), rng.normal(size=(5,))
    for jm, tm in ((jg.nn.SmoothL1Loss(beta=0.3), torch.nn.SmoothL1Loss(beta=0.3)),
                   (jg.nn.HuberLoss(delta=0.7), torch.nn.HuberLoss(delta=0.7)),
                   (jg.nn.KLDivLoss(reduction="batchmean", log_target=True),
                    torch.nn.KLDivLoss(reduction="batchmean", log_target=True))):
        (x, tx), (y, ty) = _pair(a), _pair(b, False)
        _close(jm(x, y), tm(tx, ty))
    (x, tx) = _pair(a)
    out, tout = jg.nn.SiLU()(x), torch.nn.SiLU()(tx)
    _close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    _close(x.grad, tx.grad)


def test_batchnorm2d_matches_torch_in_train_and_eval(rng):
    jm, tm = jg.nn.BatchNorm2d(3).double(), torch.nn.BatchNorm2d(3).double()
    for step in range(3):
        a = rng.normal(size=(4, 3, 5, 2)) * (step + 1)
        (x, tx) = _pair(a)
        out, tout = jm(x), tm(tx)
        _close(out, tout)
        (out * out).sum().backward()
        (tout * tout).sum().backward()
        _close(x.grad, tx.grad, 1e-10)
    _close(jm.running_mean, tm.running_mean)
    _close(jm.running_var, tm.running_var)
    jm.eval(), tm.eval()
    (x, tx) = _pair(rng.normal(size=(2, 3, 4, 4)))
    _close(jm(x), tm(tx))
    with pytest.raises(ValueError, match="expected 4D input"):
        jm(jg.ones(2, 3))


def _copy(jm, tm):
    with torch.no_grad():
        for (_, p), (_, q) in zip(jm.named_parameters(), tm.named_parameters()):
            q.copy_(torch.tensor(p.detach().numpy()))


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
def test_recurrent_cells_match_torch(cls, rng):
    jm = getattr(jg.nn, cls)(3, 4).double()
    tm = getattr(torch.nn, cls)(3, 4).double()
    assert [n for n, _ in jm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    _copy(jm, tm)
    xs, txs = _pair(rng.normal(size=(5, 2, 3)))  # 5 steps, batch 2
    state, tstate = None, None
    for t in range(5):
        state, tstate = jm(xs[t], state), tm(txs[t], tstate)
    h, th = (state[0], tstate[0]) if cls == "LSTMCell" else (state, tstate)
    _close(h, th)
    (h * h).sum().backward()
    (th * th).sum().backward()
    for (_, p), (_, q) in zip(jm.named_parameters(), tm.named_parameters()):
        _close(p.grad, q.grad, 1e-11)
    _close(xs.grad, txs.grad, 1e-11)
    one, tone = _pair(rng.normal(size=3), False)  # an unbatched step
    o, to = jm(one), tm(tone)
    _close(o[0] if cls == "LSTMCell" else o, to[0] if cls == "LSTMCell" else to)


def test_a_compiled_recurrent_loop_equals_eager(rng):
    cell = jg.nn.GRUCell(3, 4).double()
    xs = jg.tensor(rng.normal(size=(3, 2, 3)), dtype=jg.float64)  # (3 steps: one compile)

    def loss(m, xs):
        h = None
        for t in range(xs.shape[0]):
            h = m(xs[t], h)
        return (h * h).sum()
    # The reference target: the trace, its adjoint and the module's parameters as inputs are
    # what this checks; the GRU's primitives compiled by Numba are the op table's
    # (tests/test_numba_cpu.py), and this unrolled trace's 10 kernel pieces took 20 s to compile.
    got = jg.grad(loss, target="reference")(cell, xs)
    cell.zero_grad()
    loss(cell, xs).backward()
    for name, p in cell.named_parameters():
        np.testing.assert_allclose(got[name].numpy(), p.grad.numpy(), rtol=1e-12)


def _rosenbrock(p, opt):
    """The closure LBFGS.step takes: Rosenbrock's function of ``p``, differentiated."""
    def c():
        opt.zero_grad()
        loss = (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2
        loss.backward()
        return loss
    return c


def test_lbfgs_follows_torch_on_rosenbrock():
    w = jg.nn.Parameter(jg.tensor([-1.2, 1.0], dtype=jg.float64))
    tw = torch.nn.Parameter(torch.tensor([-1.2, 1.0], dtype=torch.float64))
    opt = jg.optim.LBFGS([w], lr=0.5, max_iter=15, history_size=5)
    topt = torch.optim.LBFGS([tw], lr=0.5, max_iter=15, history_size=5)
    for _ in range(4):
        a = opt.step(_rosenbrock(w, opt))
        b = topt.step(_rosenbrock(tw, topt))
        # (60 iterations on Rosenbrock's valley amplify last-bit differences in the order of
        # additions: the trajectories agree to a few 1e-6; torch 2.13 differs by 1.7e-6)
        np.testing.assert_allclose(float(a), float(b.detach()), rtol=1e-5)
        np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6)
    assert np.abs(w.detach().numpy() - 1).max() < 1e-3  # at the minimum
    with pytest.raises(ValueError, match="strong_wolfe"):
        jg.optim.LBFGS([w], line_search_fn="backtracking")


def test_lbfgs_strong_wolfe_follows_torch_on_rosenbrock():
    """With the line search: the same losses, points and function evaluations as torch."""
    start = [-1.5, 2.0]
    w = jg.nn.Parameter(jg.tensor(start, dtype=jg.float64))
    tw = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    opt = jg.optim.LBFGS([w], max_iter=20, line_search_fn="strong_wolfe")
    topt = torch.optim.LBFGS([tw], max_iter=20, line_search_fn="strong_wolfe")
    for _ in range(3):
        a = opt.step(_rosenbrock(w, opt))
        b = topt.step(_rosenbrock(tw, topt))
        np.testing.assert_allclose(float(a), float(b.detach()), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6)
    assert opt.state[id(w)]["func_evals"] == topt.state[tw]["func_evals"]
    assert np.abs(w.detach().numpy() - 1).max() < 1e-5  # closer than the fixed step gets


@pytest.mark.parametrize("t0", [1e-3, 1.0, 40.0])
def test_strong_wolfe_steps_meet_the_conditions(t0):
    """From a step far too short, about right, or far too long, the step found has sufficient
    decrease and small curvature along the direction (checked on f(t) = cos(t) + t**2 / 20,
    whose slope at 0 is not negative enough for the first trial to be accepted)."""
    from jitgrad.optim.line_search import strong_wolfe

    def f(t):
        return np.cos(t + 0.3) + (t + 0.3) ** 2 / 20, -np.sin(t + 0.3) + (t + 0.3) / 10

    def phi(t):
        v, s = f(t)
        return v, np.array([s]), s
    f0, s0 = f(0.0)
    t, v, g, evals = strong_wolfe(phi, f0, np.array([s0]), s0, t0)
    assert v <= f0 + 1e-4 * t * s0
    assert abs(f(t)[1]) <= 0.9 * abs(s0)
    assert v == f(t)[0] and g[0] == f(t)[1] and 1 <= evals <= 25
