"""The Numba CPU backend against the reference interpreter. Compiles are few: the op table is
checked as a handful of combined traces (one kernel each; Numba's compile time grows faster
than the kernel), in float64 and float32."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jitgrad as jg
from jitgrad.backends import lowering
from jitgrad.backends.numba_cpu import NumbaExecutable
from jitgrad.ops import PRIMITIVES

from .ops.table import ROWS
from .test_compiled import build
from .ops.test_table import make_inputs

# prod's VJP needs prod_others, which this backend leaves to the interpreter (tested below).
NUMBA_ROWS = [r for r in ROWS if "prod" not in r.covers]




def _host_only(row) -> bool:
    cover = lowering.coverage("numba-cpu")
    return all(cover[PRIMITIVES[n]].startswith("host") for n in row.covers)


# float32 skips the rows whose every primitive is a host call (LAPACK, SciPy's special
# functions): the kernel hands those the arrays as they are, in either dtype, and their float32
# results are checked eagerly against torch (tests/test_opinfo.py); their gradients' long
# kernels were most of this file's time.
NUMBA_ROWS32 = [r for r in NUMBA_ROWS if not _host_only(r)]


def spans(rows, plain: int = 10, host: int = 2) -> list:
    """The rows cut into combined traces of ``plain`` rows, or fewer where ``host`` of them are
    host calls (LAPACK, SciPy): their gradients' kernels are long, and Numba's compile time
    grows faster than a kernel's length (the ten float64 rows of linear algebra took 69 s as
    one trace and 31 s as five)."""
    out, start, hosts = [], 0, 0
    for i, row in enumerate(rows):
        hosts += _host_only(row)
        if i + 1 - start == plain or hosts == host or i + 1 == len(rows):
            out.append((start, i + 1))
            start, hosts = i + 1, 0
    return out


CHUNKS = spans(NUMBA_ROWS)
CHUNKS32 = spans(NUMBA_ROWS32)


def combined(dtype, start=0, stop=None):
    """Rows start:stop in one function of all their inputs: one trace, one kernel."""
    arrays, spans, weights = [], [], []
    table = NUMBA_ROWS if dtype == np.float64 else NUMBA_ROWS32
    rows = [r for r in table[start:stop] if dtype == np.float64 or "astype" not in r.covers]
    for k, row in enumerate(rows):
        xs = make_inputs(row, row.shapes[0], seed=k)
        out_shape = tuple(row.fn(*[jg.tensor(a) for a in xs]).shape)
        spans.append((len(arrays), len(xs)))
        arrays.extend(a.astype(dtype) for a in xs)
        weights.append(jg.tensor(np.random.default_rng(k).standard_normal(out_shape).astype(dtype)))

    def f(*ts):
        total = 0.0
        for row, (s, n), w in zip(rows, spans, weights):
            total = total + (row.fn(*ts[s:s + n]) * w).sum()
        return total
    return f, arrays


def _both(f, arrays):
    argnums = tuple(range(len(arrays)))
    num = jg.value_and_grad(f, argnums=argnums, target="numba-cpu")
    ref = jg.value_and_grad(f, argnums=argnums, target="reference")
    ts = [jg.tensor(a) for a in arrays]
    assert isinstance(num.lower(*ts)._node.exe, NumbaExecutable), num.lower(*ts).as_text("kernel")
    return num(*ts), ref(*ts)


@pytest.mark.parametrize(("start", "stop"), CHUNKS)
def test_op_table_float64_matches_reference(start, stop):
    f, arrays = combined(np.float64, start, stop)
    (v, gs), (vr, grs) = _both(f, arrays)
    np.testing.assert_allclose(v.item(), vr.item(), rtol=1e-12)
    for g, r in zip(gs, grs):
        assert g.dtype is r.dtype
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("start", "stop"), CHUNKS32)
def test_op_table_float32_stays_float32_within_rounding(start, stop):
    f, arrays = combined(np.float32, start, stop)
    (v, gs), (vr, grs) = _both(f, arrays)
    assert v.dtype is jg.float32
    np.testing.assert_allclose(v.item(), vr.item(), rtol=2e-5)
    for g, r in zip(gs, grs):
        assert g.dtype is jg.float32
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=2e-4, atol=2e-5)


@pytest.mark.usefixtures("no_lifting")
def test_guards_compiled_in_behave_like_the_reference():
    def doubling(x):
        y = x * 2
        while y.norm() < 1000:
            y = y * 2
        return y

    v = jg.tensor([0.1, 1.0, 0.0001], dtype=jg.float64)
    num = jg.grad(lambda x: (doubling(x) * v).sum(), target="numba-cpu")
    ref = jg.grad(lambda x: (doubling(x) * v).sum(), target="reference")
    rng = np.random.default_rng(0)
    for _ in range(12):
        x = jg.tensor(rng.standard_normal(3) * 10.0 ** rng.uniform(-3, 1))
        np.testing.assert_allclose(num(x).numpy(), ref(x).numpy(), rtol=1e-12)
    assert num.cache_info().traces == ref.cache_info().traces
    assert "return 0, " in num.lower(jg.tensor([1.0, 1.0, 1.0], dtype=jg.float64)).kernels[0]


def test_mlp_cross_entropy_gather_and_scatter():
    jg.manual_seed(0)
    model = jg.nn.Sequential(jg.nn.Linear(6, 8), jg.nn.Tanh(), jg.nn.Linear(8, 3)).double()
    x = jg.randn(5, 6, dtype=jg.float64)
    t = jg.tensor([0, 2, 1, 2, 0])
    loss = lambda m, x, t: jg.nn.functional.cross_entropy(m(x), t)  # noqa: E731
    num = jg.value_and_grad(loss, target="numba-cpu")
    ref = jg.value_and_grad(loss, target="reference")
    assert isinstance(num.lower(model, x, t)._node.exe, NumbaExecutable)
    (v, g), (vr, gr) = num(model, x, t), ref(model, x, t)
    np.testing.assert_allclose(v.item(), vr.item(), rtol=1e-12)
    for k in g:
        np.testing.assert_allclose(g[k].numpy(), gr[k].numpy(), rtol=1e-12, atol=1e-15)


def test_an_equation_without_a_lowering_runs_on_the_host_alone():
    """prod's gradient over axes that are not adjacent (prod_others), integer matmul and mixed
    advanced indexing have no Numba lowering: each runs its NumPy body in an object-mode block,
    the rest of the trace compiles, and cache_info() names each."""
    f = jg.grad(lambda x: x.prod(dim=(0, 2)).sum() + x.sin().sum(), target="numba-cpu")
    xv = np.arange(12.0).reshape(2, 3, 2) - 3.0
    x = jg.tensor(xv, dtype=jg.float64)
    others = np.stack([[np.prod(np.delete(xv[:, j, :].reshape(-1), k)) for k in range(4)]
                       for j in range(3)])  # (3, 4): element k of column j's others
    want = others.reshape(3, 2, 2).transpose(1, 0, 2) + np.cos(xv)
    np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-12)
    lw = f.lower(x)
    assert isinstance(lw._node.exe, NumbaExecutable) and "objmode" in lw.as_text("kernel")
    assert any("prod_others" in s and "runs on the host" for s in f.cache_info().fallbacks)

    def g(a, n, w):
        return ((a @ n).float().sum() * w).sum() + (w[jg.tensor([0, 1]), 1:] ** 2).sum()
    n = jg.tensor([[1, 2], [3, 4]])
    w = jg.tensor(np.arange(6.0).reshape(2, 3), dtype=jg.float32)
    num = jg.value_and_grad(g, argnums=2, target="numba-cpu")
    ref = jg.value_and_grad(g, argnums=2, target="reference")
    (v, d), (vr, dr) = num(n, n, w), ref(n, n, w)
    assert isinstance(num.lower(n, n, w)._node.exe, NumbaExecutable)
    assert v.item() == vr.item() and d.dtype is jg.float32
    np.testing.assert_array_equal(d.numpy(), dr.numpy())
    whys = " ".join(num.cache_info().fallbacks)
    assert "integer matmul" in whys and "mixed advanced indexing" in whys


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import jitgrad as jg
    f = jg.grad(lambda x: (jg.sin(x) * jg.exp(-x * x) + jg.tanh(x) * x).sum())
    x = jg.tensor(np.linspace(-2.0, 2.0, 7))
    g = f(x)
    ref = np.cos(x.numpy()) * np.exp(-x.numpy() ** 2) - 2 * x.numpy() * np.sin(x.numpy()) * \\
        np.exp(-x.numpy() ** 2) + np.tanh(x.numpy()) + x.numpy() * (1 - np.tanh(x.numpy()) ** 2)
    assert np.allclose(g.numpy(), ref, rtol=1e-12), (g, ref)
    exe = f.lower(x)._node.exe
    print("hits", sum(exe.kernel.stats.cache_hits.values()))
""")


def _run(cache, extra_env=None):
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(cache), **(extra_env or {}))
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)


def test_disk_cache_hits_across_processes_and_survives_corruption(tmp_path):
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    second = _run(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "hits 0" in first.stdout and "hits 1" in second.stdout
    # Corrupt every entry: the generated source and Numba's own index and data files.
    for root, _, files in os.walk(tmp_path):
        for name in files:
            with open(os.path.join(root, name), "r+b") as fh:
                fh.truncate(max(os.path.getsize(os.path.join(root, name)) // 2, 1))
    third = _run(tmp_path)
    assert third.returncode == 0, third.stderr



def test_cache_key_covers_the_helpers_kernels_inline(monkeypatch):
    # Numba's cache checks a kernel's own file only; the helpers it inlines live elsewhere.
    from jitgrad.backends import _numba_helpers, _vecmath, _vecmath32, disk_cache
    for mod in (_numba_helpers, _vecmath, _vecmath32):
        assert os.path.basename(mod.__file__) in disk_cache._HELPERS
    k = disk_cache.key("def kernel(): pass")
    monkeypatch.setattr(disk_cache, "_helpers_digest", "an edited helper")
    assert disk_cache.key("def kernel(): pass") != k

def test_two_processes_share_the_cache_folder(tmp_path):
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err


@pytest.mark.parametrize("n", [3, 200_000])
def test_large_loops_run_in_parallel_and_match(n):
    x = jg.tensor(np.linspace(-3, 3, n))
    f = jg.value_and_grad(lambda x: (jg.sin(x) * jg.exp(-x * x) + jg.tanh(x) * x).sum())
    v, g = f(x)
    vr, gr = jg.value_and_grad(f.__wrapped__, target="reference")(x)
    # libm's sin/exp and NumPy's SIMD ones may differ by an ulp; where the gradient is a
    # cancellation of O(1) terms that ulp is all that is left, hence the small atol.
    np.testing.assert_allclose(g.numpy(), gr.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(v.item(), vr.item(), rtol=1e-10)
    assert ("prange" in f.lower(x).kernels[0]) == (n > 100_000)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 20)), min_size=3, max_size=10),
       st.integers(0, 2**16), st.sampled_from([np.float64, np.float32]))
def test_random_programs_numba_equals_reference(program, seed, dt):
    rng = np.random.default_rng(seed)
    ts = [jg.tensor(rng.standard_normal((3, 4)).astype(dt)) for _ in range(2)]
    f = build(program)
    num = jg.value_and_grad(f, argnums=(0, 1), target="numba-cpu")
    ref = jg.value_and_grad(f, argnums=(0, 1), target="reference")
    assert isinstance(num.lower(*ts)._node.exe, NumbaExecutable)
    tol = 1e-12 if dt == np.float64 else 1e-4
    (v, gs), (vr, grs) = num(*ts), ref(*ts)
    for a, b in zip([v, *gs], [vr, *grs]):
        assert a.dtype is b.dtype
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol, equal_nan=True)


EDGES = {dt: np.array([np.inf, -np.inf, np.nan, np.finfo(dt).max, -np.finfo(dt).max, 1e19, -1e19,
                       np.finfo(dt).tiny, -np.finfo(dt).smallest_subnormal, 1e-30, -2.5, 3.7, 1.0,
                       -1.0, 0.5, 30.0, -30.0, 100.0, -800.0, -0.0, 0.0], dt)
         for dt in (np.float64, np.float32)}


def _every_op(t):
    a = t.abs()
    return (t.floor(), t // 2.0, jg.sign(t), a, t.clamp(-1.0, 1.0), jg.relu(t), jg.exp(t),
            jg.log(a), jg.sin(t), jg.cos(t), jg.tanh(t), jg.sigmoid(t), a.sqrt(), -t, t ** 2,
            t ** 3, a ** 0.5, 1.0 / t, jg.maximum(t, 0.0), jg.minimum(t, 0.0), t.isnan(), t.isinf(),
            t % 3.0, t % -0.75)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("reps", [1, 400])  # 400 copies: loops long enough for vector math
def test_non_finite_huge_and_signed_zero_values_match_the_reference(dt, reps):
    # floor once went through an int64 conversion: inf, NaN and |x| >= 2**63 came out as -2**63.
    x = jg.tensor(np.tile(EDGES[dt], reps))
    num = jg.jit(_every_op, target="numba-cpu")
    rtol = 1e-12 if dt == np.float64 else 4e-7  # float32: vector exp/tanh within 2 ulp
    with np.errstate(all="ignore"):  # tracing evaluates with NumPy: inf - inf and such warn
        assert isinstance(num.lower(x)._node.exe, NumbaExecutable)
        for k, (got, want) in enumerate(zip(num(x), jg.jit(_every_op, target="reference")(x))):
            assert got.dtype is want.dtype, k
            g, w = got.numpy(), want.numpy()
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=str(k))
            np.testing.assert_allclose(g, w, rtol=rtol, atol=0, err_msg=str(k))
            zero = w == 0
            assert (np.signbit(g[zero]) == np.signbit(w[zero])).all(), k


def test_integer_edge_values_match_the_reference():
    # Numba's own // gives 0 for min // -1, where NumPy (and torch) wrap around to min; and a
    # detour through floating point rounds above 2**24 or 2**53.
    lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    a = np.array([lo, lo, hi, hi, 2**24 + 1, 2**53 + 1, -(2**53) - 3, -7, 7, -7, 7, 0, 5, lo],
                 np.int64)
    b = np.array([-1, 1, -1, 2, 1, 1, 2, 2, -2, -2, 2, -3, 3, -lo - 1], np.int64)
    x, y = jg.from_numpy(np.tile(a, 40)), jg.from_numpy(np.tile(b, 40))

    def ops(x, y):
        return x // y, x % y, x // 3, -x, x * y, abs(x)

    num = jg.jit(ops, target="numba-cpu")
    assert isinstance(num.lower(x, y)._node.exe, NumbaExecutable)
    with np.errstate(all="ignore"):
        want = [ops(*(v.numpy() for v in (x, y)))]  # NumPy itself, on the same arrays
        for k, (got, ref) in enumerate(zip(num(x, y), jg.jit(ops, target="reference")(x, y))):
            assert got.dtype is ref.dtype, k
            np.testing.assert_array_equal(got.numpy(), ref.numpy(), err_msg=str(k))
            np.testing.assert_array_equal(got.numpy(), np.asarray(want[0][k]), err_msg=str(k))


@pytest.mark.parametrize("target", [None, "reference", "numba-cpu"])
def test_integer_division_by_zero_raises_as_torch(target):
    def f(x, y):
        return x // y + x % y
    run = f if target is None else jg.jit(f, target=target)
    x = jg.tensor([7, -7, 5])
    np.testing.assert_array_equal(run(x, jg.tensor([2, 2, -3])).numpy(), [4, -3, -3])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        run(x, jg.tensor([2, 0, 1]))  # compiled: the guard fails, and the re-trace raises
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        run(x, 0)
    np.testing.assert_array_equal(run(x, jg.tensor([2, 2, -3])).numpy(), [4, -3, -3])


def test_long_kernels_compile_in_segments():
    """Past a budget of guards and reductions a kernel is cut into segment functions (Numba's
    compile time grows with the square of one function's); guards failing in any segment
    re-trace, and every path matches the interpreter."""
    def f(x, t):
        y = x
        for _ in range(24):
            if (y * t).sum() > 0:  # a guard and a reduction per step
                y = y * 1.01 + 0.001
            else:
                y = y.sin()
        return (y * x).sum() + y.max()

    x = jg.tensor(np.linspace(0.1, 1, 16))
    c = jg.grad(f, target="numba-cpu", retrace_limit=100)
    r = jg.grad(f, target="reference", retrace_limit=100)
    src = c.lower(x, jg.tensor(1.0, dtype=jg.float64)).as_text("kernel")
    assert src.count("def segment") >= 2
    for t in (1.0, -1.0, 0.3, 1.0):
        tt = jg.tensor(t, dtype=jg.float64)
        np.testing.assert_allclose(c(x, tt).numpy(), r(x, tt).numpy(), rtol=1e-12, atol=0)
    assert c.cache_info().traces == 2


def test_long_kernels_without_guards_compile_in_segments(monkeypatch):
    """A long trace is cut by lines too (one function's compile time grows faster than its
    length), and each segment takes only the values it reads: a gradient keeps the whole
    forward pass live, and passing it through every cut made the compile quadratic again.
    Values written in place, read across cuts and returned all match the interpreter."""
    import re

    from jitgrad.backends import numba_cpu
    monkeypatch.setattr(numba_cpu, "SEGMENT_LINES", 30)
    monkeypatch.setattr(numba_cpu, "PIECES_LINES", 10 ** 6)  # (pieces: the test below)

    def f(x):
        y = x
        buf = x.clone()
        for i in range(8):
            y = (y * 1.01).sin() - y.mean() * 0.1
            buf[i % 4] = y[i % 4] * 2.0  # a write into a buffer made in an earlier segment
        return (y * buf).sum() + buf.max()

    x = jg.tensor(np.linspace(0.1, 1, 16))
    c = jg.value_and_grad(f, target="numba-cpu")
    r = jg.value_and_grad(f, target="reference")
    src = c.lower(x).as_text("kernel")
    heads = re.findall(r"^def segment\d+\((.*)\):", src, re.M)
    assert len(heads) >= 4
    live = len(re.findall(r"^    st, seen, \((.*)\) =", src, re.M))
    assert live >= 3 and max(len(h.split(",")) for h in heads) <= 6
    (v, g), (vr, gr) = c(x), r(x)
    np.testing.assert_allclose(v.item(), vr.item(), rtol=1e-12)
    np.testing.assert_allclose(g.numpy(), gr.numpy(), rtol=1e-12, atol=1e-15)
    assert c.cache_info().fallbacks == ()


def test_large_arrays_ask_for_huge_pages_and_stay_right():
    """A kernel asks for huge pages for the arrays it makes of 4 MiB or more (fresh 4 KiB pages
    made writing 100 MB of per-example gradients 4x slower), and only for those; the values
    are the interpreter's."""
    def f(a, b):  # a 1100 x 1024 float32 outer product: 4.5 MB, and small arrays beside it
        return (a.reshape(-1, 1) * b.reshape(1, -1)).sin() * 2.0, (a * 3.0).sum()

    a = jg.tensor(np.linspace(-1, 1, 1100, dtype=np.float32))
    b = jg.tensor(np.linspace(0, 2, 1024, dtype=np.float32))
    c, r = jg.jit(f, target="numba-cpu"), jg.jit(f, target="reference")
    src = c.lower(a, b).as_text("kernel")
    import re
    assert len(re.findall(r"^\s+hugepages\(\w+\)$", src, re.M)) == 1
    (big, s), (rbig, rs) = c(a, b), r(a, b)
    assert big.dtype == jg.float32 and big.shape == (1100, 1024)
    np.testing.assert_allclose(big.numpy(), rbig.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s.item(), rs.item(), rtol=1e-6)
    assert c.cache_info().fallbacks == ()


def _compiles_like_the_reference(prog, seed, exact=False):
    """``prog(x, y)``'s value and gradients compiled by Numba, with no interpreter or host
    fallback, equal the reference interpreter's (to 1e-12, or ``exact``ly)."""
    x = jg.tensor(np.random.default_rng(seed).standard_normal((3, 4)))
    y = jg.tensor(np.arange(4.0))
    num = jg.value_and_grad(prog, argnums=(0, 1), target="numba-cpu")
    ref = jg.value_and_grad(prog, argnums=(0, 1), target="reference")
    (v, gs), (vr, grs) = num(x, y), ref(x, y)
    assert num.cache_info().fallbacks == ()
    tol = {"rtol": 0, "atol": 0} if exact else {"rtol": 1e-12, "atol": 1e-15}
    np.testing.assert_allclose(v.item(), vr.item(), **tol)
    for g, gr in zip(gs, grs):
        np.testing.assert_allclose(g.numpy(), gr.numpy(), **tol)


def test_single_element_updates_and_gradients_compile():
    """y[0] = y[-1] * 2 and x[1, 2] read single elements: their gradients add into one element
    (found by the fuzzer: Numba's x[i] is a scalar, not a view, and typing failed)."""
    def prog(x, y):
        v = y.clone()
        v[0] = v[-1] * 2.0
        return v.sum() + (x * y).sum() * 0.125 + x[1, 2] * 3 + x[0][-1]
    _compiles_like_the_reference(prog, 0, exact=True)


def test_reshapes_to_0d_are_scalars():
    """logsumexp of a vector ends in a reshape to (): Numba's 0-d arrays do not go where its
    scalars do (math.tanh of one failed typing, sending the trace to the interpreter)."""
    def prog(x, y):
        return jg.logsumexp(y, -1).tanh() + (x * y).sum() + x.reshape(1, 12)[:, 3:4].reshape(())
    _compiles_like_the_reference(prog, 1)


def test_long_kernels_compile_as_pieces_shared_by_content(monkeypatch):
    """A long kernel is cut before its matmuls into pieces whose canonical text names them:
    identical layers are one piece, compiled once (numba_pieces), called by a Python driver;
    values and gradients equal the interpreter's, guards included."""
    from jitgrad.backends import numba_cpu, numba_pieces
    monkeypatch.setattr(numba_cpu, "PIECES_LINES", 20)
    rng = np.random.default_rng(0)
    ws = [jg.tensor(rng.standard_normal((6, 6)) * 0.5) for _ in range(4)]

    def f(x, ws):
        h = x
        for w in ws:  # four identical layers
            h = (h @ w).tanh() * 1.5 + h
        if h.sum() > 0:  # a guard between pieces
            h = h * 2.0
        return (h * h).mean()

    x = jg.tensor(rng.standard_normal((3, 5, 6)))
    c = jg.value_and_grad(f, argnums=(0, 1), target="numba-cpu")
    r = jg.value_and_grad(f, argnums=(0, 1), target="reference")
    src = c.lower(x, ws).as_text("kernel")
    assert isinstance(src, str) and "# the driver (plain Python)" in src
    exe = c._rt.cache[next(iter(c._rt.cache))].exe
    pieces = exe.source
    assert isinstance(pieces, numba_pieces.Pieces)
    calls = pieces.driver.count("= u_") + pieces.driver.count("return u_")
    assert len(pieces.units) < calls  # the repeated layers share their pieces
    for sign in (1.0, -1.0):
        (v, (gx, gw)), (vr, (gxr, gwr)) = c(x * sign, ws), r(x * sign, ws)
        np.testing.assert_allclose(v.item(), vr.item(), rtol=1e-12)
        np.testing.assert_allclose(gx.numpy(), gxr.numpy(), rtol=1e-12, atol=1e-14)
        for a, b in zip(gw, gwr):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)


def test_canonical_pieces_rename_locals_not_attributes_keywords_or_globals():
    from jitgrad.backends.numba_pieces import canonical
    head = ["import numpy as np", "from jitgrad.backends._numba_helpers import bmm"]
    a, _ = canonical("def unit(v3, a7):\n    v9 = np.concatenate((v3, a7), axis=1)\n"
                     "    return bmm(v9.reshape(2, 2, 2), v3, v9)\n", head)
    b, _ = canonical("def unit(v30, a1):\n    v2 = np.concatenate((v30, a1), axis=1)\n"
                     "    return bmm(v2.reshape(2, 2, 2), v30, v2)\n", head)
    assert a == b and "axis" in a and ".reshape" in a.replace(" ", "") and "bmm" in a
    assert "v3" not in a and "np" in a


def test_bundled_openblas_runs_the_configured_threads():
    """jitgrad gives NumPy's and SciPy's OpenBLAS config.blas_threads threads at import (by
    default a thread per core, one while a build process of its own runs: a spinning second
    thread beside a busy core made small matmuls 10-80x slower)."""
    import ctypes
    import glob
    import os

    from jitgrad import _blas
    site = os.path.dirname(os.path.dirname(np.__file__))
    libs = glob.glob(os.path.join(site, "numpy.libs", "libscipy_openblas64_*"))
    if not libs:
        pytest.skip("NumPy is not linked to the bundled OpenBLAS")
    get = ctypes.CDLL(libs[0]).scipy_openblas_get_num_threads64_
    n = jg.config.blas_threads
    if n is None:
        pytest.skip("JITGRAD_BLAS_THREADS=auto: OpenBLAS's own choice")
    if n == _blas.ADAPTIVE:
        idle = _blas._state["idle"]
        try:
            _blas._state["idle"] = True  # the machine idle apart from this process: every core
            _blas.apply(n)
            assert get() == _blas.cores()
            _blas.building(+1)  # a build process of this one runs: one thread
            assert get() == 1
            _blas.building(-1)
            assert get() == _blas.cores()
            _blas._state["idle"] = False  # other processes busy: one thread
            _blas.apply(n)
            assert get() == 1
        finally:
            _blas._state["idle"] = idle
            _blas.apply(n)
        return
    assert get() == n
    try:
        _blas.set_threads(n + 1)
        assert get() == n + 1
    finally:
        _blas.set_threads(n)
    assert get() == n
