"""jitgrad.func: the JVP and batching rule of every primitive against independent references
(central differences, the function run per example), the transforms against torch.func and
torch.autograd.functional where torch is installed, composition, and compiling under jit."""

import numpy as np
import pytest

import jitgrad as jg
from jitgrad.func import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap
from jitgrad.ops import PRIMITIVES
from jitgrad.transforms.batching import BATCH_RULES
from jitgrad.transforms.forward import JVP_RULES
from jitgrad.transforms.replay import trace_graph

F64 = jg.float64
IDX = jg.tensor([2, 0, 2])


def _setitem(x):
    y = x.clone()
    y[1] = x[0] * 2
    return y


def _linalg_solves(a, b):
    m = a + 4 * jg.eye(3, dtype=F64)  # well conditioned
    return (jg.linalg.solve(m, b) + jg.linalg.solve_triangular(m, b, upper=True)
            + jg.linalg.inv(m) @ b + jg.linalg.det(a) + jg.linalg.slogdet(m).logabsdet
            + jg.linalg.pinv(b).T + jg.linalg.inv_ex(a).info.to(F64)
            + jg.linalg.matrix_exp(a * 0.3) @ b)


def _linalg_factors(x):
    # Sign-free uses of eigenvectors and singular vectors; Q and R as LAPACK signs them.
    s = x.T @ x + 3 * jg.eye(3, dtype=F64)
    w, v = jg.linalg.eigh(s)
    u, sv, vh = jg.linalg.svd(x, full_matrices=False)
    u2, sv2, vh2 = jg.linalg.svd(x.T, full_matrices=False)
    q, r = jg.linalg.qr(x)
    q2, r2 = jg.linalg.qr(x.T)
    return (jg.linalg.cholesky(s) + v ** 2 * w + vh ** 2 * sv + (u ** 2)[:3] + u2 ** 2 * sv2
            + (vh2 ** 2)[:, :3] + r + q[1:] + q2 + r2[:, 1:]
            + jg.linalg.cholesky_ex(s).info.to(F64))


def _lu(x):
    m = x + 4 * jg.eye(3, dtype=F64)  # well conditioned, the pivots away from ties
    p, lo, up = jg.linalg.lu(m)
    return p @ lo @ up * 0.5 + jg.linalg.lu_solve(*jg.linalg.lu_factor(m), x)


def _no_derivative(x):
    # geqrf and the LDL family have no derivative (as torch's): through detached inputs, each
    # term cancels its detached copy, so the tangent and the batching go through x alone
    s = x.detach().mT @ x.detach() + 3 * jg.eye(3, dtype=F64)
    a, tau = jg.geqrf(x.detach())
    qr = jg.linalg.householder_product(a, tau) @ a[..., :3, :].triu()
    ld, piv = jg.linalg.ldl_factor(s)
    return (x + qr - x.detach() + s @ jg.linalg.ldl_solve(ld, piv, x.detach()) - x.detach()
            + jg.linalg.ldl_factor_ex(s).info.to(F64))


# One small program per primitive (or a few), float64, each input of the shape given; "pos"
# inputs are kept positive. Broadcasting shapes on purpose.
PROGRAMS = {
    "no_derivative": (_no_derivative, [(3, 3)]),
    "lu": (_lu, [(3, 3)]),
    "unary": (lambda x: (-x).exp() + x.sin() * x.cos() + x.tanh() + x.sigmoid() + x.relu()
              + x.abs() + x.erf() + x.expm1() + x.clamp(-0.5, 0.5) + x.clone()
              + (x.detach() - x.detach()),
              [(3, 2)]),
    "logs": (lambda x: x.log() + x.log1p() + x.sqrt() + x ** 1.5 + x ** 2, ["pos"]),
    "binary": (lambda x, y: x + y - x * y + x / y + jg.maximum(x, y) + jg.minimum(x, y)
               + jg.remainder(x, y), [(3, 1), "pos4"]),
    "pow": (lambda x, y: x ** y, ["pos31", (4,)]),
    "trig": (lambda x, y: (0.9 * x.tanh()).asin() + (0.9 * x.tanh()).acos() + x.atan()
             + x.asinh() + (x * x + 1.5).acosh() + (0.9 * x.tanh()).atanh() + jg.atan2(x, y),
             [(3, 4), (4,)]),
    "where": (lambda x, y: jg.where(x > y, x * y, y - x), [(3, 4), (4,)]),
    "piecewise": (lambda x: (x > 0).to(F64) * x + x.floor() * x + x.sign() * x
                  + jg.where(((x > 0.1) & (x < 2)) | ~(x <= -1) ^ (x >= 5), 1.0, 0.0) * x
                  + jg.where(jg.isnan(x) | jg.isinf(x) | (x == 3) | (x != 3), x, -x)
                  + x.argmax().to(F64) + x.argmin(dim=0, keepdim=True).to(F64).sum()
                  + (x.to(jg.int64) // 2 + x.to(jg.int64) % 3).to(F64),
                  [(3, 2)]),
    "astype": (lambda x: x.to(jg.float32).to(F64) * x, [(3,)]),
    "movement": (lambda x: x.reshape(2, 3).T.expand(4, 3, 2).sum(0)
                 + jg.cat([x.reshape(3, 2), x.reshape(3, 2) * 2], dim=1)[:, 1:3]
                 + x.permute(1, 0).reshape(3, 2), [(2, 3)]),
    "index": (lambda x: x[1] * x[IDX] + x[::2].sum() + x[None, 1:].sum(), [(3,)]),
    "scatter": (lambda x: grad(lambda y: (y[IDX] ** 2).sum() + (y[1:] ** 3).sum())(x), [(3,)]),
    "setitem": (_setitem, [(3, 2)]),
    "reduce": (lambda x: x.sum(0) * x.mean(1, keepdim=True) + x.amax(1, keepdim=True)
               + x.amin(0) + x.norm(dim=1, keepdim=True) + x.var(1, keepdim=True)
               + x.logsumexp(1, keepdim=True), [(3, 4)]),
    "prod": (lambda x: x.prod(1, keepdim=True) * x + grad(lambda y: y.prod())(x), [(2, 3)]),
    "softmax": (lambda x: x.softmax(1) + x.log_softmax(0) + x.cumsum(1), [(3, 4)]),
    "special": (lambda x: x.erfc() + x.lgamma() + x.digamma() + jg.polygamma(2, x)
                + jg.special.erfinv(0.9 * x.tanh()) + jg.special.erfcx(x)
                + jg.special.ndtri(x.sigmoid()) + jg.special.i0(x) + jg.special.i0e(x)
                + jg.special.i1(x) + jg.special.i1e(x) + jg.special.bessel_j0(x)
                + jg.special.bessel_j1(x) + jg.special.zeta(3.0, x), ["pos"]),
    "xlogy": (lambda x, y: jg.special.xlogy(x, y) + jg.special.xlog1py(y, x), ["pos", "pos31"]),
    "sort": (lambda x: x.sort(1).values * 2 + x.topk(2, dim=0).values.sum(0), [(3, 4)]),
    "matmul": (lambda a, b, v: a @ b + (a @ v).reshape(3, 1) + (v @ b).reshape(1, 5)
               + jg.matmul(a.expand(2, 3, 4), b).sum(0), [(3, 4), (4, 5), (4,)]),
    "linalg_solve": (lambda a, b: _linalg_solves(a, b), [(3, 3), (3, 2)]),
    "linalg_factor": (lambda x: _linalg_factors(x), [(4, 3)]),
    "pointwise_more": (lambda x, y: x.cosh() + x.sinh() + (0.5 * x.tanh()).tan()
                       + jg.copysign(x, y - 1.2) + jg.hypot(x, y) + jg.fmod(x, y)
                       + (jg.nextafter(x, y) > x).to(F64) * x
                       + jg.igamma(jg.tensor([0.5, 1.0, 1.5, 2.5], dtype=F64), y + x * x)
                       + jg.igammac(jg.tensor(1.5, dtype=F64), y + x * x)
                       + jg.gcd(x.to(jg.int64), jg.tensor(6)).to(F64) * x, [(3, 4), "pos4"]),
}


def _inputs(specs, rng):
    out = []
    for s in specs:
        if s == "pos":
            out.append(rng.uniform(0.5, 2.0, size=(3, 2)))
        elif s == "pos4":
            out.append(rng.uniform(0.5, 2.0, size=(4,)))
        elif s == "pos31":
            out.append(rng.uniform(0.5, 2.0, size=(3, 1)))
        else:
            out.append(rng.normal(size=s) * 1.3)
    return [jg.tensor(a, dtype=F64) for a in out]


def _prims(fn, args) -> set:
    return {e.prim for e in trace_graph(fn, tuple(args)).graph.walk()}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_jvp_of_each_primitive_matches_central_differences(name, rng):
    fn, specs = PROGRAMS[name]
    xs = _inputs(specs, rng)
    ts = [jg.tensor(rng.normal(size=x.shape), dtype=F64) for x in xs]
    out, tan = jvp(fn, tuple(xs), tuple(ts))
    np.testing.assert_allclose(out.numpy(), fn(*xs).numpy(), rtol=1e-12)
    # (through float32, differences need a step float32 resolves, and a looser tolerance)
    eps, tol = (1e-3, 1e-3) if name == "astype" else (1e-6, 1e-6)
    hi = fn(*[x + eps * t for x, t in zip(xs, ts)]).numpy()
    lo = fn(*[x - eps * t for x, t in zip(xs, ts)]).numpy()
    np.testing.assert_allclose(tan.numpy(), (hi - lo) / (2 * eps), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_vmap_of_each_primitive_matches_the_loop(name, rng):
    fn, specs = PROGRAMS[name]
    examples = [_inputs(specs, rng) for _ in range(3)]
    xs = [jg.stack([ex[k] for ex in examples]) for k in range(len(specs))]  # (3, *shape) each
    want = jg.stack([fn(*[x[i] for x in xs]) for i in range(3)])
    np.testing.assert_allclose(vmap(fn)(*xs).numpy(), want.numpy(), rtol=1e-12, atol=1e-14)
    # The batch axis elsewhere, and the other inputs shared by all examples.
    moved = [x.movedim(0, -1) for x in xs]
    np.testing.assert_allclose(vmap(fn, in_dims=-1, out_dims=1)(*moved).numpy(),
                               want.movedim(0, 1).numpy(), rtol=1e-12, atol=1e-14)
    if len(xs) > 1:
        shared = [xs[0]] + [x[0] for x in xs[1:]]
        want = jg.stack([fn(xs[0][i], *shared[1:]) for i in range(3)])
        got = vmap(fn, in_dims=(0,) + (None,) * (len(xs) - 1))(*shared)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-14)
        first = [xs[0][0]] + xs[1:]
        want = jg.stack([fn(first[0], *[x[i] for x in xs[1:]]) for i in range(3)])
        got = vmap(fn, in_dims=(None,) + (0,) * (len(xs) - 1))(*first)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-14)


def test_every_primitive_has_both_rules_and_a_program_that_checks_them(rng):
    seen = set()
    for fn, specs in PROGRAMS.values():
        seen |= _prims(fn, _inputs(specs, rng))
    # tested on their own (uniform: tests/test_random.py)
    skip = {"guard", "custom_vjp", "while", "tuple_get", "while_vjp", "cond", "uniform"}
    for p in PRIMITIVES.values():
        if p.name in skip:
            continue
        assert p in JVP_RULES, f"no JVP rule for {p.name}"
        assert p in BATCH_RULES, f"no batching rule for {p.name}"
        assert p in seen, f"no program in PROGRAMS uses {p.name}"


# -- against torch.func ------------------------------------------------------------------------
try:
    import torch
    import torch.func as tf
except ImportError:  # the comparisons below skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _both(x):
    return jg.tensor(x, dtype=F64), torch.tensor(x, dtype=torch.float64)


def _close(a, b, tol=1e-12):
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b)
        for x, y in zip(a, b):
            _close(x, y, tol)
        return
    assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
    np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=tol, atol=tol)


def _mlp(lib):
    def loss(w1, b1, w2, x, y):
        h = lib.tanh(x @ w1.T + b1)
        return ((h @ w2 - y) ** 2).mean()
    return loss


@needs_torch
def test_per_example_gradients_match_torch_func(rng):
    w1, tw1 = _both(rng.normal(size=(8, 5)))
    b1, tb1 = _both(rng.normal(size=8))
    w2, tw2 = _both(rng.normal(size=(8, 2)))
    x, tx = _both(rng.normal(size=(16, 5)))
    y, ty = _both(rng.normal(size=(16, 2)))
    dims = (None, None, None, 0, 0)
    got = vmap(grad(_mlp(jg), argnums=(0, 1, 2)), in_dims=dims)(w1, b1, w2, x, y)
    want = tf.vmap(tf.grad(_mlp(torch), argnums=(0, 1, 2)), in_dims=dims)(tw1, tb1, tw2, tx, ty)
    _close(got, want)
    compiled = jg.jit(vmap(grad(_mlp(jg), argnums=(0, 1, 2)), in_dims=dims))
    _close(compiled(w1, b1, w2, x, y), want)
    x2, tx2 = _both(rng.normal(size=(16, 5)))
    _close(compiled(w1, b1, w2, x2, y),
           tf.vmap(tf.grad(_mlp(torch), argnums=(0, 1, 2)), in_dims=dims)(tw1, tb1, tw2, tx2, ty))
    info = compiled.cache_info()
    assert info.traces == 1 and info.compiles == 1 and info.fallbacks == ()


@needs_torch
def test_jacobians_and_hessian_match_torch_func(rng):
    x, tx = _both(rng.normal(size=3))
    a, ta = _both(rng.normal(size=(2, 3)))

    def f(lib):
        return lambda x, a: (a @ x.sin()) * x.norm() + (a ** 2).sum(1) * x.prod()
    _close(jacrev(f(jg), argnums=(0, 1))(x, a), tf.jacrev(f(torch), argnums=(0, 1))(tx, ta))
    _close(jacfwd(f(jg), argnums=(0, 1))(x, a), tf.jacfwd(f(torch), argnums=(0, 1))(tx, ta))
    _close(jacrev(f(jg))(x, a), tf.jacrev(f(torch))(tx, ta))

    def s(lib):
        return lambda x: (x.exp() * x.softmax(0)).sum() + x.logsumexp(0) * x[0]
    _close(hessian(s(jg))(x), tf.hessian(s(torch))(tx))
    _close(jacrev(jacrev(s(jg)))(x), tf.jacrev(tf.jacrev(s(torch)))(tx))


@needs_torch
def test_vjp_and_jvp_with_pytrees_and_aux_match_torch_func(rng):
    x, tx = _both(rng.normal(size=(2, 3)))
    v, tv = _both(rng.normal(size=3))

    def f(lib):
        return lambda d: ((d["x"] @ d["v"]).tanh(), {"n": d["v"].norm()})
    out, fn, aux = vjp(f(jg), {"x": x, "v": v}, has_aux=True)
    tout, tfn, taux = tf.vjp(f(torch), {"x": tx, "v": tv}, has_aux=True)
    _close(out, tout)
    _close(aux["n"], taux["n"])
    ct, tct = _both(rng.normal(size=2))
    (got,), (want,) = fn(ct), tfn(tct)
    _close([got["x"], got["v"]], [want["x"], want["v"]])
    t, tt = _both(rng.normal(size=(2, 3)))
    g = lambda lib: lambda x, v: (x @ v).sin() * lib.tensor(2.0, dtype=x.dtype)
    _close(jvp(g(jg), (x, v), (t, v)), tf.jvp(g(torch), (tx, tv), (tt, tv)))


@needs_torch
def test_functional_call_with_grad_matches_torch(rng):
    jm = jg.nn.Sequential(jg.nn.Linear(4, 3), jg.nn.Tanh(), jg.nn.Linear(3, 1)).double()
    tm = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(),
                             torch.nn.Linear(3, 1)).double()
    with torch.no_grad():
        for (_, p), (_, q) in zip(jm.named_parameters(), tm.named_parameters()):
            q.copy_(torch.tensor(p.detach().numpy()))
    x, tx = _both(rng.normal(size=(5, 4)))
    jp = {k: v.detach() for k, v in jm.named_parameters()}
    tp = {k: v.detach() for k, v in tm.named_parameters()}

    def loss(lib, fc, m):
        return lambda p, x: (fc(m, p, (x,)) ** 2).sum()
    got = vmap(grad(loss(jg, jg.func.functional_call, jm)), in_dims=(None, 0))(jp, x)
    want = tf.vmap(tf.grad(loss(torch, tf.functional_call, tm)), in_dims=(None, 0))(tp, tx)
    for k in jp:
        _close(got[k], want[k])
    assert all(p is q for p, q in zip(jm.parameters(), [jm[0].weight, jm[0].bias, jm[2].weight,
                                                        jm[2].bias]))  # restored


@needs_torch
def test_autograd_functional_matches_torch(rng):
    import torch.autograd.functional as TAF

    import jitgrad.autograd.functional as AF
    x, tx = _both(rng.normal(size=3))
    y, ty = _both(rng.normal(size=(3, 2)))
    v, tv = _both(rng.normal(size=3))

    def f(lib):
        return lambda x, y: ((x.exp() @ y) ** 2, x.sin().sum() * y)

    def s(lib):
        return lambda x, y: (x.sin() @ y).pow(2).sum() + (x ** 3).sum()
    _close(AF.jacobian(f(jg), (x, y)), TAF.jacobian(f(torch), (tx, ty)))
    _close(AF.jacobian(lambda x: x.exp() * x.sum(), x, strategy="forward-mode"),
           TAF.jacobian(lambda x: x.exp() * x.sum(), tx, strategy="forward-mode",
                        vectorize=True))
    _close(AF.hessian(s(jg), (x, y)), TAF.hessian(s(torch), (tx, ty)))
    _close(AF.hessian(lambda x: (x ** 4).sum(), x), TAF.hessian(lambda x: (x ** 4).sum(), tx))
    g = lambda lib: lambda x: (x.tanh() * x.sum())
    _close(AF.vjp(g(jg), x, v), TAF.vjp(g(torch), tx, tv))
    _close(AF.jvp(g(jg), x, v), TAF.jvp(g(torch), tx, tv))
    _close(AF.hvp(lambda x: (x ** 3).prod(), x, v), TAF.hvp(lambda x: (x ** 3).prod(), tx, tv))
    _close(AF.vhp(s(jg), (x, y), (v, y)), TAF.vhp(s(torch), (tx, ty), (tv, ty)))
    with pytest.raises(RuntimeError, match="single element"):
        AF.hessian(lambda x: x * 2, x)
    with pytest.raises(RuntimeError, match="v can only be None"):
        AF.vjp(lambda x: x * 2, x)


# -- composition and compiling -----------------------------------------------------------------
def test_detached_values_have_no_tangent():
    x, t = jg.tensor([1.0, 2.0]), jg.tensor([3.0, 5.0])
    assert jvp(lambda x: x.detach() * x, (x,), (t,))[1].tolist() == [3.0, 10.0]


def test_results_join_the_eager_graph_for_higher_order():
    x = jg.tensor([0.5, 1.5], dtype=F64, requires_grad=True)
    g = grad(lambda x: (x ** 4).sum())(x)  # 4 x^3
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 12 * x.detach().numpy() ** 2, rtol=1e-12)


def test_jit_grad_of_jacrev_compiles_and_is_right():
    def f(x):
        return jacrev(lambda x: x.sin() * x[0])(x).sum()
    x = jg.tensor([0.3, -1.2, 2.0], dtype=F64)
    c = jg.grad(f)
    # f = sum_ij d(x_0 sin x_i)/dx_j = x_0 sum_i cos x_i + sum_i sin x_i, so
    # df/dx_k = cos x_k - x_0 sin x_k, plus sum_i cos x_i for k = 0.
    s, co = np.sin(x.numpy()), np.cos(x.numpy())
    want = co - x.numpy()[0] * s
    want[0] += co.sum()
    np.testing.assert_allclose(c(x).numpy(), want, rtol=1e-12)
    assert c.cache_info().compiles == 1


def test_data_dependent_control_flow_under_vmap_runs_per_example():
    def f(x):
        if x.sum() > 0:
            return x * 2
        return -x
    xs = jg.tensor([[1.0, 2.0], [-3.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(vmap(f)(xs).numpy(), [[2, 4], [3, -1], [1, 1]])


def test_guards_inside_a_transform_guard_the_compiled_caller():
    def f(x):
        return x.sin() if x.sum() > 0 else x.cos()
    c = jg.jit(lambda x: grad(lambda y: f(y).sum())(x))
    for v in (1.0, -1.0, 2.0, -2.0):
        x = jg.tensor([v, 0.5 * v], dtype=F64)
        want = np.cos(x.numpy()) if v > 0 else -np.sin(x.numpy())
        np.testing.assert_allclose(c(x).numpy(), want, rtol=1e-12)


def test_float32_stays_float32():
    x = jg.tensor([1.0, 2.0])
    assert grad(lambda x: (x * x).sum())(x).dtype is jg.float32
    assert jvp(jg.exp, (x,), (x,))[1].dtype is jg.float32
    assert hessian(lambda x: (x ** 3).sum())(x).dtype is jg.float32
    assert vmap(lambda x: x.sum())(jg.ones(3, 2)).dtype is jg.float32


def test_closure_tensors_are_read_at_each_call():
    w = jg.tensor([1.0, 2.0])
    f = lambda x: (x * w).sum()
    assert grad(f)(jg.ones(2)).tolist() == [1.0, 2.0]
    w = jg.tensor([5.0, 7.0])  # rebinding the global the closure reads
    assert grad(f)(jg.ones(2)).tolist() == [5.0, 7.0]
    np.testing.assert_allclose(vmap(f)(jg.ones(3, 2)).numpy(), [12.0] * 3)


def test_custom_function_under_the_transforms():
    class Cube(jg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2
    x = jg.tensor([1.0, 2.0], dtype=F64)
    np.testing.assert_allclose(grad(lambda x: Cube.apply(x).sum())(x).numpy(), [3.0, 12.0])
    np.testing.assert_allclose(vmap(lambda x: Cube.apply(x))(x.reshape(2, 1)).numpy(),
                               [[1.0], [8.0]])
    with pytest.raises(jg.TraceError, match="forward mode through the custom autograd"):
        jvp(lambda x: Cube.apply(x), (x,), (x,))


# -- errors ------------------------------------------------------------------------------------
def test_errors_name_the_problem():
    x = jg.ones(3)
    with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a scalar"):
        grad(lambda x: x * 2)(x)
    with pytest.raises(TypeError, match="only floating-point inputs"):
        grad(lambda x: x.sum().to(jg.float32))(jg.tensor([1, 2]))
    with pytest.raises(ValueError, match="same size in the mapped dimension, got sizes 3 and 4"):
        vmap(lambda a, b: a + b)(jg.ones(3), jg.ones(4))
    with pytest.raises(ValueError, match="in_dim 2 is out of range"):
        vmap(lambda a: a, in_dims=2)(jg.ones(3, 2))
    with pytest.raises(ValueError, match="at least one argument must be mapped"):
        vmap(lambda a: a, in_dims=None)(x)
    with pytest.raises(ValueError, match="tangent 0 has shape \\(2,\\)"):
        jvp(jg.sin, (x,), (jg.ones(2),))
    _, fn = vjp(jg.sin, x)
    with pytest.raises(ValueError, match="cotangent 0 has shape \\(2,\\)"):
        fn(jg.ones(2))
    with pytest.raises(ValueError, match="only 1 positional argument"):
        grad(jg.sin, argnums=1)(x)
    with pytest.raises(jg.ShapeError, match="test_func.py"):  # the user's line
        vmap(lambda a: a @ jg.ones(5))(jg.ones(2, 3))
