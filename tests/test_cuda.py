"""The CUDA backend against the reference interpreter: on a GPU when there is one, else in Numba's
CUDA simulator (tests/conftest.py chooses). Small sizes: the simulator runs each thread in Python."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jitgrad
import jitgrad.nn.functional as F
from jitgrad import nn

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install 'jitgrad[cuda]')")

from numba import cuda  # noqa: E402

from jitgrad.backends.device_array import DeviceArray  # noqa: E402

from .test_compiled import _uses_functions, build, programs  # noqa: E402

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def both(fn, *args, mode="value_and_grad", **kw):
    """(CUDA result, reference result) of the same transform of ``fn``."""
    make = getattr(jitgrad, mode)
    return make(fn, target="cuda", **kw)(*args), make(fn, target="reference", **kw)(*args)


def host(x):
    if isinstance(x, (tuple, list)):
        return [host(y) for y in x]
    if isinstance(x, dict):
        return {k: host(v) for k, v in x.items()}
    return np.asarray(x.numpy() if isinstance(x, jitgrad.Tensor) else x)


def close(got, want, dtype=np.float64):
    got, want = host(got), host(want)
    if isinstance(want, list):
        for g, w in zip(got, want):
            close(g, w, dtype)
        return
    if isinstance(want, dict):
        for k in want:
            close(got[k], want[k], dtype)
        return
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def rand(*shape, dtype=np.float64, seed=0):
    return jitgrad.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


PROGRAMS = {
    "elementwise": lambda x: (jitgrad.sin(x) * jitgrad.exp(-x * x) + jitgrad.tanh(x) * x).sum(),
    "broadcast_and_axis_sums": lambda x: ((x - x.mean(0)) ** 2).sum(1).sqrt().sum(),
    "max_min_norm": lambda x: x.amax(1).sum() - x.amin(0).mean() + x.norm(),
    "transcendentals": lambda x: (jitgrad.log1p(x * x) + jitgrad.sigmoid(x) * jitgrad.cos(x)
                                  + (jitgrad.relu(x) + 1).sqrt()).mean(),
    "matmul_transpose": lambda x: (x @ x.t()).tanh().sum(),
    "softmax": lambda x: (jitgrad.softmax(x, 1) * x).sum() + jitgrad.log_softmax(x, 0).amax(),
    "gather": lambda x: (x[jitgrad.tensor([0, 2, 2, 5]), jitgrad.tensor([1, -1, 4, 0])] ** 2).sum(),
    "slice_and_cat": lambda x: jitgrad.cat([x[:, 1:3], x[:, None, ::2].reshape(6, 3) * 2,
                                            x[:, -1:]], 1).tanh().sum() + x[2, 3] ** 2,
    "setitem": lambda x: _setitem(x),
    "mixed_index_on_host": lambda x: (x[1:, jitgrad.tensor([0, 2])] ** 3).sum(),
}


def _setitem(x):
    y = x * 1.0
    y[1:3] = 0.5
    y[0] = x[4] * 2
    return (y * y).sum()


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_gradients_match_reference_float64(name):
    x = rand(6, 5)
    (v, g), (rv, rg) = both(PROGRAMS[name], x)
    assert isinstance(v, DeviceArray) and isinstance(g, DeviceArray)
    close([v, g], [rv, rg])
    driver = jitgrad.value_and_grad(PROGRAMS[name], target="cuda").lower(x).as_text(
        "kernel").split("def driver")[1]
    assert ("host_eqn" in driver) == name.endswith("on_host")


def test_float32_stays_float32():
    x = rand(4, 7, dtype=np.float32)
    (v, g), (rv, rg) = both(PROGRAMS["elementwise"], x)
    assert v.dtype == np.float32 and g.dtype == np.float32
    close([v, g], [rv, rg], np.float32)
    assert "float64(" not in jitgrad.jit(lambda x: x * 2 + 1, target="cuda").lower(x).as_text(
        "kernel").split("def driver")[0].replace("np.float64(0)", "")


def test_jit_forward_with_several_outputs():
    x, y = rand(3, 4), rand(4, seed=1)
    def f(x, y):
        return (x * y, (x + y).sum(0), x.t(), x.reshape(2, 3, 2).permute(2, 0, 1) + 1,
                x.argmax(1), x.argmin(0), jitgrad.softmax(x.reshape(3, 2, 2), 1))
    got, want = both(f, x, y, mode="jit")
    assert got[4].dtype == np.int64
    close(list(got), list(want))



# The simulator's threads compute inf % 3 with NumPy scalars, which warn (errstate is per thread).
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_values_match_reference():
    x = jitgrad.tensor(np.array([np.inf, -np.inf, np.nan, 1e300, 1e19, -2.5, 3.7, -0.0, 0.0]))
    got, want = both(lambda t: (t.floor(), jitgrad.sign(t), jitgrad.relu(t), t.clamp(-1.0, 1.0),
                                t % 3.0, t % -0.75), x, mode="jit")
    for g, w in zip(host(list(got)), host(list(want))):
        np.testing.assert_array_equal(g, w)
        assert np.signbit(g).tolist() == np.signbit(w).tolist()

def test_mlp_module_gradients():
    jitgrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = rand(6, 5)
    t = jitgrad.tensor(np.array([0, 2, 1, 1, 0, 2]))
    (v, g), (rv, rg) = both(lambda m, x, t: F.cross_entropy(m(x), t), model, x, t)
    close(v, rv)
    assert set(g) == set(rg)
    close(g, rg)
    # log_softmax, the target gather and its scatter_add all have kernels: nothing on the host.
    text = jitgrad.value_and_grad(lambda m, x, t: F.cross_entropy(m(x), t), target="cuda").lower(
        model, x, t).as_text("kernel")
    assert "host_eqn" not in text.split("def driver")[1]


def doubling(x):
    y = x * 2
    while y.norm() < 1000:
        y = y * 2
    return y.sum()


@pytest.mark.usefixtures("no_lifting")
def test_while_loop_guards_run_on_the_device_and_retrace():
    f = jitgrad.value_and_grad(doubling, target="cuda")
    r = jitgrad.value_and_grad(doubling, target="reference")
    for s in (1.0, 1.0, 10.0, 1.0, 0.01):
        x = jitgrad.tensor(np.array([0.3, -0.2, 0.05]) * s)
        close(f(x), r(x))
    fi, ri = f.cache_info(), r.cache_info()
    assert fi.traces == ri.traces == 3 and fi.guard_failures == ri.guard_failures
    text = f.lower(jitgrad.tensor([0.3, -0.2, 0.05])).as_text("kernel")
    assert "the first guard to fail wins" in text and "copy_to_host" not in text


def test_device_arrays_in_and_out():
    f = jitgrad.jit(lambda x, y: x * y + 1.0, target="cuda")
    a = np.arange(6.0).reshape(2, 3)
    y = f(cuda.to_device(a), a)          # a Numba device array and a host array
    assert isinstance(y, DeviceArray) and y.shape == (2, 3) and y.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(y), a * a + 1)
    z = f(y, y)                          # results go back in without leaving the device
    np.testing.assert_array_equal(z.numpy(), (a * a + 1) ** 2 + 1)
    assert f.cache_info().traces == 1    # same shapes and dtypes: one trace
    np.testing.assert_array_equal(y.cpu().numpy(), a * a + 1)
    if not SIM:
        assert y.__cuda_array_interface__["shape"] == (2, 3)


def test_result_never_aliases_an_argument():
    f = jitgrad.jit(lambda x: (x, x.reshape(3, 1), x * 1), target="cuda")
    d = cuda.to_device(np.ones(3))
    ys = f(d)
    d.copy_to_device(np.zeros(3))
    for y in ys:
        np.testing.assert_array_equal(np.asarray(y).reshape(-1), np.ones(3))


def test_scalar_fwd_bwd():
    x, y = jitgrad.tensor(2.0), jitgrad.tensor(3.0)
    (v, g), (rv, rg) = both(lambda x, y: x * y + y ** 2, x, y, argnums=(0, 1))
    close([v, *g], [rv, *rg])
    assert float(g[1]) == 8.0 and g[0].shape == ()


def test_device_array_on_cpu_target_is_a_clear_error():
    f = jitgrad.jit(lambda x: x * 2)
    with pytest.raises(TypeError, match="argument 0 .* CUDA device array.*target='cpu'"):
        f(cuda.to_device(np.ones(2)))


def test_unsupported_device_dtype_is_named():
    f = jitgrad.jit(lambda x: x * 2, target="cuda")
    with pytest.raises(TypeError, match="dtype float16"):
        f(cuda.to_device(np.ones(2, np.float16)))
    out = f(cuda.to_device(np.array([3, 4], np.int32)))  # torch's integer dtypes all run
    assert np.asarray(out.copy_to_host() if hasattr(out, "copy_to_host") else out.numpy()
                      ).tolist() == [6, 8]


def test_cli_shows_cuda_kernels(capsys):
    from jitgrad.cli import main
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "while_loop.py")
    assert main(["ir", f"{path}:doubling", "--args", "f64[3]", "--stage", "kernel",
                 "--target", "cuda", "--jit"]) == 0
    out = capsys.readouterr().out
    assert "@cuda.jit" in out and "def driver(args, C, E, P):" in out


@pytest.mark.skipif(not SIM, reason="a GPU is present")
def test_no_gpu_and_no_simulator_is_a_clear_error():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = ("import jitgrad\ntry:\n    jitgrad.jit(lambda x: x, target='cuda')(jitgrad.ones(2))\n"
            "except RuntimeError as e:\n    print('ERR', e)\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert "ERR target='cuda'" in r.stdout, r.stdout + r.stderr
    assert "NUMBA_ENABLE_CUDASIM=1" in r.stdout


def test_generated_kernels_compile_with_the_gpu_compiler():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    script = os.path.join(os.path.dirname(__file__), "cuda_ptx_check.py")
    r = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    if r.stdout.startswith("skip: "):
        pytest.skip(r.stdout.strip()[len("skip: "):])  # pytest adds its own "skip" to the line
    assert r.stdout.startswith("ok ") and int(r.stdout.split()[1]) > 20


@pytest.mark.usefixtures("no_lifting")
def test_eager_fallback_takes_device_arrays():
    f = jitgrad.value_and_grad(doubling, target="cuda", retrace_limit=1)
    r = jitgrad.value_and_grad(doubling, target="reference")
    with pytest.warns(jitgrad.RetraceWarning):
        for s in (1.0, 10.0, 100.0):
            x = np.array([0.3, -0.2, 0.05]) * s
            got = f(cuda.to_device(x))
            # Compiled or eager, results stay on the device: their type does not change
            # under a training loop when the function falls back.
            assert all(isinstance(g, DeviceArray) for g in got), [type(g) for g in got]
            close(got, r(jitgrad.tensor(x)))
    assert f.cache_info().eager_fallback
    j = jitgrad.jit(doubling, target="cuda", retrace_limit=1)
    with pytest.warns(jitgrad.RetraceWarning):
        for s in (1.0, 10.0, 100.0):
            x = np.array([0.3, -0.2, 0.05]) * s
            got = j(x)
            assert isinstance(got, DeviceArray), type(got)
            np.testing.assert_allclose(np.asarray(got), doubling(jitgrad.tensor(x)).numpy())
    assert j.cache_info().eager_fallback


def test_results_survive_later_calls():
    # Intermediates reuse scratch buffers across calls; results (even reshapes of an
    # intermediate) are the caller's own.
    f = jitgrad.jit(lambda x: ((x * 2).reshape(6), (x + 1).sum(0), (x * 3).t()), target="cuda")
    first = [np.asarray(r).copy() for r in f(np.ones((2, 3)))]
    keep = f(np.ones((2, 3)))
    f(np.full((2, 3), 5.0))
    for r, want in zip(keep, first):
        np.testing.assert_array_equal(np.asarray(r), want)
    np.testing.assert_array_equal(first[0], np.full(6, 2.0))


def test_trace_without_kernels_runs_on_the_host_with_device_results():
    fn = lambda x: x.prod() + x.prod(0).sum()  # noqa: E731  (no CUDA kernel for prod yet)
    x = rand(2, 3)
    (v, g), (rv, rg) = both(fn, x)
    assert isinstance(g, DeviceArray)
    close([v, g], [rv, rg])
    assert "NumPy interpreter runs it on the host" in jitgrad.value_and_grad(
        fn, target="cuda").lower(x).as_text("kernel")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs, st.integers(0, 2**16))
def test_random_programs_match_reference(program, seed):
    rng = np.random.default_rng(seed)
    xs = [jitgrad.tensor(rng.standard_normal((3, 4))) for _ in range(2)]
    f = build(program)
    want = jitgrad.value_and_grad(f, argnums=(0, 1), target="reference")(*xs)
    assume(all(np.all(np.isfinite(host(w))) for w in (want[0], *want[1])))
    try:
        got = jitgrad.value_and_grad(f, argnums=(0, 1), target="cuda")(*xs)
    except (OverflowError, ZeroDivisionError):  # the simulator's Python arithmetic raises
        assume(not SIM)
        raise
    close([got[0], *got[1]], [want[0], *want[1]])


def test_custom_functions_run_on_the_device():
    got, want = both(_uses_functions, rand(4, 3), rand(3, seed=1), argnums=(0, 1))
    close(list(got[1]) + [got[0]], list(want[1]) + [want[0]])


def test_cumsum_runs_on_the_device():
    """cumsum has a kernel (one thread per line along the axis, in order as NumPy sums); its
    gradient too (a reversed cumulative sum)."""
    fn = lambda x: (x.cumsum(0) * x).sum() + x.cumsum(1).sin().sum()  # noqa: E731
    x = rand(3, 4)
    got, want = both(fn, x)
    close(got, want)
    f = jitgrad.value_and_grad(fn, target="cuda")
    f(x)
    text = f.lower(x).as_text("kernel")
    assert "def cumsum" in text and "no CUDA kernel" not in text


def test_convolution_and_pooling_gradients_on_the_device():
    """conv2d (padding, stride, groups), ReLU and max pooling, differentiated and compiled into
    device kernels with no host fallback, equal the interpreter."""
    rng = np.random.default_rng(0)
    x = jitgrad.tensor(rng.standard_normal((2, 2, 5, 5)))
    w = jitgrad.tensor(rng.standard_normal((4, 1, 3, 3)))

    def f(x, w):
        y = F.conv2d(x, w, padding=1, stride=1, groups=2).relu()
        return F.max_pool2d(y, 2).sum() + F.conv2d(x, w[:2, :1].repeat(1, 2, 1, 1),
                                                    stride=2).sum() * 0.5

    (v, g), (rv, rg) = both(f, x, w, argnums=(0, 1))
    close(v, rv)
    close(g, rg)
    assert jitgrad.value_and_grad(f, target="cuda", argnums=(0, 1)).cache_info().fallbacks == ()
