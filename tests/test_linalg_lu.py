"""The LU family (jitgrad/ops/linalg_lu.py, jitgrad/linalg/_lu.py) and the Householder products
(jitgrad/linalg/_householder.py): values, pivots, gradients and forward-mode tangents against
torch (skipped without it), second order, compiled, errors."""

import numpy as np
import pytest

import jitgrad as jg

SHAPES = [(4, 4), (3, 5), (5, 3), (2, 4, 4), (2, 3, 5), (2, 5, 3)]


def _rand(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _close(got, want, tol=1e-10):
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", SHAPES)
def test_lu_factor_lu_and_unpack_match_torch(torch, shape):
    a = _rand(shape)
    LU, piv = jg.linalg.lu_factor(jg.tensor(a))
    tLU, tpiv = torch.linalg.lu_factor(torch.tensor(a))
    _close(LU, tLU)
    assert piv.dtype is jg.int32 and piv.tolist() == tpiv.tolist()
    for mine, theirs in zip(jg.linalg.lu(jg.tensor(a)), torch.linalg.lu(torch.tensor(a))):
        _close(mine, theirs)
    for mine, theirs in zip(jg.lu_unpack(LU, piv), torch.lu_unpack(tLU, tpiv)):
        _close(mine, theirs)
    empty = jg.lu_unpack(LU, piv, unpack_data=False, unpack_pivots=False)
    assert [tuple(t.shape) for t in empty] == [(0,), (0,), (0,)]


@pytest.mark.parametrize("shape", SHAPES)
def test_lu_gradients_match_torch(torch, shape):
    a = _rand(shape)
    gl, gu = _rand(shape[:-1] + (min(shape[-2:]),), 1), _rand(shape[:-2] + (min(shape[-2:]),
                                                                            shape[-1]), 2)
    x = jg.tensor(a, requires_grad=True)
    _, L, U = jg.linalg.lu(x)
    ((L * jg.tensor(gl)).sum() + (U * jg.tensor(gu)).sum()).backward()
    t = torch.tensor(a, requires_grad=True)
    _, tL, tU = torch.linalg.lu(t)
    ((tL * torch.tensor(gl)).sum() + (tU * torch.tensor(gu)).sum()).backward()
    _close(x.grad, t.grad, 1e-9)


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [True, False])
def test_lu_solve_values_and_gradients_match_torch(torch, left, adjoint):
    a, b = _rand((2, 4, 4)), _rand((3, 1, 4, 2) if left else (3, 1, 2, 4), 1)
    LU, piv = jg.linalg.lu_factor(jg.tensor(a))
    LU, B = LU.detach().requires_grad_(), jg.tensor(b, requires_grad=True)
    X = jg.linalg.lu_solve(LU, piv, B, left=left, adjoint=adjoint)
    tLU, tpiv = torch.linalg.lu_factor(torch.tensor(a))
    tLU, tB = tLU.detach().requires_grad_(), torch.tensor(b, requires_grad=True)
    tX = torch.linalg.lu_solve(tLU, tpiv, tB, left=left, adjoint=adjoint)
    _close(X, tX)
    cot = _rand(tuple(tX.shape), 3)
    (X * jg.tensor(cot)).sum().backward()
    (tX * torch.tensor(cot)).sum().backward()
    _close(LU.grad, tLU.grad, 1e-9)
    _close(B.grad, tB.grad, 1e-9)


@pytest.mark.parametrize("bshape", [(4,), (4, 2), (3, 4, 1)])
def test_solve_ex_matches_torch(torch, bshape):
    a, b = _rand((3, 4, 4)), _rand(bshape, 1)
    A, B = jg.tensor(a, requires_grad=True), jg.tensor(b, requires_grad=True)
    X, info = jg.linalg.solve_ex(A, B)
    tA, tB = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    tX, tinfo = torch.linalg.solve_ex(tA, tB)
    _close(X, tX)
    assert info.dtype is jg.int32 and info.tolist() == tinfo.tolist()
    X.sum().backward()
    tX.sum().backward()
    _close(A.grad, tA.grad, 1e-9)
    _close(B.grad, tB.grad, 1e-9)
    Xr = jg.linalg.solve_ex(jg.tensor(a), jg.tensor(_rand((3, 2, 4), 2)), left=False).result
    _close(Xr, torch.linalg.solve_ex(torch.tensor(a), torch.tensor(_rand((3, 2, 4), 2)),
                                     left=False).result)


def test_singular_matrices_as_torch(torch):
    z = np.array([[1.0, 2.0], [2.0, 4.0]])
    X, info = jg.linalg.solve_ex(jg.tensor(z), jg.ones(2, dtype=jg.float64))
    tX, tinfo = torch.linalg.solve_ex(torch.tensor(z), torch.ones(2, dtype=torch.float64))
    assert info.item() == tinfo.item() == 2
    np.testing.assert_array_equal(np.isfinite(X.numpy()), np.isfinite(tX.numpy()))
    out, tout = jg.linalg.lu_factor_ex(jg.tensor(z)), torch.linalg.lu_factor_ex(torch.tensor(z))
    _close(out.LU, tout.LU)
    assert out.info.item() == tout.info.item()
    with pytest.raises(jg.linalg.LinAlgError, match=r"U\[2,2\] is zero"):
        jg.linalg.lu_factor(jg.tensor(z))
    with pytest.raises(jg.linalg.LinAlgError, match=r"Batch element 1.*singular"):
        jg.linalg.solve_ex(jg.tensor(np.stack([np.eye(2), z])), jg.ones(2, 2, 1,
                                                                        dtype=jg.float64),
                           check_errors=True)


def test_legacy_forms_match_torch(torch):
    a, b = _rand((2, 3, 3)), _rand((2, 3, 2), 1)
    LU, piv = jg.tensor(a).lu()
    tLU, tpiv = torch.tensor(a).lu()
    _close(LU, tLU)
    assert piv.tolist() == tpiv.tolist()
    assert len(jg.lu(jg.tensor(a), get_infos=True)) == 3
    _close(jg.lu_solve(jg.tensor(b), LU, piv), torch.lu_solve(torch.tensor(b), tLU, tpiv))
    _close(jg.tensor(b).lu_solve(LU, piv), torch.tensor(b).lu_solve(tLU, tpiv))


def test_forward_mode_matches_torch(torch):
    for shape in [(4, 4), (3, 5), (5, 3)]:
        a, t = _rand(shape), _rand(shape, 1)
        for part in (1, 2):
            _, mine = jg.func.jvp(lambda x: jg.linalg.lu(x)[part], (jg.tensor(a),),
                                  (jg.tensor(t),))
            _, theirs = torch.func.jvp(lambda x: torch.linalg.lu(x)[part], (torch.tensor(a),),
                                       (torch.tensor(t),))
            _close(mine, theirs)


def test_second_order_and_vmap():
    x = jg.tensor(_rand((3, 4)), requires_grad=True)
    assert jg.autograd.gradgradcheck(lambda a: jg.linalg.lu_factor(a).LU, (x,))
    A = jg.tensor(_rand((3, 3)) + 3 * np.eye(3), requires_grad=True)
    B = jg.tensor(_rand((3, 2), 1), requires_grad=True)
    assert jg.autograd.gradgradcheck(lambda a, b: jg.linalg.solve_ex(a, b).result, (A, B))
    a = _rand((3, 4, 4))
    got = jg.func.vmap(lambda m: jg.linalg.lu(m).U)(jg.tensor(a))
    _close(got, jg.linalg.lu(jg.tensor(a)).U, 0)


def test_compiled_matches_eager():
    a, b = _rand((4, 4)), _rand((4, 2), 1)

    def loss(A, B):
        LU, piv = jg.linalg.lu_factor(A)
        return (jg.linalg.lu_solve(LU, piv, B) ** 2).sum()

    want = jg.grad(loss, argnums=(0, 1), target="reference")
    eager_a, eager_b = jg.tensor(a, requires_grad=True), jg.tensor(b, requires_grad=True)
    loss(eager_a, eager_b).backward()
    ga, gb = want(jg.tensor(a), jg.tensor(b))
    _close(ga, eager_a.grad, 1e-12)
    _close(gb, eager_b.grad, 1e-12)


def test_float32_stays_float32():
    x = jg.tensor(_rand((3, 3), dtype=np.float32), requires_grad=True)
    P, L, U = jg.linalg.lu(x)
    assert P.dtype is L.dtype is U.dtype is jg.float32
    X = jg.linalg.solve_ex(x, jg.ones(3, dtype=jg.float32)).result
    assert X.dtype is jg.float32
    (L.sum() + U.sum() + X.sum()).backward()
    assert x.grad.dtype is jg.float32


def test_bad_input_errors():
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        jg.linalg.lu_factor(jg.ones(3))
    with pytest.raises(RuntimeError, match="floating point"):
        jg.linalg.lu_factor(jg.ones(2, 2, dtype=jg.int64))
    with pytest.raises(RuntimeError, match="without pivoting"):
        jg.linalg.lu(jg.eye(2), pivot=False)
    LU, piv = jg.linalg.lu_factor(jg.eye(3))
    with pytest.raises(RuntimeError, match="int32"):
        jg.linalg.lu_solve(LU, piv.long(), jg.ones(3, 1))
    with pytest.raises(RuntimeError, match=r"pivots of shape \(2,\)"):
        jg.linalg.lu_solve(LU, piv[:2], jg.ones(3, 1))
    with pytest.raises(RuntimeError, match=r"Incompatible shapes.*3x3 and 2x1"):
        jg.linalg.lu_solve(LU, piv, jg.ones(2, 1))
    with pytest.raises(RuntimeError, match="same dtype"):
        jg.linalg.lu_solve(LU, piv, jg.ones(3, 1, dtype=jg.float64))
    with pytest.raises(RuntimeError, match="Pivots given to lu_solve"):
        jg.linalg.lu_solve(LU, jg.tensor([4, 3, 3], dtype=jg.int32), jg.ones(3, 1))


# -- geqrf, householder_product (orgqr), ormqr ---------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 4)])
def test_householder_products_match_torch(torch, shape):
    a = _rand(shape)
    mine, theirs = jg.geqrf(jg.tensor(a)), torch.geqrf(torch.tensor(a))
    _close(mine.a, theirs.a)
    _close(mine.tau, theirs.tau)
    A, tau = mine.a.detach().requires_grad_(), mine.tau.detach().requires_grad_()
    tA, ttau = theirs.a.detach().requires_grad_(), theirs.tau.detach().requires_grad_()
    Q, tQ = jg.linalg.householder_product(A, tau), torch.linalg.householder_product(tA, ttau)
    _close(Q, tQ)
    c = _rand(shape[:-2] + (shape[-2], 2), 1)
    outs = [jg.ormqr(A, tau, jg.tensor(c), transpose=t) for t in (False, True)]
    touts = [torch.ormqr(tA, ttau, torch.tensor(c), transpose=t) for t in (False, True)]
    outs.append(A.ormqr(tau, jg.tensor(_mT_np(c)), left=False))
    touts.append(tA.ormqr(ttau, torch.tensor(_mT_np(c)), left=False))
    for o, t in zip(outs, touts):
        _close(o, t)
    loss = (Q * jg.tensor(_rand(Q.shape, 2))).sum() + sum((o ** 2).sum() for o in outs)
    tloss = (tQ * torch.tensor(_rand(Q.shape, 2))).sum() + sum((t ** 2).sum() for t in touts)
    loss.backward()
    tloss.backward()
    _close(A.grad, tA.grad, 1e-9)
    _close(tau.grad, ttau.grad, 1e-9)


def _mT_np(x):
    return np.swapaxes(x, -1, -2)


def test_householder_errors():
    with pytest.raises(RuntimeError, match="greater than or equal to input.shape"):
        jg.linalg.householder_product(jg.ones(2, 3), jg.ones(2))
    with pytest.raises(RuntimeError, match="greater than or equal to tau.shape"):
        jg.linalg.householder_product(jg.ones(3, 2), jg.ones(3))
    with pytest.raises(RuntimeError, match="batch dimensions of tau"):
        jg.ormqr(jg.ones(3, 2), jg.ones(4, 2), jg.ones(3, 1))
    with pytest.raises(RuntimeError, match=r"other.shape\[-2\] must be equal"):
        jg.ormqr(jg.ones(3, 2), jg.ones(2), jg.ones(2, 1))


def test_geqrf_refuses_a_gradient_as_torch_does():
    """geqrf has no derivative (torch's neither): its result requires grad and backward
    raises, never a silent zero; detached, it is a constant."""
    a = jg.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    q, tau = jg.geqrf(a)
    assert q.requires_grad
    with pytest.raises(RuntimeError, match="derivative for geqrf is not implemented"):
        q.sum().backward()
    with pytest.raises(RuntimeError, match="derivative for geqrf"):
        jg.grad(lambda x: jg.geqrf(x)[0].sum(), target="reference")(a.detach())
    assert not jg.geqrf(a.detach())[0].requires_grad
