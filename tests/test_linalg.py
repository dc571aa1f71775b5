"""jitgrad.linalg against torch.linalg: values and gradients (float64 tight, float32 loose),
batches, errors, the top-level and method forms, and one compiled gradient."""

import math

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)


def _sq(*batch, n=4):
    return RNG.normal(size=batch + (n, n))


def _spd(*batch, n=4):
    a = _sq(*batch, n=n)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _rect(*shape):
    return RNG.normal(size=shape)


def _pair(arr, dtype):
    j = jg.tensor(arr, dtype=jg.float64 if dtype == "f64" else jg.float32, requires_grad=True)
    t = torch.tensor(arr, dtype=torch.float64 if dtype == "f64" else torch.float32,
                     requires_grad=True)
    return j, t


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _check(fj, ft, arrays, dtype="f64"):
    """Values of every output, and the gradient of a random weighting of them, as torch's."""
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == "f64" else dict(rtol=2e-3, atol=2e-4)
    pairs = [_pair(a, dtype) for a in arrays]
    oj = _outputs(fj(*[p[0] for p in pairs]))
    ot = _outputs(ft(*[p[1] for p in pairs]))
    assert len(oj) == len(ot)
    lj, lt = 0, 0
    for a, b in zip(oj, ot):
        assert tuple(a.shape) == tuple(b.shape)
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)
        if b.dtype.is_floating_point and b.requires_grad:
            w = RNG.normal(size=tuple(b.shape))
            lj = lj + (a * jg.tensor(w, dtype=a.dtype)).sum()
            lt = lt + (b * torch.tensor(w, dtype=b.dtype)).sum()
    lj.backward()
    lt.backward()
    for (j, t) in pairs:
        np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), **tol)


L, TL = jg.linalg, torch.linalg

# name -> (jitgrad fn, torch fn, input makers); results whose sign LAPACK picks freely
# (eigenvectors, singular vectors) enter through sign-free expressions.
CASES = {
    "inv": (L.inv, TL.inv, [lambda: _sq(2)]),
    "solve": (L.solve, TL.solve, [lambda: _sq(2), lambda: _rect(2, 4, 3)]),
    "solve_vector": (L.solve, TL.solve, [lambda: _sq(2), lambda: _rect(2, 4)]),
    "solve_broadcast": (L.solve, TL.solve, [lambda: _sq(3, 1), lambda: _rect(2, 4, 2)]),
    "solve_right": (lambda a, b: L.solve(a, b, left=False),
                    lambda a, b: TL.solve(a, b, left=False), [lambda: _sq(2), lambda: _rect(2, 3, 4)]),
    "solve_triangular": (lambda a, b: L.solve_triangular(a, b, upper=True),
                         lambda a, b: TL.solve_triangular(a, b, upper=True),
                         [lambda: _sq(2) + 4 * np.eye(4), lambda: _rect(2, 4, 3)]),
    "solve_triangular_right_unit": (
        lambda a, b: L.solve_triangular(a, b, upper=False, left=False, unitriangular=True),
        lambda a, b: TL.solve_triangular(a, b, upper=False, left=False, unitriangular=True),
        [lambda: _sq(), lambda: _rect(3, 4)]),
    "det": (L.det, TL.det, [lambda: _sq(2)]),
    "slogdet": (lambda a: L.slogdet(a), lambda a: TL.slogdet(a), [lambda: _sq(3)]),
    "logdet": (jg.logdet, torch.logdet, [_spd]),
    "cholesky": (L.cholesky, TL.cholesky, [lambda: _spd(2)]),
    "cholesky_upper": (lambda a: L.cholesky(a, upper=True),
                       lambda a: TL.cholesky(a, upper=True), [_spd]),
    "eigh": (lambda a: (L.eigh(a)[0], L.eigh(a)[1] ** 2),
             lambda a: (TL.eigh(a)[0], TL.eigh(a)[1] ** 2), [lambda: _spd(2)]),
    "eigh_upper": (lambda a: L.eigvalsh(a, UPLO="U"), lambda a: TL.eigvalsh(a, UPLO="U"),
                   [_sq]),
    "svd_tall": (lambda a: [(p ** 2 if i != 1 else p) for i, p in enumerate(L.svd(a, False))],
                 lambda a: [(p ** 2 if i != 1 else p) for i, p in enumerate(TL.svd(a, False))],
                 [lambda: _rect(2, 5, 3)]),
    "svd_wide": (lambda a: [(p ** 2 if i != 1 else p) for i, p in enumerate(L.svd(a, False))],
                 lambda a: [(p ** 2 if i != 1 else p) for i, p in enumerate(TL.svd(a, False))],
                 [lambda: _rect(3, 5)]),
    "svd_full_product": (lambda a: (lambda u, s, vh: u[..., :3] * s @ vh[..., :3, :])(*L.svd(a)),
                         lambda a: (lambda u, s, vh: u[..., :3] * s @ vh[..., :3, :])(*TL.svd(a)),
                         [lambda: _rect(5, 3)]),
    "svdvals": (L.svdvals, TL.svdvals, [lambda: _rect(2, 3, 4)]),
    "qr_tall": (lambda a: tuple(L.qr(a)), lambda a: tuple(TL.qr(a)), [lambda: _rect(2, 5, 3)]),
    "qr_wide": (lambda a: tuple(L.qr(a)), lambda a: tuple(TL.qr(a)), [lambda: _rect(3, 5)]),
    "qr_complete": (lambda a: tuple(L.qr(a, "complete")), lambda a: tuple(TL.qr(a, "complete")),
                    [lambda: _rect(3, 5)]),
    "pinv_tall": (L.pinv, TL.pinv, [lambda: _rect(2, 5, 3)]),
    "pinv_wide": (L.pinv, TL.pinv, [lambda: _rect(3, 5)]),
    "pinv_hermitian": (lambda a: L.pinv(a, hermitian=True),
                       lambda a: TL.pinv(a, hermitian=True), [_spd]),
    "lstsq": (lambda a, b: L.lstsq(a, b).solution, lambda a, b: TL.lstsq(a, b).solution,
              [lambda: _rect(2, 6, 3), lambda: _rect(2, 6, 2)]),
    "lstsq_gelsd": (lambda a, b: tuple(L.lstsq(a, b, driver="gelsd")),
                    lambda a, b: tuple(TL.lstsq(a, b, driver="gelsd")),
                    [lambda: _rect(6, 3), lambda: _rect(6, 2)]),
    "matrix_power": (lambda a: (L.matrix_power(a, 5), L.matrix_power(a, -2),
                                L.matrix_power(a, 0)),
                     lambda a: (TL.matrix_power(a, 5), TL.matrix_power(a, -2),
                                TL.matrix_power(a, 0)), [lambda: _sq(2)]),
    "multi_dot": (lambda a, b, c: L.multi_dot([a, b, c]), lambda a, b, c: TL.multi_dot([a, b, c]),
                  [lambda: _rect(3), lambda: _rect(3, 4), lambda: _rect(4, 2)]),
    "cross": (lambda a, b: L.cross(a, b, dim=1), lambda a, b: TL.cross(a, b, dim=1),
              [lambda: _rect(2, 3, 4), lambda: _rect(1, 3, 4)]),
    "vecdot": (lambda a, b: L.vecdot(a, b, dim=0), lambda a, b: TL.vecdot(a, b, dim=0),
               [lambda: _rect(3, 4), lambda: _rect(3, 1)]),
    "diagonal": (lambda a: L.diagonal(a, offset=1), lambda a: TL.diagonal(a, offset=1),
                 [lambda: _rect(2, 3, 4)]),
    "tensorinv": (lambda a: L.tensorinv(a, ind=1), lambda a: TL.tensorinv(a, ind=1),
                  [lambda: _sq().reshape(4, 2, 2)]),
    "tensorsolve": (L.tensorsolve, TL.tensorsolve,
                    [lambda: _sq(n=6).reshape(2, 3, 6), lambda: _rect(2, 3)]),
    "cond": (lambda a: (L.cond(a), L.cond(a, 1), L.cond(a, "fro")),
             # (torch's own cond(a, 1) fails in backward: its definition, composed)
             lambda a: (TL.cond(a), *[TL.matrix_norm(a, p) * TL.matrix_norm(TL.inv(a), p)
                                      for p in (1, "fro")]), [_sq]),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_values_and_gradients_match_torch(name, dtype):
    fj, ft, makers = CASES[name]
    _check(fj, ft, [m() for m in makers], dtype)


@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf])
def test_matrix_norms_match_torch(ord):
    a = _rect(2, 3, 4)
    _check(lambda x: L.matrix_norm(x, ord), lambda x: TL.matrix_norm(x, ord), [a])
    _check(lambda x: L.matrix_norm(x, ord, dim=(0, 2), keepdim=True),
           lambda x: TL.matrix_norm(x, ord, dim=(0, 2), keepdim=True), [a])
    _check(lambda x: L.norm(x, ord), lambda x: TL.norm(x, ord), [a[0]])


@pytest.mark.parametrize("ord", [2, 1, 3, 0.5, math.inf, -math.inf])
def test_vector_norms_match_torch(ord):
    a = _rect(2, 3, 4)
    _check(lambda x: L.vector_norm(x, ord, dim=(0, 2)), lambda x: TL.vector_norm(x, ord, dim=(0, 2)),
           [a])
    _check(lambda x: L.norm(x, ord, dim=1, keepdim=True),
           lambda x: TL.norm(x, ord, dim=1, keepdim=True), [a])
    _check(lambda x: L.vector_norm(x, ord, dtype=jg.float64),
           lambda x: TL.vector_norm(x, ord, dtype=torch.float64), [a], "f32")
    _check(lambda x: L.norm(x), lambda x: TL.norm(x), [a])


def test_ranks_and_lstsq_outputs_match_torch():
    a = _rect(3, 6, 4)
    a[1] = a[1][:, :1] * RNG.normal(size=(1, 4))  # rank 1
    for kw in ({}, {"hermitian": True}, {"atol": 0.5}, {"rtol": 0.3}):
        x = a @ np.swapaxes(a, -1, -2) if kw.get("hermitian") else a
        got = L.matrix_rank(jg.tensor(x), **kw)
        want = TL.matrix_rank(torch.tensor(x), **kw)
        assert got.dtype is jg.int64 and got.tolist() == want.tolist()
    b = _rect(3, 6, 2)
    for driver in (None, "gels", "gelsy", "gelsd", "gelss"):
        a2 = _rect(3, 6, 4)
        got = L.lstsq(jg.tensor(a2), jg.tensor(b), driver=driver)
        want = TL.lstsq(torch.tensor(a2), torch.tensor(b), driver=driver)
        for g, w in zip(got, want):
            assert tuple(g.shape) == tuple(w.shape), driver
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-9, atol=1e-10)


def test_second_order_gradients_match_torch():
    # det's Hessian at the identity (every eigenvalue repeated) and inv's through a product.
    eye = np.eye(3)
    want = torch.autograd.functional.hessian(TL.det, torch.tensor(eye))
    got = jg.func.hessian(L.det)(jg.tensor(eye, dtype=jg.float64))
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-12)
    a = _sq(n=3)
    j, t = _pair(a, "f64")
    gj, = jg.autograd.grad(L.inv(j).sum() ** 2, j, create_graph=True)
    gt, = torch.autograd.grad(TL.inv(t).sum() ** 2, t, create_graph=True)
    (gj ** 2).sum().backward()
    (gt ** 2).sum().backward()
    np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), rtol=1e-9)


def test_repeated_eigen_and_singular_values_have_finite_gradients():
    # Functions of the values alone are smooth there; the eigenvector terms drop out.
    for fj, ft in ((L.eigvalsh, TL.eigvalsh), (L.svdvals, TL.svdvals)):
        _check(lambda x: fj(x) ** 3, lambda x: ft(x) ** 3, [2 * np.eye(3)])


def test_singular_matrices_raise_linalg_errors_like_torch():
    s = np.array([[1.0, 2.0], [2.0, 4.0]])
    batch = np.stack([np.eye(2), s])
    for fj, ft, x in ((L.inv, TL.inv, s), (L.inv, TL.inv, batch),
                      (lambda a: L.solve(a, a), lambda a: TL.solve(a, a), batch),
                      (L.cholesky, TL.cholesky, -batch), (jg.inverse, torch.inverse, s)):
        with pytest.raises(torch.linalg.LinAlgError) as want:
            ft(torch.tensor(x))
        with pytest.raises(jg.linalg.LinAlgError) as got:
            fj(jg.tensor(x))
        assert isinstance(got.value, RuntimeError)
        assert str(got.value).split(": ", 1)[1] == str(want.value).split(": ", 1)[1]


def test_ex_variants_report_info_like_torch():
    s = np.array([[1.0, 2.0], [2.0, 4.0]])
    batch = np.stack([np.eye(2), s, np.zeros((2, 2))])
    got, want = L.inv_ex(jg.tensor(batch)), TL.inv_ex(torch.tensor(batch))
    assert got.info.dtype is jg.int32 and got.info.tolist() == want.info.tolist()
    np.testing.assert_allclose(got.inverse.numpy()[0], want.inverse.numpy()[0])
    m = np.array([[4.0, 2.0, 1.0], [2.0, 1.0, 0.0], [1.0, 0.0, 3.0]])
    for x in (m, np.stack([np.eye(3), m, -np.eye(3)])):
        got, want = L.cholesky_ex(jg.tensor(x)), TL.cholesky_ex(torch.tensor(x))
        assert got.info.tolist() == want.info.tolist()
    with pytest.raises(jg.linalg.LinAlgError, match="leading minor of order 2"):
        L.cholesky_ex(jg.tensor(m), check_errors=True)


@pytest.mark.parametrize("m", [[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 0.0]],
                               [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
                               [[0.0, 0.0], [0.0, 0.0]], [[2.0, 1.0], [1.0, 3.0]]])
def test_det_gradient_is_the_cofactor_matrix_singular_or_not(m):
    """det is a polynomial: its gradient is the cofactor matrix everywhere, rank n-1 singular
    matrices included (as JAX gives; torch 2.13 gives 0 there). Against the cofactors made
    from minors with NumPy."""
    a = np.array(m)
    n = a.shape[0]
    cof = np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a, i, 0), j, 1))
                     if n > 1 else 1.0 for j in range(n)] for i in range(n)])
    x = jg.tensor(a, requires_grad=True)
    L.det(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), cof, rtol=1e-10, atol=1e-12)
    xb = jg.tensor(np.stack([a, a + np.eye(n)]), requires_grad=True)
    (L.det(xb) * jg.tensor([1.0, 2.0], dtype=jg.float64)).sum().backward()
    np.testing.assert_allclose(xb.grad.numpy()[0], cof, rtol=1e-10, atol=1e-12)


def test_bad_arguments_name_the_problem():
    with pytest.raises(RuntimeError, match="square matrices, but they are 2 by 3"):
        L.inv(jg.ones(2, 3))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        L.det(jg.ones(3))
    with pytest.raises(RuntimeError, match="floating point.*int64"):
        L.inv(jg.ones(3, 3, dtype=jg.int64))
    with pytest.raises(RuntimeError, match=r"Incompatible shapes of A and B .*\(3x3 and 2x1\)"):
        L.solve(jg.eye(3), jg.ones(2))
    with pytest.raises(RuntimeError, match="UPLO"):
        L.eigh(jg.eye(2), UPLO="X")
    with pytest.raises(RuntimeError, match="mode"):
        L.qr(jg.eye(2), mode="full")
    with pytest.raises(RuntimeError, match="must be 1D or 2D"):
        L.norm(jg.ones(2, 2, 2), 2)
    with pytest.raises(RuntimeError, match="length 3"):
        L.cross(jg.ones(2), jg.ones(2))
    with pytest.raises(TypeError, match="argument 'A' must be a Tensor"):
        L.inv([[1.0]])
    x = jg.tensor(_rect(5, 3), requires_grad=True)
    with pytest.raises(NotImplementedError, match="mode='complete' and nrows > ncols"):
        L.qr(x, "complete").Q.sum().backward()


@pytest.mark.filterwarnings("ignore::UserWarning")  # (torch's deprecation notes)
def test_top_level_and_method_forms_match_torch():
    a, spd, b = _sq(), _spd(), _rect(4, 2)
    ja, js, jb = jg.tensor(a), jg.tensor(spd), jg.tensor(b)
    ta, ts, tb = torch.tensor(a), torch.tensor(spd), torch.tensor(b)
    lo = np.linalg.cholesky(spd)
    pairs = [
        (jg.inverse(ja), torch.inverse(ta)), (ja.inverse(), ta.inverse()),
        (jg.det(ja), torch.det(ta)), (ja.det(), ta.det()), (js.logdet(), ts.logdet()),
        (jg.slogdet(ja)[1], torch.slogdet(ta)[1]), (ja.slogdet().sign, ta.slogdet().sign),
        # (torch 2.14 removed torch.cholesky and torch.qr, functions and methods: their
        # linalg forms)
        (jg.cholesky(js), TL.cholesky(ts)), (js.cholesky(True), TL.cholesky(ts).mH),
        (jg.pinverse(jb), torch.pinverse(tb)), (jb.pinverse(), tb.pinverse()),
        (jg.matrix_power(ja, 3), torch.matrix_power(ta, 3)), (ja.matrix_power(-1), ta.matrix_power(-1)),
        (jg.svd(jb).S, torch.svd(tb).S), (jb.svd().V ** 2, tb.svd().V ** 2),
        (jg.qr(jb).R, TL.qr(tb).R), (L.qr(jb, "r").R, TL.qr(tb, "r").R),
        (jb.qr(some=False).Q, TL.qr(tb, "complete").Q),
        (jb.cholesky_solve(jg.tensor(lo)), tb.cholesky_solve(torch.tensor(lo))),
        (jg.cholesky_inverse(jg.tensor(lo)), torch.cholesky_inverse(torch.tensor(lo))),
        (jb.triangular_solve(ja + 4 * jg.eye(4, dtype=jg.float64)).solution,
         tb.triangular_solve(ta + 4 * torch.eye(4, dtype=torch.float64)).solution),
        (jg.cross(jg.tensor(b[:3]), jg.tensor(b[1:])), torch.cross(tb[:3], tb[1:])),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)


def test_compiled_gradient_through_solve_and_slogdet_matches_torch():
    a, b = _sq(2) + 4 * np.eye(4), _rect(2, 4)

    def f(A, B):
        return (L.solve(A, B) ** 2).sum() + L.slogdet(A).logabsdet.sum()

    g = jg.grad(f, argnums=(0, 1), target="numba-cpu")
    got = g(jg.tensor(a), jg.tensor(b))
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ((TL.solve(ta, tb) ** 2).sum() + TL.slogdet(ta).logabsdet.sum()).backward()
    np.testing.assert_allclose(got[0].numpy(), ta.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(got[1].numpy(), tb.grad.numpy(), rtol=1e-10)
    assert g.cache_info().compiles >= 1
