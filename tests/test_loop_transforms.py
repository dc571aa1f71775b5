"""Function transforms through lifted loops: ``jvp``, ``vmap`` (examples that stop at different
iterations), ``hessian``, ``jacfwd``, and the reverse of a reverse loop (``jacrev`` of ``grad``,
``grad`` of ``grad``, ``jacrev`` of ``jacrev``) of a function with a data-dependent ``while``,
inside a compiled function, trace once for every trip count and equal the same transforms run
eagerly (where the loop is unrolled: an independent path) and torch.func where it is
installed."""

import numpy as np
import pytest

import jitgrad as jg
from jitgrad import func as F


def grow(x):
    # a tape: each iteration's VJP reads sin(y) and cos(y) at the value it started from
    y = x * 2
    while y.norm() < 100:
        y = y * 1.5 + 0.1 * y.sin()
    return (y * y).sum() / 10


def branchy(x, w):
    # an if on data inside the loop: a cond in the lifted body; w is loop-invariant
    y = x
    while y.abs().sum() < 50:
        if y.sum() > 0:
            y = y * w + 0.5
        else:  # (a negative start takes this side first, then the other: both are traced)
            y = -y * 1.5 + w
    return (y * y.cos()).sum()


def scaled(k, x):
    # a scalar parameter, read by every iteration: its second derivative sums over them
    y = x
    while (y * y).sum() < 1e4:
        y = y * k + 0.01 * y.sin()
    return y.sum()


def spiral(x):
    # a vector result: jacrev of jacrev reverses the reverse loop of each output's row
    y = x * 2
    while y.norm() < 100:
        y = y * 1.5 + 0.1 * y.sin()
    return y.cos() * y


def _x(*v):
    return jg.tensor(list(v), dtype=jg.float64)


def _total(f):
    return lambda a: f(a).sum()


INPUTS = [_x(1.0, 2.0, 0.5), _x(0.3, 0.1, -0.2), _x(2.0, -1.0, 3.0)]
COND_INPUTS = [_x(-1.0, -2.0, 0.5), _x(0.3, -0.9, 0.1)]  # negative sums: both sides traced
SCALES = _x(1.0, 0.05, 4.0).reshape(3, 1)  # vmap's examples: 3 different trip counts

PROGRAMS = {
    "jvp": lambda x: F.jvp(grow, (x,), (jg.ones_like(x),))[1],
    "jacfwd": lambda x: F.jacfwd(grow)(x),
    "vmap": lambda x: F.vmap(grow)(x.reshape(1, -1) * SCALES),
    "vmap_grad": lambda x: F.vmap(F.grad(grow))(x.reshape(1, -1) * SCALES),
    "jacrev": lambda x: F.jacrev(F.grad(grow))(x),  # the reverse of a reverse loop, batched
    "grad_grad": lambda x: F.grad(F.grad(scaled))(x[0].abs() * 0.2 + 1.1, x),
    "jacrev_jacrev": lambda x: F.jacrev(F.jacrev(spiral))(x),
    # the reverse of a JVP'd reverse loop, itself a reverse loop (of the loop's JVP): any order
    "grad_grad_grad": lambda x: F.grad(_total(F.grad(_total(F.grad(grow)))))(x),
    "grad4": lambda x: F.grad(F.grad(F.grad(F.grad(scaled))))(x[0].abs() * 0.2 + 1.1, x),
    "jvp_grad_grad": lambda x: F.jvp(lambda a: F.grad(_total(F.grad(grow)))(a), (x,),
                                     (x.cos(),))[1],
    "jacrev_cond": lambda x: F.jacrev(F.grad(branchy, argnums=(0, 1)), argnums=(0, 1))(
        x, _x(1.3, 0.7, 1.1)),
    "hessian": lambda x: F.hessian(grow)(x),
    # a third order through hessian's batched JVP'd loop; scaled's k is an invariant that has
    # no tangent in the hessian (wrt x) but a cotangent in the grad around it
    "grad_hessian": lambda x: F.grad(_total(F.hessian(grow)))(x),
    "grad_hessian_k": lambda x: F.grad(_total(lambda a: F.hessian(scaled, argnums=1)(
        a[0].abs() * 0.2 + 1.1, a)))(x),
    # the reverse of vmap's masked loop (three trip counts), reversed again, and with a shared
    # scalar read by every example's loop
    "grad_vmap_grad": lambda x: F.grad(_total(lambda a: F.vmap(F.grad(grow))(
        a.reshape(1, -1) * SCALES)))(x),
    "jacrev_vmap_grad": lambda x: F.jacrev(lambda a: F.vmap(F.grad(grow))(
        a.reshape(1, -1) * SCALES))(x),
    "grad_vmap_grad_k": lambda x: F.grad(lambda a: F.vmap(
        F.grad(scaled, argnums=(0, 1)), in_dims=(None, 0))(
            a[0].abs() * 0.2 + 1.1, a.reshape(1, -1) * SCALES)[0].sum())(x),
    "hessian_cond": lambda x: F.hessian(branchy, argnums=(0, 1))(x, _x(1.3, 0.7, 1.1)),
    "vmap_cond": lambda x: F.vmap(F.grad(branchy), in_dims=(0, None))(
        x.reshape(1, -1) * SCALES, _x(1.3, 0.7, 1.1)),
}
LIFTED = set(PROGRAMS)


def _flat(out):
    if isinstance(out, (tuple, list)):
        return np.concatenate([_flat(o) for o in out])
    return np.asarray(out.numpy(), dtype=np.float64).ravel()


@pytest.fixture(scope="module", params=["reference", "numba-cpu", "cuda"])
def target(request):
    t = {"numba-cpu": "cpu"}.get(request.param, request.param)
    with jg.config.patch(compile_after=0.0, compile_in_background=False, aot_builds=False):
        yield t


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_transform_of_a_lifted_loop_equals_the_eager_transform(name, target):
    if target == "cpu" and name not in ("hessian", "vmap_cond", "grad_grad", "jacrev"):
        # (hessian's kernel holds a JVP'd loop and a batched reverse loop; vmap_cond's a masked
        # loop with a cond in its body and its reverse; grad_grad's the JVP'd loop and reverse
        # loop that reverse a reverse loop, jacrev's the same batched: every kind of rewrite)
        pytest.skip("a few compiles on the CPU target keep the suite short")
    if target == "cuda" and name not in ("hessian", "jacrev"):
        pytest.skip("the CUDA simulator runs hessian's kernels (a JVP'd and a batched loop) "
                    "and jacrev's (those of a reverse of a reverse loop)")
    if target == "reference" and name == "vmap_cond":
        pytest.skip("the CPU target runs it (its eager reference, example by example, is slow)")
    prog = PROGRAMS[name]
    fn = jg.jit(prog, target=target)
    # (the eager reference of the cond programs runs each example unrolled: two inputs)
    # (vmap_cond: one call of three examples with three trip counts, each seeing both sides)
    for x in (COND_INPUTS[:1] if name == "vmap_cond" else COND_INPUTS) if name.endswith("cond") \
            else INPUTS:
        want = _flat(prog(x))  # eagerly: the transforms trace the loop unrolled
        got = fn(x)
        got = _flat(got.cpu() if target == "cuda" else got)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    info = fn.cache_info()
    assert name in LIFTED
    assert info.traces == 1, info
    assert all("lifted (" in r for r in info.loops), info.loops


def test_the_transforms_equal_torch_func():
    torch = pytest.importorskip("torch")
    from torch import func as TF

    # the programs use tensor methods only: torch runs the same functions, loops unrolled
    h = jg.jit(PROGRAMS["hessian"], target="reference")
    v = jg.jit(PROGRAMS["vmap_grad"], target="reference")
    rr = {name: jg.jit(PROGRAMS[name], target="reference")
          for name in ("jacrev", "grad_grad", "jacrev_jacrev", "grad_grad_grad", "grad4",
                       "grad_hessian", "grad_hessian_k", "grad_vmap_grad", "jacrev_vmap_grad")}
    for x in INPUTS[1:]:
        xt = torch.tensor(x.numpy())
        np.testing.assert_allclose(h(x).numpy(), TF.hessian(grow)(xt).numpy(), rtol=1e-10)
        want = torch.stack([TF.grad(grow)(xt * s) for s in (1.0, 0.05, 4.0)])
        np.testing.assert_allclose(v(x).numpy(), want.numpy(), rtol=1e-10)
        # the reverse of a reverse loop: torch.func differentiates the Python loop unrolled
        np.testing.assert_allclose(rr["jacrev"](x).numpy(),
                                   TF.jacrev(TF.grad(grow))(xt).numpy(), rtol=1e-10)
        k = xt[0].abs() * 0.2 + 1.1
        np.testing.assert_allclose(rr["grad_grad"](x).numpy(),
                                   TF.grad(TF.grad(scaled))(k, xt).numpy(), rtol=1e-10)
        np.testing.assert_allclose(rr["jacrev_jacrev"](x).numpy(),
                                   TF.jacrev(TF.jacrev(spiral))(xt).numpy(), rtol=1e-10)
        # a third and a fourth reverse
        ttotal = lambda f: lambda a: f(a).sum()  # noqa: E731
        np.testing.assert_allclose(
            rr["grad_grad_grad"](x).numpy(),
            TF.grad(ttotal(TF.grad(ttotal(TF.grad(grow)))))(xt).numpy(), rtol=1e-10)
        np.testing.assert_allclose(
            rr["grad4"](x).numpy(),
            TF.grad(TF.grad(TF.grad(TF.grad(scaled))))(k, xt).numpy(), rtol=1e-10)
        # vmap's examples, each with a trip count of its own, one after the other in torch
        per = lambda f: lambda a: torch.stack([f(a * s) for s in (1.0, 0.05, 4.0)])  # noqa: E731
        np.testing.assert_allclose(
            rr["grad_vmap_grad"](x).numpy(),
            TF.grad(ttotal(per(TF.grad(grow))))(xt).numpy(), rtol=1e-10)
        np.testing.assert_allclose(
            rr["jacrev_vmap_grad"](x).numpy(),
            TF.jacrev(per(TF.grad(grow)))(xt).numpy(), rtol=1e-10)
        np.testing.assert_allclose(
            rr["grad_hessian"](x).numpy(),
            TF.grad(ttotal(TF.hessian(grow)))(xt).numpy(), rtol=1e-10)
        np.testing.assert_allclose(
            rr["grad_hessian_k"](x).numpy(),
            TF.grad(ttotal(lambda a: TF.hessian(scaled, argnums=1)(a[0].abs() * 0.2 + 1.1, a)))(
                xt).numpy(), rtol=1e-10)
    assert all(f.cache_info().traces == 1 for f in rr.values())


def test_a_reverse_of_a_jvp_of_jacrev_rows_stays_unrolled_right_and_says_so():
    # the hessian of a function with two outputs runs forward mode through jacrev's rows of a
    # reverse loop, whose reverse has no rule: the runtime traces the transforms with their
    # loops unrolled, one trace per trip count, and the report says why
    def pairs(x):
        y = x * 2
        while y.norm() < 100:
            y = y * 1.5 + 0.1 * y.sin()
        return y[:2] * y[1:]

    def prog(x):
        return F.grad(_total(F.hessian(pairs)))(x)

    fn = jg.jit(prog, target="reference")
    for x in INPUTS[:2]:
        np.testing.assert_allclose(fn(x).numpy(), prog(x).numpy(), rtol=1e-12)
    info = fn.cache_info()
    assert info.traces == 2, info
    assert all("not lifted" in r and "after jacrev batched it" in r for r in info.loops), \
        info.loops


def test_a_batched_loop_holds_the_examples_that_are_done():
    # one example stops after its first test, another runs 8 iterations: the first keeps its
    # value while the second goes on
    def halve_until_small(y):
        while y.abs().max() > 1.0:
            y = y * 0.5
        return y

    fn = jg.jit(lambda ys: F.vmap(halve_until_small)(ys), target="reference")
    ys = jg.tensor([[0.5, 0.25], [200.0, -3.0], [3.0, 1.5]], dtype=jg.float64)
    want = np.stack([halve_until_small(y).numpy() for y in ys])
    np.testing.assert_array_equal(fn(ys).numpy(), want)
    assert fn.cache_info().traces == 1


def test_an_if_that_went_one_way_in_a_transform_keeps_its_loop_unrolled_and_right():
    # (found by the loop fuzzer: a guard kept inside a loop lifted in the transform's trace was
    # numbered in that trace, and its failure at a later input raised an IndexError)
    w = _x(1.3, 0.7, 1.1)
    fn = jg.jit(lambda x: F.grad(branchy)(x, w), target="reference")
    for x in (INPUTS[0], COND_INPUTS[0], INPUTS[2]):  # one way, then both ways
        np.testing.assert_allclose(fn(x).numpy(), F.grad(branchy)(x, w).numpy(), rtol=1e-12)
    assert any("went one way" in r for r in fn.cache_info().loops), fn.cache_info().loops


def _steps(x, n):
    # a count every example shares: the batched loop is one loop of independent rows
    y = x
    for _ in range(int(n.item())):
        y = y * 0.9 + 0.1 * y.sin()
    return (y * y).sum()


def test_a_reverse_of_a_batched_reverse_loop_whose_examples_stop_together_lifts():
    # grad of a sum of per-example gradients (vmap of grad): the batched reverse loop is the
    # reverse of the batched loop, reversed again; one trace for every count
    def prog(xs, n):
        return F.grad(lambda a: F.vmap(F.grad(_steps), in_dims=(0, None))(a, n).sum())(xs)

    fn = jg.jit(prog, target="reference")
    rng = np.random.default_rng(3)
    torch = None
    try:
        import torch
        from torch import func as TF
    except ImportError:
        pass
    for k in (3, 6, 1):
        xs, n = jg.tensor(rng.standard_normal((4, 3))), jg.tensor(k)
        got = fn(xs, n).numpy()
        np.testing.assert_allclose(got, prog(xs, n).numpy(), rtol=1e-12, atol=1e-14)
        if torch is not None:  # torch.func, the loop unrolled over the count
            tn = torch.tensor(k)
            want = TF.grad(lambda a: TF.vmap(TF.grad(_steps), in_dims=(0, None))(a, tn).sum())(
                torch.tensor(xs.numpy()))
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-10)
    info = fn.cache_info()
    assert info.traces == 1, info
    assert all("lifted (" in r for r in info.loops), info.loops


def test_a_counted_loop_in_a_transform_compiled_as_it_is_lifts():
    # jit(F.grad(f)) traces jitgrad.func's wrapper: range(int(n.item())) in f's module is still
    # the tracing range (the wrapper's module is the wrapped function's), so the count lifts
    fn = jg.jit(F.grad(_steps), target="reference")
    x = _x(0.3, -1.2, 2.0)
    for k in (2, 5, 9):
        got, want = fn(x, jg.tensor(k)).numpy(), F.grad(_steps)(x, jg.tensor(k)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    info = fn.cache_info()
    assert info.traces == 1, info
    assert all("lifted (" in r for r in info.loops), info.loops
    # (jitgrad's own modules keep Python's range: nothing was left in any namespace)
    assert "range" not in F.__dict__ and "range" not in globals()
