"""nn, optim, clipping, the profiler, and a compiled training loop."""

import math
import sys

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as F
from jitgrad import nn


def test_compiled_training_loop_converges():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32))[:, None] + 0.3
    jg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = jg.optim.Adam(model.parameters(), lr=0.02)
    step = jg.value_and_grad(lambda m, a, b: F.mse_loss(m(a), b))
    xt, yt = jg.tensor(x), jg.tensor(y)
    first = None
    for _ in range(300):
        loss, grads = step(model, xt, yt)
        first = first if first is not None else loss.item()
        opt.step(grads)
    assert loss.item() < first / 50
    assert step.cache_info().traces == 1


def test_gradient_accumulation_both_ways():
    jg.manual_seed(1)
    model = nn.Linear(3, 2).double()
    x = jg.randn(8, 3, dtype=jg.float64)
    t = jg.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    # eager: .grad accumulates over two micro-batches
    model.zero_grad()
    for half in (slice(0, 4), slice(4, 8)):
        (F.cross_entropy(model(x[half]), t[half]) / 2).backward()
    eager = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    # compiled: sum the gradient pytrees
    g = jg.grad(lambda m, a, b: F.cross_entropy(m(a), b) / 2)
    ga, gb = g(model, x[:4], t[:4]), g(model, x[4:], t[4:])
    for n in eager:
        np.testing.assert_allclose((ga[n] + gb[n]).numpy(), eager[n], rtol=1e-12)


def test_clip_grad_norm_and_value():
    a, b = nn.Parameter(jg.zeros(2)), nn.Parameter(jg.zeros(1))
    a.grad, b.grad = jg.tensor([3.0, 0.0]), jg.tensor([4.0])
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert abs(total.item() - 5.0) < 1e-6
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [0.8], rtol=1e-5)
    a.grad = jg.tensor([-3.0, 0.2])
    nn.utils.clip_grad_value_([a], 0.5)
    assert a.grad.tolist() == pytest.approx([-0.5, 0.2])


def test_state_dict_round_trip_and_errors():
    jg.manual_seed(2)
    m1, m2 = nn.Linear(3, 2), nn.Linear(3, 2)
    m2.load_state_dict(m1.state_dict())
    x = jg.randn(4, 3)
    assert np.array_equal(m1(x).detach().numpy(), m2(x).detach().numpy())
    with pytest.raises(KeyError, match="missing keys \\['bias'\\]"):
        m2.load_state_dict({"weight": m1.weight.detach()})
    with pytest.raises(ValueError, match="size mismatch for weight"):
        m2.load_state_dict({"weight": jg.zeros(5, 3), "bias": jg.zeros(2)})


def test_module_repr_children_train_eval():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert repr(net) == ("Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n"
                         "  (1): ReLU()\n)")
    assert len(list(net.children())) == 2
    net.eval()
    assert not net[0].training
    net.train()
    assert net[1].training


def test_optimizer_bad_input():
    with pytest.raises(ValueError, match="empty parameter list"):
        jg.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        jg.optim.SGD([1.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        jg.optim.Adam([jg.ones(2, requires_grad=True) * 2])
    p = nn.Parameter(jg.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        jg.optim.SGD([p], lr=0.1).step([jg.zeros(3)])


def test_cross_entropy_target_out_of_range():
    with pytest.raises(IndexError, match="Target 5 is out of bounds"):
        F.cross_entropy(jg.zeros(2, 3), jg.tensor([0, 5]))


def test_profiler_table_lists_eager_ops_backward_and_compiled():
    x = jg.ones(3, 4, requires_grad=True)
    f = jg.grad(lambda t: (t * t).sum(), target="reference")
    g = jg.grad(lambda t: (t * t * t).sum())
    with jg.autograd.profiler.profile(record_shapes=True) as prof:
        (x.tanh() * 2).sum().backward()
        f(x.detach())
        f(x.detach())
        with jg.config.patch(compile_after=60.0):  # interpreted for a minute of calls
            for _ in range(3):
                g(x.detach())
    table = prof.key_averages().table()
    for name in ("tanh", "TanhBackward0", "MulBackward0", "SumBackward0", "[[3, 4]]",
                 "Compiled function", "<lambda>", "Interpreted"):
        assert name in table
    avg = {e.key: e for e in prof.key_averages()}
    assert avg["tanh"].count == 1 and avg["TanhBackward0"].count == 1
    assert all(e.self_cpu_time_total <= e.cpu_time_total + 1e-9 for e in avg.values())
    lines = [ln.split() for ln in table.splitlines() if "<lambda>" in ln]
    assert lines[0][1:4] == ["2", "1", "0"]  # calls, traces, interpreted (the reference's)
    assert lines[1][1:4] == ["3", "1", "3"]




def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("name, kw", [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
                                      ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                      ("Adam", dict(lr=0.01, weight_decay=0.1)),
                                      ("AdamW", dict(lr=0.01, weight_decay=0.1)),
                                      ("RMSprop", dict(lr=0.01)),
                                      ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True,
                                                       weight_decay=0.1)),
                                      ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1,
                                                       initial_accumulator_value=0.5))])
def test_optimizers_match_torch(name, kw):
    torch = _torch()
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(4)]
    pj = nn.Parameter(jg.tensor(w0))
    pt = torch.nn.Parameter(torch.tensor(w0))
    oj, ot = getattr(jg.optim, name)([pj], **kw), getattr(torch.optim, name)([pt], **kw)
    for g in grads:
        oj.step([jg.tensor(g)])
        pt.grad = torch.tensor(g)
        ot.step()
    np.testing.assert_allclose(pj.detach().numpy(), pt.detach().numpy(), rtol=1e-12)


def test_mlp_cross_entropy_gradients_match_torch():
    torch = _torch()
    rng = np.random.default_rng(1)
    jg.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    tm = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4)).double()
    with torch.no_grad():
        for (_, p), tp in zip(m.named_parameters(), tm.parameters()):
            tp.copy_(torch.tensor(p.detach().numpy()))
    x, t = rng.standard_normal((7, 6)), rng.integers(0, 4, 7)
    g = jg.grad(lambda mm, a, b: F.cross_entropy(mm(a), b))(m, jg.tensor(x), jg.tensor(t))
    torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(t)).backward()
    for (n, _), tp in zip(m.named_parameters(), tm.parameters()):
        np.testing.assert_allclose(g[n].numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-14)


def _rmsprop_reference(w, grads, lr, alpha, eps, momentum, centered, wd):
    """torch.optim.RMSprop's documented algorithm, one coordinate at a time."""
    w = list(w)
    for i in range(len(w)):
        sq = ga = buf = 0.0
        for g in grads:
            gi = g[i] + wd * w[i]
            sq = alpha * sq + (1 - alpha) * gi * gi
            if centered:
                ga = alpha * ga + (1 - alpha) * gi
            avg = math.sqrt(sq - ga * ga) + eps
            if momentum:
                buf = momentum * buf + gi / avg
                w[i] -= lr * buf
            else:
                w[i] -= lr * gi / avg
    return w


def _adagrad_reference(w, grads, lr, lr_decay, wd, init, eps):
    """torch.optim.Adagrad's documented algorithm, one coordinate at a time."""
    w = list(w)
    for i in range(len(w)):
        acc = init
        for t, g in enumerate(grads, 1):
            gi = g[i] + wd * w[i]
            acc += gi * gi
            w[i] -= lr / (1 + (t - 1) * lr_decay) * gi / (math.sqrt(acc) + eps)
    return w


@pytest.mark.parametrize("momentum, centered, wd", [(0.0, False, 0.0), (0.9, True, 0.1)])
def test_rmsprop_follows_its_algorithm(momentum, centered, wd):
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(4)
    grads = [rng.standard_normal(4) for _ in range(5)]
    p = nn.Parameter(jg.tensor(w0))
    opt = jg.optim.RMSprop([p], lr=0.01, alpha=0.9, eps=1e-8, momentum=momentum,
                           centered=centered, weight_decay=wd)
    for g in grads:
        p.grad = jg.tensor(g)  # the eager path: .grad
        opt.step()
    want = _rmsprop_reference(w0, grads, 0.01, 0.9, 1e-8, momentum, centered, wd)
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12)


def test_adagrad_follows_its_algorithm():
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(4)
    grads = [rng.standard_normal(4) for _ in range(5)]
    p = nn.Parameter(jg.tensor(w0))
    opt = jg.optim.Adagrad([p], lr=0.1, lr_decay=0.05, weight_decay=0.1,
                           initial_accumulator_value=0.2)
    for g in grads:
        opt.step([jg.tensor(g)])  # the compiled path: gradients passed in
    want = _adagrad_reference(w0, grads, 0.1, 0.05, 0.1, 0.2, 1e-10)
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12)
    with pytest.raises(ValueError, match="lr_decay"):
        jg.optim.Adagrad([p], lr_decay=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        jg.optim.RMSprop([p], alpha=1.5)


_FUSED_CASES = [("SGD", dict(lr=0.1)),
                ("SGD", dict(lr=0.1, momentum=0.9)),
                ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
                ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02, maximize=True)),
                ("Adam", dict()),
                ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
                ("Adam", dict(lr=0.02, amsgrad=True, maximize=True)),
                ("AdamW", dict(lr=0.01, weight_decay=0.1)),
                ("AdamW", dict(lr=0.003, betas=(0.9, 0.95), amsgrad=True)),
                ("AdamW", dict(lr=np.float64(0.01), weight_decay=0.1))]  # float32: NumPy path


def _train(name, kw, dtype, fused, steps=60):
    """Parameters and state after ``steps`` updates from random gradients (the same stream for
    both paths): fused asserts that no update fell back to NumPy, else NumPy is forced."""
    rng = np.random.default_rng(7)
    shapes = [(7, 5), (3,), (), (2, 1, 3)]
    ps = [nn.Parameter(jg.tensor(rng.standard_normal(s).astype(dtype))) for s in shapes]
    opt = getattr(jg.optim, name)(ps, **kw)
    if fused is None:
        pass
    elif fused:
        def numpy_path(*a):
            raise AssertionError("the fused update fell back to NumPy")
        opt._update_numpy = numpy_path
    else:
        opt._update = opt._update_numpy
    for t in range(steps):
        # gradients over many magnitudes, with exact zeros, so that roundings differ if any
        # coefficient or intermediate is computed in another precision
        gs = [(rng.standard_normal(s) * 10.0 ** rng.integers(-4, 4, s)).astype(dtype) for s in shapes]
        gs[0][0] = 0
        if t % 2:
            opt.step([jg.tensor(g) for g in gs])
        else:
            for p, g in zip(ps, gs):
                p.grad = jg.tensor(g)
            opt.step()
    states = [{k: v for k, v in opt.state[id(p)].items()} for p in ps]
    return [p.detach().numpy().copy() for p in ps], states


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kw", _FUSED_CASES)
def test_fused_updates_are_bit_identical_to_numpy(name, kw, dtype):
    pytest.importorskip("numba")  # the fused kernels run only once Numba is imported
    forced_numpy = type(kw.get("lr")) is np.float64 and dtype is np.float32
    want, want_state = _train(name, kw, dtype, fused=False)
    got, got_state = _train(name, kw, dtype, fused=None if forced_numpy else True)
    for w, g, ws, gs in zip(want, got, want_state, got_state):
        assert g.dtype == dtype
        np.testing.assert_array_equal(g, w)
        assert ws.keys() == gs.keys()
        for k in ws:
            np.testing.assert_array_equal(gs[k], ws[k])


def test_fused_updates_wait_for_numba(monkeypatch):
    from jitgrad.optim import optimizer
    pytest.importorskip("numba")
    assert optimizer._fused_kernels() is not None
    monkeypatch.delitem(sys.modules, "numba")
    assert optimizer._fused_kernels() is None  # an eager-only program never imports Numba
    # a parameter the kernels cannot write through (a transposed view) takes the NumPy path
    assert optimizer._flat((0.1,), np.zeros((3, 4), np.float32).T, np.zeros((4, 3), np.float32)) is None
