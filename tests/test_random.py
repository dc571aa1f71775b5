"""Random numbers inside compiled functions (ops/random.py): fresh at every call, reproducible
after manual_seed, one mask for forward and backward, train()/eval() honoured, with the
statistics of the distributions they claim, on every target (CUDA in the simulator where there
is no GPU)."""

import importlib.util

import numpy as np
import pytest

import jitgrad as jg
from jitgrad import nn
from jitgrad.ops import random as jrandom

TARGETS = ["reference", "cpu"] + (["cuda"] if importlib.util.find_spec("numba_cuda") else [])
N = 20000


def host(x):
    return np.asarray(x.numpy() if isinstance(x, jg.Tensor) else x)


def _z(mean, sd, n):
    return abs(mean) / (sd / np.sqrt(n))


@pytest.fixture(scope="module")
def draws():
    """One compiled function per target drawing uniform, normal and integer samples."""
    def f(x):
        return (x + jg.rand(N, dtype=jg.float64), x + jg.randn(N, dtype=jg.float64),
                jg.randint(3, 9, (N,)), jg.rand(N))
    return {t: jg.jit(f, target=t) for t in TARGETS}


@pytest.mark.parametrize("target", TARGETS)
def test_statistics_and_fresh_draws(draws, target):
    f = draws[target]
    x = jg.zeros(N, dtype=jg.float64)
    u, n, k, u32 = (host(v) for v in f(x))
    assert u.dtype == np.float64 and u32.dtype == np.float32 and k.dtype == np.int64
    for v in (u, u32):
        assert v.min() >= 0 and v.max() < 1
        assert _z(v.mean() - 0.5, np.sqrt(1 / 12), N) < 4.5
        assert abs(v.var() - 1 / 12) < 0.005
    assert _z(n.mean(), 1.0, N) < 4.5 and abs(n.var() - 1) < 0.06
    assert abs((np.abs(n) < 1).mean() - 0.6827) < 0.015
    assert set(np.unique(k)) == set(range(3, 9))
    # independence between neighbours and between the draws of one call
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 4.5 / np.sqrt(N)
    assert abs(np.corrcoef(u, u32)[0, 1]) < 4.5 / np.sqrt(N)
    # and between calls: a fresh stream each time
    u2 = host(f(x)[0])
    assert abs(np.corrcoef(u, u2)[0, 1]) < 4.5 / np.sqrt(N)
    assert (u != u2).mean() > 0.999


@pytest.mark.parametrize("target", TARGETS)
def test_reproducible_after_manual_seed(draws, target):
    f = draws[target]
    x = jg.zeros(N, dtype=jg.float64)
    jg.manual_seed(123)
    a = [host(f(x)[0]) for _ in range(3)]
    jg.manual_seed(123)
    b = [host(f(x)[0]) for _ in range(3)]
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    assert (a[0] != a[1]).any()


def test_the_kernels_compute_the_definition_bit_for_bit():
    from jitgrad.backends._numba_helpers import rand_u32, rand_u64
    for state in ([0, 1], [123456789, 7], [2**62 + 5, 2**40]):
        st = np.array(state, np.int64)
        for salt in (1, 2, 77):
            np.testing.assert_array_equal(rand_u64(st, salt, 1000),
                                          jrandom._uniform_impl(st, shape=(1000,),
                                                                dtype=jg.float64, salt=salt))
            np.testing.assert_array_equal(rand_u32(st, salt, 1000),
                                          jrandom._uniform_impl(st, shape=(1000,),
                                                                dtype=jg.float32, salt=salt))


@pytest.mark.parametrize("target", TARGETS)
def test_dropout_uses_one_mask_in_forward_and_backward(target):
    p = 0.3

    def loss(x, w):
        return (nn.functional.dropout(x, p) * w).sum()

    f = jg.value_and_grad(loss, argnums=(0, 1), target=target)
    x = jg.tensor(np.linspace(1, 2, 4000))
    w = jg.tensor(np.linspace(-1, 3, 4000))
    masks = []
    for _ in range(2):
        val, (gx, gw) = f(x, w)
        gx, gw = host(gx), host(gw)
        mask = gw != 0  # d/dw = mask * x / (1 - p)
        np.testing.assert_allclose(gw[mask], host(x)[mask] / (1 - p), rtol=1e-6)
        np.testing.assert_allclose(gx, mask * host(w) / (1 - p), rtol=1e-6)  # the same mask
        assert float(host(val)) == pytest.approx(float((gw * host(w)).sum()), rel=1e-5)
        assert abs((~mask).mean() - p) < 4.5 * np.sqrt(p * (1 - p) / mask.size)
        masks.append(mask)
    assert (masks[0] != masks[1]).any()


class _Net(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.lin = nn.Linear(n, n)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.lin(x)).pow(2).sum()


@pytest.mark.parametrize("target", TARGETS)
def test_train_and_eval_of_a_module_with_dropout(target):
    jg.manual_seed(0)
    n = 8 if target == "cuda" else 64  # the CUDA simulator runs a thread at a time
    net = _Net(n)
    x = jg.randn(8, n)
    g = jg.grad(lambda m, x: m(x), target=target)
    net.eval()
    eager = jg.autograd.grad(net(x), list(net.parameters()))
    got = g(net, x)
    np.testing.assert_allclose(host(got["lin.weight"]), host(eager[0]), rtol=1e-4, atol=1e-5)
    net.train()
    a, b = host(g(net, x)["lin.weight"]), host(g(net, x)["lin.weight"])
    assert (a != b).any()
    assert not np.allclose(a, host(eager[0]))


def test_bernoulli_and_two_argument_randint():
    jg.manual_seed(0)
    assert jg.randint(5, (1000,)).max().item() == 4  # randint(high, size), as torch
    b = jg.bernoulli(jg.full((N,), 0.25))
    assert abs(host(b).mean() - 0.25) < 0.02
    f = jg.jit(lambda p: jg.bernoulli(p))
    got = host(f(jg.full((N,), 0.75)))
    assert set(np.unique(got)) <= {0.0, 1.0} and abs(got.mean() - 0.75) < 0.02


def test_random_functions_that_do_not_compile_yet_say_so():
    from jitgrad.errors import TraceError
    with pytest.raises(TraceError, match="cannot run inside a compiled function yet"):
        jg.jit(lambda x: x + jg.empty(3).normal_())(jg.zeros(3))


@pytest.mark.parametrize("target", TARGETS)
def test_randperm_and_multinomial_compile_and_draw_afresh(target):
    n = 12
    perm = jg.jit(lambda x: x[jg.randperm(n)], target=target)
    x = jg.arange(float(n))
    jg.manual_seed(3)
    a, b = host(perm(x)), host(perm(x))
    assert sorted(a.tolist()) == list(range(n)) and sorted(b.tolist()) == list(range(n))
    assert (a != b).any()
    jg.manual_seed(3)
    np.testing.assert_array_equal(host(perm(x)), a)  # reproducible after manual_seed
    p = np.array([0.1, 0.0, 0.6, 0.3])
    size = 4000 if target != "cuda" else 1000  # (the simulator runs each thread in Python)
    draw = jg.jit(lambda w: jg.multinomial(w, size, replacement=True), target=target)
    s = host(draw(jg.tensor(p, dtype=jg.float64))).astype(np.int64)
    freq = np.bincount(s, minlength=4) / s.size
    assert freq[1] == 0 and np.all(np.abs(freq - p) < 4.5 * np.sqrt(p * (1 - p) / s.size) + 1e-12)
    two = jg.jit(lambda w: jg.multinomial(w, 2), target=target)
    firsts = []
    for _ in range(300 if target != "cuda" else 12):  # (the simulator: ~0.4 s a call)
        r = host(two(jg.tensor(p, dtype=jg.float64))).astype(np.int64)
        assert r[0] != r[1] and 1 not in r  # distinct, and a zero weight only once the rest ran out
        firsts.append(r[0])
    f = np.bincount(firsts, minlength=4) / len(firsts)
    assert np.all(np.abs(f - p) < 4.5 * np.sqrt(p * (1 - p) / len(firsts)) + 1e-12)


def test_every_target_draws_the_same_numbers(draws):
    """The stream is the number of compiled calls since manual_seed, whatever each target's
    path through tracing and compiling: the same program draws the same bits everywhere."""
    x = jg.zeros(N, dtype=jg.float64)
    got = {}
    for t in TARGETS:
        jg.manual_seed(7)
        got[t] = [host(draws[t](x)[1]) for _ in range(2)]
    for t in TARGETS[1:]:
        for a, b in zip(got["reference"], got[t]):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_random_inside_vmap_is_refused_as_torch_func_does():
    from jitgrad import func
    with pytest.raises(RuntimeError, match="same numbers for every example"):
        func.vmap(lambda x: x * jg.rand(3, dtype=jg.float64))(jg.ones(4, 3, dtype=jg.float64))


def test_compiled_multinomial_refuses_bad_weights_as_eager():
    f = jg.jit(lambda w: jg.multinomial(w, 3, replacement=True), target="reference")
    assert f(jg.tensor([0.2, 0.8])).shape == (3,)
    for bad, why in (([0.0, 0.0], "sum of probabilities"), ([-1.0, 2.0], "element < 0"),
                     ([float("inf"), 1.0], "inf, nan")):
        with pytest.raises(RuntimeError, match=why):
            jg.multinomial(jg.tensor(bad), 3, replacement=True)
        with pytest.raises(RuntimeError, match=why):
            f(jg.tensor(bad))
