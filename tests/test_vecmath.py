"""The vectorizable math of the Numba backend against NumPy: dense grids and edge values."""

import numba
import numpy as np
import pytest

import jitgrad as jg
from jitgrad.backends._vecmath import vcos, vexp, vsin, vtanh

FUNCS = {"exp": (vexp, np.exp), "tanh": (vtanh, np.tanh), "sin": (vsin, np.sin),
         "cos": (vcos, np.cos)}
KERNELS = {}


def apply(fn, a):
    """``fn`` (a vector-math function or a FUNCS name) on every element of ``a``, in a loop."""
    fn = FUNCS[fn][0] if isinstance(fn, str) else fn
    k = KERNELS.get(fn)
    if k is None:
        @numba.njit(error_model="numpy")
        def k(x, out):
            for i in range(x.size):
                out[i] = fn(x[i])
        KERNELS[fn] = k
    out = np.empty_like(a)
    k(a, out)
    return out


def max_ulp(got, ref):
    ok = np.isfinite(ref) & (ref != 0)
    return float(np.max(np.abs(got[ok] - ref[ok]) / np.spacing(np.abs(ref[ok]))))


GRIDS = {"wide": np.linspace(-40.0, 40.0, 400_001), "small": np.linspace(-1e-3, 1e-3, 20_001),
         "tiny": np.geomspace(1e-300, 1e-8, 2_001)}
LIMITS = {"exp": 1, "tanh": 3, "sin": 2, "cos": 2}


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_dense_grids_within_a_few_ulp(name):
    ref_fn = FUNCS[name][1]
    for grid in GRIDS.values():
        for g in (grid, -grid):
            with np.errstate(all="ignore"):
                assert max_ulp(apply(name, g), ref_fn(g)) <= LIMITS[name]
    if name in ("sin", "cos"):
        g = np.linspace(-5e5, 5e5, 400_001)
        # Near the zeros the result is tiny: compare on the scale of the function's range.
        assert np.max(np.abs(apply(name, g) - ref_fn(g))) <= 4e-16
    if name == "exp":
        g = np.linspace(-745.2, 709.78, 400_001)
        with np.errstate(all="ignore"):
            ref = np.exp(g)
        got = apply(name, g)
        normal = ref > np.finfo(np.float64).tiny
        assert max_ulp(got[normal], ref[normal]) <= 1
        assert np.max(np.abs(got[~normal] - ref[~normal])) <= 5e-324  # subnormals: one ulp


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_edge_values(name):
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-310, 709.7, 710.0,
                      -745.0, -746.0, 0.625, -0.625, 22.0, np.pi / 2, -np.pi, 1e300])
    if name in ("sin", "cos"):
        edges = edges[np.abs(edges) < 2 ** 19]  # beyond, kernels use libm (tested below)
    with np.errstate(all="ignore"):
        ref = FUNCS[name][1](edges)
        got = apply(name, edges)
        same = (got == ref) | (np.isnan(got) & np.isnan(ref)) | (
            np.abs(got - ref) <= 4 * np.spacing(np.abs(ref)))
    assert same.all(), list(zip(edges[~same], got[~same], ref[~same]))
    assert (np.signbit(got[ref == 0]) == np.signbit(ref[ref == 0])).all()  # -0.0 stays -0.0


def test_compiled_sin_cos_of_huge_arguments_fall_back_to_libm():
    # Large enough for the vectorized loop (small loops keep libm).
    x = np.tile(np.array([1e20, 3.0, -7e5, 2.0 ** 19, 1e300, -0.0]), 1000)
    f = jg.jit(lambda t: (jg.sin(t), jg.cos(t), jg.sin(t).sum()), target="numba-cpu")
    s, c, total = f(jg.tensor(x))
    np.testing.assert_array_equal(s.numpy(), np.sin(x))
    np.testing.assert_array_equal(c.numpy(), np.cos(x))
    assert total.item() == pytest.approx(np.sin(x).sum(), rel=1e-12)
    exe = f.lower(jg.tensor(x))._node.exe
    # sin and cos of one value share a reduction; the libm twin ran for the huge arguments.
    assert "vsincos(" in exe.kernels[0] and exe._libm is not None
    assert "libm_sincos(" in exe._libm.kernels[0]


def test_sincos_is_sin_and_cos():
    import numba

    from jitgrad.backends._vecmath import vsincos

    @numba.njit
    def both(x, s, c):
        for i in range(x.size):
            s[i], c[i] = vsincos(x[i])

    x = np.concatenate([np.linspace(-40, 40, 20_001), [0.0, -0.0, np.inf, -np.inf, np.nan,
                                                       5e-324, -1e-300, 1e5 + 0.5]])
    s, c = np.empty_like(x), np.empty_like(x)
    both(x, s, c)
    for got, fn in ((s, vsin), (c, vcos)):
        want = np.array([fn(v) for v in x])
        np.testing.assert_array_equal(got, want)
    assert np.signbit(s[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()


def test_float32_loops_stay_within_float32_rounding():
    # sin and cos run in float64 and round once (<= 1 ulp); tanh and exp run in float32
    # arithmetic (_vecmath32, <= 2 ulp).
    x = np.linspace(-20, 20, 100_001).astype(np.float32)
    f = jg.jit(lambda t: (jg.sin(t), jg.cos(t), jg.tanh(t), jg.exp(t)), target="numba-cpu")
    text = f.lower(jg.tensor(x)).as_text("kernel")
    assert "vtanh32(" in text and "vexp32(" in text
    for got, ref, ulps in zip(f(jg.tensor(x)), (np.sin, np.cos, np.tanh, np.exp), (1, 1, 2, 2)):
        assert got.dtype is jg.float32
        r = ref(x.astype(np.float64)).astype(np.float32)
        assert np.max(np.abs(got.numpy() - r) / np.spacing(np.abs(r) + 1e-30)) <= ulps


def _ulp32(got, ref64):
    ref = ref64.astype(np.float32)
    ok = np.isfinite(ref) & (ref != 0) & (np.abs(ref) >= np.finfo(np.float32).tiny)
    return float(np.max(np.abs(got[ok].astype(np.float64) - ref64[ok])
                        / np.spacing(np.abs(ref[ok])).astype(np.float64)))


def test_float32_tanh_and_exp_on_dense_grids_and_edges():
    from jitgrad.backends._vecmath32 import vexp32, vtanh32
    with np.errstate(all="ignore"):
        # Dense around where the reduction's k steps (2a = ln2/2, 3 ln2/2) and near 0.
        for lo, hi in ((-12, 12), (-1e-3, 1e-3), (0.15, 0.2), (0.5, 0.55)):
            x = np.linspace(lo, hi, 1_000_001).astype(np.float32)
            assert _ulp32(apply(vtanh32, x), np.tanh(x.astype(np.float64))) <= 2
        x = np.linspace(-110, 89, 2_000_001).astype(np.float32)
        got, ref = apply(vexp32, x), np.exp(x.astype(np.float64))
        assert _ulp32(got, ref) <= 2
        sub = (ref < np.finfo(np.float32).tiny)
        assert np.max(np.abs(got[sub] - ref[sub].astype(np.float32))) <= 1.5e-45  # one step
        edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-38, 0.55, 10.0,
                          -20.0, 88.72, 88.73, -87.5, -103.9, -104.5, 3e38], np.float32)
        for fn, ref_fn in ((vtanh32, np.tanh), (vexp32, np.exp)):
            got = apply(fn, edges)
            ref = ref_fn(edges.astype(np.float64)).astype(np.float32)
            same = (got == ref) | (np.isnan(got) & np.isnan(ref)) | (
                np.abs(got - ref) <= 2 * np.spacing(np.abs(ref)))
            assert same.all(), list(zip(edges[~same], got[~same], ref[~same]))
            assert got.dtype == np.float32
        t = apply(vtanh32, edges)
        assert np.signbit(t[edges == 0]).tolist() == [False, True]  # tanh(-0.0) is -0.0
