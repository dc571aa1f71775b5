"""What compiled functions hand back, on every target: each result (output, gradient leaf, Module
gradient, aux value) is an array of its own that can be written in place, as torch's gradients
are (``p.grad.mul_(s)``); and the gradient of ``prod`` (the product of the others), exact with
zeros, at every shape including 0-d, against eager autograd, finite differences and torch."""

import contextlib
import importlib.util

import numpy as np
import pytest

import jitgrad as jg
from jitgrad import nn
from jitgrad.backends.device_array import DeviceArray
from jitgrad.func import vmap

HAVE_CUDA = importlib.util.find_spec("numba_cuda") is not None
# "cpu-interpreted": the CPU target before its trace compiles (the interpreter runs the first
# calls by default; the suite's conftest compiles at once).
TARGETS = ["reference", "cpu", "cpu-interpreted",
           pytest.param("cuda", marks=pytest.mark.skipif(not HAVE_CUDA,
                                                          reason="numba-cuda is not installed"))]


@contextlib.contextmanager
def on(target: str):
    """The target's name for ``target=``, with the settings the test target needs."""
    if target == "cpu-interpreted":
        with jg.config.patch(compile_after=1e9):
            yield "cpu"
    else:
        yield target


def transform(mode: str, fn, target: str, kw: dict):
    return getattr(jg, mode)(fn, target=target, **kw)


# -- every result is an array of its own --------------------------------------------------------
def _arr(rng, *shape):
    return jg.tensor(rng.standard_normal(shape))


def _closure_case(rng):
    c = _arr(rng, 4)
    return "jit", lambda a: (c, a * c, c.reshape(2, 2), c.expand(3, 4)), {}, (_arr(rng, 3, 4),), [c]


def _closure_grad_case(rng):
    c = _arr(rng, 4)
    # d/da of sum(a * c) is c broadcast: a view of a live input on the interpreter
    return "value_and_grad", lambda a: (a * c).sum() + c.sum(), {}, (_arr(rng, 3, 4),), [c]


def _module_case(rng):
    jg.manual_seed(0)
    m = nn.Linear(3, 2)
    x = jg.tensor(rng.standard_normal((5, 3)).astype(np.float32))
    return "grad", lambda m, x: m(x).sum(), {}, (m, x), []


def _module_aux_case(rng):
    jg.manual_seed(1)
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x = jg.tensor(rng.standard_normal((2, 3)).astype(np.float32))

    def f(m, x):
        y = m(x)
        return y.mean(), (y, x)  # aux: an output, and an argument returned as it is
    return "value_and_grad", f, dict(has_aux=True), (m, x), []


CASES = {
    "grad_sum": lambda r: ("grad", lambda a: a.sum(), {}, (_arr(r, 3, 4),), []),
    "grad_mean": lambda r: ("grad", lambda a: (2 * a).mean(), {}, (_arr(r, 3, 4),), []),
    "grad_broadcasting_add": lambda r: ("grad", lambda a, b: (a + b).sum(), dict(argnums=(0, 1)),
                                        (_arr(r, 3, 4), _arr(r, 4)), []),
    "grad_is_an_argument": lambda r: ("grad", lambda a, b: (a * b).sum(), dict(argnums=(0, 1)),
                                      (_arr(r, 3), _arr(r, 3)), []),
    "value_and_grad_expand": lambda r: ("value_and_grad", lambda a: (a.expand(2, 3, 4) * 1.5).sum(),
                                        {}, (_arr(r, 3, 4),), []),
    "grad_aux_returns_argument": lambda r: ("grad", lambda a: ((a * a).sum(), (a, a.sum())),
                                            dict(has_aux=True), (_arr(r, 3),), []),
    "jit_expand": lambda r: ("jit", lambda a: a.expand(2, 3, 4), {}, (_arr(r, 3, 4),), []),
    "jit_returned_argument": lambda r: ("jit", lambda a: a, {}, (_arr(r, 3, 4),), []),
    "jit_views_of_argument": lambda r: ("jit", lambda a: (a, a.reshape(-1), a.T, a[:, 1]), {},
                                        (_arr(r, 3, 4),), []),
    "jit_views_of_intermediate": lambda r: ("jit", lambda a: (lambda y: (y.T, y[:, 1], y[1]))(a * 2),
                                            {}, (_arr(r, 3, 4),), []),
    "jit_result_twice": lambda r: ("jit", lambda a: (lambda y: (y, y, y.reshape(4, 3)))(a * 2), {},
                                   (_arr(r, 3, 4),), []),
    "jit_constants": lambda r: ("jit", lambda a: (jg.ones(3), jg.tensor([1.0, 2.0]), jg.tensor(2.0),
                                                  a.sum()), {}, (_arr(r, 3, 4),), []),
    "jit_closure": _closure_case,
    "value_and_grad_closure": _closure_grad_case,
    "grad_module": _module_case,
    "value_and_grad_module_aux": _module_aux_case,
}


def eager(mode: str, fn, args: tuple, argnums=0, has_aux: bool = False):
    """What ``mode`` of ``fn`` gives, by eager autograd (``loss.backward()`` and ``.grad``)."""
    if mode == "jit":
        return fn(*args)
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    args = list(args)
    for i in nums:
        if isinstance(args[i], nn.Module):
            args[i].zero_grad()
        else:
            args[i] = jg.tensor(args[i].numpy().copy(), requires_grad=True)
    out = fn(*args)
    aux = None
    if has_aux:
        out, aux = out
    out.backward()
    gs = [dict((n, p.grad) for n, p in args[i].named_parameters())
          if isinstance(args[i], nn.Module) else args[i].grad for i in nums]
    g = gs[0] if isinstance(argnums, int) else tuple(gs)
    if mode == "value_and_grad":
        return ((out, aux) if has_aux else out), g
    return (g, aux) if has_aux else g


def leaves(obj) -> list:
    if isinstance(obj, dict):
        return [x for k in obj for x in leaves(obj[k])]
    if isinstance(obj, (tuple, list)):
        return [x for v in obj for x in leaves(v)]
    return [obj]


def value(x) -> np.ndarray:
    """A host copy of a result's values."""
    if isinstance(x, jg.Tensor):
        return np.array(x.detach().numpy())
    return np.array(x.numpy() if isinstance(x, DeviceArray) else x)


def input_arrays(args: tuple, lives: list) -> list:
    out = []
    for a in list(args) + lives:
        if isinstance(a, nn.Module):
            out += [p._value for p in a.parameters()]
        else:
            out.append(a._value)
    return out


WRITES = [(lambda t: t.add_(1), lambda v: v + 1), (lambda t: t.mul_(2), lambda v: v * 2),
          (lambda t: t.zero_(), lambda v: v * 0)]


def write(x, k: int) -> np.ndarray:
    """Write result ``x`` in place (the k-th of add_, mul_, zero_); returns what it now holds."""
    op, expect = WRITES[k % len(WRITES)]
    new = expect(value(x))
    if isinstance(x, DeviceArray):
        # Device memory is written in place through __cuda_array_interface__ (CuPy, torch): here
        # through the flat device array itself.
        x._flat.copy_to_device(np.ascontiguousarray(new, dtype=x.dtype).reshape(-1))
    else:
        op(x)
    return new


def check_own(got: list, inputs: list) -> None:
    """Each host result: a dense, writable array sharing memory with no input or other result."""
    for i, x in enumerate(got):
        if isinstance(x, DeviceArray):
            assert all(x._flat is not y._flat for y in got[:i] if isinstance(y, DeviceArray))
            continue
        assert isinstance(x, jg.Tensor), type(x)
        a = x._value
        assert a.flags.writeable and a.flags.c_contiguous, (i, a.strides, a.flags)
        assert 0 not in a.strides or a.size <= 1, (i, a.strides)
        for b in inputs + [y._value for y in got[:i] if isinstance(y, jg.Tensor)]:
            assert not np.shares_memory(a, b), i


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(CASES))
def test_every_result_is_an_array_of_its_own(name, target):
    mode, fn, kw, args, lives = CASES[name](np.random.default_rng(0))
    inputs = input_arrays(args, lives)
    before = [a.copy() for a in inputs]
    tol = dict(rtol=1e-5, atol=1e-6) if any(a.dtype == np.float32 for a in inputs) else \
        dict(rtol=1e-12, atol=1e-12)
    expected = [value(x) for x in leaves(eager(mode, fn, args, **kw))]
    with on(target) as t:
        f = transform(mode, fn, t, kw)
        earlier: list = []  # (result, what it holds) of the calls before
        for _ in range(3):  # the first call, then the steady state's paths
            got = leaves(f(*args))
            assert len(got) == len(expected)
            for x, e in zip(got, expected):
                np.testing.assert_allclose(value(x), e, **tol)
            check_own(got, inputs)
            for k, x in enumerate(got):
                held = [value(y) for y in got]
                held[k] = write(x, k)
                for y, h in zip(got, held):  # the written result changed, and nothing else
                    np.testing.assert_array_equal(value(y), h)
                for a, b in zip(inputs, before):
                    np.testing.assert_array_equal(a, b)
            for x, h in earlier:  # a later call leaves the results of earlier ones alone
                np.testing.assert_array_equal(value(x), h)
            earlier += [(x, value(x)) for x in got]


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_eager_fallback_results_are_arrays_of_their_own(target):
    # Past the re-trace limit the function runs eagerly: autograd.grad's gradient of a sum is
    # a broadcast view, and the jit of an identity returns the argument itself.
    def f(x):
        return x.sum() * 2 if x.sum() > 0 else x.sum() * 3

    def h(x):
        return (x, x.T) if x.sum() > 0 else (x * 1, x.T * 1)

    g = jg.grad(f, target=target, retrace_limit=1)
    j = jg.jit(h, target=target, retrace_limit=1)
    with jg.config.patch(merge_branches=False, lift_loops=False), pytest.warns(jg.RetraceWarning):
        for s in (1.0, -1.0, 1.0):
            x = jg.tensor(np.arange(6.0).reshape(2, 3) * s + 0.5 * s)
            keep = x.numpy().copy()
            gx = g(x)
            check_own([gx], [x._value])
            gx.add_(1)
            np.testing.assert_array_equal(gx.numpy(), np.full((2, 3), 3.0 if s > 0 else 4.0))
            outs = list(j(x))
            check_own(outs, [x._value])
            for o in outs:
                o.mul_(2)
            np.testing.assert_array_equal(x.numpy(), keep)
    assert g.cache_info().eager_fallback and j.cache_info().eager_fallback


# -- the gradient of prod: the product of the others -------------------------------------------
def _fd_grad(fn, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences (exact up to rounding for prod, which is linear in each element)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        p, m = x.copy(), x.copy()
        p[i] += eps
        m[i] -= eps
        g[i] = (fn(p) - fn(m)) / (2 * eps)
    return g


def _prod(x, dim=None, keepdim=False):
    return x.prod() if dim is None else x.prod(dim, keepdim=keepdim)


# (shape, dim, keepdim): full and partial reductions, 0-d and 1-d inputs
PROD_SHAPES = [((), None, False), ((5,), None, False), ((5,), 0, False), ((5,), 0, True),
               ((3, 4), None, False), ((3, 4), 1, False), ((3, 4), 0, True), ((3, 4), -1, True),
               ((2, 3, 4), 1, False), ((2, 3, 4), None, False), ((2, 1, 3), 1, True)]
ZEROS = {"none": 0, "one": 1, "two": 2, "all": -1}


def _with_zeros(shape, zeros: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape))
    flat = x.reshape(-1)
    if zeros == -1:
        flat[:] = 0.0
    else:
        flat[rng.permutation(flat.size)[:zeros]] = 0.0  # (for a partial reduction, maybe in one row)
    return x


def _weights(shape, dim, keepdim, seed: int = 1) -> np.ndarray:
    out = np.prod(np.zeros(shape), axis=dim, keepdims=keepdim)
    return np.random.default_rng(seed).standard_normal(np.shape(out))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("zeros", list(ZEROS))
@pytest.mark.parametrize("shape,dim,keepdim", PROD_SHAPES)
def test_prod_gradient_against_eager_and_finite_differences(shape, dim, keepdim, zeros, target):
    if ZEROS[zeros] > max(1, int(np.prod(shape))):
        pytest.skip("fewer elements than zeros")
    x = _with_zeros(shape, ZEROS[zeros])
    w = jg.tensor(_weights(shape, dim, keepdim))

    def loss(t):
        return (_prod(t, dim, keepdim) * w).sum()

    xt = jg.tensor(x, requires_grad=True)
    loss(xt).backward()
    fd = _fd_grad(lambda v: loss(jg.tensor(v)).item(), x)
    np.testing.assert_allclose(xt.grad.numpy(), fd, rtol=1e-7, atol=1e-9)
    with on(target) as t:
        v, g = jg.value_and_grad(loss, target=t)(jg.tensor(x))
        np.testing.assert_allclose(value(v), loss(jg.tensor(x)).item(), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(value(g), xt.grad.numpy(), rtol=1e-12, atol=1e-15)
        # where the value is not needed, the trace holds the product of the others alone
        only = jg.jit(lambda a: jg.grad(loss)(a), target=t)(jg.tensor(x))
        np.testing.assert_allclose(value(only), xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def _tanh_matmul_prod(a, b):
    return (jg.tanh(a @ b) * 3).prod()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((4,), (4,)), ((2, 3), (3,))])
def test_prod_of_a_program_compiles_where_eager_runs(sa, sb, target):
    # The gradient of a full prod of a 0-d value is the product of no others: the CPU kernel
    # once indexed the first of no axes (IndexError in numba_calls.call_prod_others).
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(sa) * 0.5, rng.standard_normal(sb) * 0.5
    ta, tb = jg.tensor(a, requires_grad=True), jg.tensor(b, requires_grad=True)
    _tanh_matmul_prod(ta, tb).backward()
    with on(target) as t:
        ga, gb = jg.grad(_tanh_matmul_prod, argnums=(0, 1), target=t)(jg.tensor(a), jg.tensor(b))
    np.testing.assert_allclose(value(ga), ta.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(value(gb), tb.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(value(ga), _fd_grad(lambda v: _tanh_matmul_prod(
        jg.tensor(v), jg.tensor(b)).item(), a), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("target", TARGETS)
def test_prod_of_a_zero_d_value(target):
    x = np.array([[0.5, -2.0, 1.5], [3.0, 0.25, -1.0]])

    def f(a):
        return (a.sum() * 2).prod()

    with on(target) as t:
        g = jg.grad(f, target=t)(jg.tensor(x))
        # vmap over 0-d prods: the product of the others over no axes of a 1-d input
        per = jg.jit(lambda v: vmap(jg.grad(lambda s: (s * 3).prod()))(v), target=t)(
            jg.tensor(x[0]))
    np.testing.assert_array_equal(value(g), np.full(x.shape, 2.0))
    np.testing.assert_array_equal(value(per), np.full(3, 3.0))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("shape,dim,keepdim", PROD_SHAPES)
def test_prod_gradient_and_second_derivative_against_torch(shape, dim, keepdim, target):
    torch = pytest.importorskip("torch")
    x = _with_zeros(shape, 1 if int(np.prod(shape)) > 1 else 0, seed=3)
    w = _weights(shape, dim, keepdim, seed=4)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w)
    tp = tx.prod() if dim is None else tx.prod(dim, keepdim=keepdim)
    (tg,) = torch.autograd.grad((tp * tw).sum(), tx, create_graph=True)
    # a second derivative, through the zeros (none where each element has no others)
    th = torch.autograd.grad((tg * tg).sum(), tx)[0] if tg.requires_grad else torch.zeros_like(tx)
    wt = jg.tensor(w)

    def loss(t):
        return (_prod(t, dim, keepdim) * wt).sum()

    with on(target) as t:
        g = jg.grad(loss, target=t)(jg.tensor(x))
        h = jg.grad(lambda a: (jg.grad(loss)(a) ** 2).sum(), target=t)(jg.tensor(x))
    np.testing.assert_allclose(value(g), tg.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(value(h), th.numpy(), rtol=1e-10, atol=1e-13)


def test_a_traceback_through_generated_code_shows_its_lines():
    """The interpreter's function for a graph is Python jitgrad wrote (jitgrad/_pysource.py):
    an error raised inside it names the line of the graph it ran."""
    import traceback

    from jitgrad.ir.interpret import interpret
    from jitgrad.ir import Eqn, Graph, Var
    from jitgrad.ops import PRIMITIVES, Aval

    a, b = Var(Aval((2,), jg.float64)), Var(Aval((2,), jg.float64))
    g = Graph((), (a,), (Eqn(PRIMITIVES["sin"], (a,), b, {}, None),), (b,))
    try:
        interpret(g, ["not an array"])
    except Exception as e:  # noqa: BLE001  (NumPy's own error for a string)
        frames = traceback.extract_tb(e.__traceback__)
    generated = [f for f in frames if f.filename.startswith("<jitgrad graph ")]
    assert generated and generated[0].line == "v0 = f0(a0)", frames


# -- one call key: the cache's key, the test a call matches, the steady function's checks --------
def _every_kind(x, a, s, k, n, b):
    y = (x * a * s).sum() * k * n
    return y if b else -y


def test_the_steady_checks_are_the_call_keys_match():
    """A plain call's ``CallKey`` builds its site's key and the checks its generated steady
    function makes: the two say the same for every kind of argument (tensor, NumPy array and
    scalar, static and differentiated Python numbers, a NumPy bool, which is static)."""
    from jitgrad.runtime import _MISS
    from jitgrad.runtime.callkey import ARRAY, NUMBER, NUMPY_SCALAR, STATIC, TENSOR

    f = jg.grad(_every_kind, argnums=(0, 4))
    x = jg.tensor([1.0, 2.0, 3.0], dtype=jg.float64)
    args = (x, np.ones(3), np.float32(2), 3, 2.0, np.bool_(True))
    f(*args)
    rt = f._rt
    (key, site), = rt.fast.items()
    assert [a.kind for a in key.args] == [TENSOR, ARRAY, NUMPY_SCALAR, STATIC, NUMBER, STATIC]
    assert site.steady is not None
    variants = [
        args,
        (nn.Parameter(x),) + args[1:],                            # a Parameter is a tensor
        (jg.ones(3, dtype=jg.float64),) + args[1:],               # another value: same key
        (jg.ones(4, dtype=jg.float64),) + args[1:],               # another shape
        (jg.ones(3, dtype=jg.float32),) + args[1:],               # another dtype
        (x, np.ones(3, dtype=np.float32)) + args[2:],
        (x, np.ones(3), np.float64(2)) + args[3:],
        args[:3] + (4,) + args[4:],                               # another static value
        args[:3] + (3.0,) + args[4:],                             # another static type
        args[:4] + (5.0,) + args[5:],                             # a differentiated number
        args[:4] + (2,) + args[5:],
        args[:5] + (np.bool_(False),),
        args[:5] + (True,),
        args[:5],
    ]
    implicit, extra = rt.implicit.state()
    for v in variants:
        assert (site.steady(v) is not _MISS) == key.matches(v, rt._dynamic, implicit, extra), v


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_a_numpy_bool_is_a_static_argument(target):
    """Each value of a NumPy bool argument is a trace of its own, as a Python bool's is."""
    f = jg.jit(lambda x, b: x * 2 if b else -x, target=target)
    t = jg.ones(2)
    for b in [np.bool_(True), np.bool_(False)] * 2:
        np.testing.assert_array_equal(f(t, b).numpy(), [2.0, 2.0] if b else [-1.0, -1.0])
    assert f.cache_info().traces == 2
